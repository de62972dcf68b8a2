"""Monitor resources in the lab: the seed's chapter 8 table (pseudo failures and what happens),
for every row that concerns what clp has, each checking the outcome and the alert log, with the
double-activation watcher running. The sample cluster watches its gateway (ipw1), its public
NIC (miiw1), its floating IPs (fipw1, fipw2), its application's process (pidw1) and its user
space (userw)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.grouputil import (
    FIP,
    ExclusivityWatch,
    app_call,
    clp,
    group,
    running,
    sample_cluster,
    wait_group,
)
from tests.integration.labutil import needs_root, status, wait_all_online, wait_for

pytestmark = [pytest.mark.lab, needs_root]


def alerts(lab: Any, server: str) -> list[dict[str, Any]]:
    path = lab.root_of(server) / "log" / "alert.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def rm_events(lab: Any, server: str) -> list[tuple[int | None, str]]:
    return [(a.get("event_id"), a["message"]) for a in alerts(lab, server) if a["module"] == "rm"]


def monitor(lab: Any, observer: str, name: str) -> dict[str, Any]:
    return status(lab, observer)["monitors"][name]


def wait_monitor(lab: Any, name: str, server: str, state: str, observer: str = "server1",
                 timeout: float = 30) -> dict[str, Any]:
    return wait_for(f"{name} {state} on {server}",
                    lambda: (m := monitor(lab, observer, name))["servers"].get(server) == state
                    and m, timeout=timeout)


def all_normal(lab: Any, observer: str = "server1") -> bool:
    mons = status(lab, observer)["monitors"]
    return all(m["servers"][s] in ("Normal", "Offline") for m in mons.values()
               for s in m["servers"]) and mons["fipw2"]["servers"]["server1"] == "Normal"


def test_public_lan_cable_pulled_fails_every_group_over(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_for("every monitor Normal", lambda: all_normal(lab))
        pulled = time.monotonic()
        lab.unplug("server1", "pub")
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
        wait_group(lab, "ManagementGroup", "Online", "server2", observer="server2")
        took = time.monotonic() - pulled
        assert app_call(lab, "after-pull").startswith("server2 ")
        found = rm_events(lab, "server1")
        assert any(e == 9 and ("ipw1" in m or "miiw1" in m) for e, m in found), found
        assert any(e == 14 and "All Groups" in m for e, m in found), found
        # the interconnect still joins them: nobody went down, and nothing moves back
        assert status(lab, "server2")["membership"]["servers"]["server1"]["state"] == "Online"
        lab.plug("server1", "pub")
        wait_monitor(lab, "miiw1", "server1", "Normal")
        time.sleep(3)
        assert group(lab, "server2", "failover1")["server"] == "server2"
        assert took < 30


def test_interconnect_cable_pulled_moves_nothing(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_for("every monitor Normal", lambda: all_normal(lab))
        lab.unplug("server1", "ic1")
        time.sleep(8)
        assert group(lab, "server2", "failover1")["server"] == "server1"
        assert all_normal(lab)
        assert not [e for e, _ in rm_events(lab, "server1") if e == 9]
        lab.plug("server1", "ic1")


def test_killed_application_is_restarted_then_failed_over(tmp_path):
    def one_restart(conf, conf_dir):
        conf["monitors"]["pidw1"]["recovery"] = {"reactivation_threshold": 1}

    with sample_cluster(tmp_path, one_restart) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "pidw1", "server1", "Normal")
        first = lab.kill("server1", "clp.lab.demo_app")
        # reactivation: exec1 starts again on server1, a new process
        wait_for("a new application process on server1",
                 lambda: lab.pids("server1", "clp.lab.demo_app") not in ([], first))
        wait_monitor(lab, "pidw1", "server1", "Normal")
        assert app_call(lab, "restarted").startswith("server1 ")
        wait_for("the restart alert", lambda: any(
            e == 13 and "exec1" in m for e, m in rm_events(lab, "server1")))
        # the second time its reactivation threshold is reached: failover
        lab.kill("server1", "clp.lab.demo_app")
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
        assert app_call(lab, "moved").startswith("server2 ")
        found = rm_events(lab, "server1")
        assert any(e == 14 and "exec1" in m and "pidw1" in m for e, m in found), found
        assert group(lab, "server2", "ManagementGroup")["server"] == "server1"


def test_pseudo_failure_runs_the_recovery_chain(tmp_path):
    """The seed's chapter 8, step 1: clpmonctrl's pseudo failure on fipw2 fails failover1 over
    (the sample's recovery: failover of the group), and its counters say so."""
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "fipw2", "server1", "Normal")
        r = clp(lab, "server2", "clpmonctrl", "-e", "-m", "fipw2", "-h", "server1")
        assert "Command succeeded" in r.stdout
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
        r = clp(lab, "server1", "clpmonctrl", "-v", "-m", "fipw2")
        assert "Monitor Resource fipw2" in r.stdout and "Failover Count        : 1 / 1" \
            in r.stdout, r.stdout
        clp(lab, "server1", "clpmonctrl", "-n")
        found = rm_events(lab, "server1")
        events = [e for e, _ in found]
        for expected in (180, 9, 14, 181):
            assert expected in events, found
        assert events.index(180) < events.index(9) < events.index(14) < events.index(181)
        # counters reset by the operator; clpstat -m shows the monitor on both servers
        clp(lab, "server1", "clpmonctrl", "-c", "-m", "fipw2")
        r = clp(lab, "server1", "clpmonctrl", "-v", "-m", "fipw2", "--json")
        assert json.loads(r.stdout)["monitors"]["fipw2"]["failover"]["count"] == 0
        r = clp(lab, "server2", "clpstat", "-m")
        assert "[fipw2 : Normal]" in r.stdout and "server1 [o]" in r.stdout, r.stdout


