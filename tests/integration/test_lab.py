"""The lab itself: namespaces, links, faults and teardown, without the cluster services."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clp.lab import Lab, LabError
from clp.lab import netns as nx
from clp.lab.samples import write_sample_config
from clp.paths import InstallRoot
from clp.platform.supervisor_client import SupervisorClient, SupervisorNotRunning
from tests.integration.labutil import SLEEPER, leftovers

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]



def _name() -> str:
    return "t" + secrets.token_hex(2)



def pings(lab: Lab, server: str, address: str) -> bool:
    return lab.exec(server, ["ping", "-c1", "-W1", "-n", address]).returncode == 0


def eventually(probe, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.1)
    return False


def supervised(lab: Lab, server: str) -> dict:
    return SupervisorClient(InstallRoot(lab.root_of(server)), timeout=5).status()["services"]


def sleeper_running(lab: Lab, server: str) -> bool:
    """True once clpsupervise answers and runs the sleeper; after a boot it may not listen yet."""
    try:
        return supervised(lab, server)["sleeper"]["state"] == "running"
    except SupervisorNotRunning:
        return False


def test_each_server_has_its_hostname_and_exec_passes_the_exit_code(lab):
    for server in lab.servers:
        r = lab.exec(server, ["hostname"])
        assert (r.returncode, r.stdout.strip()) == (0, server)
    r = lab.exec("server1", ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert lab.exec("server2", ["cat"], input="typed").stdout == "typed"
    assert lab.exec("server1", ["sh", "-c", "echo $CLP_ROOT"]).stdout.strip() == \
        "/opt/nec/clusterpro"
    key = lab.exec("server2", ["cat", "/opt/nec/clusterpro/etc/cluster.key"]).stdout
    assert key == (lab.root_of("server1") / "etc" / "cluster.key").read_text()
    assert (lab.root_of("server1") / "etc" / "cluster.key").stat().st_mode & 0o777 == 0o600
    assert lab.addresses("server2") == {"pub": "198.18.0.2", "ic1": "198.18.1.2"}
    with pytest.raises(LabError, match="no server"):
        lab.exec("server9", ["true"])


def test_servers_reach_each_other_on_both_lans(lab):
    for address in lab.addresses("server2").values():
        assert pings(lab, "server1", address), address
    for address in lab.addresses("server1").values():
        assert pings(lab, "server2", address), address


def test_unplug_cuts_one_lan_only_and_plug_restores_it(lab):
    lab.unplug("server2", "ic1")
    assert not pings(lab, "server1", "198.18.1.2")
    assert pings(lab, "server1", "198.18.0.2")
    assert lab.status()["servers"]["server2"]["unplugged"] == ["ic1"]
    lab.plug("server2", "ic1")
    assert eventually(lambda: pings(lab, "server1", "198.18.1.2"))
    with pytest.raises(LabError, match="unknown link"):
        lab.unplug("server2", "eth7")


def test_partition_cuts_both_lans_between_groups_and_heal_restores():
    name = _name()
    try:
        lab = Lab.up(name=name, n=3, services=[])
        lab.partition([["server1"], ["server2"]])
        for address in lab.addresses("server2").values():
            assert not pings(lab, "server1", address), address
        for address in lab.addresses("server3").values():  # in no group: reaches everybody
            assert pings(lab, "server1", address) and pings(lab, "server2", address)
        assert lab.status()["partition"] == [["server1"], ["server2"]]
        lab.heal()
        for address in lab.addresses("server2").values():
            assert eventually(lambda a=address: pings(lab, "server1", a)), address
        with pytest.raises(LabError, match="only one group"):
            lab.partition([["server1"], ["server1", "server2"]])
    finally:
        Lab.cleanup_all(name)
    assert leftovers(name) == []


def test_crash_kills_every_process_and_restart_boots_again(lab):
    init = lab.status()["servers"]["server2"]["init_pid"]
    pids = nx.pids_in_pidns(nx.pidns_of(init))
    assert len(pids) >= 3  # init, clpsupervise, sleep
    lab.crash("server2")
    assert not any(nx.alive(p) for p in pids)
    assert lab.status()["servers"]["server2"]["state"] == "crashed"
    assert Lab.load(lab.name).state_of("server2") == "crashed"
    with pytest.raises(LabError, match="not running"):
        lab.exec("server2", ["true"])
    assert pings(lab, "server1", "198.18.0.1")  # the other server is untouched
    lab.restart("server2")
    assert lab.status()["servers"]["server2"]["state"] == "running"
    assert eventually(lambda: sleeper_running(lab, "server2"))
    assert lab.exec("server2", ["hostname"]).stdout.strip() == "server2"
    assert pings(lab, "server2", "198.18.1.1")
    with pytest.raises(LabError, match="is running"):
        lab.restart("server2")


def test_hang_stops_every_process_and_resume_continues_them(lab):
    init = lab.status()["servers"]["server1"]["init_pid"]
    pids = nx.pids_in_pidns(nx.pidns_of(init))
    assert client_pings(lab, "198.18.0.1")
    lab.hang("server1")
    assert eventually(lambda: all(nx.proc_state(p) == "T" for p in pids))
    assert lab.status()["servers"]["server1"]["state"] == "hung"
    assert not client_pings(lab, "198.18.0.1") and not client_pings(lab, "198.18.1.1")
    lab.resume("server1")
    assert eventually(lambda: not any(nx.proc_state(p) == "T" for p in pids))
    assert lab.status()["servers"]["server1"]["state"] == "running"
    assert eventually(lambda: client_pings(lab, "198.18.0.1"))


def client_pings(lab: Lab, address: str) -> bool:
    return lab.client_exec(["ping", "-c1", "-W1", "-n", address]).returncode == 0


def ext4_alive(lab: Lab) -> bool:
    """Whether the kernel still has the shared disk's file system mounted anywhere (through any
    server's path)."""
    return any(Path("/proc/fs/ext4", Path(lab.disk_device(s)).name).exists()
               for s in lab.servers)


