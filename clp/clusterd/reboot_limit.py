"""The limit on reboots by final actions (the product's "max reboot count"), and its counters.

A final action that takes the machine down (shut it down, reboot it, panic or reset it, or the
BMC's power actions) after a group resource failed (type ``rc``) or a monitor found an error
(type ``rm``) counts one "halt" of that type on this server. With ``cluster.reboot_limit.
max_count`` > 0, once a type has counted that many, its final actions that would take the
machine down are not carried out any more (alert rc 100 / rm 100): a fault that survives every
reboot must not reboot a server for ever. The counters are kept in ``work/haltcount.json``
(fsynced: they must survive the reboots they count), reset after the cluster service has run
``reset_minutes`` (0: never by itself), and shown and cleared by ``clpregctrl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

TYPES = ("rc", "rm")
# the final actions that take the machine down: counted, and limited
HALTS = frozenset({"stop_cluster_service_and_shutdown", "stop_cluster_service_and_reboot",
                   "panic", "keepalive_reset", "keepalive_panic", "bmc_reset", "bmc_power_off",
                   "bmc_power_cycle", "bmc_nmi"})


def counter_file(work_dir: Path) -> Path:
    return work_dir / "haltcount.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, int]]:
    """The counters, read and written under an exclusive lock (the daemon and clpregctrl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        counts = read(path)
        before = dict(counts)
        yield counts
        if counts != before:
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump(counts, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        os.close(fd)


def read(path: Path) -> dict[str, int]:
    """The counters (0 for a type never counted; an unreadable file counts as none)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        raw = {}
    return {t: int(raw[t]) if isinstance(raw, dict) and isinstance(raw.get(t), int)
            and raw[t] >= 0 else 0 for t in TYPES}


def clear(path: Path, types: tuple[str, ...] = TYPES) -> dict[str, int]:
    with _locked(path) as counts:
        for t in types:
            counts[t] = 0
        return dict(counts)


class RebootLimit:
    def __init__(self, work_dir: Path, max_count: int) -> None:
        self.path = counter_file(work_dir)
        self.max_count = max_count

    def allow(self, kind: str, action: str) -> tuple[bool, int]:
        """Whether the final action ``action`` of ``kind`` (rc or rm) may be carried out now;
        a halt that may is counted first. (allowed, the count of that kind)."""
        if action not in HALTS:
            return True, read(self.path)[kind]
        with _locked(self.path) as counts:
            if self.max_count and counts[kind] >= self.max_count:
                return False, counts[kind]
            counts[kind] += 1
            return True, counts[kind]

    def reset(self) -> None:
        clear(self.path)
