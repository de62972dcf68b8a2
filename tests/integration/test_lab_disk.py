"""The lab's shared disk paths: each server reaches disk1 through its own path (a file of the
lab's FUSE daemon, its own loop device), which can hang or fail while the others keep working.

Real lab servers, real loop devices and a real FUSE mount; no mocks. Every test removes its lab
(also on failure) and checks that no mount, loop device or process of it is left.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clp.lab import Lab, LabError, shared_disk
from clp.lab import netns as nx
from tests.integration.labutil import SLEEPER, leftovers, needs_root

pytestmark = [pytest.mark.lab, needs_root]

# one 4 KiB block with O_DIRECT: no page cache anywhere between the process and the path
READ = ["dd", "if=/dev/lab/disk1", "of=/dev/null", "bs=4096", "count=1", "skip=100",
        "iflag=direct", "status=none"]
HELD = 1.5  # how long a read on a hung path is watched not to return


def _name() -> str:
    return "d" + secrets.token_hex(2)



def sh(lab: Lab, server: str, script: str) -> subprocess.CompletedProcess[str]:
    r = lab.exec(server, ["sh", "-c", script], timeout=60)
    assert r.returncode == 0, f"{server}: {script}: {r.stdout}{r.stderr}"
    return r


def reads(lab: Lab, server: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(server, READ, timeout=30)


def start_read(lab: Lab, server: str) -> subprocess.Popen:
    return lab.popen(server, READ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     start_new_session=True)


def held(proc: subprocess.Popen) -> bool:
    """The read has not returned within HELD seconds (a bounded wait)."""
    try:
        proc.wait(timeout=HELD)
    except subprocess.TimeoutExpired:
        return True
    return False


def finish(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def modes(lab: Lab) -> dict[str, str]:
    return {s: p["mode"] for s, p in lab.status()["disks"]["disk1"]["paths"].items()}


def blocked_in_d_state(lab: Lab, server: str) -> list[int]:
    ns = nx.pidns_of(lab.status()["servers"][server]["init_pid"])
    return [p for p in nx.pids_in_pidns(ns) if nx.proc_state(p) == "D"]


def test_each_server_has_its_own_path_and_loop_device(lab):
    loops = {s: lab.disk_device(s) for s in lab.servers}
    assert len(set(loops.values())) == 2
    for server, loop in loops.items():
        back = dict(shared_disk.loop_devices())[loop]
        assert back == str(shared_disk.path_file(lab.name, server, "disk1"))
        rdev = os.stat(loop).st_rdev
        r = lab.exec(server, ["stat", "-c", "%t:%T", "/dev/lab/disk1"])
        assert r.stdout.strip() == f"{os.major(rdev):x}:{os.minor(rdev):x}"
    mount = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()
             if line.split()[4] == str(shared_disk.paths_dir(lab.name))]
    assert len(mount) == 1 and "fuse.clplab" in mount[0]
    assert modes(lab) == {"server1": "ok", "server2": "ok"}


def test_what_one_server_fsyncs_the_other_reads_after_umount_and_mount(lab):
    sh(lab, "server1", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && "
       "head -c 3000000 /dev/urandom > /mnt/d/data && sync /mnt/d/data && "
       "md5sum /mnt/d/data > /mnt/d/sum && sync /mnt/d/sum && umount /mnt/d")
    r = sh(lab, "server2", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && cd /mnt/d && "
           "md5sum -c sum && echo back > from2 && sync from2 && cd / && umount /mnt/d")
    assert "data: OK" in r.stdout
    # and back: server1's device was open before, its cache went with its last close
    r = sh(lab, "server1", "mount /dev/lab/disk1 /mnt/d && cat /mnt/d/from2 && umount /mnt/d")
    assert r.stdout == "back\n"


def test_an_eio_path_fails_that_servers_reads_only_and_ok_restores_it(lab):
    lab.disk_path("server1", "disk1", "eio")
    assert modes(lab) == {"server1": "eio", "server2": "ok"}
    r = reads(lab, "server1")
    assert r.returncode != 0 and "Input/output error" in r.stderr
    assert reads(lab, "server2").returncode == 0
    lab.disk_path("server1", 1, "ok")
    assert reads(lab, "server1").returncode == 0
    assert modes(lab) == {"server1": "ok", "server2": "ok"}
    with pytest.raises(LabError, match="mode"):
        lab.disk_path("server1", "disk1", "slow")
    with pytest.raises(LabError, match="no shared disk"):
        lab.disk_path("server1", "disk2", "eio")
    with pytest.raises(LabError, match="no server"):
        lab.disk_path("server9", "disk1", "eio")


def test_a_hung_path_holds_the_read_until_eio_releases_it_with_an_error(lab):
    lab.disk_path("server2", "disk1", "hang")
    proc = start_read(lab, "server2")
    try:
        assert held(proc)
        assert blocked_in_d_state(lab, "server2")  # as on a dead SAN path
        assert reads(lab, "server1").returncode == 0  # the other path keeps working
        assert modes(lab) == {"server1": "ok", "server2": "hang"}
        lab.disk_path("server2", "disk1", "eio")
        _, err = proc.communicate(timeout=10)
        assert proc.returncode != 0 and "Input/output error" in err
        assert not blocked_in_d_state(lab, "server2")
        lab.disk_path("server2", "disk1", "ok")
        assert reads(lab, "server2").returncode == 0
    finally:
        lab.disk_path("server2", "disk1", "eio")  # never ok while something may be held
        finish(proc)


def test_hang_then_ok_lets_the_held_read_through(lab):
    lab.disk_path("server1", "disk1", "hang")
    proc = start_read(lab, "server1")
    try:
        assert held(proc)
        lab.disk_path("server1", "disk1", "ok")
        proc.communicate(timeout=10)
        assert proc.returncode == 0
    finally:
        lab.disk_path("server1", "disk1", "eio")
        finish(proc)


def test_a_hung_mounted_disk_stops_the_writer_and_crash_still_works(lab):
    sh(lab, "server1", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && "
       "echo before > /mnt/d/f && sync /mnt/d/f")
    lab.disk_path("server1", "disk1", "hang")
    writer = lab.popen("server1", ["sh", "-c", "echo during > /mnt/d/g && sync /mnt/d/g"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       start_new_session=True)
    try:
        assert held(writer)
        t0 = time.monotonic()
        lab.crash("server1")  # its blocked processes need the hung path released: eio
        assert time.monotonic() - t0 < 10
        assert lab.state_of("server1") == "crashed" and lab.mounts_of("server1") == []
        assert modes(lab) == {"server1": "eio", "server2": "ok"}
        r = sh(lab, "server2", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && "
               "cat /mnt/d/f && umount /mnt/d")
        assert r.stdout == "before\n"
        lab.disk_path("server1", "disk1", "ok")  # the path is repaired; the server boots again
        lab.restart("server1")
        assert reads(lab, "server1").returncode == 0
    finally:
        finish(writer)


def ext4_on(loop: str) -> bool:
    return Path("/proc/fs/ext4", Path(loop).name).exists()


def test_crash_with_a_hung_path_loses_the_held_io_and_never_writes_it_later(lab):
    """No process blocked, but the kernel's unmount of the dead server's ext4 waits on the
    path: the crash fails it (eio), so it never lands on the disk server2 mounts meanwhile."""
    loop = lab.disk_device("server1")
    sh(lab, "server1", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && "
       "echo kept > /mnt/d/f && sync /mnt/d/f")
    lab.disk_path("server1", "disk1", "hang")
    lab.crash("server1")
    assert modes(lab) == {"server1": "eio", "server2": "ok"}
    deadline = time.monotonic() + 10
    while ext4_on(loop) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ext4_on(loop)  # the dead server's file system is gone from the kernel
    r = sh(lab, "server2", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && cat /mnt/d/f && "
           "umount /mnt/d && fsck.ext4 -fn /dev/lab/disk1 >/dev/null && echo clean")
    assert r.stdout == "kept\nclean\n"


def test_eio_then_crash_is_a_power_cut_the_other_server_recovers_from(lab):
    sh(lab, "server1", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && "
       "echo synced > /mnt/d/a && sync /mnt/d/a")
    lab.disk_path("server1", "disk1", "eio")
    lab.crash("server1")  # its unmount's writes fail: nothing more reaches the disk
    r = sh(lab, "server2", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d && cat /mnt/d/a && "
           "umount /mnt/d && fsck.ext4 -fn /dev/lab/disk1 >/dev/null && echo clean")
    assert r.stdout == "synced\nclean\n"  # the journal was replayed at the mount


def test_cli_disk_path_unplug_plug_and_status(lab):
    clplab = [sys.executable, "-m", "clp.lab.cli", "--name", lab.name]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*clplab, *args], capture_output=True, text=True, timeout=60)

    r = cli("disk-path", "server2", "disk1", "eio")
    assert r.returncode == 0 and "server2: path to disk1 eio" in r.stdout
    assert reads(lab, "server2").returncode != 0
    r = cli("status")
    assert f"server1 {lab.disk_device('server1')} ok" in r.stdout
    assert f"server2 {lab.disk_device('server2')} eio" in r.stdout
    assert cli("plug", "server2", "disk1").returncode == 0
    assert reads(lab, "server2").returncode == 0
    assert cli("unplug", "server1", "disk1").returncode == 0
    assert reads(lab, "server1").returncode != 0 and reads(lab, "server2").returncode == 0
    doc = json.loads(cli("status", "--json").stdout)
    assert doc["disks"]["disk1"]["paths"]["server1"]["mode"] == "eio"
    r = cli("disk-path", "server1", "disk1", "broken")
    assert r.returncode != 0


def test_down_with_a_hung_path_and_a_blocked_process_leaves_nothing():
    name = _name()
    proc = None
    try:
        lab = Lab.up(name=name, n=2, services=SLEEPER)
        sh(lab, "server2", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d")
        lab.disk_path("server2", "disk1", "hang")
        proc = start_read(lab, "server2")
        assert held(proc)
        lab.down()
        assert leftovers(name) == []
        assert shared_disk.daemon_pids(name) == []
        assert not shared_disk.paths_dir(name).exists()
    finally:
        Lab.cleanup_all(name)
        if proc is not None:
            finish(proc)
    assert leftovers(name) == []


def test_cleanup_all_without_lab_json_releases_a_hung_path_and_leaves_nothing():
    name = _name()
    proc = None
    try:
        lab = Lab.up(name=name, n=2, services=SLEEPER)
        sh(lab, "server1", "mkdir -p /mnt/d && mount /dev/lab/disk1 /mnt/d")
        lab.disk_path("server1", "disk1", "hang")
        proc = start_read(lab, "server1")
        assert held(proc)
        (nx.RUN_DIR / name / "lab.json").unlink()
        Lab.cleanup_all(name)
        assert leftovers(name) == []
        proc.communicate(timeout=10)  # released (and killed)
    finally:
        Lab.cleanup_all(name)
        if proc is not None:
            finish(proc)
    assert leftovers(name) == []


def test_a_killed_daemon_fails_every_path_and_teardown_still_leaves_nothing():
    name = _name()
    proc = None
    try:
        lab = Lab.up(name=name, n=2, services=SLEEPER)
        lab.disk_path("server1", "disk1", "hang")
        proc = start_read(lab, "server1")
        assert held(proc)
        [daemon] = shared_disk.daemon_pids(name)
        os.kill(daemon, signal.SIGKILL)  # its /dev/fuse closes: the kernel aborts every request
        proc.communicate(timeout=10)
        assert proc.returncode != 0
        assert reads(lab, "server2").returncode != 0  # no daemon: no path works
        assert modes(lab) == {"server1": "unknown", "server2": "unknown"}
        Lab.cleanup_all(name)
        assert leftovers(name) == []
    finally:
        Lab.cleanup_all(name)
        if proc is not None:
            finish(proc)
    assert leftovers(name) == []


def test_a_killed_clplab_up_leaves_nothing_after_down():
    """``clplab up`` killed while it builds: ``clplab down`` removes whatever it had made."""
    name = _name()
    argv = [sys.executable, "-m", "clp.lab.cli", "--name", name]
    try:
        up = subprocess.Popen([*argv, "up", "--service", SLEEPER[0]], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not shared_disk.daemon_pids(name) and time.monotonic() < deadline:
            time.sleep(0.01)  # the daemon runs: the disks and their mount exist
        os.killpg(up.pid, signal.SIGKILL)
        up.wait(10)
        r = subprocess.run([*argv, "down"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert leftovers(name) == []
    finally:
        Lab.cleanup_all(name)
    assert leftovers(name) == []


def test_two_disks_each_with_a_path_per_server_fail_independently():
    name = _name()
    try:
        lab = Lab.up(name=name, n=3, services=SLEEPER, disks=2)
        loops = {(s, d): lab.disk_device(s, d) for s in lab.servers for d in (1, 2)}
        assert len(set(loops.values())) == 6
        lab.disk_path("server3", "disk2", "eio")
        for (server, disk) in loops:
            r = lab.exec(server, ["dd", f"if=/dev/lab/disk{disk}", "of=/dev/null", "bs=4096",
                                  "count=1", "iflag=direct", "status=none"])
            assert (r.returncode == 0) == ((server, disk) != ("server3", 2)), (server, disk)
        paths = lab.status()["disks"]
        assert paths["disk2"]["paths"]["server3"]["mode"] == "eio"
        assert paths["disk1"]["paths"]["server3"]["mode"] == "ok"
    finally:
        Lab.cleanup_all(name)
    assert leftovers(name) == []
