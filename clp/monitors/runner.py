"""Runs the checks of monitors off the event loop, each bounded by its timeout.

Every call (``begin``, ``check``, ``end`` of a monitor type) runs in a worker thread of a
:class:`clp.platform.bounded.BoundedPool`: a check that does not finish within the monitor's
timeout is a timeout (never an exception), the processes it started are ended with their whole
process groups, and it starts nothing more. A check whose thread cannot be ended (blocked in the
kernel on a hung disk) keeps its monitor busy: until it returns, no other call of that monitor
starts, and every scheduled check meanwhile is answered at once as a timeout, so hung checks
never pile up threads.

Worker threads run in the ordinary time-sharing class (``clusterpro`` itself runs real-time so
that heartbeats never wait behind a busy machine; a probe must not compete with them), at the
monitor's nice value, which the processes it starts inherit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from clp.monitors.base import Check, Health, MonitorType
from clp.platform.bounded import BoundedPool


def _time_sharing() -> None:
    """Pool initializer: this thread leaves the real-time class its process runs in."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class MonitorRunner:
    def __init__(self, max_workers: int) -> None:
        self._pool: BoundedPool[Check] = BoundedPool(max_workers, "clp-monitor",
                                                     initializer=_time_sharing)
        self._lock = threading.Lock()
        self._busy: dict[str, float] = {}  # monitor -> when its running call started

    def call(self, name: str, monitor: MonitorType, op: str, timeout: float, nice: int,
             log: logging.Logger) -> Future[Check]:
        """Run ``monitor.<op>()`` (begin, check or end) within ``timeout`` seconds."""
        with self._lock:
            since = self._busy.get(name)
            if since is None:
                self._busy[name] = time.monotonic()
        if since is not None:
            out: Future[Check] = Future()
            out.set_result(Check(Health.ERROR, f"the previous check of {name} has not returned "
                                               f"for {time.monotonic() - since:.0f} s",
                                 timed_out=True))
            return out
        method: Callable[[], Check | None] = getattr(monitor, op)
        ran = threading.Event()

        def call() -> Check:
            ran.set()
            started = time.monotonic()
            try:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
                result = method()
                if op != "check":
                    return Check(Health.NORMAL, f"{op} done", elapsed=time.monotonic() - started)
                if not isinstance(result, Check):
                    return Check(Health.UNKNOWN, f"{monitor.name}.check returned {result!r}")
                return Check(result.health, result.reason, elapsed=time.monotonic() - started)
            finally:
                with self._lock:
                    self._busy.pop(name, None)

        def ended(check: Check) -> Check:
            if not ran.is_set():  # never started (pool shut down, or expired in the queue)
                with self._lock:
                    self._busy.pop(name, None)
            return check

        return self._pool.run(call, timeout, f"{op} of monitor {name}", log,
                              lambda why: ended(Check(Health.ERROR, why, timed_out=True,
                                                      elapsed=timeout)),
                              lambda why: ended(Check(Health.UNKNOWN, why)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)
