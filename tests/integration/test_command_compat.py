"""The commands as an administrator of the product uses them, in the lab: one check per row of
shared/reference/command-compat.md (A1-A20), on its output, exit code and effect."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time

import pytest

from clp.keys import KEY_BYTES
from clp.lab import Lab
from tests.integration.grouputil import (
    ExclusivityWatch,
    clp,
    group,
    running,
    sample_cluster,
    wait_group,
)
from tests.integration.labutil import needs_root, status, wait_all_online, wait_for

pytestmark = [pytest.mark.lab, needs_root]

SUCCEEDED = "Command succeeded.\n"
CONNECT = "Could not connect to the server. Check if the cluster service is active.\n"
SUSPENDED = ("The cluster has been suspended. The cluster daemon has been suspended. Check "
             "activation status of the cluster daemon by using a command such as the ps "
             "command.\n")


def run(lab: Lab, server: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(server, list(argv), timeout=120)


def test_messages_names_options_and_streams(tmp_path):
    """A5, A7-A10, A16, A18, A20: the product's sentences on stdout, clp's detail on stderr."""
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        r = run(lab, "server1", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "clpstat")
        assert (r.returncode, r.stdout) == (1, "Log in as root.\n")  # A7
        for argv in (["clpgrp", "-x"], ["clprsc"], ["clpstat", "-g", "--cl"],
                     ["clpcl"], ["clpmonctrl", "-e"]):  # A10
            r = run(lab, "server1", *argv)
            assert r.returncode == 2 and r.stdout == "Invalid option.\n", (argv, r)
        r = run(lab, "server1", "clpgrp", "-s", "nosuch")  # A9
        assert (r.returncode, r.stdout) == (2, "Invalid group name. Specify a valid group name "
                                               "in the cluster.\n")
        assert "nosuch" in r.stderr
        r = run(lab, "server1", "clprsc", "-t", "nosuch")
        assert r.stdout == ("Invalid group resource name. Specify a valid group resource name "
                            "in the cluster.\n")
        r = run(lab, "server1", "clpgrp", "-s", "failover1", "-h", "server9")
        assert r.stdout == "Invalid server name. Specify a valid server name in the cluster.\n"
        r = run(lab, "server1", "clpstat", "--mon", "nosuch")
        assert r.stdout.startswith("Invalid monitor resource name.")
        r = run(lab, "server1", "clpmonctrl", "-s", "-m", "nosuch")
        assert (r.returncode, r.stdout) == (5, "Monitor resource is not registered.\n")
        r = run(lab, "server1", "clpcfchk", "-h")  # A16: -h is a host elsewhere, not help
        assert (r.returncode, r.stdout) == (2, "Invalid option.\n")
        r = run(lab, "server1", "clpcfchk", "/nonexistent")
        assert r.returncode == 3
        r = run(lab, "server1", "clplogcmd", "-m", "to the trap", "--trap", "-l", "WARN")  # A20
        assert (r.returncode, r.stdout) == (0, SUCCEEDED)
        # A18: a second run while one is in progress
        holder = lab.popen("server1", ["flock", "/opt/nec/clusterpro/run/clpgrp.lock",
                                       "sleep", "30"], start_new_session=True)
        try:
            wait_for("the lock held", lambda: run(lab, "server1", "clpgrp", "-t",
                                                  "failover1").returncode == 128, timeout=10)
            r = run(lab, "server1", "clpgrp", "-t", "failover1")
            assert (r.returncode, r.stdout) == (128, "This command is already run.\n")
        finally:  # nsenter, flock and sleep: the whole session
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
        assert group(lab, "server1", "failover1")["state"] == "Online"  # nothing was done
        # A8: success is the bare sentence on stdout; -a has one line per server, nothing more
        r = run(lab, "server1", "clpgrp", "-t", "failover1")
        assert (r.returncode, r.stdout) == (0, SUCCEEDED)
        r = run(lab, "server1", "clpcl", "-s", "-a")
        assert (r.returncode, r.stdout) == (0, "Start server1 : Command succeeded.\n"
                                               "Start server2 : Command succeeded.\n")
        # A5: the cluster service is not running (A13: -w waits until it no longer answers)
        r = run(lab, "server2", "clpcl", "-t", "-w", "30")
        assert (r.returncode, r.stdout) == (0, SUCCEEDED), r
        for argv in (["clpstat"], ["clpgrp", "-s", "failover1"], ["clptoratio", "-s"]):
            r = run(lab, "server2", *argv)
            assert r.returncode == 5 and r.stdout == CONNECT, (argv, r)
        # A19: a suspend with a server down, in the product's words; --force suspends the rest
        r = run(lab, "server1", "clpcl", "--suspend")
        assert (r.returncode, r.stdout) == (9, "All servers must be activated. Check the status "
                                               "of servers.\n"), r
        assert "server2" in r.stderr and "--force" in r.stderr
        assert status(lab, "server1")["suspended"] is False


def test_group_operations_act_on_the_server_that_handles_them(tmp_path):
    """A2, A4, A17: -s starts on the handling server, -t stops there only (-f elsewhere), -m
    without a group moves every group running there; A15: clprsc -f."""
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clpgrp", "-t", "failover1")
        wait_group(lab, "failover1", "Offline", None)
        clp(lab, "server1", "clpgrp", "-s", "failover1", "-h", "server2")
        wait_group(lab, "failover1", "Online", "server2")
        r = run(lab, "server1", "clpgrp", "-t", "failover1")  # it runs on server2
        assert (r.returncode, r.stdout) == (14, "Invalid server status.\n")
        assert "active on server2" in r.stderr and "-f" in r.stderr
        assert group(lab, "server1", "failover1")["server"] == "server2"
        clp(lab, "server1", "clpgrp", "-t", "failover1", "-f")
        wait_group(lab, "failover1", "Offline", None)
        clp(lab, "server2", "clpgrp", "-s", "failover1")  # handled by server2: runs there
        wait_group(lab, "failover1", "Online", "server2")
        clp(lab, "server1", "clpgrp", "-s", "failover1", "-a", "server1", ok=False)
        # -m without a group, from server2: every group running on server2 moves
        clp(lab, "server2", "clpgrp", "-m")
        wait_group(lab, "failover1", "Online", "server1")
        assert group(lab, "server1", "ManagementGroup")["server"] == "server1"
        # clprsc: a stop with a dependent running, a start with a dependency stopped
        r = run(lab, "server1", "clprsc", "-t", "disk1")
        assert r.returncode == 14 and "exec1" in r.stderr and "-f" in r.stderr
        clp(lab, "server1", "clprsc", "-t", "disk1", "-f")
        res = group(lab, "server1", "failover1")["resources"]
        assert (res["exec1"]["state"], res["disk1"]["state"]) == ("Offline", "Offline")
        r = run(lab, "server1", "clprsc", "-s", "exec1")
        assert r.returncode == 14 and "disk1" in r.stderr
        clp(lab, "server1", "clprsc", "-s", "exec1", "-f")
        wait_group(lab, "failover1", "Online", "server1")
        r = run(lab, "server2", "clprsc", "-n", "exec1", "-h", "server1")
        assert r.stdout.strip() == "server1"


def test_a_suspended_cluster_refuses_operations_at_once(tmp_path):
    """A3, A6, A13, A14: suspend -a / resume -a, commands refused with the product's message
    while suspended (clpstat and clpmonctrl -v still answer), clpcl -r --web --alert, the limits
    of clptoratio."""
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        for argv in (["clptoratio", "-r", "2", "-t", "90s"], ["clptoratio", "-r", "2", "-t",
                                                             "31d"]):
            r = run(lab, "server1", *argv)
            assert (r.returncode, r.stdout) == (2, "Set the correct extension period.\n"
                                                   "Ex) 2m, 3h, 4d\n"), r
        r = run(lab, "server1", "clptoratio", "-r", "0", "-t", "1m")
        assert r.stdout == "Scale factor must be specified by integer value of 1 or more.\n"
        clp(lab, "server1", "clptoratio", "-r", "2", "-t", "1m")
        assert status(lab, "server2")["membership"]["ratio"] == 2
        clp(lab, "server1", "clptoratio", "-i")
        clp(lab, "server1", "clpcl", "--suspend", "-a")
        for argv in (["clpgrp", "-m", "failover1"], ["clprsc", "-t", "exec1"], ["clpdown"],
                     ["clpstdn"], ["clptoratio", "-r", "2", "-t", "1m"],
                     ["clpmonctrl", "-s"], ["clpcl", "-t"]):
            started = time.monotonic()
            r = run(lab, "server2", *argv)
            assert (r.returncode, r.stdout) in ((19, SUSPENDED), (11, SUSPENDED)), (argv, r)
            assert time.monotonic() - started < 10  # at once, not at the resume
        assert "Suspension" in clp(lab, "server2", "clpstat").stdout
        assert clp(lab, "server2", "clpmonctrl", "-v").returncode == 0
        clp(lab, "server1", "clpcl", "--resume", "-a")
        wait_all_online(lab)
        assert group(lab, "server1", "failover1")["server"] == "server1"  # nothing happened
        r = run(lab, "server1", "clpcl", "-r", "-h", "server2", "--web", "--alert")
        assert (r.returncode, r.stdout) == (0, SUCCEEDED), r
        assert "clusterpro_webmgr" in r.stderr  # not installed (yet): said, not failed
        wait_all_online(lab)


def test_clpstat_views(tmp_path):
    """A1, A11, A12: every view, in the product's layouts, against the running cluster."""
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        text = clp(lab, "server2", "clpstat").stdout.splitlines()
        assert text[0] == " ========================  CLUSTER STATUS  ==========================="
        assert "    server1 .........: Online" in text  # '*': the server clpstat runs on
        assert "   *server2 .........: Online" in text
        assert "      pingnp1        : Normal           ping resolution" in text
        wait_for("pidw1 Normal under <monitor>", lambda: "    pidw1            : Normal" in
                 clp(lab, "server2", "clpstat").stdout.splitlines(), timeout=30)
        assert "      current        : server1" in text and text[-1] == " " + "=" * 69
        for argv, expect in ((["-g"], "server0 [o] : ManagementGroup[o] failover1[o]"),
                             (["-m"], "Monitor5 [pidw1 : Normal]"),
                             (["-n"], "  HB3 : comhb1"), (["-p"], "  NP0 : pingnp1"),
                             (["-i"], "[Monitor0 : userw]"), (["--cl"], "[Cluster Name:"),
                             (["--sv", "server2"], "[Server1 : server2]"),
                             (["--hb"], "[HB2 : diskhb1]"), (["--np"], "[NP0 : pingnp1]"),
                             (["--grp", "failover1"], "[Group1 : failover1]"),
                             (["--rsc", "exec1", "--detail"], "mode"),
                             (["--mon", "ipw1"], "Recovery Target"),
                             (["--local"], "CLUSTER STATUS"), (["--long"], "CLUSTER STATUS")):
            r = clp(lab, "server1", "clpstat", *argv)
            assert expect in r.stdout, (argv, r.stdout)
        doc = json.loads(clp(lab, "server1", "clpstat", "-g", "--json").stdout)
        assert doc["groups"]["failover1"]["server"] == "server1" and "monitors" not in doc


