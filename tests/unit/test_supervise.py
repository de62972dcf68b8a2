"""clpsupervise: the restart policy stepped with a fake clock, then one real supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clp.paths import InstallRoot
from clp.platform import supervision
from clp.platform.supervision import (
    BACKOFF,
    BACKOFF_MAX,
    BACKOFF_RESET_UPTIME,
    FATAL,
    RUNNING,
    STOP_GRACE,
    STOPPED,
    Service,
    ServiceTable,
)
from clp.platform.supervisor_client import SupervisorClient, SupervisorNotRunning

# beyond any pid_max, so a stray kill of a fake pid can never reach a real process
FAKE_PID_BASE = 1 << 23


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rc: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.rc

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)


class Spawner:
    def __init__(self) -> None:
        self.procs: list[FakeProc] = []
        self.argvs: list[list[str]] = []

    def __call__(self, argv, env, log_path) -> FakeProc:
        self.argvs.append(argv)
        self.procs.append(FakeProc(FAKE_PID_BASE + len(self.procs)))
        return self.procs[-1]

    @property
    def last(self) -> FakeProc:
        return self.procs[-1]


def table(*services: Service, path: str = "/nonexistent") -> tuple[ServiceTable, Spawner]:
    spawn = Spawner()
    return ServiceTable(list(services), env={"PATH": path}, log_dir=None, spawn=spawn), spawn


def crash_and_time_restart(t: ServiceTable, spawn: Spawner, now: float) -> float:
    """Let the running service die at ``now``; return the delay before it was started again."""
    spawn.last.rc = 1
    t.step(now)
    assert t.services[0].state == BACKOFF
    retry_at = t.services[0].retry_at
    assert retry_at is not None
    before = len(spawn.procs)
    t.step(retry_at - 0.01)
    assert len(spawn.procs) == before  # not early
    t.step(retry_at)
    assert len(spawn.procs) == before + 1 and t.services[0].state == RUNNING
    return retry_at - now


def test_a_crashing_service_is_restarted_with_a_doubling_delay_up_to_the_maximum():
    t, spawn = table(Service("svc", ["/bin/svc"]))
    t.start_all(0.0)
    now, delays = 0.0, []
    for _ in range(9):
        now += 1.0
        delays.append(crash_and_time_restart(t, spawn, now))
        now += delays[-1]
    assert delays == [0.5, 1, 2, 4, 8, 16, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]
    assert t.services[0].restarts == 9
    assert spawn.argvs[0] == ["/bin/svc"]


def test_the_delay_goes_back_to_the_start_after_a_long_enough_run():
    t, spawn = table(Service("svc", ["/bin/svc"]))
    t.start_all(0.0)
    now = 0.0
    for _ in range(4):
        now += 1.0
        now += crash_and_time_restart(t, spawn, now)
    now += BACKOFF_RESET_UPTIME
    assert crash_and_time_restart(t, spawn, now) == 0.5


def test_exit_0_stays_stopped():
    t, spawn = table(Service("svc", ["/bin/svc"]))
    t.start_all(0.0)
    spawn.last.rc = 0
    t.step(1.0)
    svc = t.services[0]
    assert (svc.state, svc.proc, svc.want) == (STOPPED, None, False)
    for now in (2.0, 100.0, 10_000.0):
        t.step(now)
    assert len(spawn.procs) == 1 and svc.state == STOPPED


def test_a_missing_program_is_fatal_retried_and_started_once_installed(tmp_path):
    t, spawn = table(Service("clp_no_such_program"), path=str(tmp_path))
    t.start_all(0.0)
    svc = t.services[0]
    assert svc.state == FATAL and "not installed" in (svc.error or "")
    assert spawn.procs == [] and svc.retry_at == 0.5
    t.step(0.5)
    assert svc.state == FATAL and svc.restarts == 1 and svc.retry_at == 1.5  # 0.5 + 1
    program = tmp_path / "clp_no_such_program"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    t.step(1.5)
    assert svc.state == RUNNING and svc.error is None
    assert spawn.argvs == [[str(program)]]


def test_a_spawn_error_is_fatal_not_a_crash_of_the_supervisor():
    def refuse(argv, env, log_path):
        raise PermissionError(13, "Permission denied")

    t = ServiceTable([Service("svc", ["/bin/svc"])], env={}, log_dir=None, spawn=refuse)
    t.start_all(0.0)
    assert t.services[0].state == FATAL and "Permission denied" in t.services[0].error


def test_stop_is_answered_only_once_the_service_has_exited(monkeypatch):
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(supervision.os, "killpg", lambda pid, sig: killed.append((pid, sig)))
    t, spawn = table(Service("svc", ["/bin/svc"]))
    t.start_all(0.0)
    proc = spawn.last
    assert t.request("stop", "svc", 1.0) == (True, "", True)  # True: reply when stopped
    assert proc.signals == [signal.SIGTERM] and t.services[0].stopping
    t.step(1.0 + STOP_GRACE - 0.1)
    assert killed == [] and t.services[0].state == RUNNING
    t.step(1.0 + STOP_GRACE)
    assert killed == [(proc.pid, signal.SIGKILL)]
    proc.rc = -signal.SIGKILL
    t.step(1.0 + STOP_GRACE + 0.1)
    svc = t.services[0]
    assert (svc.state, svc.stopping, svc.proc) == (STOPPED, False, None)
    t.step(1000.0)
    assert len(spawn.procs) == 1  # a stopped service is not restarted
    assert t.request("start", "svc", 1001.0)[0] and svc.state == RUNNING


def test_restart_request_and_unknown_requests():
    t, spawn = table(Service("svc", ["/bin/svc"]))
    t.start_all(0.0)
    assert t.request("restart", "svc", 1.0) == (True, "", True)
    spawn.last.rc = -signal.SIGTERM
    t.step(1.1)
    assert len(spawn.procs) == 2 and t.services[0].state == RUNNING
    assert t.request("stop", "other", 2.0)[0] is False
    assert t.request("reboot", "svc", 2.0)[0] is False


def test_shutdown_stops_services_one_at_a_time_last_first():
    t, spawn = table(Service("a", ["/bin/a"]), Service("b", ["/bin/b"]))
    t.start_all(0.0)
    a, b = spawn.procs
    t.shutting_down = True
    t.step(1.0)
    assert (a.signals, b.signals) == ([], [signal.SIGTERM])
    b.rc = 0
    t.step(1.1)
    assert a.signals == [signal.SIGTERM]
    a.rc = 0
    t.step(1.2)
    assert t.all_down()


# one real supervisor process
def _wait(probe, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = probe()
        except SupervisorNotRunning:
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def supervisor(tmp_path):
    env = dict(os.environ, CLP_ROOT=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "services.clpsupervise", "--root",
                             str(tmp_path), "sleeper=sleep 1000"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = SupervisorClient(InstallRoot(tmp_path), timeout=15)
    try:
        yield proc, client
    finally:
        pids = [s["pid"] for s in _status_or_empty(client).values() if s.get("pid")]
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pid in pids:  # services of a supervisor that was killed, not stopped
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _status_or_empty(client: SupervisorClient) -> dict:
    try:
        return client.status()["services"]
    except Exception:
        return {}


def test_real_clpsupervise_runs_stops_starts_and_exits_on_sigterm(supervisor, tmp_path):
    proc, client = supervisor
    first = _wait(lambda: client.status()["services"]["sleeper"]["pid"])
    assert client.status()["services"]["sleeper"]["state"] == RUNNING
    reply = client.stop("sleeper")
    assert reply["ok"] and reply["services"]["sleeper"]["state"] == STOPPED
    assert not _alive(first)  # the reply came after the exit
    assert client.start("sleeper")["ok"]
    second = client.status()["services"]["sleeper"]["pid"]
    assert second and second != first
    assert client.request("stop", "nosuch")["ok"] is False
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert _wait(lambda: not _alive(second), 5)
    assert not (tmp_path / "run" / "clpsupervise.sock").exists()
    assert "sleeper" in (tmp_path / "log" / "clpsupervise.log").read_text()
