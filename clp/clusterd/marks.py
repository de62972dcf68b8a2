"""What ``clusterpro`` leaves in volatile storage for its next start on this boot.

- ``incarnation``: the base and the count of starts. The incarnation tags heartbeats and group
  reports; peers refuse a report of an older incarnation than the last one they kept, so it must
  grow on every restart of the service. The wall clock can step back (NTP), so only the first
  start of a boot reads it (``time_ns``, which also makes it grow across reboots while the clock
  is sane); later starts add their count to that base. After a reboot with a clock set back, the
  peers have seen the server leave the membership and forgotten its incarnation.
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


def boottime() -> float:
    """Seconds since boot, suspend included (unlike ``time.monotonic``)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class ServiceMarks:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def next_incarnation(self) -> int:
        """Strictly greater than the incarnation of every earlier start on this boot."""
        path = self.dir / "incarnation"
        base, count = 0, 0
        with contextlib.suppress(OSError, ValueError):
            base, count = (int(x) for x in path.read_text().split())
        if base <= 0:
            base, count = time.time_ns(), 0
        count += 1
        self._write(path, f"{base} {count}\n")
        return base + count

    def write_tick(self, at: float) -> None:
        self._write(self.dir / "last_tick", f"{at!r}\n")

    def last_tick(self) -> float | None:
        try:
            return float((self.dir / "last_tick").read_text())
        except (OSError, ValueError):
            return None

    def clear_tick(self) -> None:
        with contextlib.suppress(OSError):
            (self.dir / "last_tick").unlink()

    def _write(self, path: Path, text: str) -> None:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)
