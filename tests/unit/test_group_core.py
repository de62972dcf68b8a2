"""The pure group core: state tables, placement, the coordinator's rules, the group runner."""

from __future__ import annotations

import pytest

from clp.core.coordinator import Coordinator, ServerReport
from clp.core.group_runner import GroupRunner
from clp.core.group_states import (
    GroupState,
    IllegalTransition,
    ResourceState,
    change_group_state,
)
from clp.core.group_types import E_BAD_ARGS, E_SERVER, E_STATE
from clp.core.placement import target_server
from tests.sim.groupsim import make_group

G, R = GroupState, ResourceState
S2 = ["s1", "s2"]


class Obj:
    def __init__(self, state: GroupState) -> None:
        self.name, self.state = "g", state


def rep(**groups: GroupState) -> ServerReport:
    return ServerReport(groups)


def off(*names: str) -> ServerReport:
    return ServerReport({n: G.OFFLINE for n in names})


# --- states ------------------------------------------------------------------------------

def test_change_state_returns_the_line_and_refuses_illegal_edges() -> None:
    o = Obj(G.OFFLINE)
    assert change_group_state(o, G.ONLINE_PENDING, "START") == \
        "group g: Offline -> Online Pending (START)"
    with pytest.raises(IllegalTransition, match="Online Pending -> Offline"):
        change_group_state(o, G.OFFLINE, "nonsense")
    assert o.state == G.ONLINE_PENDING


# --- placement ---------------------------------------------------------------------------

def test_placement_follows_policy_and_exclusive_attributes() -> None:
    g = make_group("g", ["s2", "s1"], exclusive="normal")
    assert target_server(g, S2, {}, {})[0] == "s2"
    ex = {"g": "normal", "h": "normal", "a": "absolute"}
    server, why = target_server(g, S2, {"h": "s2"}, ex)
    assert server == "s1" and "s2 runs h" in why
    server, why = target_server(g, S2, {"h": "s2", "i": "s1"}, ex | {"i": "normal"})
    assert server == "s2" and "every online server" in why  # normal still starts
    a = make_group("a2", ["s1"], exclusive="absolute")
    server, why = target_server(a, S2, {"a": "s1"}, {"a2": "absolute", "a": "absolute"})
    assert server is None and "absolute" in why
    assert target_server(g, [], {}, {})[0] is None
    off_group = make_group("o", ["s1"])
    assert target_server(off_group, S2, {"a": "s1"}, {"a": "absolute"})[0] == "s1"


# --- coordinator -------------------------------------------------------------------------

def coord(groups: list, servers: list[str] = S2, sync_wait: float = 10) -> Coordinator:
    return Coordinator("s1", servers, groups, sync_wait, now=0.0, resend=5)


