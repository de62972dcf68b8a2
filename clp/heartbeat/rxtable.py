"""The heartbeat receive table: every received record is verified and counted in C
(``native/hbrx.c``, the cffi module ``clp._hbrx_native``), and only news reaches Python.

One table per ``clusterpro`` (:class:`clp.heartbeat.base.PathContext` makes it; a mutex in C
lets the LAN paths' receive threads share it with the event loop), with an entry
per (sender, path): the last accepted (incarnation, sequence), when it arrived, and when the same
heartbeat first arrived on any path. A record is checked exactly as :func:`packet.decode`
checks it (size, magic/version/kind, HMAC-SHA256, cluster), then path and sender, lateness, and
replay (newer than the last accepted on its path: a larger incarnation, or the same and a larger
sequence), and then is:

- *news*, handed to the service at once: the entry is not marked quiet (:meth:`set_quiet`: the
  service marks an entry quiet while its server is Online and its path Normal), or it is the
  sender's newest heartbeat and its incarnation, state or bitmaps differ from the previous
  newest, or it declares this server Offline; and every record of a sender while some of its
  news is not acknowledged (:meth:`ack`), so that no copy or later record is taken before the
  news it follows;
- *quiet*: it only moves its path's timer; the entry keeps the newest, and the service takes
  the entries that changed (:meth:`pull`) before it reads or times anything;
- a drop, with the reason, for the path's :class:`clp.heartbeat.base.Receiver` to count and log.

At interval 0.1 s with 8 servers a server receives about 280 records a second; before this
table each cost 80-100 µs of Python (docs/performance.md).
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from clp._hbrx_native import ffi, lib
from clp.heartbeat.packet import Drop, Heartbeat

NEWS, QUIET, STALE = lib.HBRX_NEWS, lib.HBRX_QUIET, lib.HBRX_STALE
ANY_SENDER = -2  # hbrx_ingest's expect_sender: any member of the path
DROPS = {lib.HBRX_MALFORMED: Drop.MALFORMED, lib.HBRX_BAD_MAC: Drop.BAD_MAC,
         lib.HBRX_UNKNOWN_CLUSTER: Drop.UNKNOWN_CLUSTER,
         lib.HBRX_UNKNOWN_SENDER: Drop.UNKNOWN_SENDER, lib.HBRX_REPLAY: Drop.REPLAY,
         lib.HBRX_LATE: Drop.LATE}
BATCH = 64  # records per wait_lan or pull call


class Record(NamedTuple):
    """One record as the table returns it (a copy: the C buffer is reused)."""

    kind: int  # NEWS, QUIET (pulled), or minus a drop reason
    path: int  # the path it was received on
    sender: int
    heartbeat: Heartbeat
    arrived: float  # monotonic
    first: float  # monotonic: the first arrival of this heartbeat, on any path
    now_wall: float  # this server's wall clock when it was handled
    data: bytes  # drops: what was received (at most a packet's size)
    size: int  # drops: bytes received
    source: str  # LAN: the source address

    @property
    def drop(self) -> Drop | None:
        return DROPS.get(-self.kind)


# a pulled entry: (arrived, sender, path, first, incarnation, seq, heard, offline), unpacked
# from the C array in one call (struct hbrx_quiet)
Quiet = tuple[float, int, int, float, int, int, int, int]
_QUIET = struct.Struct("=diidQQII")
if _QUIET.size != ffi.sizeof("hbrx_quiet"):
    raise ImportError(f"clp._hbrx_native: hbrx_quiet has {ffi.sizeof('hbrx_quiet')} bytes, "
                      f"not {_QUIET.size}: rebuild it (pip install -e .)")


def _record(r: Any) -> Record:
    path = r.path if r.kind >= 0 else int.from_bytes(bytes(r.data[18:20]), "big")
    hb = Heartbeat(r.cluster_id, r.sender, path, r.incarnation, r.seq, r.sent, r.state, r.heard,
                   r.offline)
    return Record(r.kind, r.path, r.sender, hb, r.arrived, r.first, r.now_wall,
                  bytes(r.data[0:min(r.len, lib.HBRX_PACKET)]) if r.kind < 0 else b"", r.len,
                  ffi.string(r.source).decode(errors="replace"))


class RxTable:
    def __init__(self, key: bytes, cluster_id: int, my_index: int, n_servers: int,
                 n_paths: int) -> None:
        table = lib.hbrx_new(key, len(key), cluster_id, my_index, n_servers, n_paths)
        if table == ffi.NULL:
            raise ValueError(f"cannot make a heartbeat table for {n_servers} servers (at most "
                             f"{lib.HBRX_MAX_SERVERS}) and {n_paths} paths")
        self._t = ffi.gc(table, lib.hbrx_free)
        self._one = ffi.new("hbrx_record *")
        self._pulled = ffi.new("hbrx_quiet[]", BATCH)
        self._stats = (ffi.new("uint64_t *"), ffi.new("uint64_t *"), ffi.new("double *"))

    def set_members(self, path: int, members: Iterable[int]) -> None:
        self._check(lib.hbrx_set_members(self._t, path, sum(1 << i for i in set(members))))

    def set_quiet(self, sender: int, path: int, quiet: bool) -> None:
        self._check(lib.hbrx_set_quiet(self._t, sender, path, quiet))

    def ingest(self, path: int, data: bytes, expect_sender: int, arrived: float,
               now_wall: float, max_late: float = 0.0, count_stale: bool = True
               ) -> tuple[int, Record | None]:
        """(NEWS, its record), (QUIET, None), (STALE, None), or (-reason, the dropped one)."""
        code = lib.hbrx_ingest(self._t, path, data, len(data), expect_sender, arrived, now_wall,
                               max_late, count_stale, self._one)
        if code == -errno.EINVAL:
            raise ValueError(f"no path #{path} in the heartbeat table")
        if code in (QUIET, STALE):
            return code, None
        return code, _record(self._one)

    def ack(self, sender: int) -> None:
        """One news record of ``sender`` has been taken (or dropped): while some are not, every
        record of the sender is news (see native/hbrx.h)."""
        self._check(lib.hbrx_ack(self._t, sender))

    def renew(self) -> None:
        """The next record of every sender is news (its bitmaps are read afresh)."""
        lib.hbrx_renew(self._t)

    def add_lan_peer(self, path: int, sender: int, address: str) -> None:
        if lib.hbrx_lan_add_peer(self._t, path, sender, address.encode()) != 0:
            raise ValueError(f"{address!r} is not an IP address")

    @staticmethod
    def prepare_lan(fd: int) -> None:
        rc = lib.hbrx_lan_prepare(fd)
        if rc != 0:
            raise OSError(-rc, f"SO_TIMESTAMPNS: {errno.errorcode.get(-rc, -rc)}")

    def wait_lan(self, fd: int, path: int, wake_fd: int, timeout: float
                 ) -> tuple[list[Record], int]:
        """In a thread of its own: wait for datagrams on ``fd`` that need the service (news,
        drops), at most ``timeout`` seconds or until ``wake_fd`` is written; quiet ones only
        update the table meanwhile. (The records, and how many reads reported an error.)
        OSError when waiting itself fails (EBADF: the socket was closed)."""
        out = ffi.new("hbrx_record[]", BATCH)
        errors = ffi.new("int *")
        n = lib.hbrx_lan_wait(self._t, fd, path, wake_fd, int(timeout * 1000), out, BATCH,
                              errors)
        if n < 0:
            raise OSError(-n, errno.errorcode.get(-n, str(-n)))
        return [_record(out[i]) for i in range(n)], errors[0]

    def pull(self) -> list[Quiet]:
        """The entries quiet records updated since the last pull, oldest arrival first."""
        out: list[Quiet] = []
        n = BATCH
        while n == BATCH:  # more than a batch changed (many servers and paths)
            n = lib.hbrx_pull(self._t, self._pulled, BATCH)
            if n:
                out += _QUIET.iter_unpack(ffi.buffer(self._pulled, n * _QUIET.size))
        return sorted(out) if len(out) > BATCH else out

    def entry(self, sender: int, path: int) -> tuple[int, int, float]:
        """(records accepted, last sequence, when the last arrived on the wall clock)."""
        received, seq, wall = self._stats
        self._check(lib.hbrx_entry_stats(self._t, sender, path, received, seq, wall))
        return received[0], seq[0], wall[0]

    def delays(self, path: int) -> list[float]:
        out = ffi.new("double[]", lib.HBRX_DELAYS)
        n = self._check(lib.hbrx_delays(self._t, path, out, lib.HBRX_DELAYS))
        return list(out[0:n])

    @staticmethod
    def _check(rc: int) -> int:
        if rc < 0:
            raise ValueError(f"heartbeat table: {errno.errorcode.get(-rc, -rc)}")
        return rc
