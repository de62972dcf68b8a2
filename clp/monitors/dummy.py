"""dummy monitor: checks nothing, but can fail, warn, be slow or hang on demand.

With it every recovery path (retries, timeout handling, reactivation, failover, final action)
is tested without root and without breaking anything real. ``fail_file`` / ``caution_file``:
the check reports Error / Caution while that file exists, so a test can break a monitored
object later. ``delay`` and ``hang`` are a ``sleep`` process, so the runner's timeout ends them
like a real probe's command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from clp.monitors.base import Check, MonitorType, caution, failed, normal
from clp.platform import proc

HANG_SECONDS = 10**6


class DummyMonitor(MonitorType):
    name: ClassVar[str] = "dummy"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "fail_file": {"type": "string", "default": "", "x-apply": "suspend_monitors"},
            "caution_file": {"type": "string", "default": "", "x-apply": "suspend_monitors"},
            "delay": {"type": "number", "minimum": 0, "default": 0,
                      "x-apply": "suspend_monitors"},
            "hang": {"type": "boolean", "default": False, "x-apply": "suspend_monitors"},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 1, "timeout": 5, "retry": 0}

    def check(self) -> Check:
        pause = HANG_SECONDS if self.params["hang"] else self.params["delay"]
        if pause > 0:
            proc.run(["sleep", f"{pause:g}"], timeout=pause + 60, log=self.ctx.log)
        if self.params["fail_file"] and Path(self.params["fail_file"]).exists():
            return failed(f"{self.params['fail_file']} exists")
        if self.params["caution_file"] and Path(self.params["caution_file"]).exists():
            return caution(f"{self.params['caution_file']} exists")
        return normal()