def test_shared_disk_is_in_every_server_and_a_mount_stays_private(lab):
    for server in lab.servers:  # each through its own loop device (its own path)
        assert lab.exec(server, ["test", "-b", "/dev/lab/disk1"]).returncode == 0
        r = lab.exec(server, ["stat", "-c", "%a %t:%T", "/dev/lab/disk1"])
        rdev = os.stat(lab.disk_device(server)).st_rdev
        assert r.stdout.split() == ["600", f"{os.major(rdev):x}:{os.minor(rdev):x}"]
    assert lab.disk_device("server1") != lab.disk_device("server2")
    r = lab.exec("server1", ["sh", "-c", "mkdir -p /mnt/x && mount /dev/lab/disk1 /mnt/x"])
    assert r.returncode == 0, r.stderr
    assert lab.mounts_of("server1") == [("/dev/lab/disk1", "/mnt/x")]
    assert lab.mounts_of("server2") == []
    assert "/mnt/x" not in Path("/proc/self/mountinfo").read_text()
    assert lab.exec("server2", ["test", "-e", "/mnt/x"]).returncode == 1  # /mnt is per server
    assert lab.status()["disks"]["disk1"]["paths"] == {
        s: {"loop": lab.disk_device(s), "mode": "ok"} for s in lab.servers}


def test_crash_cuts_the_disk_and_drops_the_addresses_the_server_added(lab):
    """A power-off: what was fsynced is on the disk for the other server (which replays the
    journal: the crash cut the server's writes, its unmount could not close it); its paths
    work again once it is restarted (test_failover's chapter 6 checks the recovery)."""
    r = lab.exec("server1", ["sh", "-c", "mkdir -p /mnt/x && mount /dev/lab/disk1 /mnt/x && "
                             "echo kept > /mnt/x/f && sync /mnt/x/f && "
                             "ip addr add 198.18.0.99/24 dev eth0"])
    assert r.returncode == 0, r.stderr
    assert "198.18.0.99" in lab.addresses_on("server1") and ext4_alive(lab)
    lab.crash("server1")
    assert lab.addresses_on("server1") == ["198.18.0.1", "198.18.1.1"]
    assert not ext4_alive(lab)
    assert not client_pings(lab, "198.18.0.99")
    r = lab.exec("server2", ["sh", "-c", "mkdir -p /mnt/y && mount /dev/lab/disk1 /mnt/y && "
                             "cat /mnt/y/f"])
    assert (r.returncode, r.stdout) == (0, "kept\n")
    assert lab.mounts_of("server1") == []


