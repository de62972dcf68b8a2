"""The service table of ``clpsupervise``: which services run, and what happens when one exits.

Kept apart from the event loop (``services/clpsupervise.py``) so the policy reads in one place:
a service that exits 0 stays stopped; any other exit is restarted after a delay that starts at
0.5 s and doubles up to 30 s, back to 0.5 s once a run lasted 60 s; a program that is not installed
is an error in the log and the status, retried on the same schedule, never a crash of the
supervisor. ``step(now)`` takes the clock as a parameter and process creation is injectable, so the
policy can be stepped without real time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("clp.supervise")

# states, as the control socket reports them
RUNNING = "running"
STOPPED = "stopped"
BACKOFF = "backoff"  # exited abnormally, restart scheduled
FATAL = "fatal"  # could not be started at all (program missing); retried like BACKOFF
WAITING_STATES = frozenset({BACKOFF, FATAL})

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
BACKOFF_RESET_UPTIME = 60.0
STOP_GRACE = 10.0  # SIGTERM, then SIGKILL after this long


class Proc(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...


Spawner = Callable[[list[str], Mapping[str, str], Path | None], Proc]


def popen_spawner(argv: list[str], env: Mapping[str, str], log_path: Path | None) -> Proc:
    """Own session, so a terminal's ^C reaches only the supervisor, which then stops in order."""
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    finally:
        if log_path is not None:
            out.close()  # type: ignore[union-attr]


@dataclass
class Service:
    name: str
    command: list[str] | None = None  # None: the installed program of that name
    state: str = STOPPED
    proc: Proc | None = None
    restarts: int = 0
    since: float = field(default_factory=time.time)
    started_at: float = 0.0
    delay: float = BACKOFF_INITIAL
    retry_at: float | None = None
    kill_at: float | None = None
    stopping: bool = False
    restart_after_stop: bool = False
    want: bool = True
    error: str | None = None

    def as_status(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.proc.pid if self.proc else None,
                "restarts": self.restarts, "since": self.since, "error": self.error}


