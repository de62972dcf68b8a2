"""Each monitor type against real things on this machine: processes, scripts, NICs, loop devices.

No traffic leaves the host except on loopback: a NIC without link and an address that does not
answer are made inside a network namespace of their own (``unshare -n``, gone with its process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from clp.clusterd.marks import ServiceMarks, boottime
from clp.config.model import (
    ClusterConfig,
    GroupConfig,
    NetworkPartition,
    Ports,
    Recovery,
    ResourceConfig,
    ServerConfig,
)
from clp.monitors import registry
from clp.monitors.base import Check, Health, MonitorContext, MonitorType
from clp.monitors.mtw import MultiTargetMonitor
from clp.monitors.userw import WATCHDOG, UserSpaceMonitor
from clp.paths import InstallRoot
from clp.platform import proc
from clp.resources.exec import async_pid_file

log = logging.getLogger("test.monitors")
REPO = Path(__file__).resolve().parents[2]
WAIT = 5.0  # seconds any wait for the machine to catch up may take


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def cluster(root: InstallRoot, **resources: Mapping[str, Any]) -> ClusterConfig:
    """A configuration whose group ``g`` holds ``resources`` (name -> type and parameters)."""
    rcs = tuple(ResourceConfig(name, str(p["type"]), MappingProxyType(dict(p)), (),
                               Recovery(0, 1, "none"), Recovery(0, 0, "none"))
                for name, p in resources.items())
    return ClusterConfig("cluster", (ServerConfig("server1", 0), ServerConfig("server2", 1)),
                         3.0, 90.0, Ports(), (), NetworkPartition(), (), root.config_dir, {},
                         groups=(GroupConfig("g", ("server1", "server2"), "auto", "manual",
                                             "off", rcs),))


def make(type_: str, root: InstallRoot, monitor: str = "m1", target: str | None = None,
         config: ClusterConfig | None = None, timeout: float = 5.0,
         states: Callable[[], Mapping[str, str]] | None = None, **params: Any) -> Any:
    """An instance of ``type_`` with its schema's defaults and ``params``."""
    kind: type[MonitorType] = registry.get(type_)
    full = {k: v["default"] for k, v in kind.schema["properties"].items() if "default" in v}
    full.update(params)
    ctx = MonitorContext("cluster", "server1", monitor, target, root,
                         config or cluster(root), log, 1.0, timeout,
                         states or (lambda: {}))
    return kind(MappingProxyType(full), ctx)


def tag() -> str:
    return secrets.token_hex(4)


def state_of(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2]


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``sleep`` under a chosen argv[0] (or another program); all are ended after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv0: str, *args: str, exe: str = "/bin/sleep") -> subprocess.Popen[bytes]:
        child = subprocess.Popen([argv0, *(args or ("1000",))], executable=exe,
                                 start_new_session=True, stdin=subprocess.DEVNULL)
        started.append(child)
        return child

    try:
        yield start
    finally:
        for child in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=WAIT)


def in_netns(setup: str, code: str, sysfs: bool = False) -> Any:
    """Run ``code`` (Python, prints JSON on its last line) in a network namespace of its own
    after the shell commands ``setup``; the namespace ends with the process."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare and ip are needed")
    if sysfs:  # /sys/class/net shows the namespace that mounted sysfs: mount one of our own
        setup = f"mount -t sysfs sysfs /sys\n{setup}"
    script = f"set -e\n{setup}\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)}\n"
    argv = ["unshare", "-n", *(["-m"] if sysfs else []), "sh", "-c", script]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    except subprocess.TimeoutExpired:  # run() has killed it: the namespace is gone with it
        pytest.fail("the network namespace did not finish in 60 s")
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


NETNS_PRELUDE = """\
import json, logging, subprocess, time
from types import MappingProxyType
from clp.monitors.base import MonitorContext
from clp.paths import InstallRoot
ctx = MonitorContext("c", "server1", "m1", None, InstallRoot("/nonexistent"), None,
                     logging.getLogger(), 1.0, 5.0)
