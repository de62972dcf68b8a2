"""The installer's service-manager commands (SMF cannot run here) and the unit reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clp.platform.unitfile import UnitError, start_command
from tools import install_running
from tools import install_units as units

REPO = Path(__file__).resolve().parents[2]
MANIFEST = """<?xml version="1.0"?>
<!DOCTYPE service_bundle SYSTEM "/usr/share/lib/xml/dtd/service_bundle.dtd.1">
<service_bundle type="manifest" name="{n}">
  <service name="application/clusterpro/{n}" type="service" version="1">
    <exec_method type="method" name="start" exec="/opt/nec/clusterpro/bin/{n}"
                 timeout_seconds="60"/>
  </service>
</service_bundle>
"""


def manifests(tmp_path: Path, names: list[str]) -> list[units.Manifest]:
    found = []
    for n in names:
        (tmp_path / f"{n}.xml").write_text(MANIFEST.format(n=n))
        found.append(units.read_manifest(tmp_path / f"{n}.xml"))
    return found


def test_smf_imports_and_enables_in_the_seeds_start_order(tmp_path):
    ms = manifests(tmp_path, ["clusterpro", "clusterpro_trn", "clusterpro_evt"])
    cmds = units.smf_import_commands(ms, enable=True)
    assert [c[:2] for c in cmds[:3]] == [["svccfg", "import"]] * 3
    assert cmds[3:] == [["svcadm", "enable", f"svc:/application/clusterpro/{n}"]
                        for n in ("clusterpro_evt", "clusterpro_trn", "clusterpro")]
    assert all(c[0] == "svccfg" for c in units.smf_import_commands(ms, enable=False))


def test_smf_removal_disables_in_the_seeds_stop_order_before_deleting(tmp_path):
    ms = manifests(tmp_path, ["clusterpro_evt", "clusterpro_alertsync", "clusterpro",
                              "clusterpro_trn"])
    cmds = units.smf_remove_commands(ms)
    order = [c[-1].rsplit("/", 1)[-1] for c in cmds if c[:2] == ["svcadm", "disable"]]
    assert order == ["clusterpro_alertsync", "clusterpro", "clusterpro_trn", "clusterpro_evt"]
    assert cmds[:4] == [["svcadm", "disable", "-s", f"svc:/application/clusterpro/{n}"]
                        for n in order]
    assert [c[:2] for c in cmds[4:]] == [["svccfg", "delete"]] * 4


def test_systemd_enables_with_the_root_and_disables_in_stop_order(tmp_path):
    cmds = units.enable_commands(["clusterpro", "clusterpro_evt"], tmp_path)
    assert cmds == [["systemctl", f"--root={tmp_path}", "enable", f"{n}.service"]
                    for n in ("clusterpro_evt", "clusterpro")]
    cmds = units.disable_commands(["clusterpro_evt", "clusterpro_trn", "clusterpro"], tmp_path)
    assert [c[-1] for c in cmds] == ["clusterpro.service", "clusterpro_trn.service",
                                     "clusterpro_evt.service"]


def test_every_unit_renders_with_the_prefix_and_names_its_program():
    for path in sorted((REPO / "systemd").glob("*.service")):
        text = units.render(path.read_text(), "/srv/clp")
        cmd = start_command(text, path.name)
        assert cmd.argv == [f"/srv/clp/bin/{path.stem}"]
        assert cmd.environment == {"CLP_ROOT": "/srv/clp"}
        assert "/opt/nec" not in text


def test_a_unit_without_one_absolute_execstart_is_refused():
    with pytest.raises(UnitError, match="found 0"):
        start_command("[Service]\nType=simple\n")
    with pytest.raises(UnitError, match="absolute"):
        start_command("[Service]\nExecStart=clusterpro\n")
    cmd = start_command('[Service]\nEnvironment="A=1 2" B=3\nExecStart=-/x/y --a "b c"\n')
    assert cmd == (["/x/y", "--a", "b c"], {"A": "1 2", "B": "3"})
    assert cmd.shell_words() == ["env", "A=1 2", "B=3", "/x/y", "--a", "b c"]


def test_a_process_started_from_the_installation_is_found_and_the_system_python_is_not(tmp_path):
    venv_bin = tmp_path / "lib/python/bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    script = venv_bin / "clusterpro_evt"
    script.write_text(f"#!{venv_bin / 'python'}\nimport time\ntime.sleep(30)\n")
    script.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/clusterpro_evt").symlink_to("../lib/python/bin/clusterpro_evt")
    ours = subprocess.Popen([str(tmp_path / "bin/clusterpro_evt")])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        found = []
        for _ in range(50):  # until the child has exec'd its script
            found = install_running.processes(tmp_path)
            if found:
                break
            subprocess.run(["sleep", "0.1"])
        assert found == [install_running.Running(f"clusterpro_evt (pid {ours.pid})", ours.pid)]
        assert install_running.terminate([ours.pid], wait=5) == []
    finally:
        for p in (ours, other):
            p.kill()
            p.wait()
