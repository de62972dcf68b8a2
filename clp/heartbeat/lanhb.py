"""LAN heartbeat (``lanhb``): UDP datagrams on every LAN interconnect.

One socket per LAN interconnect, bound to this server's address on it. Every interval the daemon
calls :meth:`LanHeartbeat.send_all`; every datagram received is verified here and either handed to
the ``on_heartbeat`` callback as ``(sender_index, path_index, Heartbeat)`` or counted as a drop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from clp.heartbeat import packet
from clp.heartbeat.packet import Drop, Heartbeat, PacketError, ReplayGuard

log = logging.getLogger("clp.lanhb")

OnHeartbeat = Callable[[int, int, Heartbeat], None]


@dataclass
class LanPath:
    """One LAN interconnect as this server sees it."""

    index: int                      # path index in clp.conf (shared by every server)
    name: str                       # lanhb1 ...
    my_address: str
    peers: dict[int, str]           # server index -> address on this interconnect
    sent: int = 0
    send_errors: int = 0
    received: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    # one-way delays (receive time - send time) of the last heartbeats; meaningful when the
    # servers' clocks are synchronized (the seed asks for it), exact in the lab (one clock)
    delays: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: LanHeartbeat, path: LanPath) -> None:
        self.owner, self.path = owner, path

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.owner.receive(self.path, data, addr[0])

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (peer down, unreachable) are normal while a server is down.
        self.path.send_errors += 1


class LanHeartbeat:
    def __init__(self, *, key: bytes, cluster_name: str, my_index: int, paths: list[LanPath],
                 port: int, incarnation: int, on_heartbeat: OnHeartbeat) -> None:
        self.key = key
        self.cluster_id = packet.cluster_id(cluster_name)
        self.my_index = my_index
        self.paths = paths
        self.port = port
        self.incarnation = incarnation
        self.on_heartbeat = on_heartbeat
        self.state = packet.SENDER_RUNNING
        self._seq = 0
        self._guard = ReplayGuard()
        self._transports: dict[int, asyncio.DatagramTransport] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for path in self.paths:
            family = socket.AF_INET6 if ":" in path.my_address else socket.AF_INET
            transport, _ = await loop.create_datagram_endpoint(
                lambda p=path: _Protocol(self, p),
                local_addr=(path.my_address, self.port), family=family)
            self._transports[path.index] = transport

    def close(self) -> None:
        for t in self._transports.values():
            t.close()
        self._transports.clear()

    def send_all(self) -> None:
        self._seq += 1
        for path in self.paths:
            transport = self._transports.get(path.index)
            if transport is None:
                continue
            data = packet.encode(self.key, Heartbeat(
                self.cluster_id, self.my_index, path.index, self.incarnation, self._seq,
                time.time(), self.state))
            for addr in path.peers.values():
                try:
                    transport.sendto(data, (addr, self.port))
                    path.sent += 1
                except OSError:
                    path.send_errors += 1

    def receive(self, path: LanPath, data: bytes, source: str) -> None:
        try:
            hb = packet.decode(self.key, data, self.cluster_id)
        except PacketError as e:
            self._drop(path, e.drop, source, str(e))
            return
        if hb.path != path.index or path.peers.get(hb.sender) != source:
            self._drop(path, Drop.UNKNOWN_SENDER, source,
                       f"server #{hb.sender} on path #{hb.path} from {source}")
            return
        if not self._guard.accept(hb):
            self._drop(path, Drop.REPLAY, source, f"seq {hb.seq} not newer")
            return
        path.received += 1
        path.delays.append(time.time() - hb.sent)
        self.on_heartbeat(hb.sender, path.index, hb)

    def _drop(self, path: LanPath, drop: Drop, source: str, detail: str) -> None:
        first = path.drops[drop.value] == 0
        path.drops[drop.value] += 1
        # Logged on the first of each kind per path only: a flood must not flood the log.
        if first:
            log.warning("%s: dropped a packet from %s (%s); further drops are only counted",
                        path.name, source, detail)

    def counters(self) -> dict[str, dict]:
        return {p.name: {"sent": p.sent, "send_errors": p.send_errors, "received": p.received,
                         "drops": dict(p.drops), "delay": _percentiles(p.delays)}
                for p in self.paths}


def _percentiles(values: deque[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}
