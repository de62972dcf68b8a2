"""The cluster service's real-time scheduling reaches its heartbeat threads (in a child process:
the test runner keeps its own)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import logging, os, threading
from clp.platform.priority import like_main_thread, raise_priority
print(raise_priority(logging.getLogger("t")))
got = {}
def run(follow):
    if follow:
        like_main_thread(logging.getLogger("t"))
    got[follow] = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
for follow in (False, True):
    t = threading.Thread(target=run, args=(follow,))
    t.start()
    t.join()
print(got[False] == os.SCHED_OTHER, got[True] == os.SCHED_RR)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "sched_setscheduler"),
                    reason="real-time scheduling needs root on Linux")
def test_a_heartbeat_thread_takes_the_main_threads_real_time_class() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True, timeout=30).stdout.splitlines()
    if not out[0].startswith("real-time SCHED_RR"):
        pytest.skip(f"real-time scheduling refused on this machine: {out[0]}")
    # a thread does not inherit it (SCHED_RESET_ON_FORK), and like_main_thread gives it
    assert out[1] == "True True", out
