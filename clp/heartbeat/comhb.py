"""COM heartbeat (``comhb``): the 96-byte record over a serial cable between two servers.

The device is used as configured (``devices: {server: /dev/ttyS0}``), raw 8N1 at 115200 baud.
Serial I/O blocks, so one daemon thread owns the port: it writes the latest record the event loop
handed over (a round's record that could not be written is replaced, never queued: a stale
heartbeat is worth nothing) and reads with a short timeout. Received bytes go through a
:class:`~clp.heartbeat.comframe.FrameScanner`; every candidate, good or not, is posted to the loop
where the path's Receiver verifies (and counts the drops of) it.

A port that cannot be opened or fails (EIO when the cable's other end goes, a removed device) is
this server's own problem with the path: ``local_error`` says so, the port is closed and opening
it is retried every round. A silent peer is not: membership times it out like on any path.

A bug in the thread (any other exception) is logged with its traceback once and handled like a
failed port: closed, ``local_error`` says so, retried next round; the thread goes on. :meth:`close`
never waits more than JOIN_WAIT on the event loop: a thread stuck in the kernel is left behind (a
daemon) and closes the port itself when it gets out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from typing import Any, ClassVar

import serial

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext
from clp.heartbeat.comframe import FrameScanner, authentic
from clp.platform.priority import like_main_thread

log = logging.getLogger("clp.comhb")

BAUD = 115200
MAX_READ_WAIT = 0.5  # a read returns at least this often (also woken by every send)
JOIN_WAIT = 0.05  # close() on the event loop waits this long at most for the port thread
_PORT_ERRORS = (serial.SerialException, OSError, ValueError)


class ComHeartbeat(HeartbeatPath):
    type: ClassVar[str] = "com"

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int) -> None:
        super().__init__(ctx, ic, index, log)
        if len(self.peers) != 1:
            raise ValueError(f"{ic.name}: a COM heartbeat joins exactly two servers")
        (self.peer,) = self.peers
        self.device = ic.devices[ctx.me]
        self.health = DeviceHealth(ic.name, f"serial port {self.device}", log)
        self.scanner = FrameScanner(authentic(ctx.key, ctx.cluster_id))
        self.reopens = 0
        self.write_timeouts = 0
        self._wait = max(0.01, min(ctx.interval, MAX_READ_WAIT))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: serial.Serial | None = None
        self._port_lock = threading.Lock()  # guards _port against cancel_read from the loop
        self._pending: bytes | None = None  # latest record not yet written
        self._pending_lock = threading.Lock()
        self._rest = False  # the port just failed: wait for the next round before reopening
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._opened_once = False

    # on the event loop
    async def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"clp-{self.name}", daemon=True)
        self._thread.start()

    def send(self, out: Outgoing) -> None:
        if self._thread is None or self._stop.is_set():
            return
        data = self.ctx.encode(out, self.index)
        with self._pending_lock:
            self._pending = data  # latest only: replaces one not written yet
        self._kick()

    def close(self) -> None:
        self._stop.set()
        self._kick()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_WAIT)  # never seconds on the event loop
            if thread.is_alive():
                # closing the port under it could hit a reused descriptor: it closes the port
                # itself on its way out (finally in _run)
                log.warning("%s: the port thread is inside I/O on %s; left behind (a daemon, "
                            "it ends when the I/O returns)", self.name, self.device)
                return
        self._close_port()

    @property
    def local_error(self) -> str | None:
        return self.health.error

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "device": self.device, "bytes_skipped": self.scanner.skipped,
                "resyncs": self.scanner.resyncs, "reopens": self.reopens,
                "device_errors": self.health.errors, "write_timeouts": self.write_timeouts}

    def _kick(self) -> None:
        """Wake the port thread: out of its wait for a round, or out of a blocking read."""
        self._wake.set()
        with self._port_lock:
            if self._port is not None:
                with contextlib.suppress(*_PORT_ERRORS, TypeError):
                    self._port.cancel_read()

    def _receive(self, frame: bytes) -> None:
        self.receiver.accept(frame, self.device, expect_sender=self.peer)

    # in the port thread
    def _run(self) -> None:
        like_main_thread(log)
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception as e:  # a bug must not silently end the path: next round
                    self._failed(self.health.unexpected(e, "port thread"))
        finally:
            self._close_port()

    def _step(self) -> None:
        """Open the port if needed (once per round), write the pending record, read a while."""
        if self._port is None and (self._rest or not self._open()):
            self._rest = False
            self._wake.wait(self.ctx.interval)  # retried every round (send wakes us)
            self._wake.clear()
            return
        self._wake.clear()
        try:
            self._write_pending()
            self._read()
        except _PORT_ERRORS as e:
            self._failed(str(e) or type(e).__name__)

    def _open(self) -> bool:
        """Open the port. It counts as working again only after its first successful write or
        read: a device that opens but fails at once must not log 'works again' every round."""
        try:
            port = serial.Serial(self.device, BAUD, bytesize=serial.EIGHTBITS,
                                 parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE,
                                 timeout=self._wait, write_timeout=self._wait,
                                 xonxoff=False, rtscts=False, dsrdtr=False)
            port.reset_input_buffer()  # what waited there is older than this round
        except _PORT_ERRORS as e:
            errno = getattr(e, "errno", None)  # pyserial repeats the path: keep the cause
            self.health.failed(f"cannot open: {os.strerror(errno) if errno else e}")
            return False
        self.scanner.reset()
        with self._port_lock:
            self._port = port
        if self._opened_once:
            self.reopens += 1
        self._opened_once = True
        return True

    def _write_pending(self) -> None:
        with self._pending_lock:
            data, self._pending = self._pending, None
        if data is None or self._port is None:
            return
        try:
            self._port.write(data)
            self.sent += 1
            self.health.ok()
        except serial.SerialTimeoutException:
            # The far side does not read (a pty whose peer is gone or frozen): not our device's
            # fault, and a real line drains at its baud rate. Drop what is queued; the scanner at
            # the far end resynchronises on a torn record.
            self.send_errors += 1
            self.write_timeouts += 1
            self._port.reset_output_buffer()

    def _read(self) -> None:
        port = self._port
        if port is None:
            return
        data = port.read(1)  # up to the read wait; a send or close cancels it
        if not data:
            return
        self.health.ok()
        waiting = port.in_waiting
        if waiting:
            data += port.read(waiting)
        for candidate in self.scanner.feed(data):
            self._post(candidate.frame)

    def _post(self, frame: bytes) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: shutting down
            loop.call_soon_threadsafe(self._receive, frame)

    def _failed(self, reason: str) -> None:
        self.health.failed(reason)
        self._close_port()
        self._rest = True  # reopen next round, not in a tight loop

    def _close_port(self) -> None:
        with self._port_lock:
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*_PORT_ERRORS):
                port.close()
