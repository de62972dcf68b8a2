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
import contextlib
import logging
import os
import socket
import threading
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles
from clp.heartbeat.rxtable import Record
from clp.platform.priority import like_main_thread

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
        self._rx_stop = threading.Event()  # the current receive thread's own
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
        self._rx_stop = threading.Event()
        self._rx = threading.Thread(target=self._receive,
                                    args=(sock, self._wake, self._rx_stop),
                                    name=f"clp-{self.name}-rx", daemon=True)
        self._rx.start()
        self.health.ok()

    def close(self) -> None:
        self._closed = True
        if self._binding is not None:
            self._binding.cancel()
            self._binding = None
        self._unbind()

    def _unbind(self) -> None:
        """End the receive thread, then close its socket and eventfd (their numbers are in its
        wait until it has returned: if it does not, they are left open rather than reused)."""
        rx, wake, sock = self._rx, self._wake, self._sock
        self._rx = self._wake = self._sock = None
        if rx is not None and wake is not None:
            self._rx_stop.set()
            os.eventfd_write(wake, 1)
            if rx is not threading.current_thread():
                rx.join(JOIN_WAIT)
            if rx.is_alive():
                log.error("%s: the receive thread did not end in %g s; its socket is left "
                          "open", self.name, JOIN_WAIT, extra={"alert": True})
                return
        if sock is not None:
            with contextlib.suppress(OSError):  # EBADF: what ended the thread (see _receive)
                sock.close()
        if wake is not None:
            os.close(wake)

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

    def _receive(self, sock: socket.socket, wake: int, stop: threading.Event) -> None:
        """The receive thread: waits in C (GIL released) for what needs the service."""
        loop = self._loop
        assert loop is not None
        like_main_thread(log)
        fd = sock.fileno()
        while not stop.is_set():
            try:
                records, errors = self.ctx.table.wait_lan(fd, self.index, wake, RX_WAIT)
            except OSError as e:
                if not stop.is_set():
                    with contextlib.suppress(RuntimeError):  # the loop has closed
                        loop.call_soon_threadsafe(self._receive_failed, sock, e)
                return
            if records or errors:
                try:
                    loop.call_soon_threadsafe(self._handle, records, errors)
                except RuntimeError:  # the loop has closed
                    return

    def _receive_failed(self, sock: socket.socket, e: OSError) -> None:
        """On the loop: the receive thread could not wait any more. The path is this server's
        problem until a new socket is bound (the next round tries)."""
        if sock is not self._sock:
            return  # closed or bound again meanwhile
        self._unbind()
        self.health.failed(f"receiving stopped: {e.strerror or e}")

    def _handle(self, records: list[Record], errors: int) -> None:
        """On the loop: what the receive thread found."""
        if self._closed:
            return
        self.send_errors += errors  # ICMP: a datagram we sent was refused (a peer is down)
        for rec in records:
            self.receiver.handle(rec, rec.source)

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "delay": percentiles(self.ctx.table.delays(self.index))}
