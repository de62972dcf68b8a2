"""Lock-free reader of the ``state`` region (see ``layout`` for the bytes).

A reader never touches the writer semaphore: it maps the segment read-only and retries a bounded
number of times when it catches the writer mid-update, so ``clpstat`` answers even when
``clusterpro`` is stuck.
"""

from __future__ import annotations

import json
import mmap
import time
import zlib

from clp.state.layout import (
    HEADER,
    HEADER_SEQ_OFFSET,
    LAYOUT_VERSION,
    MAGIC,
    RECORD,
    RECORD_DATA,
    SLOT,
    SLOT_DATA,
    PathRecord,
    StateError,
    StateHeader,
    StateNotRunning,
    StateStale,
    StateView,
    counters,
    record_offset,
    slot_offset,
    total_size,
    writer_alive,
)

TYPE_CHECKING = False  # see clp.state.layout
if TYPE_CHECKING:
    from typing import Any

    from clp.paths import InstallRoot

MAX_RETRIES = 1000
SPIN_BEFORE_SLEEP = 50  # after this many torn reads, sleep briefly so a preempted writer can finish


def _backoff(attempt: int) -> None:
    if attempt >= SPIN_BEFORE_SLEEP:
        time.sleep(0.0001)


def map_segment(name: str, writable: bool = False) -> mmap.mmap:
    """Map an existing segment; StateNotRunning when there is none (or it is still empty)."""
    import posix_ipc

    try:
        shm = posix_ipc.SharedMemory(name)
    except posix_ipc.ExistentialError:
        raise StateNotRunning(f"no shared memory segment {name}") from None
    except posix_ipc.PermissionsError as e:
        raise StateError(f"cannot open {name}: {e}") from None
    try:
        if shm.size == 0:
            raise StateNotRunning(f"shared memory segment {name} is not initialized yet")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(shm.fd, shm.size, mmap.MAP_SHARED, prot)
    finally:
        shm.close_fd()


def read_header(buf: mmap.mmap, words: memoryview) -> StateHeader:
    """The header, consistent under its seqlock."""
    at = HEADER_SEQ_OFFSET // 8
    for attempt in range(MAX_RETRIES):
        before = words[at]
        header = StateHeader.unpack(buf[:HEADER.size])
        after = words[at]
        if before == after and before % 2 == 0:
            return header
        _backoff(attempt)
    raise StateError(f"the state header stayed inconsistent for {MAX_RETRIES} reads")


def validate(header: StateHeader, mapped_size: int, name: str) -> None:
    if header.magic == b"\0" * len(MAGIC):
        raise StateNotRunning(f"shared memory segment {name} is not initialized yet")
    if header.magic != MAGIC:
        raise StateError(f"{name} is not a clp state region (magic {header.magic!r})")
    if header.version != LAYOUT_VERSION:
        raise StateError(f"{name} has layout version {header.version}, this program reads "
                         f"version {LAYOUT_VERSION}")
    expected = total_size(header.n_servers, header.n_paths, header.capacity)
    if header.size != mapped_size or header.size != expected:
        raise StateError(f"{name} has size {mapped_size}, its header says {header.size} and its "
                         f"layout needs {expected}")
    if header.active not in (0, 1):
        raise StateError(f"{name} names snapshot slot {header.active}, expected 0 or 1")


class StateReader:
    def __init__(self, buf: mmap.mmap, words: memoryview, name: str,
                 header: StateHeader) -> None:
        self._buf = buf
        self._words = words
        self.name = name
        self.header = header

    @classmethod
    def open(cls, root: InstallRoot, allow_stale: bool = False) -> StateReader:
        """Map the region; StateStale unless its writer is alive (or ``allow_stale``)."""
        name = root.shm_name("state")
        buf = map_segment(name)
        words = None
        try:
            if len(buf) < HEADER.size or len(buf) % 8:
                raise StateError(f"{name} has size {len(buf)}, not a clp state region")
            words = counters(buf)
            header = read_header(buf, words)
            validate(header, len(buf), name)
            if not allow_stale and not writer_alive(header.writer_pid, header.start_ticks):
                raise StateStale(header.writer_pid)
        except BaseException:
            if words is not None:
                words.release()
            buf.close()
            raise
        return cls(buf, words, name, header)

    def writer_alive(self) -> bool:
        return writer_alive(self.header.writer_pid, self.header.start_ticks)

    def read(self) -> StateView:
        header = read_header(self._buf, self._words)
        paths = [[self._read_record(header.n_paths, s, p) for p in range(header.n_paths)]
                 for s in range(header.n_servers)]
        header, snapshot = self._read_snapshot()
        return StateView(header, paths, snapshot)

    def _read_record(self, n_paths: int, server: int, path: int) -> PathRecord:
        buf, words = self._buf, self._words
        off = record_offset(n_paths, server, path)
        for attempt in range(MAX_RETRIES):
            before = words[off // 8]
            raw = buf[off:off + RECORD.size]
            after = words[off // 8]
            if before == after and before % 2 == 0:
                last_rx, seq, rx_count, drops, state = RECORD_DATA.unpack_from(raw, 8)
                return PathRecord(last_rx, seq, state, rx_count, drops)
            _backoff(attempt)
        raise StateError(f"path record [{server}][{path}] stayed inconsistent for "
                         f"{MAX_RETRIES} reads")

    def _read_snapshot(self) -> tuple[StateHeader, dict[str, Any]]:
        """The active slot's JSON. The header seqlock is re-checked after the copy: otherwise a
        reader holding an old header could take the idle slot the writer has just filled but
        not yet published, and the next read would go back to the older active one."""
        buf, words = self._buf, self._words
        at = HEADER_SEQ_OFFSET // 8
        for attempt in range(MAX_RETRIES):
            header = read_header(buf, words)
            off = slot_offset(header.n_servers, header.n_paths, header.capacity, header.active)
            before = words[off // 8]
            length, crc = SLOT_DATA.unpack_from(buf, off + 8)
            if before % 2 == 0 and length <= header.capacity:
                data = buf[off + SLOT.size:off + SLOT.size + length]
                if before == words[off // 8] and words[at] == header.seq \
                        and zlib.crc32(data) == crc:
                    return header, self._decode(data)
            _backoff(attempt)
        raise StateError(f"the status snapshot stayed inconsistent for {MAX_RETRIES} reads")

    def _decode(self, data: bytes) -> dict[str, Any]:
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError as e:
            raise StateError(f"the status snapshot in {self.name} is not valid JSON: {e}") \
                from None

    def close(self) -> None:
        if not self._buf.closed:
            self._words.release()
            self._buf.close()

    def __enter__(self) -> StateReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
