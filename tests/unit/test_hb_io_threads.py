"""The I/O threads of diskhb and comhb: a bug in a round is a device failure, not the end of the
thread; close() never holds the event loop while a thread is stuck inside I/O."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest
import serial

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import HeartbeatPath, Outgoing, PathContext
from clp.heartbeat.comhb import ComHeartbeat
from clp.heartbeat.diskhb import DiskHeartbeat

SERVERS = ("server1", "server2")
INTERVAL = 0.02


def ctx() -> PathContext:
    return PathContext(b"k" * 32, "cluster", SERVERS, 0, incarnation=1, interval=INTERVAL,
                       on_heartbeat=lambda *a: None)


def disk_path() -> DiskHeartbeat:
    ic = Interconnect("diskhb1", "disk", 0, devices={s: "/dev/nothing" for s in SERVERS},
                      servers=SERVERS)
    return DiskHeartbeat(ctx(), ic, 0)


def com_path() -> ComHeartbeat:
    ic = Interconnect("comhb1", "com", 0, devices={s: "/dev/nothing" for s in SERVERS},
                      servers=SERVERS)
    return ComHeartbeat(ctx(), ic, 0)


async def rounds_until(p: HeartbeatPath, until: Callable[[], bool], limit: float = 2.0) -> bool:
    deadline = time.monotonic() + limit
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        p.send(Outgoing(seq, packet.SENDER_RUNNING, 0.0))
        await asyncio.sleep(INTERVAL)
        if until():
            return True
    return False


def opener(calls: list[int], error: BaseException | None = None,
           gate: threading.Event | None = None) -> Callable[..., object]:
    """A device/port open that counts its calls, waits at ``gate`` (a disk or port stuck in
    the kernel) and raises ``error``."""
    def open_(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if gate is not None:
            gate.wait(5)
        raise error or OSError(5, "Input/output error")

    return open_


@pytest.mark.parametrize("kind", ["disk", "com"])
def test_a_bug_in_a_round_is_a_device_failure_and_the_thread_goes_on(
        kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    bug = opener(calls, RuntimeError("boom"))
    if kind == "disk":
        p: DiskHeartbeat | ComHeartbeat = disk_path()
        monkeypatch.setattr(p, "_open", bug)
    else:
        p = com_path()
        monkeypatch.setattr(serial, "Serial", bug)

    async def main() -> None:
        await p.start()
        thread = p._thread
        try:
            assert await rounds_until(p, lambda: len(calls) >= 3)  # retried round after round
            assert thread is not None and thread.is_alive()
            assert p.local_error is not None and "RuntimeError: boom" in p.local_error
        finally:
            p.close()

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "unexpected error" in tracebacks[0].getMessage()


@pytest.mark.parametrize("kind", ["disk", "com"])
def test_close_does_not_wait_for_a_thread_stuck_in_io(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    gate = threading.Event()
    stuck = opener(calls, gate=gate)
    if kind == "disk":
        p: DiskHeartbeat | ComHeartbeat = disk_path()
        monkeypatch.setattr(p, "_open", stuck)
    else:
        p = com_path()
        monkeypatch.setattr(serial, "Serial", stuck)

    async def main() -> threading.Thread:
        await p.start()
        thread = p._thread
        assert thread is not None
        try:
            assert await rounds_until(p, lambda: len(calls) >= 1)
            t0 = time.monotonic()
            p.close()
            assert time.monotonic() - t0 < 1.0  # the loop was held 2 s per path before
            assert thread.is_alive()
            p.close()  # idempotent
        finally:
            gate.set()
        return thread

    thread = asyncio.run(main())
    thread.join(2)
    assert not thread.is_alive()  # it ends once its I/O returns
