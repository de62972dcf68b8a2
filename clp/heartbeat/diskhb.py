"""Disk heartbeat (``diskhb``): the heartbeat record in this server's slot of a shared disk.

Every server of the interconnect writes its latest 96-byte record (:mod:`clp.heartbeat.packet`)
into its own 4096-byte slot and reads every slot, with direct synchronous I/O
(:mod:`clp.heartbeat.diskio`, C through cffi). The device must have at least 10 MiB.

On-disk layout (details in :mod:`clp.heartbeat.disklayout` and docs/diskhb.md), 4096-byte
blocks::

    block 0      header, identical from every server: b"CLPDISKH", layout version 1, slot size
                 4096, 32 slots, cluster id (packet.cluster_id of the cluster name)
    block 1 + i  slot of the server with index i: its 96-byte record, then zeros

A device whose header names another cluster is refused and never written (``local_error``
names that cluster's id); a blank layout (block 0 and every slot unwritten, or holding only
heartbeat records) is initialised with our header; anything else there (a file system, a RAID
superblock?) is refused too. An all-zero slot was never written: not a
heartbeat, not a drop.

Threading: a dedicated daemon thread does all I/O, so a disk that hangs stalls only that thread
(cffi releases the GIL during each C call). :meth:`DiskHeartbeat.send`, on the event loop, only
stores the round's record and wakes the thread: the latest record replaces one not yet written,
nothing queues up. Each round the thread opens the device if it is not open (so a device that
is missing or broken is retried every round), writes this server's slot and reads the header and
every slot in one call, and posts the outcome to the loop (``call_soon_threadsafe``); counters,
device health and delivery happen on the loop only.

Freshness: a slot keeps its last record after its writer died, so a record is delivered only when
the slot changed between two consecutive successful reads of ours, about one interval apart. The
first read after start, after an I/O error, or after a stall (more than FRESH_ROUNDS intervals,
and at least MIN_STALL, since the previous read returned, or a round that itself took that long:
a disk queueing I/O while its paths are down) is a baseline, and a dead server's old record is
never taken as a heartbeat.

A bug in a round (any other exception) is logged with its traceback once and reported as a
device failure like an I/O error; the thread goes on with the next round. :meth:`close` never
waits for a thread stuck in the kernel: it is left behind (a daemon) and ends when its I/O
returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat import disklayout as layout
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles
from clp.heartbeat.diskio import BLOCK, DiskDevice
from clp.platform.priority import like_main_thread

log = logging.getLogger("clp.diskhb")

assert BLOCK == layout.BLOCK
JOIN_WAIT = 0.05  # close() on the event loop waits this long at most for the I/O thread
FRESH_ROUNDS = 2  # reads further apart than this many intervals do not show freshness
STALL_ROUNDS = 5  # a round whose I/O has not returned after this many intervals: a device error
MIN_STALL = 1.0


@dataclass(frozen=True)
class _Outcome:
    """What one round of the I/O thread gives the loop: the blocks read, or why it failed."""

    data: bytes | None
    seconds: float
    error: str | None = None
    io_error: bool = False
    finished: float = field(default_factory=time.monotonic)  # when the I/O returned


class DiskHeartbeat(HeartbeatPath):
    type: ClassVar[str] = "disk"

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int) -> None:
        super().__init__(ctx, ic, index, log)
        self.device = ic.devices[ctx.me]
        self.health = DeviceHealth(ic.name, f"heartbeat disk {self.device}", log)
        self.my_block = layout.slot_block(ctx.my_index)
        for i in self.peers:
            layout.slot_block(i)  # a server index beyond the layout's slots fails here
        self.first, self.n_blocks = layout.read_range([ctx.my_index, *self.peers])
        self.cycle_times: deque[float] = deque(maxlen=1000)
        self.io_errors = 0
        self._last_slot: dict[int, bytes] = {}  # peer index -> its slot at our last good read
        self._last_read: float | None = None  # when our last good read returned (monotonic)
        self._cond = threading.Condition()
        self._pending: bytes | None = None
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._round_started: float | None = None  # set by the thread while its I/O runs
        self.stall = max(MIN_STALL, STALL_ROUNDS * ctx.interval)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"clp-{self.name}", daemon=True)
        self._thread.start()

    def send(self, out: Outgoing) -> None:
        record = self.ctx.encode(out, self.index)
        with self._cond:
            self._pending = record
            self._cond.notify()
        started = self._round_started
        if started is not None and time.monotonic() - started > self.stall:
            # a hung disk: the thread is stuck in the kernel; say so (ok() when it returns)
            self.health.failed(f"{self.device}: I/O has not returned for "
                               f"{time.monotonic() - started:.1f} s")

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_WAIT)  # never seconds on the event loop: the disk may hang
            if thread.is_alive():
                log.warning("%s: the I/O thread is inside I/O on %s; left behind (a daemon, "
                            "it ends when the I/O returns)", self.name, self.device)

    @property
    def local_error(self) -> str | None:
        return self.health.error

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "device": self.device, "io_errors": self.io_errors,
                "cycle": percentiles(self.cycle_times)}

    # the I/O thread
    def _run(self) -> None:
        like_main_thread(log)
        dev: DiskDevice | None = None
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                    if self._stopping:
                        return
                    record, self._pending = self._pending, None
                dev, outcome = self._round(dev, record)
                if not self._post(outcome):
                    return
        finally:
            if dev is not None:
                dev.close()

    def _round(self, dev: DiskDevice | None, record: bytes) -> tuple[DiskDevice | None, _Outcome]:
        t0 = self._round_started = time.monotonic()
        try:
            if dev is None:
                dev = self._open()
            data = dev.cycle(record, self.my_block, self.first, self.n_blocks)
            if layout.check_layout(data, self.ctx.cluster_id) is layout.HeaderState.BLANK:
                dev.write(0, layout.encode_header(self.ctx.cluster_id))  # someone zeroed it
        except (OSError, layout.LayoutError) as e:
            if dev is not None:
                dev.close()
            reason = str(e) if isinstance(e, OSError) else f"{self.device}: {e}"
            return None, _Outcome(None, time.monotonic() - t0, reason, isinstance(e, OSError))
        except Exception as e:  # a bug must not silently end the path: next round goes on
            reason = f"{self.device}: {self.health.unexpected(e, 'I/O thread')}"
            if dev is not None:
                dev.close()
            return None, _Outcome(None, time.monotonic() - t0, reason)
        finally:
            self._round_started = None
        return dev, _Outcome(data, time.monotonic() - t0)

    def _open(self) -> DiskDevice:
        """Open the device and make sure it is this cluster's: size, then header (initialised
        when it has none). Raises OSError or LayoutError."""
        dev = DiskDevice.open(self.device)
        try:
            layout.check_size(dev.size)
            if layout.check_layout(dev.read(0, 1 + layout.SLOTS), self.ctx.cluster_id) is \
                    layout.HeaderState.BLANK:
                dev.write(0, layout.encode_header(self.ctx.cluster_id))
                log.info("%s: initialised the heartbeat header of %s", self.name, self.device)
        except BaseException:
            dev.close()
            raise
        return dev

    def _post(self, outcome: _Outcome) -> bool:
        """Hand the outcome to the loop; False once the loop is gone (the thread then ends)."""
        if self._loop is None:
            return False
        try:
            self._loop.call_soon_threadsafe(self._on_outcome, outcome)
        except RuntimeError:  # loop closed
            return False
        return True

    # back on the event loop
    def _on_outcome(self, outcome: _Outcome) -> None:
        if self._closed:
            return
        if outcome.data is None:
            self.send_errors += 1
            self.io_errors += outcome.io_error
            self._last_slot.clear()  # the next good read is a baseline again
            self._last_read = None
            self.health.failed(outcome.error or "unknown error")
            return
        self.health.ok()
        self.sent += 1
        self.cycle_times.append(outcome.seconds)
        if self._stalled(outcome):
            self._last_slot.clear()  # this read is a baseline: it delivers nothing
        self._last_read = outcome.finished
        for i in self.peers:
            self._receive(i, layout.slot_of(outcome.data, i, self.first))

    def _stalled(self, outcome: _Outcome) -> bool:
        """Whether this read is too far from the previous one to tell a live peer's new record
        from a dead peer's last one (written just after our previous read)."""
        limit = max(MIN_STALL, FRESH_ROUNDS * self.ctx.interval)  # a loop late by a few ms
        if self._last_read is None or not self._last_slot:
            return False  # a baseline anyway
        gap = outcome.finished - self._last_read
        if gap <= limit and outcome.seconds <= limit:
            return False
        log.info("%s: read %.1f s after the previous one (I/O took %.1f s): a new baseline, "
                 "nothing delivered from it", self.name, gap, outcome.seconds)
        return True

    def _receive(self, i: int, slot: bytes) -> None:
        previous = self._last_slot.get(i)
        self._last_slot[i] = slot
        if previous is None or slot == previous or layout.is_blank(slot):
            return  # a baseline, not news, or never written
        self.receiver.accept(slot, f"{self.device} slot {i}", expect_sender=i, count_stale=False)
