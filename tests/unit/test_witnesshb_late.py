"""witnesshb refuses a record sent too long ago, whatever age the witness claims for it: a
dishonest witness relaying every record late gains a bounded false liveness, not k intervals."""

from __future__ import annotations

import logging
import math

import pytest

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import PathContext
from clp.heartbeat.packet import Heartbeat
from clp.heartbeat.witnesshb import CLOCK_SKEW, WitnessHeartbeat

LATE = packet.Drop.LATE.value

KEY = b"w" * 32
SERVERS = ("server1", "server2")
INTERVAL = 1.0
T0 = 1_700_000_000.0  # wall clock of the first record


def path(key: bytes = KEY) -> tuple[WitnessHeartbeat, list[Heartbeat]]:
    """server1's witness path; what it delivers goes to the list."""
    got: list[Heartbeat] = []
    ctx = PathContext(key, "cluster", SERVERS, 0, incarnation=1, interval=INTERVAL,
                      on_heartbeat=lambda s, p, hb, *_: got.append(hb))
    ic = Interconnect("witnesshb1", "witness", 0, target="127.0.0.1:29005", servers=SERVERS)
    return WitnessHeartbeat(ctx, ic, 0), got


def record(seq: int, sent: float, key: bytes = KEY) -> bytes:
    """server2's record number ``seq``, sent at ``sent`` by its clock."""
    return packet.encode(key, Heartbeat(packet.cluster_id("cluster"), 1, 0, 1, seq, sent,
                                        packet.SENDER_RUNNING))


def test_a_record_relayed_late_is_a_late_drop_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    p, got = path()
    limit = 2 * INTERVAL + CLOCK_SKEW
    with caplog.at_level(logging.WARNING, "clp.witnesshb"):
        p._accept([(1, 0, record(1, T0 - limit - 0.01))], now=T0)  # the witness says age 0
        p._accept([(1, 0, record(1, T0 - limit - 0.01))], now=T0 + 1)  # same: not news again
        p._accept([(1, 0, record(2, T0 - limit - 0.5))], now=T0 + 1)
    assert got == [] and p.receiver.drops == {LATE: 2} and p.receiver.received == 0
    late = [r for r in caplog.records if "relayed late" in r.getMessage()]
    assert len(late) == 1 and "seq 1" in late[0].getMessage()
    assert "sent 3.010 s ago" in late[0].getMessage() and late[0].alert  # clocks apart?
    p._accept([(1, 0, record(3, T0 + 1 - limit))], now=T0 + 1)  # just within: accepted
    assert [hb.seq for hb in got] == [3] and p.counters()["drops"] == {LATE: 2}


def test_a_late_record_does_not_block_the_next_fresh_one() -> None:
    p, got = path()
    p._accept([(1, 0, record(5, T0 - 10))], now=T0)
    p._accept([(1, 0, record(4, T0 - 0.1))], now=T0)  # older seq, but never accepted before
    assert [hb.seq for hb in got] == [4]


def test_a_record_that_does_not_verify_keeps_its_own_drop_reason() -> None:
    p, got = path()
    p._accept([(1, 0, record(1, T0 - 100, key=b"x" * 32))], now=T0)
    p._accept([(1, 0, record(2, math.nan))], now=T0)  # signed, but no time at all: late
    assert got == [] and p.receiver.drops == {"bad_mac": 1, LATE: 1}


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 10, 1000])
def test_a_witness_relaying_every_record_k_rounds_late_gains_a_bounded_liveness(k: int) -> None:
    """server2 sends a record every interval, then dies; the witness hands each record out k
    rounds later and claims it has just received it. Whatever k, server1 hears nothing sent
    longer than 2 intervals + CLOCK_SKEW ago, so the false liveness after the death is bounded."""
    p, got = path()
    last = 100  # server2 sends records 1..100 at T0 + seq - 1, then dies
    heard_at: list[float] = []
    for r in range(last + k + 20):
        now = T0 + r * INTERVAL
        seq = r - k + 1  # the record the witness relays this round
        if 1 <= seq <= last:
            before = len(got)
            p._accept([(1, 0, record(seq, T0 + seq - 1))], now=now)
            heard_at += [now] * (len(got) - before)
    died = T0 + last - 1
    false_liveness = max(heard_at) - died if heard_at else 0.0
    assert false_liveness <= 2 * INTERVAL + CLOCK_SKEW
    if k * INTERVAL <= 2 * INTERVAL + CLOCK_SKEW:
        assert len(got) == last  # an honest or slightly slow witness loses nothing
    else:
        assert got == [] and p.receiver.drops[LATE] == last  # too late: the path is silent
