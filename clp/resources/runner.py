"""Runs resource operations off the caller's thread, bounded in time, never raising.

The group logic asks for ``start``/``stop``/``probe`` and gets a Future of a ``Result``. A type's
exception becomes ``Result(ERROR)`` with its traceback in the log; an operation that exceeds its
timeout becomes ``Result(TIMEOUT)`` and every process group it started is ended (SIGTERM, then
SIGKILL), so a hung script never outlives its timeout.

An expired operation starts nothing more (``proc.Operation``: a timed-out disk start does not go
on to fsck and mount), one still queued never starts, and the TIMEOUT is delivered only once the
worker has returned or ``proc.KILL_GRACE`` more seconds have passed, so that the caller's cleanup
stop does not race the operation's last steps.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor

from clp.config.model import ResourceConfig
from clp.platform import proc
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
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="clp-resource")
        self._gate = gate

    def run(self, op: str, rc: ResourceConfig, ctx: Context, timeout: float) -> Future[Result]:
        outer: Future[Result] = Future()
        outer.set_running_or_notify_cancel()
        operation = proc.Operation()
        lock = threading.Lock()  # orders the worker's result against the timer's expiry

        def finish(result: Result) -> None:
            with lock:
                if not outer.done():
                    outer.set_result(result)

        refused = self._gate() if self._gate is not None else None
        if refused:
            ctx.log.error("%s of %s not run: %s", op, rc.name, refused)
            finish(Result(Status.ERROR_HARD, 0, f"{op} of {rc.name} not run: {refused}"))
            return outer

        try:
            inner = self._pool.submit(self._call, op, rc, ctx, operation)
        except RuntimeError as exc:  # pool shut down
            finish(Result(Status.ERROR, 0, f"cannot run {op} of {rc.name}: {exc}"))
            return outer

        def expire() -> None:
            with lock:
                if outer.done():
                    return
                pgids = operation.expire()  # from now on the worker starts no process
            reason = f"{op} of {rc.name} did not finish in {timeout:g} s"
            if inner.cancel():  # still queued behind other operations: it never starts
                ctx.log.error("%s; it never started", reason)
            else:
                ctx.log.error("%s; ending its processes", reason)
                proc.kill_groups(pgids)
                # the caller's next step (a cleanup stop) must not race the worker's last steps
                futures.wait([inner], timeout=proc.KILL_GRACE)
                if not inner.done():
                    ctx.log.error("%s is still running %g s after its timeout", op, proc.KILL_GRACE)
            finish(Result(Status.TIMEOUT, 0, reason))

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()

        def done(f: Future[Result]) -> None:
            timer.cancel()
            if f.cancelled():  # by the pool's shutdown, or by expire() (which reports it)
                if not operation.expired:
                    finish(Result(Status.ERROR, 0, f"{op} of {rc.name} cancelled: "
                                                   "runner shut down"))
                return
            with lock:
                if not operation.expired:
                    outer.set_result(f.result())
                    return
            ctx.log.info("%s of %s ended after its timeout: %s", op, rc.name, f.result())

        inner.add_done_callback(done)
        return outer

    @staticmethod
    def _call(op: str, rc: ResourceConfig, ctx: Context, operation: proc.Operation) -> Result:
        proc.track(operation)
        try:
            if operation.expired:  # picked up by a worker just as its timeout passed
                return Result(Status.TIMEOUT, 0, f"{op} of {rc.name} not started: timed out")
            if op not in OPERATIONS:
                return Result(Status.ERROR_HARD, 0, f"unknown operation {op!r}")
            kind = registry.get(rc.type)
            if op == "probe":
                return _probe_result(kind.probe(rc.params, ctx))
            result = kind.start(rc.params, ctx) if op == "start" else kind.stop(rc.params, ctx)
            if not isinstance(result, Result):
                return Result(Status.ERROR, 0, f"{rc.type}.{op} returned {result!r}")
            return result
        except Exception as exc:  # a type's bug must not take the daemon down
            ctx.log.error("%s of %s (%s) raised:\n%s", op, rc.name, rc.type,
                          traceback.format_exc().rstrip())
            return Result(Status.ERROR, 0, f"{op} of {rc.name} failed: {exc!r}")
        finally:
            proc.track(None)

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
