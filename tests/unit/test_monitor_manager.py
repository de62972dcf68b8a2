"""The monitor manager of clusterpro with dummy resources and dummy monitors: two servers wired
in-process (tests.unit.test_group_manager's Cluster), real checks in worker threads, real
resource runs; the recovery chain carried out through the group runners and the master."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from clp.clusterd.monitor_actions import StepRunner
from clp.clusterd.monitors import MonitorManager, summary
from clp.config.model import ClusterConfig, MonitorConfig, MonitorRecovery
from clp.core.group_states import GroupState
from clp.monitors import registry
from clp.monitors.base import Check, Health
from tests.unit.test_group_manager import SERVERS, Cluster, config

G = GroupState


def dummy_monitor(name: str, fail_file: Path, target: str = "failover1", kind: str = "group",
                  timing: str = "always", resource: str | None = None, **recovery: Any
                  ) -> MonitorConfig:
    cls = registry.get("dummy")
    params = {k: v["default"] for k, v in cls.schema["properties"].items()}
    params["fail_file"] = str(fail_file)
    rec = {"reactivation_threshold": 1, "failover_threshold": 1, "final_action": "none",
           "reset_after": 0.0, **recovery}
    return MonitorConfig(name, "dummy", resource, MappingProxyType(params), interval=0.1,
                         timeout=5, retry=0, timing=timing, servers=SERVERS,
                         recovery=MonitorRecovery(target, kind, **rec))


class MonitoredCluster(Cluster):
    def __init__(self, cfg: ClusterConfig, tmp: Path) -> None:
        super().__init__(cfg, tmp)
        self.mon: dict[str, MonitorManager] = {}
        self.stops: list[tuple[str, str]] = []

    def add(self, server: str) -> Any:
        m = super().add(server)
        steps = StepRunner(m, self.ops[server], lambda a, s=server: self.stops.append((s, a)),
                           self.cfg.name)
        mon = MonitorManager(self.cfg, server, m.root, m, steps, lambda: 1.0, m.report_now)
        m.monitor_states = mon.local_states
        m.on_change = lambda mon=mon, m=m: (mon.reconcile(), m.report_now())
        self.mon[server] = mon
        return m

    def close(self) -> None:
        for mon in self.mon.values():
            mon.close()
        super().close()


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[MonitoredCluster] = []

    def build(*monitors: MonitorConfig) -> MonitoredCluster:
        cfg = dataclasses.replace(config(tmp_path), monitors=monitors)
        c = MonitoredCluster(cfg, tmp_path)
        made.append(c)
        return c

    yield build
    for c in made:
        c.close()


async def boot(c: MonitoredCluster) -> None:
    for s in SERVERS:
        await c.add(s).adopt()
        c.mon[s].start()
    await c.until(lambda: c.mgr["server1"].runners["failover1"].state == G.ONLINE)


def state(c: MonitoredCluster, server: str, monitor: str) -> str:
    return c.mon[server].monitors[monitor].tracker.state.value


def test_restart_then_failover_then_the_final_action(make: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    c = make(dummy_monitor("mon1", broken))

    async def go() -> None:
        await boot(c)
        m1, m2 = c.mgr["server1"], c.mgr["server2"]
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        starts = m1.runner.calls.count(("start", "exec1"))
        broken.touch()  # fails on both servers (one file for both)
        await c.until(lambda: m2.runners["failover1"].state == G.ONLINE, limit=200)
        # server1: one restart (stop and start again) then the failover
        assert m1.runner.calls.count(("start", "exec1")) == starts + 1
        assert m1.runners["failover1"].state == G.OFFLINE
        counts = c.mon["server1"].monitors["mon1"].tracker.counts
        assert (counts["restart"], counts["failover"]) == (1, 1)
        # server2: its own restart, its own failover back, then server1's final action (none)
        await c.until(lambda: c.mon["server1"].monitors["mon1"].tracker.counts["final"] == 1,
                      limit=300)
        await c.tick(30)  # and nothing more happens: no ping-pong
        calls = (len(m1.runner.calls), len(m2.runner.calls))
        await c.tick(30)
        assert (len(m1.runner.calls), len(m2.runner.calls)) == calls
        where = [s for s in SERVERS if c.mgr[s].runners["failover1"].state == G.ONLINE]
        assert len(where) == 1
        assert summary({s: state(c, s, "mon1") for s in SERVERS}) == "Error"

    asyncio.run(go())


def test_active_monitor_stops_before_its_resource_and_a_move_raises_nothing(
        make: Any, tmp_path: Path) -> None:
    c = make(dummy_monitor("exec1w", tmp_path / "never", target="exec1", kind="resource",
                           timing="active", resource="exec1"))

    async def go() -> None:
        await boot(c)
        await c.until(lambda: state(c, "server1", "exec1w") == "Normal")
        assert state(c, "server2", "exec1w") == "Offline"
        ticking = asyncio.ensure_future(c.tick(400))
        r = await c.ops["server1"].group_move({"group": "failover1", "timeout": 20})
        assert r.ok, r
        await c.until(lambda: state(c, "server2", "exec1w") == "Normal")
        ticking.cancel()
        assert state(c, "server1", "exec1w") == "Offline"
        assert all(m.tracker.counts == {"recovery": 0, "restart": 0, "failover": 0, "final": 0}
                   for mon in c.mon.values() for m in mon.monitors.values())

    asyncio.run(go())


def test_resource_reactivation_restarts_it_and_what_depends_on_it(make: Any,
                                                                   tmp_path: Path) -> None:
    broken = tmp_path / "disk-broken"
    c = make(dummy_monitor("diskw1", broken, target="disk1", kind="resource",
                           reactivation_threshold=1, failover_threshold=0))

    async def go() -> None:
        await boot(c)
        m1 = c.mgr["server1"]
        await c.until(lambda: state(c, "server1", "diskw1") == "Normal")
        before = len(m1.runner.calls)
        broken.touch()
        await c.until(lambda: c.mon["server1"].monitors["diskw1"].tracker.counts["restart"]
                      == 1 and m1.runners["failover1"].state == G.ONLINE
                      and not m1.runners["failover1"].busy)
        broken.unlink()
        # exec1 depends on disk1: it stops first and starts after; fip1 is left alone
        assert m1.runner.calls[before:] == [("stop", "exec1"), ("stop", "disk1"),
                                            ("start", "disk1"), ("start", "exec1")]

    asyncio.run(go())


def test_operator_controls_suspend_counters_and_pseudo_failure(make: Any,
                                                                tmp_path: Path) -> None:
    c = make(dummy_monitor("mon1", tmp_path / "never", reactivation_threshold=0,
                           failover_threshold=0, final_action="stop_group"))

    async def go() -> None:
        await boot(c)
        mon = c.mon["server1"]
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        r = await mon.op_control({"action": "suspend", "monitors": ["mon1"]})
        assert r.ok and r.data["states"] == {"mon1": "Suspend"}
        r = await mon.op_control({"action": "resume"})
        assert r.ok and r.data["changed"] == ["mon1"]
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        r = await mon.op_control({"action": "suspend", "monitors": ["nope"]})
        assert (r.ok, r.code) == (False, 5) and "not registered" in r.message
        r = await mon.op_pseudo({"action": "enable", "monitors": ["mon1"]})
        assert r.ok
        # the pseudo failure runs the real chain: here the final action stops the group
        await c.until(lambda: all(c.mgr[s].runners["failover1"].state == G.OFFLINE
                                  for s in SERVERS) and state(c, "server1", "mon1") == "Error")
        r = await mon.op_counters({"action": "show", "monitors": ["mon1"]})
        assert r.data["monitors"]["mon1"]["final_action"] == {"count": 1,
                                                               "action": "stop_group"}
        await mon.op_pseudo({"action": "disable"})
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        r = await mon.op_counters({"action": "reset"})
        assert r.data["monitors"]["mon1"]["final_action"]["count"] == 0
        r = await mon.op_pseudo({"action": "enable"})
        assert not r.ok and r.code == 2  # -e needs a monitor

    asyncio.run(go())


def test_a_stopping_service_stops_every_monitor(make: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    c = make(dummy_monitor("mon1", broken))

    async def go() -> None:
        await boot(c)
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        c.mon["server1"].stop_all("the cluster service is stopping")
        broken.touch()
        await c.tick(20)
        assert state(c, "server1", "mon1") == "Offline"
        assert c.mon["server1"].monitors["mon1"].tracker.counts["restart"] == 0
        assert c.mgr["server1"].runners["failover1"].state == G.ONLINE

    asyncio.run(go())


def test_overall_state_leaves_out_servers_that_are_not_online(make: Any,
                                                              tmp_path: Path) -> None:
    c = make(dummy_monitor("mon1", tmp_path / "never"))

    async def go() -> None:
        await boot(c)
        await c.until(lambda: state(c, "server1", "mon1") == "Normal")
        mon = c.mon["server1"]
        down = mon.snapshot({})["mon1"]  # server2 is not online: its row says Unknown ...
        assert down["servers"] == {"server1": "Normal", "server2": "Unknown"}
        assert down["state"] == "Normal"  # ... and the monitor is not Unknown for it
        up = mon.snapshot({"server2": {"mon1": "Error"}})["mon1"]
        assert (up["servers"]["server2"], up["state"]) == ("Error", "Error")

    asyncio.run(go())


@pytest.mark.parametrize("outcome, health, reason", [
    (lambda: Check(Health.ERROR, "found"), Health.ERROR, "found"),
    (lambda: None, Health.UNKNOWN, "dummy.check returned None"),
    (lambda: 1 / 0, Health.UNKNOWN, "check of monitor m1 failed: ZeroDivisionError"),
])
def test_a_check_on_the_loop_is_taken_as_the_runner_takes_a_threads(outcome, health,
                                                                    reason) -> None:
    """MonitorType.inline: a result, a wrong return and a bug each end as from a worker."""
    check = SimpleNamespace(name="dummy", check=outcome)
    m = SimpleNamespace(check=check, cfg=SimpleNamespace(name="m1"))
    result = MonitorManager._check_inline(m)  # type: ignore[arg-type]
    assert result.health is health and result.reason.startswith(reason)
    assert result.elapsed >= 0
