"""Groups and resources in clp.conf: defaults, dependency order, cross-checks, exec scripts."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from clp.cli.clpcfchk import main as clpcfchk
from clp.config import ConfigError, Recovery, load_config
from tests.unit.test_config_schema import BASE


def write(tmp_path: Path, groups: str, scripts: bool = True) -> Path:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "clp.conf").write_text(BASE + groups)
    if scripts:
        CliRunner().invoke(clpcfchk, [str(tmp_path), "--scripts"])
    return tmp_path


def errors(tmp_path: Path, groups: str, scripts: bool = True) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, groups, scripts))
    return [str(i) for i in info.value.issues]


FULL = """\
groups:
  failover1:
    resources:
      exec1: {type: exec}
      disk1: {type: disk, device: /dev/lab/disk1, mount_point: /mnt/disk1}
      fip1: {type: fip, ip: 198.18.0.12}
  ManagementGroup:
    servers: [server2, server1]
    start: manual
    failback: auto
    exclusive: normal
    resources:
      ManagementIP: {type: fip, ip: 198.18.0.11}
"""


def test_defaults_and_model(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.sync_wait == 300
    assert [g.name for g in config.groups] == ["failover1", "ManagementGroup"]
    group = config.group("failover1")
    assert (group.servers, group.start, group.failback, group.exclusive) == (
        ("server1", "server2"), "auto", "manual", "off")
    exec1 = group.resource("exec1")
    assert exec1.activation == Recovery(0, 1, "none")
    assert exec1.deactivation == Recovery(0, 0, "stop_cluster_service_and_shutdown")
    assert exec1.params["mode"] == "sync" and exec1.params["timeout_start"] == 1800
    disk1 = group.resource("disk1")
    assert disk1.params["fs"] == "ext4" and disk1.params["umount"]["retry"] == 3
    assert "activation" not in disk1.params and "type" not in disk1.params
    mg = config.group("ManagementGroup")
    assert (mg.servers, mg.start, mg.failback, mg.exclusive) == (
        ("server2", "server1"), "manual", "auto", "normal")
    assert config.resource("ManagementIP")[0] is mg
    assert [(m.name, m.type, m.target) for m in config.monitors] == [
        ("userw", "userw", None), ("fipw1", "fipw", "fip1"), ("fipw2", "fipw", "ManagementIP")]
    with pytest.raises(KeyError, match="group 'nope' is not in cluster"):
        config.group("nope")
    with pytest.raises(KeyError, match="resource 'nope'"):
        config.resource("nope")


def test_default_dependency_order(tmp_path: Path) -> None:
    group = load_config(write(tmp_path, FULL)).group("failover1")
    assert group.resource("fip1").depends == ()
    assert group.resource("disk1").depends == ("fip1",)
    assert group.resource("exec1").depends == ("disk1", "fip1")
    assert group.activation_order() == ["fip1", "disk1", "exec1"]
    assert group.deactivation_order() == ["exec1", "disk1", "fip1"]


def test_explicit_depends_replace_the_default(tmp_path: Path) -> None:
    group = load_config(write(tmp_path, """\
groups:
  g:
    resources:
      exec1: {type: exec, depends: []}
      fip1: {type: fip, ip: 198.18.0.12, depends: [exec2]}
      exec2: {type: exec, depends: []}
""")).group("g")
    assert group.resource("exec1").depends == ()
    assert group.activation_order() == ["exec1", "exec2", "fip1"]


def test_cycle_is_named(tmp_path: Path) -> None:
    found = errors(tmp_path, """\
groups:
  g:
    resources:
      a: {type: dummy, depends: [b]}
      b: {type: dummy, depends: [c]}
      c: {type: dummy, depends: [a]}
""")
    assert found == ["groups.g.resources.a: dependency cycle: a -> b -> c -> a (clp.conf:14)"]


def test_unknown_depends_and_duplicates(tmp_path: Path) -> None:
    found = errors(tmp_path, """\
