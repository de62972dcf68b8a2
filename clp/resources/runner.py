"""Runs resource operations off the caller's thread, bounded in time, never raising.

The group logic asks for ``start``/``stop``/``probe`` and gets a Future of a ``Result``. A type's
exception becomes ``Result(ERROR)`` with its traceback in the log; an operation that exceeds its
timeout becomes ``Result(TIMEOUT)``: :class:`clp.platform.bounded.BoundedPool` ends every process
group it started, starts nothing more for it (a timed-out disk start does not go on to fsck and
mount), and delivers the TIMEOUT only once the worker has returned, so that the caller's cleanup
stop does not race the operation's last steps.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from clp.config.model import ResourceConfig
from clp.platform.bounded import BoundedPool
from clp.resources import registry
from clp.resources.base import Context, Result, Status

OPERATIONS = ("start", "stop", "probe")
# probe answers as a Result: code 0 active, PROBE_INACTIVE not active, PROBE_UNKNOWN cannot tell
PROBE_INACTIVE = 7  # OCF_NOT_RUNNING
PROBE_UNKNOWN = 1


def probe_state(result: Result) -> bool | None:
    """The answer of a probe Result: True active, False not active, None unknown or failed."""
    if result.status is not Status.DONE or result.code == PROBE_UNKNOWN:
        return None
    return result.code == 0


def _probe_result(answer: bool | None) -> Result:
    if answer is None:
        return Result(Status.DONE, PROBE_UNKNOWN, "cannot tell")
    return Result(Status.DONE, 0 if answer else PROBE_INACTIVE,
                  "active" if answer else "not active")


class ResourceRunner:
    """``gate``: asked before every operation; a reason (str) refuses it, with nothing run. The
    service's gate refuses once it has fenced itself, whatever path the request came by."""

    def __init__(self, max_workers: int = 8,
                 gate: Callable[[], str | None] | None = None) -> None:
        self._pool: BoundedPool[Result] = BoundedPool(max_workers, "clp-resource")
        self._gate = gate

    def run(self, op: str, rc: ResourceConfig, ctx: Context, timeout: float) -> Future[Result]:
        refused = self._gate() if self._gate is not None else None
        if refused:
            ctx.log.error("%s of %s not run: %s", op, rc.name, refused)
            out: Future[Result] = Future()
            out.set_result(Result(Status.ERROR_HARD, 0, f"{op} of {rc.name} not run: {refused}"))
            return out
        return self._pool.run(lambda: _call(op, rc, ctx), timeout, f"{op} of {rc.name}",
                              ctx.log, lambda why: Result(Status.TIMEOUT, 0, why),
                              lambda why: Result(Status.ERROR, 0, why))

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait)


def _call(op: str, rc: ResourceConfig, ctx: Context) -> Result:
    if op not in OPERATIONS:
        return Result(Status.ERROR_HARD, 0, f"unknown operation {op!r}")
    kind = registry.get(rc.type)
    if op == "probe":
        return _probe_result(kind.probe(rc.params, ctx))
    result = kind.start(rc.params, ctx) if op == "start" else kind.stop(rc.params, ctx)
    if not isinstance(result, Result):
        return Result(Status.ERROR, 0, f"{rc.type}.{op} returned {result!r}")
    return result
