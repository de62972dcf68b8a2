"""Failover groups in the lab: the seed's chapter 6 command check, failover on crash, hang and
clpdown, and recovery from a failing start script. Every test watches that the floating IP and
the shared disk are never active on two servers."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import time

import pytest

from tests.integration.grouputil import (
    DISK,
    FIP,
    ExclusivityWatch,
    app_call,
    clp,
    group,
    running,
    sample_cluster,
    wait_group,
)
from tests.integration.labutil import TIMEOUT, needs_root, status, wait_all_online, wait_for

pytestmark = [pytest.mark.lab, needs_root]


def kernel_log() -> list[tuple[float, str]]:
    """The host kernel's log as (seconds since boot, text): the lab's loop devices and their
    file systems are the host's. (A full ring buffer drops old lines: compare by time.)"""
    out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    lines = []
    for line in out.splitlines():
        stamp, _, text = line.partition("]")
        with contextlib.suppress(ValueError):
            lines.append((float(stamp.lstrip("[ ")), text.strip()))
    return lines


def mounted(lab, server: str) -> bool:
    return any(src == DISK for src, _ in lab.mounts_of(server))


def test_chapter6_command_check(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        # 1. heartbeats: every server Online, every path Normal
        wait_all_online(lab)
        # 3. the auto-start groups come up on the master once both servers are up
        wait_group(lab, "failover1", "Online", "server1")
        wait_group(lab, "ManagementGroup", "Online", "server1")
        text = clp(lab, "server2", "clpstat").stdout
        assert "failover1" in text and "current        : server1" in text
        # 6-8. disk mounted, floating IP answers, application running
        assert mounted(lab, "server1") and not mounted(lab, "server2")
        assert FIP in lab.addresses_on("server1")
        assert app_call(lab, "hello").startswith("server1 ")
        assert clp(lab, "server1", "clpgrp", "-n", "failover1").stdout.strip() == "server1"
        assert clp(lab, "server2", "clprsc", "-n", "exec1").stdout.strip() == "server1"

        # 4. group stop (from the other server: -h names the server it runs on)
        r = clp(lab, "server2", "clpgrp", "-t", "failover1", "-h", "server1")
        assert r.stdout == "Command succeeded.\n"
        wait_group(lab, "failover1", "Offline", None)
        assert FIP not in lab.addresses_on("server1") and not mounted(lab, "server1")
        r = clp(lab, "server1", "clpgrp", "-n", "failover1", ok=False)
        assert r.returncode == 14
        # 3. group start
        clp(lab, "server1", "clpgrp", "-s", "failover1")
        wait_group(lab, "failover1", "Online", "server1")

        # 9. move to every server of the policy and back
        clp(lab, "server1", "clpgrp", "-m", "failover1")
        wait_group(lab, "failover1", "Online", "server2")
        assert mounted(lab, "server2") and not mounted(lab, "server1")
        assert app_call(lab, "moved").startswith("server2 ")
        clp(lab, "server2", "clpgrp", "-m", "failover1", "-a", "server1")
        wait_group(lab, "failover1", "Online", "server1")

        # 10. failover: data written (and fsync'ed) before the crash is on the disk after it;
        # the crash cut server1's writes at once, so server2 mounted a journal to recover
        assert app_call(lab, "before-crash").startswith("server1 ")
        before = max((t for t, _ in kernel_log()), default=0.0)
        lab.crash("server1")
        assert lab.disk_paths()["disk1"]["server1"]["mode"] == "cut"  # eio until restart
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 60)
        wait_group(lab, "ManagementGroup", "Online", "server2", observer="server2")
        assert app_call(lab, "after-crash").startswith("server2 ")
        data = clp(lab, "server2", "cat", "/mnt/disk1/app.log").stdout
        assert "before-crash" in data and "after-crash" in data
        loop = lab.disk_device("server2").removeprefix("/dev/")
        assert f"EXT4-fs ({loop}): recovery complete" in [text for t, text in kernel_log()
                                                         if t > before], loop

        # 11. the server comes back (its disk path works again); failback is manual in the
        # sample, so nothing moves ...
        lab.restart("server1")
        assert lab.disk_paths()["disk1"]["server1"]["mode"] == "ok"
        wait_all_online(lab)
        time.sleep(2 * TIMEOUT)
        assert group(lab, "server1", "failover1")["server"] == "server2"
        # ... until the operator moves it back
        clp(lab, "server1", "clpgrp", "-m", "failover1", "-a", "server1")
        wait_group(lab, "failover1", "Online", "server1")

        # 12. cluster shutdown: every server goes down, groups stopped first
        clp(lab, "server2", "clpstdn", ok=False, timeout=120)
        wait_for("every server down after clpstdn",
                 lambda: not any(running(lab, s) for s in lab.servers), timeout=60)


