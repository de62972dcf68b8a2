"""clplab chaos on the seed's sample cluster (LAN, disk and COM heartbeats, ping resolution),
its userw feeding the lab's watchdog: a short seeded schedule of every fault kind (a hang with
its cables live among them), through the command, ends with no double activation, hung holders
counted, nothing allowed, and every group running once. The long runs are benchmarks/chaos.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clp.lab import cli
from tests.integration.grouputil import lab_softdog, sample_cluster, wait_group
from tests.integration.labutil import needs_root

pytestmark = [pytest.mark.lab, needs_root]


def test_a_short_schedule_of_every_kind_ends_with_every_group_once(tmp_path):
    with sample_cluster(tmp_path, edit=lab_softdog) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        result = CliRunner().invoke(cli.main, ["--name", lab.name, "chaos", "--seed", "1",
                                               "--faults", "5", "--span", "25", "--json"])
        report = json.loads(result.output)
        assert result.exit_code == 0 and report["ok"], report
        assert report["violations"] == [] and report["not_running"] == []
        assert report["allowed"] == [], report
        assert report["samples"] > 50 and len(report["steps"]) == 10
        kinds = {s.split()[2] for s in report["steps"]}  # seed 1 draws one fault of each kind
        assert kinds == {"crash", "restart", "hang", "freeze", "resume", "unplug", "plug",
                         "partition", "heal"}, report
