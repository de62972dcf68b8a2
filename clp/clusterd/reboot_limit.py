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
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("clp.rc")
IO_LIMIT = 2.0  # seconds the counting may take before a final action goes ahead uncounted

TYPES = ("rc", "rm")
# the final actions that take the machine down: counted, and limited
HALTS = frozenset({"stop_cluster_service_and_shutdown", "stop_cluster_service_and_reboot",
                   "panic", "keepalive_reset", "keepalive_panic", "bmc_reset", "bmc_power_off",
                   "bmc_power_cycle", "bmc_nmi"})


def counter_file(work_dir: Path) -> Path:
    return work_dir / "haltcount.json"


class CounterFileError(Exception):
    """The counter file exists but does not hold counters (clpregctrl says so)."""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, int]]:
    """The counters, read and written under an exclusive lock (the daemon and clpregctrl). A
    file that does not hold counters is counted again from 0 (and rewritten), with an error in
    the log: the limit must not stop working because its file was damaged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            counts = read(path)
            before = dict(counts)
        except CounterFileError as e:
            log.error("%s; the reboot counters start again from 0", e, extra={"alert": True})
            counts, before = dict.fromkeys(TYPES, 0), {}
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
    """The counters (0 for a type never counted, or when there is no file yet); raises
    :class:`CounterFileError` for a file that does not hold them, OSError when it cannot be
    read."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return dict.fromkeys(TYPES, 0)
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise CounterFileError(f"{path} is not JSON: {e}") from None
    if not isinstance(raw, dict) or not all(
            isinstance(raw.get(t, 0), int) and not isinstance(raw.get(t, 0), bool)
            and raw.get(t, 0) >= 0 for t in TYPES):
        raise CounterFileError(f"{path} does not hold counters of {', '.join(TYPES)}: {raw!r}")
    return {t: int(raw.get(t, 0)) for t in TYPES}


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
        a halt that may is counted first. (allowed, the count of that kind).

        Fails open: the final action is often the answer to a failing or hung disk, maybe the
        one holding the counters, so counting that fails or takes longer than ``IO_LIMIT``
        lets the action go ahead (with an error in the log) instead of holding it back."""
        if action not in HALTS:
            return True, 0
        outcome: list[tuple[bool, int] | BaseException] = []

        def count() -> None:
            try:
                with _locked(self.path) as counts:
                    if self.max_count and counts[kind] >= self.max_count:
                        outcome.append((False, counts[kind]))
                        return
                    counts[kind] += 1
                    outcome.append((True, counts[kind]))
            except OSError as e:
                outcome.append(e)

        worker = threading.Thread(target=count, name="reboot-count", daemon=True)
        worker.start()
        worker.join(IO_LIMIT)
        result = outcome[0] if outcome else None
        if isinstance(result, tuple):
            return result
        why = result if result is not None else f"no answer within {IO_LIMIT:g} s"
        log.error("The reboot counter %s could not be updated (%s); the final action %s is "
                  "carried out without counting it.", self.path, why, action,
                  extra={"alert": True})
        return True, -1

    def reset(self) -> None:
        try:
            clear(self.path)
        except OSError as e:
            log.error("The reboot counters %s could not be reset: %s", self.path, e,
                      extra={"alert": True})
