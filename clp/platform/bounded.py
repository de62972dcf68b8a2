"""Run a call in a worker thread, bounded in time, its processes ended when the time is up.

The one mechanism under the resource runner (start / stop / probe of a group resource) and the
monitor runner (one check of a monitor resource). The caller gets a ``Future`` that always
resolves with a value, never an exception:

- the call's own value when it returns in time;
- ``on_timeout(reason)`` when it does not: from then on the call's thread starts no process
  (:class:`clp.platform.proc.Operation`), every process group it started is ended (SIGTERM, then
  SIGKILL), a call still queued behind others never starts, and the value is delivered only once
  the worker has returned or ``grace`` more seconds have passed (``proc.KILL_GRACE`` by
  default), so that the caller's next step (a cleanup stop) does not race the call's last steps;
  a caller with no next step to protect (a monitor's check: its monitor stays busy until the
  call returns) passes ``grace=0`` and learns of the timeout at once;
- ``on_error(reason)`` when the call raised (a plugin's bug must not take the daemon down; the
  traceback is logged) or the pool is shut down.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from time import monotonic
from typing import Generic, TypeVar

from clp.platform import proc

T = TypeVar("T")


class Deadlines:
    """One thread that calls each registered function at its time: the timeouts of every call
    of a pool, instead of a ``threading.Timer`` (a thread started and ended) per call, which
    was most of what a monitor check cost. A function runs in this thread, so it must not
    block long (an expiry only marks, signals and hands the slow part to a worker)."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, delay: float, fn: Callable[[], None]) -> int:
        at = monotonic() + delay
        with self._cond:
            key = next(self._ids)
            earliest = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, key, fn))
            if earliest:  # only then must the thread wake sooner than it planned
                self._cond.notify()
        return key

    def cancel(self, key: int) -> None:
        with self._cond:
            self._cancelled.add(key)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > monotonic():
                    wait = self._heap[0][0] - monotonic() if self._heap else None
                    self._cond.wait(wait)
                _at, key, fn = heapq.heappop(self._heap)
                if key in self._cancelled:
                    self._cancelled.discard(key)
                    continue
            try:
                fn()
            except Exception:  # noqa: BLE001 - one expiry's bug must not stop the others
                logging.getLogger("clp").exception("a deadline handler failed")


class BoundedPool(Generic[T]):
    def __init__(self, max_workers: int, name: str,
                 initializer: Callable[[], None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix=name,
                                        initializer=initializer)
        # expiries run the kill and the wait for the worker: in a thread of their own
        self._expiries = ThreadPoolExecutor(2, thread_name_prefix=f"{name}-expiry")
        self._deadlines = Deadlines(f"{name}-deadlines")

    def run(self, call: Callable[[], T], timeout: float, what: str, log: logging.Logger,
            on_timeout: Callable[[str], T], on_error: Callable[[str], T],
            grace: float = proc.KILL_GRACE) -> Future[T]:
        """Run ``call`` within ``timeout`` seconds; ``what`` names it in messages; ``grace``:
        how long its processes get between SIGTERM and SIGKILL, and the call to return."""
        outer: Future[T] = Future()
        outer.set_running_or_notify_cancel()
        operation = proc.Operation()
        lock = threading.Lock()  # orders the worker's value against the timer's expiry

        def finish(value: T) -> None:
            with lock:
                if not outer.done():
                    outer.set_result(value)

        try:
            inner = self._pool.submit(_tracked, call, operation, what, log, on_timeout,
                                      on_error)
        except RuntimeError as exc:  # pool shut down
            finish(on_error(f"cannot run {what}: {exc}"))
            return outer

        def expire() -> None:
            with lock:
                if outer.done():
                    return
                pgids = operation.expire()  # from now on the worker starts no process
            reason = f"{what} did not finish in {timeout:g} s"
            if inner.cancel():  # still queued behind other calls: it never starts
                log.error("%s; it never started", reason)
            else:
                log.error("%s; ending its processes", reason)
                proc.kill_groups(pgids, grace)
                futures.wait([inner], timeout=grace)
                if not inner.done() and grace > 0:
                    log.error("%s is still running %g s after its timeout", what, grace)
            finish(on_timeout(reason))

        def expire_soon() -> None:
            try:
                self._expiries.submit(expire)
            except RuntimeError:  # shut down
                expire()

        deadline = self._deadlines.add(timeout, expire_soon)

        def done(f: Future[T]) -> None:
            self._deadlines.cancel(deadline)
            if f.cancelled():  # by the pool's shutdown, or by expire() (which reports it)
                if not operation.expired:
                    finish(on_error(f"{what} cancelled: runner shut down"))
                return
            with lock:
                if not operation.expired:
                    outer.set_result(f.result())
                    return
            log.info("%s ended after its timeout: %s", what, f.result())

        inner.add_done_callback(done)
        return outer

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._expiries.shutdown(wait=False)


def _tracked(call: Callable[[], T], operation: proc.Operation, what: str, log: logging.Logger,
             on_timeout: Callable[[str], T], on_error: Callable[[str], T]) -> T:
    proc.track(operation)
    try:
        if operation.expired:  # picked up by a worker just as its timeout passed
            return on_timeout(f"{what} not started: timed out")
        return call()
    except Exception as exc:  # a plugin's bug must not take the daemon down
        log.error("%s raised:\n%s", what, traceback.format_exc().rstrip())
        return on_error(f"{what} failed: {exc!r}")
    finally:
        proc.track(None)
