"""The lab's disk paths: a small FUSE file system, one file per (server, shared disk), each a
passthrough to the disk's image, whose I/O can be made to hang or fail one path at a time.

``python -m clp.lab.pathfs --mount DIR --control SOCKET --file NAME=IMAGE ...`` mounts DIR
(``fuse.clplab``) and serves ``DIR/NAME.img`` for every ``--file``. It speaks the kernel's FUSE
protocol on ``/dev/fuse`` itself (:mod:`clp.lab.fusefs`): a handful of reader threads take
requests, a request of a path that hangs is parked (kept with its ``unique``, holding no
thread), so a hung path never blocks the others. Files are opened with ``FOPEN_DIRECT_IO``:
the kernel keeps no page cache of them and every read and write reaches the image here with
``pread``/``pwrite``, through the host's page cache of the image, which every path shares
(what one server writes through its path is what another reads through its own).

Each path has a mode:

- ``ok``: passthrough;
- ``hang``: every data request (read, write, fsync, fallocate) is parked until the mode
  changes, as on a dead SAN path: the loop device above it, and every process reading or
  writing that server's disk, wait (in D state);
- ``eio``: every data request fails with EIO, as with a pulled cable, and so do the requests
  parked by a hang when the mode changes to ``eio`` (this is how a hung path is released).

- ``cut``: as ``eio``, set by the lab's power-off of the server (its writes stop with its
  power); its restart gives the path back, which it does not for a path set to ``eio`` by hand.

Switching ``hang`` -> ``ok`` serves the parked requests. Metadata (lookup, getattr, open, flush,
release, statfs, readdir) always answers, so the host's tools (``losetup``, ``ls``, teardown)
never block on a path.

Control: a UNIX stream socket; one JSON request per connection, one JSON answer once it is
applied: ``{"op": "modes"}`` (or ``state``), ``{"op": "set", "mode": "eio", "files":
["server1-disk1"]}`` (no ``files``: every path). SIGTERM (or ``{"op": "stop"}``): every parked
request gets EIO, the mount is detached, the process exits; its ``/dev/fuse`` descriptor closing
aborts the connection, so nothing ever waits on a dead daemon. The lab's side is
:mod:`clp.lab.shared_disk`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from clp.lab import fusefs
from clp.lab.fusefs import (
    FALLOCATE,
    FALLOCATE_IN,
    FSYNC,
    IN_HEADER,
    READ,
    RW_IN,
    WRITE,
    WRITE_OUT,
    FlatFS,
)

MODES = ("ok", "hang", "eio", "cut")
MAX_PARKED = 4096  # per daemon; beyond it a hung path fails requests (never grows unbounded)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


@dataclass
class Parked:
    unique: int
    opcode: int
    request: bytes  # the whole request, header included (the reader's buffer is reused)


@dataclass
class DiskPath:
    """One server's path to one disk: a file of the mount, its image, its mode."""

    name: str  # server1-disk1 (the file is server1-disk1.img)
    node: int
    image_fd: int
    mode: str = "ok"
    lock: threading.Lock = field(default_factory=threading.Lock)  # held during its I/O
    parked: list[Parked] = field(default_factory=list)


