"""The lab's FUSE file systems, without libfuse: the kernel's protocol on ``/dev/fuse``, and a
flat file system (one directory of files) that :mod:`clp.lab.pathfs` (the disk paths) and
:mod:`clp.lab.watchdogfs` (the watchdog devices) build on.

:class:`FlatFS` answers the metadata (lookup, getattr, open, release, readdir, statfs) for its
files, which are nodes 2, 3, ... of the root directory, and hands a file's data requests (read,
write, fsync, fallocate) and ioctls to its subclass. A daemon (:func:`serve`) runs a few reader
threads on ``/dev/fuse`` and a control socket (one JSON request per connection, one JSON
answer), until SIGTERM or the mount goes.
"""

from __future__ import annotations

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
from collections.abc import Callable
from types import FrameType
from typing import Any

READERS = 8  # threads reading /dev/fuse
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
 OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, ACCESS, INTERRUPT, DESTROY, IOCTL, BATCH_FORGET,
 FALLOCATE) = (1, 2, 3, 4, 14, 15, 16, 17, 18, 20, 25, 26, 27, 28, 29, 30, 34, 36, 38, 39, 42,
               43)
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
RELEASE_IN = struct.Struct("<QIIQ")  # fh flags release_flags lock_owner
RW_IN = struct.Struct("<QQIIQII")  # fh offset size flags lock_owner flags padding
WRITE_OUT = struct.Struct("<II")
FSYNC_IN = struct.Struct("<QII")
FALLOCATE_IN = struct.Struct("<QQQII")
INTERRUPT_IN = struct.Struct("<Q")
IOCTL_IN = struct.Struct("<QIIQII")  # fh flags cmd arg in_size out_size
IOCTL_OUT = struct.Struct("<iIII")  # result flags in_iovs out_iovs
DIRENT = struct.Struct("<QQII")
STATFS_OUT = struct.Struct("<QQQQQIIII6I")
ROOT = 1



_libc = ctypes.CDLL(None, use_errno=True)


class Refused(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(os.strerror(err))
        self.err = err


class FlatFS:
    """One directory of files (see the module); ``name`` is the daemon's name for its log."""

    name = "clp.lab.fusefs"
    fstype = "fuse.clplab"

    def __init__(self, mountpoint: str, files: list[str]) -> None:
        self.mountpoint = mountpoint
        self.files = dict(enumerate(sorted(files), ROOT + 1))  # node -> file name
        self.node_of = {name: node for node, name in self.files.items()}
        self.fd = -1
        self.started = time.time()

    def log(self, text: str) -> None:
        print(f"{time.strftime('%F %T')} {self.name}: {text}", file=sys.stderr, flush=True)

    # what a subclass provides
    def stat_of(self, node: int) -> tuple[int, int, int]:
        """(size, blocks, mtime) of a file."""
        return 0, 0, int(self.started)

    def opened(self, node: int) -> tuple[int, int]:
        """A file is opened: (its handle, the FOPEN flags); Refused to refuse."""
        return node, FOPEN_DIRECT_IO

    def released(self, node: int, fh: int) -> None:
        """The last descriptor of the open that got handle ``fh`` is closed."""

    def data(self, node: int, unique: int, opcode: int, req: memoryview) -> None:
        """A data request of a file (read, write, fsync, fallocate); must reply."""
        self.reply(unique, -errno.ENOSYS)

    def ioctl(self, node: int, cmd: int, data: bytes, out_size: int) -> tuple[int, bytes]:
        """An ioctl of a file: (result, out data); Refused for an error."""
        raise Refused(errno.ENOTTY)

    def interrupt(self, unique: int) -> None:
        """A waiter of request ``unique`` got a signal."""

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        """One control request; its answer."""
        raise ValueError(f"unknown op {req.get('op')!r}")

    def shutdown(self) -> None:
        """Before the daemon exits: answer what waits, detach the mount."""
        self.unmount()

    # mounting
    def mount(self) -> None:
        self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = (f"fd={self.fd},rootmode=40000,user_id=0,group_id=0,default_permissions,"
                "allow_other")
        rc = _libc.mount(b"clplab", self.mountpoint.encode(), self.fstype.encode(),
                         MS_NOSUID | MS_NODEV, opts.encode())
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {self.fstype} on {self.mountpoint}: {os.strerror(err)}")

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
                    self.log(f"reading /dev/fuse: {e}")
                return
            if n < IN_HEADER.size:
                continue
            try:
                self.handle(view[:n])
            except Exception as e:  # a bug must not take the reader (and the files) down
                self.log(f"request failed: {e!r}")

    def handle(self, req: memoryview) -> None:
        _, opcode, unique, node, *_ = IN_HEADER.unpack_from(req)
        if opcode == INTERRUPT:
            return self.interrupt(INTERRUPT_IN.unpack_from(req, IN_HEADER.size)[0])
        if opcode in NO_REPLY:
            return None
        try:
            if opcode in DATA_OPS and node in self.files:
                return self.data(node, unique, opcode, req)
            payload = self.meta(opcode, node, req)
        except Refused as e:
            return self.reply(unique, -e.err)
        except OSError as e:
            return self.reply(unique, -(e.errno or errno.EIO))
        except Exception as e:  # noqa: BLE001 - a bug: the caller gets EIO, never a hang
            self.log(f"request {opcode} failed: {e!r}")
            return self.reply(unique, -errno.EIO)
        return self.reply(unique, 0, *payload)

    def reply(self, unique: int, error: int, *payload: bytes | memoryview) -> None:
        size = OUT_HEADER.size + sum(len(p) for p in payload)
        try:
            os.writev(self.fd, [OUT_HEADER.pack(size, error, unique), *payload])
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV):  # interrupted / aborted: no waiter
                self.log(f"reply to {unique}: {e}")

    # metadata
    def meta(self, opcode: int, node: int, req: memoryview) -> tuple[bytes, ...]:
        body = req[IN_HEADER.size:]
        if opcode == INIT:
            return (self.init(body),)
        if node != ROOT and node not in self.files:
            raise Refused(errno.ENOENT)
        if opcode == LOOKUP:
            name = bytes(body).split(b"\0", 1)[0].decode(errors="replace")
            found = self.node_of.get(name)
            if node != ROOT or found is None:
                raise Refused(errno.ENOENT)
            return (ENTRY_OUT.pack(found, 0, ATTR_VALID, ATTR_VALID, 0, 0), self.attr(found))
        if opcode == GETATTR:
            return ATTR_OUT.pack(ATTR_VALID, 0, 0), self.attr(node)
        if opcode in (OPEN, OPENDIR):
            if (opcode == OPENDIR) != (node == ROOT):
                raise Refused(errno.EISDIR if node == ROOT else errno.ENOTDIR)
            fh, flags = self.opened(node) if opcode == OPEN else (node, 0)
            return (OPEN_OUT.pack(fh, flags, 0),)
        if opcode == RELEASE:
            self.released(node, RELEASE_IN.unpack_from(body)[0])
            return ()
        if opcode in (RELEASEDIR, FLUSH, FSYNCDIR, ACCESS, DESTROY):
            return ()
        if opcode == IOCTL and node != ROOT:
            _, _, cmd, _, in_size, out_size = IOCTL_IN.unpack_from(body)
            data = bytes(body[IOCTL_IN.size:IOCTL_IN.size + in_size])
            result, out = self.ioctl(node, cmd, data, out_size)
            return IOCTL_OUT.pack(result, 0, 0, 0), out[:out_size]
        if opcode == READDIR:
            _, offset, size, *_ = RW_IN.unpack_from(body)
            return (self.readdir(offset, size),)
        if opcode == STATFS:
            blocks = sum(self.stat_of(n)[0] for n in self.files) // 4096
            return (STATFS_OUT.pack(blocks, 0, 0, len(self.files), 0, 4096, 255, 4096, 0,
                                    *[0] * 6),)
        if opcode == SETATTR:
            raise Refused(errno.EPERM)  # sizes and modes are the daemon's
        raise Refused(errno.ENOSYS)

    def init(self, body: memoryview) -> bytes:
        major, minor, readahead, flags = INIT_IN.unpack_from(body)
        if major != KERNEL_MAJOR:
            raise Refused(errno.EPROTO)
        self.log(f"kernel FUSE protocol {major}.{minor}; answering 7.{min(minor, KERNEL_MINOR)}")
        return INIT_OUT.pack(KERNEL_MAJOR, min(minor, KERNEL_MINOR), readahead,
                             flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES), 16, 12, MAX_WRITE, 1,
                             MAX_PAGES, 0, 0, *[0] * 7)

    def attr(self, node: int) -> bytes:
        if node == ROOT:
            t = int(self.started)
            return ATTR.pack(ROOT, 0, 0, t, t, t, 0, 0, 0, stat.S_IFDIR | 0o755,
                             2, 0, 0, 0, 4096, 0)
        size, blocks, mtime = self.stat_of(node)
        return ATTR.pack(node, size, blocks, mtime, mtime, mtime, 0, 0, 0, stat.S_IFREG | 0o600,
                         1, 0, 0, 0, 4096, 0)

    def readdir(self, offset: int, size: int) -> bytes:
        entries = [(ROOT, ".", stat.S_IFDIR), (ROOT, "..", stat.S_IFDIR)]
        entries += [(node, name, stat.S_IFREG) for node, name in self.files.items()]
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


