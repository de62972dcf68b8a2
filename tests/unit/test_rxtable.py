"""The heartbeat receive table (native/hbrx.c): the same verdicts as the Python decoder, replay
per (sender, path), and the rule that tells news from quiet records."""

from __future__ import annotations

import hashlib
import hmac
import math
import os

import pytest
from clp._hbrx_native import ffi, lib

from clp.heartbeat import packet
from clp.heartbeat.packet import Drop, Heartbeat, PacketError
from clp.heartbeat.rxtable import ANY_SENDER, NEWS, QUIET, STALE, RxTable

KEY = b"k" * 32
CID = packet.cluster_id("cluster")
ME = 0


def hb(sender: int = 1, seq: int = 1, inc: int = 100, path: int = 0, heard: int = 0b11,
       offline: int = 0, sent: float = 1000.0, state: int = packet.SENDER_RUNNING) -> bytes:
    return packet.encode(KEY, Heartbeat(CID, sender, path, inc, seq, sent, state, heard, offline))


def table(n_paths: int = 2, members: int = 0b1111) -> RxTable:
    t = RxTable(KEY, CID, ME, 4, n_paths)
    for p in range(n_paths):
        t.set_members(p, [i for i in range(4) if members >> i & 1])
    return t


def take(t: RxTable, data: bytes, path: int = 0, expect: int = ANY_SENDER, at: float = 1.0,
         **kw):
    return t.ingest(path, data, expect, at, kw.pop("now_wall", 1000.0), **kw)