class PathFS(FlatFS):
    name = "clp.lab.pathfs"

    def __init__(self, mountpoint: str, files: dict[str, str]) -> None:
        super().__init__(mountpoint, [f"{name}.img" for name in files])
        self.paths: dict[int, DiskPath] = {}
        self.by_name: dict[str, DiskPath] = {}
        for name, image in files.items():
            node = self.node_of[f"{name}.img"]
            path = DiskPath(name, node, os.open(image, os.O_RDWR | os.O_CLOEXEC))
            self.paths[node] = self.by_name[name] = path
        self.parked_count = 0
        self.count_lock = threading.Lock()

    def stat_of(self, node: int) -> tuple[int, int, int]:
        st = os.fstat(self.paths[node].image_fd)
        return st.st_size, st.st_blocks, int(st.st_mtime)

    # data: what the path's mode says
    def data(self, node: int, unique: int, opcode: int, req: memoryview) -> None:
        path = self.paths[node]
        with path.lock:
            if path.mode == "hang" and self._park():
                path.parked.append(Parked(unique, opcode, bytes(req)))
                return
            error, payload = self._io(path, opcode, req) if path.mode == "ok" else \
                (-errno.EIO, b"")
        self.reply(unique, error, payload)

    def _park(self) -> bool:
        with self.count_lock:
            if self.parked_count >= MAX_PARKED:
                return False
            self.parked_count += 1
            return True

    def _unpark(self, n: int) -> None:
        with self.count_lock:
            self.parked_count -= n

    def _io(self, path: DiskPath, opcode: int, req: memoryview) -> tuple[int, bytes]:
        """One request on the image (the caller holds the path's lock): (error, payload)."""
        at = IN_HEADER.size
        try:
            if opcode == READ:
                _, offset, size, *_ = RW_IN.unpack_from(req, at)
                return 0, os.pread(path.image_fd, size, offset)
            if opcode == WRITE:
                _, offset, size, *_ = RW_IN.unpack_from(req, at)
                data = req[at + RW_IN.size:at + RW_IN.size + size]
                done = 0
                for _ in range(64):  # pwrite on a regular file is short only at ENOSPC
                    if done >= size:
                        break
                    done += os.pwrite(path.image_fd, data[done:], offset + done)
                return 0, WRITE_OUT.pack(done, 0)
            if opcode == FSYNC:
                return 0, b""  # the image's page cache is the shared disk; nothing to persist
            if opcode == FALLOCATE:
                _, offset, length, mode, _ = FALLOCATE_IN.unpack_from(req, at)
                if _libc.fallocate(path.image_fd, mode, offset, length) != 0:
                    return -ctypes.get_errno(), b""
                return 0, b""
        except OSError as e:
            return -(e.errno or errno.EIO), b""
        return -errno.ENOSYS, b""

    def interrupt(self, unique: int) -> None:
        """A waiter got a signal: a parked request of it ends with EINTR (a loop device's
        requests are never interrupted; a process reading a path file directly may be)."""
        for path in self.paths.values():
            with path.lock:
                found = [p for p in path.parked if p.unique == unique]
                path.parked = [p for p in path.parked if p.unique != unique]
            if found:
                self._unpark(len(found))
                self.reply(unique, -errno.EINTR)
                return

    # control
    def set_mode(self, names: list[str], mode: str) -> None:
        """Apply ``mode`` to ``names``; returns once the parked requests are answered."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            raise ValueError(f"no path {', '.join(unknown)}")
        for name in names:
            path = self.by_name[name]
            with path.lock:
                before, path.mode = path.mode, mode
                released = path.parked if mode != "hang" else []
                if mode != "hang":
                    path.parked = []
            self._unpark(len(released))
            for p in released:  # in arrival order
                if mode in ("eio", "cut"):
                    self.reply(p.unique, -errno.EIO)
                else:
                    with path.lock:
                        error, payload = self._io(path, p.opcode, memoryview(p.request))
                    self.reply(p.unique, error, payload)
            if before != mode or released:
                self.log(f"{name}: {before} -> {mode}" +
                    (f" ({len(released)} parked requests answered)" if released else ""))

    def modes(self) -> dict[str, Any]:
        return {"modes": {n: p.mode for n, p in sorted(self.by_name.items())},
                "parked": {n: len(p.parked) for n, p in sorted(self.by_name.items())}}

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "set":
            files = req.get("files")
            self.set_mode(list(self.by_name) if files is None else list(files), req.get("mode"))
        elif op not in ("modes", "state"):
            raise ValueError(f"unknown op {op!r}")
        return {"ok": True, "pid": os.getpid(), **self.modes()}

    def shutdown(self) -> None:
        """Every parked request fails, the mount goes; the caller exits (aborting the rest)."""
        with contextlib.suppress(ValueError):
            self.set_mode(list(self.by_name), "eio")
        self.unmount()

def parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clp.lab.pathfs")
    p.add_argument("--mount", required=True, metavar="DIR")
    p.add_argument("--control", required=True, metavar="SOCKET")
    p.add_argument("--file", action="append", default=[], metavar="NAME=IMAGE")
    return p.parse_args(args)


def main(args: list[str]) -> int:
    opts = parse(args)
    files = dict(f.split("=", 1) for f in opts.file)
    return fusefs.serve(lambda: PathFS(opts.mount, files), opts.control)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