groups:
  g1:
    servers: [server1, server3, server1]
    resources:
      r1: {type: dummy, depends: [r9]}
      f1: {type: fip, ip: 198.18.0.12}
      f2: {type: fip, ip: 198.18.0.1}
      d1: {type: disk, device: /dev/sdb1, mount_point: /mnt/d}
  g2:
    resources:
      r1: {type: dummy}
      f3: {type: fip, ip: 198.18.0.12}
      d2: {type: disk, device: /dev/sdc1, mount_point: /mnt/d/}
  ../bad:
    resources:
      a/b: {type: dummy}
""")
    text = "\n".join(found)
    assert "groups.g1.servers[1]: server 'server3' is not defined in servers" in text
    assert "groups.g1.servers[2]: server 'server1' appears twice" in text
    assert "groups.g1.resources.r1.depends[0]: 'r9' is not a resource of group 'g1'" in text
    assert "groups.g1.resources.f2.ip: floating IP 198.18.0.1 is a server address" in text
    assert "groups.g2.resources.r1: resource name 'r1' is already used in group 'g1'" in text
    assert ("groups.g2.resources.f3.ip: floating IP 198.18.0.12 is already used at "
            "groups.g1.resources.f1.ip") in text
    assert "groups.g2.resources.d2.mount_point: mount point /mnt/d is already used" in text
    assert "groups.../bad: invalid group name '../bad'" in text
    assert "invalid resource name 'a/b'" in text
    assert all("(clp.conf:" in line for line in found)


def test_schema_errors(tmp_path: Path) -> None:
    found = errors(tmp_path, """\
groups:
  g:
    start: sometimes
    resources:
      f: {type: fip}
      x: {type: nosuch}
      e: {type: exec, activation: {final_action: explode}}
""")
    text = "\n".join(found)
    assert "groups.g.start: 'sometimes' is not one of: auto, manual" in text
    assert "groups.g.resources.f: required parameter 'ip' is missing" in text
    assert "unknown group resource type 'nosuch'" in text
    assert "groups.g.resources.e.activation.final_action: 'explode' is not one of" in text


def test_missing_and_unexecutable_scripts(tmp_path: Path) -> None:
    directory = write(tmp_path, "groups:\n  g:\n    resources:\n      exec1: {type: exec}\n",
                      scripts=False)
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    found = [str(i) for i in info.value.issues]
    assert len(found) == 2
    assert "scripts/g/exec1/start.sh does not exist; run `clpcfchk DIR --scripts`" in found[0]
    assert found[0].startswith("groups.g.resources.exec1: ") and "(clp.conf:14)" in found[0]
    (directory / "scripts" / "g" / "exec1").mkdir(parents=True)
    for name in ("start.sh", "stop.sh"):
        (directory / "scripts" / "g" / "exec1" / name).write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert all("is not executable" in str(i) for i in info.value.issues)


def test_scripts_option_creates_the_template(tmp_path: Path) -> None:
    directory = write(tmp_path, "groups:\n  g:\n    resources:\n      exec1: {type: exec}\n",
                      scripts=False)
    result = CliRunner().invoke(clpcfchk, [str(directory), "--scripts"])
    folder = directory / "scripts" / "g" / "exec1"
    assert result.output.splitlines()[:2] == [
        f"Created the script {folder / 'start.sh'} (mode 0755).",
        f"Created the script {folder / 'stop.sh'} (mode 0755).",
    ]
    assert result.exit_code == 0, result.output
    start = folder / "start.sh"
    assert stat.S_IMODE(start.stat().st_mode) == 0o755
    assert 'case "$CLP_EVENT" in' in start.read_text()
    env = {**os.environ, "CLP_EVENT": "START", "CLP_SERVER": "HOME"}
    out = subprocess.run([str(start)], env=env, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "NORMAL1" in out.stdout
    again = CliRunner().invoke(clpcfchk, [str(directory), "--scripts"])
    assert "Created" not in again.output  # an existing script is never overwritten
