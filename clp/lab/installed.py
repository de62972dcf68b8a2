"""Lab servers that run an installed tree (``clplab up --installed DIR``), not the repository.

``DIR`` is an installation made by ``make install`` for the product's prefix (with ``DESTDIR`` it
may sit anywhere on the host). Each server's init binds its ``bin/``, ``lib/`` and ``share/``
read-only over the server's own install root at ``/opt/nec/clusterpro``, so the server has the
installed code and its own data (etc/ log/ run/ work/). ``clpsupervise`` of the installation runs
the services with the command lines and environment of the installed systemd units: what the lab
proves is what systemd would start.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from clp.lab.netns import LabError
from clp.paths import DEFAULT_ROOT
from clp.platform.services import SERVICES
from clp.platform.unitfile import UnitError, start_command

CODE_DIRS = ("bin", "lib", "share")
RECORD = "share/clp/installed.json"  # tools/install.py RECORD


def check(install: Path) -> Path:
    """The installation's host path, once it is known to be one made for the product's path."""
    install = install.resolve()
    try:
        record = json.loads((install / RECORD).read_text())
    except (OSError, ValueError) as e:
        raise LabError(f"{install} is not a clp installation (no readable {RECORD}: {e})") from None
    if record.get("prefix") != DEFAULT_ROOT:
        raise LabError(f"{install} was installed for {record.get('prefix')}; lab servers run clp "
                       f"at {DEFAULT_ROOT} (make install DESTDIR=... with the default PREFIX)")
    missing = [d for d in CODE_DIRS if not (install / d).is_dir()]
    if missing:
        raise LabError(f"{install}: no {', '.join(missing)} in it")
    return install


def service_specs(install: Path) -> list[str]:
    """``NAME=COMMAND`` for clpsupervise, from each installed unit whose program is there, in
    the seed's start order."""
    specs = {}
    for unit in sorted((install / "share" / "systemd").glob("*.service")):
        try:
            command = start_command(unit.read_text(), unit.name)
        except UnitError as e:
            raise LabError(str(e)) from None
        program = command.argv[0]
        if not program.startswith(DEFAULT_ROOT + "/"):
            raise LabError(f"{unit}: ExecStart {program} is outside {DEFAULT_ROOT}")
        if (install / program.removeprefix(DEFAULT_ROOT + "/")).exists():
            specs[unit.stem] = shlex.join(command.shell_words())
    if not specs:
        raise LabError(f"{install}: no installed unit has its program installed")
    order = [n for n in SERVICES if n in specs] + sorted(set(specs) - set(SERVICES))
    return [f"{name}={specs[name]}" for name in order]
