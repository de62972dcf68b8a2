"""diskw (disk monitor): the shared disk still answers, through this server's own path to it.

``method`` (the product's):

- ``read_direct`` (READ (O_DIRECT), the default): read ``io_size`` bytes from the start of the
  device with ``O_DIRECT`` through the C helper in ``native/`` (the disk heartbeat's), so the
  read reaches the device, never this server's page cache. The device is opened read-only.
- ``read`` (READ): the same read through the page cache, after asking the kernel to drop what
  it holds of that range (``posix_fadvise DONTNEED``).
- ``tur`` (TUR): SCSI TEST UNIT READY through ``SG_IO`` (a device that is not SCSI, as a loop
  device, is an error saying so).
- ``write_file`` (WRITE (FILE)): write ``io_size`` bytes to the file ``path`` (on the mounted
  shared file system), fsync, remove it; ``write_direct`` opens it with ``O_DIRECT``. A full
  file system is an error, or only a Caution with ``disk_full: ignore``.

A path that fails returns an I/O error at once (an error of this check); a path that hangs never
returns, and the runner ends the check at the timeout: the monitor's timeout is what bounds the
detection of a hung disk. Until that check returns (its thread may stay blocked in the kernel)
no other check of this monitor starts; each interval meanwhile counts as a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from clp.config.issues import ConfigIssue
from clp.monitors.base import Check, MonitorType, caution, failed, normal

A = "suspend_monitors"
BLOCK = 4096


class DiskMonitor(MonitorType):
    name: ClassVar[str] = "diskw"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "method": {"enum": ["read_direct", "read", "tur", "write_file"],
                       "default": "read_direct", "x-apply": A},
            # the device to read (read_direct, read, tur); None: not set (cross_check)
            "device": {"type": ["string", "null"], "pattern": "^/", "default": None,
                       "x-apply": A,
                       "x-error": {"pattern": "{value!r} is not an absolute device path"}},
            # the file to write (write_file); None: not set (cross_check)
            "path": {"type": ["string", "null"], "pattern": "^/", "default": None, "x-apply": A,
                     "x-error": {"pattern": "{value!r} is not an absolute file path"}},
            "io_size": {"type": "integer", "minimum": 1, "maximum": 99999999,
                        "default": 2000000, "x-apply": A},
            "write_direct": {"type": "boolean", "default": False, "x-apply": A},
            "disk_full": {"enum": ["error", "ignore"], "default": "error", "x-apply": A},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 60, "timeout": 120, "retry": 0}
    default_recovery: ClassVar[str] = ""

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        method = item.get("method", "read_direct")
        if method == "write_file" and not item.get("path"):
            yield ConfigIssue(path, "diskw with method write_file needs the file to write "
                                    "(path)")
        elif method != "write_file" and not item.get("device"):
            yield ConfigIssue(path, f"diskw with method {method} needs the device to read "
                                    "(device)")

    def check(self) -> Check:
        method = self.params["method"]
        try:
            if method == "tur":
                return self._tur()
            if method == "write_file":
                return self._write()
            return self._read(direct=method == "read_direct")
        except OSError as e:
            if e.errno == errno.ENOSPC and self.params["disk_full"] == "ignore":
                return caution(f"{e.filename or self.params.get('path')}: disk full")
            return failed(f"{e.strerror or e}" if not e.filename else
                          f"{e.filename}: {e.strerror}")

    def _read(self, direct: bool) -> Check:
        device = self.params["device"]
        blocks = max(1, -(-self.params["io_size"] // BLOCK))
        if direct:
            from clp.heartbeat.diskio import DiskDevice

            dev = DiskDevice.open(device, read_only=True)
            try:
                dev.read(0, max(1, min(blocks, dev.size // BLOCK)))
            finally:
                dev.close()
            return normal()
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = self.params["io_size"]
            os.posix_fadvise(fd, 0, size, os.POSIX_FADV_DONTNEED)
            got = os.pread(fd, size, 0)
        finally:
            os.close(fd)
        if not got:
            return failed(f"{device}: nothing could be read")
        return normal()

    def _tur(self) -> Check:
        from clp.heartbeat.diskio import test_unit_ready

        device = self.params["device"]
        try:
            ready, sense, status = test_unit_ready(device, self.ctx.limit())
        except OSError as e:
            if e.errno in (errno.ENOTTY, errno.EINVAL):  # SG_IO refused: not a SCSI device
                return failed(f"{e.strerror} ({device} is not a SCSI device: method tur "
                              "needs one)")
            raise
        if ready:
            return normal()
        return failed(f"{device}: not ready (SCSI status 0x{status:02x}, sense key "
                      f"0x{sense:x})")

    def _write(self) -> Check:
        target = self.params["path"]
        size = self.params["io_size"]
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        if self.params["write_direct"]:
            flags |= os.O_DIRECT
            size = -(-size // BLOCK) * BLOCK
        buf = _aligned(size) if self.params["write_direct"] else b"\0" * size
        fd = os.open(target, flags, 0o600)
        try:
            done = 0
            while done < size:
                done += os.write(fd, memoryview(buf)[done:])
            os.fsync(fd)
        except OSError as e:  # write and fsync errors do not name the file: say which
            e.filename = e.filename or target
            raise
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        return normal()


def _aligned(size: int) -> memoryview:
    """A zeroed, page-aligned buffer (O_DIRECT writes need one): an anonymous mapping."""
    import mmap

    return memoryview(mmap.mmap(-1, size))