def test_rule1_sync_wait_holds_auto_start_until_everyone_or_timeout() -> None:
    c = coord([make_group("g", S2)])
    assert c.decide(1, ["s1"], {"s1": off("g")}) == []
    [cmd] = c.decide(10, ["s1"], {"s1": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("activate", "s1", "START")
    assert "server sync wait (10 s) ended" in cmd.reason
    c2 = coord([make_group("g", S2)])
    [cmd] = c2.decide(1, S2, {"s1": off("g"), "s2": off("g")})
    assert "every server is online" in cmd.reason


def test_rule2_never_activate_while_a_server_has_not_reported_or_still_runs_it() -> None:
    c = coord([make_group("g", ["s2", "s1"])])
    assert c.decide(1, S2, {"s1": off("g")}) == []  # s2 unknown
    assert "waiting for the state of g on s2" in c.reasons["g"]
    assert c.decide(2, S2, {"s1": off("g"), "s2": rep(g=G.OFFLINE_PENDING)}) == []
    [cmd] = c.decide(3, S2, {"s1": off("g"), "s2": off("g")})
    assert cmd.server == "s2"


def test_rule3_manual_groups_start_only_on_request() -> None:
    c = coord([make_group("g", S2, start="manual")])
    reports = {"s1": off("g"), "s2": off("g")}
    assert c.decide(1, S2, reports) == []
    a = c.request(2, "start", "g", "s2")
    assert a.ok
    [cmd] = c.decide(3, S2, reports)
    assert (cmd.server, cmd.event) == ("s2", "START") and "operator" in cmd.reason


def test_rule4_failover_names_the_dead_server() -> None:
    c = coord([make_group("g", S2)])
    c.decide(1, S2, {"s1": off("g"), "s2": rep(g=G.ONLINE)})
    [cmd] = c.decide(2, ["s1"], {"s1": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("activate", "s1", "FAILOVER")
    assert "s2 is down" in cmd.reason


def test_rule5_failback_auto_on_join_manual_stays() -> None:
    groups = [make_group("a", S2, failback="auto"), make_group("m", S2)]
    c = Coordinator("s1", S2, groups, 10, now=0.0)
    c._online = ["s2"]  # s1 was seen down before: it joins now
    cmds = c.decide(1, S2, {"s1": off("a", "m"), "s2": rep(a=G.ONLINE, m=G.ONLINE)})
    assert [(x.kind, x.group, x.server, x.event) for x in cmds] == [
        ("deactivate", "a", "s2", "FAILBACK")]
    assert c.decide(2, S2, {"s1": off("a", "m"), "s2": rep(a=G.OFFLINE, m=G.ONLINE)})[0] \
        .server == "s1"


def test_rule6_move_and_stop() -> None:
    c = coord([make_group("g", ["s1", "s2", "s3"])], servers=["s1", "s2", "s3"])
    up = ["s1", "s2", "s3"]
    reports = {"s1": rep(g=G.ONLINE), "s2": off("g"), "s3": off("g")}
    c.decide(1, up, reports)
    assert c.request(2, "move", "g", "s1").code == E_STATE
    assert c.request(2, "move", "g", "s9").code == E_BAD_ARGS
    assert c.request(2, "move", "g").message == "Moving group g to s2."
    [cmd] = c.decide(3, up, reports)
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s1", "MOVE")
    [cmd] = c.decide(4, up, {"s1": off("g"), "s2": off("g"), "s3": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("activate", "s2", "MOVE")
    assert c.request(5, "stop", "g").ok
    [cmd] = c.decide(6, up, {"s1": off("g"), "s2": rep(g=G.ONLINE), "s3": off("g")})
    assert (cmd.kind, cmd.event) == ("deactivate", "STOP")
    assert c.decide(7, up, {"s1": off("g"), "s2": off("g"), "s3": off("g")}) == []
    assert c.request(8, "stop", "g").code == E_STATE  # already stopped
    assert c.request(8, "start", "nope").message == "Group nope does not exist."


def test_rule7_online_failure_fails_over_then_gives_up_with_an_alert() -> None:
    c = coord([make_group("g", S2)])
    fail = ServerReport({"g": G.ONLINE_FAILURE}, failover=frozenset({"g"}))
    [cmd] = c.decide(1, S2, {"s1": fail, "s2": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s1", "FAILOVER")
    [cmd] = c.decide(2, S2, {"s1": off("g"), "s2": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("activate", "s2", "FAILOVER")
    assert "activation failed on s1" in cmd.reason
    [cmd] = c.decide(3, S2, {"s1": off("g"), "s2": fail})
    assert cmd.server == "s2" and cmd.kind == "deactivate"
    assert c.decide(4, S2, {"s1": off("g"), "s2": off("g")}) == []
    assert c.alerts and "failed to start on every server" in c.alerts[0]
    # an Online Failure without a failover request (final action) stays
    c2 = coord([make_group("g", S2)])
    assert c2.decide(1, S2, {"s1": rep(g=G.ONLINE_FAILURE), "s2": off("g")}) == []
    assert "until the operator stops it" in c2.reasons["g"]


def test_rule8_one_command_in_progress_resent_after_timeout() -> None:
    c = coord([make_group("g", S2)])
    reports = {"s1": off("g"), "s2": off("g")}
    assert len(c.decide(1, S2, reports)) == 1
    assert c.decide(2, S2, reports) == []
    assert c.decide(5, S2, reports) == []
    [cmd] = c.decide(6, S2, reports)
    assert "re-sent" in cmd.reason
    assert c.decide(7, S2, {"s1": rep(g=G.ONLINE), "s2": off("g")}) == []
    assert not c.pending


def test_only_the_master_commands_and_others_copy_its_intents() -> None:
    c = Coordinator("s2", S2, [make_group("g", S2)], 10, now=0.0)
    master = ServerReport({"g": G.OFFLINE}, intents={"synced": True, "groups": {
        "g": {"want": False, "stopped": True}}})
    assert c.decide(1, S2, {"s1": master, "s2": off("g")}) == []
    assert c.intents["g"].stopped and c.synced
    # the master leaves: s2 takes over, keeps the operator's stop
    assert c.decide(2, ["s2"], {"s2": off("g")}) == []


def test_request_validation() -> None:
    c = coord([make_group("g", ["s1"])])
    c.decide(1, ["s1"], {"s1": off("g")})
    assert c.request(2, "start", "g", "s2").code == E_BAD_ARGS
    c2 = coord([make_group("g", S2, start="manual")])
    c2.decide(1, ["s1"], {"s1": off("g")})
    assert c2.request(2, "start", "g", "s2").code == E_SERVER


def test_a_named_server_never_gets_a_second_absolute_exclusive_group() -> None:
    groups = [make_group("a1", S2, start="manual", exclusive="absolute"),
              make_group("a2", S2, start="manual", exclusive="absolute"),
              make_group("n1", S2, start="manual", exclusive="normal"),
              make_group("n2", S2, start="manual", exclusive="normal")]
    c = coord(groups)
    c.decide(1, S2, {"s1": rep(a1=G.ONLINE, n1=G.ONLINE, a2=G.OFFLINE, n2=G.OFFLINE),
                     "s2": off("a1", "a2", "n1", "n2")})
    a = c.request(2, "start", "a2", "s1")
    assert a.code == E_SERVER and "absolute-exclusive group a1" in a.message
    assert c.request(2, "start", "n2", "s1").ok  # normal: a preference the operator may override
    assert c.request(2, "start", "a2", "s2").ok  # the other server is free
    c.decide(3, S2, {"s1": rep(a1=G.ONLINE, n1=G.ONLINE, a2=G.OFFLINE, n2=G.ONLINE),
                     "s2": rep(a1=G.OFFLINE, a2=G.ONLINE, n1=G.OFFLINE, n2=G.OFFLINE)})
    a = c.request(4, "move", "a1", "s2")
    assert a.code == E_SERVER and "absolute-exclusive group a2" in a.message


def test_extra_active_copy_is_stopped_with_recover() -> None:
    c = coord([make_group("g", S2)])
    [cmd] = c.decide(1, S2, {"s1": rep(g=G.ONLINE_FAILURE), "s2": rep(g=G.ONLINE)})
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s1", "RECOVER")


# --- group runner ------------------------------------------------------------------------

def group(**act: object) -> object:
    recovery = {"retry": 1, "failover_threshold": 1, "final_action": "none"} | act
    return make_group("g", S2, resources=[
        {"name": "exec1", "depends": ["fip1"], "activation": recovery},
        {"name": "fip1"}, {"name": "disk1", "depends": ["fip1"],
                           "deactivation": {"retry": 1, "final_action": "none_continue"}}])


def drive(runner: GroupRunner, out: object, fail: dict[str, int]) -> list[tuple[str, str]]:
    steps = []
    while out.step is not None:
        s = out.step
        steps.append((s.op, s.resource))
        left = fail.get(s.resource, 0)
        fail[s.resource] = left - 1
        out = runner.on_result(s.resource, left <= 0, "boom" if left > 0 else "")
    drive.last = out  # type: ignore[attr-defined]
    return steps


def test_runner_activates_in_dependency_order_and_deactivates_in_reverse() -> None:
    r = GroupRunner(group())
    assert drive(r, r.activate("START"), {}) == [
        ("start", "fip1"), ("start", "exec1"), ("start", "disk1")]
    assert r.state == G.ONLINE
    assert drive(r, r.deactivate("STOP"), {}) == [
        ("stop", "disk1"), ("stop", "exec1"), ("stop", "fip1")]
    assert r.state == G.OFFLINE


def test_runner_retries_then_fails_over_after_stopping_what_it_started() -> None:
    r = GroupRunner(group())
    steps = drive(r, r.activate("START"), {"exec1": 9})
    assert steps == [("start", "fip1"), ("start", "exec1"), ("start", "exec1"),
                     ("stop", "exec1"), ("stop", "fip1")]
    assert drive.last.action.action == "failover"  # type: ignore[attr-defined]
    assert r.state == G.ONLINE_FAILURE and r.wants_failover
    drive(r, r.deactivate("FAILOVER"), {})
    assert r.state == G.OFFLINE and not r.wants_failover
    # threshold spent on this server: the final action (none) stops activation there
    steps = drive(r, r.activate("START"), {"exec1": 9})
    assert steps == [("start", "fip1"), ("start", "exec1"), ("start", "exec1")]
    act = drive.last.action  # type: ignore[attr-defined]
    assert act.action == "none" and "final action none" in act.reason
    assert r.state == G.ONLINE_FAILURE and not r.wants_failover


@pytest.mark.parametrize("final,state,started", [
    ("none_continue", G.ONLINE_FAILURE, ["fip1", "exec1", "disk1"]),
    ("stop_group", G.ONLINE_FAILURE, []),
    ("panic", G.ONLINE_FAILURE, ["fip1", "exec1"]),
])
def test_runner_final_actions(final: str, state: GroupState, started: list[str]) -> None:
    r = GroupRunner(group(retry=0, failover_threshold=0, final_action=final))
    drive(r, r.activate("START"), {"exec1": 1})
    assert r.state == state
    assert drive.last.action is None or drive.last.action.action == final  # type: ignore
    active = [n for n, s in r.resource_states().items() if s != R.OFFLINE]
    assert sorted(active) == sorted(started)


def test_runner_deactivation_failure_retries_then_final_action() -> None:
    r = GroupRunner(group())
    drive(r, r.activate("START"), {})
    steps = drive(r, r.deactivate("STOP"), {"disk1": 5})
    assert steps == [("stop", "disk1"), ("stop", "disk1"), ("stop", "exec1"), ("stop", "fip1")]
    assert r.state == G.OFFLINE_FAILURE
    assert r.resource_states()["disk1"] == R.OFFLINE_FAILURE


def test_runner_adopts_running_resources() -> None:
    r = GroupRunner(group())
    r.adopt({"fip1": True, "exec1": True, "disk1": True})
    assert r.state == G.ONLINE
    r2 = GroupRunner(group())
    out = r2.adopt({"fip1": True})
    assert r2.state == G.ONLINE_FAILURE and "only fip1" in out.lines[-1]
    r3 = GroupRunner(group())
    r3.adopt({})
    assert r3.state == G.OFFLINE
    assert r3.activate("START").step is not None
    assert "ignored" in r3.activate("START").lines[0]


def test_move_requested_while_activation_in_progress_is_not_lost() -> None:
    c = coord([make_group("g", S2)])
    [cmd] = c.decide(1, S2, {"s1": off("g"), "s2": off("g")})
    assert cmd.server == "s1"
    c.refresh({"s1": rep(g=G.ONLINE), "s2": off("g")})
    assert c.request(2, "move", "g", "s2").ok
    [cmd] = c.decide(3, S2, {"s1": rep(g=G.ONLINE), "s2": off("g")})
    assert (cmd.kind, cmd.server, cmd.event) == ("deactivate", "s1", "MOVE")


def test_a_group_found_active_before_the_sync_runs_on_and_is_wanted_after_it() -> None:
    """The cluster service of s1 restarted and re-adopted both groups while s2 is not heard yet:
    nothing is stopped on a guess, and at the sync both run on (the manual one too)."""
    c = coord([make_group("a", S2), make_group("m", S2, start="manual")])
    assert c.decide(0.5, ["s1"], {"s1": rep(a=G.ONLINE, m=G.ONLINE)}) == []
    assert not c.synced
    assert c.decide(1.0, S2, {"s1": rep(a=G.ONLINE, m=G.ONLINE), "s2": off("a", "m")}) == []
    assert c.synced and c.intents["a"].want and c.intents["m"].want
    assert c.reasons["m"] == "found active on s1 at start: every server is online"
    c.request(1.5, "stop", "m")
    cmds = c.decide(2.0, S2, {"s1": rep(a=G.ONLINE, m=G.ONLINE), "s2": off("a", "m")})
    assert [(x.kind, x.group) for x in cmds] == [("deactivate", "m")]  # the operator's stop
