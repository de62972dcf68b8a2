"""LAN heartbeat (``lanhb``): UDP datagrams on one LAN interconnect.

One socket bound to this server's address on the interconnect and the heartbeat port; every
round the record goes to each peer's address on it. A datagram is accepted only from the address
the configuration gives its sender on this interconnect (compared as addresses, not as text:
``2001:DB8:0::1`` is ``2001:db8::1``, and a ``%scope`` is ignored).

Datagrams are read and verified in C by a thread of the path that waits in
:meth:`clp.heartbeat.rxtable.RxTable.wait_lan` (the GIL released): every datagram waiting, in
one call, each timed by the kernel's receive stamp (``SO_TIMESTAMPNS``), so a datagram the event
loop handles late (the loop was busy) counts from its arrival. Only news and drops come back to
Python, posted to the event loop; a quiet datagram wakes neither the loop nor the interpreter.

A bind that fails (the interconnect address is not up yet at boot, the port is taken) is this
server's own problem with the path: ``local_error`` says so, with one alert, and the bind is
tried again once per round until it works; nothing is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles
from clp.heartbeat.rxtable import Record

log = logging.getLogger("clp.lanhb")

RX_WAIT = 1.0  # seconds the receive thread waits in C before it looks whether to go on
JOIN_WAIT = 2.0  # seconds close() waits for the receive thread (woken at once)


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
        self._wake: int | None = None  # eventfd that ends the receive thread's wait
        self._rx: threading.Thread | None = None
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
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._rx = threading.Thread(target=self._receive, args=(sock.fileno(), self._wake),
                                    name=f"clp-{self.name}-rx", daemon=True)
        self._rx.start()
        self.health.ok()

    def close(self) -> None:
        self._closed = True
        if self._binding is not None:
            self._binding.cancel()
            self._binding = None
        if self._rx is not None and self._wake is not None:
            os.eventfd_write(self._wake, 1)
            self._rx.join(JOIN_WAIT)  # before the socket closes: its fd is in the wait
            self._rx = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._wake is not None:
            os.close(self._wake)
            self._wake = None

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

    def _receive(self, fd: int, wake: int) -> None:
        """The receive thread: waits in C (GIL released) for what needs the service."""
        loop = self._loop
        assert loop is not None
        while not self._closed:
            try:
                records, errors = self.ctx.table.wait_lan(fd, self.index, wake, RX_WAIT)
            except OSError as e:
                if not self._closed:
                    log.error("%s: receiving stopped: %s", self.name, e, extra={"alert": True})
                return
            if records or errors:
                try:
                    loop.call_soon_threadsafe(self._handle, records, errors)
                except RuntimeError:  # the loop has closed
                    return

    def _handle(self, records: list[Record], errors: int) -> None:
        """On the loop: what the receive thread found."""
        if self._closed:
            return
        self.send_errors += errors  # ICMP: a datagram we sent was refused (a peer is down)
        for rec in records:
            self.receiver.handle(rec, rec.source)

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "delay": percentiles(self.ctx.table.delays(self.index))}