def test_auto_failback_when_the_primary_returns(tmp_path):
    def failback_auto(conf, conf_dir):
        conf["groups"]["failover1"]["failback"] = "auto"

    with sample_cluster(tmp_path, failback_auto) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        lab.crash("server1")
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 60)
        lab.restart("server1")
        wait_group(lab, "failover1", "Online", "server1", timeout=90)
        reason = group(lab, "server1", "failover1").get("reason", "")
        assert "server1" in reason


def test_failover_on_hang_and_the_woken_server_fences_itself(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        lab.hang("server1")
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 60)
        assert app_call(lab, "while-hung").startswith("server2 ")
        lab.resume("server1")
        # It was stopped far longer than the heartbeat timeout: it must not touch the group
        # (which now runs on server2); it ends itself instead.
        wait_for("server1 to fence itself", lambda: not running(lab, "server1"), timeout=20)
        assert mounted(lab, "server2")
        assert app_call(lab, "after-wake").startswith("server2 ")
        # the alert saying why is written before the panic (the fence waits for clusterpro_evt)
        alerts = (lab.root_of("server1") / "log" / "alert.log").read_text()
        # and it fenced: it did not give way (stopping its groups) on the Offline mark of
        # server2's heartbeats, queued during the hang and read before the loop's first round
        assert "was stopped for" in alerts and "gives way" not in alerts


def test_clpdown_moves_the_groups_then_powers_the_server_off(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpdown", ok=False, timeout=120)
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=60)
        wait_for("server1 powered off", lambda: not running(lab, "server1"), timeout=60)
        assert app_call(lab, "after-clpdown").startswith("server2 ")


