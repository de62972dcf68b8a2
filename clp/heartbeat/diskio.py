"""Direct, synchronous block I/O for the disk heartbeat and the disk monitor (diskw): the one
importer of the compiled ``clp._diskhb_native`` (``native/diskhb.c``, built by ``pip install
-e .``).

Every transfer is whole 4096-byte blocks with ``O_DIRECT | O_DSYNC``: a write has reached the
device when the call returns, and a read sees the device, not this server's page cache (which
would never show what the other servers wrote).

The GIL: cffi releases it for the duration of each C call, so a read or write that hangs on a
dead disk blocks only the calling thread. A :class:`DiskDevice` is not thread safe (its aligned
buffers are reused); the disk heartbeat uses each one from its own I/O thread only.
"""

from __future__ import annotations

import errno
import os

from clp._diskhb_native import ffi, lib

BLOCK = lib.DHB_BLOCK  # 4096: the unit of every transfer, whatever the device's sector size


def _error(rc: int, path: str, what: str) -> OSError:
    """The OSError for a C helper's ``-errno``."""
    return OSError(-rc, f"{path}: {what}: {os.strerror(-rc)}")


class DiskDevice:
    """One open heartbeat device (a block device, or a regular file in tests)."""

    def __init__(self, path: str, handle: object) -> None:
        self.path = path
        self._h = handle

    @classmethod
    def open(cls, path: str, read_only: bool = False) -> DiskDevice:
        """Open ``path`` read-write (or read-only) for direct synchronous I/O; OSError (with its
        errno) if not."""
        out = ffi.new("dhb_device **")
        rc = lib.dhb_open_mode(os.fsencode(path), int(read_only), out)
        if rc < 0:
            raise _error(rc, path, "open")
        return cls(path, out[0])

    def _handle(self) -> object:
        if self._h is None:
            raise OSError(errno.EBADF, f"{self.path}: device is closed")
        return self._h

    @property
    def block_size(self) -> int:
        """The device's logical block size (BLKSSZGET); it divides :data:`BLOCK`."""
        return int(self._handle().logical_block_size)

    @property
    def size(self) -> int:
        """Bytes (BLKGETSIZE64, or the file size), as found when opened."""
        return int(self._handle().size)

    def write(self, block: int, data: bytes) -> None:
        """Write ``data`` (at most :data:`BLOCK` bytes, zero-padded) at block number ``block``."""
        rc = lib.dhb_write(self._handle(), block, ffi.from_buffer(data), len(data))
        if rc < 0:
            raise _error(rc, self.path, f"write block {block}")

    def read(self, first: int, n_blocks: int) -> bytes:
        """``n_blocks`` blocks from block number ``first``."""
        out = bytearray(n_blocks * BLOCK)
        rc = lib.dhb_read(self._handle(), first, n_blocks, ffi.from_buffer(out), len(out))
        if rc < 0:
            raise _error(rc, self.path, f"read blocks {first}..{first + n_blocks - 1}")
        return bytes(out)

    def cycle(self, data: bytes, write_block: int, first: int, n_blocks: int) -> bytes:
        """One heartbeat round in one C call: write ``data`` at ``write_block``, then read
        ``n_blocks`` blocks from ``first``. A short transfer (device end) is EIO."""
        out = bytearray(n_blocks * BLOCK)
        rc = lib.dhb_cycle(self._handle(), write_block, ffi.from_buffer(data), len(data), first,
                           n_blocks, ffi.from_buffer(out), len(out))
        if rc < 0:
            raise _error(rc, self.path, f"write block {write_block} and read blocks "
                         f"{first}..{first + n_blocks - 1}")
        return bytes(out)

    def close(self) -> None:
        """Idempotent."""
        if self._h is not None:
            lib.dhb_close(self._h)
            self._h = None

    def __enter__(self) -> DiskDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_unit_ready(path: str, timeout: float) -> tuple[bool, int, int]:
    """SCSI TEST UNIT READY on ``path``: (ready, sense key, SCSI status); OSError when the
    command cannot be sent (ENOTTY: not a SCSI device, as a loop device)."""
    sense, status = ffi.new("unsigned char *"), ffi.new("unsigned char *")
    rc = lib.dhb_test_unit_ready(os.fsencode(path), max(1, int(timeout * 1000)), sense, status)
    if rc < 0:
        raise _error(rc, path, "SG_IO TEST UNIT READY")
    return rc == 0, int(sense[0]), int(status[0])
