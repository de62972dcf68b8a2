"""The single writer of the ``state`` region (see ``layout`` for the bytes).

Being the writer means holding the region's named semaphore (initial value 1, taken with a zero
timeout and kept for the writer's life). A writer that dies keeps it taken forever, so a busy
semaphore alone does not mean busy: the header's writer pid decides. A live writer makes
``create`` fail with StateBusy; a dead one's segment is replaced with generation + 1.

Known narrow race: two processes that start at the very same moment after a writer died can
both take over; the second one's segment replaces the first's.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
import time
import zlib

from clp.state.layout import (
    ACTIVE,
    ACTIVE_OFFSET,
    DEFAULT_CAPACITY,
    HEADER,
    HEADER_SEQ_OFFSET,
    LAYOUT_VERSION,
    MAGIC,
    RECORD_DATA,
    SLOT,
    SLOT_DATA,
    UPDATED,
    UPDATED_OFFSET,
    StateBusy,
    StateError,
    StateHeader,
    StateNotRunning,
    counters,
    own_start_ticks,
    record_offset,
    slot_offset,
    total_size,
    writer_alive,
)
from clp.state.reader import map_segment, read_header

TYPE_CHECKING = False  # see clp.state.layout
if TYPE_CHECKING:
    from typing import Any

    from clp.paths import InstallRoot

MODE = 0o600


def peek_header(name: str) -> StateHeader | None:
    """The header of an existing segment with a valid magic, else None."""
    try:
        buf = map_segment(name)
    except StateNotRunning:
        return None
    if len(buf) < HEADER.size or len(buf) % 8:
        buf.close()
        return None
    words = counters(buf)
    try:
        header = read_header(buf, words)
        return header if header.magic == MAGIC else None
    except StateError:
        return None
    finally:
        words.release()
        buf.close()


def remove_region(root: InstallRoot) -> list[str]:
    """Unlink the state segment and its semaphore; the names of those that existed."""
    import posix_ipc

    removed = []
    for name, unlink in ((root.shm_name("state"), posix_ipc.unlink_shared_memory),
                         (root.sem_name("state"), posix_ipc.unlink_semaphore)):
        with contextlib.suppress(posix_ipc.ExistentialError):
            unlink(name)
            removed.append(name)
    return removed


def _take_role(sem: Any, old: StateHeader | None) -> None:
    """Acquire the writer semaphore, or inherit it from a dead writer; StateBusy otherwise.

    Got it: the last writer gave the role up (or cleanup removed everything), so the segment,
    if any, is free to replace. Busy: it is held, and only a live header pid makes that real.
    """
    import posix_ipc

    try:
        sem.acquire(0)
    except posix_ipc.BusyError:
        if old is not None and writer_alive(old.writer_pid, old.start_ticks):
            raise StateBusy(old.writer_pid) from None


class StateWriter:
    def __init__(self, root: InstallRoot, buf: mmap.mmap, sem: Any, header: StateHeader) -> None:
        self.root = root
        self.name = root.shm_name("state")
        self._buf = buf
        self._words = counters(buf)
        self._sem = sem
        self.header = header
        self._locks = [0] * (header.n_servers * header.n_paths)
        self._slot_seq = [0, 0]
        self._mutex = threading.Lock()

    @classmethod
    def create(cls, root: InstallRoot, n_servers: int, n_paths: int,
               snapshot_capacity: int = DEFAULT_CAPACITY) -> StateWriter:
        import posix_ipc

        if n_servers < 0 or n_paths < 0 or not 0 < snapshot_capacity < 2 ** 32:
            raise ValueError(f"bad state region shape {n_servers} x {n_paths}, "
                             f"capacity {snapshot_capacity}")
        name = root.shm_name("state")
        sem = posix_ipc.Semaphore(root.sem_name("state"), posix_ipc.O_CREAT, mode=MODE,
                                  initial_value=1)
        try:
            old = peek_header(name)
            _take_role(sem, old)
            generation = old.generation + 1 if old is not None else 1
            buf = cls._new_segment(name, total_size(n_servers, n_paths, snapshot_capacity))
        except BaseException:
            sem.close()
            raise
        header = StateHeader(MAGIC, LAYOUT_VERSION, len(buf), os.getpid(), generation, 0,
                             time.time(), n_servers, n_paths, 0, snapshot_capacity,
                             own_start_ticks())
        header._replace(magic=b"\0" * len(MAGIC)).pack_into(buf)
        buf[:len(MAGIC)] = MAGIC  # last, so a reader never sees a valid magic on a half header
        return cls(root, buf, sem, header)

    @staticmethod
    def _new_segment(name: str, size: int) -> mmap.mmap:
        import posix_ipc

        with contextlib.suppress(posix_ipc.ExistentialError):
            posix_ipc.unlink_shared_memory(name)
        shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=MODE, size=size)
        try:
            os.fchmod(shm.fd, MODE)  # the mode given at creation is filtered by the umask
            return mmap.mmap(shm.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            shm.close_fd()

    @property
    def generation(self) -> int:
        return self.header.generation

    def set_path(self, server: int, path: int, *, last_rx: float, seq: int, state: int,
                 rx_count: int, drops: int) -> None:
        h = self.header
        if not (0 <= server < h.n_servers and 0 <= path < h.n_paths):
            raise IndexError(f"path record [{server}][{path}] is outside "
                             f"{h.n_servers} x {h.n_paths}")
        off = record_offset(h.n_paths, server, path)
        i = server * h.n_paths + path
        with self._mutex:
            lock = self._locks[i]
            self._words[off // 8] = lock + 1
            RECORD_DATA.pack_into(self._buf, off + 8, last_rx, seq, rx_count, drops, state)
            self._words[off // 8] = lock + 2
            self._locks[i] = lock + 2

    def publish(self, snapshot: dict[str, Any]) -> None:
        data = json.dumps(snapshot, separators=(",", ":")).encode()
        h = self.header
        if len(data) > h.capacity:
            raise StateError(f"the status snapshot is {len(data)} bytes, more than the "
                             f"{h.capacity} bytes a state region slot holds")
        with self._mutex:
            slot = 1 - h.active
            off = slot_offset(h.n_servers, h.n_paths, h.capacity, slot)
            seq = self._slot_seq[slot]
            self._words[off // 8] = seq + 1
            self._buf[off + SLOT.size:off + SLOT.size + len(data)] = data
            SLOT_DATA.pack_into(self._buf, off + 8, len(data), zlib.crc32(data))
            self._words[off // 8] = seq + 2
            self._slot_seq[slot] = seq + 2
            self._flip(slot)

    def _flip(self, slot: int) -> None:
        h = self.header._replace(seq=self.header.seq + 2, active=slot, updated=time.time())
        self._words[HEADER_SEQ_OFFSET // 8] = h.seq - 1
        ACTIVE.pack_into(self._buf, ACTIVE_OFFSET, slot)
        UPDATED.pack_into(self._buf, UPDATED_OFFSET, h.updated)
        self._words[HEADER_SEQ_OFFSET // 8] = h.seq
        self.header = h

    def close(self, unlink: bool = True) -> None:
        """Give up the writer role; with ``unlink`` also remove the segment and the semaphore,
        unless another writer has taken them over since (then they are its, not ours)."""
        if self._sem is None:
            return
        with self._mutex:
            self._words.release()
            self._buf.close()
            current = peek_header(self.name)
            ours = current is not None and current.writer_pid == os.getpid() \
                and current.generation == self.header.generation
            if unlink and ours:
                remove_region(self.root)
            elif ours:
                self._sem.release()
            self._sem.close()
            self._sem = None

    def __enter__(self) -> StateWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
