"""The pure group core after failures: Offline Failure, double activation, broken drivers."""

from __future__ import annotations

from clp.core.coordinator import Coordinator, ServerReport
from clp.core.group_runner import GroupRunner
from clp.core.group_states import GroupState, ResourceState
from clp.core.group_types import E_STATE, OK
from tests.sim.groupsim import make_group

G, R = GroupState, ResourceState
S2 = ["s1", "s2"]


def rep(**groups: GroupState) -> ServerReport:
    return ServerReport(groups)


def coord(groups: list, servers: list[str] = S2) -> Coordinator:
    return Coordinator("s1", servers, groups, 10, now=0.0, resend=5)


def test_offline_failure_blocks_placement_until_the_operator_stops_it_again() -> None:
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    assert c.request(2, "move", "g", "s1").ok
    [cmd] = c.decide(3, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    assert (cmd.kind, cmd.server) == ("deactivate", "s2")
    stuck = {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE_FAILURE)}
    for t in range(4, 20):  # neither activated on s1 nor deactivated again on s2
        assert c.decide(t, S2, stuck) == []
    assert "Offline Failure on s2" in c.reasons["g"] and "clpgrp -t" in c.reasons["g"]
    assert c.owner("g") == "s2"
    assert c.request(20, "start", "g").code == E_STATE
    assert c.request(20, "stop", "g").ok
    [cmd] = c.decide(21, S2, stuck)
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s2", "STOP")
    assert c.decide(22, S2, stuck) == []  # it failed again: once per operator stop
    assert c.decide(23, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE)}) == []
    assert c.request(24, "start", "g").ok
    [cmd] = c.decide(25, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE)})
    assert (cmd.kind, cmd.server) == ("activate", "s1")


def test_offline_failure_is_forgotten_when_its_server_leaves() -> None:
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    assert c.decide(2, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE_FAILURE)}) == []
    [cmd] = c.decide(3, ["s1"], {"s1": rep(g=G.OFFLINE)})
    assert (cmd.kind, cmd.server, cmd.event) == ("activate", "s1", "FAILOVER")


def test_offline_failure_left_by_a_stopping_service_strands_the_group() -> None:
    """s2's cluster service stopped with g in Offline Failure (a resource did not stop): not the
    power-off semantics of a server that left; g starts nowhere until s2 is back or the
    operator forces it."""
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    leaving = ServerReport({"g": G.OFFLINE_FAILURE}, leaving=True)
    assert c.decide(2, S2, {"s1": rep(g=G.OFFLINE), "s2": leaving}) == []
    for t in range(3, 10):
        assert c.decide(t, ["s1"], {"s1": rep(g=G.OFFLINE)}) == []
    assert "Offline Failure on s2 when its cluster service stopped" in c.reasons["g"]
    refused = c.request(10, "start", "g")
    assert refused.code == E_STATE and "with -f" in refused.message
    follower = Coordinator("s2", S2, [make_group("g", S2)], 10, now=0.0)
    follower.import_intents(c.export_intents())  # a server that starts now learns it too
    assert follower.stranded == {"g": "s2"}
    assert c.request(11, "start", "g", force=True).ok
    [cmd] = c.decide(12, ["s1"], {"s1": rep(g=G.OFFLINE)})
    assert (cmd.kind, cmd.server) == ("activate", "s1") and c.stranded == {}


def test_a_group_released_by_the_stop_after_all_is_not_stranded() -> None:
    """The stop deactivates an Offline Failure group again; when that works, the report sent
    while still leaving says Offline, and the group moves on as after any stop."""
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    c.decide(2, S2, {"s1": rep(g=G.OFFLINE),
                     "s2": ServerReport({"g": G.OFFLINE_FAILURE}, leaving=True)})
    assert c.stranded == {"g": "s2"}
    cmds = c.decide(3, S2, {"s1": rep(g=G.OFFLINE),
                            "s2": ServerReport({"g": G.OFFLINE}, leaving=True)})
    assert c.stranded == {}
    cmds += c.decide(4, ["s1"], {"s1": rep(g=G.OFFLINE)})
    assert [(cmd.kind, cmd.server) for cmd in cmds] == [("activate", "s1")]


