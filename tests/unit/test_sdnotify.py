"""sd_notify: the datagrams themselves, then the real daemons telling a real AF_UNIX socket (as
systemd's NOTIFY_SOCKET) that they are ready only once they serve, and that they are stopping."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import posix_ipc
import pytest

from clp.keys import write_new_key
from clp.paths import InstallRoot
from clp.platform import sdnotify
from tests.netutil import free_port

REPO = Path(__file__).resolve().parents[2]
STDERR: dict[int, Path] = {}  # a daemon's pid -> where its stderr goes


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    s.bind(path)
    s.settimeout(5)
    yield s, path
    s.close()


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdnotify, "_failed_once", False)
    monkeypatch.setattr(sdnotify, "_target", "")


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready("x") is False and sdnotify.stopping() is False


def test_ready_with_status_is_one_datagram(listener: tuple[socket.socket, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    s, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.ready("two\nlines") is True
    assert s.recv(4096) == b"READY=1\nSTATUS=two lines"  # a newline would start a field
    assert "NOTIFY_SOCKET" not in os.environ  # the service's children do not inherit it
    assert sdnotify.stopping() is True
    assert s.recv(4096) == b"STOPPING=1"


def test_abstract_socket_name(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"clp-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready() is True
        assert s.recv(4096) == b"READY=1"


def test_a_failing_socket_returns_false_and_is_logged_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="clp.platform.sdnotify"):
        assert sdnotify.ready() is False
        assert sdnotify.stopping() is False
    assert len(caplog.records) == 1 and "nobody-listens" in caplog.text


# --- the daemons -------------------------------------------------------------------------------

def write_cluster(root: InstallRoot) -> int:
    """A two-server cluster on loopback of which this is server1 (server2 never comes); returns
    the transfer port."""
    rpc, transfer = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    heartbeat = free_port(socket.SOCK_DGRAM)
    root.config_file.write_text(f"""\
cluster:
  name: notifycheck
  heartbeat: {{interval: 1, timeout: 10}}
  ports: {{rpc: {rpc}, transfer: {transfer}, heartbeat: {heartbeat}}}
servers:
  server1: {{}}
  server2: {{}}
interconnects:
  - type: lan
    addresses: {{server1: 127.0.0.1, server2: 127.0.0.2}}
""")
    (root.config_dir / "scripts").mkdir(exist_ok=True)
    write_new_key(root.key_file)
    return transfer


@pytest.fixture
def daemon(root: InstallRoot, listener: tuple[socket.socket, str], tmp_path: Path):
    """Start ``services.<name>`` with NOTIFY_SOCKET set; every one is killed at teardown."""
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "CLP_ROOT": str(root.root), "CLP_SERVER": "server1",
           "NOTIFY_SOCKET": listener[1], "CLP_EVT_SYSLOG": ""}

    def start(name: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.stderr", "ab") as err:
            p = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=err)
        procs.append(p)
        STDERR[p.pid] = tmp_path / f"{name}.stderr"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def expect(listener: tuple[socket.socket, str], first: bytes, p: subprocess.Popen) -> bytes:
    """The next notification, which must start with ``first``; a daemon that exits instead
    fails at once, with what it said."""
    s = listener[0]
    s.settimeout(0.2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            got = s.recv(4096)
        except TimeoutError:
            if p.poll() is not None:
                err = Path(STDERR[p.pid]).read_text()
                pytest.fail(f"exited with status {p.returncode} before {first!r}: {err}")
            continue
        assert got.split(b"\n")[0] == first, got
        return got
    pytest.fail(f"no {first!r} within 30 s")


def stop(p: subprocess.Popen, listener: tuple[socket.socket, str]) -> None:
    p.send_signal(signal.SIGTERM)
    expect(listener, b"STOPPING=1", p)
    assert p.wait(timeout=60) == 0


def test_clusterpro_evt_is_ready_when_its_queue_is_open(root: InstallRoot, listener, daemon):
    p = daemon("clusterpro_evt")
    assert b"STATUS=draining" in expect(listener, b"READY=1", p)
    posix_ipc.MessageQueue(root.mq_name("evt")).close()  # there, already
    stop(p, listener)


def test_clusterpro_trn_is_ready_when_it_listens(root: InstallRoot, listener, daemon):
    port = write_cluster(root)
    p = daemon("clusterpro_trn")
    expect(listener, b"READY=1", p)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # accepted, already
    stop(p, listener)


def test_clusterpro_is_ready_when_its_control_api_and_state_are_there(
        root: InstallRoot, listener, daemon):
    write_cluster(root)
    started = time.monotonic()
    p = daemon("clusterpro")
    assert b"server1 running" in expect(listener, b"READY=1", p)
    assert time.monotonic() - started < 30
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(root.control_socket))  # the control API accepts, already
    posix_ipc.SharedMemory(root.shm_name("state")).close_fd()  # a state is published
    stop(p, listener)


def test_clusterpro_alertsync_is_ready_when_it_takes_alerts(root: InstallRoot, listener, daemon):
    write_cluster(root)
    p = daemon("clusterpro_alertsync")
    assert b"STATUS=delivering alerts" in expect(listener, b"READY=1", p)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
        c.sendto(b"!", str(root.run_dir / "alertsync.sock"))  # the wake-up socket, already
    stop(p, listener)
