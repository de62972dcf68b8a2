"""The sending end of the ``evt`` queue: never blocks, never loses a record silently.

A daemon logging through a full queue (``clusterpro_evt`` stopped or slow) must keep
heartbeating, so :meth:`EventSender.send` uses a zero timeout and, when the queue is full or
missing, counts the record in ``dropped`` and returns False. The logging handler turns that count
into a "N log records dropped" line once the queue accepts again.

The queue is created by whichever side opens it first (a service logging before
``clusterpro_evt`` is up keeps its records in the queue). Wanted attributes are
:data:`QUEUE_DEPTH` x :data:`MAX_MESSAGE`; a kernel that refuses them (``fs.mqueue.msg_max``
without CAP_SYS_RESOURCE, or RLIMIT_MSGQUEUE) gets the largest of a few smaller shapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import posix_ipc

from clp.evt.records import Record, RecordError, encode
from clp.paths import InstallRoot

QUEUE_DEPTH = 256
MAX_MESSAGE = 8192
QUEUE_MODE = 0o600
REOPEN_INTERVAL = 1.0  # seconds between attempts to open a missing queue
DRAIN_WRITE_GRACE = 0.05  # a record taken off the queue is on disk this long after


def _sysctl(name: str, default: int) -> int:
    try:
        return int(Path("/proc/sys/fs/mqueue", name).read_text())
    except (OSError, ValueError):
        return default


def queue_shapes() -> list[tuple[int, int]]:
    """Candidate (depth, message size) pairs, best first."""
    msg_max = _sysctl("msg_max", 10)
    size_max = min(MAX_MESSAGE, _sysctl("msgsize_max", MAX_MESSAGE))
    shapes = [(QUEUE_DEPTH, MAX_MESSAGE), (min(QUEUE_DEPTH, msg_max), size_max),
              (min(64, msg_max), min(4096, size_max)), (10, 4096)]
    return list(dict.fromkeys(shapes))


def open_queue(root: InstallRoot, *, create: bool) -> posix_ipc.MessageQueue:
    """Open this install root's ``evt`` queue; raise ``posix_ipc.ExistentialError`` if it is
    missing and ``create`` is false. Never unlinks: queued records survive a daemon restart."""
    name = root.mq_name("evt")
    if not create:
        return posix_ipc.MessageQueue(name)
    error: Exception | None = None
    for depth, size in queue_shapes():
        try:
            return posix_ipc.MessageQueue(name, posix_ipc.O_CREAT, mode=QUEUE_MODE,
                                          max_messages=depth, max_message_size=size)
        except (ValueError, OSError) as e:  # attributes refused by this kernel: try smaller
            error = e
    raise OSError(f"cannot create message queue {name}: {error}")


def unlink_queue(root: InstallRoot) -> bool:
    """Remove the queue (operators' cleanup and tests only). True if it existed."""
    try:
        posix_ipc.unlink_message_queue(root.mq_name("evt"))
    except posix_ipc.ExistentialError:
        return False
    return True


class EventSender:
    """Send records to ``clusterpro_evt``. Not thread-safe by itself (the logging handler locks)."""

    def __init__(self, root: InstallRoot, *, create: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.create = create
        self.clock = clock
        self.dropped = 0
        self.sent = 0
        self._queue: posix_ipc.MessageQueue | None = None
        self._next_open = 0.0

    def open(self) -> bool:
        """Open the queue now if it is not open; False when it cannot be (missing, refused).
        A failed attempt is not retried by :meth:`send` before :data:`REOPEN_INTERVAL`."""
        if self._queue is not None:
            return True
        try:
            self._queue = open_queue(self.root, create=self.create)
        except (posix_ipc.Error, OSError):
            self._next_open = self.clock() + REOPEN_INTERVAL
            return False
        return True

    def send(self, record: Record, timeout: float = 0, *, count_drop: bool = True) -> bool:
        """Queue ``record``; False (and ``dropped`` += 1) if the queue is full or missing.

        ``timeout`` is 0 for daemons; a command may wait a little for room."""
        if self._queue is None and (self.clock() < self._next_open or not self.open()):
            return self._drop(count_drop)
        assert self._queue is not None
        try:
            data = encode(record, self._queue.max_message_size)
            self._queue.send(data, timeout=timeout)
        except (posix_ipc.BusyError, posix_ipc.SignalError, RecordError):
            return self._drop(count_drop)
        except (posix_ipc.Error, OSError):  # queue gone under us: reopen later
            self.close()
            self._next_open = self.clock() + REOPEN_INTERVAL
            return self._drop(count_drop)
        self.sent += 1
        return True

    def _drop(self, count: bool) -> bool:
        if count:
            self.dropped += 1
        return False

    def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until ``clusterpro_evt`` has taken every queued record:
        for a process about to end the machine (a self-fence), so its last alert is written."""
        deadline = time.monotonic() + timeout
        while self._queue is not None and time.monotonic() < deadline:
            try:
                if self._queue.current_messages == 0:
                    time.sleep(DRAIN_WRITE_GRACE)  # taken off the queue: now being written
                    return True
            except posix_ipc.ExistentialError:
                return False
            time.sleep(0.01)
        return self._queue is None

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None
