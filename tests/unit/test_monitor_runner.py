"""The monitor runner: checks bounded by their timeout, hung checks never pile up threads, broken
checks are Unknown, and the monitor's nice value reaches what a check starts."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from clp.monitors.base import Check, Health, MonitorType, normal
from clp.monitors.runner import MonitorRunner
from clp.paths import InstallRoot
from clp.platform import proc
from tests.unit.test_monitor_types import WAIT, make, wait_for

log = logging.getLogger("test.monitor_runner")


@pytest.fixture
def runner() -> Iterator[MonitorRunner]:
    r = MonitorRunner(max_workers=4)
    try:
        yield r
    finally:
        r.shutdown()


class Blocking(MonitorType):
    """A check that blocks its thread until released (as a read from a hung disk does)."""

    name: ClassVar[str] = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.checks = 0
        self.ended = 0

    def check(self) -> Check:
        self.checks += 1
        self.release.wait(timeout=60)  # bounded, in case a test fails before releasing it
        return normal("released")

    def end(self) -> None:
        self.ended += 1


class Odd(MonitorType):
    name: ClassVar[str] = "odd"

    def __init__(self, value: Any) -> None:
        self.value = value

    def check(self) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class Niced(MonitorType):
    """Reports its thread's nice value and that of a process it starts."""

    name: ClassVar[str] = "niced"

    def __init__(self) -> None:
        pass

    def check(self) -> Check:
        thread = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        result = proc.run(["cat", "/proc/self/stat"], timeout=WAIT)
        stat = result.output
        child = int(stat[stat.rfind(")") + 2:].split()[16])  # field 19: nice
        return normal(f"{thread} {child}")


def pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("clp-monitor_")}


