"""A hung heartbeat disk is reported by the event loop side, which never waits for the I/O; a read
long after the previous one (a stall) delivers nothing."""

from __future__ import annotations

import time

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.diskhb import DiskHeartbeat, _Outcome
from clp.heartbeat.disklayout import BLOCK
from clp.heartbeat.packet import Heartbeat

SERVERS = ("server1", "server2")
KEY = b"k" * 32


def path(interval: float = 0.1, got: list[int] | None = None) -> DiskHeartbeat:
    def on_heartbeat(sender: int, index: int, hb: Heartbeat, arrived: float, first: float
                     ) -> None:
        if got is not None:
            got.append(hb.seq)

    ctx = PathContext(KEY, "cluster", SERVERS, 0, incarnation=1, interval=interval,
                      on_heartbeat=on_heartbeat)
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


def read(seq: int, finished: float, seconds: float = 0.001) -> _Outcome:
    """What one round reads: blank header and our slot, server2's record ``seq`` in its slot."""
    record = packet.encode(KEY, Heartbeat(packet.cluster_id("cluster"), 1, 0, 1, seq, 0.0,
                                          packet.SENDER_RUNNING))
    data = bytes(2 * BLOCK) + record + bytes(BLOCK - len(record))
    return _Outcome(data, seconds, finished=finished)


def test_a_slot_that_changed_between_reads_one_interval_apart_is_delivered() -> None:
    got: list[int] = []
    p = path(0.1, got)
    for n, seq in enumerate((1, 2, 3, 3, 4)):
        p._on_outcome(read(seq, 100.0 + 0.1 * n))
    assert got == [2, 3, 4]  # the first read is a baseline; an unchanged slot is not news


def test_a_dead_peers_last_record_after_a_disk_stall_is_not_delivered() -> None:
    got: list[int] = []
    p = path(0.1, got)
    p._on_outcome(read(1, 100.0))
    p._on_outcome(read(2, 100.1))
    # server2 writes seq 3 and dies; our next round hangs 40 s (queue_if_no_path) and returns
    p._on_outcome(read(3, 140.1, seconds=40.0))
    p._on_outcome(read(3, 140.2))
    assert got == [2]
    p._on_outcome(read(4, 140.3))  # a live writer is delivered again one interval later
    assert got == [2, 4]


def test_reads_far_apart_without_a_slow_round_are_a_baseline_too() -> None:
    got: list[int] = []
    p = path(0.1, got)
    p._on_outcome(read(1, 100.0))
    p._on_outcome(read(2, 100.1))
    p._on_outcome(read(3, 101.5))  # 1.4 s after the previous read (no send for a while)
    p._on_outcome(read(4, 101.6))
    assert got == [2, 4]


def test_a_loop_late_by_a_few_intervals_but_under_a_second_still_delivers() -> None:
    got: list[int] = []
    p = path(0.1, got)
    p._on_outcome(read(1, 100.0))
    p._on_outcome(read(2, 100.1))
    p._on_outcome(read(3, 100.5))  # 4 intervals of 0.1 s, but under MIN_STALL: still fresh
    assert got == [2, 3]


def test_an_io_error_makes_the_next_read_a_baseline() -> None:
    got: list[int] = []
    p = path(0.1, got)
    p._on_outcome(read(1, 100.0))
    p._on_outcome(_Outcome(None, 0.001, "EIO", io_error=True, finished=100.1))
    p._on_outcome(read(2, 100.2))
    p._on_outcome(read(3, 100.3))
    assert got == [3] and p.local_error is None
