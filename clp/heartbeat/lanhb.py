"""LAN heartbeat (``lanhb``): UDP datagrams on one LAN interconnect.

One socket bound to this server's address on the interconnect and the heartbeat port; every
round the record goes to each peer's address on it. A datagram is accepted only from the address
the configuration gives its sender on this interconnect.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import HeartbeatPath, Outgoing, PathContext

log = logging.getLogger("clp.lanhb")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: LanHeartbeat) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.owner.receive(data, addr[0])

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (peer down, unreachable) are normal while a server is down.
        self.owner.send_errors += 1


class LanHeartbeat(HeartbeatPath):
    type: ClassVar[str] = "lan"

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int) -> None:
        super().__init__(ctx, ic, index, log)
        self.port = ctx.heartbeat_port
        self.my_address = ic.addresses[ctx.me]
        self.peer_addresses = {i: ic.addresses[s] for i, s in self.peers.items()}
        self._sender_of = {a: i for i, a in self.peer_addresses.items()}
        # one-way delays (receive time - send time) of the last heartbeats; meaningful when the
        # servers' clocks are synchronized (the seed asks for it), exact in the lab (one clock)
        self.delays: deque[float] = deque(maxlen=1000)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.my_address else socket.AF_INET
        self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.my_address, self.port), family=family)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def send(self, out: Outgoing) -> None:
        if self._transport is None:
            return
        data = self.ctx.encode(out, self.index)
        for addr in self.peer_addresses.values():
            try:
                self._transport.sendto(data, (addr, self.port))
                self.sent += 1
            except OSError:
                self.send_errors += 1

    def receive(self, data: bytes, source: str) -> None:
        sender = self._sender_of.get(source, -1)
        hb = self.receiver.accept(data, source, expect_sender=sender)
        if hb is None:
            return
        self.delays.append(time.time() - hb.sent)
        self.receiver.deliver(hb)

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "delay": percentiles(self.delays)}


def percentiles(values: deque[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}