def test_panic_ends_the_server_at_once_and_restart_boots_it(lab):
    lab.exec("server1", ["ip", "addr", "add", "198.18.0.99/24", "dev", "eth0"])
    lab.exec("server1", ["kill", "-USR2", "1"])
    assert eventually(lambda: lab.state_of("server1") == "crashed")
    assert lab.addresses_on("server1") == ["198.18.0.1", "198.18.1.1"]
    lab.restart("server1")
    assert lab.state_of("server1") == "running"


def test_shutdown_signal_ends_the_server_cleanly(lab):
    lab.exec("server2", ["kill", "-TERM", "1"])
    assert eventually(lambda: lab.state_of("server2") == "down")
    lab.restart("server2")
    assert lab.state_of("server2") == "running"


def test_reboot_runs_clpsupervise_again_in_the_same_server(lab):
    init = lab.status()["servers"]["server1"]["init_pid"]
    before = nx.first_child(init)
    lab.exec("server1", ["sh", "-c", "touch /dev/shm/left && mkdir -p /mnt/x && "
                         "mount /dev/lab/disk1 /mnt/x && ip addr add 198.18.0.99/24 dev eth0"])
    lab.exec("server1", ["kill", "-USR1", "1"])
    assert eventually(lambda: nx.first_child(init) not in (None, before))
    assert lab.status()["servers"]["server1"]["init_pid"] == init
    assert eventually(lambda: sleeper_running(lab, "server1"))
    assert lab.exec("server1", ["hostname"]).stdout.strip() == "server1"
    assert lab.exec("server1", ["ls", "/dev/shm"]).stdout == ""
    assert lab.mounts_of("server1") == [] and not ext4_alive(lab)
    assert lab.addresses_on("server1") == ["198.18.0.1", "198.18.1.1"]
    assert "reboot" in (lab.root_of("server1") / "log" / "init.log").read_text()


def test_client_reaches_both_lans_and_servers_get_no_clp_no_power(lab):
    assert client_pings(lab, "198.18.0.1") and client_pings(lab, "198.18.1.2")
    assert lab.client_exec(["ip", "-br", "addr", "show", "eth1"]).stdout.split()[2] == \
        "198.18.1.200/24"
    os.environ["CLP_NO_POWER"] = "1"  # as tests/conftest.py sets it for the whole session
    r = lab.exec("server1", ["sh", "-c", "echo ${CLP_NO_POWER-unset}"], )
    assert r.stdout.strip() == "unset"
    assert "CLP_NO_POWER" not in nx.environ_of(lab.status()["servers"]["server1"]["init_pid"])


