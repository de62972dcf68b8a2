"""disk resource: a shared-disk file system, checked and mounted on the active server only.

Start refuses a device that is already mounted here (at any mount point) or a mount point that
already has something mounted: mounting twice is how shared file systems get corrupted. Stop
unmounts with retries, ending the processes that keep the file system busy between tries (SIGTERM
first, SIGKILL after), because a stop that cannot unmount blocks the failover.

The whole start is bounded by ``timeout_start`` (the runner's timeout): its default covers the
worst sequence of its own steps, mount + fsck + mount again (``START_STEPS``), so that a slow but
progressing fsck is not killed by the runner halfway through.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from clp import platform
from clp.platform import proc
from clp.resources.base import Context, Params, ResourceType, Result, Status, done, error

_APPLY = {"x-apply": "stop_resource"}
MOUNT_TIMEOUT, FSCK_TIMEOUT = 180, 1800
START_STEPS = FSCK_TIMEOUT + 2 * MOUNT_TIMEOUT  # on_error: mount, fsck, mount again


def _num(default: float, minimum: float = 0) -> dict[str, Any]:
    return {"type": "number", "minimum": minimum, "default": default, **_APPLY}


def short_start_timeout(params: Params) -> str | None:
    """Why ``timeout_start`` cannot cover the start's own steps, or None when it can."""
    if params["fsck"]["policy"] == "never":
        return None
    steps = params["fsck"]["timeout"] + 2 * params["timeout_mount"]
    if params["timeout_start"] >= steps:
        return None
    return (f"timeout_start ({params['timeout_start']:g} s) is shorter than fsck.timeout + "
            f"2 x timeout_mount ({steps:g} s): a slow fsck will be killed as a timeout")


class DiskResource(ResourceType):
    name: ClassVar[str] = "disk"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["device", "mount_point"],
        "properties": {
            "device": {"type": "string", "pattern": "^/", **_APPLY,
                       "x-error": {"pattern": "{value!r} is not an absolute device path"}},
            "mount_point": {"type": "string", "pattern": "^/", **_APPLY,
                            "x-error": {"pattern": "{value!r} is not an absolute path"}},
            "fs": {"enum": ["ext4", "ext3", "xfs", "zfs", "ufs"], "default": "ext4", **_APPLY},
            "mount_options": {"type": "string", "default": "rw", **_APPLY},
            "timeout_mount": _num(MOUNT_TIMEOUT, 1),
            # the runner's bound on the whole start: keep >= fsck.timeout + 2 x timeout_mount
            "timeout_start": _num(START_STEPS, 1),
            "timeout_stop": _num(1800, 1),
            "fsck": {
                "type": "object", "default": {}, "additionalProperties": False, **_APPLY,
                "properties": {
                    # on_error: check only when the first mount fails, then mount again
                    "policy": {"enum": ["always", "never", "on_error"], "default": "on_error",
                               **_APPLY},
                    "timeout": _num(FSCK_TIMEOUT, 1),
                },
            },
            "umount": {
                "type": "object", "default": {}, "additionalProperties": False, **_APPLY,
                "properties": {
                    "retry": {"type": "integer", "minimum": 0, "default": 3, **_APPLY},
                    "interval": _num(5),
                    "kill": {"type": "boolean", "default": True, **_APPLY},
                    "timeout": _num(120, 1),
                },
            },
        },
    }

    def start(self, params: Params, ctx: Context) -> Result:
        host = platform.current()
        device, mount_point = params["device"], params["mount_point"]
        if params["fs"] != "zfs" and not os.path.exists(device):
            return Result(Status.ERROR_HARD, 0, f"device {device} does not exist")
        where = host.mounted_at(device)
        if where:
            return error(f"{device} is already mounted at {', '.join(where)}")
        if host.is_mount_point(mount_point):
            return error(f"{mount_point} is already a mount point")
        os.makedirs(mount_point, exist_ok=True)
        short = short_start_timeout(params)
        if short is not None:
            ctx.log.warning("%s: %s", ctx.resource, short)
        if params["fsck"]["policy"] == "always":
            checked = self._fsck(params, ctx)
            if checked is not None:
                return checked
        mounted = self._mount(params, ctx)
        if not mounted.ok and params["fsck"]["policy"] == "on_error":
            ctx.log.warning("mount of %s failed; checking the file system", device)
            checked = self._fsck(params, ctx)
            mounted = checked if checked is not None else self._mount(params, ctx)
        return mounted

    def stop(self, params: Params, ctx: Context) -> Result:
        host = platform.current()
        mount_point = params["mount_point"]
        opts = params["umount"]
        tries = opts["retry"] + 1
        for attempt in range(1, tries + 1):
            if proc.expired():  # the runner already reported the timeout; stop retrying
                return Result(Status.TIMEOUT, 0, f"umount of {mount_point} timed out")
            if not host.is_mount_point(mount_point):
                return done(f"{mount_point} is not mounted")
            result = host.execute(host.umount_argv(mount_point), opts["timeout"], ctx.log)
            if result.ok:
                return done(f"{mount_point} unmounted")
            ctx.log.warning("umount %s failed (try %d of %d): %s", mount_point, attempt, tries,
                            result.output.strip())
            if attempt == tries:
                return error(f"cannot unmount {mount_point} after {tries} tries: "
                             f"{result.output.strip()}", result.returncode)
            if opts["kill"]:
                force = attempt > 1
                ctx.log.warning("sending %s to the processes using %s",
                                "SIGKILL" if force else "SIGTERM", mount_point)
                host.execute(host.kill_holders_argv(mount_point, force), 30, ctx.log)
            time.sleep(opts["interval"])
        return error(f"cannot unmount {mount_point}")  # not reached

    def probe(self, params: Params, ctx: Context) -> bool | None:
        real = os.path.realpath(params["mount_point"])
        return real in platform.current().mounted_at(params["device"])

    @staticmethod
    def _fsck(params: Params, ctx: Context) -> Result | None:
        """None when the file system is clean (or repaired), else the error."""
        host = platform.current()
        argv = host.fsck_argv(params["device"], params["fs"])
        if argv is None:
            return None
        result = host.execute(argv, params["fsck"]["timeout"], ctx.log)
        # e2fsck: 0 clean, 1 errors corrected; anything else needs a person
        if result.returncode in (0, 1) and not result.timed_out:
            return None
        status = Status.TIMEOUT if result.timed_out else Status.ERROR
        return Result(status, result.returncode,
                      f"{' '.join(argv)} failed (code {result.returncode})")

    @staticmethod
    def _mount(params: Params, ctx: Context) -> Result:
        host = platform.current()
        argv = host.mount_argv(params["device"], params["mount_point"], params["fs"],
                               params["mount_options"])
        result = host.execute(argv, params["timeout_mount"], ctx.log)
        if result.timed_out:
            return Result(Status.TIMEOUT, 0, f"mount of {params['device']} timed out")
        if not result.ok:
            return error(f"mount {params['device']} {params['mount_point']} failed: "
                         f"{result.output.strip()}", result.returncode)
        return done(f"{params['device']} mounted at {params['mount_point']}")
