"""Monitor recovery under a simulated cluster: hypothesis draws monitors, faults and crashes.

The model is :mod:`tests.sim.monitorsim` on top of :mod:`tests.sim.groupsim`: 2-3 servers, 1-2
groups, 1-3 monitors with random policies (timing always or active on a resource; recovery target
a resource, a group, All Groups or LocalServer; thresholds 0-2; final action none, stop_group or
stop_cluster_service; retry 0-2; reset_after 0 or some ticks), monitor faults (persistent,
intermittent, or cured by a reactivation), crashes and restarts, operator requests. Checked at
every tick: a group is never active on two servers and no failover is commanded while it is
Online somewhere (:meth:`GroupSim.check`); a monitor never takes more steps in one counter epoch
than its chain has, and its counters are reset only after ``reset_after`` ticks of Normal. Then:

- when every monitor fails for good on every server, recovery ends: after a bounded time no step
  starts and no group command is issued, no step is left half done, and a monitor that stays in
  error after its final action has said that its recovery is over (EV_RECOVERY_OVER);
- when every fault heals and every server is back, every auto-start group that neither an
  operator nor a ``stop_group`` final action stopped is Online on exactly one server, and no
  group was given up ("failed to start on every server": a monitor's failover whose only
  destination left while the group stopped once did that).

Then hand-written scenarios, with the regressions the simulation found in the core.
Derandomized with fixed example counts, so CI always runs the same cases.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clp.config.model import GroupConfig
from clp.core.group_states import GroupState
from clp.core.monitor_recovery import EV_RECOVERY_OVER, MonitorState, Outcome, Policy
from tests.sim.groupsim import make_group
from tests.sim.monitorsim import Fault, MonitorSim, MonitorSpec

G = GroupState
HORIZON = 60  # events happen before this tick
BOUND = 240  # recovery is over this long after the last event
QUIET = 80  # and stays over: nothing starts in the last QUIET ticks
SETTINGS = settings(deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def groups_of(draw: st.DrawFn, servers: list[str]) -> list[GroupConfig]:
    groups = []
    for i in range(1, draw(st.integers(1, 2)) + 1):
        policy = draw(st.permutations(servers))[:draw(st.integers(1, len(servers)))]
        resources: list[dict[str, object]] = [{"name": f"g{i}r1"}]
        if draw(st.booleans()):
            resources.append({"name": f"g{i}r2",
                              "depends": [f"g{i}r1"] if draw(st.booleans()) else []})
        groups.append(make_group(
            f"g{i}", list(policy), start=draw(st.sampled_from(["auto", "auto", "manual"])),
            failback=draw(st.sampled_from(["manual", "auto"])),
            exclusive=draw(st.sampled_from(["off", "off", "normal"])), resources=resources))
    return groups


@st.composite
def monitors_of(draw: st.DrawFn, groups: list[GroupConfig]) -> list[MonitorSpec]:
    out = []
    for i in range(1, draw(st.integers(1, 3)) + 1):
        g = draw(st.sampled_from(groups))
        rsc = draw(st.sampled_from([r.name for r in g.resources]))
        kind = draw(st.sampled_from(["resource", "group", "all_groups", "local_server"]))
        target = {"resource": rsc, "group": g.name, "all_groups": "All Groups",
                  "local_server": "LocalServer"}[kind]
        policy = Policy(
            f"m{i}", retry=draw(st.integers(0, 2)), no_retry_on_timeout=draw(st.booleans()),
            no_recovery_on_timeout=draw(st.booleans()), target=target, kind=kind,
            reactivation_threshold=draw(st.integers(0, 2)),
            failover_threshold=draw(st.integers(0, 2)),
            final_action=draw(st.sampled_from(["none", "stop_group", "stop_cluster_service"])),
            reset_after=draw(st.sampled_from([0.0, 0.0, 4.0, 12.0])),
            script_count=draw(st.integers(0, 1)),
            script_before=frozenset(draw(st.sets(st.sampled_from(
                ["reactivation", "failover", "final_action"]), max_size=2))))
        timing = draw(st.sampled_from(["always", "active"]))
        out.append(MonitorSpec(policy, timing, rsc if timing == "active" else None))
    return out


def faults_of(draw: st.DrawFn, servers: list[str], monitors: list[MonitorSpec]) -> list[Fault]:
    out = []
    for _ in range(draw(st.integers(1, 5))):
        start = draw(st.integers(1, HORIZON))
        pattern = draw(st.one_of(st.just(()), st.lists(st.booleans(), min_size=1, max_size=4)))
        out.append(Fault(
            draw(st.sampled_from(servers)), draw(st.sampled_from(monitors)).name, start,
            draw(st.one_of(st.none(), st.integers(start + 1, start + 40))),
            (True, *pattern),
            draw(st.sampled_from([Outcome.FAILED, Outcome.FAILED, Outcome.TIMEOUT])),
            draw(st.booleans())))
    return out


@st.composite
def worlds(draw: st.DrawFn, everywhere: bool = False) -> dict[str, object]:
    servers = [f"s{i}" for i in range(1, draw(st.integers(2, 3)) + 1)]
    groups = draw(groups_of(servers))
    monitors = draw(monitors_of(groups))
    if everywhere:  # every monitor fails for good on every server, from one tick on
        at = draw(st.integers(1, HORIZON))
        faults = [Fault(s, m.name, at) for s in servers for m in monitors]
    else:
        faults = faults_of(draw, servers, monitors)
    events = []
    for _ in range(draw(st.integers(0, 4))):
        kinds = ["crash", "restart"] if everywhere else \
            ["crash", "restart", "start", "stop", "move"]
        g = draw(st.sampled_from(groups))
        events.append((draw(st.integers(1, HORIZON)), draw(st.sampled_from(kinds)),
                       draw(st.sampled_from(servers)), g.name,
                       draw(st.one_of(st.none(), st.sampled_from(servers)))))
    events.sort(key=lambda e: e[0])
    return {"servers": servers, "groups": groups, "monitors": monitors, "faults": faults,
            "events": events, "seed": draw(st.integers(0, 2**16)),
            "restrain": draw(st.booleans())}


def play(w: dict[str, object]) -> tuple[MonitorSim, set[str]]:
    """Run the world's events up to HORIZON; the groups an operator stopped."""
    servers, groups = w["servers"], w["groups"]
    sim = MonitorSim(servers, groups, w["monitors"], sync_wait=6, seed=w["seed"],
                     restrain_alone=w["restrain"])
    sim.faults = list(w["faults"])
    for s in servers:
        sim.boot(s)
    stopped: set[str] = set()
    for at, kind, server, group, target in w["events"]:
        sim.run_until(at)
        if kind == "crash":
            sim.crash(server)
        elif kind == "restart":
            sim.boot(server)
        else:
            ok, _ = sim.request(kind, group, target)
            if kind == "stop" and ok:
                stopped.add(group)
    sim.run_until(HORIZON)
    return sim, stopped


