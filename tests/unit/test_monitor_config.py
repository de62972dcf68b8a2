"""Monitor resources in clp.conf: defaults by type, the recovery target, and every mistake a user
can make reported by clpcfchk with its line, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from clp.cli.clpcfchk import main as clpcfchk
from clp.config import load_config
from tests.unit.test_config_groups import errors, write

GROUPS = """\
groups:
  failover1:
    resources:
      fip1: {type: fip, ip: 198.18.0.12}
      exec1: {type: exec, mode: async}
      exec2: {type: exec}
"""


def test_defaults_by_type_and_the_default_monitors(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GROUPS + """\
monitors:
  ipw1: {type: ipw, addresses: [198.18.0.254], recovery: {target: All Groups}}
  pidw1: {type: pidw, target: exec1}
  genw1: {type: genw, path: /bin/true, recovery: {target: exec2, failover_threshold: servers}}
"""))
    names = [m.name for m in cfg.monitors]
    assert names == ["ipw1", "pidw1", "genw1", "userw", "fipw1"]
    ipw1, pidw1, genw1, userw, fipw1 = cfg.monitors
    assert (ipw1.interval, ipw1.timeout, ipw1.retry, ipw1.timing) == (30, 30, 0, "always")
    assert (ipw1.recovery.kind, ipw1.recovery.reactivation_threshold,
            ipw1.recovery.failover_threshold, ipw1.recovery.final_action) == (
        "all_groups", 3, 1, "none")
    assert ipw1.servers == ("server1", "server2") and ipw1.recovery.script is None
    assert ipw1.recovery.reset_after == 300  # 10 intervals
    # pidw: the product's defaults, its target exec itself
    assert (pidw1.timing, pidw1.recovery.target, pidw1.recovery.kind) == (
        "active", "exec1", "resource")
    assert genw1.recovery.failover_threshold == 2  # "servers": the group's two servers
    # userw with the cluster, on the heartbeat's timing, recovering by a reset of this server
    assert (userw.interval, userw.timeout) == (3, 90)
    assert (userw.recovery.kind, userw.recovery.final_action) == ("local_server",
                                                                  "keepalive_reset")
    # fipw1 for fip1, failing the group over (the seed's sample)
    assert (fipw1.target, fipw1.recovery.target, fipw1.recovery.kind,
            fipw1.recovery.reactivation_threshold) == ("fip1", "failover1", "group", 0)
    assert cfg.monitor_settings.delay_warning == 80


def test_mistakes_are_errors_with_their_line(tmp_path: Path) -> None:
    found = errors(tmp_path, GROUPS + """\
monitors:
  m1: {type: ipw, addresses: [198.18.0.254], interval: -1, recovery: {target: failover1}}
  m2: {type: pidw, target: fip9}
  m3: {type: pidw, target: exec2}
  m4: {type: ipw, addresses: [not-an-ip], recovery: {target: nothing}}
  m5: {type: miiw}
  m6: {type: genw, path: missing.sh, recovery: {target: exec1, reactivation_threshold: 100}}
  m7: {type: userw, timing: active, target: exec1}
  m8: {type: fipw}
  m9: {type: mtw, members: [m9, nope], error_threshold: 5}
  m10: {type: psw, process_name: x, recovery: {target: LocalServer, final_action: explode}}
  m11: {type: ipw, addresses: [198.18.0.254]}
  fip1: {type: dummy, recovery: {target: LocalServer}}
  m12: {type: nothing}
