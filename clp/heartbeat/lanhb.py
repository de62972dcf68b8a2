"""LAN heartbeat (``lanhb``): UDP datagrams on one LAN interconnect.

One socket bound to this server's address on the interconnect and the heartbeat port; every
round the record goes to each peer's address on it. A datagram is accepted only from the address
the configuration gives its sender on this interconnect (compared as addresses, not as text:
``2001:DB8:0::1`` is ``2001:db8::1``, and a ``%scope`` is ignored).

A bind that fails (the interconnect address is not up yet at boot, the port is taken) is this
server's own problem with the path: ``local_error`` says so, with one alert, and the bind is
tried again once per round until it works; nothing is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import time
from collections import deque
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles
from clp.net.addresses import unscoped

log = logging.getLogger("clp.lanhb")

SIOCGSTAMP = 0x8906  # the receive time of the last datagram read, as a struct timeval
_TIMEVAL = struct.Struct("@ll")
_NO_STAMP = bytes(_TIMEVAL.size)
MAX_STAMP_LAG = 1.0  # seconds; a stamp further back (or ahead) than that is not believed


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
        self._sender_of = {unscoped(a): i for i, a in self.peer_addresses.items()}
        self._sender_of.pop(None, None)
        self._source_index: dict[str, int] = {}  # source text as received -> sender_of
        self.health = DeviceHealth(ic.name, f"socket on {self.my_address} port {self.port}", log)
        # one-way delays (receive time - send time) of the last heartbeats; meaningful when the
        # servers' clocks are synchronized (the seed asks for it), exact in the lab (one clock)
        self.delays: deque[float] = deque(maxlen=1000)
        self._transport: asyncio.DatagramTransport | None = None
        self._fd: int | None = None  # the bound socket's, for its receive stamps
        self._loop: asyncio.AbstractEventLoop | None = None
        self._binding: asyncio.Task[None] | None = None  # a bind retry under way
        self._closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed = False
        await self._bind()

    async def _bind(self) -> None:
        """One bind attempt; a failure is a local error, not an exception."""
        family = socket.AF_INET6 if ":" in self.my_address else socket.AF_INET
        try:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.my_address, self.port), family=family)
        except OSError as e:
            self.health.failed(f"cannot bind: {e.strerror or e}")
            return
        if self._closed or self._transport is not None:
            transport.close()  # closed while binding
            return
        self._transport = transport
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else None
        self._arrived(time.time())  # the first SIOCGSTAMP turns the socket's stamps on
        self.health.ok()

    def close(self) -> None:
        self._closed = True
        if self._binding is not None:
            self._binding.cancel()
            self._binding = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self._fd = None

    @property
    def local_error(self) -> str | None:
        return self.health.error

    def send(self, out: Outgoing) -> None:
        if self._transport is None:
            self._retry_bind()
            return
        data = self.ctx.encode(out, self.index)
        for addr in self.peer_addresses.values():
            try:
                self._transport.sendto(data, (addr, self.port))
                self.sent += 1
            except OSError:
                self.send_errors += 1

    def _retry_bind(self) -> None:
        """Not bound (yet): one more attempt this round, unless the last one is still running."""
        if self._closed or self._loop is None:
            return
        if self._binding is None or self._binding.done():
            self._binding = self._loop.create_task(self._bind())

    def sender_of(self, source: str) -> int:
        """The index of the peer whose configured address ``source`` is, else -1. The answer
        for each source text is kept (parsing an address on every datagram showed in profiles);
        a sender that is nobody's is not kept, so a flood of made-up sources cannot grow it."""
        found = self._source_index.get(source)
        if found is None:
            found = self._sender_of.get(unscoped(source), -1)
            if found >= 0:
                self._source_index[source] = found
        return found

    def receive(self, data: bytes, source: str) -> None:
        hb = self.receiver.accept(data, source, expect_sender=self.sender_of(source))
        if hb is None:
            return
        now = time.time()
        self.delays.append(now - hb.sent)
        self.receiver.deliver(hb, self._arrived(now))

    def _arrived(self, now: float) -> float | None:
        """When the kernel received the datagram just read (SIOCGSTAMP), on the monotonic
        clock: a datagram the event loop handles late (the loop was busy) is timed from its
        arrival, not from then. None when the stamp is unknown or not believable (the wall
        clock was stepped): the caller then counts it as received now."""
        if self._fd is None:
            return None
        try:
            sec, usec = _TIMEVAL.unpack(fcntl.ioctl(self._fd, SIOCGSTAMP, _NO_STAMP))
        except OSError:  # ENOENT: no stamp yet (the first datagram enables them)
            return None
        lag = now - (sec + usec / 1e6)
        if not 0.0 <= lag <= MAX_STAMP_LAG:
            return None
        return time.monotonic() - lag

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "delay": percentiles(self.delays)}