def describe(sim: MonitorSim) -> str:
    lines = [f"{r.t:4} cmd   {r.cmd.kind} {r.cmd.group} on {r.cmd.server} {r.cmd.event}"
             for r in sim.log]
    lines += [f"{s.t:4} step  {s.server} {s.monitor} {s.action} {s.target}" for s in sim.steps]
    lines += [f"{t:4} done  {s} {m} {a} ok={ok} {why}" for t, s, m, a, ok, why in sim.ended]
    return "\n".join(sorted(lines, key=lambda x: int(x.split()[0])))


@settings(SETTINGS, max_examples=250)
@given(worlds())
def test_monitor_recovery_keeps_the_invariants(w: dict[str, object]) -> None:
    sim, stopped = play(w)
    sim.heal_all()
    while set(sim.nodes) != set(w["servers"]):  # every server back (a step may still crash one)
        sim.run_until(sim.t + sim.detect + 1)
        for s in w["servers"]:
            sim.boot(s)
    sim.run_until(sim.t + 60)
    assert set(sim.nodes) == set(w["servers"])
    assert not [a for _, a in sim.alerts if "failed to start on every server" in a]
    for g in w["groups"]:
        if g.start == "auto" and g.name not in stopped | sim.stopped_by_monitor:
            assert len(sim.online_on(g.name)) == 1, (
                f"{g.name} Online on {sim.online_on(g.name)}; reason "
                f"{sim.nodes['s1'].coord.reasons[g.name]!r}\n{describe(sim)}\n{sim.alerts}")