def run(kind, **params):
    found = kind(MappingProxyType(params), ctx).check()
    return [found.health.value, found.reason]
"""


# --- dummy ----------------------------------------------------------------------------------


def test_dummy_files_and_delay(root: InstallRoot, tmp_path: Path) -> None:
    fail, warn = tmp_path / "fail", tmp_path / "warn"
    m = make("dummy", root, fail_file=str(fail), caution_file=str(warn))
    assert m.check().health is Health.NORMAL
    warn.touch()
    assert m.check() == Check(Health.CAUTION, f"{warn} exists")
    fail.touch()  # an error outranks a caution
    assert m.check() == Check(Health.ERROR, f"{fail} exists")
    fail.unlink()
    warn.unlink()
    assert m.check().ok
    slow = make("dummy", root, delay=0.3)
    started = time.monotonic()
    assert slow.check().ok
    assert 0.3 <= time.monotonic() - started < 0.3 + WAIT


# --- psw ------------------------------------------------------------------------------------


def test_psw_counts_processes_by_command_line(root: InstallRoot, spawn: Any) -> None:
    name = f"clp-psw-{tag()}"
    assert make("psw", root, process_name=f"{name}*").check().health is Health.ERROR
    spawn(f"{name}-a", "1000")
    spawn(f"{name}-b", "1001")
    assert make("psw", root, process_name=f"{name}-a 1000").check().ok
    assert make("psw", root, process_name=f"{name}-? 100[0-9]", count=2).check().ok
    found = make("psw", root, process_name=f"{name}*", count=3).check()
    assert found.health is Health.ERROR
    assert found.reason == f"2 process(es) match '{name}*', at least 3 needed"
    assert make("psw", root, process_name=f"{name}-a", count=1).check().health is Health.ERROR


def test_psw_restart_detection(root: InstallRoot, spawn: Any) -> None:
    name = f"clp-psw-{tag()}"
    first = spawn(name)
    watch = make("psw", root, process_name=f"{name} *", restart_detection=True)
    plain = make("psw", root, process_name=f"{name} *")
    watch.begin()
    assert watch.check().ok and plain.check().ok
    first.kill()
    first.wait(timeout=WAIT)
    spawn(name)  # another took its place between two checks
    found = watch.check()
    assert found.health is Health.ERROR
    assert found.reason == f"process {first.pid} matching '{name} *' was restarted"
    assert plain.check().ok  # a count alone does not see it
    assert watch.check().ok  # the new one is the one watched now
    watch.begin()  # monitoring starts again: nothing is compared with before
    assert watch.check().ok


def test_psw_does_not_count_zombies(root: InstallRoot, tmp_path: Path, spawn: Any) -> None:
    name = f"clpz{tag()}"  # also its comm (<= 15 characters), what ps shows for a zombie
    (tmp_path / name).symlink_to("/bin/sleep")
    child = spawn(str(tmp_path / name), exe=str(tmp_path / name))
    m = make("psw", root, process_name=f"*{name}*")
    assert m.check().ok
    os.kill(child.pid, signal.SIGKILL)  # and not reaped: a zombie
    assert wait_for(lambda: state_of(child.pid) == "Z")
    stat = Path(f"/proc/{child.pid}/stat").read_text()
    assert f"({name})" in stat  # as "[<comm>]" it would match the pattern
    assert m.check().health is Health.ERROR
    child.wait(timeout=WAIT)


# --- pidw -----------------------------------------------------------------------------------


def _pidw(root: InstallRoot, pid: int) -> Any:
    pid_file = async_pid_file(root, "g", "exec1")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")  # as the exec resource writes it
    return make("pidw", root, target="exec1",
                config=cluster(root, exec1={"type": "exec", "mode": "async"}))


def test_pidw_watches_the_async_exec_process(root: InstallRoot, spawn: Any) -> None:
    child = spawn(f"clp-pidw-{tag()}")
    m = _pidw(root, child.pid)
    assert m.check() == Check(Health.ERROR, "exec1 has no running process to monitor")
    m.begin()
    assert m.check() == Check(Health.NORMAL, f"process {child.pid}")
    child.kill()
    child.wait(timeout=WAIT)
    assert m.check() == Check(Health.ERROR, f"process {child.pid} of exec1 is gone")
    m.begin()  # started again while the process is gone: nothing to watch
    assert m.check().health is Health.ERROR
    async_pid_file(root, "g", "exec1").unlink()
    m.begin()
    assert m.check().health is Health.ERROR


def test_pidw_a_reused_pid_is_another_process(root: InstallRoot, spawn: Any) -> None:
    first = spawn(f"clp-pidw-{tag()}")
    m = _pidw(root, first.pid)
    m.begin()
    assert m.watched is not None and m.watched[0] == first.pid
    # the process begin() saw started earlier than the live one with its id: a stranger
    m.watched = (first.pid, m.watched[1] - 1)
    assert m.check() == Check(Health.ERROR, f"process {first.pid} of exec1 is gone")
    m.begin()
    assert m.check().ok
    # the real thing, when this host lets the next pid be chosen (other forks may race it)
    last = Path("/proc/sys/kernel/ns_last_pid")
    time.sleep(0.05)  # start times are in clock ticks: the next one must start in a later one
    first.kill()
    first.wait(timeout=WAIT)
    for _ in range(20):
        try:
            last.write_text(str(first.pid - 1))
        except OSError:
            pytest.skip("ns_last_pid cannot be written here")
        second = spawn(f"clp-pidw-{tag()}")
        if second.pid == first.pid:
            break
    else:
        pytest.skip("could not get the pid reused")
    assert m.check() == Check(Health.ERROR, f"process {first.pid} of exec1 is gone")


# --- genw -----------------------------------------------------------------------------------


def genw_script(root: InstallRoot, body: str, monitor: str = "m1", mode: int = 0o755) -> Path:
    folder = root.config_dir / "scripts" / "monitor.s" / monitor
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "genw.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(mode)
    return script


def test_genw_sync_exit_codes_and_environment(root: InstallRoot, tmp_path: Path) -> None:
    env = tmp_path / "env"
    genw_script(root, f'env | grep ^CLP_ | sort > {env}; pwd >> {env}\necho "all fine"\n'
                      'exit "${CODE:-0}"\n')
    assert make("genw", root).check().ok
    seen = env.read_text().split()
    assert seen[:3] == ["CLP_CLUSTERNAME=cluster", "CLP_MONITORNAME=m1",
                        "CLP_SERVERNAME=server1"]
    assert seen[3] == str(root.config_dir / "scripts" / "monitor.s" / "m1")
    genw_script(root, 'echo first; echo "  it broke  "; exit 1\n')
    assert make("genw", root).check() == Check(Health.ERROR,
                                               "genw.sh exited with code 1: it broke")
    genw_script(root, "exit 3\n")
    assert make("genw", root, normal_value=3).check().ok
    assert make("genw", root).check() == Check(Health.ERROR, "genw.sh exited with code 3")
    other = tmp_path / "elsewhere.sh"
    other.write_text("#!/bin/sh\nexit 0\n")
    other.chmod(0o755)
    assert make("genw", root, path=str(other)).check().ok  # an absolute path


def test_genw_sync_timeout_ends_the_script(root: InstallRoot, tmp_path: Path) -> None:
    sleeper = tmp_path / "sleeper"
    genw_script(root, f"sleep 1000 &\necho $! > {sleeper}\nwait\n")
    started = time.monotonic()
    found = make("genw", root, timeout=0.5).check()
    assert found == Check(Health.ERROR, "genw.sh did not finish in 0.5 s", timed_out=True)
    assert time.monotonic() - started < 0.5 + proc.KILL_GRACE + WAIT
    assert wait_for(lambda: state_of(int(sleeper.read_text())) == "gone")


def test_genw_missing_or_not_executable(root: InstallRoot) -> None:
    script = root.config_dir / "scripts" / "monitor.s" / "m1" / "genw.sh"
    assert make("genw", root).check() == Check(Health.ERROR,
                                               f"script {script} does not exist")
    genw_script(root, "exit 0\n", mode=0o644)
    assert make("genw", root).check() == Check(Health.ERROR,
                                               f"script {script} is not executable")
    m = make("genw", root, mode="async")
    m.begin()  # nothing to start
    assert m.child is None and m.check().health is Health.ERROR
    m.end()


def test_genw_log_file_and_rotation(root: InstallRoot, tmp_path: Path) -> None:
    genw_script(root, 'i=0; while [ $i -lt 40 ]; do echo "line $i of the output"; '
                      'i=$((i+1)); done\n', monitor="genwlog")
    log_file = tmp_path / "genw.log"
    m = make("genw", root, monitor="genwlog", log_file=str(log_file), log_rotate=True,
             log_size=300)
    assert m.check().ok
    rotated = Path(f"{log_file}.1")
    assert rotated.exists() and "line" in rotated.read_text()
    assert log_file.stat().st_size <= 300 and "line 39 of the output" in log_file.read_text()
    assert not Path(f"{log_file}.2").exists()  # one generation kept
    # the same monitor configured with another file and without rotation writes there
    other = tmp_path / "other.log"
    again = make("genw", root, monitor="genwlog", log_file=str(other))
    assert again.check().ok and again.check().ok
    text = other.read_text()
    assert text.count("line 0 of the output") == 2 and not Path(f"{other}.1").exists()
    assert "line 0 of" not in log_file.read_text()


def test_genw_async_keeps_its_script_running(root: InstallRoot, tmp_path: Path) -> None:
    sleeper = tmp_path / "sleeper"
    genw_script(root, f'sleep 1000 &\necho $! > {sleeper}\nwait\nexit 4\n')
    m = make("genw", root, mode="async")
    groups: list[int] = []  # every script started, ended after whatever happens
    try:
        m.begin()
        first = m.child
        assert first is not None and wait_for(lambda: sleeper.read_text().strip() != ""
                                              if sleeper.exists() else False)
        groups.append(first.pid)
        found = m.check()
        assert found.ok and f"pid {first.pid}" in found.reason
        # the script dies and leaves its child behind: an error, and a new script next time
        sleep_pid = int(sleeper.read_text())
        sleeper.unlink()
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=WAIT)
        assert m.check() == Check(Health.ERROR, "genw.sh is not running (exited with code -9)")
        assert state_of(sleep_pid) == "gone"  # what it left running is ended too
        second = m.child
        assert second is not None and second is not first
        groups.append(second.pid)
        assert wait_for(lambda: sleeper.read_text().strip() != "" if sleeper.exists() else False)
        assert m.check().ok
        sleep_pid = int(sleeper.read_text())
        # the script exits by itself (its child ended): an error too
        os.kill(sleep_pid, signal.SIGTERM)
        assert second.wait(timeout=WAIT) == 4
        assert m.check() == Check(Health.ERROR, "genw.sh is not running (exited with code 4)")
        third = m.child
        assert third is not None
        groups.append(third.pid)
        assert wait_for(lambda: sleeper.exists()
                        and sleeper.read_text().strip() not in ("", str(sleep_pid)))
        sleep_pid = int(sleeper.read_text())
    finally:
        m.end()  # ends the script's whole process group
        for group in groups:  # what a failed test would leave behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
    assert m.child is None and third.returncode is not None
    assert not proc.group_alive(third.pid) and state_of(sleep_pid) == "gone"


def test_genw_async_end_ends_what_an_exited_script_left(root: InstallRoot,
                                                       tmp_path: Path) -> None:
    sleeper = tmp_path / "sleeper"
    genw_script(root, f"sleep 1000 &\necho $! > {sleeper}\nexit 0\n")
    m = make("genw", root, mode="async")
    m.begin()
    child = m.child
    try:
        assert child is not None and child.wait(timeout=WAIT) == 0
        sleep_pid = int(sleeper.read_text())
        assert proc.group_alive(child.pid)  # its sleep
        m.end()  # monitoring stops before a check saw the script exit
        assert not proc.group_alive(child.pid) and state_of(sleep_pid) == "gone"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


# --- mtw ------------------------------------------------------------------------------------


def test_mtw_thresholds(root: InstallRoot) -> None:
    states = {"a": "Normal", "b": "Normal", "c": "Normal"}

    def mtw(**params: Any) -> Any:
        return make("mtw", root, states=lambda: dict(states), members=["a", "b", "c"], **params)

    assert mtw().check() == Check(Health.NORMAL, "0 of 3 members in error")
    states.update(a="Error", b="Error", c="Caution")
    assert mtw().check() == Check(Health.NORMAL, "2 of 3 members in error (a, b)")
    assert mtw(error_threshold=2).check().health is Health.ERROR
    assert mtw(warning_threshold=2).check() == Check(Health.CAUTION,
                                                     "2 of 3 members in error (a, b)")
    assert mtw(warning_threshold=3).check().ok
    states["c"] = "Error"  # default: every member
    assert mtw().check() == Check(Health.ERROR, "3 of 3 members in error (a, b, c)")
    states.update(a="Suspend", b="Offline", c="Unknown")  # only Error counts
    assert mtw(error_threshold=1).check().ok
    states.clear()  # members not monitored here
    assert mtw(error_threshold=1).check().ok


def test_mtw_cross_check() -> None:
    def issues(name: str, monitors: dict[str, Any]) -> list[tuple[str, str]]:
        item = monitors[name]
        return [(i.path, i.message) for i in MultiTargetMonitor.cross_check(
            f"monitors.{name}", name, item, {"monitors": monitors})]

    monitors: dict[str, Any] = {
        "m1": {"type": "mtw", "members": ["ipw1", "ghost", "m1"], "error_threshold": 4,
               "warning_threshold": 3},
        "ipw1": {"type": "ipw"},
    }
    assert issues("m1", monitors) == [
        ("monitors.m1.members[1]", "'ghost' is not a monitor resource"),
        ("monitors.m1.members[2]", "mtw m1 cannot be its own member"),
        ("monitors.m1.error_threshold", "4 is more than the 3 member(s)"),
    ]
    # a warning threshold that is not below the error threshold: Caution is never shown
    for warn, error in ((3, None), (2, 2), (3, 2)):
        monitors["m1"] = {"type": "mtw", "members": ["ipw1", "x", "y"],
                          "warning_threshold": warn, "error_threshold": error}
        found = list(MultiTargetMonitor.cross_check("monitors.m1", "m1", monitors["m1"],
                                                    {"monitors": {**monitors, "x": {},
                                                                  "y": {}}}))
        assert [(i.path, i.severity) for i in found] == [("monitors.m1.warning_threshold",
                                                          "warning")]
        assert "never shows Caution" in found[0].message
    cycle: dict[str, Any] = {
        "a": {"type": "mtw", "members": ["b", "ipw1"]},
        "b": {"type": "mtw", "members": ["c"]},
        "c": {"type": "mtw", "members": ["a"]},
        "ipw1": {"type": "ipw"},
    }
    assert issues("a", cycle) == [("monitors.a.members[0]",
                                   "multi-target monitors a and b contain each other")]
    assert issues("c", cycle) == [("monitors.c.members[0]",
                                   "multi-target monitors c and a contain each other")]
    cycle["c"]["members"] = ["ipw1"]  # no cycle: an mtw over an mtw is fine
    assert issues("a", cycle) == [] and issues("c", cycle) == []


# --- miiw / fipw / ipw ----------------------------------------------------------------------


def test_miiw_on_this_host(root: InstallRoot) -> None:
    assert make("miiw", root, device="lo").check().ok
    found = make("miiw", root, device="clpnosuchnic0").check()
    assert found.health is Health.ERROR and "'clpnosuchnic0'" in found.reason
    # a server whose NIC has another name
    assert make("miiw", root, device="clpnosuchnic0", devices={"server1": "lo"}).check().ok
    assert make("miiw", root, device="lo",
                devices={"server2": "clpnosuchnic0"}).check().ok


def test_miiw_link_down_in_a_namespace() -> None:
    found = in_netns(
        "ip link add clpv0 type veth peer name clpv1\nip link set clpv0 up",
        NETNS_PRELUDE + """\
