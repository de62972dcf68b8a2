"""Run one external command for the cluster: bounded in time, its whole process tree killable.

Every subprocess of a resource or power action goes through ``run``. The command gets a session
of its own, so that on timeout the whole process group (a script and the ``sleep`` or daemon it
started) is ended: SIGTERM, then SIGKILL after ``KILL_GRACE`` seconds. Output is captured and
logged line by line to the daemon's logger, which is where an operator looks first.
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

# The process groups started by the operation running in this thread, so that the runner can end
# them all when the operation exceeds its timeout (see clp.resources.runner).
_local = threading.local()


def track(groups: set[int] | None) -> None:
    """Record in ``groups`` every process group this thread starts from now on (None: stop)."""
    _local.groups = groups


@dataclass(frozen=True)
class ProcResult:
    returncode: int  # negative: killed by that signal; 127: not found; 126: not executable
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
    """Start ``argv`` in a new session with its output pumped to ``log``; raises OSError."""
    proc = subprocess.Popen(
        list(argv), env=dict(env) if env is not None else None, cwd=cwd,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True,
    )
    groups = getattr(_local, "groups", None)
    if groups is not None:
        groups.add(proc.pid)
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
    pump.join(timeout=0.2 if group_alive(proc.pid) else 2)
    return ProcResult(proc.returncode, "\n".join(lines), timed_out)
