"""The shipped units under a real systemd: ``make install`` in a fresh root where systemd 252 is
PID 1 of its own namespaces (tests/integration/systemdboot.py), then what the units promise
(docs/service-units.md): start order by readiness, ``Wants=`` and not ``Requires=``,
``Restart=on-failure``, reverse stop order, ``KillMode=process``.

The cluster is two servers on the namespace's own loopback, of which only server1 (systemd's host
name) runs. Skipped only where systemd cannot boot in namespaces (``cannot_boot`` says why).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from clp.paths import DEFAULT_ROOT, InstallRoot
from tests.integration.freshroot import FreshRoot
from tests.integration.labutil import wait_for
from tests.integration.systemdboot import Booted, cannot_boot

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
P = DEFAULT_ROOT
UNITS = ("clusterpro_evt", "clusterpro_trn", "clusterpro", "clusterpro_alertsync")
# the namespace has a network of its own: fixed ports are free there
CLP_CONF = """\
cluster:
  name: sdtest
  heartbeat: {interval: 1, timeout: 10}
  ports: {rpc: 29001, transfer: 29002, heartbeat: 29003}
servers:
  server1: {}
  server2: {}
interconnects:
  - type: lan
    addresses: {server1: 127.0.0.1, server2: 127.0.0.2}
"""


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Iterator[Booted]:
    """systemd booted in a fresh root, clp installed there by ``make install`` (which finds
    systemd running: daemon-reload, enable), and a clp.conf."""
    reason = cannot_boot()
    if reason:
        pytest.skip(f"systemd cannot boot in a namespace here: {reason}")
    fresh = FreshRoot(tmp_path_factory.mktemp("systemd"), REPO, wheels)
    b = Booted(fresh)
    try:
        b.boot()
        r = b.run("make -s -C /src install WHEELS=/wheels", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "enabled (systemd): clusterpro_evt, clusterpro_trn, clusterpro, " \
            "clusterpro_alertsync" in r.stdout, r.stdout
        inst = fresh.path(P)
        (inst / "etc/clp.conf").write_text(CLP_CONF)
        (inst / "etc/scripts").mkdir(exist_ok=True)
        yield b
    finally:
        b.close()
        fresh.close()


@pytest.fixture
def sd(booted: Booted) -> Iterator[Booted]:
    """Every test starts with the four services stopped and their start limits reset."""
    yield booted
    r = booted.run(f"systemctl stop {' '.join(UNITS)} shutdown.target; systemctl reset-failed",
                   timeout=120)
    assert r.returncode == 0, r.stderr


def systemctl(b: Booted, *args: str) -> str:
    r = b.run("systemctl " + " ".join(args))
    assert r.returncode == 0, f"systemctl {' '.join(args)}: {r.stderr}\n{b.log()}"
    return r.stdout


def show(b: Booted, unit: str) -> dict[str, str]:
    """The unit's properties that these tests read (timestamps are CLOCK_MONOTONIC, in µs)."""
    names = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts", "ExecMainStatus",
             "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic",
             "ActiveExitTimestampMonotonic", "InactiveEnterTimestampMonotonic")
    out = systemctl(b, "show", *(f"-p {n}" for n in names), f"{unit}.service")
    return dict(line.split("=", 1) for line in out.splitlines())


def us(props: dict[str, str], name: str) -> int:
    t = int(props[f"{name}TimestampMonotonic"])
    assert t > 0, f"no {name} timestamp: an unloaded unit's, which would prove nothing: {props}"
    return t


def control_api_accepts(b: Booted) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(InstallRoot(b.fresh.path(P)).control_socket))


def test_start_clusterpro_starts_evt_and_trn_first_and_returns_once_it_serves(sd: Booted):
    started = time.monotonic()
    systemctl(sd, "start", "clusterpro")
    took = time.monotonic() - started
    control_api_accepts(sd)  # at once: READY=1 came after the control API listened
    evt, trn, cl = (show(sd, n) for n in ("clusterpro_evt", "clusterpro_trn", "clusterpro"))
    assert [p["ActiveState"] for p in (evt, trn, cl)] == ["active"] * 3
    # each began its start only once the one before it was ready (Type=notify + After=)
    assert us(evt, "ActiveEnter") <= us(trn, "InactiveExit") < us(trn, "ActiveEnter")
    assert us(trn, "ActiveEnter") <= us(cl, "InactiveExit") < us(cl, "ActiveEnter")
    assert show(sd, "clusterpro_alertsync")["ActiveState"] == "inactive"  # not wanted by it
    r = sd.run(f"{P}/bin/clpstat")
    assert r.returncode == 0 and "server1" in r.stdout, r.stdout + r.stderr
    assert took < 30


def test_stopping_or_restarting_clusterpro_evt_leaves_clusterpro_running(sd: Booted):
    systemctl(sd, "start", "clusterpro")
    pid = show(sd, "clusterpro")["MainPID"]
    systemctl(sd, "stop", "clusterpro_evt")
    assert show(sd, "clusterpro_evt")["ActiveState"] == "inactive"
    for name in ("clusterpro", "clusterpro_trn"):  # Wants=, not Requires=
        assert show(sd, name)["ActiveState"] == "active", name
    systemctl(sd, "restart", "clusterpro_evt")
    assert show(sd, "clusterpro_evt")["ActiveState"] == "active"
    cl = show(sd, "clusterpro")
    assert (cl["ActiveState"], cl["MainPID"]) == ("active", pid)
    control_api_accepts(sd)


