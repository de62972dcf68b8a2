"""dummy resource: does nothing, but can be slow, fail or hang on demand (Pacemaker's Dummy).

Every recovery path (retry, failover threshold, final action, timeout) can be tested with it and
without root. ``fail_file`` makes start fail while that file exists, so a test can break a running
resource later. Its state is a file under the work directory so probe survives a restart.
Delays and hangs are a ``sleep`` process, so the runner's timeout ends them like a real script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from clp.platform import proc
from clp.resources.base import Context, Params, ResourceType, Result, Status, done, error

HANG_SECONDS = 10**6


def _pause(seconds: float, ctx: Context) -> Result | None:
    if seconds <= 0:
        return None
    result = proc.run(["sleep", f"{seconds:g}"], timeout=seconds + 60, log=ctx.log)
    if result.returncode != 0:
        return Result(Status.ERROR, result.returncode, "interrupted")
    return None


class DummyResource(ResourceType):
    name: ClassVar[str] = "dummy"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "start_delay": {"type": "number", "minimum": 0, "default": 0,
                            "x-apply": "stop_resource"},
            "stop_delay": {"type": "number", "minimum": 0, "default": 0,
                           "x-apply": "stop_resource"},
            "fail_start": {"type": "boolean", "default": False, "x-apply": "stop_resource"},
            "fail_stop": {"type": "boolean", "default": False, "x-apply": "stop_resource"},
            "hang": {"type": "boolean", "default": False, "x-apply": "stop_resource"},
            "fail_file": {"type": "string", "default": "", "x-apply": "stop_resource"},
        },
    }

    def start(self, params: Params, ctx: Context) -> Result:
        paused = _pause(HANG_SECONDS if params["hang"] else params["start_delay"], ctx)
        if paused is not None:
            return paused
        if params["fail_start"]:
            return error(f"dummy {ctx.resource}: start fails (fail_start)")
        if params["fail_file"] and Path(params["fail_file"]).exists():
            return error(f"dummy {ctx.resource}: start fails ({params['fail_file']} exists)")
        _state(ctx).parent.mkdir(parents=True, exist_ok=True)
        _state(ctx).write_text(ctx.server + "\n")
        return done(f"dummy {ctx.resource} started")

    def stop(self, params: Params, ctx: Context) -> Result:
        paused = _pause(HANG_SECONDS if params["hang"] else params["stop_delay"], ctx)
        if paused is not None:
            return paused
        if params["fail_stop"]:
            return error(f"dummy {ctx.resource}: stop fails (fail_stop)")
        _state(ctx).unlink(missing_ok=True)
        return done(f"dummy {ctx.resource} stopped")

    def probe(self, params: Params, ctx: Context) -> bool | None:
        return _state(ctx).exists()


def _state(ctx: Context) -> Path:
    return ctx.root.work_dir / "dummy" / f"{ctx.group}.{ctx.resource}"
