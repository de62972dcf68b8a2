"""``make install`` / ``make uninstall``: clp on a server, in the product's install root.

Why a Python installer behind make rather than a Debian package: the product installs under one
prefix (``/opt/nec/clusterpro``, like the seed's pkgadd) on Debian and on Solaris alike, with a
private virtual environment (its dependencies never meet the system's Python packages); a .deb
would cover Debian only and still have to build that environment in its maintainer scripts. This
file uses nothing but the standard library and the repository's own stdlib-only modules (the
service order, the key writer, the unit reader), so it runs before clp is installed anywhere.

Layout under the prefix::

    bin/           every console script, a link into lib/python/bin
    lib/python/    the private venv: clp from a wheel of this repository (cffi modules built)
    share/         systemd/ (units as installed), smf/ and mib/ when the repository has them,
                   clp/installed.json (what this installation enabled, read by uninstall)
    etc/ log/ run/ work/   the operator's and the services' data (clp.paths.InstallRoot)

``install`` refuses while anything of the installation at that prefix runs, unless forced; an
upgrade replaces bin/, lib/ and share/ and never touches etc/ or log/; the cluster key is created
only if missing. ``uninstall`` stops and disables the services in the seed's stop order and keeps
etc/ and log/ unless purging. See docs/install.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clp.keys import write_new_key
from clp.paths import DEFAULT_ROOT, InstallRoot
from clp.platform.services import SERVICES, STOP_ORDER
from tools import install_running as running
from tools import install_units as units
from tools.install_units import InstallError

REPO = Path(__file__).resolve().parent.parent
VENV = "lib/python"
RECORD = "share/clp/installed.json"
SHARED = ("systemd", "smf", "mib")  # shared under share/ when the repository has them
CODE = ("bin", "lib", "share")  # replaced by an upgrade, removed by uninstall
NOT_COPIED = {".git", ".venv", "build", "dist", "tests", "benchmarks", "docs", "__pycache__",
              ".pytest_cache", ".ruff_cache", ".hypothesis"}
PIP_TIMEOUT = 900
PREFIX_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
KEPT_WORK = "work/alert"  # alerts waiting for mail or trap, and those given up: kept like log/


class Layout:
    """Where an installation is: ``prefix`` as its programs see it, ``target`` where this
    machine writes it (``destdir`` + prefix), and the root holding the unit directory."""

    def __init__(self, prefix: str, destdir: str | None) -> None:
        if not PREFIX_RE.match(prefix):  # written into unit files (where % expands) and XML
            raise InstallError(f"PREFIX must be an absolute path of letters, digits and . _ - /, "
                               f"not {prefix!r}")
        self.prefix = prefix.rstrip("/") or "/"
        self.destdir = Path(destdir).resolve() if destdir else None
        self.target = (self.destdir or Path("/")) / self.prefix.lstrip("/")

    def host(self, path: str) -> Path:
        """A path of the installed system, as seen from here."""
        return (self.destdir or Path("/")) / path.lstrip("/")

    @property
    def unit_dir(self) -> Path:
        return self.host(units.UNIT_DIR)


def _pip(venv: Path, args: list[str], what: str) -> None:
    try:
        r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args],
                           capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise InstallError(f"{what}: pip did not finish in {PIP_TIMEOUT} s") from None
    if r.returncode != 0:
        raise InstallError(f"{what} failed:\n{(r.stderr or r.stdout)[-3000:]}")


def make_venv(python: str, path: Path) -> None:
    r = subprocess.run([python, "-m", "venv", str(path)], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise InstallError(f"cannot make a venv with {python} (on Debian: apt-get install "
                           f"python3-venv):\n{(r.stderr or r.stdout).strip()}")


def build_wheels(python: str, out: Path) -> None:
    """Wheels of clp (its cffi modules compiled) and of every dependency, into ``out``: from a
    clean copy of the repository, so nothing of a developer's build/ gets in. Uses pip's
    configured index for the dependencies and the build requirements."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clp-wheels.") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(REPO, src, ignore=lambda d, names: [
            n for n in names if n in NOT_COPIED or n.endswith((".egg-info", ".so"))])
        make_venv(python, Path(tmp) / "venv")
        _pip(Path(tmp) / "venv", ["wheel", "-q", "--wheel-dir", str(out), str(src)],
             "building the wheels (needs a C compiler, python3-dev and libffi-dev)")