def control_loop(fs: FlatFS, sock: socket.socket, stop: threading.Event) -> None:
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
                    request = json.loads(raw or b"{}")
                    if request.get("op") == "stop":
                        os.kill(os.getpid(), signal.SIGTERM)
                        answer = {"ok": True, "pid": os.getpid()}
                    else:
                        answer = fs.command(request)
                except (ValueError, TypeError, AttributeError) as e:
                    answer = {"ok": False, "error": str(e)}
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError as e:
                fs.log(f"control connection: {e}")


def serve(make: Callable[[], FlatFS], control: str,
          background: Callable[[FlatFS, threading.Event], None] | None = None) -> int:
    """Run a daemon: mount the file system ``make()`` builds, serve it and its control socket
    (plus ``background(fs, stop)`` in a thread, if given) until SIGTERM or the mount goes;
    then :meth:`FlatFS.shutdown` and exit."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        fs = make()
        fs.mount()
    except (OSError, ValueError) as e:
        print(f"{time.strftime('%F %T')} {control}: {e}", file=sys.stderr, flush=True)
        return 1
    readers = [threading.Thread(target=fs.serve, name=f"fuse{i}", daemon=True)
               for i in range(READERS)]
    for t in readers:
        t.start()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(control)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(control)
    os.chmod(control, 0o600)
    sock.listen(16)
    threading.Thread(target=control_loop, args=(fs, sock, stop), daemon=True).start()
    if background is not None:
        threading.Thread(target=background, args=(fs, stop), daemon=True).start()
    fs.log(f"serving {', '.join(fs.files.values())} at {fs.mountpoint}")
    while not stop.wait(0.5):  # until SIGTERM, or the mount is gone (every reader ended)
        if not any(t.is_alive() for t in readers):
            fs.log("the mount is gone")
            break
    fs.shutdown()
    with contextlib.suppress(OSError):
        os.unlink(control)
    fs.log("stopped")
    os._exit(0)  # reader threads still block in read(2); closing /dev/fuse aborts the rest
