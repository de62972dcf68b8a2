"""Failover groups under a simulated cluster: hypothesis draws fault schedules, invariants hold.

The model is :mod:`tests.sim.groupsim`: 2-4 servers, 1-3 groups with random policies and
attributes, crashes and restarts, operator start/stop/move, activation failures. Checked at every
tick (:meth:`GroupSim.check`): a group is never active on two servers; no failover while the group
is Online anywhere; every command has a one-line reason. At the end, after every server has been
up and quiet for a while: every auto-start group that the operator never stopped, whose starts
never failed and that is not absolutely exclusive, is Online on exactly one server.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.groupsim import GroupSim, make_group

HORIZON = 80
QUIET = 60


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[str], list, list, int]:
    n = draw(st.integers(2, 4))
    servers = [f"s{i}" for i in range(1, n + 1)]
    groups = []
    for i in range(1, draw(st.integers(1, 3)) + 1):
        policy = draw(st.permutations(servers))[:draw(st.integers(1, n))]
        resources = [{"name": f"g{i}r{j}",
                      "activation": {"retry": draw(st.integers(0, 1)),
                                     "failover_threshold": draw(st.integers(0, 2)),
                                     "final_action": draw(st.sampled_from(
                                         ["none", "none_continue", "stop_group"]))}}
                     for j in range(1, draw(st.integers(1, 3)) + 1)]
        groups.append(make_group(
            f"g{i}", list(policy), start=draw(st.sampled_from(["auto", "auto", "manual"])),
            failback=draw(st.sampled_from(["manual", "auto"])),
            exclusive=draw(st.sampled_from(["off", "normal", "absolute"])),
            resources=resources))
    events = []
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(1, HORIZON))
        kind = draw(st.sampled_from(["crash", "restart", "start", "stop", "move", "fail"]))
        server = draw(st.sampled_from(servers))
        group = draw(st.sampled_from(groups))
        target = draw(st.one_of(st.none(), st.sampled_from(servers)))
        events.append((at, kind, server, group.name, target,
                       draw(st.sampled_from([r.name for r in group.resources]))))
    events.sort(key=lambda e: e[0])
    return servers, groups, events, draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_groups_keep_their_invariants(cluster: tuple) -> None:
    servers, groups, events, seed = cluster
    sim = GroupSim(servers, groups, sync_wait=8, seed=seed)
    for s in servers:
        sim.boot(s)
    stopped: set[str] = set()
    failed: set[str] = set()
    for at, kind, server, group, target, resource in events:
        sim.run_until(at)
        if kind == "crash":
            sim.crash(server)
        elif kind == "restart":
            sim.boot(server)
        elif kind == "fail":
            sim.fail.add((server, resource))
            failed.add(group)
        else:
            ok, _ = sim.request(kind, group, target)
            if kind == "stop" and ok:
                stopped.add(group)
    sim.run_until(HORIZON)
    for s in servers:  # every server back, every fault healed
        sim.run_until(sim.t + sim.detect + 1)
        sim.boot(s)
    sim.run_until(sim.t + QUIET)
    for g in groups:
        if (g.start == "auto" and g.name not in stopped | failed and g.exclusive != "absolute"
                and not any(a[2] != "failover" for a in sim.actions)):
            assert len(sim.online_on(g.name)) == 1, (
                f"{g.name} Online on {sim.online_on(g.name)}; reason "
                f"{sim.nodes[servers[0]].coord.reasons[g.name]!r}")
