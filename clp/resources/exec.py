"""exec resource: the user's start.sh / stop.sh, run with the product's CLP_* environment.

Sync mode waits for the script (non-zero exit = error with that code). Async mode launches
start.sh and returns once it has run 1 s or exited 0; stop ends the still-running start script's
process group, then runs stop.sh. The async process group id is kept in the install root's
volatile directory (tmpfs) so a restarted clusterpro can still stop it, while a reboot forgets it:
a pid file surviving the reboot would name whatever process reused that pid.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from clp.paths import InstallRoot
from clp.platform import proc
from clp.resources.base import (
    Context,
    Params,
    ResourceType,
    Result,
    Status,
    done,
    error,
    script_event,
)

ASYNC_GRACE = 1.0  # an async start that is still running (or exited 0) after this is a success
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _timeout(default: int) -> dict[str, Any]:
    return {"type": "number", "exclusiveMinimum": 0, "default": default, "x-apply": "stop_resource"}


def script_env(ctx: Context, stopping: bool) -> dict[str, str]:
    """The product's script environment (see docs/resources.md): CLP_EVENT is one of the
    product's values (SCRIPT_EVENTS), never clp's own MOVE or FAILBACK."""
    return {
        "PATH": os.environ.get("PATH", PATH),
        "CLP_EVENT": script_event(ctx.event, stopping),
        "CLP_SERVER": "HOME" if ctx.home else "OTHER",
        "CLP_PRIORITY": str(ctx.priority),
        "CLP_GROUPNAME": ctx.group,
        "CLP_RESOURCENAME": ctx.resource,
        "CLP_DISK": "SUCCESS",
        "CLP_PID": str(os.getpid()),
        "CLP_CLUSTERNAME": ctx.cluster,
        "CLP_SERVERNAME": ctx.server,
    }


class ExecResource(ResourceType):
    name: ClassVar[str] = "exec"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "script_start": {"type": "string", "default": "start.sh", "x-apply": "stop_resource"},
            "script_stop": {"type": "string", "default": "stop.sh", "x-apply": "stop_resource"},
            "mode": {"enum": ["sync", "async"], "default": "sync", "x-apply": "stop_resource"},
            "timeout_start": _timeout(1800),
            "timeout_stop": _timeout(1800),
        },
    }

    def __init__(self) -> None:
        self._async: dict[Path, subprocess.Popen[bytes]] = {}

    def start(self, params: Params, ctx: Context) -> Result:
        script = ctx.scripts_dir / params["script_start"]
        missing = _check_script(script)
        if missing is not None:
            return missing
        env = script_env(ctx, stopping=False)
        if params["mode"] == "async":
            return self._start_async(script, env, ctx)
        result = proc.run([str(script)], timeout=params["timeout_start"], env=env,
                          cwd=ctx.scripts_dir, log=ctx.log)
        return _judge(script, result)

    def stop(self, params: Params, ctx: Context) -> Result:
        if params["mode"] == "async":
            self._end_async(ctx)
        script = ctx.scripts_dir / params["script_stop"]
        missing = _check_script(script)
        if missing is not None:
            return missing
        result = proc.run([str(script)], timeout=params["timeout_stop"],
                          env=script_env(ctx, stopping=True), cwd=ctx.scripts_dir, log=ctx.log)
        return _judge(script, result)

    def probe(self, params: Params, ctx: Context) -> bool | None:
        if params["mode"] != "async":
            return None  # a sync script leaves nothing we could look at
        pgid = read_pgid(_pid_file(ctx))
        return pgid is not None and proc.group_alive(pgid)

    def _start_async(self, script: Path, env: dict[str, str], ctx: Context) -> Result:
        try:
            child, _pump, _lines = proc.spawn([str(script)], env=env, cwd=ctx.scripts_dir,
                                              log=ctx.log)
        except TimeoutError as exc:  # the operation expired: start nothing
            return Result(Status.TIMEOUT, proc.NOT_STARTED, str(exc))
        except OSError as exc:
            return error(f"cannot run {script}: {exc}", 126)
        try:
            code = child.wait(timeout=ASYNC_GRACE)
        except subprocess.TimeoutExpired:
            pid_file = _pid_file(ctx)
            self._async[pid_file] = child
            for folder in (ctx.root.volatile_dir, pid_file.parent):  # root-only, like run/
                folder.mkdir(mode=0o700, exist_ok=True)
            pid_file.write_text(f"{child.pid}\n")
            return done(f"{script.name} is running (pid {child.pid})")
        if code == 0:
            return done(f"{script.name} exited 0")
        return error(f"{script} exited with code {code}", code)

    def _end_async(self, ctx: Context) -> None:
        pid_file = _pid_file(ctx)
        child = self._async.pop(pid_file, None)
        pgid = child.pid if child is not None else read_pgid(pid_file)
        if pgid is not None and proc.group_alive(pgid):
            ctx.log.info("ending the async start script of %s (process group %d)",
                         ctx.resource, pgid)
            proc.kill_group(pgid, reap=child.poll if child is not None else None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        pid_file.unlink(missing_ok=True)


def _pid_file(ctx: Context) -> Path:
    return async_pid_file(ctx.root, ctx.group, ctx.resource)


def async_pid_file(root: InstallRoot, group: str, resource: str) -> Path:
    """Where the process (group) id of an async start script is kept: in the volatile (tmpfs)
    directory, valid across a restart of clusterpro, gone at reboot (pidw reads it too)."""
    return root.volatile_dir / "exec" / f"{group}.{resource}.pgid"


def read_pgid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _check_script(script: Path) -> Result | None:
    if not script.is_file():
        return Result(Status.ERROR_HARD, 127, f"script {script} does not exist")
    if not os.access(script, os.X_OK):
        return Result(Status.ERROR_HARD, 126, f"script {script} is not executable")
    return None


def _judge(script: Path, result: proc.ProcResult) -> Result:
    if result.timed_out:
        return Result(Status.TIMEOUT, result.returncode, f"{script} timed out")
    if result.returncode != 0:
        return error(f"{script} exited with code {result.returncode}", result.returncode)
    return done(f"{script.name} exited 0")
