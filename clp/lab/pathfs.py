"""The lab's disk paths: a small FUSE file system, one file per (server, shared disk), each a
passthrough to the disk's image, whose I/O can be made to hang or fail one path at a time.

``python -m clp.lab.pathfs --mount DIR --control SOCKET --file NAME=IMAGE ...`` mounts DIR
(``fuse.clplab``) and serves ``DIR/NAME.img`` for every ``--file``. It speaks the kernel's FUSE
protocol on ``/dev/fuse`` itself (no libfuse): a handful of reader threads take requests, a
request of a path that hangs is parked (kept with its ``unique``, holding no thread), so a hung
path never blocks the others. Files are opened with ``FOPEN_DIRECT_IO``: the kernel keeps no
page cache of them and every read and write reaches the image here with ``pread``/``pwrite``,
through the host's page cache of the image, which every path shares (what one server writes
through its path is what another reads through its own).

Each path has a mode:

- ``ok``: passthrough;
- ``hang``: every data request (read, write, fsync, fallocate) is parked until the mode
  changes, as on a dead SAN path: the loop device above it, and every process reading or
  writing that server's disk, wait (in D state);
- ``eio``: every data request fails with EIO, as with a pulled cable, and so do the requests
  parked by a hang when the mode changes to ``eio`` (this is how a hung path is released).

Switching ``hang`` -> ``ok`` serves the parked requests. Metadata (lookup, getattr, open, flush,
release, statfs, readdir) always answers, so the host's tools (``losetup``, ``ls``, teardown)
never block on a path.

Control: a UNIX stream socket; one JSON request per connection, one JSON answer once it is
applied: ``{"op": "modes"}``, ``{"op": "set", "mode": "eio", "files": ["server1-disk1"]}``
(no ``files``: every path). SIGTERM (or ``{"op": "stop"}``): every parked request gets EIO, the
mount is detached, the process exits; its ``/dev/fuse`` descriptor closing aborts the connection,
so nothing ever waits on a dead daemon. The lab's side is :mod:`clp.lab.shared_disk`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

MODES = ("ok", "hang", "eio")
FSTYPE = "fuse.clplab"
READERS = 8  # threads reading /dev/fuse; a parked request holds none of them
MAX_PARKED = 4096  # per daemon; beyond it a hung path fails requests (never grows unbounded)
MAX_WRITE = 1024 * 1024
MAX_PAGES = MAX_WRITE // 4096
BUFSIZE = MAX_WRITE + 8192  # the kernel wants room for a full write and its headers
CONTROL_TIMEOUT = 5.0
CONTROL_MAX = 64 * 1024
ATTR_VALID = 1  # seconds the kernel may keep an attribute or a name
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2

# <linux/fuse.h>
KERNEL_MAJOR, KERNEL_MINOR = 7, 31
FUSE_BIG_WRITES = 1 << 5
FUSE_MAX_PAGES = 1 << 22
FOPEN_DIRECT_IO = 1 << 0
(LOOKUP, FORGET, GETATTR, SETATTR, OPEN, READ, WRITE, STATFS, RELEASE, FSYNC, FLUSH, INIT,
 OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, ACCESS, INTERRUPT, DESTROY, BATCH_FORGET,
 FALLOCATE) = (1, 2, 3, 4, 14, 15, 16, 17, 18, 20, 25, 26, 27, 28, 29, 30, 34, 36, 38, 42, 43)
NO_REPLY = (FORGET, BATCH_FORGET, INTERRUPT)
DATA_OPS = (READ, WRITE, FSYNC, FALLOCATE)
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")  # len error unique
INIT_IN = struct.Struct("<IIII")  # major minor max_readahead flags
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ENTRY_OUT = struct.Struct("<QQQQII")  # + ATTR
ATTR_OUT = struct.Struct("<QII")  # + ATTR
OPEN_OUT = struct.Struct("<QII")
RW_IN = struct.Struct("<QQIIQII")  # fh offset size flags lock_owner flags padding
WRITE_OUT = struct.Struct("<II")
FSYNC_IN = struct.Struct("<QII")
FALLOCATE_IN = struct.Struct("<QQQII")
INTERRUPT_IN = struct.Struct("<Q")
DIRENT = struct.Struct("<QQII")
STATFS_OUT = struct.Struct("<QQQQQIIII6I")
ROOT = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def log(text: str) -> None:
    print(f"{time.strftime('%F %T')} clp.lab.pathfs: {text}", file=sys.stderr, flush=True)


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


class Refused(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(os.strerror(err))
        self.err = err


class PathFS:
    def __init__(self, mountpoint: str, files: dict[str, str]) -> None:
        self.mountpoint = mountpoint
        self.paths: dict[int, DiskPath] = {}
        self.by_name: dict[str, DiskPath] = {}
        for node, (name, image) in enumerate(sorted(files.items()), ROOT + 1):
            path = DiskPath(name, node, os.open(image, os.O_RDWR | os.O_CLOEXEC))
            self.paths[node] = self.by_name[name] = path
        self.fd = -1
        self.started = time.time()
        self.parked_count = 0
        self.count_lock = threading.Lock()

    # mounting
    def mount(self) -> None:
        self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = (f"fd={self.fd},rootmode=40000,user_id=0,group_id=0,default_permissions,"
                "allow_other")
        rc = _libc.mount(b"clplab", self.mountpoint.encode(), FSTYPE.encode(),
                         MS_NOSUID | MS_NODEV, opts.encode())
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {FSTYPE} on {self.mountpoint}: {os.strerror(err)}")

    def unmount(self) -> None:
        _libc.umount2(self.mountpoint.encode(), MNT_DETACH)

    # the request loop of one reader thread: ends when the mount goes (ENODEV)
    def serve(self) -> None:
        buf = bytearray(BUFSIZE)
        view = memoryview(buf)
        while True:
            try:
                n = os.readv(self.fd, [buf])
            except OSError as e:
                if e.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                    continue  # ENOENT: a request interrupted before we read it
                if e.errno != errno.ENODEV:
                    log(f"reading /dev/fuse: {e}")
                return
            if n < IN_HEADER.size:
                continue
            try:
                self.handle(view[:n])
            except Exception as e:  # a bug must not take the reader (and the paths) down
                log(f"request failed: {e!r}")

    def handle(self, req: memoryview) -> None:
        _, opcode, unique, node, *_ = IN_HEADER.unpack_from(req)
        if opcode == INTERRUPT:
            return self.interrupt(INTERRUPT_IN.unpack_from(req, IN_HEADER.size)[0])
        if opcode in NO_REPLY:
            return None
        if opcode in DATA_OPS and node in self.paths:
            return self.data(self.paths[node], unique, opcode, req)
        try:
            payload = self.meta(opcode, node, req)
        except Refused as e:
            return self.reply(unique, -e.err)
        except OSError as e:
            return self.reply(unique, -(e.errno or errno.EIO))
        return self.reply(unique, 0, *payload)

    def reply(self, unique: int, error: int, *payload: bytes | memoryview) -> None:
        size = OUT_HEADER.size + sum(len(p) for p in payload)
        try:
            os.writev(self.fd, [OUT_HEADER.pack(size, error, unique), *payload])
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV):  # interrupted / aborted: no waiter
                log(f"reply to {unique}: {e}")

    # metadata: always answered, whatever the modes
    def meta(self, opcode: int, node: int, req: memoryview) -> tuple[bytes, ...]:
        body = req[IN_HEADER.size:]
        if opcode == INIT:
            return (self.init(body),)
        if node != ROOT and node not in self.paths:
            raise Refused(errno.ENOENT)
        if opcode == LOOKUP:
            name = bytes(body).split(b"\0", 1)[0].decode(errors="replace")
            path = self.by_name.get(name.removesuffix(".img")) if name.endswith(".img") else None
            if node != ROOT or path is None:
                raise Refused(errno.ENOENT)
            return (ENTRY_OUT.pack(path.node, 0, ATTR_VALID, ATTR_VALID, 0, 0),
                    self.attr(path.node))
        if opcode == GETATTR:
            return ATTR_OUT.pack(ATTR_VALID, 0, 0), self.attr(node)
        if opcode in (OPEN, OPENDIR):
            if (opcode == OPENDIR) != (node == ROOT):
                raise Refused(errno.EISDIR if node == ROOT else errno.ENOTDIR)
            return (OPEN_OUT.pack(node, FOPEN_DIRECT_IO if opcode == OPEN else 0, 0),)
        if opcode in (RELEASE, RELEASEDIR, FLUSH, FSYNCDIR, ACCESS, DESTROY):
            return ()
        if opcode == READDIR:
            _, offset, size, *_ = RW_IN.unpack_from(body)
            return (self.readdir(offset, size),)
        if opcode == STATFS:
            blocks = sum(os.fstat(p.image_fd).st_size for p in self.paths.values()) // 4096
            return (STATFS_OUT.pack(blocks, 0, 0, len(self.paths), 0, 4096, 255, 4096, 0,
                                    *[0] * 6),)
        if opcode == SETATTR:
            raise Refused(errno.EPERM)  # the paths' sizes are the images'
        raise Refused(errno.ENOSYS)

    def init(self, body: memoryview) -> bytes:
        major, minor, readahead, flags = INIT_IN.unpack_from(body)
        if major != KERNEL_MAJOR:
            raise Refused(errno.EPROTO)
        log(f"kernel FUSE protocol {major}.{minor}; answering 7.{min(minor, KERNEL_MINOR)}")
        return INIT_OUT.pack(KERNEL_MAJOR, min(minor, KERNEL_MINOR), readahead,
                             flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES), 16, 12, MAX_WRITE, 1,
                             MAX_PAGES, 0, 0, *[0] * 7)

    def attr(self, node: int) -> bytes:
        if node == ROOT:
            t = int(self.started)
            return ATTR.pack(ROOT, 0, 0, t, t, t, 0, 0, 0, stat.S_IFDIR | 0o755,
                             2, 0, 0, 0, 4096, 0)
        st = os.fstat(self.paths[node].image_fd)
        return ATTR.pack(node, st.st_size, st.st_blocks, int(st.st_atime), int(st.st_mtime),
                         int(st.st_ctime), 0, 0, 0, stat.S_IFREG | 0o600, 1, 0, 0, 0, 4096, 0)

    def readdir(self, offset: int, size: int) -> bytes:
        entries = [(ROOT, ".", stat.S_IFDIR), (ROOT, "..", stat.S_IFDIR)]
        entries += [(p.node, f"{p.name}.img", stat.S_IFREG) for p in self.paths.values()]
        out = b""
        for index in range(offset, len(entries)):
            node, name, kind = entries[index]
            raw = name.encode()
            entry = DIRENT.pack(node, index + 1, len(raw), kind >> 12) + raw
            entry += b"\0" * (-len(entry) % 8)
            if len(out) + len(entry) > size:
                break
            out += entry
        return out

    # data: what the path's mode says
    def data(self, path: DiskPath, unique: int, opcode: int, req: memoryview) -> None:
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
                if mode == "eio":
                    self.reply(p.unique, -errno.EIO)
                else:
                    with path.lock:
                        error, payload = self._io(path, p.opcode, memoryview(p.request))
                    self.reply(p.unique, error, payload)
            if before != mode or released:
                log(f"{name}: {before} -> {mode}" +
                    (f" ({len(released)} parked requests answered)" if released else ""))

    def modes(self) -> dict[str, Any]:
        return {"modes": {n: p.mode for n, p in sorted(self.by_name.items())},
                "parked": {n: len(p.parked) for n, p in sorted(self.by_name.items())}}

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "set":
            files = req.get("files")
            self.set_mode(list(self.by_name) if files is None else list(files), req.get("mode"))
        elif op == "stop":
            os.kill(os.getpid(), signal.SIGTERM)
        elif op != "modes":
            raise ValueError(f"unknown op {op!r}")
        return {"ok": True, "pid": os.getpid(), **self.modes()}

    def shutdown(self) -> None:
        """Every parked request fails, the mount goes; the caller exits (aborting the rest)."""
        with contextlib.suppress(ValueError):
            self.set_mode(list(self.by_name), "eio")
        self.unmount()


def control_loop(fs: PathFS, sock: socket.socket, stop: threading.Event) -> None:
    """Answer control requests one at a time until ``stop`` (each bounded by a timeout)."""
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.settimeout(CONTROL_TIMEOUT)
            try:
                raw = b""
                while not raw.endswith(b"\n") and len(raw) < CONTROL_MAX:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    raw += chunk
                try:
                    answer = fs.command(json.loads(raw or b"{}"))
                except (ValueError, TypeError, AttributeError) as e:
                    answer = {"ok": False, "error": str(e)}
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError as e:
                log(f"control connection: {e}")


def parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clp.lab.pathfs")
    p.add_argument("--mount", required=True, metavar="DIR")
    p.add_argument("--control", required=True, metavar="SOCKET")
    p.add_argument("--file", action="append", default=[], metavar="NAME=IMAGE")
    return p.parse_args(args)


def main(args: list[str]) -> int:
    opts = parse(args)
    files = dict(f.split("=", 1) for f in opts.file)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        fs = PathFS(opts.mount, files)
        fs.mount()
    except (OSError, ValueError) as e:
        log(str(e))
        return 1
    readers = [threading.Thread(target=fs.serve, name=f"fuse{i}", daemon=True)
               for i in range(READERS)]
    for t in readers:
        t.start()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(opts.control)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(opts.control)
    os.chmod(opts.control, 0o600)
    sock.listen(16)
    control = threading.Thread(target=control_loop, args=(fs, sock, stop), daemon=True)
    control.start()
    log(f"serving {', '.join(sorted(files))} at {opts.mount}")
    while not stop.wait(0.5):  # until SIGTERM, or the mount is gone (every reader ended)
        if not any(t.is_alive() for t in readers):
            log("the mount is gone")
            break
    fs.shutdown()
    with contextlib.suppress(OSError):
        os.unlink(opts.control)
    log("stopped")
    os._exit(0)  # reader threads still block in read(2); closing /dev/fuse aborts the rest


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
