"""LAN heartbeat (``lanhb``): UDP datagrams on one LAN interconnect.

One socket bound to this server's address on the interconnect and the heartbeat port; every
round the record goes to each peer's address on it. A datagram is accepted only from the address
the configuration gives its sender on this interconnect (compared as addresses, not as text:
``2001:DB8:0::1`` is ``2001:db8::1``, and a ``%scope`` is ignored).

Datagrams are read and verified in C (:meth:`clp.heartbeat.rxtable.RxTable.drain_lan`): every
datagram waiting when the socket is readable, in one call, each timed by the kernel's receive
stamp (``SO_TIMESTAMPNS``), so a datagram the event loop handles late (the loop was busy) counts
from its arrival. Only news and drops come back to Python.

A bind that fails (the interconnect address is not up yet at boot, the port is taken) is this
server's own problem with the path: ``local_error`` says so, with one alert, and the bind is
tried again once per round until it works; nothing is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles

log = logging.getLogger("clp.lanhb")

# what a read reports after a datagram we sent was refused (ICMP): normal while a server is down
SEND_ERRORS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                         errno.EHOSTDOWN, errno.ENETDOWN})


class LanHeartbeat(HeartbeatPath):
    type: ClassVar[str] = "lan"

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int) -> None:
        super().__init__(ctx, ic, index, log)
        self.port = ctx.heartbeat_port
        self.my_address = ic.addresses[ctx.me]
        self.peer_addresses = {i: ic.addresses[s] for i, s in self.peers.items()}
        for i, address in self.peer_addresses.items():
            ctx.table.add_lan_peer(index, i, address)
        self.health = DeviceHealth(ic.name, f"socket on {self.my_address} port {self.port}", log)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._binding: asyncio.Task[None] | None = None  # a bind retry under way
        self._closed = False
        self._errors_logged: set[int | None] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed = False
        await self._bind()

    async def _bind(self) -> None:
        """One bind attempt; a failure is a local error, not an exception."""
        family = socket.AF_INET6 if ":" in self.my_address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.my_address, self.port))
            self.ctx.table.prepare_lan(sock.fileno())
        except OSError as e:
            sock.close()
            self.health.failed(f"cannot bind: {e.strerror or e}")
            return
        if self._closed or self._sock is not None or self._loop is None:
            sock.close()  # closed while binding
            return
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._drain)
        self.health.ok()

    def close(self) -> None:
        self._closed = True
        if self._binding is not None:
            self._binding.cancel()
            self._binding = None
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    @property
    def local_error(self) -> str | None:
        return self.health.error

    def send(self, out: Outgoing) -> None:
        if self._sock is None:
            self._retry_bind()
            return
        data = self.ctx.encode(out, self.index)
        for addr in self.peer_addresses.values():
            try:
                self._sock.sendto(data, (addr, self.port))
                self.sent += 1
            except OSError:
                self.send_errors += 1

    def _retry_bind(self) -> None:
        """Not bound (yet): one more attempt this round, unless the last one is still running."""
        if self._closed or self._loop is None:
            return
        if self._binding is None or self._binding.done():
            self._binding = self._loop.create_task(self._bind())

    def _drain(self) -> None:
        """The socket is readable: every datagram waiting, through the table."""
        if self._sock is None:
            return
        try:
            records, _ = self.ctx.table.drain_lan(self._sock.fileno(), self.index)
        except OSError as e:
            if e.errno not in SEND_ERRORS and e.errno not in self._errors_logged:
                self._errors_logged.add(e.errno)  # once per kind: it may repeat every read
                log.warning("%s: receive failed: %s", self.name, e)
            self.send_errors += 1
            return
        for rec in records:
            self.receiver.handle(rec, rec.source)

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "delay": percentiles(self.ctx.table.delays(self.index))}