def failing_exec1(script: str, recovery: str, settings: dict, record: str, line: str,
                  code: int):
    """A clp.conf edit for sample_cluster: exec1's ``script`` (start.sh, stop.sh) appends
    ``line`` to the work file ``record`` and exits ``code``; exec1's ``recovery``
    (activation, deactivation) is ``settings``."""
    def edit(conf, conf_dir):
        conf["groups"]["failover1"]["resources"]["exec1"][recovery] = settings
        path = conf_dir / "scripts" / "failover1" / "exec1" / script
        path.write_text(f"#!/bin/sh\necho \"{line}\" >> /opt/nec/clusterpro/work/{record}\n"
                        f"exit {code}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return edit


def test_failing_start_script_retries_fails_over_then_takes_the_final_action(tmp_path):
    failing_exec = failing_exec1(
        "start.sh", "activation",
        {"retry": 1, "failover_threshold": 1, "final_action": "stop_group"},
        "starts", "$(hostname) $CLP_EVENT", 3)
    with sample_cluster(tmp_path, failing_exec) as lab, ExclusivityWatch(lab):
        wait_all_online(lab)

        def final():  # as both servers see it: one of them may not have heard the other yet
            gs = [group(lab, s, "failover1") for s in lab.servers]
            return all(g["state"] in ("Offline", "Offline Failure", "Online Failure")
                       for g in gs) \
                and all(os.path.exists(lab.root_of(s) / "work" / "starts") for s in lab.servers) \
                and gs[0]
        wait_for("failover1 to end in its final action", final, timeout=120)

        def starts():
            return {s: [x for x in (lab.root_of(s) / "work" / "starts").read_text().split("\n")
                        if x] for s in lab.servers}
        seen = starts()
        time.sleep(3 * TIMEOUT)
        assert starts() == seen  # the final action ended it: nothing keeps retrying
        # the first server: one try plus one retry, then a failover: try plus retry there too
        assert len(seen["server1"]) >= 2 and seen["server1"][0].endswith("START"), seen
        assert len(seen["server2"]) == 2, seen
        assert all(x.endswith("FAILOVER") for x in seen["server2"]), seen
        g = group(lab, "server1", "failover1")
        assert g["server"] is None and not mounted(lab, "server1") and not mounted(lab, "server2")
        assert FIP not in lab.addresses_on("server1") + lab.addresses_on("server2")
        alerts = [json.loads(x) for x in
                  (lab.root_of("server2") / "log" / "alert.log").read_text().splitlines()]
        assert any("exec1" in a["message"] for a in alerts), alerts
        assert status(lab, "server1")["groups"]["ManagementGroup"]["state"] == "Online"


def test_a_group_left_in_offline_failure_by_a_stopping_service_is_not_taken_over(tmp_path):
    """exec1's stop fails (final action: none), so failover1 ends Offline Failure with its disk
    and address still up. Stopping server1's cluster service deactivates it once more (it fails
    again); server2 must not take the group over as if server1 had powered off."""
    failing_stop = failing_exec1("stop.sh", "deactivation",
                                 {"retry": 0, "final_action": "none"}, "stops", "$CLP_EVENT", 5)
    with sample_cluster(tmp_path, failing_stop) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpgrp", "-t", "failover1", ok=False)
        wait_for("failover1 in Offline Failure on server1", lambda: group(
            lab, "server2", "failover1")["states"].get("server1") == "Offline Failure")
        clp(lab, "server1", "clpcl", "-t", "-w", "60", ok=False, timeout=90)
        wait_for("server1's cluster service to stop", lambda: clp(
            lab, "server1", "clpstat", ok=False).returncode != 0, timeout=60)
        stops = (lab.root_of("server1") / "work" / "stops").read_text().split()
        assert len(stops) == 2, stops  # clpgrp -t, then the cluster stop: deactivated again
        assert mounted(lab, "server1") and FIP in lab.addresses_on("server1")
        time.sleep(3 * TIMEOUT)  # server2 has declared server1 gone long since
        g = group(lab, "server2", "failover1")
        assert g["server"] is None, g
        assert "Offline Failure on server1 when its cluster service stopped" in g["reason"]
        assert not mounted(lab, "server2") and FIP not in lab.addresses_on("server2")
        r = clp(lab, "server2", "clpgrp", "-s", "failover1", ok=False)
        assert r.returncode == 14 and "start the group with -f" in r.stdout + r.stderr, r


def test_restart_of_clusterpro_and_suspend_resume_leave_the_group_running(tmp_path):
    from tests.integration.test_cluster_membership import _supervised_pid

    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        app_pid = (lab.root_of("server1") / "work" / "exec1.pid").read_text().strip()
        before = status(lab, "server1")
        lab.exec("server1", ["kill", "-KILL", str(_supervised_pid(lab, "server1", "clusterpro"))])
        wait_for("clusterpro restarted", lambda: status(lab, "server1")["incarnation"]
                 != before["incarnation"])
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpcl", "--suspend")
        time.sleep(2 * TIMEOUT)
        clp(lab, "server2", "clpcl", "--resume")
        wait_all_online(lab)
        wait_group(lab, "failover1", "Online", "server1")
        # the application was adopted, never restarted: same process, and it still answers
        assert (lab.root_of("server1") / "work" / "exec1.pid").read_text().strip() == app_pid
        assert app_call(lab, "still-here").startswith("server1 ")
        starts = (lab.root_of("server1") / "log" / "nm.log").read_text().count(
            "resource exec1: Offline -> Online Pending")
        assert starts == 1