class ServiceTable:
    def __init__(self, services: list[Service], env: Mapping[str, str], log_dir: Path | None,
                 spawn: Spawner = popen_spawner) -> None:
        self.services = services
        self.env = dict(env)
        self.log_dir = log_dir
        self.spawn = spawn
        self.shutting_down = False

    def get(self, name: str | None) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def status(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.as_status() for s in self.services}

    def all_down(self) -> bool:
        return all(s.proc is None for s in self.services)

    def next_timeout(self, now: float) -> float:
        times = [t for s in self.services for t in (s.retry_at, s.kill_at) if t is not None]
        return max(0.0, min([1.0, *(t - now for t in times)]))

    def change_state(self, svc: Service, new: str, why: str, level: int = logging.INFO) -> None:
        if new != svc.state:
            svc.since = time.time()
        svc.state = new
        log.log(level, "%s: %s", svc.name, why)

    # the loop
    def start_all(self, now: float) -> None:
        for svc in self.services:
            self._spawn(svc, now)

    def step(self, now: float) -> None:
        for svc in self.services:
            rc = svc.proc.poll() if svc.proc is not None else None
            if rc is not None:
                self._exited(svc, rc, now)
            if svc.stopping and svc.kill_at is not None and now >= svc.kill_at:
                self._kill(svc)
            if (svc.state in WAITING_STATES and svc.retry_at is not None and now >= svc.retry_at
                    and svc.want and not self.shutting_down):
                svc.restarts += 1
                self._spawn(svc, now)
        if self.shutting_down:
            self._shutdown_next(now)

    def _shutdown_next(self, now: float) -> None:
        """One service at a time, last first, so each stops while what it depends on still runs."""
        for svc in self.services:
            if svc.proc is None and svc.state in WAITING_STATES:
                svc.retry_at = None
                self.change_state(svc, STOPPED, "restart cancelled: supervisor is stopping")
        for svc in reversed(self.services):
            if svc.proc is not None:
                if not svc.stopping:
                    self._stop(svc, now)
                return

    def _resolve(self, svc: Service) -> list[str] | None:
        if svc.command:
            return svc.command
        path = shutil.which(svc.name, path=self.env.get("PATH"))
        if path:
            return [path]
        # the package's own entry point when console scripts are not installed (source checkout)
        if importlib.util.find_spec(f"services.{svc.name}") is not None:
            import sys

            return [sys.executable, "-m", f"services.{svc.name}"]
        return None

    def _spawn(self, svc: Service, now: float) -> None:
        svc.retry_at = None
        argv = self._resolve(svc)
        if argv is None:
            self._failed(svc, now, f"program {svc.name!r} is not installed (not in PATH)")
            return
        log_path = self.log_dir / f"{svc.name}.console.log" if self.log_dir else None
        try:
            svc.proc = self.spawn(argv, self.env, log_path)
        except OSError as e:
            self._failed(svc, now, f"cannot start {argv[0]}: {e.strerror or e}")
            return
        svc.started_at, svc.error = now, None
        # STOPPED/BACKOFF/FATAL -> RUNNING
        self.change_state(svc, RUNNING, f"started (pid {svc.proc.pid}): {' '.join(argv)}")

    def _failed(self, svc: Service, now: float, error: str) -> None:
        svc.error = error
        svc.retry_at = now + svc.delay
        # STOPPED/BACKOFF/FATAL -> FATAL
        self.change_state(svc, FATAL, f"{error}; retrying in {svc.delay:g} s", logging.ERROR)
        svc.delay = min(svc.delay * 2, BACKOFF_MAX)

    def _exited(self, svc: Service, rc: int, now: float) -> None:
        uptime = now - svc.started_at
        how = f"killed by {_signame(-rc)}" if rc < 0 else f"exited with status {rc}"
        svc.proc, svc.kill_at = None, None
        if svc.stopping:
            svc.stopping = False
            self.change_state(svc, STOPPED, f"stopped ({how})")  # RUNNING -> STOPPED
            if svc.restart_after_stop and not self.shutting_down:
                svc.restart_after_stop = False
                self._spawn(svc, now)
            return
        if rc == 0 or self.shutting_down:
            svc.want = False
            self.change_state(svc, STOPPED, f"{how} after {uptime:.1f} s: not restarted")
            return
        if uptime >= BACKOFF_RESET_UPTIME:
            svc.delay = BACKOFF_INITIAL
        svc.retry_at = now + svc.delay
        # RUNNING -> BACKOFF
        self.change_state(svc, BACKOFF,
                          f"{how} after {uptime:.1f} s; restarting in {svc.delay:g} s",
                          logging.WARNING)
        svc.error = how
        svc.delay = min(svc.delay * 2, BACKOFF_MAX)

    def _stop(self, svc: Service, now: float) -> None:
        assert svc.proc is not None
        svc.stopping, svc.kill_at = True, now + STOP_GRACE
        log.info("%s: stopping (SIGTERM to pid %d)", svc.name, svc.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            svc.proc.send_signal(signal.SIGTERM)

    def _kill(self, svc: Service) -> None:
        svc.kill_at = None
        if svc.proc is None:
            return
        log.warning("%s: still running %g s after SIGTERM: SIGKILL to its process group",
                    svc.name, STOP_GRACE)
        try:
            os.killpg(svc.proc.pid, signal.SIGKILL)
        except OSError:
            with contextlib.suppress(ProcessLookupError):
                svc.proc.send_signal(signal.SIGKILL)

    # control requests: (ok, message, reply only once the service has stopped)
    def request(self, op: object, name: object, now: float) -> tuple[bool, str, bool]:
        if op == "status":
            if name is not None and self.get(str(name)) is None:
                return False, f"unknown service {name!r}", False
            return True, "status", False
        if op not in ("start", "stop", "restart"):
            return False, f"unknown op {op!r} (start, stop, restart, status)", False
        svc = self.get(str(name)) if isinstance(name, str) else None
        if svc is None:
            known = ", ".join(s.name for s in self.services) or "none"
            return False, f"unknown service {name!r} (supervised: {known})", False
        if self.shutting_down:
            return False, "the supervisor is stopping", False
        return getattr(self, f"_op_{op}")(svc, now)

    def _op_start(self, svc: Service, now: float) -> tuple[bool, str, bool]:
        svc.want = True
        if svc.proc is not None:
            return True, f"{svc.name} is already running", False
        svc.delay = BACKOFF_INITIAL
        self._spawn(svc, now)
        ok = svc.state == RUNNING
        return ok, f"{svc.name} started" if ok else f"{svc.name}: {svc.error}", False

    def _op_stop(self, svc: Service, now: float) -> tuple[bool, str, bool]:
        svc.want, svc.restart_after_stop = False, False
        if svc.proc is None:
            if svc.state in WAITING_STATES:
                svc.retry_at = None
                self.change_state(svc, STOPPED, "restart cancelled by a stop request")
            return True, f"{svc.name} is stopped", False
        if not svc.stopping:
            self._stop(svc, now)
        return True, "", True

    def _op_restart(self, svc: Service, now: float) -> tuple[bool, str, bool]:
        if svc.proc is None:
            return self._op_start(svc, now)
        svc.want, svc.restart_after_stop = True, True
        if not svc.stopping:
            self._stop(svc, now)
        return True, "", True


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
