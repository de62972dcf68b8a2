"""psw (process name monitor): enough processes whose command line matches a name are running.

``process_name`` is matched against each process's whole command line (arguments separated by
spaces, as ``ps -ef`` shows it), with the shell wildcards ``*``, ``?`` and ``[...]``. A check is
an error when fewer than ``count`` processes match. With ``restart_detection``, it is also an
error when a process that matched at the previous check is gone and another took its place
within one interval (a process that crashes and is restarted by its own supervisor looks healthy
to a count, but its clients lost their sessions).
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, ClassVar

from clp import platform
from clp.monitors.base import Check, MonitorType, failed, normal
from clp.platform.linux import PlatformError


class ProcessNameMonitor(MonitorType):
    name: ClassVar[str] = "psw"
    schema: ClassVar[dict[str, Any]] = {
        "required": ["process_name"],
        "properties": {
            "process_name": {"type": "string", "minLength": 1, "x-apply": "suspend_monitors"},
            "count": {"type": "integer", "minimum": 1, "maximum": 999, "default": 1,
                      "x-apply": "suspend_monitors"},
            "restart_detection": {"type": "boolean", "default": False,
                                  "x-apply": "suspend_monitors"},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 5, "timeout": 60, "retry": 0}
    default_recovery: ClassVar[str] = ""

    def __init__(self, params: Any, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.pattern = re.compile(fnmatch.translate(str(params["process_name"])), re.DOTALL)
        self.seen: set[tuple[int, int]] | None = None  # (pid, start) at the last check

    def begin(self) -> None:
        self.seen = None

    def check(self) -> Check:
        try:
            found = {(p.pid, p.start) for p in platform.current().processes()
                     if p.pid != os.getpid() and self.pattern.fullmatch(p.command)}
        except PlatformError as e:
            return failed(f"cannot list the processes: {e}")
        before, self.seen = self.seen, found
        want, name = self.params["count"], self.params["process_name"]
        if len(found) < want:
            return failed(f"{len(found)} process(es) match {name!r}, at least {want} needed")
        if self.params["restart_detection"] and before is not None:
            gone = before - found
            new = found - before
            if gone and new:
                pids = ", ".join(str(pid) for pid, _ in sorted(gone))
                return failed(f"process {pids} matching {name!r} was restarted")
        return normal(f"{len(found)} process(es)")
