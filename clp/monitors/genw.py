"""genw (custom monitor): the user's own check script, ``genw.sh`` as the product names it.

``mode: sync`` (the product's default): the script runs at every check; it is normal when it
exits with ``normal_value`` (0), an error otherwise, and a timeout when it does not finish within
the monitor's timeout (its whole process group is then ended). ``mode: async``: the script is
started when monitoring starts and must keep running (a watchdog of the application it checks);
its exit is an error, and it is started again for the next check.

The script lives in ``scripts/monitor.s/<monitor>/`` next to clp.conf (or is an absolute path),
runs in that directory with ``CLP_MONITORNAME``, ``CLP_SERVERNAME`` and ``CLP_CLUSTERNAME`` in
its environment, and its output goes to the daemon's log, or to ``log_file`` (rotated at
``log_size`` bytes when ``log_rotate`` is on) as the product's "log output path".
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from clp.monitors.base import Check, Health, MonitorType, failed, normal
from clp.platform import proc

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
A = "suspend_monitors"


class CustomMonitor(MonitorType):
    name: ClassVar[str] = "genw"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "path": {"type": "string", "minLength": 1, "default": "genw.sh", "x-apply": A},
            "mode": {"enum": ["sync", "async"], "default": "sync", "x-apply": A},
            "normal_value": {"type": "integer", "minimum": 0, "maximum": 255, "default": 0,
                             "x-apply": A},
            # None: the script's output goes to the daemon's log
            "log_file": {"type": ["string", "null"], "pattern": "^/", "default": None,
                         "x-apply": A,
                         "x-error": {"pattern": "{value!r} is not an absolute path"}},
            "log_rotate": {"type": "boolean", "default": False, "x-apply": A},
            "log_size": {"type": "integer", "minimum": 1, "maximum": 999999999,
                         "default": 1000000, "x-apply": A},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 60, "timeout": 120, "retry": 1}
    default_recovery: ClassVar[str] = ""

    @classmethod
    def scripts(cls, item: Mapping[str, Any]) -> list[tuple[str, str]]:
        path = item.get("path", "genw.sh")
        return [("path", path)] if isinstance(path, str) else []

    def __init__(self, params: Any, ctx: Any) -> None:
        super().__init__(params, ctx)
        script = str(params["path"])
        self.script = Path(script) if os.path.isabs(script) else ctx.scripts_dir / script
        self.child: subprocess.Popen[bytes] | None = None
        self.out = self._output_log()

    def _output_log(self) -> logging.Logger:
        if not self.params.get("log_file"):
            return self.ctx.log
        out = logging.getLogger(f"clp.genw.{self.ctx.monitor}")
        out.propagate = False
        want = (os.path.abspath(self.params["log_file"]),
                self.params["log_size"] if self.params["log_rotate"] else 0,
                1 if self.params["log_rotate"] else 0)
        for old in list(out.handlers):  # the logger outlives a reconfigured monitor
            if not isinstance(old, logging.handlers.RotatingFileHandler) or \
                    (old.baseFilename, old.maxBytes, old.backupCount) != want:
                out.removeHandler(old)
                old.close()
        if not out.handlers:
            handler = logging.handlers.RotatingFileHandler(
                want[0], maxBytes=want[1], backupCount=want[2], delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            out.addHandler(handler)
            out.setLevel(logging.INFO)
        return out

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", PATH), "CLP_MONITORNAME": self.ctx.monitor,
                "CLP_SERVERNAME": self.ctx.server, "CLP_CLUSTERNAME": self.ctx.cluster}

    def _missing(self) -> Check | None:
        if not self.script.is_file():
            return failed(f"script {self.script} does not exist")
        if not os.access(self.script, os.X_OK):
            return failed(f"script {self.script} is not executable")
        return None

    def begin(self) -> None:
        if self.params["mode"] == "async" and self._missing() is None:
            self._spawn()

    def _spawn(self) -> None:
        try:
            self.child, _pump, _lines = proc.spawn([str(self.script)], env=self._env(),
                                                   cwd=self.script.parent, log=self.out)
        except OSError as e:
            self.ctx.log.error("cannot start %s: %s", self.script, e)
            self.child = None

    def check(self) -> Check:
        missing = self._missing()
        if missing is not None:
            return missing
        if self.params["mode"] == "async":
            return self._check_async()
        result = proc.run([str(self.script)], timeout=self.ctx.limit(), env=self._env(),
                          cwd=self.script.parent, log=self.out)
        if result.timed_out:  # its process group is ended: a timeout, not the script's error
            return Check(Health.ERROR, f"{self.script.name} did not finish in "
                                       f"{self.ctx.limit():g} s", timed_out=True)
        if result.returncode == self.params["normal_value"]:
            return normal()
        last = [line.strip() for line in result.output.splitlines() if line.strip()][-1:] \
            or [""]
        return failed(f"{self.script.name} exited with code {result.returncode}"
                      + (f": {last[0][:200]}" if last[0] else ""))

    def _check_async(self) -> Check:
        if self.child is not None and self.child.poll() is None:
            return normal(f"{self.script.name} is running (pid {self.child.pid})")
        code = self.child.returncode if self.child is not None else None
        if self.child is not None and proc.group_alive(self.child.pid):
            # what the script left running would outlive end(), which ends the new one only
            proc.kill_group(self.child.pid)
        self._spawn()  # for the next check
        return failed(f"{self.script.name} is not running"
                      + (f" (exited with code {code})" if code is not None else ""))

    def end(self) -> None:
        child, self.child = self.child, None
        # also when the script has exited since the last check but left processes behind
        if child is not None and (child.poll() is None or proc.group_alive(child.pid)):
            proc.kill_group(child.pid, reap=child.poll)
        if child is not None:
            child.wait()
