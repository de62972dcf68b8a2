"""The service manager's side of an installation: systemd units on Linux, SMF on Solaris.

systemd: each unit of ``systemd/`` is written with the install prefix in place of the product's
``/opt/nec/clusterpro`` into the unit directory (under ``--root`` for a fresh root) and enabled,
if its program is installed. A service whose program this version does not have
(``clusterpro_webmgr`` today) gets no unit in the unit directory, since starting it could only
fail, and is reported by name.

SMF: each manifest of ``smf/`` (prefix substituted, kept in ``share/smf``) is imported with
``svccfg import``. ``svcadm enable`` starts a service at once (SMF has no "enabled at next boot"),
so the services are enabled, in the seed's start order, only when ``etc/clp.conf`` is there; on a
fresh installation the commands are printed as a next step instead. Uninstalling disables them in
the seed's stop order (``svcadm disable -s``) and deletes them (``svccfg delete``).

Every command is built by a function that returns it, so the order and the arguments are tested
where the commands cannot run.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from clp.paths import DEFAULT_ROOT
from clp.platform.services import SERVICES, STOP_ORDER
from clp.platform.unitfile import UnitError, start_command

UNIT_DIR = "/etc/systemd/system"


class InstallError(Exception):
    pass


def render(text: str, prefix: str) -> str:
    """A unit or manifest with the install prefix instead of the product's default."""
    return text.replace(DEFAULT_ROOT, prefix.rstrip("/") or "/")


def program_of(unit_text: str, name: str) -> str:
    try:
        return start_command(unit_text, name).argv[0]
    except UnitError as e:
        raise InstallError(str(e)) from None


def by_start_order(names: Iterable[str]) -> list[str]:
    """Our five in the seed's start order; anything else after them, by name."""
    names = set(names)
    return [n for n in SERVICES if n in names] + sorted(names - set(SERVICES))


# systemd

def systemctl(args: list[str], root: Path | None) -> list[str]:
    """``systemctl [--root=DIR] ARGS``; without a root, the machine's own (offline when systemd
    is not its init, as in a chroot)."""
    return ["systemctl", *([f"--root={root}"] if root is not None else []), *args]


def systemd_running(root: Path | None) -> bool:
    return root is None and Path("/run/systemd/system").is_dir()


def enable_commands(names: list[str], root: Path | None) -> list[list[str]]:
    cmds = [systemctl(["daemon-reload"], None)] if systemd_running(root) else []
    return cmds + [systemctl(["enable", f"{n}.service"], root) for n in by_start_order(names)]


def disable_commands(names: list[str], root: Path | None) -> list[list[str]]:
    """Stop (on a live systemd) and disable, in the seed's stop order."""
    order = [n for n in STOP_ORDER if n in names] + sorted(set(names) - set(STOP_ORDER))
    cmds = []
    for n in order:
        if systemd_running(root):
            cmds.append(systemctl(["stop", f"{n}.service"], None))
        cmds.append(systemctl(["disable", f"{n}.service"], root))
    return cmds


def run(cmd: list[str], what: str) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InstallError(f"{what}: {cmd[0]} is not installed") from None
    if r.returncode != 0:
        raise InstallError(f"{what}: '{' '.join(cmd)}' failed ({r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()}")


# SMF

class Manifest(NamedTuple):
    path: Path
    fmri: str  # "svc:/application/clusterpro/clusterpro_evt"
    service: str  # the clp service it runs: "clusterpro_evt"


def read_manifest(path: Path) -> Manifest:
    """The service an SMF manifest declares; its clp name is the FMRI's last component."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InstallError(f"{path}: not a readable SMF manifest ({e})") from None
    svc = root.find("service")
    if svc is None or not svc.get("name"):
        raise InstallError(f"{path}: no <service name=...> in it")
    name = svc.get("name", "")
    return Manifest(path, f"svc:/{name}", name.rsplit("/", 1)[-1])


def smf_present() -> bool:
    return bool(shutil.which("svccfg") and shutil.which("svcadm"))


def smf_import_commands(manifests: list[Manifest], enable: bool) -> list[list[str]]:
    order = {m.service: m for m in manifests}
    ordered = [order[n] for n in by_start_order(order)]
    cmds = [["svccfg", "import", str(m.path)] for m in ordered]
    if enable:
        cmds += [["svcadm", "enable", m.fmri] for m in ordered]
    return cmds


def smf_remove_commands(manifests: list[Manifest]) -> list[list[str]]:
    order = {m.service: m for m in manifests}
    ordered = [order[n] for n in STOP_ORDER if n in order]
    ordered += [order[n] for n in sorted(set(order) - set(STOP_ORDER))]
    return ([["svcadm", "disable", "-s", m.fmri] for m in ordered]
            + [["svccfg", "delete", m.fmri] for m in ordered])