KEYED = ["--key", "{key}", "--cluster", "cluster"]
CONTROL_WITH = """
import sys
from pathlib import Path
from clp.keys import load_rexec_key
from clp.net import frames
request = frames.new_request("cluster", "client", "control",
                             {"op": "group_move", "args": {"group": "failover1"}})
try:
    frames.call("198.18.0.1", 29002, load_rexec_key(Path(sys.argv[1])), request, timeout=10)
    print("accepted")
except (OSError, frames.FrameError) as e:
    print("refused", e)
"""


def test_clprexec_from_outside_and_the_reboot_limit(tmp_path):
    """clprexec from the client machine (outside the cluster, with a copy of the key): a
    failover, a script of work/trnreq, an mrw notice; a wrong key is refused and alerted. Then
    clpregctrl and the reboot limit: a monitor whose final action reboots reboots once, then is
    stopped by the limit."""
    def edit(conf, conf_dir):
        conf["cluster"]["reboot_limit"] = {"max_count": 1}
        conf["monitors"]["mrw1"] = {"type": "mrw", "category": "db", "recovery": {
            "target": "failover1", "reactivation_threshold": 0}}
        conf["monitors"]["bootw"] = {"type": "dummy", "servers": ["server2"],
                                     "fail_file": "/opt/nec/clusterpro/work/boot-fail",
                                     "recovery": {"target": "LocalServer",
                                                  "final_action":
                                                      "stop_cluster_service_and_reboot"}}

    with sample_cluster(tmp_path, edit) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server1", "clprexec", "--make-key", "/opt/nec/clusterpro/work/rexec.key")
        key = tmp_path / "rexec.key"  # the copy the host outside the cluster is given
        key.write_bytes((lab.root_of("server1") / "work" / "rexec.key").read_bytes())
        key.chmod(0o600)
        keyed = [k.format(key=key) for k in KEYED]
        # that key is for clprexec only: the cluster's own operations signed with it are refused
        r = lab.client_exec(["python3", "-c", CONTROL_WITH, str(key)], timeout=30)
        assert r.returncode == 0 and "refused" in r.stdout, r
        assert group(lab, "server1", "failover1")["server"] == "server1"
        wait_for("the refusal alerted with its reason", lambda: "control signed with the "
                 "clprexec key" in (lab.root_of("server1") / "log" / "alert.log").read_text(),
                 timeout=30)
        r = lab.client_exec(["clprexec", "--failover", "failover1", "-h",
                             "198.18.0.1", *keyed], timeout=200)
        assert (r.returncode, r.stdout) == (0, SUCCEEDED), r
        wait_group(lab, "failover1", "Online", "server2")
        trnreq = lab.root_of("server2") / "work" / "trnreq"
        trnreq.mkdir(parents=True)
        (trnreq / "check.sh").write_text("#!/bin/sh\necho checked on $(hostname)\n")
        (trnreq / "check.sh").chmod(0o755)
        r = lab.client_exec(["clprexec", "--script", "check.sh", "-h",
                             "198.18.0.9,198.18.0.2", *keyed], timeout=60)
        assert r.returncode == 0 and "checked on server2" in r.stderr, r
        r = lab.client_exec(["clprexec", "--script", "../../etc/cluster.key", "-h",
                             "198.18.0.2", *keyed], timeout=60)
        assert r.returncode == 2, r
        r = lab.client_exec(["clprexec", "--notice", "-k", "db", "-m", "db down", "-h",
                             "198.18.0.2", *keyed], timeout=60)
        assert r.returncode == 0, r
        wait_group(lab, "failover1", "Online", "server1", timeout=60)  # mrw1 failed it over
        bad = tmp_path / "other.key"
        bad.write_text(secrets.token_hex(KEY_BYTES) + "\n")  # well formed, not the cluster's
        bad.chmod(0o600)
        r = lab.client_exec(["clprexec", "--failover", "-h", "198.18.0.1", "--key", str(bad),
                             "--cluster", "cluster"], timeout=60)
        assert (r.returncode, r.stdout) == (7, CONNECT), r
        wait_for("the forged request logged", lambda: "authentication failed" in (
            lab.root_of("server1") / "log" / "trnsv.log").read_text(), timeout=30)
        # the reboot limit: the first error reboots server2, the second is stopped by it
        r = clp(lab, "server2", "clpregctrl", "-g")
        assert "type : rm" in r.stdout and "value : 0" in r.stdout and \
            r.stdout.endswith("success.(code:0)\n")
        clp(lab, "server2", "touch", "/opt/nec/clusterpro/work/boot-fail")
        wait_for("server2 rebooted and back", lambda: "value : 1" in clp(
            lab, "server2", "clpregctrl", "-g", "-t", "rm").stdout, timeout=90)
        wait_all_online(lab, timeout=90)
        wait_for("the limit's alert", lambda: "Restart count exceeded the maximum of 1" in (
            lab.root_of("server2") / "log" / "alert.log").read_text(), timeout=60)
        assert running(lab, "server2")
        r = clp(lab, "server2", "clpregctrl", "-c", "-t", "rm")
        assert "value : 0" in r.stdout
