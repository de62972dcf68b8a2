"""What ``clusterpro`` leaves in volatile storage for its next start on this boot.

- ``incarnation``: the base and the count of starts. The incarnation tags heartbeats and group
  reports; peers refuse a report of an older incarnation than the last one they kept, so it must
  grow on every restart of the service. The wall clock can step back (NTP), so only the first
  start of a boot reads it (``time_ns``, which also makes it grow across reboots while the clock
  is sane); later starts add their count to that base. The last incarnation handed out is also
  kept, fsynced, in persistent storage (``floor``): a start never goes below it, so a reboot with
  the clock set back (a restored VM, a bad RTC) still gets a larger incarnation than the peers
  last accepted, instead of having every heartbeat refused as a replay.
- ``last_tick``: the ``CLOCK_BOOTTIME`` of the last heartbeat-loop round (it counts suspend
  too). A start finding it older than the heartbeat timeout knows the peers declared this server
  down meanwhile (a kill -9 or an OOM kill and a slow restart) and may run its groups.
  A clean stop removes it.

Volatile storage survives a restart of the service, not of the server (see
:attr:`clp.paths.InstallRoot.volatile_dir`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("clp.nm")
TICK_WIDTH = 24  # characters of last_tick before its newline: every write replaces them all


def boottime() -> float:
    """Seconds since boot, suspend included (unlike ``time.monotonic``)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class ServiceMarks:
    def __init__(self, directory: Path, floor: Path | None = None) -> None:
        self.dir = directory
        self.floor = floor
        self._tick_fd: int | None = None  # last_tick, kept open (see write_tick)

    def next_incarnation(self) -> int:
        """Strictly greater than the incarnation of every earlier start on this boot, and than
        the last one kept in ``floor`` (every earlier start, whatever the clock says)."""
        path = self.dir / "incarnation"
        base, count = 0, 0
        with contextlib.suppress(OSError, ValueError):
            base, count = (int(x) for x in path.read_text().split())
        if base <= 0:
            base, count = time.time_ns(), 0
        count += 1
        last = self._read_floor()
        if base + count <= last:
            log.warning("the clock is behind the last start (incarnation %d): counting on from "
                        "there", last)
            base = last + 1 - count
        self._write(path, f"{base} {count}\n")
        if self.floor is not None:
            self._write(self.floor, f"{base + count}\n", durable=True)
        return base + count

    def _read_floor(self) -> int:
        if self.floor is None:
            return 0
        try:
            return int(self.floor.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            log.warning("cannot read %s (%s): the clock alone sets the incarnation", self.floor, e)
            return 0

    def write_tick(self, at: float) -> None:
        """Every round: one ``pwrite`` of a fixed-width text on a file kept open (a new file
        and a rename per round showed in profiles at interval 0.1 s). A write is whole or not
        there for whoever reads after a kill; volatile storage does not outlive a power loss."""
        if self._tick_fd is None:
            try:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._tick_fd = os.open(self.dir / "last_tick",
                                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError as e:
                log.warning("cannot write %s: %s", self.dir / "last_tick", e)
                return
        try:
            os.pwrite(self._tick_fd, f"{at:{TICK_WIDTH}.6f}\n".encode(), 0)
        except OSError as e:
            log.warning("cannot write %s: %s", self.dir / "last_tick", e)

    def last_tick(self) -> float | None:
        try:
            return float((self.dir / "last_tick").read_text())
        except (OSError, ValueError):
            return None

    def clear_tick(self) -> None:
        if self._tick_fd is not None:
            os.close(self._tick_fd)
            self._tick_fd = None
        with contextlib.suppress(OSError):
            (self.dir / "last_tick").unlink()

    def _write(self, path: Path, text: str, durable: bool = False) -> None:
        """Replace ``path`` atomically; ``durable`` also survives a power loss (fsync)."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, text.encode())
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if durable:
                dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
