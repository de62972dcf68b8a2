"""clpstat's views in the product's layouts, rendered from a status document as clusterpro
publishes it (the lab tests check the same views against a running cluster)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from clp.cli import statviews
from clp.config import load_config
from clp.lab.samples import write_sample_config


def doc(**changes: Any) -> dict[str, Any]:
    paths = {"lanhb1": {"state": "Normal"}, "lanhb2": {"state": "Normal"},
             "diskhb1": {"state": "Normal"}, "comhb1": {"state": "Not Used"}}
    d: dict[str, Any] = {
        "cluster": "cluster", "me": "server1", "servers": ["server1", "server2"],
        "paths": [{"name": "lanhb1", "type": "lan"}, {"name": "lanhb2", "type": "lan"},
                  {"name": "diskhb1", "type": "disk"}, {"name": "comhb1", "type": "com"}],
        "resolvers": [{"name": "pingnp1", "type": "ping", "servers": ["server1", "server2"]}],
        "membership": {"servers": {"server1": {"state": "Online", "paths": copy.deepcopy(paths)},
                                   "server2": {"state": "Online", "paths": copy.deepcopy(paths)}},
                       "ratio": 1, "timeout": 10},
        "partition": {"resolvers": {"pingnp1": {"ok": True, "failing": False}}},
        "suspended": False,
        "groups": {
            "ManagementGroup": {"state": "Online", "server": "server1",
                                "states": {"server1": "Online", "server2": "Offline"},
                                "resources": {"ManagementIP": {"state": "Online"}}},
            "failover1": {"state": "Offline", "server": None,
                          "states": {"server1": "Offline", "server2": "Offline"},
                          "resources": {"fip1": {"state": "Offline"}}}},
        "monitors": {"userw": {"state": "Normal", "servers": {"server1": "Normal",
                                                               "server2": "Normal"}},
                     "fipw1": {"state": "Normal", "servers": {"server1": "Normal",
                                                               "server2": "Offline"}}},
    }
    d.update(changes)
    return d


SUMMARY = """\
 ========================  CLUSTER STATUS  ===========================
  Cluster : cluster
  <server>
   *server1 .........: Online
      lanhb1         : Normal           LAN Heartbeat
      lanhb2         : Normal           LAN Heartbeat
      diskhb1        : Normal           Disk Heartbeat
      comhb1         : Unused           COM Heartbeat
      pingnp1        : Normal           ping resolution
    server2 .........: Online
      lanhb1         : Normal           LAN Heartbeat
      lanhb2         : Normal           LAN Heartbeat
      diskhb1        : Normal           Disk Heartbeat
      comhb1         : Unused           COM Heartbeat
      pingnp1        : -                ping resolution
  <group>
    ManagementGroup .: Online
      current        : server1
      ManagementIP   : Online
    failover1 .......: Offline
      current        : None
      fip1           : Offline
  <monitor>
    userw            : Normal
    fipw1            : Normal
 ====================================================================="""


def test_summary_is_the_products_layout() -> None:
    assert statviews.summary(doc()) == SUMMARY


def test_state_words_caution_suspension_and_long_names() -> None:
    d = doc()
    d["membership"]["servers"]["server2"]["paths"]["lanhb2"]["state"] = "Error"
    text = statviews.summary(d)
    assert "    server2 .........: Caution" in text and "lanhb2         : Error" in text
    suspended = doc(suspended=True)
    suspended["membership"]["servers"]["server2"]["state"] = "Offline"
    text = statviews.summary(suspended)
    assert "   *server1 .........: Suspension" in text  # a server down still says so
    assert "    server2 .........: Offline" in text
    long = doc(groups={"container-recovery-group": doc()["groups"]["failover1"]})
    assert "    container-recove : Offline" in statviews.summary(long).splitlines()
    assert "    container-recovery-group : Offline" in statviews.summary(long, long=True)


def test_detail_adds_clps_extras_only_there() -> None:
    d = doc()
    d["membership"]["ratio"] = 3
    d["groups"]["failover1"]["reason"] = "stopped by the operator"
    assert "Timeout ratio" not in statviews.summary(d)
    detailed = statviews.summary(d, detail=True)
    assert "Timeout ratio : 3" in detailed and "last decision  : stopped by the operator" in \
        detailed and "partition action" in detailed


def test_detail_shows_the_configuration_generation_and_a_newer_one_on_disk() -> None:
    d = doc(config={"generation": 2, "hash": "ab"}, config_on_disk={"generation": 2, "hash": "ab"})
    assert "Config" not in statviews.summary(d)  # the product's layout has no such line
    assert "  Config  : generation 2" in statviews.summary(d, detail=True).splitlines()
    d["config_on_disk"] = {"generation": 3, "hash": "cd"}
    assert "  Config  : generation 2 (generation 3 on disk: in force at the next start)" in \
        statviews.summary(d, detail=True).splitlines()


def test_group_map_heartbeat_and_partition_matrices() -> None:
    gmap = statviews.group_map(doc()).splitlines()
    assert gmap[0] == " ======================  GROUPMAP INFORMATION  ======================="
    assert "   *server0 : server1" in gmap and "    server1 : server2" in gmap
    assert "    server0 [o] : ManagementGroup[o] " in gmap
    assert "    server1 [o] : " in gmap  # runs nothing
    d = doc()
    d["membership"]["servers"]["server2"]["paths"]["lanhb1"]["state"] = "Error"
    hb = statviews.heartbeats(d).splitlines()
    assert "  HB0 : lanhb1" in hb and " [on server0 : Online]" in hb
    at = hb.index(" [on server0 : Online]")
    assert hb[at + 1] == "         HB     0   1   2   3"  # the product's columns
    assert hb[at + 4] == "  server1    :  x   o   o   -"
    np = statviews.partitions(doc()).splitlines()
    assert "  NP0 : pingnp1" in np and "  server0    :  o" in np and "  server1    :  -" in np


def test_monitor_view_lists_every_server() -> None:
    text = statviews.monitors(doc()).splitlines()
    assert "  Monitor1 [fipw1 : Normal]" in text
    assert text[text.index("  Monitor1 [fipw1 : Normal]") + 3] == "    server1 [o] : Offline"


def test_configuration_views_from_clp_conf(tmp_path: Path, monkeypatch: Any) -> None:
    from clp.cli.clpstat_options import command as main
    from clp.cli.confviews import render

    conf_dir = tmp_path / "root" / "etc"
    write_sample_config(conf_dir)
    monkeypatch.setenv("CLP_ROOT", str(tmp_path / "root"))
    config = load_config(conf_dir)
    text = render(config, ["cl", "sv", "hb", "np", "grp", "rsc", "mon"], None, False)
    for part in ("  [Cluster Name: cluster]", "  [Server0 : server1]", "  [HB2 : diskhb1]",
                 "  [NP0 : pingnp1]", "  [Group1 : failover1]", "  [Resource3 : exec1]",
                 "  [Monitor5 : pidw1]", "    Recovery Target               : exec1 (resource)"):
        assert part in text, part
    result = CliRunner().invoke(main, ["--mon", "pidw1", "--detail"])
    assert result.exit_code == 0 and "[Monitor5 : pidw1]" in result.output \
        and "[Monitor0" not in result.output and "Nice Value" in result.output
    result = CliRunner().invoke(main, ["--grp", "nope"])
    assert result.exit_code == 2 and result.output.startswith(
        "Invalid group name. Specify a valid group name in the cluster.\n")
    result = CliRunner().invoke(main, ["--rsc", "fip1", "--json"])
    assert result.exit_code == 0 and '"fip1"' in result.output and "ManagementIP" not in \
        result.output
    result = CliRunner().invoke(main, ["-g", "--grp"])
    assert result.exit_code == 2 and result.output.startswith("Invalid option.")


def test_the_forms_clpstat_parses_without_click_mean_what_click_makes_of_them() -> None:
    """Every combination the fast path takes is parsed by the full command line to the same
    options; anything else is left to the full command line."""
    import itertools

    from clp.cli import clpstat
    from clp.cli.clpstat_options import command

    words = [*clpstat.FAST_VIEWS, *clpstat.FAST_FLAGS]
    checked = 0
    for n in range(5):
        for args in itertools.permutations(words, n):
            fast = clpstat._fast(list(args))
            if sum(a in clpstat.FAST_VIEWS for a in args) > 1:
                assert fast is None, args  # two views: the full command line refuses them
                continue
            with command.make_context("clpstat", list(args)) as ctx:
                assert fast == ctx.params, args
            checked += 1
    assert checked == 770  # every order of up to 4 of them, with one view at most
    for other in (["-s", "-s"], ["-gm"], ["--help"], ["-h", "server2"], ["--grp"], ["x"],
                  ["--json=1"], ["-i"]):
        assert clpstat._fast(other) is None, other


def test_clpstat_does_not_import_click_for_its_usual_forms() -> None:
    import subprocess
    import sys

    code = ("import sys, clp.cli.clpstat, clp.cli.statviews, clp.state.reader\n"
            "print(*(m in sys.modules for m in ('click', 'dataclasses', 'typing')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "False"]  # each costs milliseconds