def test_demo_app_answers_with_its_hostname_and_keeps_every_line(lab):
    data = "/opt/nec/clusterpro/work/app.log"
    app = lab.popen("server2", ["python3", "-m", "clp.lab.demo_app", "--port", "8080",
                                "--data", data], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        ask = ("import socket; s = socket.create_connection(('198.18.0.2', 8080), timeout=2); "
               "s.sendall(b'one\\ntwo\\n'); f = s.makefile(); print(f.readline(), end=''); "
               "print(f.readline(), end='')")
        assert eventually(lambda: lab.client_exec(["python3", "-c", ask]).stdout ==
                          "server2 one\nserver2 two\n")
        assert (lab.root_of("server2") / "work" / "app.log").read_text().startswith("one\ntwo\n")
    finally:
        app.kill()
        app.wait(10)


def test_sample_config_for_three_servers_keeps_the_groups_and_scripts(tmp_path):
    conf = write_sample_config(tmp_path, n_servers=3, interval=0.5, timeout=4)
    doc = yaml.safe_load(conf.read_text())
    assert list(doc["servers"]) == ["server1", "server2", "server3"]
    assert doc["cluster"]["heartbeat"] == {"interval": 0.5, "timeout": 4}
    assert doc["groups"]["failover1"]["resources"]["fip1"]["ip"] == "198.18.0.12"
    assert os.access(tmp_path / "scripts/failover1/exec1/stop.sh", os.X_OK)


def test_dev_shm_is_private_to_each_server(lab):
    probe = f"/dev/shm/clplab-probe-{lab.name}"
    assert lab.exec("server1", ["touch", probe]).returncode == 0
    assert lab.exec("server1", ["test", "-e", probe]).returncode == 0
    assert lab.exec("server2", ["test", "-e", probe]).returncode == 1
    assert not Path(probe).exists()


def test_down_leaves_nothing_behind():
    name = _name()
    try:
        lab = Lab.up(name=name, n=2, services=SLEEPER)
        lab.hang("server2")  # a hung server must not hold the teardown up
        lab.partition([["server1"], ["server2"]])
        lab.down()
        assert leftovers(name) == []
        with pytest.raises(LabError, match="not up"):
            Lab.load(name)
    finally:
        Lab.cleanup_all(name)


def test_cleanup_all_works_without_lab_json():
    name = _name()
    try:
        Lab.up(name=name, n=2, services=SLEEPER)
        (nx.RUN_DIR / name / "lab.json").write_text("{not json")
        with pytest.raises(LabError, match="unreadable"):
            Lab.load(name)
        Lab.cleanup_all(name)
        assert leftovers(name) == []
    finally:
        Lab.cleanup_all(name)


def test_refuses_bad_names_sizes_and_a_second_lab_of_the_same_name(lab):
    with pytest.raises(LabError, match="already up"):
        Lab.up(name=lab.name, n=2, services=[])
    with pytest.raises(LabError, match="1 to 8"):
        Lab.up(name="Bad-Name", n=2)
    with pytest.raises(LabError, match="servers"):
        Lab.up(name=_name(), n=1)


def test_cli_exec_status_and_errors(lab):
    clplab = [sys.executable, "-m", "clp.lab.cli"]
    r = subprocess.run([*clplab, "exec", "--name", lab.name, "server1", "--", "sh", "-c",
                        "hostname; exit 5"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (5, "server1\n")
    r = subprocess.run([*clplab, "--name", lab.name, "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert json.loads(r.stdout)["servers"]["server2"]["state"] == "running"
    r = subprocess.run([*clplab, "crash", "--name", lab.name, "server7"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no server 'server7'" in r.stderr


def test_default_services_run_under_clpsupervise():
    name = _name()
    try:
        lab = Lab.up(name=name, n=2)
        for server in lab.servers:
            r = lab.exec(server, ["python3", "-c", (
                "import json; from clp.paths import InstallRoot;"
                "from clp.platform.supervisor_client import SupervisorClient, SupervisorNotRunning;"
                "print(json.dumps(SupervisorClient(InstallRoot.from_env()).status()))")])
            assert r.returncode == 0, r.stderr
            services = json.loads(r.stdout)["services"]
            assert list(services) == ["clusterpro_evt", "clusterpro_trn", "clusterpro",
                                      "clusterpro_alertsync"]
        conf = (lab.root_of("server1") / "etc" / "clp.conf").read_text()
        assert "198.18.1.2" in conf and "server2" in conf
        lab.down()
        assert leftovers(name) == []
    finally:
        Lab.cleanup_all(name)


def test_a_failed_up_detaches_its_disk_and_leaves_nothing(monkeypatch):
    def unplugged_bridge(self: Lab) -> None:
        raise LabError("no bridge today")

    monkeypatch.setattr(Lab, "_wire", unplugged_bridge)
    name = _name()
    with pytest.raises(LabError, match="no bridge today"):
        Lab.up(name=name, n=2, services=[])
    assert leftovers(name) == []
