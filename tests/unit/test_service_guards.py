"""Guards of the ``clusterpro`` service that need no network: a failing decision round, the
self-fence after a late restart, validation of peer operations."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clp.clusterd import service as service_mod
from clp.clusterd.marks import boottime
from clp.clusterd.service import ClusterService
from clp.core.group_types import E_BAD_ARGS
from clp.heartbeat import packet
from clp.paths import InstallRoot
from tests.unit.test_group_manager import config


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallRoot]:
    monkeypatch.setenv("CLP_SERVER", "server1")
    monkeypatch.setenv("CLP_NO_POWER", "1")
    root = InstallRoot(tmp_path / "root")
    root.ensure_dirs()
    yield root
    shutil.rmtree(root.volatile_dir, ignore_errors=True)


@pytest.fixture
def svc(root: InstallRoot, tmp_path: Path) -> Iterator[ClusterService]:
    s = ClusterService(root, config(tmp_path), b"k" * 32)
    yield s
    s.runner.shutdown()


def test_a_failing_decision_round_is_logged_and_the_loop_goes_on(
        svc: ClusterService, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(now: float) -> list:
        raise RuntimeError("bug in a round")

    monkeypatch.setattr(svc.groups, "tick", boom)
    svc._decide(1.0, always=True)
    assert "group decision round failed" in caplog.text and "bug in a round" in caplog.text
    assert any(getattr(r, "alert", False) for r in caplog.records)


def test_a_late_restart_with_active_resources_fences_without_touching_them(
        root: InstallRoot, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = ClusterService(root, config(tmp_path), b"k" * 32)
    assert not first._stale_at_start()
    first.marks.write_tick(boottime() - 60)  # the previous run died a minute ago
    again = ClusterService(root, config(tmp_path), b"k" * 32)
    assert again.incarnation > first.incarnation
    assert again._stale_at_start()
    again._fence_stale(["fip1"])
    assert "fip1 still active here" in caplog.text and "CLP_NO_POWER" in caplog.text
    assert again._stop.is_set() and again._exit_code == 1 and not again._stop_groups
    first.runner.shutdown()
    again.runner.shutdown()


def test_a_hang_past_the_end_of_a_timeout_ratio_fences_and_gates_every_resource(
        svc: ClusterService, caplog: pytest.LogCaptureFixture) -> None:
    base = svc.config.heartbeat_timeout
    svc.toratio._apply(10.0, time.time() - 1)  # the ratio ended during the hang, for peers too
    svc._last_round = boottime() - 3 * base  # the loop's last round, before the hang
    assert svc._resource_gate() == "server1 has fenced itself" and svc._fenced
    assert svc.membership.timeout == base and "was stopped for" in caplog.text
    assert svc._stop.is_set() and not svc._stop_groups


def test_a_short_pause_is_no_hang_and_a_restart_fences_on_the_configured_timeout(
        root: InstallRoot, tmp_path: Path) -> None:
    first = ClusterService(root, config(tmp_path), b"k" * 32)
    first._last_round = boottime() - first.config.heartbeat_timeout / 2
    assert not first._hung() and first._resource_gate() is None
    assert asyncio.run(first.toratio.op({"ratio": 10, "period": 3600})).ok  # kept here;
    # a reset made while this server was down would not have reached it
    first.marks.write_tick(boottime() - 2 * first.config.heartbeat_timeout)
    again = ClusterService(root, config(tmp_path), b"k" * 32)
    assert again.membership.ratio == 10 and again._stale_at_start()
    first.runner.shutdown()
    again.runner.shutdown()


def test_heartbeats_say_stopping_once_a_stop_is_requested(svc: ClusterService) -> None:
    assert svc.sender_state == packet.SENDER_RUNNING
    svc.request_stop(0)
    assert svc.sender_state == packet.SENDER_STOPPING


def test_peer_operations_are_validated(svc: ClusterService) -> None:
    async def go() -> None:
        r = await svc._on_peer("down", "server2", {"action": None})
        assert r["code"] == E_BAD_ARGS and "None" in r["message"]
        assert not svc._stop.is_set()
        r = await svc._on_peer("explode", "server2", {})
        assert r["code"] == E_BAD_ARGS and "explode" in r["message"]
        r = await svc._on_peer("rsc", "server2", {"op": "format", "resource": "fip1",
                                                   "timeout": 5})
        assert r["code"] == E_BAD_ARGS and "format" in r["message"]

    asyncio.run(go())


def test_power_actions_are_checked(svc: ClusterService) -> None:
    with pytest.raises(ValueError, match="unknown power action"):
        asyncio.run(svc._down("None"))
    assert service_mod.POWER_ACTIONS == ("shutdown", "reboot")
