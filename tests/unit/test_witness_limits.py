"""The witness's caps: connections below the open-file limit and per client, cluster slots freed
by the (short) expiry so made-up cluster names cannot lock real clusters out for long."""

from __future__ import annotations

import json

import pytest

from clp.heartbeat import packet
from clp.heartbeat.packet import Heartbeat
from clp.witness import limits
from clp.witness.limits import FD_MARGIN, client_key, connection_cap, raise_open_file_limit
from clp.witness.store import DEFAULT_EXPIRY, Store
from clp.witness.witness_server import WitnessServer

KEY = b"k" * 32


def record(cluster: str, sender: int = 0) -> bytes:
    return packet.encode(KEY, Heartbeat(packet.cluster_id(cluster), sender, 0, 1, 1, 0.0, 0))


def post(server: WitnessServer, cluster: str, client: str = "192.0.2.1") -> int:
    answer = server.route("POST", f"/v1/heartbeat/{cluster}", record(cluster), client, False)
    return int(answer.split(b" ", 2)[1])


def test_made_up_clusters_give_their_slots_back_within_the_expiry() -> None:
    now = [0.0]
    server = WitnessServer(Store(max_clusters=3), clock=lambda: now[0])
    assert DEFAULT_EXPIRY <= 60
    for i in range(3):
        assert post(server, f"junk{i}", "198.51.100.7") == 200
    assert post(server, "real") == 503
    now[0] = DEFAULT_EXPIRY - 0.1
    assert post(server, "real") == 503
    now[0] = DEFAULT_EXPIRY
    assert post(server, "real") == 200 and sorted(server.store.clusters) == ["real"]
    doc = json.loads(server.route("GET", "/v1/clusters", b"", "x", False).split(b"\r\n\r\n")[1])
    assert list(doc["clusters"]) == ["real"] and doc["errors"] == {"full": 2}
    assert doc["expiry"] == DEFAULT_EXPIRY and doc["max_per_client"] == limits.MAX_PER_CLIENT


def test_the_operator_view_leaves_out_expired_clusters() -> None:
    now = [0.0]
    server = WitnessServer(Store(expiry=10), clock=lambda: now[0])
    post(server, "gone")
    now[0] = 10.0
    doc = json.loads(server.route("GET", "/v1/clusters", b"", "x", False).split(b"\r\n\r\n")[1])
    assert doc["clusters"] == {} and server.store.clusters == {}


def test_connection_cap_stays_below_the_open_file_limit() -> None:
    assert connection_cap(4096, 1024) == 1024 - FD_MARGIN
    assert connection_cap(100, 1 << 20) == 100
    assert connection_cap(4096, 10) == 1


@pytest.mark.parametrize("address, key", [
    ("192.0.2.1", "192.0.2.1"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::99", "2001:db8:1:2::/64"), ("::ffff:192.0.2.9", "192.0.2.9"),
    ("fe80::1%eth0", "fe80::/64"), ("?", "?")])
def test_client_key_counts_an_ipv6_client_by_its_64(address: str, key: str) -> None:
    assert client_key(address) == key


class FakeRlimit:
    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse
        self.calls: list[tuple[int, int]] = []

    def getrlimit(self, which: int) -> tuple[int, int]:
        return self.limits

    def setrlimit(self, which: int, value: tuple[int, int]) -> None:
        self.calls.append(value)
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = value


@pytest.mark.parametrize("soft, hard, refuse, expected", [
    (1024, 524288, False, 4160),  # raised to what is wanted
    (1024, 2048, False, 2048),  # up to the hard limit only
    (1024, limits.resource.RLIM_INFINITY, False, 4160),
    (8192, 8192, False, 8192),  # never lowered
    (1024, 524288, True, 1024),  # refused: stays, the cap follows it
])
def test_raise_open_file_limit(monkeypatch: pytest.MonkeyPatch, soft: int, hard: int,
                               refuse: bool, expected: int) -> None:
    fake = FakeRlimit(soft, hard, refuse)
    monkeypatch.setattr(limits.resource, "getrlimit", fake.getrlimit)
    monkeypatch.setattr(limits.resource, "setrlimit", fake.setrlimit)
    assert raise_open_file_limit(4096 + FD_MARGIN) == expected
    assert all(value[1] == hard for value in fake.calls)  # the hard limit is left alone
