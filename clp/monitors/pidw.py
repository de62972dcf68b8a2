"""pidw (PID monitor): the process an asynchronous exec resource started is still running.

Active while its exec resource (``mode: async``) is Online here. When monitoring starts it reads
the process id the exec resource keeps for its start script and that process's start time; a
check is an error when no process with that id and start time exists any more (one that reused
the id is a stranger). After a reactivation of the exec resource monitoring starts again and
takes the new process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from clp import platform
from clp.config.issues import ConfigIssue, join_path
from clp.monitors.base import Check, MonitorType, failed, normal
from clp.platform.linux import PlatformError
from clp.resources.exec import async_pid_file, read_pgid


class PidMonitor(MonitorType):
    name: ClassVar[str] = "pidw"
    defaults: ClassVar[dict[str, Any]] = {"interval": 5, "timeout": 60, "retry": 0,
                                          "timing": "active"}
    timings: ClassVar[tuple[str, ...]] = ("active",)
    target_types: ClassVar[tuple[str, ...]] = ("exec",)
    needs_target: ClassVar[bool] = True
    default_recovery: ClassVar[str] = "resource"  # the product: the exec itself, 3 then 1

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        from clp.config.monitor_check import resource_types

        target = resource_types(data).get(str(item.get("target")))
        if target is not None and target.get("type") == "exec" \
                and target.get("mode", "sync") != "async":
            yield ConfigIssue(join_path(path, "target"),
                              f"pidw watches the process of an asynchronous exec resource; "
                              f"{item.get('target')} has mode {target.get('mode', 'sync')!r} "
                              f"(set mode: async)")

    def __init__(self, params: Any, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.watched: tuple[int, int] | None = None  # (pid, start time)

    def begin(self) -> None:
        group, _rc = self.ctx.config.resource(str(self.ctx.target))
        pid = read_pgid(async_pid_file(self.ctx.root, group.name, str(self.ctx.target)))
        found = self._find(pid) if pid is not None else None
        self.watched = (pid, found) if pid is not None and found is not None else None

    def _find(self, pid: int) -> int | None:
        for process in platform.current().processes():
            if process.pid == pid:
                return process.start
        return None

    def check(self) -> Check:
        if self.watched is None:
            return failed(f"{self.ctx.target} has no running process to monitor")
        pid, start = self.watched
        try:
            now = self._find(pid)
        except PlatformError as e:
            return failed(f"cannot list the processes: {e}")
        if now != start:
            return failed(f"process {pid} of {self.ctx.target} is gone")
        return normal(f"process {pid}")
