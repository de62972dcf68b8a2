"""The default start.sh / stop.sh of an exec resource, as the product creates them.

``clpcfchk DIR --scripts`` writes them for every exec resource that lacks one, so a new resource
starts from the product's skeleton (one branch per CLP_EVENT) rather than from an empty file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clp.config.group_check import exec_scripts
from clp.config.issues import CONFIG_FILE, ConfigError
from clp.config.loader import check_data

TEMPLATE = """\
#!/bin/bash
#***************************************
#*              {name:<23}*
#***************************************
# {what} script of exec resource {resource} (group {group}).
# clp sets: CLP_EVENT (START | FAILOVER | RECOVER), CLP_SERVER (HOME | OTHER), CLP_PRIORITY,
# CLP_GROUPNAME, CLP_RESOURCENAME, CLP_DISK, CLP_PID. Exit 0 on success; any other code is an
# {what_lower} failure of the resource.
# CLP_EVENT in a start script: FAILOVER (started by a failover), RECOVER (restarted by recovery),
# else START (a group start, a move or a failback). In a stop script: FAILOVER when the group stops
# for a failover, else START. No other value is ever set.

echo "$0: CLP_EVENT=$CLP_EVENT CLP_SERVER=$CLP_SERVER CLP_PRIORITY=$CLP_PRIORITY"
echo "$0: CLP_GROUPNAME=$CLP_GROUPNAME CLP_RESOURCENAME=$CLP_RESOURCENAME CLP_DISK=$CLP_DISK"

case "$CLP_EVENT" in
START)
\tif [ "$CLP_SERVER" = "HOME" ]; then
\t\techo "NORMAL1"
\telse
\t\techo "ON_OTHER1"
\tfi
\t;;
FAILOVER)
\tif [ "$CLP_SERVER" = "HOME" ]; then
\t\techo "FAILOVER1"
\telse
\t\techo "ON_OTHER2"
\tfi
\t;;
RECOVER)
\techo "RECOVER"
\t;;
*)
\techo "NO_CLP"
\t;;
esac

echo "EXIT"
exit 0
"""


def render(group: str, resource: str, script: str) -> str:
    stop = "stop" in script
    return TEMPLATE.format(name=script, what="Stop" if stop else "Start",
                           what_lower="deactivation" if stop else "activation",
                           group=group, resource=resource)


def create_missing(directory: Path) -> list[Path]:
    """Write the template for every missing exec script of ``directory``; the paths created."""
    try:
        text = (directory / CONFIG_FILE).read_text(encoding="utf-8")
        data, _issues = check_data(text)
    except (OSError, UnicodeDecodeError, ConfigError):
        return []  # the check that follows reports why
    created = []
    for _path, group, resource, item in exec_scripts(data):
        created.extend(_create(directory, group, resource, item))
    return created


def _create(directory: Path, group: str, resource: str, item: Any) -> list[Path]:
    created = []
    folder = directory / "scripts" / group / resource
    for key, default in (("script_start", "start.sh"), ("script_stop", "stop.sh")):
        name = item.get(key, default)
        script = folder / name
        if not isinstance(name, str) or script.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        script.write_text(render(group, resource, name))
        os.chmod(script, 0o755)
        created.append(script)
    return created
