"""clplab chaos on the seed's sample cluster (LAN, disk and COM heartbeats, ping resolution),
its userw feeding the lab's watchdog: a short seeded schedule of every fault kind (a hang with
its cables live, a killed application and a clock step among them), through the command, ends
with no double activation, hung holders counted, nothing allowed, and every group running once.
The long runs are benchmarks/chaos.py."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from clp.lab import Lab, chaos, cli
from clp.lab.netns import LabError
from tests.integration.grouputil import app_call, clp, lab_softdog, sample_cluster, wait_group
from tests.integration.labutil import needs_root, wait_for

pytestmark = [pytest.mark.lab, needs_root]


def test_a_short_schedule_of_every_kind_ends_with_every_group_once(tmp_path):
    with sample_cluster(tmp_path, edit=lab_softdog) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        before = time.time() - time.monotonic()
        result = CliRunner().invoke(cli.main, ["--name", lab.name, "chaos", "--seed", "54",
                                               "--faults", "7", "--span", "30", "--json"])
        assert result.exception is None, result.output
        report = json.loads(result.output)
        assert result.exit_code == 0 and report["ok"], report
        assert report["violations"] == [] and report["not_running"] == []
        assert report["allowed"] == [], report
        assert report["samples"] > 50 and len(report["steps"]) == 13
        kinds = {s.split()[2] for s in report["steps"]}  # seed 54 draws one fault of each kind
        assert kinds == {"crash", "restart", "hang", "freeze", "resume", "unplug", "plug",
                         "partition", "heal", "kill", "clock", "unclock"}, report
        assert abs(time.time() - time.monotonic() - before) < 1.0  # the clock stepped back
        # the kill fault on the owner: its pidw monitor restarts the application
        lab = Lab.load(lab.name)  # the command restarted servers: their init pids are new
        owner = json.loads(clp(lab, "server1", "clpstat", "--json").stdout)["groups"][
            "failover1"]["server"]
        pid_before = lab.pids(owner, "clp.lab.demo_app")
        chaos.kill(lab, owner, "failover1/exec1")
        wait_for("pidw to start the application again", lambda: lab.pids(
            owner, "clp.lab.demo_app") not in ([], pid_before), timeout=30)
        wait_for("the application to answer again", lambda: app_call(lab, "after-kill"),
                 timeout=30)  # (it listens a moment after it starts)
        other = next(s for s in lab.servers if s != owner)
        with pytest.raises(LabError, match="does not run on"):
            chaos.kill(lab, other, "failover1/exec1")