def _console_scripts(venv: Path) -> list[str]:
    found = sorted(venv.glob("lib/python3*/site-packages/clp-*.dist-info/entry_points.txt"))
    if not found:
        raise InstallError(f"clp is not installed in {venv} (no clp-*.dist-info)")
    names, section = [], None
    for line in found[0].read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[console_scripts]" and "=" in line:
            names.append(line.split("=", 1)[0].strip())
    return names


def _version(venv: Path) -> str:
    found = sorted(venv.glob("lib/python3*/site-packages/clp-*.dist-info"))
    return found[0].name.removeprefix("clp-").removesuffix(".dist-info") if found else "?"


def _relocate(venv: Path, built_at: Path, final: Path) -> None:
    """A venv records its own path (script shebangs, activate, pyvenv.cfg): make it the path the
    installed system sees, not the staging directory it was built in."""
    old, new = str(built_at).encode(), str(final).encode()
    for path in [*(venv / "bin").iterdir(), venv / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))


def install_code(lay: Layout, python: str, wheels: Path) -> tuple[str, list[str]]:
    """The venv at lib/python (built beside it, swapped in once complete) and bin/ links."""
    venv = lay.target / VENV
    staged = venv.with_name("python.new")
    shutil.rmtree(staged, ignore_errors=True)
    staged.parent.mkdir(parents=True, exist_ok=True)
    make_venv(python, staged)
    _pip(staged, ["install", "-q", "--no-index", "--no-cache-dir", "--find-links", str(wheels),
                  "clp"], f"installing clp from {wheels}")
    _relocate(staged, staged, Path(lay.prefix) / VENV)
    shutil.rmtree(venv, ignore_errors=True)
    staged.rename(venv)
    scripts = _console_scripts(venv)
    bindir = lay.target / "bin"
    shutil.rmtree(bindir, ignore_errors=True)
    bindir.mkdir(mode=0o755)
    for name in scripts:
        (bindir / name).symlink_to(Path("..") / VENV / "bin" / name)
    return _version(venv), scripts


def share(lay: Layout) -> None:
    """systemd/, smf/, mib/ of the repository under share/, the prefix written into units and
    manifests."""
    base = lay.target / "share"
    shutil.rmtree(base, ignore_errors=True)
    for name in SHARED:
        src = REPO / name
        if not src.is_dir():
            continue
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            dest = base / name / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in (".service", ".xml", ".sh"):
                dest.write_text(units.render(path.read_text(), lay.prefix))
                dest.chmod(path.stat().st_mode & 0o777)
            else:
                shutil.copy2(path, dest)


def make_data_dirs(lay: Layout) -> str:
    """etc/ log/ run/ work/ and the cluster key, only if missing: an operator's key and clp.conf
    are never touched."""
    root = InstallRoot(lay.target)
    # etc/ holds the cluster key and clp.conf (SMTP and SNMPv3 secrets): root's only; a
    # directory that exists keeps the mode its operator gave it
    for path, mode in ((root.config_dir, 0o700), (root.log_dir, 0o755),
                       (root.work_dir, 0o755), (root.run_dir, 0o700)):
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(mode)
    root.run_dir.chmod(0o700)
    if root.key_file.exists() or root.key_file.is_symlink():
        return f"kept {lay.prefix}/etc/cluster.key"
    write_new_key(root.key_file)
    return f"created {lay.prefix}/etc/cluster.key (mode 0600)"