""")
    text = "\n".join(found)
    expected = [
        "monitors.m1.interval: must be greater than 0 (got -1) (clp.conf:",
        "monitors.m2.target: 'fip9' is not a group resource (clp.conf:",
        "monitors.m3.target: pidw watches the process of an asynchronous exec resource; exec2 "
        "has mode 'sync' (set mode: async)",
        "monitors.m4.addresses[0]: 'not-an-ip' is not an IPv4 address",
        "monitors.m4.recovery.target: 'nothing' is not a group resource, a group, "
        "'LocalServer' or 'All Groups'",
        "monitors.m5: miiw needs the NIC to monitor (device)",
        "monitors.m6.recovery.reactivation_threshold: must be at most 99 (got 100)",
        "monitors.m6.path: script " + str(tmp_path / "scripts/monitor.s/m6/missing.sh")
        + " does not exist",
        "monitors.m7.timing: 'active': this monitor type can monitor only always",
        "monitors.m8: monitor m8 (fipw) needs a target resource (target)",
        "monitors.m9.members[0]: mtw m9 cannot be its own member",
        "monitors.m9.members[1]: 'nope' is not a monitor resource",
        "monitors.m9.error_threshold: 5 is more than the 2 member(s)",
        "monitors.m10.recovery.final_action: 'explode' is not one of: none, stop_group",
        "monitors.m11.recovery: monitor m11 (ipw) needs a recovery target",
        "monitors.fip1: monitor name 'fip1' is already a resource name",
        "monitors.m12.type: unknown monitor resource type 'nothing' (known: diskw, dummy, fipw",
    ]
    for part in expected:
        assert part in text, f"missing: {part}\n--- got:\n{text}"
    assert all("(clp.conf:" in line for line in found), found


def test_ambiguous_recovery_target_needs_its_type(tmp_path: Path) -> None:
    groups = """\
groups:
  app:
    resources:
      app: {type: dummy}
monitors:
  m1: {type: dummy, recovery: {target: app}}
"""
    found = errors(tmp_path, groups)
    assert any("'app' is both a group and a resource" in f for f in found), found
    cfg = load_config(write(tmp_path, groups.replace("target: app}", "target: app, "
                                                                     "target_type: group}")))
    assert cfg.monitor("m1").recovery.kind == "group"
    found = errors(tmp_path, groups.replace("target: app}", "target: app, "
                                                            "target_type: local_server}"))
    assert any("'app' is not a local server" in f for f in found), found


def test_recovery_script_is_checked_and_resolved(tmp_path: Path) -> None:
    conf = GROUPS + """\
monitors:
  m1:
    type: dummy
    recovery: {target: failover1, script: {count: 1, before_failover: true}}
"""
    found = errors(tmp_path, conf)
    assert any("monitors.m1.recovery.script: script" in f and "preaction.sh does not exist"
               in f for f in found), found
    script = tmp_path / "scripts" / "monitor.s" / "m1" / "preaction.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    cfg = load_config(write(tmp_path, conf))
    spec = cfg.monitor("m1").recovery.script
    assert spec is not None and spec.path == script and spec.count == 1
    assert spec.before_failover and not spec.before_reactivation


def test_clpcfchk_reports_monitor_errors_and_never_crashes(tmp_path: Path) -> None:
    write(tmp_path, GROUPS + """\
monitors:
  m1: {type: ipw, addresses: 5, interval: [], retry: -3, recovery: 7}
  m2: [1, 2]
  m3: {type: mtw, members: 9}
""")
    result = CliRunner().invoke(clpcfchk, [str(tmp_path)])
    assert result.exit_code != 0 and result.exception is None or \
        isinstance(result.exception, SystemExit), result.output
    assert "monitors.m1.addresses" in result.output and "monitors.m2" in result.output
    assert "Traceback" not in result.output


def test_cluster_monitor_settings(tmp_path: Path) -> None:
    from tests.unit.test_config_schema import BASE

    (tmp_path / "scripts").mkdir()
    (tmp_path / "clp.conf").write_text(BASE.replace(
        "  name: cluster\n",
        "  name: cluster\n  monitor: {disable_recovery: true, delay_warning: 50,"
        " restrain_final_action_alone: true}\n", 1))
    s = load_config(tmp_path).monitor_settings
    assert (s.disable_recovery, s.delay_warning, s.restrain_final_action_alone) == (
        True, 50, True)
