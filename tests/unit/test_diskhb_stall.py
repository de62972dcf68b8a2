"""A hung heartbeat disk is reported by the event loop side, which never waits for the I/O."""

from __future__ import annotations

import time

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.diskhb import DiskHeartbeat, _Outcome

SERVERS = ("server1", "server2")


def path(interval: float = 0.1) -> DiskHeartbeat:
    ctx = PathContext(b"k" * 32, "cluster", SERVERS, 0, incarnation=1, interval=interval,
                      on_heartbeat=lambda *a: None)
    ic = Interconnect("diskhb1", "disk", 0, devices={s: "/dev/nothing" for s in SERVERS},
                      servers=SERVERS)
    return DiskHeartbeat(ctx, ic, 0)


def test_io_that_does_not_return_becomes_a_local_error_until_it_returns() -> None:
    p = path()
    assert p.stall == 1.0  # at least a second, else STALL_ROUNDS intervals
    p._round_started = time.monotonic() - 0.5  # the I/O thread is inside a round
    p.send(Outgoing(1, packet.SENDER_RUNNING, 0.0))
    assert p.local_error is None
    p._round_started = time.monotonic() - 3.0
    p.send(Outgoing(2, packet.SENDER_RUNNING, 0.0))
    assert p.local_error is not None and "I/O has not returned for 3." in p.local_error
    p._on_outcome(_Outcome(bytes(3 * 4096), 3.0))  # the round returns at last
    assert p.local_error is None


def test_send_keeps_only_the_latest_record() -> None:
    p = path()
    for seq in range(1, 100):
        p.send(Outgoing(seq, packet.SENDER_RUNNING, 0.0))
    assert p._pending == p.ctx.encode(Outgoing(99, packet.SENDER_RUNNING, 0.0), 0)
    p.close()  # never started: nothing to join