@settings(SETTINGS, max_examples=250)
@given(worlds(everywhere=True))
def test_recovery_ends_when_monitors_fail_everywhere(w: dict[str, object]) -> None:
    sim, _ = play(w)
    sim.run_until(HORIZON + BOUND)
    late = sim.t - QUIET
    assert not [s for s in sim.steps if s.t > late], describe(sim)
    assert not [r for r in sim.log if r.t > late], describe(sim)
    assert not sim.recovering(), describe(sim)
    for server, watches in sim.watches.items():
        for name, watch in watches.items():
            tracker = watch.tracker
            if tracker.state == MonitorState.ERROR and watch.final_done_at is not None \
                    and watch.last_open:
                assert any(t >= watch.final_at for t in watch.over_at), (
                    f"{name} on {server} stays in error after its final action, no "
                    f"EV_RECOVERY_OVER\n{describe(sim)}")


# --- hand-written scenarios --------------------------------------------------------------


def two_servers(monitor: MonitorSpec, failing: list[str], resources: list[dict[str, object]]
                | None = None) -> MonitorSim:
    sim = MonitorSim(["s1", "s2"], [make_group("g1", ["s1", "s2"], resources=resources)],
                     [monitor], sync_wait=5)
    for s in ("s1", "s2"):
        sim.boot(s)
    sim.faults = [Fault(s, monitor.name, 20) for s in failing]
    sim.run_until(200)
    return sim


def activations(sim: MonitorSim) -> list[tuple[str, str]]:
    return [(r.cmd.server, r.cmd.event) for r in sim.log if r.cmd.kind == "activate"]


def test_group_monitor_failing_on_both_servers_moves_there_and_back_then_final_action() -> None:
    """Counters are per server: s1 fails the group over to s2, s2 (its own count at 0) back to
    s1, whose failover is used up: its final action, and nothing more."""
    mon = MonitorSpec(Policy("gmon", retry=1, target="g1", kind="group",
                             reactivation_threshold=0, failover_threshold=1,
                             final_action="stop_group"))
    sim = two_servers(mon, ["s1", "s2"])
    assert activations(sim) == [("s1", "START"), ("s2", "FAILOVER"), ("s1", "FAILOVER")]
    assert [(s.server, s.action) for s in sim.steps] == [
        ("s1", "failover"), ("s2", "failover"), ("s1", "stop_group")]
    assert sim.online_on("g1") == [] and sim.stopped_by_monitor == {"g1"}
    assert max(r.t for r in sim.log) < 60, describe(sim)


def test_group_monitor_with_no_final_action_says_recovery_is_over() -> None:
    mon = MonitorSpec(Policy("gmon", retry=1, target="g1", kind="group",
                             reactivation_threshold=0, failover_threshold=1))
    sim = two_servers(mon, ["s1", "s2"])
    assert sim.online_on("g1") == ["s1"]
    over = [x for x in sim.lines if x.event == EV_RECOVERY_OVER]
    assert [x.server for x in over] == ["s1"], describe(sim)
    assert sim.watches["s1"]["gmon"].tracker.state == MonitorState.ERROR
    assert max(r.t for r in sim.log) < 60, describe(sim)


PIDW = MonitorSpec(Policy("pidw1", retry=0, target="app", kind="resource",
                          reactivation_threshold=3, failover_threshold=1), "active", "app")
IP_APP = [{"name": "ip"}, {"name": "app", "depends": ["ip"]}]


