"""clplab chaos's schedule (clp.lab.chaos.plan): the same seed gives the same schedule, every
fault is repaired after it (a kill by its monitor), never two faults on one server at once nor
two clock steps, and bad arguments are refused; and how the watcher judges a doubled resource
(clp.lab.chaos.judge)."""

from __future__ import annotations

import pytest

from clp.lab.chaos import KINDS, REPAIR, judge, plan

SERVERS = ["server1", "server2", "server3"]
LINKS = ["pub", "ic1", "diskhb", "comhb", "disk1"]


def test_a_seed_replays_its_schedule_and_another_does_not() -> None:
    assert plan(11, SERVERS, 12, 60.0, LINKS) == plan(11, SERVERS, 12, 60.0, LINKS)
    assert plan(11, SERVERS, 12, 60.0, LINKS) != plan(12, SERVERS, 12, 60.0, LINKS)


@pytest.mark.parametrize("seed", range(40))
def test_every_fault_is_repaired_and_a_server_has_one_fault_at_a_time(seed: int) -> None:
    steps = plan(seed, SERVERS, 8, 30.0, LINKS, targets=["failover1/exec1"])
    assert all(0.0 <= s.at <= 30.0 for s in steps) and steps == sorted(steps, key=lambda s: s.at)
    faults = [s for s in steps if s.action in KINDS]
    kills = [f for f in faults if f.action == "kill"]
    assert 0 < len(faults) <= 8 and len(steps) == 2 * len(faults) - len(kills)
    windows: dict[str, list[tuple[float, float]]] = {}
    for f in faults:
        if f.action == "kill":
            assert f.args[1] == "failover1/exec1" and f.args[0] in SERVERS
            continue
        repair = next(s for s in steps if s.action == REPAIR[f.action] and s.args == f.args
                      and s.at >= f.at)
        who = {"partition": "network", "clock": "clock"}.get(f.action, f.args[0])
        assert not any(f.at < b and a < repair.at for a, b in windows.get(who, [])), steps
        windows.setdefault(who, []).append((f.at, repair.at))
        if f.action == "unplug":
            assert f.args[1] in LINKS
        if f.action == "clock":
            assert 2.0 <= abs(float(f.args[0])) <= 30.0
        if f.action == "partition":
            sides = [set(side.split(",")) for side in f.args]
            assert sides[0] and not sides[0] & sides[1] and "router" in sides[1]
            assert sides[0] | sides[1] == {*SERVERS, "router"}


def test_no_kill_without_a_watched_process() -> None:
    assert all(s.action != "kill" for seed in range(20)
               for s in plan(seed, SERVERS, 8, 30.0, LINKS, kinds=("kill", "crash")))


def test_a_doubled_resource_is_allowed_only_with_a_hung_holder_and_no_watchdog() -> None:
    assert judge(["server1", "server2"], set(), set()) == (False, "")
    allowed, said = judge(["server1", "server2"], {"server1"}, set())
    assert allowed and said.startswith(", server1 hung on a hung server without a kernel")
    assert judge(["server1", "server2"], {"server1"}, {"server1"}) == (False, " (server1 hung)")
    assert judge(["server1", "server2"], {"server3"}, set()) == (False, "")


def test_only_the_kinds_asked_and_no_router_when_the_lab_has_none() -> None:
    steps = plan(5, SERVERS, 10, 60.0, LINKS, kinds=("partition",), router=False)
    assert {s.action for s in steps} == {"partition", "heal"}
    assert all("router" not in s.args[1] for s in steps)
    assert {s.action for s in plan(5, SERVERS, 6, 60.0, kinds=("crash",))} == {"crash",
                                                                                "restart"}


@pytest.mark.parametrize("kw", [dict(faults=-1), dict(span=0.0), dict(servers=[]),
                                dict(kinds=("flood",)), dict(kinds=())])
def test_bad_arguments_are_refused(kw) -> None:
    args = {"seed": 1, "servers": SERVERS, "faults": 3, "span": 10.0, **kw}
    with pytest.raises(ValueError):
        plan(**args)
