"""``make install`` / ``make uninstall`` on a fresh root, and a lab running the installed tree.

The wheels are built once for the session (``wheels`` in conftest.py); every installation then
runs with ``--no-index`` from them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clp.lab import Lab
from clp.paths import DEFAULT_ROOT
from clp.platform.services import SERVICES
from tests.integration.freshroot import FreshRoot
from tests.integration.labutil import leftovers, status, wait_all_online, wait_for
from tools import install_running

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="chroot and the lab need root")]

REPO = Path(__file__).resolve().parents[2]
P = DEFAULT_ROOT
# the services with a program in this version (clusterpro_webmgr comes with the WebUI)
INSTALLED = ("clusterpro_evt", "clusterpro_trn", "clusterpro", "clusterpro_alertsync")
LAB = "inst"


@pytest.fixture
def fresh(tmp_path: Path, wheels: Path) -> Iterator[FreshRoot]:
    root = FreshRoot(tmp_path, REPO, wheels)
    try:
        yield root
    finally:
        root.close()
        for r in install_running.processes(root.path(P)):  # a failed test's services
            with contextlib.suppress(ProcessLookupError):
                os.kill(r.pid, 9)


def make(root: FreshRoot, target: str, *args: str, ok: bool = True) -> str:
    r = root.run(f"make -s -C /src {target} WHEELS=/wheels {' '.join(args)}")
    out = r.stdout + r.stderr
    assert (r.returncode == 0) == ok, f"make {target} {args}: rc {r.returncode}\n{out}"
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def wants(root: FreshRoot) -> set[str]:
    d = root.path("/etc/systemd/system/multi-user.target.wants")
    return {p.name for p in d.iterdir()} if d.exists() else set()


def test_install_on_a_fresh_root_keeps_the_operators_files_and_refuses_a_running_one(fresh):
    out = make(fresh, "install")
    assert "not enabled: clusterpro_webmgr (its program is not part of this version)" in out
    inst = fresh.path(P)
    assert {mode(inst / d) for d in ("log", "work", "bin", "lib", "share")} == {0o755}
    assert mode(inst / "etc") == 0o700  # clp.conf may hold SMTP and SNMPv3 secrets
    assert mode(inst / "run") == 0o700
    assert mode(inst / "etc/cluster.key") == 0o600
    for name in ("clpstat", "clpcfchk", "clpcl", "clusterpro", "clpsupervise"):
        assert (inst / "bin" / name).is_symlink(), name
    for name in INSTALLED:
        unit = fresh.path(f"/etc/systemd/system/{name}.service").read_text()
        assert f"ExecStart={P}/bin/{name}\n" in unit and f"CLP_ROOT={P}\n" in unit
    assert wants(fresh) == {f"{n}.service" for n in INSTALLED}
    assert not fresh.path("/etc/systemd/system/clusterpro_webmgr.service").exists()
    assert (inst / "share/systemd/clusterpro_webmgr.service").exists()  # shared, not enabled

    r = fresh.run(f"{P}/bin/clpstat --help")
    assert r.returncode == 0 and "Usage" in r.stdout, r.stderr
    shutil.copytree(REPO / "clp/samples/lab2", inst / "etc", dirs_exist_ok=True)
    r = fresh.run(f"{P}/bin/clpcfchk {P}/etc")
    assert r.returncode == 0, r.stdout + r.stderr
    r = fresh.run(f"{P}/bin/clpcfchk /tmp")  # and it fails where it must
    assert r.returncode != 0 and "clp.conf" in r.stdout + r.stderr

    key, conf = (inst / "etc/cluster.key").read_bytes(), (inst / "etc/clp.conf").read_bytes()
    (inst / "log/keep.log").write_text("the operator's log\n")
    out = make(fresh, "install")
    assert "upgraded" in out and "kept /opt/nec/clusterpro/etc/cluster.key" in out
    assert (inst / "etc/cluster.key").read_bytes() == key
    assert (inst / "etc/clp.conf").read_bytes() == conf
    assert (inst / "log/keep.log").exists()

    # the installed supervisor runs clusterpro_evt with the unit's command: that is running
    fresh.start(f"exec {P}/bin/clpsupervise 'clusterpro_evt=env CLP_ROOT={P} "
                f"{P}/bin/clusterpro_evt'", CLP_ROOT=P)
    wait_for("clusterpro_evt to run", lambda: any(
        r.what.startswith("clusterpro_evt") for r in install_running.processes(inst)), 40)
    out = make(fresh, "install", ok=False)
    assert f"clp at {P} is running" in out and "clusterpro_evt (pid" in out, out
    assert "FORCE=1" in out
    out = make(fresh, "install", "FORCE=1")
    assert "installing over a running clp" in out
    assert install_running.processes(inst), "FORCE must not stop the services"

    # uninstall stops them (through clpsupervise), removes the code, keeps etc/, log/ and the
    # alerts still waiting for a mail or a trap
    waiting = inst / "work/alert/outbox/0001-waiting.json"
    waiting.parent.mkdir(parents=True, exist_ok=True)
    waiting.write_text("{}")
    (inst / "work/snmp").mkdir(exist_ok=True)
    out = make(fresh, "uninstall")
    assert "stopped clusterpro_evt" in out, out
    assert install_running.processes(inst) == []
    assert sorted(p.name for p in inst.iterdir()) == ["etc", "log", "work"]
    assert [p.name for p in (inst / "work").iterdir()] == ["alert"] and waiting.exists()
    assert (inst / "etc/cluster.key").read_bytes() == key
    assert f"kept {P}/etc, {P}/log, {P}/work/alert" in out
    assert wants(fresh) == set()
    assert not any(fresh.path(f"/etc/systemd/system/{n}.service").exists() for n in SERVICES)

    make(fresh, "install")
    assert (inst / "etc/cluster.key").read_bytes() == key  # a reinstall keeps it too
    out = make(fresh, "uninstall", "PURGE=1")
    assert not inst.exists() and "PURGE" in out


def test_uninstall_refuses_while_a_program_of_the_installation_still_runs(fresh):
    make(fresh, "install")
    fresh.start(f"exec {P}/bin/clusterpro_evt", CLP_ROOT=P)  # no supervisor, no systemd
    inst = fresh.path(P)
    wait_for("clusterpro_evt to run", lambda: install_running.processes(inst), 40)
    out = make(fresh, "uninstall", ok=False)
    assert "error: CLUSTERPRO is running: clusterpro_evt (pid" in out, out
    assert (inst / "bin/clpstat").exists()  # nothing removed


@pytest.fixture
def installed_lab(tmp_path: Path, wheels: Path) -> Iterator[tuple[Lab, Path]]:
    dest = tmp_path / "dest"
    r = subprocess.run([sys.executable, "-m", "tools.install", "install", "--destdir", str(dest),
                        "--wheels", str(wheels)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    inst = dest / P.lstrip("/")
    Lab.cleanup_all(LAB)
    try:
        yield Lab.up(name=LAB, n=2, config_dir=REPO / "clp/samples/lab2", installed_tree=inst), inst
    finally:
        Lab.cleanup_all(LAB)
        assert leftovers(LAB) == []


def test_a_lab_runs_the_installed_services_with_the_units_commands(installed_lab):
    lab, inst = installed_lab
    wait_all_online(lab, timeout=60)
    ps = lab.exec("server1", ["ps", "-eo", "args"]).stdout
    for name in INSTALLED:  # started as the unit says, from the installation's code
        assert f"{P}/lib/python/bin/python {P}/bin/{name}\n" in ps, ps
    assert not [a for a in ps.splitlines() if str(REPO) in a and "clp.lab.init" not in a], ps
    wait_for("ManagementGroup to run", lambda: status(lab, "server1")["groups"][
        "ManagementGroup"]["state"] == "Online", 60)
    r = lab.exec("server2", [f"{P}/bin/clpstat"])
    assert r.returncode == 0 and "ManagementGroup" in r.stdout, r.stderr
    assert lab.exec("server1", ["touch", f"{P}/bin/x"]).returncode != 0  # code is read-only
    # the host's installer sees the lab's servers as that installation running
    assert {r.what.split()[0] for r in install_running.processes(inst)} >= set(INSTALLED)
    started = time.monotonic()
    lab.down()
    assert install_running.processes(inst) == [] and time.monotonic() - started < 30
