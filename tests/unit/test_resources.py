"""Resource types and the runner without root: exec, dummy, the runner, Solaris argv."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from clp.config.model import Recovery, ResourceConfig
from clp.paths import InstallRoot
from clp.platform import power
from clp.platform.solaris import POWER_ARGV, SolarisPlatform, parse_ifconfig
from clp.resources import registry
from clp.resources.base import SCRIPT_EVENTS, Context, Status
from clp.resources.exec import script_env
from clp.resources.runner import ResourceRunner, probe_state

log = logging.getLogger("test.resources")


def rc(name: str, type_: str, **params: Any) -> ResourceConfig:
    kind = registry.get(type_)
    full = {k: v["default"] for k, v in kind.schema["properties"].items() if "default" in v}
    full.update(params)
    if type_ == "disk":
        full["fsck"] = {"policy": "on_error", "timeout": 60, **full.get("fsck", {})}
    return ResourceConfig(name, type_, MappingProxyType(full), (), Recovery(0, 1, "none"),
                          Recovery(0, 0, "none"))


def context(root: InstallRoot, resource: str, event: str = "START",
            servers: tuple[str, ...] = ("server1", "server2"),
            server: str = "server2") -> Context:
    return Context.for_group(cluster="cluster", server=server, group="g", resource=resource,
                             event=event, servers=servers, root=root, log=log)


@pytest.fixture
def runner() -> Iterator[ResourceRunner]:
    r = ResourceRunner(max_workers=4)
    try:
        yield r
    finally:
        r.shutdown()


def script(root: InstallRoot, resource: str, name: str, body: str) -> Path:
    folder = root.config_dir / "scripts" / "g" / resource
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


def test_exec_environment_and_exit_code(root: InstallRoot, runner: ResourceRunner) -> None:
    out = root.root / "env.txt"
    script(root, "exec1", "start.sh", f"env | grep ^CLP_ | sort > {out}\nexit 0\n")
    script(root, "exec1", "stop.sh", f"echo STOP=$CLP_EVENT >> {out}\nexit 3\n")
    res = runner.run("start", rc("exec1", "exec"), context(root, "exec1", "FAILOVER"), 10)
    assert res.result(timeout=15).status is Status.DONE
    env = dict(line.split("=", 1) for line in out.read_text().split())
    assert env["CLP_EVENT"] == "FAILOVER" and env["CLP_SERVER"] == "OTHER"
    assert env["CLP_PRIORITY"] == "2" and env["CLP_GROUPNAME"] == "g"
    assert env["CLP_RESOURCENAME"] == "exec1" and env["CLP_DISK"] == "SUCCESS"
    assert env["CLP_PID"] == str(os.getpid())
    stop = runner.run("stop", rc("exec1", "exec"), context(root, "exec1", "STOP"), 10)
    result = stop.result(timeout=15)
    assert (result.status, result.code) == (Status.ERROR, 3)
    assert "STOP=START" in out.read_text()


@pytest.mark.parametrize(("event", "start", "stop"), [
    ("START", "START", "START"), ("FAILOVER", "FAILOVER", "FAILOVER"),
    ("RECOVER", "RECOVER", "START"), ("MOVE", "START", "START"),
    ("FAILBACK", "START", "START"), ("STOP", "START", "START"),
])
def test_scripts_see_only_the_products_events(root: InstallRoot, event: str, start: str,
                                              stop: str) -> None:
    ctx = context(root, "exec1", event)
    assert script_env(ctx, stopping=False)["CLP_EVENT"] == start
    assert script_env(ctx, stopping=True)["CLP_EVENT"] == stop
    assert {start, stop} <= set(SCRIPT_EVENTS)


def test_exec_move_runs_the_start_script_with_start(root: InstallRoot,
                                                    runner: ResourceRunner) -> None:
    out = root.root / "event.txt"
    script(root, "mv", "start.sh", f"echo $CLP_EVENT > {out}\n")
    assert runner.run("start", rc("mv", "exec"), context(root, "mv", "MOVE"), 10).result(15).ok
    assert out.read_text() == "START\n"


def test_exec_missing_script_is_a_hard_error(root: InstallRoot, runner: ResourceRunner) -> None:
    result = runner.run("start", rc("nope", "exec"), context(root, "nope"), 10).result(15)
    assert result.status is Status.ERROR_HARD and "does not exist" in result.reason


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        if stat[2] != "Z":
            alive.append(pid)
    return alive


def test_timeout_kills_the_whole_process_tree(root: InstallRoot, runner: ResourceRunner) -> None:
    pids = root.root / "pids"
    script(root, "slow", "start.sh",
           f"sleep 1000 & echo $! >> {pids}\n(sleep 1000 & echo $! >> {pids}; wait) &\n"
           f"echo $$ >> {pids}\nwait\n")
    began = time.monotonic()
    result = runner.run("start", rc("slow", "exec"), context(root, "slow"), 1.0).result(10)
    assert result.status is Status.TIMEOUT and "did not finish in 1 s" in result.reason
    assert time.monotonic() - began < 8  # ended at its timeout, not when the sleeps end (1000 s)
    listed = [int(p) for p in pids.read_text().split()]
    assert len(listed) == 3
    deadline = time.monotonic() + 6
    while _alive(listed) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(listed) == []


def test_exec_own_timeout(root: InstallRoot, runner: ResourceRunner) -> None:
    script(root, "slow2", "start.sh", "sleep 1000\n")
    res = runner.run("start", rc("slow2", "exec", timeout_start=0.5), context(root, "slow2"), 30)
    assert res.result(timeout=10).status is Status.TIMEOUT


def test_exec_async(root: InstallRoot, runner: ResourceRunner) -> None:
    marker = root.root / "stopped"
    script(root, "a1", "start.sh", "exec sleep 1000\n")
    script(root, "a1", "stop.sh", f"touch {marker}\n")
    conf = rc("a1", "exec", mode="async")
    ctx = context(root, "a1")
    assert runner.run("start", conf, ctx, 10).result(10).status is Status.DONE
    assert probe_state(runner.run("probe", conf, ctx, 10).result(10)) is True
    pid_file = root.volatile_dir / "exec" / "g.a1.pgid"  # tmpfs: a reboot forgets it
    pgid = int(pid_file.read_text())
    assert not (root.work_dir / "exec").exists()
    assert (pid_file.parent.stat().st_mode & 0o777) == 0o700
    assert (root.volatile_dir.stat().st_mode & 0o777) == 0o700
    assert runner.run("stop", conf, ctx, 10).result(15).status is Status.DONE
    assert marker.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert probe_state(runner.run("probe", conf, ctx, 10).result(10)) is False
    script(root, "a2", "start.sh", "exit 4\n")
    failed = runner.run("start", rc("a2", "exec", mode="async"), context(root, "a2"), 10)
    assert (failed.result(10).status, failed.result().code) == (Status.ERROR, 4)


def test_dummy_modes(root: InstallRoot, runner: ResourceRunner, tmp_path: Path) -> None:
    ctx = context(root, "d1")
    ok = rc("d1", "dummy", start_delay=0.2)
    assert probe_state(runner.run("probe", ok, ctx, 5).result(5)) is False
    assert runner.run("start", ok, ctx, 5).result(5).ok
    assert probe_state(runner.run("probe", ok, ctx, 5).result(5)) is True
    assert runner.run("stop", ok, ctx, 5).result(5).ok
    assert probe_state(runner.run("probe", ok, ctx, 5).result(5)) is False
    assert runner.run("start", rc("d1", "dummy", fail_start=True), ctx, 5).result(5).status \
        is Status.ERROR
    assert runner.run("stop", rc("d1", "dummy", fail_stop=True), ctx, 5).result(5).status \
        is Status.ERROR
    flag = tmp_path / "fail"
    with_file = rc("d1", "dummy", fail_file=str(flag))
    assert runner.run("start", with_file, ctx, 5).result(5).ok
    flag.touch()
    assert "exists" in runner.run("start", with_file, ctx, 5).result(5).reason
    began = time.monotonic()
    hung = runner.run("start", rc("d1", "dummy", hang=True), ctx, 0.5).result(10)
    assert hung.status is Status.TIMEOUT and time.monotonic() - began < 8  # its 0.5 s, not 10


def test_runner_never_raises(root: InstallRoot, runner: ResourceRunner,
                             monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    kind = registry.get("dummy")

    def boom(params: Any, ctx: Context) -> Any:
        raise ValueError("broken type")

    monkeypatch.setattr(kind, "start", boom)
    with caplog.at_level(logging.ERROR):
        result = runner.run("start", rc("d", "dummy"), context(root, "d"), 5).result(5)
    assert result.status is Status.ERROR and "broken type" in result.reason
    assert "Traceback" in caplog.text
    bad = runner.run("restart", rc("d", "dummy"), context(root, "d"), 5).result(5)
    assert bad.status is Status.ERROR_HARD
    nosuch = ResourceConfig("x", "nosuch", {}, (), Recovery(0, 1, "none"),
                            Recovery(0, 0, "none"))
    unknown = runner.run("start", nosuch, context(root, "x"), 5)
    assert "unknown resource type" in unknown.result(5).reason
    runner.shutdown()
    late = runner.run("start", rc("d", "dummy"), context(root, "d"), 5).result(5)
    assert late.status is Status.ERROR


def test_context_home_and_priority(root: InstallRoot) -> None:
    ctx = context(root, "r", server="server1")
    assert (ctx.home, ctx.priority) == (True, 1)
    assert ctx.scripts_dir == root.config_dir / "scripts" / "g" / "r"


def test_solaris_command_lines() -> None:
    sol = SolarisPlatform()
    assert sol.add_address_argv("198.18.0.12", 24, "e1000g0") == [
        "ifconfig", "e1000g0", "addif", "198.18.0.12/24", "up"]
    assert sol.del_address_argv("198.18.0.12", 24, "e1000g0") == [
        "ifconfig", "e1000g0", "removeif", "198.18.0.12"]
    assert sol.announce("198.18.0.12", "e1000g0", 3) is None  # the kernel announces
    assert sol.fsck_argv("/dev/dsk/c1t0d0s6", "ufs") == [
        "fsck", "-F", "ufs", "-y", "/dev/rdsk/c1t0d0s6"]
    assert sol.fsck_argv("pool/fs", "zfs") is None
    assert sol.mount_argv("/dev/dsk/c1t0d0s6", "/mnt/d", "ufs", "rw") == [
        "mount", "-F", "ufs", "-o", "rw", "/dev/dsk/c1t0d0s6", "/mnt/d"]
    assert sol.mount_argv("pool/fs", "/mnt/z", "zfs", "rw") == [
        "mount", "-F", "zfs", "-o", "rw", "pool/fs", "/mnt/z"]
    assert sol.umount_argv("/mnt/d") == ["umount", "/mnt/d"]
    assert sol.kill_holders_argv("/mnt/d", False) == ["fuser", "-c", "-s", "TERM", "/mnt/d"]
    assert sol.kill_holders_argv("/mnt/d", True) == ["fuser", "-c", "-k", "/mnt/d"]
    assert POWER_ARGV == {"shutdown": ["uadmin", "2", "0"], "reboot": ["uadmin", "2", "1"],
                          "panic": ["uadmin", "5", "1"], "reset": ["uadmin", "1", "1"]}


def test_solaris_ifconfig_parsing() -> None:
    text = """\
lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1
        inet 127.0.0.1 netmask ff000000
e1000g0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
        inet 198.18.0.1 netmask ffffff00 broadcast 198.18.0.255
e1000g0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
        inet 198.18.0.12 netmask ffffff00 broadcast 198.18.0.255
"""
    found = [(i, str(n), str(a)) for i, n, a in parse_ifconfig(text)]
    assert found == [("lo0", "127.0.0.0/8", "127.0.0.1"),
                     ("e1000g0", "198.18.0.0/24", "198.18.0.1"),
                     ("e1000g0", "198.18.0.0/24", "198.18.0.12")]


def test_linux_command_lines() -> None:
    from clp.platform.linux import LinuxPlatform

    lin = LinuxPlatform()
    assert lin.fsck_argv("/dev/sdb1", "ext4") == ["e2fsck", "-p", "/dev/sdb1"]
    assert lin.fsck_argv("/dev/sdb1", "xfs") == ["xfs_repair", "/dev/sdb1"]
    assert lin.mount_argv("pool/fs", "/mnt/z", "zfs", "rw") == [
        "mount", "-t", "zfs", "-o", "rw", "pool/fs", "/mnt/z"]
    assert lin.kill_holders_argv("/mnt/d", True) == ["fuser", "-k", "-KILL", "-m", "/mnt/d"]


@pytest.mark.parametrize("action", ["shutdown", "reboot", "panic"])
def test_power_actions_are_refused_in_tests(action: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"power action ran something: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(os, "kill", forbidden)
    monkeypatch.setattr(power.Path, "write_text", forbidden)
    assert os.environ["CLP_NO_POWER"] == "1"
    with pytest.raises(power.PowerRefused, match="CLP_NO_POWER"):
        getattr(power, action)()


def test_lab_power_signals_pid_one() -> None:
    assert power.LAB_SIGNALS == {"shutdown": signal.SIGTERM, "reboot": signal.SIGUSR1,
                                 "panic": signal.SIGUSR2, "reset": signal.SIGUSR2}


def test_a_gate_that_refuses_runs_nothing_and_says_why(root: InstallRoot) -> None:
    marker = root.root / "ran"
    script(root, "gated", "start.sh", f"touch {marker}\n")
    why: list[str | None] = ["server2 has fenced itself"]
    gated = ResourceRunner(max_workers=1, gate=lambda: why[0])
    try:
        result = gated.run("start", rc("gated", "exec"), context(root, "gated"), 5).result(5)
        assert result.status is Status.ERROR_HARD and "fenced itself" in result.reason
        assert not marker.exists()
        why[0] = None
        assert gated.run("start", rc("gated", "exec"), context(root, "gated"), 5).result(5).ok
        assert marker.exists()
    finally:
        gated.shutdown()
