"""Run one external command for the cluster: bounded in time, its whole process tree killable.

Every subprocess of a resource or power action goes through ``run``. The command gets a session
of its own, so that on timeout the whole process group (a script and the ``sleep`` or daemon it
started) is ended: SIGTERM, then SIGKILL after ``KILL_GRACE`` seconds. Output is captured and
logged line by line to the daemon's logger, which is where an operator looks first.

A resource operation attaches an ``Operation`` to its thread (``track``): the runner ends the
process groups recorded in it when the operation times out, and from then on ``spawn``/``run``
in that thread refuse to start anything (``TimeoutError`` / a ``timed_out`` result).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

KILL_GRACE = 3.0

# The operation running in this thread (see clp.resources.runner), so that the runner can end
# every process group it started when it exceeds its timeout, and refuse it any new process.
_local = threading.local()
NOT_STARTED = 124  # the return code of a command refused because its operation had expired


class Operation:
    """The process groups one resource operation started, and whether it has expired.

    Once expired (its timeout passed), ``spawn``/``run`` in its thread start nothing more: a
    timed-out ``disk`` start must not go on to fsck and mount behind the stop that cleans up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.groups: set[int] = set()
        self.expired = False

    def expire(self) -> list[int]:
        """Mark it expired; the process groups started so far (to be ended by the caller)."""
        with self._lock:
            self.expired = True
            return sorted(self.groups)

    def adopt(self, pgid: int) -> bool:
        """Record a process group just started; False when the operation expired meanwhile."""
        with self._lock:
            self.groups.add(pgid)
            return not self.expired

    def discard(self, pgid: int) -> None:
        """Forget a group that has ended: its id may be reused by a stranger's new session."""
        with self._lock:
            self.groups.discard(pgid)


def track(operation: Operation | None) -> None:
    """Attach ``operation`` to this thread: every process group started from now on is recorded
    in it, and nothing starts once it has expired (None: detach)."""
    _local.operation = operation


def expired() -> bool:
    """Has the operation running in this thread exceeded its timeout? (a type's own waits stop)"""
    operation: Operation | None = getattr(_local, "operation", None)
    return operation is not None and operation.expired


@dataclass(frozen=True)
class ProcResult:
    # negative: killed by that signal; 127: not found; 126: not executable; NOT_STARTED: refused
    # because its operation had expired (timed_out is then True)
    returncode: int
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def kill_group(
    pgid: int, grace: float = KILL_GRACE, reap: Callable[[], object] | None = None
) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds.

    ``reap`` (the leader's ``Popen.poll``) is called while waiting: an unreaped leader is a zombie
    that still counts as a member of its group.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_groups(pgids: Sequence[int], grace: float = KILL_GRACE) -> None:
    """``kill_group`` for several groups at once: SIGTERM all, SIGKILL what is left after
    ``grace`` seconds (so ending N groups takes ``grace``, not N times it)."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(p) for p in pgids):
        time.sleep(0.05)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pump(stream: IO[bytes], lines: list[str], log: logging.Logger | None, tag: str) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        lines.append(line)
        if log is not None:
            log.info("%s: %s", tag, line)
    stream.close()


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
    log: logging.Logger | None = None,
) -> tuple[subprocess.Popen[bytes], threading.Thread, list[str]]:
    """Start ``argv`` in a new session with its output pumped to ``log``; raises OSError, and
    TimeoutError (an OSError) when this thread's operation has expired."""
    operation: Operation | None = getattr(_local, "operation", None)
    refused = f"{argv[0]} not started: its operation has timed out"
    if operation is not None and operation.expired:
        raise TimeoutError(refused)
    proc = subprocess.Popen(
        list(argv), env=dict(env) if env is not None else None, cwd=cwd,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True,
    )
    if operation is not None and not operation.adopt(proc.pid):
        # expired between the check and the fork: the runner's kill may have missed this group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        raise TimeoutError(refused)
    lines: list[str] = []
    tag = os.path.basename(str(argv[0]))
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines, log, tag), daemon=True)
    pump.start()
    return proc, pump, lines


def run(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None, log: logging.Logger | None = None,
) -> ProcResult:
    """Run ``argv`` to completion or ``timeout``; never raises for a command that cannot start."""
    try:
        proc, pump, lines = spawn(argv, env=env, cwd=cwd, log=log)
    except TimeoutError as exc:
        if log is not None:
            log.warning("%s", exc)
        return ProcResult(NOT_STARTED, str(exc), timed_out=True)
    except FileNotFoundError as exc:
        return ProcResult(127, str(exc))
    except PermissionError as exc:
        return ProcResult(126, str(exc))
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        if log is not None:
            log.warning("%s did not finish in %s s; killing its process group", argv[0], timeout)
        kill_group(proc.pid, reap=proc.poll)
        proc.wait()
    # A background child the command left running (``app &``) keeps the pipe open; it is the
    # script's business, not ours: keep logging its output but do not wait for it.
    alive = group_alive(proc.pid)
    pump.join(timeout=0.2 if alive else 2)
    operation: Operation | None = getattr(_local, "operation", None)
    if operation is not None and not alive:
        operation.discard(proc.pid)
    # ended by the runner because the operation expired: that is a timeout too, not a failure
    return ProcResult(proc.returncode, "\n".join(lines), timed_out or expired())