def test_suspended_monitor_does_not_recover_and_bad_names_are_refused(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "pidw1", "server1", "Normal")
        clp(lab, "server1", "clpmonctrl", "-s", "-m", "pidw1")
        wait_monitor(lab, "pidw1", "server1", "Suspend")
        lab.kill("server1", "clp.lab.demo_app")
        time.sleep(4)
        assert monitor(lab, "server1", "pidw1")["servers"]["server1"] == "Suspend"
        assert not any(e == 13 for e, _ in rm_events(lab, "server1"))
        r = clp(lab, "server1", "clpmonctrl", "-s", "-m", "nothing", ok=False)
        assert (r.returncode, r.stdout) == (5, "Monitor resource is not registered.\n")
        assert "nothing" in r.stderr
        r = clp(lab, "server1", "clpmonctrl", "-e", ok=False)
        assert (r.returncode, r.stdout) == (2, "Invalid option.\n")
        r = clp(lab, "server1", "clpmonctrl", "-e", "-m", "userw", ok=False)
        assert r.returncode == 6 and "does not support" in r.stdout + r.stderr
        # resumed: the dead process is found and exec1 restarted
        clp(lab, "server1", "clpmonctrl", "-r", "-m", "pidw1")
        wait_for("exec1 restarted", lambda: any(e == 13 for e, _ in rm_events(lab, "server1")))
        assert lab.pids("server1", "clp.lab.demo_app")


def test_floating_ip_already_used_is_not_activated(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpgrp", "-t", "failover1")
        wait_group(lab, "failover1", "Offline", None)
        lab.duplicate_address(FIP)  # another host on the LAN answers for it
        try:
            clp(lab, "server1", "clpgrp", "-s", "failover1", ok=False)
            wait_for("failover1 to give up", lambda: group(lab, "server1", "failover1")["state"]
                     in ("Offline", "Online Failure"), timeout=60)
            for s in lab.servers:
                assert FIP not in lab.addresses_on(s)
            text = " ".join(a["message"] for s in lab.servers for a in alerts(lab, s))
            assert "already answers on the network" in text or "fip1" in text
        finally:
            lab.remove_duplicate_address(FIP)
        wait_all_online(lab)


DISKW = {"type": "diskw", "device": "/dev/lab/disk1", "io_size": 4096, "interval": 1,
         "timeout": 4, "retry": 0, "timing": "active", "target": "disk1"}


def test_shared_disk_path_pulled_is_detected_and_fails_over(tmp_path):
    def diskw(conf, conf_dir):
        conf["monitors"]["diskw1"] = {**DISKW, "recovery": {
            "target": "failover1", "reactivation_threshold": 0}}

    with sample_cluster(tmp_path, diskw) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "diskw1", "server1", "Normal")
        assert app_call(lab, "before-pull").startswith("server1 ")
        lab.unplug("server1", "disk1")  # server1's path to the shared disk fails (EIO)
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=90)
        assert app_call(lab, "after-pull").startswith("server2 ")
        data = clp(lab, "server2", "cat", "/mnt/disk1/app.log").stdout
        assert "before-pull" in data and "after-pull" in data
        found = rm_events(lab, "server1") if (lab.root_of("server1") / "log").exists() else []
        assert any(e == 9 and "diskw1" in m for e, m in found), found


