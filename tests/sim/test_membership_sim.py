"""Membership under a simulated network: hypothesis draws fault schedules, invariants hold.

The model (see :mod:`tests.sim.netsim`): 2-5 servers, 1-3 heartbeat paths (each joining all
servers or a subset), one heartbeat per interval per path and peer, with per-path random loss,
random delay below a bound (so reordering), path cuts and server cuts (partitions) for a while,
crashes (a server stops sending on every path, for a while or for good) and suspends of an
observer. Every server's Membership is checked after each event and at every quarter interval:
(1) no server is Offline while a path to it delivered within the timeout, (2) a server whose paths
all went quiet at t is Offline by t + timeout + interval, (3) a path is Error only if it delivered
nothing within the timeout, (4) every decision has a one-line reason. Derandomized, so CI always
runs the same 200 examples.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.netsim import Scenario, Sim, Window

INTERVAL = 1.0
HORIZON = 30.0
STEP = INTERVAL / 4


@st.composite
def windows(draw: st.DrawFn, names: list[str], max_size: int,
            forever: bool = False) -> list[Window]:
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        who = draw(st.sampled_from(names))
        start = draw(st.integers(0, int(HORIZON / STEP))) * STEP
        length = draw(st.integers(1, 60)) * STEP
        if forever and draw(st.booleans()):
            length = float("inf")
        out.append(Window(who, start, start + length))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(2, 5))
    servers = [f"s{i}" for i in range(1, n + 1)]
    paths: dict[str, frozenset[str]] = {}
    for i in range(1, draw(st.integers(1, 3)) + 1):
        subset = frozenset(s for s in servers if draw(st.booleans()))
        paths[f"hb{i}"] = subset if i > 1 and len(subset) >= 2 else frozenset(servers)
    names = list(paths)
    return Scenario(
        servers=servers, paths=paths, interval=INTERVAL, horizon=HORIZON,
        timeout=draw(st.sampled_from([1.5, 2.0, 3.0, 5.0])),
        loss={p: draw(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.7])) for p in names},
        max_delay=draw(st.sampled_from([0.0, 0.05, 0.4, 0.95])) * INTERVAL,
        path_cuts=draw(windows(names, 3)),
        server_cuts=draw(windows(servers, 2)),
        crashes=draw(windows(servers, 2, forever=True)),
        suspends=draw(windows(servers, 1)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_membership_invariants_hold_under_any_fault_schedule(sc: Scenario):
    Sim(sc).run()  # the invariants are asserted as it runs


# --- named scenarios: the simulation is not vacuous -----------------------------------------

def three(**kw) -> Sim:
    servers = ["s1", "s2", "s3"]
    return Sim(Scenario(servers=servers,
                        paths={"hb1": frozenset(servers), "hb2": frozenset(servers)},
                        horizon=20.0, timeout=3.0, max_delay=0.2, **kw))


def test_a_healthy_cluster_only_brings_everybody_up():
    sim = three().run()
    for obs in ("s1", "s2", "s3"):
        assert sorted(sim.kinds(obs)) == ["server_up", "server_up"]
        assert sim.members[obs].snapshot()["servers"]["s2"]["state"] == "Online"


def test_a_crash_is_one_server_down_within_timeout_plus_interval():
    sim = three(crashes=[Window("s3", 5.0)]).run()
    for obs in ("s1", "s2"):
        assert sim.kinds(obs, "s3") == ["server_up", "server_down"]
        (t_down,) = [t for t, o, d in sim.decisions if o == obs and d.kind == "server_down"]
        last = max(t for (o, s, _), t in sim.delivered.items() if o == obs and s == "s3")
        assert 3.0 < t_down - last <= 3.0 + 1.0


def test_a_cut_path_is_path_lost_then_restored_and_nobody_goes_down():
    sim = three(path_cuts=[Window("hb2", 5.0, 12.0)]).run()
    for obs in ("s1", "s2", "s3"):
        assert "server_down" not in sim.kinds(obs)
        assert sim.kinds(obs).count("path_lost") == 2
        assert sim.kinds(obs).count("path_restored") == 2


def test_a_partitioned_server_goes_down_and_comes_back():
    sim = three(server_cuts=[Window("s1", 5.0, 12.0)]).run()
    assert sim.kinds("s2", "s1") == ["server_up", "server_down", "server_up"]
    assert sim.kinds("s1", "s2") == ["server_up", "server_down", "server_up"]
    assert sim.members["s2"].path_state("s1", "hb2").value == "Normal"


def test_a_long_suspend_is_no_false_down():
    sim = three(suspends=[Window("s1", 4.0, 15.0)]).run()
    assert sorted(sim.kinds("s1")) == ["server_up", "server_up"]


def test_after_resume_a_silent_path_is_lost_only_a_timeout_later():
    sim = three(suspends=[Window("s1", 4.0, 10.0)], path_cuts=[Window("hb2", 8.0)]).run()
    lost = [t for t, o, d in sim.decisions if o == "s1" and d.kind == "path_lost"]
    assert len(lost) == 2 and all(13.0 < t <= 14.0 for t in lost), lost
    assert "server_down" not in sim.kinds("s1")
