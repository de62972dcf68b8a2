"""The group manager of clusterpro with dummy resources: two managers wired in-process (the peer
layer bypassed), a hand-fed membership, real resource runs in a private install root each."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from clp.clusterd.group_ops import GroupOps
from clp.clusterd.groups import GroupManager
from clp.config.model import (
    ClusterConfig,
    GroupConfig,
    NetworkPartition,
    Ports,
    Recovery,
    ResourceConfig,
    ServerConfig,
)
from clp.core.group_states import GroupState
from clp.core.group_types import E_BAD_ARGS, E_NO_MASTER, E_STATE
from clp.paths import InstallRoot
from clp.resources import registry
from clp.resources.runner import ResourceRunner

G = GroupState
SERVERS = ("server1", "server2")
log = logging.getLogger("test.groups")


def dummy(name: str, depends: tuple[str, ...] = (), **params: Any) -> ResourceConfig:
    kind = registry.get("dummy")
    full = {k: v["default"] for k, v in kind.schema["properties"].items() if "default" in v}
    return ResourceConfig(name, "dummy", MappingProxyType(full | params), depends,
                          Recovery(0, 1, "none"), Recovery(0, 0, "none"))


def config(tmp_path: Path) -> ClusterConfig:
    g1 = GroupConfig("failover1", SERVERS, "auto", "manual", "off", (
        dummy("exec1", ("fip1", "disk1")), dummy("fip1"), dummy("disk1", ("fip1",))))
    g2 = GroupConfig("manual1", SERVERS[::-1], "manual", "manual", "off", (dummy("app2"),))
    return ClusterConfig(
        name="cluster", servers=tuple(ServerConfig(s, i) for i, s in enumerate(SERVERS)),
        heartbeat_interval=1.0, heartbeat_timeout=5.0, ports=Ports(), interconnects=(),
        network_partition=NetworkPartition(), warnings=(), directory=tmp_path, raw={},
        groups=(g1, g2), sync_wait=0.0)


class RecordingRunner(ResourceRunner):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.calls: list[tuple[str, str]] = []

    def run(self, op, rc, ctx, timeout):  # type: ignore[no-untyped-def]
        if op != "probe":
            self.calls.append((op, rc.name))
        return super().run(op, rc, ctx, timeout)


class Cluster:
    """Managers by server name, messages delivered in-process."""

    def __init__(self, cfg: ClusterConfig, tmp_path: Path) -> None:
        self.cfg, self.tmp = cfg, tmp_path
        self.mgr: dict[str, GroupManager] = {}
        self.ops: dict[str, GroupOps] = {}
        self.online = list(SERVERS)
        self.now = 0.0

    def add(self, server: str) -> GroupManager:
        root = InstallRoot(self.tmp / server)
        root.ensure_dirs()

        async def send(to: str, op: str, args: dict[str, Any],
                       timeout: float = 2.0) -> dict[str, Any] | None:
            if to not in self.online or to not in self.mgr:
                return None
            if op == "report":
                return self.mgr[to].on_report(server, args)
            if op == "command":
                return self.mgr[to].on_command(server, args)
            if op == "request":
                return self.ops[to].on_request(server, args)
            return None

        async def down(action: str) -> None:
            return None

        m = GroupManager(self.cfg, server, root, RecordingRunner(), send, now=self.now)
        m.clock = lambda: self.now  # event rounds (GroupManager.changed) on the fake clock
        self.mgr[server] = m
        self.ops[server] = GroupOps(m, send, down)
        return m

    def close(self) -> None:
        """Stop the runners and remove what the managers left in volatile storage."""
        for m in self.mgr.values():
            m.runner.shutdown()
            shutil.rmtree(m.root.volatile_dir, ignore_errors=True)

    async def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.now += 1
            for s, m in self.mgr.items():
                if s in self.online:
                    m.set_online(self.online)
                    m.tick(self.now)
            await asyncio.sleep(0.05)

    async def until(self, cond, limit: int = 60) -> None:  # type: ignore[no-untyped-def]
        for _ in range(limit):
            if cond():
                return
            await self.tick()
        raise AssertionError("condition not reached")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(config(tmp_path), tmp_path)
    yield c
    c.close()


async def boot(c: Cluster) -> None:
    for s in SERVERS:
        await c.add(s).adopt()


def test_auto_group_starts_on_the_master_in_dependency_order(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1 = cluster.mgr["server1"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        assert m1.runner.calls == [("start", "fip1"), ("start", "disk1"), ("start", "exec1")]
        assert cluster.mgr["server2"].runners["failover1"].state == G.OFFLINE
        assert cluster.mgr["server2"].runners["manual1"].state == G.OFFLINE  # manual
        await cluster.tick(2)
        snap = cluster.mgr["server2"].group_snapshot()["failover1"]
        assert snap["state"] == "Online" and snap["server"] == "server1"
        assert snap["resources"]["exec1"] == {"type": "dummy", "state": "Online"}
        assert snap["policy"] == ["server1", "server2"] and "start" in snap["reason"]
        await m1.stop_all()
        assert m1.runner.calls[3:] == [("stop", "exec1"), ("stop", "disk1"), ("stop", "fip1")]

    asyncio.run(go())


def test_restart_re_adopts_running_resources_without_starting_them(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1 = cluster.mgr["server1"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        m1.runner.shutdown()
        again = cluster.add("server1")  # clusterpro restarted: same install root
        assert again.local_report().groups["failover1"] == G.UNKNOWN
        await again.adopt()
        assert again.runners["failover1"].state == G.ONLINE
        await cluster.tick(3)
        assert again.runner.calls == []
        # partially running (one resource gone): Online Failure, nothing started or stopped
        (cluster.tmp / "server1" / "work" / "dummy" / "failover1.exec1").unlink()
        third = cluster.add("server1")
        await third.adopt()
        assert third.runners["failover1"].state == G.ONLINE_FAILURE
        await cluster.tick(3)
        assert third.runner.calls == []
        assert cluster.mgr["server2"].runners["failover1"].state == G.OFFLINE

    asyncio.run(go())


def test_a_command_from_a_non_master_is_refused(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m2 = cluster.mgr["server2"]
        m2.set_online(list(SERVERS))
        reply = m2.on_command("server2", {"kind": "activate", "group": "failover1",
                                          "event": "START", "reason": "rogue"})
        assert not reply["ok"] and reply["code"] == E_NO_MASTER
        assert "server1" in reply["message"]
        await asyncio.sleep(0.1)
        assert m2.runners["failover1"].state == G.OFFLINE and m2.runner.calls == []

    asyncio.run(go())


def test_a_move_start_and_stop_follow_their_events_without_a_heartbeat_round(
        cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1, m2 = cluster.mgr["server1"], cluster.mgr["server2"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        await cluster.tick(2)  # every server knows where it runs; from here no tick at all
        ops2 = cluster.ops["server2"]
        r = await ops2.group_move({"group": "failover1", "timeout": 5})
        assert r.ok, r  # stop on server1, report, start on server2: each step an event
        assert m2.runners["failover1"].state == G.ONLINE
        assert m1.runners["failover1"].state == G.OFFLINE
        r = await cluster.ops["server1"].group_start({"group": "manual1", "timeout": 5})
        assert r.ok and m1.runners["manual1"].state == G.ONLINE
        r = await ops2.group_stop({"group": "failover1", "timeout": 5})
        assert r.ok and m2.runners["failover1"].state == G.OFFLINE

    asyncio.run(go())


def test_unchanged_reports_start_no_decision_round(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1 = cluster.mgr["server1"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        await cluster.tick(2)
        rounds = []
        m1.on_event = lambda: rounds.append(1)
        payload = cluster.mgr["server2"].report_payload()
        m1.on_report("server2", payload)
        m1.on_report("server2", payload)
        await asyncio.sleep(0.01)
        assert rounds == []  # the periodic report said nothing new
        m1.on_report("server2", {**payload, "leaving": True})
        m1.on_report("server2", {**payload})
        await asyncio.sleep(0.01)
        assert rounds == [1]  # two changes in a row: one round

    asyncio.run(go())


def test_operator_ops_from_any_server(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        ticking = asyncio.ensure_future(cluster.tick(200))
        m1, m2 = cluster.mgr["server1"], cluster.mgr["server2"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        # the master's own view, which a move is decided on, follows its runner a little later
        await cluster.until(lambda: m1.coord.owner("failover1") == "server1"
                            and m1.coord.where("failover1")["server1"] == G.ONLINE)
        ops2 = cluster.ops["server2"]  # not the master: forwarded to server1
        r = await ops2.group_move({"group": "failover1", "timeout": 20})
        assert r.ok, r
        assert m2.runners["failover1"].state == G.ONLINE
        assert m1.runners["failover1"].state == G.OFFLINE
        r = await ops2.group_start({"group": "failover1"})
        assert (r.ok, r.code) == (False, E_STATE)
        r = await ops2.group_start({"group": "nope"})
        assert (r.code, r.message) == (E_BAD_ARGS, "Group nope does not exist.")
        # as the product: a group starts on the server that handles the request
        r = await cluster.ops["server1"].group_start({"group": "manual1", "timeout": 20})
        assert r.ok and m1.runners["manual1"].state == G.ONLINE  # not its policy's first
        # a stop handled by another server than the group's is refused without force
        r = await ops2.group_stop({"group": "manual1", "timeout": 20})
        assert (r.ok, r.code) == (False, E_STATE) and "use -f" in r.message
        r = await ops2.group_stop({"group": "manual1", "timeout": 20, "force": True})
        assert r.ok and m1.runners["manual1"].state == G.OFFLINE
        r = await cluster.ops["server1"].group_start({"group": "manual1", "server": "server2",
                                                      "timeout": 20})
        assert r.ok and m2.runners["manual1"].state == G.ONLINE  # -a server2
        # without a group: what runs on the handling server (both, on server2)
        r = await ops2.group_stop({"timeout": 20})
        assert r.ok, r
        assert m2.runners["failover1"].state == G.OFFLINE
        assert m2.runners["manual1"].state == G.OFFLINE
        ticking.cancel()

    asyncio.run(go())
