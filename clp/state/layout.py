"""The ``state`` region's byte layout, its record types, errors and the writer-liveness check.

Native byte order with standard sizes (``struct`` format ``=``), no implicit padding; every
block starts on an 8-byte boundary and the segment size is a multiple of 8. The seqlock counters
are written and read only through ``memoryview.cast("Q")``: one aligned 8-byte store or load,
never ``struct.pack_into``, which zero-fills its target first and so would briefly show an even
counter (0) in the middle of a write. Ordering of the writer's stores relies on the CPU keeping
stores in program order (x86-64 TSO); Python offers no memory fences.

Header (72 bytes, offset 0)::

    0   8s  magic          b"CLPSTATE"
    8   I   version        LAYOUT_VERSION; a reader refuses any other value
    12  I   writer_pid     pid of the process holding the writer semaphore
    16  Q   size           total size of the segment in bytes
    24  Q   generation     1 on a fresh create, previous + 1 when a stale segment is taken over
    32  Q   seq            header seqlock: odd while ``active``/``updated`` change
    40  d   updated        time.time() of the last publish
    48  Q   start_ticks    writer's start time (/proc/PID/stat field 22), against pid reuse
    56  I   n_servers
    60  I   n_paths
    64  I   active         snapshot slot (0 or 1) readers should take
    68  I   capacity       bytes available for JSON in each snapshot slot

Path table (offset 72, n_servers x n_paths records of 48 bytes, row-major [server][path])::

    0   Q   lock           per-record seqlock: odd while the record is being written
    8   d   last_rx        time.time() of the last heartbeat received on this path
    16  Q   seq            sequence number carried by that heartbeat
    24  Q   rx_count       heartbeats received on this path
    32  Q   drops          packets dropped on this path
    40  I   state          PATH_UNKNOWN / PATH_NORMAL / PATH_ERROR / PATH_NOT_USED
    44  4x  padding

Two snapshot slots follow the table, each a 16-byte slot header then ``capacity`` bytes
(rounded up to 8)::

    0   Q   seq            per-slot seqlock
    8   I   length         bytes of JSON in use (0: nothing published yet, read as {})
    12  I   crc32          zlib.crc32 of those bytes

The writer fills the slot that is not ``active``, then flips ``active`` under the header
seqlock. Readers never block: read the counter, copy, re-read the counter, retry if it was odd
or changed. A snapshot read is accepted only if the slot's counter, the header's counter and
the CRC all hold across the copy, so a reader never returns an older snapshot than before.
"""

from __future__ import annotations

import os
import struct
from collections import namedtuple

TYPE_CHECKING = False  # (not typing's: clpstat imports this module, and typing costs it 2 ms)
if TYPE_CHECKING:
    from typing import Any

MAGIC = b"CLPSTATE"
LAYOUT_VERSION = 1

PATH_UNKNOWN = 0
PATH_NORMAL = 1
PATH_ERROR = 2
PATH_NOT_USED = 3
PATH_STATE_NAMES = {PATH_UNKNOWN: "Unknown", PATH_NORMAL: "Normal", PATH_ERROR: "Error",
                    PATH_NOT_USED: "Not Used"}

HEADER = struct.Struct("=8sIIQQQdQIIII")
RECORD = struct.Struct("=QdQQQI4x")
RECORD_DATA = struct.Struct("=dQQQI")  # RECORD without its lock, at offset 8
SLOT = struct.Struct("=QII")
SLOT_DATA = struct.Struct("=II")  # SLOT without its seq, at offset 8
UPDATED = struct.Struct("=d")  # the header fields a publish changes, written in place
ACTIVE = struct.Struct("=I")

HEADER_SEQ_OFFSET = 32
UPDATED_OFFSET = 40
ACTIVE_OFFSET = 64
TABLE_OFFSET = HEADER.size
DEFAULT_CAPACITY = 256 * 1024


class StateError(Exception):
    """The region exists but cannot be used (bad layout, torn beyond retry, too-big snapshot)."""


class StateNotRunning(StateError):
    """There is no state region: the cluster service is not running on this server."""


class StateStale(StateError):
    """The region was left behind by a writer that is no longer alive."""

    def __init__(self, writer_pid: int) -> None:
        super().__init__(f"the state region was left by dead process {writer_pid}")
        self.writer_pid = writer_pid


class StateBusy(StateError):
    """Another live process already writes this region."""

    def __init__(self, writer_pid: int) -> None:
        super().__init__(f"the state region is already written by live process {writer_pid}")
        self.writer_pid = writer_pid


# The records are plain named tuples (typing.NamedTuple would import typing: see above).
class StateHeader(namedtuple("StateHeader", [  # noqa: PYI024
        "magic",  # bytes
        "version", "size", "writer_pid", "generation", "seq",  # int
        "updated",  # float (time.time())
        "n_servers", "n_paths", "active", "capacity", "start_ticks",  # int
], defaults=(0, 0, 0))):
    __slots__ = ()

    @classmethod
    def unpack(cls, buf: Any) -> StateHeader:
        (magic, version, pid, size, gen, seq, updated, ticks, n_s, n_p, active,
         cap) = HEADER.unpack_from(buf, 0)
        return cls(magic, version, size, pid, gen, seq, updated, n_s, n_p, active, cap, ticks)

    def pack_into(self, buf: Any) -> None:
        HEADER.pack_into(buf, 0, self.magic, self.version, self.writer_pid, self.size,
                         self.generation, self.seq, self.updated, self.start_ticks,
                         self.n_servers, self.n_paths, self.active, self.capacity)


PathRecord = namedtuple("PathRecord", "last_rx seq state rx_count drops")  # noqa: PYI024
StateView = namedtuple("StateView", "header paths snapshot")  # noqa: PYI024 - the paths: PathRecords by server, then path


def counters(buf: Any) -> memoryview:
    """The segment as 8-byte words: ``words[offset // 8]`` is an atomic counter access.

    Release it before closing the mmap (an exported buffer keeps the mmap from closing).
    """
    return memoryview(buf).cast("Q")


def slot_stride(capacity: int) -> int:
    return SLOT.size + (capacity + 7) // 8 * 8


def slots_offset(n_servers: int, n_paths: int) -> int:
    return TABLE_OFFSET + n_servers * n_paths * RECORD.size


def slot_offset(n_servers: int, n_paths: int, capacity: int, slot: int) -> int:
    return slots_offset(n_servers, n_paths) + slot * slot_stride(capacity)


def record_offset(n_paths: int, server: int, path: int) -> int:
    return TABLE_OFFSET + (server * n_paths + path) * RECORD.size


def total_size(n_servers: int, n_paths: int, capacity: int) -> int:
    return slot_offset(n_servers, n_paths, capacity, 2)


def proc_status(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc, or None when unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def own_start_ticks() -> int:
    status = proc_status(os.getpid())
    return status[1] if status else 0


def writer_alive(pid: int, start_ticks: int = 0) -> bool:
    """Whether ``pid`` is still the process that wrote the header (not a zombie, not a reuse)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    status = proc_status(pid)
    if status is None:
        return True
    state, ticks = status
    if state in ("Z", "X"):
        return False
    return not (start_ticks and ticks != start_ticks)