def sleeps_of_mine() -> list[int]:
    """The sleep processes this test process started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == os.getpid() and argv[0] == b"sleep" and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def test_a_hung_check_is_a_timeout_and_its_process_group_is_ended(
        runner: MonitorRunner, root: InstallRoot) -> None:
    hung = make("dummy", root, hang=True)
    started = time.monotonic()
    future = runner.call("d1", hung, "check", 0.5, 0, log)
    assert wait_for(lambda: len(sleeps_of_mine()) == 1)
    (sleep,) = sleeps_of_mine()
    result = future.result(timeout=0.5 + proc.KILL_GRACE + WAIT)
    took = time.monotonic() - started
    assert result.timed_out and result.health is Health.ERROR
    assert result.reason == "check of monitor d1 did not finish in 0.5 s"
    assert result.elapsed == 0.5
    assert 0.5 <= took < 0.5 + 1.0  # no grace: the timeout is known at once
    # killed outright (SIGKILL), gone as soon as its worker has reaped it
    assert wait_for(lambda: not proc.group_alive(sleep) and sleeps_of_mine() == [])
    # its thread has returned: the monitor is free for the next check
    assert wait_for(lambda: not runner._busy)
    assert runner.call("d1", make("dummy", root), "check", 5, 0, log).result(WAIT).ok


def test_a_blocked_check_keeps_its_monitor_busy(runner: MonitorRunner) -> None:
    blocked = Blocking()
    try:
        first = runner.call("b1", blocked, "check", 0.3, 0, log)
        assert wait_for(lambda: blocked.checks == 1)
        threads = pool_threads()
        started = time.monotonic()
        second = runner.call("b1", blocked, "check", 0.3, 0, log)
        assert second.done() and time.monotonic() - started < 0.1  # at once
        result = second.result()
        assert result.timed_out and result.health is Health.ERROR
        assert result.reason.startswith("the previous check of b1 has not returned for ")
        # the first one times out, its thread stays blocked
        timed_out = first.result(timeout=0.3 + proc.KILL_GRACE + WAIT)
        assert timed_out.timed_out
        third = runner.call("b1", blocked, "check", 0.3, 0, log)
        assert third.done() and third.result().timed_out
        assert blocked.checks == 1 and pool_threads() == threads  # nothing new started
        # another monitor is not held up
        assert runner.call("other", Blocking(), "end", 5, 0, log).result(WAIT).ok
    finally:
        blocked.release.set()
    assert wait_for(lambda: runner.call("b1", blocked, "check", 5, 0, log).result(WAIT).ok)
    assert blocked.checks == 2


def test_end_waits_for_a_running_check_instead_of_being_skipped(runner: MonitorRunner) -> None:
    blocked = Blocking()
    try:
        check = runner.call("b1", blocked, "check", 5, 0, log)
        assert wait_for(lambda: blocked.checks == 1)
        end = runner.call("b1", blocked, "end", 5, 0, log)
        begin = runner.call("b1", blocked, "begin", 5, 0, log)
        time.sleep(0.2)
        assert not end.done() and not begin.done() and blocked.ended == 0
        # a check asked for meanwhile does not overtake them
        assert runner.call("b1", blocked, "check", 5, 0, log).result(0).timed_out
        blocked.release.set()
        assert check.result(WAIT).ok
        assert end.result(WAIT).ok and end.result().reason == "end done"
        assert begin.result(WAIT).ok and blocked.ended == 1
    finally:
        blocked.release.set()
    # an end behind a check that never returns is a timeout, in its own time
    stuck = Blocking()
    try:
        runner.call("b2", stuck, "check", 5, 0, log)
        assert wait_for(lambda: stuck.checks == 1)
        result = runner.call("b2", stuck, "end", 0.3, 0, log).result(0.3 + proc.KILL_GRACE
                                                                      + WAIT)
        assert result.timed_out and stuck.ended == 0
    finally:
        stuck.release.set()
    assert wait_for(lambda: not runner._busy and not runner._waiting)


@pytest.mark.parametrize("value", [RuntimeError("probe broke"), None, True, "Normal"])
def test_a_broken_check_is_unknown(runner: MonitorRunner, value: Any) -> None:
    result = runner.call("o1", Odd(value), "check", 5, 0, log).result(WAIT)
    assert result.health is Health.UNKNOWN and not result.timed_out
    if isinstance(value, Exception):
        assert result.reason == "check of monitor o1 failed: RuntimeError('probe broke')"
    else:
        assert result.reason == f"odd.check returned {value!r}"
    # the monitor is free again
    assert runner.call("o1", Odd(normal()), "check", 5, 0, log).result(WAIT).ok


def test_a_timeout_the_type_reports_is_kept(runner: MonitorRunner) -> None:
    reported = Check(Health.ERROR, "genw.sh did not finish in 1 s", timed_out=True)
    result = runner.call("o1", Odd(reported), "check", 5, 0, log).result(WAIT)
    assert result.timed_out and result.reason == reported.reason and result.elapsed > 0


def test_elapsed_is_filled_in(runner: MonitorRunner, root: InstallRoot) -> None:
    result = runner.call("d1", make("dummy", root, delay=0.3), "check", 5, 0, log).result(WAIT)
    assert result.ok and not result.timed_out
    assert 0.3 <= result.elapsed < 0.3 + WAIT
    begun = runner.call("d1", make("dummy", root), "begin", 5, 0, log).result(WAIT)
    assert begun.ok and begun.reason == "begin done" and begun.elapsed >= 0


def test_nice_reaches_the_thread_and_what_it_starts(runner: MonitorRunner) -> None:
    niced = Niced()
    assert runner.call("n1", niced, "check", 5, 7, log).result(WAIT).reason == "7 7"
    if os.geteuid() == 0:  # only root may lower it again (the runner's threads are reused)
        assert runner.call("n1", niced, "check", 5, 3, log).result(WAIT).reason == "3 3"


def test_a_call_after_shutdown_is_unknown(root: InstallRoot) -> None:
    r = MonitorRunner(max_workers=1)
    r.shutdown()
    result = r.call("d1", make("dummy", root), "check", 5, 0, log).result(WAIT)
    assert result.health is Health.UNKNOWN and "cannot run check of monitor d1" in result.reason
    assert not r._busy  # the monitor is not left busy
