"""lanhb: the sender of a datagram is found by address, not by text; a bind that fails is a
local error retried every round; a datagram counts from when the kernel received it; the waiting
datagrams are read in one go, quiet ones kept in the table (loopback only)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.lanhb import LanHeartbeat
from clp.heartbeat.packet import Heartbeat
from clp.heartbeat.rxtable import NEWS

SERVERS = ("server1", "server2", "server3")
KEY = b"k" * 32


def lan(addresses: dict[str, str], port: int = 29002,
        got: list[Heartbeat] | None = None) -> LanHeartbeat:
    def on_heartbeat(sender: int, index: int, hb: Heartbeat, arrived: float, first: float
                     ) -> None:
        if got is not None:
            got.append(hb)
        ctx.table.ack(sender)  # taken, as the service does

    ctx = PathContext(KEY, "cluster", SERVERS, 0, incarnation=1, interval=0.05,
                      on_heartbeat=on_heartbeat, heartbeat_port=port)
    ic = Interconnect("lanhb1", "lan", 0, addresses=addresses, servers=tuple(addresses))
    return LanHeartbeat(ctx, ic, 0)


def record(sender: int, seq: int = 1) -> bytes:
    return packet.encode(KEY, Heartbeat(packet.cluster_id("cluster"), sender, 0, 1, seq, 0.0,
                                        packet.SENDER_RUNNING))


def exchange(p: LanHeartbeat, source: str, datagrams: list[bytes], wait: float = 0.05) -> None:
    """Start p, send ``datagrams`` to it from ``source`` (loopback), let its loop read them."""
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    peer = socket.socket(family, socket.SOCK_DGRAM)
    peer.bind((source, 0))

    async def main() -> None:
        await p.start()
        try:
            assert p.local_error is None
            for data in datagrams:
                peer.sendto(data, (p.my_address, p.port))
            await asyncio.sleep(wait)
        finally:
            p.close()
            peer.close()

    asyncio.run(main())
    assert not [t for t in threading.enumerate() if t.name == f"clp-{p.name}-rx"]  # joined


@pytest.mark.parametrize("me, configured, source", [
    ("::1", "0:0:0:0:0:0:0:1", "::1"),
    ("::1", "0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
    ("::1", "::1%lo", "::1"),
    ("127.0.0.1", "127.0.0.2", "127.0.0.2"),
])
def test_the_sender_is_found_by_address_whatever_its_spelling(me: str, configured: str,
                                                              source: str) -> None:
    got: list[Heartbeat] = []
    p = lan({"server1": me, "server2": configured, "server3": "2001:db8::3"},
            port=free_udp_port(), got=got)
    exchange(p, source, [record(1)])
    assert [hb.sender for hb in got] == [1] and p.receiver.drops == {}


def test_a_datagram_from_another_address_is_dropped() -> None:
    got: list[Heartbeat] = []
    p = lan({"server1": "127.0.0.1", "server2": "127.0.0.2", "server3": "127.0.0.3"},
            port=free_udp_port(), got=got)
    exchange(p, "127.0.0.3", [record(1)])  # server2's record from server3's address
    assert got == [] and p.receiver.drops == {"unknown_sender": 1}
    exchange(p, "127.0.0.4", [record(1), record(1, 2)])  # nobody's address
    assert got == [] and p.receiver.drops == {"unknown_sender": 3}


def test_waiting_datagrams_are_read_together_and_quiet_ones_stay_in_the_table() -> None:
    got: list[Heartbeat] = []
    p = lan({"server1": "127.0.0.1", "server2": "127.0.0.2"}, port=free_udp_port(), got=got)
    p.ctx.table.set_quiet(1, 0, True)
    # seq 1 is news (the sender's first) and is taken; then 99 datagrams at once, more than one
    # read batch, a bad one among them: quiet
    assert p.ctx.table.ingest(0, record(1, 1), 1, 0.0, 0.0)[0] == NEWS
    p.ctx.table.ack(1)
    datagrams = [record(1, seq) for seq in range(2, 101)]
    datagrams[50] = datagrams[50][:-1] + b"x"
    exchange(p, "127.0.0.2", datagrams, wait=0.2)
    assert got == []
    assert p.receiver.drops == {"bad_mac": 1} and p.receiver.received == 99  # with seq 1
    pulled = p.ctx.table.pull()
    assert [(q[1], q[5]) for q in pulled] == [(1, 100)]  # sender, seq
    assert p.counters()["delay"]["n"] == 98  # the LAN datagrams read (seq 1 was not)


def test_a_failed_bind_is_a_local_error_retried_every_round_until_it_works() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the port is taken
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    p = lan({"server1": "127.0.0.1", "server2": "127.0.0.1"}, port=port)

    async def main() -> None:
        try:
            await p.start()  # no exception: the path is down until it works
            assert p.local_error is not None and "cannot bind" in p.local_error
            for seq in range(1, 4):
                p.send(Outgoing(seq, packet.SENDER_RUNNING, 0.0))
                await asyncio.sleep(0.01)
            assert p.health.errors == 4 and p.sent == 0  # start + one attempt per round
            holder.close()  # the address is there now
            p.send(Outgoing(4, packet.SENDER_RUNNING, 0.0))
            await asyncio.sleep(0.01)
            assert p.local_error is None
            p.send(Outgoing(5, packet.SENDER_RUNNING, 0.0))
            assert p.sent == 1
            await asyncio.sleep(0.05)  # to itself on loopback: not a peer's
            assert p.receiver.drops == {"unknown_sender": 1}
        finally:
            p.close()
            holder.close()

    asyncio.run(main())
    p.send(Outgoing(6, packet.SENDER_RUNNING, 0.0))  # closed: no more attempts
    assert p._binding is None


def test_a_datagram_the_loop_handles_late_counts_from_its_arrival() -> None:
    """The kernel's receive stamp: a heartbeat that waited in the socket while the event loop
    was busy is delivered with the time it arrived, so a busy loop does not stretch a silence."""
    handled: list[tuple[float, float]] = []
    port = free_udp_port()
    ctx = PathContext(KEY, "cluster", SERVERS, 0, incarnation=1, interval=0.05,
                      on_heartbeat=lambda s, i, hb, arrived, first: handled.append(
                          (time.monotonic(), arrived)), heartbeat_port=port)
    ic = Interconnect("lanhb1", "lan", 0, addresses={"server1": "127.0.0.1",
                                                     "server2": "127.0.0.2"},
                      servers=("server1", "server2"))
    p = LanHeartbeat(ctx, ic, 0)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.2", 0))

    async def main() -> None:
        await p.start()
        try:
            for seq in (1, 2, 3):
                peer.sendto(record(1, seq), ("127.0.0.1", port))
                time.sleep(0.1)  # the loop is busy: the datagram waits in the socket
                await asyncio.sleep(0.02)
        finally:
            p.close()
            peer.close()

    asyncio.run(main())
    assert len(handled) == 3
    for at, arrived in handled:
        assert 0.08 <= at - arrived <= 0.5, handled


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_receive_thread_that_cannot_wait_makes_a_local_error_and_the_next_round_binds() -> None:
    got: list[Heartbeat] = []
    p = lan({"server1": "127.0.0.1", "server2": "127.0.0.2"}, port=free_udp_port(), got=got)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.2", 0))

    async def main() -> None:
        await p.start()
        try:
            assert p._sock is not None
            os.close(p._sock.fileno())  # the thread's wait fails (EBADF)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if p.local_error is not None:
                    break
            assert p.local_error is not None and "receiving stopped" in p.local_error
            p.send(Outgoing(1, packet.SENDER_RUNNING, 0.0))  # the round binds again
            await asyncio.sleep(0.05)
            assert p.local_error is None
            peer.sendto(record(1), ("127.0.0.1", p.port))
            await asyncio.sleep(0.05)
            assert [hb.sender for hb in got] == [1]  # received again
        finally:
            p.close()
            peer.close()

    asyncio.run(main())


def test_a_datagram_bigger_than_a_record_is_malformed_with_its_real_size(caplog) -> None:
    got: list[Heartbeat] = []
    p = lan({"server1": "127.0.0.1", "server2": "127.0.0.2"}, port=free_udp_port(), got=got)
    exchange(p, "127.0.0.2", [record(1) + b"x" * 2904])  # 3000 bytes
    assert got == [] and p.receiver.drops == {"malformed": 1}
    assert "size 3000 != 96" in caplog.text
