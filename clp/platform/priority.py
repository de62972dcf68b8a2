"""Scheduling priority of the cluster service: heartbeats must not wait behind a busy machine.

On a machine whose CPUs are saturated (a runaway application, a backup, a benchmark under
``stress-ng``) an ordinary process can be kept off the CPU for longer than a short heartbeat
timeout: its peers then declare it down and take its groups, and it fences itself when it runs
again, a failover nothing justified. ``clusterpro`` therefore asks for a modest real-time
priority (``SCHED_RR``, the same class the product's heartbeat uses), with ``SCHED_RESET_ON_FORK``
so that the scripts and commands it starts run as ordinary processes. Where that is refused it
falls back to a negative nice value; either way it logs what it got. Linux only (Solaris: the
``priocntl`` RT class, with the SMF manifest).
"""

from __future__ import annotations

import logging
import os

RT_PRIORITY = 10  # low among real-time priorities: kernel threads and watchdogs stay above
NICE = -10


def raise_priority(log: logging.Logger) -> str:
    """Raise this process' priority as far as allowed; returns what it got, for the log."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(RT_PRIORITY))
            got = f"real-time SCHED_RR priority {RT_PRIORITY}"
            log.info("scheduling: %s", got)
            return got
        except (OSError, AttributeError) as e:
            log.warning("scheduling: SCHED_RR refused (%s); trying nice %d", e, NICE)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
        got = f"nice {NICE}"
    except OSError as e:
        got = f"unchanged ({e})"
    log.info("scheduling: %s", got)
    return got


def like_main_thread(log: logging.Logger) -> None:
    """Give the calling thread the real-time scheduling of the process's main thread, if it has
    one. Threads do not inherit it: ``SCHED_RESET_ON_FORK`` resets every child task, threads
    included. A heartbeat I/O thread (a LAN path's receive thread, the disk and COM threads)
    must not wait behind a busy machine any more than the event loop: under ``stress-ng`` a LAN
    receive thread left at SCHED_OTHER let 8 paths and a server time out in 3 minutes at 10 ms.
    A refusal is logged and the thread goes on as it is."""
    if not hasattr(os, "sched_getscheduler"):
        return
    try:
        policy = os.sched_getscheduler(os.getpid())  # the main thread's (its tid is the pid)
        if policy & ~os.SCHED_RESET_ON_FORK not in (os.SCHED_RR, os.SCHED_FIFO):
            return  # not real-time: nice is inherited as it is
        os.sched_setscheduler(0, policy, os.sched_getparam(os.getpid()))
    except OSError as e:
        log.warning("scheduling: this thread keeps its priority (%s)", e)