@pytest.mark.parametrize("key_len", [0, 1, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("msg_len", [0, 55, 56, 64, 119, 120, 300])
def test_the_mac_is_hmac_sha256(key_len: int, msg_len: int) -> None:
    key, msg = os.urandom(key_len), os.urandom(msg_len)
    out = ffi.new("unsigned char[32]")
    lib.hbrx_hmac_sha256(key, len(key), msg, len(msg), out)
    assert bytes(out) == hmac.new(key, msg, hashlib.sha256).digest()


@pytest.mark.parametrize("mangle", [
    lambda d: d[:-1], lambda d: d + b"x", lambda d: b"XXXX" + d[4:],
    lambda d: d[:4] + b"\x03" + d[5:], lambda d: d[:5] + b"\x02" + d[6:],
    lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], lambda d: d[:-1] + bytes([d[-1] ^ 1]),
    lambda d: b"", lambda d: d * 2,
])
def test_a_damaged_record_is_dropped_for_the_reason_the_python_decoder_gives(mangle) -> None:
    data = mangle(hb())
    with pytest.raises(PacketError) as e:
        packet.decode(KEY, data, CID)
    code, rec = take(table(), data)
    assert rec is not None and rec.drop is e.value.drop and code == rec.kind < 0
    assert rec.size == len(data)


def test_another_cluster_and_another_key() -> None:
    other = packet.encode(KEY, Heartbeat(packet.cluster_id("other"), 1, 0, 1, 1, 0.0, 0))
    assert take(table(), other)[1].drop is Drop.UNKNOWN_CLUSTER
    assert take(table(), packet.encode(b"x" * 32, Heartbeat(CID, 1, 0, 1, 1, 0.0, 0)))[1].drop \
        is Drop.BAD_MAC


@pytest.mark.parametrize("data, path, expect, members", [
    (hb(sender=ME), 0, ANY_SENDER, 0b1111),     # our own
    (hb(sender=2), 0, 1, 0b1111),               # not the expected sender (a LAN source, a slot)
    (hb(sender=1), 0, -1, 0b1111),              # from an address that is nobody's
    (hb(sender=3), 0, ANY_SENDER, 0b0011),      # not a member of the path
    (hb(sender=9), 0, ANY_SENDER, 0b1111),      # no such server
    (hb(sender=1, path=1), 0, ANY_SENDER, 0b1111),  # another path's record
])
def test_a_sender_that_may_not_send_on_the_path_is_unknown(data, path, expect, members) -> None:
    code, rec = take(table(members=members), data, path=path, expect=expect)
    assert rec.drop is Drop.UNKNOWN_SENDER


def test_replays_are_refused_per_sender_and_path() -> None:
    t = table()
    assert take(t, hb(seq=1))[0] == NEWS
    assert take(t, hb(seq=1))[1].drop is Drop.REPLAY          # the same record again
    assert take(t, hb(seq=3))[0] == NEWS
    assert take(t, hb(seq=2))[1].drop is Drop.REPLAY          # a reordered older one
    assert take(t, hb(seq=1, path=1), path=1)[0] == NEWS      # another path: its own sequence
    assert take(t, hb(seq=1, inc=200))[0] == NEWS             # the sender restarted
    assert take(t, hb(seq=99, inc=100))[1].drop is Drop.REPLAY  # its old incarnation is over
    assert take(t, hb(seq=1, inc=200), count_stale=False) == (STALE, None)  # a slot read again
    assert t.entry(1, 0)[:2] == (3, 1) and t.entry(1, 1)[:2] == (1, 1)


def test_a_record_relayed_late_is_dropped() -> None:
    t = table()
    assert take(t, hb(sent=990.0), now_wall=1000.0, max_late=5.0)[1].drop is Drop.LATE
    assert take(t, hb(sent=math.nan), now_wall=1000.0, max_late=5.0)[1].drop is Drop.LATE
    assert take(t, hb(sent=996.0), now_wall=1000.0, max_late=5.0)[0] == NEWS


def test_only_news_comes_back_once_the_entry_is_quiet() -> None:
    t = table()
    assert take(t, hb(seq=1), at=1.0)[0] == NEWS  # not quiet yet: the service has not said
    t.ack(1)  # (the service took it)
    t.set_quiet(1, 0, True)
    t.set_quiet(1, 1, True)
    assert take(t, hb(seq=2), at=1.1) == (QUIET, None)
    assert take(t, hb(seq=3), at=1.2) == (QUIET, None)
    assert take(t, hb(seq=3, path=1), path=1, at=1.25) == (QUIET, None)  # a copy, later
    pulled = t.pull()
    assert pulled == [(1.2, 1, 0, 1.2, 100, 3, 0b11, 0), (1.25, 1, 1, 1.2, 100, 3, 0b11, 0)]
    # (the newest of each path, with its first arrival on any path)
    assert t.pull() == []
    # what the service must look at comes at once (each taken before the next comes)
    def news(data: bytes) -> bool:
        code = take(t, data)[0]
        if code == NEWS:
            t.ack(1)
        return code == NEWS

    assert news(hb(seq=4, heard=0b1))                                 # heard changed
    assert not news(hb(seq=5, heard=0b1))
    assert news(hb(seq=6, heard=0b1, offline=0b100))                  # offline changed
    assert news(hb(seq=7, heard=0b1, offline=0b101))                  # marks us Offline
    assert news(hb(seq=8, heard=0b1, offline=0b101))                  # ... every time
    assert news(hb(seq=1, inc=101, heard=0b1, offline=0b101))         # restarted
    assert news(hb(seq=2, inc=101, heard=0b1, offline=0b100,
                   state=packet.SENDER_STOPPING))                     # state changed
    t.set_quiet(1, 0, False)                                        # the path went Error
    code, rec = take(t, hb(seq=3, inc=101, heard=0b1, offline=0b100,
                           state=packet.SENDER_STOPPING), at=2.0)
    assert code == NEWS and (rec.sender, rec.arrived, rec.heartbeat.seq) == (1, 2.0, 3)
    assert [q[5] for q in t.pull()] == [5]  # the quiet one before it; news is not pulled


def test_pulled_entries_come_oldest_first() -> None:
    t = table()
    for s in (1, 2, 3):
        t.set_quiet(s, 0, True)
        assert take(t, hb(sender=s, seq=1))[0] == NEWS  # the first is the newest: news
        t.ack(s)
    for s, at in ((3, 5.0), (1, 7.0), (2, 6.0)):
        assert take(t, hb(sender=s, seq=2), at=at)[0] == QUIET
    assert [q[1] for q in t.pull()] == [3, 2, 1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="33 servers"):
        RxTable(KEY, CID, 0, 33, 1)
    t = table()
    with pytest.raises(ValueError):
        t.set_quiet(4, 0, True)
    with pytest.raises(ValueError):
        take(t, hb(), path=2)
    with pytest.raises(ValueError, match="not an IP address"):
        t.add_lan_peer(0, 1, "server2")


def test_while_news_is_not_taken_every_record_of_the_sender_is_news() -> None:
    """A copy of the news on another path (or a later record) taken quietly before the news
    itself would make the news look old to liveness, and its bitmaps would never be read."""
    t = table()
    for path in (0, 1):
        t.set_quiet(1, path, True)
    assert take(t, hb(seq=1))[0] == NEWS  # the sender's first
    t.ack(1)
    assert take(t, hb(seq=2), at=1.1)[0] == QUIET
    assert take(t, hb(seq=2, path=1), path=1, at=1.15)[0] == QUIET
    # server 1 marks us Offline: seq 3 on path 0 is news; its copy on path 1 and seq 4 come
    # before the service took it: news too
    assert take(t, hb(seq=3, offline=0b1))[0] == NEWS
    assert take(t, hb(seq=3, offline=0b1, path=1), path=1)[0] == NEWS
    assert [q[5] for q in t.pull()] == [2, 2]  # what came before the news, on both paths
    t.ack(1)  # one of the two taken
    assert take(t, hb(seq=4, offline=0b100, path=1), path=1)[0] == NEWS
    t.ack(1)
    t.ack(1)
    assert take(t, hb(seq=5, offline=0b100))[0] == QUIET  # all taken, nothing changed
    t.ack(1)  # more acknowledgements than news: harmless
    assert take(t, hb(seq=6, offline=0b100))[0] == QUIET
    t.renew()  # after a suspend: the next record of each sender is news
    assert take(t, hb(seq=7, offline=0b100))[0] == NEWS
    t.ack(1)
    assert take(t, hb(seq=8, offline=0b100))[0] == QUIET
