"""clplogcmd: option checks, and end to end through a real ``clusterpro_evt`` that is killed and
restarted (records queued while it is dead must not be lost)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from clp.cli.clplogcmd import main
from clp.evt.records import decode
from clp.evt.sender import open_queue
from clp.paths import InstallRoot

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clplogcmd requires root")




@pytest.mark.parametrize("args, text", [
    ([], "non-empty message"),
    (["-m", "  "], "non-empty message"),
    (["-m", "x" * 512], "too long"),
    (["-m", "x", "-i", "0"], "from 1 to 10000"),
    (["-m", "x", "-i", "10001"], "from 1 to 10000"),
    (["-m", "x", "-l", "DEBUG"], "ERR, WARN, INFO"),
])
def test_invalid_options(root: InstallRoot, args: list[str], text: str):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert text in result.output and result.output.startswith("Invalid option.\n")


def test_event_service_never_started(root: InstallRoot):
    result = CliRunner().invoke(main, ["-m", "hello"])
    assert result.exit_code == 5
    assert "clusterpro_evt" in result.output


def send(root: InstallRoot, *args: str) -> dict:
    q = open_queue(root, create=True)
    try:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0 and result.output == "Command succeeded.\n"
        return decode(q.receive(timeout=0)[0])
    finally:
        q.close()


def test_no_destination_means_syslog_and_alert(root: InstallRoot):
    rec = send(root, "-m", "disk full", "-i", "42", "-l", "err")
    assert (rec["module"], rec["level"], rec["event_id"], rec["msg"]) == (
        "logcmd", "ERROR", 42, "disk full")
    assert rec["alert"] and rec["syslog"] and not rec.get("mail")


@pytest.mark.parametrize("flag, alert, syslog, mail", [
    ("--syslog", False, True, False),
    ("--alert", True, False, False),
    ("--mail", False, False, True),
])
def test_destinations(root: InstallRoot, flag: str, alert: bool, syslog: bool, mail: bool):
    rec = send(root, "-m", "note", flag, "-l", "WARN")
    assert (rec["alert"], rec.get("syslog", False), rec.get("mail", False)) == (
        alert, syslog, mail)
    assert rec["event_id"] == 1 and rec["level"] == "WARNING"


# end to end

def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def evt(root: InstallRoot, tmp_path: Path):
    """Start/stop ``clusterpro_evt`` subprocesses; every one is killed at teardown."""
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "CLP_ROOT": str(root.root), "CLP_EVT_SYSLOG": str(tmp_path / "sl")}

    def start() -> subprocess.Popen:
        n = len(lines(root.log_dir / "evt.log"))
        with open(tmp_path / "evt.stderr", "ab") as err:
            p = subprocess.Popen([sys.executable, "-m", "services.clusterpro_evt",
                                  "--root", str(root.root)], cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=err)
        procs.append(p)
        assert wait_for(lambda: any("event service started" in x
                                    for x in lines(root.log_dir / "evt.log")[n:])), \
            (tmp_path / "evt.stderr").read_text()
        return p

    yield start, env
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def logcmd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clp.cli.clplogcmd", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


def test_end_to_end_nothing_lost_across_restart(root: InstallRoot, tmp_path: Path, evt):
    start, env = evt
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(tmp_path / "sl"))
    syslog.settimeout(10)
    try:
        first = start()
        done = logcmd(env, "-m", "hello", "--alert")
        assert done.returncode == 0 and done.stdout == "Command succeeded.\n"
        alert_log, cmd_log = root.alert_log, root.log_dir / "logcmd.log"
        assert wait_for(lambda: bool(lines(alert_log)) and bool(lines(cmd_log)))
        alert = json.loads(lines(alert_log)[0])
        assert (alert["module"], alert["event_id"], alert["message"]) == ("logcmd", 1, "hello")
        assert lines(cmd_log)[0].endswith(" INFO [1] hello")
        # <30>: daemon.info, then the RFC 3164 time stamp (docs/syslog.md)
        assert re.fullmatch(rb"<30>\w{3} [ \d]\d \d\d:\d\d:\d\d clusterpro: "
                            rb"<type: logcmd><event: 1> hello", syslog.recv(4096))

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        for i in range(3):
            assert logcmd(env, "-m", f"while dead {i}", "-i", str(10 + i)).returncode == 0
        second = start()
        assert wait_for(lambda: len(lines(cmd_log)) == 4)
        assert [x.split("] ", 1)[1] for x in lines(cmd_log)[1:]] == [
            "while dead 0", "while dead 1", "while dead 2"]
        assert len(lines(alert_log)) == 4  # no destination given: alert log and syslog

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
        assert "event service stopped" in lines(root.log_dir / "evt.log")[-1]
    finally:
        syslog.close()
