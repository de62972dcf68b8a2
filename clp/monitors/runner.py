"""Runs the checks of monitors off the event loop, each bounded by its timeout.

Every call (``begin``, ``check``, ``end`` of a monitor type) runs in a worker thread of a
:class:`clp.platform.bounded.BoundedPool`: a check that does not finish within the monitor's
timeout is a timeout (never an exception), the processes it started are ended with their whole
process groups, and it starts nothing more. A check whose thread cannot be ended (blocked in the
kernel on a hung disk) keeps its monitor busy: until it returns, no other call of that monitor
starts, and every scheduled check meanwhile is answered at once as a timeout, so hung checks
never pile up threads. ``begin`` and ``end`` wait for it within their own timeout instead of
being skipped (what ``end`` releases must not be left behind by a check that was running).

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

_thread = threading.local()


def checked(monitor: MonitorType, result: object, elapsed: float) -> Check:
    """What a check's return value makes, wherever it ran (a worker thread, or the event loop
    for MonitorType.inline): a Check with the time it took; anything else is Unknown."""
    if not isinstance(result, Check):
        return Check(Health.UNKNOWN, f"{monitor.name}.check returned {result!r}", elapsed=elapsed)
    # timed_out: the type's own bound on what it waits for passed (genw's script)
    return Check(result.health, result.reason, result.timed_out, elapsed)


def _nice(value: int) -> None:
    """This worker thread (and what it starts) at ``value``; a system call only on a change."""
    if getattr(_thread, "nice", None) != value:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), value)
            _thread.nice = value


def _time_sharing() -> None:
    """Pool initializer: this thread leaves the real-time class its process runs in."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class MonitorRunner:
    def __init__(self, max_workers: int) -> None:
        self._pool: BoundedPool[Check] = BoundedPool(max_workers, "clp-monitor",
                                                     initializer=_time_sharing)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a monitor is released
        # monitor -> (the call holding it, when that call started)
        self._busy: dict[str, tuple[object, float]] = {}
        # monitor -> its begin / end calls waiting for it, in the order they were asked for
        self._waiting: dict[str, list[object]] = {}

    def _release(self, name: str, token: object) -> None:
        """The call ``token`` holds the monitor, or waits for it, no longer."""
        with self._idle:
            if self._busy.get(name, (None, 0.0))[0] is token:
                del self._busy[name]
            waiting = self._waiting.get(name, [])
            if token in waiting:
                waiting.remove(token)
            if not waiting:
                self._waiting.pop(name, None)
            if self._waiting:  # a begin or end waits for its monitor: let it look
                self._idle.notify_all()

    def _take(self, name: str, token: object) -> bool:
        """Under the lock: the waiting call ``token`` takes the monitor if it is free and no
        call asked for before it still waits."""
        waiting = self._waiting.get(name, [])
        if name in self._busy or not waiting or waiting[0] is not token:
            return False
        waiting.pop(0)
        if not waiting:
            del self._waiting[name]
        self._busy[name] = (token, time.monotonic())
        return True

    def call(self, name: str, monitor: MonitorType, op: str, timeout: float, nice: int,
             log: logging.Logger) -> Future[Check]:
        """Run ``monitor.<op>()`` (begin, check or end) within ``timeout`` seconds.

        A check while an earlier call of the monitor has not returned is answered at once as a
        timeout. ``begin`` and ``end`` wait for it instead (within their timeout, in the order
        they were asked for): monitoring that stops or starts while a check runs must still
        release or take what the type holds (genw's script, userw's watchdog, pidw's process)."""
        token = object()  # this call, in _busy while it holds the monitor
        with self._lock:
            held = self._busy.get(name)
            claimed = False
            if op != "check":
                self._waiting.setdefault(name, []).append(token)
            elif held is None and not self._waiting.get(name):
                self._busy[name] = (token, time.monotonic())
                claimed = True
        if op == "check" and not claimed:
            out: Future[Check] = Future()
            out.set_result(Check(Health.ERROR, f"the previous check of {name} has not returned"
                                 + (f" for {time.monotonic() - held[1]:.0f} s" if held else ""),
                                 timed_out=True))
            return out
        method: Callable[[], Check | None] = getattr(monitor, op)
        ran = [False]  # the method was called: only its return frees the monitor

        def call() -> Check:
            started = time.monotonic()
            try:
                if op != "check":
                    with self._idle:
                        if not self._idle.wait_for(lambda: self._take(name, token), timeout):
                            return Check(Health.ERROR, f"{op} of {name} not started: the "
                                                       "previous check has not returned",
                                         timed_out=True, elapsed=time.monotonic() - started)
                ran[0] = True
                _nice(nice)
                result = method()
                elapsed = time.monotonic() - started
                if op != "check":
                    return Check(Health.NORMAL, f"{op} done", elapsed=elapsed)
                return checked(monitor, result, elapsed)
            finally:
                self._release(name, token)

        def ended(check: Check) -> Check:
            if not ran[0]:  # never started (pool shut down, or expired in the queue)
                self._release(name, token)
            return check

        # no grace: a check that times out is a timeout at once (its processes are killed
        # outright; the monitor stays busy until the call returns, so nothing races it)
        return self._pool.run(call, timeout, f"{op} of monitor {name}", log,
                              lambda why: ended(Check(Health.ERROR, why, timed_out=True,
                                                      elapsed=timeout)),
                              lambda why: ended(Check(Health.UNKNOWN, why)), grace=0.0)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)