class Enabled:
    """What the service manager was told: ``enabled`` start at boot, ``waiting`` are registered
    but wait for the operator (SMF without clp.conf), ``missing`` have no program here."""

    def __init__(self, manager: str, enabled: list[str], waiting: list[str],
                 missing: list[str], note: str = "") -> None:
        self.manager, self.enabled, self.waiting = manager, enabled, waiting
        self.missing, self.note = missing, note


def install_systemd(lay: Layout) -> Enabled:
    """Units whose program is installed, written and enabled."""
    written, missing = [], []
    lay.unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in sorted((lay.target / "share" / "systemd").glob("*.service")):
        text = unit.read_text()
        if lay.host(units.program_of(text, unit.name)).exists():
            (lay.unit_dir / unit.name).write_text(text)
            os.chmod(lay.unit_dir / unit.name, 0o644)
            written.append(unit.stem)
        else:
            (lay.unit_dir / unit.name).unlink(missing_ok=True)  # an older version's
            missing.append(unit.stem)
    written, missing = units.by_start_order(written), units.by_start_order(missing)
    if not shutil.which("systemctl"):
        return Enabled("systemd", [], written, missing,
                       f"systemctl not found: units written to {lay.unit_dir}, not enabled")
    for cmd in units.enable_commands(written, lay.destdir):
        units.run(cmd, "enabling the services")
    return Enabled("systemd", written, [], missing)


def install_smf(lay: Layout) -> Enabled:
    manifests = [units.read_manifest(p) for p in sorted((lay.target / "share/smf").glob("*.xml"))]
    present = [m for m in manifests if (lay.target / "bin" / m.service).exists()]
    missing = units.by_start_order(m.service for m in manifests if m not in present)
    enable = InstallRoot(lay.target).config_file.exists()
    for cmd in units.smf_import_commands(present, enable):
        units.run(cmd, "importing the SMF manifests")
    names = units.by_start_order(m.service for m in present)
    if enable:
        return Enabled("SMF", names, [], missing)
    return Enabled("SMF", [], names, missing, "svcadm enable starts a service at once: "
                   "enabled once etc/clp.conf is there (next steps)")


def register_services(lay: Layout) -> Enabled:
    if platform.system() == "SunOS":
        return install_smf(lay)
    return install_systemd(lay)


def refuse_if_running(lay: Layout, force: bool) -> None:
    found = what_runs(lay)
    if not found:
        return
    names = ", ".join(r.what for r in found)
    if force:
        print(f"warning: installing over a running clp ({names}); the running services keep "
              f"the old code until they are restarted")
        return
    raise InstallError(
        f"clp at {lay.prefix} is running: {names}.\n"
        f"Stop it first (clpcl -t -a, then its services in this order: "
        f"{', '.join(STOP_ORDER)}), or install over it with FORCE=1 (--force).")


def what_runs(lay: Layout) -> list[running.Running]:
    """Processes and supervisor of the installation; the service manager's view only for the
    machine's own root (a DESTDIR is not running under this machine's systemd)."""
    own = lay.destdir is None
    fmris = _recorded(lay).get("smf", []) if own else []
    return running.what_runs(lay.target, SERVICES if own and _ours(lay) else (), fmris)


def _ours(lay: Layout) -> bool:
    """The units in the unit directory start programs of this prefix (not another one's)."""
    unit = lay.unit_dir / "clusterpro.service"
    try:
        return units.program_of(unit.read_text(), unit.name).startswith(lay.prefix + "/")
    except (OSError, InstallError):
        return False


