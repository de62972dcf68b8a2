"""FrameScanner: heartbeat records found in a serial byte stream, whatever the chunking/noise."""

from __future__ import annotations

import random

from clp.heartbeat import packet
from clp.heartbeat.comframe import FrameScanner, authentic
from clp.heartbeat.packet import MAGIC, PACKET_SIZE, Heartbeat

KEY = b"k" * 32
CID = packet.cluster_id("cluster")


def record(seq: int, key: bytes = KEY, cid: int = CID) -> bytes:
    return packet.encode(key, Heartbeat(cid, 1, 0, 7, seq, 1.0e9 + seq, packet.SENDER_RUNNING))


def scanner() -> FrameScanner:
    return FrameScanner(authentic(KEY, CID))


def seqs(candidates: list) -> list[int]:
    return [packet.decode(KEY, c.frame, CID).seq for c in candidates if c.good]


def test_back_to_back_records_in_one_chunk() -> None:
    s = scanner()
    got = s.feed(record(1) + record(2) + record(3))
    assert seqs(got) == [1, 2, 3]
    assert (s.frames, s.resyncs, s.skipped, s.pending) == (3, 0, 0, 0)


def test_records_split_byte_by_byte() -> None:
    s = scanner()
    got = []
    for b in record(1) + record(2):
        got += s.feed(bytes([b]))
    assert seqs(got) == [1, 2]
    assert s.skipped == 0


def test_random_chunking_with_noise_between_records() -> None:
    rng = random.Random(5)
    stream = bytearray()
    for seq in range(1, 51):
        stream += bytes(rng.choice(b"\x00\xffCLP\x55abc") for _ in range(rng.randrange(0, 40)))
        stream += record(seq)
    s, got, i = scanner(), [], 0
    while i < len(stream):
        n = rng.randrange(1, 200)
        got += s.feed(bytes(stream[i:i + n]))
        i += n
    assert seqs(got) == list(range(1, 51))
    assert s.skipped == len(stream) - 50 * PACKET_SIZE


def test_magic_split_across_chunks_is_kept() -> None:
    s = scanner()
    data = b"noise" + record(1)
    assert s.feed(data[:7]) == []  # b"noise" + b"CL": the "CL" may start a record
    assert s.pending == 2
    assert seqs(s.feed(data[7:])) == [1]
    assert s.skipped == 5


def test_corrupted_record_followed_by_good_one() -> None:
    bad = bytearray(record(1))
    bad[50] ^= 0x01
    s = scanner()
    got = s.feed(bytes(bad) + record(2))
    assert [c.good for c in got] == [False, True]
    assert seqs(got) == [2]
    assert s.resyncs == 1
    assert s.skipped == PACKET_SIZE


def test_torn_record_then_good_one_inside_its_window() -> None:
    """The tail of a record cut mid-write, then a new record: the candidate starting at the torn
    one's magic spans into the good one; the good one is still found."""
    torn = record(1)[:40]
    s = scanner()
    got = s.feed(torn + record(2))
    assert seqs(got) == [2]
    assert s.resyncs == 1
    assert s.skipped == 40


def test_magic_inside_garbage_before_a_record() -> None:
    s = scanner()
    got = s.feed(b"xx" + MAGIC + b"junk" + record(3))
    assert seqs(got) == [3]
    assert s.resyncs == 1


def test_record_of_another_key_is_a_bad_candidate() -> None:
    s = scanner()
    got = s.feed(record(1, key=b"other" * 7) + record(2))
    assert [c.good for c in got] == [False, True]


def test_record_of_another_cluster_is_whole_for_the_receiver_to_drop() -> None:
    """Authentic but not ours: consumed as one frame, the Receiver counts it as unknown_cluster."""
    s = scanner()
    got = s.feed(record(1, cid=CID ^ 1) + record(2))
    assert [c.good for c in got] == [True, True]
    assert s.resyncs == 0


def test_partial_record_waits_for_the_rest() -> None:
    s = scanner()
    r = record(1)
    assert s.feed(r[:95]) == []
    assert s.pending == 95
    assert seqs(s.feed(r[95:])) == [1]


def test_reset_forgets_a_partial_record() -> None:
    s = scanner()
    s.feed(record(1)[:50])
    s.reset()
    assert s.pending == 0
    assert s.skipped == 50
    assert seqs(s.feed(record(2))) == [2]


def test_long_noise_does_not_grow_the_buffer() -> None:
    s = scanner()
    s.feed(bytes(range(256)) * 400 + b"CLP")
    assert s.pending == 3
    assert s.skipped == 256 * 400