def test_pidw_like_monitor_restarts_three_times_then_fails_over() -> None:
    sim = two_servers(PIDW, ["s1"], IP_APP)
    assert [(s.server, s.action) for s in sim.steps] == [("s1", "restart")] * 3 + [
        ("s1", "failover")]
    assert activations(sim) == [("s1", "START"), ("s2", "FAILOVER")]
    assert sim.online_on("g1") == ["s2"]
    assert sim.watches["s2"]["pidw1"].tracker.state == MonitorState.NORMAL
    assert [(a, ok) for _, _, _, a, ok, _ in sim.ended] == [("restart", True)] * 3 + [
        ("failover", True)]


def test_pidw_like_monitor_failing_everywhere_ends_with_no_operation() -> None:
    sim = two_servers(PIDW, ["s1", "s2"], IP_APP)
    assert [(s.server, s.action) for s in sim.steps] == (
        [("s1", "restart")] * 3 + [("s1", "failover")]
        + [("s2", "restart")] * 3 + [("s2", "failover")])
    assert activations(sim) == [("s1", "START"), ("s2", "FAILOVER"), ("s1", "FAILOVER")]
    assert sim.online_on("g1") == ["s1"]
    over = [x for x in sim.lines if x.event == EV_RECOVERY_OVER]
    assert [x.server for x in over] == ["s1"], describe(sim)
    assert sim.watches["s1"]["pidw1"].tracker.counts == {
        "recovery": 0, "restart": 3, "failover": 1, "final": 1}


def test_a_process_that_died_once_is_restarted_and_the_counters_reset() -> None:
    mon = MonitorSpec(Policy("pidw1", retry=0, target="app", kind="resource",
                             reactivation_threshold=1, failover_threshold=1, reset_after=5),
                      "active", "app")
    sim = MonitorSim(["s1", "s2"], [make_group("g1", ["s1", "s2"], resources=IP_APP)], [mon],
                     sync_wait=5)
    for s in ("s1", "s2"):
        sim.boot(s)
    sim.faults = [Fault("s1", "pidw1", 20, curable=True), Fault("s1", "pidw1", 60, curable=True)]
    sim.run_until(120)
    # each death: one reactivation (the counters were back to 0 in between), never a failover
    assert [(s.t > 40, s.action) for s in sim.steps] == [(False, "restart"), (True, "restart")]
    assert sim.online_on("g1") == ["s1"]
    assert sim.watches["s1"]["pidw1"].tracker.counts["restart"] == 0


# --- regressions the simulation found in the core ----------------------------------------

GMON = MonitorSpec(Policy("gmon", retry=0, target="g1", kind="group", failover_threshold=1))


def test_a_monitor_failover_whose_destination_crashes_does_not_stop_the_group() -> None:
    """Once the only other server left, the group went back to the server that asked."""
    sim = MonitorSim(["s1", "s2"], [make_group("g1", ["s1", "s2"])], [GMON], sync_wait=5)
    for s in ("s1", "s2"):
        sim.boot(s)
    sim.faults = [Fault("s1", "gmon", 20, 40)]  # s1 asks to fail g1 over at 20
    sim.run_until(21)
    sim.crash("s2")  # after the request; g1 stops on s1 and has nowhere to go
    sim.run_until(30)
    sim.boot("s2")
    sim.run_until(100)  # the fault healed at 40, both servers up: g1 should run somewhere
    assert len(sim.online_on("g1")) == 1, f"{describe(sim)}\n{sim.alerts}"


def test_an_activation_failover_is_not_explained_by_an_old_monitor_error() -> None:
    sim = MonitorSim(["s1", "s2"], [make_group("g1", ["s1", "s2"])], [GMON], sync_wait=5)
    for s in ("s1", "s2"):
        sim.boot(s)
    sim.faults = [Fault("s1", "gmon", 20, 25)]  # g1 fails over to s2 at 20
    sim.run_until(40)
    sim.fail.add(("s1", "g1-r1"))  # then its start fails on s1
    assert sim.request("move", "g1", "s1")[0]
    sim.run_until(80)
    late = [r.cmd for r in sim.log if r.t > 45 and r.cmd.event == "FAILOVER"
            and r.cmd.kind == "deactivate"]
    assert late and "monitor" not in late[0].reason, late