def _recorded(lay: Layout) -> dict:
    try:
        return json.loads((lay.target / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def install(lay: Layout, python: str, wheels: Path | None, force: bool) -> None:
    refuse_if_running(lay, force)
    upgrade = (lay.target / VENV).exists()
    if wheels is None:
        with tempfile.TemporaryDirectory(prefix="clp-wheels.") as tmp:
            print(f"building clp and its dependencies with {python} ...")
            build_wheels(python, Path(tmp))
            version, scripts = install_code(lay, python, Path(tmp))
    else:
        version, scripts = install_code(lay, python, wheels)
    share(lay)
    key = make_data_dirs(lay)
    enabled = register_services(lay)
    record = {"version": version, "prefix": lay.prefix, "python": python,
              "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "manager": enabled.manager,
              "enabled": enabled.enabled, "waiting": enabled.waiting,
              "missing": enabled.missing, "unit_dir": units.UNIT_DIR, "scripts": scripts}
    if enabled.manager == "SMF":
        record["smf"] = [units.read_manifest(p).fmri
                         for p in sorted((lay.target / "share/smf").glob("*.xml"))]
    (lay.target / RECORD).parent.mkdir(parents=True, exist_ok=True)
    (lay.target / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    print(report(lay, version, upgrade, key, enabled))


def report(lay: Layout, version: str, upgrade: bool, key: str, e: Enabled) -> str:
    p = lay.prefix
    where = f"{p} (under {lay.destdir})" if lay.destdir else p
    lines = [f"clp {version} is {'upgraded' if upgrade else 'installed'} in {where}; "
             f"commands in {p}/bin.",
             f"  {key}; etc/ and log/ are never overwritten by an installation."]
    if e.enabled:
        lines.append(f"  enabled ({e.manager}): {', '.join(e.enabled)}")
    if e.waiting:
        lines.append(f"  not enabled yet: {', '.join(e.waiting)} ({e.note})")
    for name in e.missing:
        lines.append(f"  not enabled: {name} (its program is not part of this version)")
    ready = e.enabled + e.waiting
    start = (f"systemctl start {' '.join(ready)}" if e.manager == "systemd"
             else "; ".join(f"svcadm enable -s {n}" for n in ready))
    lines += ["Next steps:",
              f"  1. Put the cluster configuration in {p}/etc/ (clp.conf, scripts/) and check "
              f"it: {p}/bin/clpcfchk {p}/etc",
              f"  2. Every server of the cluster needs the same key: copy {p}/etc/cluster.key "
              f"of the first server to the others (mode 0600).",
              f"  3. Start the services in the seed's order ({', '.join(SERVICES)}): {start}",
              f"  4. {p}/bin/clpstat shows the cluster; 'make uninstall' stops and removes clp."]
    return "\n".join(lines)


def stop_supervised(lay: Layout, names: list[str]) -> None:
    """Where clpsupervise runs the services (no systemd): each stopped through it, in the seed's
    stop order (clp.platform.services, the seam the commands use), then clpsupervise itself."""
    if not running.supervisor_answers(lay.target):
        return
    from clp.platform.services import ServiceError, service_manager

    manager = service_manager(InstallRoot(lay.target))
    for name in (n for n in STOP_ORDER if n in names):
        try:
            manager.stop(name)
            print(f"stopped {name}")
        except (ServiceError, OSError) as e:
            print(f"  {name}: {e}")
    supervisors = [r.pid for r in running.processes(lay.target)
                   if r.pid is not None and r.what.startswith("clpsupervise ")]
    if running.terminate(supervisors):
        raise InstallError("clpsupervise did not stop within 30 s")


def unregister_services(lay: Layout, names: list[str], fmris: list[str]) -> None:
    """Stop (live service manager) and disable in the seed's stop order; remove the units."""
    if fmris and units.smf_present():
        manifests = [units.Manifest(Path(), f, f.rsplit("/", 1)[-1]) for f in fmris]
        for cmd in units.smf_remove_commands(manifests):
            units.run(cmd, "removing the SMF services")
    present = [n for n in SERVICES if (lay.unit_dir / f"{n}.service").exists()]
    if not (present and _ours(lay)):  # no units, or another prefix's: not ours to remove
        return
    if shutil.which("systemctl"):
        for cmd in units.disable_commands(present, lay.destdir):
            units.run(cmd, "stopping and disabling the services")
            print(" ".join(cmd))
    for n in present:
        (lay.unit_dir / f"{n}.service").unlink()
    if units.systemd_running(lay.destdir):
        units.run(units.systemctl(["daemon-reload"], None), "reloading systemd")


def uninstall(lay: Layout, purge: bool) -> None:
    if not (lay.target / VENV).exists() and not (lay.target / RECORD).exists():
        raise InstallError(f"no clp installation at {lay.prefix}"
                           + (f" under {lay.destdir}" if lay.destdir else ""))
    rec = _recorded(lay)
    names = rec.get("enabled", []) + rec.get("waiting", []) or list(SERVICES)
    stop_supervised(lay, names)
    unregister_services(lay, names, rec.get("smf", []))
    left = what_runs(lay)
    if left:
        raise InstallError(f"CLUSTERPRO is running: {', '.join(r.what for r in left)}.\n"
                           f"Stop them and run 'make uninstall' again.")
    for name in CODE:
        shutil.rmtree(lay.target / name, ignore_errors=True)
    _remove_runtime(lay, keep=not purge)
    kept = [d for d in ("etc", "log", KEPT_WORK) if (lay.target / d).exists()]
    if purge:
        for d in kept:
            shutil.rmtree(lay.target / d)
        if lay.target.exists() and not any(lay.target.iterdir()):
            lay.target.rmdir()
        print(f"clp is removed from {lay.prefix}, its configuration and logs too (PURGE)")
    else:
        print(f"clp is removed from {lay.prefix}; kept "
              + (", ".join(f"{lay.prefix}/{d}" for d in kept) or "nothing")
              + " (clp.conf, scripts, cluster.key, logs, alerts not yet reported): "
              "'make uninstall PURGE=1' removes them")


def _remove_runtime(lay: Layout, keep: bool) -> None:
    """run/ and work/, but for the alert spool unless purging: an alert waiting for a mail
    server must not vanish with the programs."""
    shutil.rmtree(lay.target / "run", ignore_errors=True)
    work = lay.target / "work"
    if not keep or not (lay.target / KEPT_WORK).exists():
        shutil.rmtree(work, ignore_errors=True)
        return
    for entry in work.iterdir() if work.is_dir() else ():
        if entry.name != Path(KEPT_WORK).name:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def default_python() -> str:
    """The system's python3 when there is one: the installation must not depend on a
    developer's interpreter (pyenv, a venv) that may be gone tomorrow."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m tools.install", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("install", "uninstall"):
        s = sub.add_parser(name)
        s.add_argument("--prefix", default=DEFAULT_ROOT)
        s.add_argument("--destdir", default=None, help="a root to install into (a fresh root, "
                       "a package's staging directory)")
    i = sub.choices["install"]
    i.add_argument("--force", action="store_true", help="install over a running installation")
    i.add_argument("--wheels", type=Path, help="a directory of wheels (make wheels) to install "
                   "from without an index; else they are built now")
    i.add_argument("--python", default=default_python(), help="the interpreter of the venv")
    sub.choices["uninstall"].add_argument("--purge", action="store_true",
                                          help="remove etc/ and log/ too")
    w = sub.add_parser("wheels", help="build the wheels of clp and its dependencies")
    w.add_argument("--out", type=Path, default=REPO / "build" / "wheels")
    w.add_argument("--python", default=default_python())
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    try:
        if opts.command == "wheels":
            build_wheels(opts.python, opts.out)
            print(f"wheels in {opts.out}: make install WHEELS={opts.out}")
            return 0
        lay = Layout(opts.prefix, opts.destdir)
        if opts.command == "install":
            install(lay, opts.python, opts.wheels and opts.wheels.resolve(), opts.force)
        else:
            uninstall(lay, opts.purge)
    except InstallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
