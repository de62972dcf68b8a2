"""The witness's record format and memory, with a stepped clock; host:port splitting."""

from __future__ import annotations

import pytest

from clp.heartbeat import packet
from clp.heartbeat.packet import Heartbeat
from clp.net.hostport import split_host_port
from clp.witness.store import Store, StoreFull
from clp.witness.wire import ENTRY_SIZE, WireError, check_record, decode_entries, encode_entries

KEY = b"k" * 32


def record(cluster: str = "c1", sender: int = 0, seq: int = 1) -> bytes:
    return packet.encode(KEY, Heartbeat(packet.cluster_id(cluster), sender, 0, 1, seq, 0.0, 0))


def test_check_record_names_each_fault() -> None:
    assert check_record(record(sender=31), "c1") == 31
    for data, words in [(record()[:95], "96 bytes"), (b"X" + record()[1:], "not a heartbeat"),
                        (record("c2"), "another cluster"), (record(sender=32), "out of range")]:
        with pytest.raises(WireError, match=words):
            check_record(data, "c1")


def test_answer_round_trip_and_strict_decoding() -> None:
    entries = [(0, 12, record(sender=0)), (5, 2**40, record(sender=5))]
    body = encode_entries(entries)
    assert len(body) == 2 * ENTRY_SIZE
    assert decode_entries(body) == [(0, 12, record(sender=0)), (5, 2**32 - 1, record(sender=5))]
    assert decode_entries(b"") == []
    for bad in (body[:-1], body + body[:ENTRY_SIZE], encode_entries([(40, 0, record())]),
                encode_entries([(0, 0, record())] * 33)):
        with pytest.raises(WireError):
            decode_entries(bad)


def test_store_keeps_the_latest_per_sender_and_expires_old_records() -> None:
    store = Store(expiry=10, max_clusters=2)
    store.put("c1", 0, record(seq=1), now=100.0)
    store.put("c1", 0, record(seq=2), now=101.0)
    store.put("c1", 1, record(sender=1), now=105.0)
    assert decode_entries(store.answer("c1", now=106.0)) == [
        (0, 5000, record(seq=2)), (1, 1000, record(sender=1))]
    assert decode_entries(store.answer("c1", now=111.5)) == [(1, 6500, record(sender=1))]
    assert store.answer("other", now=111.5) == b""
    assert store.expire(now=111.5) == 1 and store.expire(now=200.0) == 1
    assert store.clusters == {}


def test_store_is_bounded_and_frees_room_by_expiry() -> None:
    store = Store(expiry=10, max_clusters=2)
    store.put("c1", 0, record("c1"), now=0.0)
    store.put("c2", 0, record("c2"), now=5.0)
    store.put("c2", 1, record("c2", 1), now=5.0)  # a known cluster always has room
    with pytest.raises(StoreFull):
        store.put("c3", 0, record("c3"), now=9.0)
    store.put("c3", 0, record("c3"), now=10.0)  # c1 expired: its place is free
    assert sorted(store.clusters) == ["c2", "c3"]
    assert store.summary(now=12.0)["clusters"]["c2"] == {
        "servers": {"0": {"age": 7.0}, "1": {"age": 7.0}}}


@pytest.mark.parametrize("value, expected", [("198.18.0.254:29005", ("198.18.0.254", 29005)),
                                             ("[::1]:80", ("::1", 80)),
                                             ("witness.example:8080", ("witness.example", 8080))])
def test_split_host_port(value: str, expected: tuple[str, int]) -> None:
    assert split_host_port(value) == expected


@pytest.mark.parametrize("value", ["host", ":80", "h:0", "h:65536", "h:x", "::1:80", "[]:80"])
def test_split_host_port_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(value)
