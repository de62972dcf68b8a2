"""The group manager and its control operations against bad input and broken steps: malformed
peer reports, stale incarnations, bad commands and arguments, a step driver that raises."""

# ruff: noqa: F811 - the ``cluster`` fixture is imported from test_group_manager

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from clp.clusterd.marks import ServiceMarks
from clp.config.model import GroupConfig, Recovery
from clp.core.group_states import GroupState
from clp.core.group_types import E_BAD_ARGS, E_FAILED, E_SERVER, E_STATE
from clp.platform import power
from tests.unit.test_group_manager import (
    SERVERS,
    Cluster,
    RecordingRunner,
    boot,
    cluster,  # noqa: F401 - the fixture
    config,
    dummy,
)

G = GroupState


def test_malformed_peer_report_is_cleaned_logged_and_counted(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_malformed_report(cluster, caplog))


async def _malformed_report(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    m1 = cluster.add("server1")
    reply = m1.on_report("server2", {
        "incarnation": 3, "groups": {"failover1": "Bogus", "nope": "Online"},
        "resources": {"app2": "Online", "x": "Online", "fip1": 7}, "failover": "failover1",
        "leaving": "yes", "intents": {"synced": True, "reasons": ["x"], "groups": {
            "failover1": {"want": True, "server": "server9"},
            "manual1": {"want": True, "server": "server2", "event": "START", "failed": []}}}})
    assert reply["ok"]
    report = m1.peers["server2"].report
    assert report.groups == {"failover1": G.UNKNOWN}  # never Offline: holds the master back
    assert m1.peers["server2"].resources == {"app2": "Online"}
    assert report.failover == frozenset() and report.leaving is False
    assert list(report.intents["groups"]) == ["manual1"]
    assert m1.rejected["report.groups"] == 2 and m1.rejected["report.intents"] == 1
    assert "report from server2: intents: intent of group 'failover1' dropped: unknown server" \
        in caplog.text
    m1.on_report("server2", {"incarnation": 4, "groups": "garbage", "intents": "garbage"})
    assert m1.peers["server2"].report.groups == {"failover1": G.UNKNOWN, "manual1": G.UNKNOWN}
    m1.set_online(list(SERVERS))
    m1.tick(1.0)  # the coordinator copes with what is left


def test_stale_report_is_refused_until_the_sender_left(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_stale_report(cluster, caplog))


async def _stale_report(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    m1 = cluster.add("server1")
    m1.set_online(list(SERVERS))
    assert m1.on_report("server2", {"incarnation": 10, "groups": {}})["ok"]
    reply = m1.on_report("server2", {"incarnation": 9, "groups": {}})
    assert (reply["ok"], reply["code"]) == (False, E_STATE)
    assert m1.rejected["report.stale"] == 1 and "stale report from server2" in caplog.text
    m1.set_online(["server1"])  # server2 left (rebooted): a lower incarnation is fine again
    m1.set_online(list(SERVERS))
    assert m1.on_report("server2", {"incarnation": 1, "groups": {}})["ok"]


def test_command_with_a_bad_kind_says_so(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1 = cluster.mgr["server1"]
        m1.set_online(list(SERVERS))
        r = m1.on_command("server1", {"kind": "explode", "group": "failover1"})
        assert (r["code"], r["message"]) == (E_BAD_ARGS, "unknown command 'explode'")
        r = m1.on_command("server1", {"kind": "activate", "group": "nope"})
        assert r["code"] == E_BAD_ARGS and "no group nope" in r["message"]

    asyncio.run(go())


def test_refused_command_is_decided_again_at_the_next_tick(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m2 = cluster.mgr["server2"]
        await cluster.tick(2)
        seen = []

        def refuse(sender: str, args: dict[str, Any]) -> dict[str, Any]:
            seen.append(args["kind"])
            return {"ok": False, "code": E_STATE, "message": "not now"}

        m2.on_command = refuse  # type: ignore[method-assign]
        assert (await cluster.ops["server1"].group_start(
            {"group": "manual1", "server": "server2", "timeout": 0.5})).code != E_BAD_ARGS
        await cluster.tick(4)  # well under the 30 s re-send time
        assert seen[:2] == ["activate", "activate"]  # re-sent without waiting 30 s

    asyncio.run(go())


class BrokenRunner(RecordingRunner):
    def run(self, op, rc, ctx, timeout):  # type: ignore[no-untyped-def]
        if op == "start" and rc.name == "disk1":
            f: Future[Any] = Future()
            f.set_exception(RuntimeError("driver bug"))
            return f
        return super().run(op, rc, ctx, timeout)


def test_a_step_driver_error_fails_the_group_and_frees_it(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        m1 = cluster.add("server1")
        m1.runner.shutdown()
        m1.runner = BrokenRunner()
        m1.on_event = lambda: None  # no decision rounds: the coordinator would start it again
        await m1.adopt()
        await cluster.add("server2").adopt()
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE_FAILURE)
        runner = m1.runners["failover1"]
        assert not runner.busy and "driver bug" in caplog.text
        assert any(getattr(r, "alert", False) for r in caplog.records)
        m1.start("failover1", runner.deactivate("STOP"))
        await m1.wait_idle("failover1")
        assert runner.state == G.OFFLINE

    asyncio.run(go())


def test_group_start_refuses_while_a_server_was_never_heard_unless_forced(
        cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1, ops1 = cluster.mgr["server1"], cluster.ops["server1"]
        m1.set_online(["server1"], frozenset({"server2"}))
        m1.tick(cluster.now)  # the coordinator sees server1 alone
        r = await ops1.group_start({"group": "manual1", "timeout": 0.2})
        assert (r.code, r.message) == (E_SERVER, "Server server2 has not been heard from yet; "
                                                 "group manual1 may be active there. Use -f to "
                                                 "start it anyway.")
        await ops1.group_start({"group": "manual1", "timeout": 0.2, "force": True})
        assert m1.coord.intents["manual1"].want

    asyncio.run(go())


@pytest.mark.parametrize("timeout", [0, -1, 3601, "10", True, None])
def test_bad_timeouts_are_refused(cluster: Cluster, timeout: object) -> None:
    async def go() -> None:
        m1 = cluster.add("server1")
        ops = cluster.ops["server1"]
        for op in (ops.group_start, ops.group_stop, ops.rsc_start):
            r = await op({"group": "failover1", "resource": "fip1", "timeout": timeout})
            assert r.code == E_BAD_ARGS and "Invalid timeout" in r.message, r
        assert r.code == E_BAD_ARGS and m1.coord.intents["failover1"].want is False

    asyncio.run(go())


def test_rsc_and_power_requests_are_validated(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        ops = cluster.ops["server1"]
        r = await ops.local_rsc({"op": "explode", "resource": "fip1"})
        assert r.code == E_BAD_ARGS and "explode" in r.message
        r = await ops.local_rsc({"op": "start", "resource": "nope"})
        assert r.code == E_BAD_ARGS and "nope" in r.message
        r = await ops.local_rsc({"op": "start", "resource": "fip1"})
        assert r.code == E_BAD_ARGS and "not run by server1" in r.message
        cluster.mgr["server1"].set_online(list(SERVERS))
        r = ops.on_request("server1", {"op": "cluster_shutdown"})
        assert r["code"] == E_BAD_ARGS and "None" in r["message"]

    asyncio.run(go())


def test_group_start_ending_in_a_final_action_fails_at_once(tmp_path: Path) -> None:
    base = config(tmp_path)
    bad = replace(dummy("bad1", fail_start=True), activation=Recovery(0, 0, "none"))
    cfg = replace(base, groups=(GroupConfig("bad", SERVERS, "manual", "manual", "off", (bad,)),))
    c = Cluster(cfg, tmp_path)

    async def go() -> None:
        await boot(c)
        await c.tick(2)
        ticking = asyncio.ensure_future(c.tick(100))
        started = time.monotonic()
        r = await c.ops["server2"].group_start({"group": "bad", "timeout": 30})
        assert (r.code, r.message) == (E_FAILED, "Group bad failed to start on server2.")
        assert time.monotonic() - started < 10
        ticking.cancel()

    try:
        asyncio.run(go())
    finally:
        c.close()


def test_adopt_refuses_active_resources_when_told(cluster: Cluster) -> None:
    async def go() -> None:
        await boot(cluster)
        m1 = cluster.mgr["server1"]
        await cluster.until(lambda: m1.runners["failover1"].state == G.ONLINE)
        m1.runner.shutdown()
        again = cluster.add("server1")
        found: list[str] = []
        await again.adopt(found.extend)
        assert sorted(found) == ["disk1", "exec1", "fip1"] and not again.adopted
        assert again.runner.calls == []

    asyncio.run(go())


def test_incarnation_grows_on_every_start_and_the_tick_mark_is_kept(tmp_path: Path) -> None:
    marks = ServiceMarks(tmp_path / "v")
    a, b = marks.next_incarnation(), marks.next_incarnation()
    assert b == a + 1 and a > 1_000_000_000  # time_ns base of this boot
    assert marks.last_tick() is None
    marks.write_tick(12.5)
    assert ServiceMarks(tmp_path / "v").last_tick() == 12.5
    marks.clear_tick()
    assert marks.last_tick() is None


def test_incarnation_never_goes_below_the_kept_floor_when_the_clock_is_set_back(
        tmp_path: Path) -> None:
    floor = tmp_path / "work" / "incarnation"
    first = ServiceMarks(tmp_path / "boot1", floor).next_incarnation()
    assert int(floor.read_text()) == first
    floor.write_text(f"{first + 10**15}\n")  # as if an earlier boot ran with the clock 11 days on
    after_reboot = ServiceMarks(tmp_path / "boot2", floor)  # volatile storage is new
    a, b = after_reboot.next_incarnation(), after_reboot.next_incarnation()
    assert (a, b) == (first + 10**15 + 1, first + 10**15 + 2)
    assert int(floor.read_text()) == b
    floor.write_text("garbage")  # unreadable: the clock alone, and the floor is written again
    c = ServiceMarks(tmp_path / "boot3", floor).next_incarnation()
    assert c > first and int(floor.read_text()) == c


def test_a_panic_the_kernel_refuses_is_power_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(power, "PROC", tmp_path / "no-proc")  # nothing to write to
    assert tmp_path / "no-proc" == power.PROC
    monkeypatch.delenv("CLP_NO_POWER", raising=False)
    monkeypatch.delenv("CLPLAB", raising=False)
    monkeypatch.setattr(power.sys, "platform", "linux")
    with pytest.raises(power.PowerRefused, match="cannot write /proc/sysrq"):
        power.panic()

