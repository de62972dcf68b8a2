"""The runner's timeout: an expired operation starts nothing more, a queued one never starts,
and TIMEOUT is delivered only once the worker has returned."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from clp.paths import InstallRoot
from clp.platform import proc
from clp.resources import registry
from clp.resources.base import Context, Status, done
from clp.resources.disk import DiskResource, short_start_timeout
from clp.resources.runner import ResourceRunner
from tests.unit.test_resources import context, rc, script


@pytest.fixture
def runner() -> Iterator[ResourceRunner]:
    r = ResourceRunner(max_workers=1)
    try:
        yield r
    finally:
        r.shutdown()


def test_expired_operation_refuses_to_spawn() -> None:
    operation = proc.Operation()
    proc.track(operation)
    try:
        assert proc.run(["true"], timeout=5).ok
        assert operation.groups == set()  # ended groups are forgotten (their ids get reused)
        child, _pump, _lines = proc.spawn(["sleep", "1000"])
        assert operation.expire() == [child.pid] and proc.expired()
        proc.kill_groups([child.pid], grace=1)
        assert child.wait(5) < 0
        refused = proc.run(["true"], timeout=5)
        assert refused.timed_out and refused.returncode == proc.NOT_STARTED
        assert not refused.ok and "timed out" in refused.output
        with pytest.raises(TimeoutError):
            proc.spawn(["true"])
    finally:
        proc.track(None)
    assert not proc.expired() and proc.run(["true"], timeout=5).ok


def test_timed_out_start_runs_no_later_step(root: InstallRoot, runner: ResourceRunner,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """disk.start-like: a step hangs, is killed; the next steps (fsck, mount) must not run, and
    the TIMEOUT arrives only after the worker returned (a cleanup stop would race it)."""
    marker = root.root / "late-step"
    seen: dict[str, Any] = {}

    def start(params: Any, ctx: Context) -> Any:
        seen["first"] = proc.run(["sleep", "1000"], timeout=100)
        time.sleep(0.5)  # the type's own work after its command was killed
        seen["late"] = proc.run(["touch", str(marker)], timeout=5)
        seen["returned"] = time.monotonic()
        return done("finished late")

    monkeypatch.setattr(registry.get("dummy"), "start", start)
    began = time.monotonic()
    result = runner.run("start", rc("d", "dummy"), context(root, "d"), 0.5).result(10)
    delivered = time.monotonic()
    assert result.status is Status.TIMEOUT and "did not finish in 0.5 s" in result.reason
    assert seen["first"].timed_out and seen["late"].returncode == proc.NOT_STARTED
    assert not marker.exists()
    assert seen["returned"] <= delivered < began + 3


def test_queued_operation_never_starts_after_its_timeout(root: InstallRoot,
                                                         runner: ResourceRunner) -> None:
    marker = root.root / "started"
    script(root, "late", "start.sh", f"touch {marker}\n")
    busy = runner.run("start", rc("d", "dummy", start_delay=1.0), context(root, "d"), 10)
    queued = runner.run("start", rc("late", "exec"), context(root, "late"), 0.2)
    result = queued.result(5)
    assert result.status is Status.TIMEOUT
    assert busy.result(10).ok
    time.sleep(0.3)
    assert not marker.exists()


def test_result_before_timeout_is_delivered(root: InstallRoot, runner: ResourceRunner) -> None:
    assert runner.run("start", rc("d", "dummy"), context(root, "d"), 5).result(5).ok


def test_disk_timeout_start_covers_its_steps() -> None:
    props = DiskResource.schema["properties"]
    fsck = props["fsck"]["properties"]["timeout"]["default"]
    assert props["timeout_start"]["default"] >= fsck + 2 * props["timeout_mount"]["default"]
    params = dict(rc("disk1", "disk", device="/dev/x", mount_point="/mnt/x").params)
    params["fsck"] = {"policy": "on_error", "timeout": fsck}
    assert short_start_timeout(params) is None
    assert "shorter than" in str(short_start_timeout({**params, "timeout_start": 10}))
    never = {**params, "timeout_start": 10, "fsck": {"policy": "never", "timeout": fsck}}
    assert short_start_timeout(never) is None
