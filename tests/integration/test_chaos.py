"""clplab chaos on the seed's sample cluster (LAN, disk and COM heartbeats, ping resolution):
a short seeded schedule of every fault kind, through the command, ends with no double
activation and every group running once. The long runs are benchmarks/chaos.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clp.lab import cli
from tests.integration.grouputil import sample_cluster, wait_group
from tests.integration.labutil import needs_root

pytestmark = [pytest.mark.lab, needs_root]


def test_a_short_schedule_of_every_kind_ends_with_every_group_once(tmp_path):
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        result = CliRunner().invoke(cli.main, ["--name", lab.name, "chaos", "--seed", "0",
                                               "--faults", "4", "--span", "20", "--json"])
        report = json.loads(result.output)
        assert result.exit_code == 0 and report["ok"], report
        assert report["violations"] == [] and report["not_running"] == []
        assert report["samples"] > 50 and len(report["steps"]) == 8
        kinds = {s.split()[2] for s in report["steps"]}  # seed 0 draws one fault of each kind
        assert kinds == {"crash", "restart", "hang", "resume", "unplug", "plug", "partition",
                         "heal"}, report