def test_hung_shared_disk_is_detected_by_its_timeout(tmp_path):
    """A hung path never answers: the check times out (diskw's timeout bounds the detection),
    and the configured final action (a panic) takes the server down; the other takes over."""
    def diskw(conf, conf_dir):
        conf["monitors"]["diskw1"] = {**DISKW, "recovery": {
            "target": "LocalServer", "final_action": "panic"}}

    with sample_cluster(tmp_path, diskw) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "diskw1", "server1", "Normal")
        lab.disk_path("server1", "disk1", "hang")
        try:  # the panic's alert (sysrq panic, rm 35), written before the server goes
            wait_for("server1's panic", lambda: any(
                e == 35 for e, _ in rm_events(lab, "server1")), timeout=60)
            found = rm_events(lab, "server1")
            assert any(e == 9 and "diskw1" in m and "did not finish" in m for e, m in found), \
                found
        finally:  # what is blocked on the path unwinds (a real machine would be reset)
            lab.disk_path("server1", "disk1", "eio")
        wait_for("server1 down", lambda: not running(lab, "server1"), timeout=30)
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=90)
        assert app_call(lab, "after-hang").startswith("server2 ")


def test_disk_mounted_before_the_group_starts_fails_it_over(tmp_path):
    """The seed's row: the operator mounted the shared disk by hand, then started the group:
    the disk resource refuses to mount it a second time here, and the group fails over. (The
    operator's own mount is the double mount the row provokes: no exclusivity watcher.)"""
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpgrp", "-t", "failover1")
        wait_group(lab, "failover1", "Offline", None)
        clp(lab, "server1", "mkdir", "-p", "/mnt/byhand")
        clp(lab, "server1", "mount", "-o", "ro,noload", "/dev/lab/disk1", "/mnt/byhand")
        try:
            clp(lab, "server1", "clpgrp", "-s", "failover1", ok=False)
            wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
            text = " ".join(a["message"] for a in alerts(lab, "server1"))
            assert "disk1" in text and "mounted" in text, text
        finally:
            clp(lab, "server1", "umount", "/mnt/byhand", ok=False)


NOTICE = ("from clp.cli.targets import ClusterTargets; from clp.paths import InstallRoot; "
          "import sys, json; t = ClusterTargets(InstallRoot.from_env()); "
          "o = t.control(sys.argv[1], 'mrw_notice', json.loads(sys.argv[2])); "
          "print(o.ok, o.code, o.message); sys.exit(0 if o.ok else o.code)")


def test_external_error_notice_recovers_through_mrw(tmp_path):
    """An error reported from another server of the cluster (through clusterpro_trn, signed with
    the cluster key) makes mrw1 Error; its recovery fails failover1 over; a clearing notice makes
    it Normal again."""
    def mrw(conf, conf_dir):
        conf["monitors"]["mrw1"] = {"type": "mrw", "category": "app", "keyword": "db", "recovery": {
            "target": "failover1", "reactivation_threshold": 0}}

    with sample_cluster(tmp_path, mrw) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_monitor(lab, "mrw1", "server1", "Normal")
        other = json.dumps({"category": "app", "keyword": "web", "state": "error"})
        clp(lab, "server2", "python3", "-c", NOTICE, "server1", other)
        time.sleep(1)
        assert monitor(lab, "server1", "mrw1")["servers"]["server1"] == "Normal"
        notice = json.dumps({"category": "app", "keyword": "db", "state": "error",
                             "message": "the database is down", "from": "server2"})
        clp(lab, "server2", "python3", "-c", NOTICE, "server1", notice)
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
        found = rm_events(lab, "server1")
        assert any(e == 9 and "the database is down" in m for e, m in found), found
        assert any(a["module"] == "trnsv" and a["event_id"] == 10 for a in alerts(lab, "server1"))
        clear = json.dumps({"category": "app", "keyword": "db", "state": "normal"})
        clp(lab, "server2", "python3", "-c", NOTICE, "server1", clear)
        wait_monitor(lab, "mrw1", "server1", "Normal")
        bad = json.dumps({"category": "app db", "state": "error"})
        r = clp(lab, "server2", "python3", "-c", NOTICE, "server1", bad, ok=False)
        assert r.returncode == 2 and "Invalid category" in r.stdout