def test_a_follower_takes_the_masters_stranded_groups_as_they_are() -> None:
    follower = Coordinator("s2", S2, [make_group("g", S2)], 10, now=0.0)
    follower.stranded = {"g": "s1"}  # it saw s1 stop with g in Offline Failure
    follower.import_intents({"stranded": {}})  # the operator forced g on at the master
    assert follower.stranded == {}


def test_a_stranded_group_is_decided_as_usual_once_its_server_reports_again() -> None:
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})
    c.decide(2, S2, {"s1": rep(g=G.OFFLINE),
                     "s2": ServerReport({"g": G.OFFLINE_FAILURE}, leaving=True)})
    assert c.decide(3, ["s1"], {"s1": rep(g=G.OFFLINE)}) == [] and c.stranded == {"g": "s2"}
    # s2 is back: its resource was released meanwhile (found Offline at its start)
    [cmd] = c.decide(4, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE)})
    assert cmd.kind == "activate" and c.stranded == {}


def test_double_activation_keeps_the_last_owner_not_the_policy_first() -> None:
    c = coord([make_group("g", S2)])
    c.decide(1, ["s1"], {"s1": rep(g=G.OFFLINE)})
    c.decide(2, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.ONLINE)})  # s2 ran it meanwhile
    [cmd] = c.decide(3, S2, {"s1": rep(g=G.ONLINE), "s2": rep(g=G.ONLINE)})
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s1", "RECOVER")
    assert "also active on s2" in cmd.reason


def test_intent_cause_travels_to_a_new_master() -> None:
    c = coord([make_group("g", S2, start="manual")])
    c.decide(1, S2, {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE)})
    assert c.request(2, "start", "g", "s2").ok
    other = Coordinator("s2", S2, [make_group("g", S2, start="manual")], 10, now=0.0)
    other.import_intents(c.export_intents())
    assert other.intents["g"].cause == "started by the operator on s2"


def test_a_refused_command_is_decided_again() -> None:
    c = coord([make_group("g", S2)])
    reports = {"s1": rep(g=G.OFFLINE), "s2": rep(g=G.OFFLINE)}
    assert len(c.decide(1, S2, reports)) == 1
    assert c.decide(2, S2, reports) == []  # in progress
    c.forget_pending("g")
    assert len(c.decide(3, S2, reports)) == 1


def group() -> object:
    return make_group("g", S2, resources=[{"name": "fip1"}, {"name": "exec1",
                                                              "depends": ["fip1"]}])


def test_abort_of_a_broken_activation_leaves_online_failure_and_frees_the_group() -> None:
    r = GroupRunner(group())
    out = r.activate("START")
    r.on_result(out.step.resource, True, "")
    out = r.abort("activate broke off: RuntimeError()")
    assert r.state == G.ONLINE_FAILURE and not r.busy
    assert r.resource_states() == {"fip1": R.ONLINE, "exec1": R.ONLINE_FAILURE}
    assert any("broke off" in line for line in out.lines)
    assert r.deactivate("STOP").step is not None  # it can still be stopped


def test_abort_of_a_broken_deactivation_leaves_offline_failure() -> None:
    r = GroupRunner(group())
    r.adopt({"fip1": True, "exec1": True})
    r.deactivate("STOP")
    r.abort("deactivate broke off")
    assert r.state == G.OFFLINE_FAILURE and not r.busy
    assert r.resource_states()["exec1"] == R.OFFLINE_FAILURE


def test_resource_op_refusal_carries_a_code_not_a_message_to_parse() -> None:
    r = GroupRunner(group())
    assert r.resource_op("start", "fip1").code == E_STATE  # group Offline
    r.adopt({"fip1": True, "exec1": True})
    out = r.resource_op("start", "fip1")
    assert out.step is None and out.code == OK and "already" in out.lines[0]