from clp.monitors.miiw import MiiMonitor
out = {"lo": run(MiiMonitor, device="lo"), "v0": run(MiiMonitor, device="clpv0")}
subprocess.run(["ip", "link", "set", "clpv1", "up"], check=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and run(MiiMonitor, device="clpv0")[0] != "Normal":
    time.sleep(0.02)
out["up"] = run(MiiMonitor, device="clpv0")
print(json.dumps(out))
""", sysfs=True)
    assert found == {"lo": ["Error", "lo: link down"],  # a new namespace's lo is down
                     "v0": ["Error", "clpv0: link down"],  # its peer is down: no carrier
                     "up": ["Normal", ""]}


def test_fipw_address_on_this_host(root: InstallRoot) -> None:
    def fipw(ip: str, **params: Any) -> Any:
        cfg = cluster(root, fip1={"type": "fip", "ip": ip})
        return make("fipw", root, target="fip1", config=cfg, **params)

    assert fipw("127.0.0.1").check().ok
    assert fipw("127.0.0.1", monitor_link=True).check().ok  # on lo, which is up
    assert fipw("198.18.77.77").check() == Check(
        Health.ERROR, "198.18.77.77 is not on any interface of server1")


def test_ipw_loopback_answers(root: InstallRoot) -> None:
    assert make("ipw", root, addresses=["127.0.0.1"]).check().ok
    if Path("/proc/net/if_inet6").exists() and " lo\n" in Path("/proc/net/if_inet6").read_text():
        assert make("ipw", root, addresses=["::1"]).check().ok


def test_ipw_no_answer_in_a_namespace() -> None:
    found = in_netns(
        "ip link set lo up\nip link add clpv0 type veth peer name clpv1\n"
        "ip addr add 198.18.77.1/24 dev clpv0\nip link set clpv0 up\nip link set clpv1 up",
        NETNS_PRELUDE + """\
from clp.monitors.ipw import IpMonitor
started = time.monotonic()
out = {"none": run(IpMonitor, addresses=["198.18.77.77", "198.18.77.78"], ping_timeout=0.5),
       "took": time.monotonic() - started,
       "one": run(IpMonitor, addresses=["198.18.77.77", "198.18.77.1"], ping_timeout=0.5)}
print(json.dumps(out))
""")
    assert found["none"] == ["Error", "no answer from 198.18.77.77, 198.18.77.78 within 0.5 s"]
    assert 0.4 < found["took"] < WAIT
    assert found["one"] == ["Normal", ""]  # one answering address is enough


# --- userw ----------------------------------------------------------------------------------


def test_userw_keepalive(root: InstallRoot) -> None:
    m = make("userw", root, timeout=10)
    m.begin()
    assert m.check().ok and m.check().ok
    assert m.last is not None
    m.last -= 12.5  # as if user space had not run for 12.5 s
    found = m.check()
    assert found.health is Health.ERROR
    assert found.reason.startswith("user space was not scheduled for 12.") \
        and found.reason.endswith("(timeout 10 s)")
    assert m.check().ok  # the next one measures from the last
    m.end()
    assert m.inline()  # nothing in it can block: it runs on the event loop
    m.watchdog = 99  # as if a watchdog device were open: an IPMI one's write waits for the BMC
    assert not m.inline()
    m.watchdog = None
    assert UserSpaceMonitor.recovery_defaults_of({}) == {"final_action": "keepalive_reset"}
    assert UserSpaceMonitor.recovery_defaults_of({"action": "RESET"}) == {
        "final_action": "keepalive_reset"}
    assert UserSpaceMonitor.recovery_defaults_of({"action": "PANIC"}) == {
        "final_action": "keepalive_panic"}
    beat = {"interval": 3, "timeout": 90}
    assert UserSpaceMonitor.timing_of({"interval": 5, "timeout": 20}, beat) == (3.0, 90.0)
    assert UserSpaceMonitor.timing_of({"interval": 5, "timeout": 20, "use_heartbeat": False},
                                      beat) == (5.0, 20.0)


def test_userw_probes(root: InstallRoot) -> None:
    m = make("userw", root, monitor="userwp", open_file=True, write_file=True,
             write_size=5000, create_thread=True)
    m.begin()
    assert m.check().ok
    assert (root.work_dir / "userw.userwp").stat().st_size == 5000
    m.end()
    assert not m.inline()  # a probe may hang: in a worker thread, within the timeout
    for probe in ("open_file", "write_file", "create_thread"):
        assert not make("userw", root, monitor="userwq", **{probe: True}).inline()
    assert not make("genw", root, monitor="genw1", path="x.sh").inline()


def test_userw_feeds_its_watchdog_only_while_the_heartbeat_loop_runs(root: InstallRoot
                                                                       ) -> None:
    """A stalled heartbeat loop (its last round older than FEED_LAG intervals: 6 s at the
    cluster's 3 s) must let the watchdog fire, however well userw's own thread runs. A pipe
    stands in for the device: what it receives is what the device would."""
    m = make("userw", root, method="softdog", timeout=90)
    m.begin()
    assert m.watchdog is None  # no device here (or the lab's /dev/null cover)
    r, w = os.pipe()
    os.set_blocking(r, False)
    m.watchdog, m.missing = w, ""
    root.volatile_dir.mkdir(parents=True, exist_ok=True)
    marks = ServiceMarks(root.volatile_dir)
    try:
        found = m.check()  # a pipe takes no timeout: said, the peers' wait may not cover it
        assert found.health is Health.CAUTION and "refused the timeout of 90 s" in found.reason
        assert os.read(r, 8) == b"\0"  # fed all the same: no round yet, the loop starts
        m.wrong = ""  # as if the device had taken it
        marks.write_tick(boottime())
        assert m.check().ok and os.read(r, 8) == b"\0"
        marks.write_tick(boottime() - 7.5)
        found = m.check()
        assert found.health is Health.CAUTION, found
        assert found.reason.startswith("the cluster service's heartbeat loop has not run for 7.")
        assert "the watchdog is not fed" in found.reason
        with pytest.raises(BlockingIOError):
            os.read(r, 8)
        marks.write_tick(boottime())
        assert m.check().ok and os.read(r, 8) == b"\0"
        marks.clear_tick()  # a clean stop: fed until monitoring ends (then the magic close)
        assert m.check().ok and os.read(r, 8) == b"\0"
    finally:
        m.end()
        assert os.read(r, 8) == b"V"
        os.close(r)


@pytest.mark.skipif(os.path.exists(WATCHDOG), reason="never touch a real watchdog device")
@pytest.mark.parametrize("method", ["softdog", "ipmi"])
def test_userw_watchdog_missing_is_a_caution(root: InstallRoot, method: str) -> None:
    m = make("userw", root, method=method)
    m.begin()
    try:
        found = m.check()
    finally:
        m.end()
    assert found.health is Health.CAUTION
    assert found.reason == f"{method}: {WATCHDOG} cannot be opened (No such file or directory)"
    assert m.watchdog is None


# --- diskw ----------------------------------------------------------------------------------


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    """A loop device over an 8 MiB file, detached after."""
    if shutil.which("losetup") is None:
        pytest.skip("losetup is needed")
    image = tmp_path / "loop.img"
    image.write_bytes(b"\xa5" * (8 << 20))
    done = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                          text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"no loop device: {done.stderr.strip()}")
    device = done.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=30)


@pytest.mark.parametrize("method", ["read_direct", "read"])
def test_diskw_reads_a_file_and_a_loop_device(root: InstallRoot, tmp_path: Path,
                                              loop_device: str, method: str) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\1" * 3 * 4096)
    for device in (str(image), loop_device):
        assert make("diskw", root, method=method, device=device).check().ok
        assert make("diskw", root, method=method, device=device, io_size=1).check().ok
        assert make("diskw", root, method=method, device=device, io_size=10**6).check().ok
    missing = tmp_path / "no-such-device"
    found = make("diskw", root, method=method, device=str(missing)).check()
    assert found.health is Health.ERROR and str(missing) in found.reason
    empty = tmp_path / "empty.img"
    empty.touch()
    assert make("diskw", root, method=method, device=str(empty)).check().health \
        is Health.ERROR


def test_diskw_tur_needs_a_scsi_device(root: InstallRoot, loop_device: str) -> None:
    found = make("diskw", root, method="tur", device=loop_device).check()
    assert found.health is Health.ERROR
    assert found.reason.startswith(f"{loop_device}: SG_IO TEST UNIT READY: ")
    assert ("Invalid argument" in found.reason or "Inappropriate ioctl" in found.reason)
    assert found.reason.endswith(f"({loop_device} is not a SCSI device: method tur needs one)")


@pytest.mark.parametrize("direct", [False, True])
def test_diskw_write_file(root: InstallRoot, tmp_path: Path, direct: bool) -> None:
    target = tmp_path / "diskw.tmp"
    m = make("diskw", root, method="write_file", path=str(target), write_direct=direct,
             io_size=10000)
    assert m.check().ok and m.check().ok
    assert not target.exists()  # written, synced and removed
    missing = tmp_path / "no-such-dir" / "diskw.tmp"
    found = make("diskw", root, method="write_file", path=str(missing),
                 write_direct=direct).check()
    assert found == Check(Health.ERROR, f"{missing}: No such file or directory")


def test_diskw_write_file_full_and_read_only(root: InstallRoot, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "clp-test", str(mnt)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        target = mnt / "diskw.tmp"
        params = {"method": "write_file", "path": str(target), "io_size": 1 << 20}
        assert make("diskw", root, **params).check() == Check(
            Health.ERROR, f"{target}: No space left on device")
        assert make("diskw", root, disk_full="ignore", **params).check() == Check(
            Health.CAUTION, f"{target}: disk full")
        assert not target.exists()
        params["io_size"] = 4096
        assert make("diskw", root, **params).check().ok
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, timeout=30)
        assert make("diskw", root, **params).check() == Check(
            Health.ERROR, f"{target}: Read-only file system")
    finally:
        if subprocess.run(["umount", str(mnt)], timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], timeout=30)


# --- mrw ------------------------------------------------------------------------------------


def test_mrw_matches_category_and_keyword(root: InstallRoot) -> None:
    anyone = make("mrw", root, category="app")
    assert anyone.matches("app", None) and anyone.matches("app", "db1")
    assert not anyone.matches("App", None) and not anyone.matches("other", "db1")
    one = make("mrw", root, category="app", keyword="db1")
    assert one.matches("app", "db1")
    assert not one.matches("app", None) and not one.matches("app", "db2")
    assert not one.matches("other", "db1")
    assert anyone.check().ok and not type(anyone).polled