def test_a_killed_clusterpro_evt_is_restarted_while_clusterpro_keeps_running(sd: Booted):
    systemctl(sd, "start", "clusterpro")
    cl, evt = show(sd, "clusterpro"), show(sd, "clusterpro_evt")
    r = sd.run(f"kill -KILL {evt['MainPID']}")  # a crash, not a stop through systemd
    assert r.returncode == 0, r.stderr

    def restarted() -> dict[str, str] | None:
        now = show(sd, "clusterpro_evt")
        done = now["NRestarts"] == str(int(evt["NRestarts"]) + 1) and \
            now["ActiveState"] == "active" and now["MainPID"] != evt["MainPID"]
        return now if done else None

    wait_for("systemd to restart clusterpro_evt", restarted, timeout=15)  # RestartSec=1
    after = show(sd, "clusterpro")
    assert (after["ActiveState"], after["MainPID"], after["NRestarts"]) == \
        ("active", cl["MainPID"], cl["NRestarts"])
    assert "clusterpro_evt.service: Main process exited, code=killed, status=9/KILL" in sd.log()


def assert_stopped_in_reverse_order(b: Booted) -> None:
    props = [show(b, n) for n in UNITS]
    for p in props:  # a clean stop: SIGTERM, STOPPING=1, exit 0
        assert (p["ActiveState"], p["Result"], p["ExecMainStatus"]) == \
            ("inactive", "success", "0"), p
    for first, then in pairwise(props):
        # a service began to stop only once the one started after it had stopped
        assert us(then, "InactiveEnter") <= us(first, "ActiveExit"), (first, then)


def test_a_shutdown_stops_them_in_the_reverse_order(sd: Booted):
    systemctl(sd, "start", *UNITS)  # the install's "next steps" command
    props = [show(sd, n) for n in UNITS]
    assert [p["ActiveState"] for p in props] == ["active"] * 4
    for first, then in pairwise(props):  # each started once the one before it was ready
        assert us(first, "ActiveEnter") <= us(then, "InactiveExit"), (first, then)
    # the transaction of a poweroff: every service Conflicts=shutdown.target (DefaultDependencies)
    systemctl(sd, "start", "shutdown.target")
    assert_stopped_in_reverse_order(sd)


def test_systemctl_stop_in_the_seeds_order_stops_them_one_after_the_other(sd: Booted):
    """One ``systemctl stop`` naming them in the seed's stop order (as ``make uninstall`` and
    chapter 10 do). Named in the start order instead, each stop would begin as systemctl asks for
    it, before the stop of the services ordered after it is even queued."""
    systemctl(sd, "start", *UNITS)
    systemctl(sd, "stop", *reversed(UNITS))
    assert_stopped_in_reverse_order(sd)


def test_a_clean_exit_of_clusterpro_leaves_it_stopped_and_not_restarted(sd: Booted):
    systemctl(sd, "start", "clusterpro")
    before = show(sd, "clusterpro")
    r = sd.run(f"kill -TERM {before['MainPID']}")  # stopped, but not by systemd: exits 0
    assert r.returncode == 0, r.stderr
    wait_for("clusterpro to stop", lambda: show(sd, "clusterpro")["ActiveState"] == "inactive",
             timeout=30)
    time.sleep(2)  # twice RestartSec: a restart would be on its way
    after = show(sd, "clusterpro")
    assert (after["ActiveState"], after["Result"], after["ExecMainStatus"]) == \
        ("inactive", "success", "0"), after
    assert after["NRestarts"] == before["NRestarts"]
    for name in ("clusterpro_evt", "clusterpro_trn"):
        assert show(sd, name)["ActiveState"] == "active", name

    # clpcl -t finds systemd running and stops the service through it
    systemctl(sd, "start", "clusterpro")
    r = sd.run(f"{P}/bin/clpcl -t", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    after = show(sd, "clusterpro")
    assert (after["ActiveState"], after["Result"]) == ("inactive", "success"), after
    assert show(sd, "clusterpro_evt")["ActiveState"] == "active"


def test_restarting_clusterpro_signals_the_daemon_only(sd: Booted):
    """KillMode=process: a process in clusterpro's cgroup (as an exec resource's application
    is) lives through a restart of the service."""
    systemctl(sd, "start", "clusterpro")
    cgroup = "/sys/fs/cgroup/system.slice/clusterpro.service"
    r = sd.run(f"sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {cgroup}/cgroup.procs; "
               "echo $!")
    assert r.returncode == 0, r.stderr
    app = r.stdout.strip()
    try:
        old = show(sd, "clusterpro")["MainPID"]
        systemctl(sd, "restart", "clusterpro")
        assert show(sd, "clusterpro")["MainPID"] != old
        procs = sd.run(f"cat {cgroup}/cgroup.procs").stdout.split()
        assert app in procs, procs
    finally:
        sd.run(f"kill -KILL {app}")
