"""The ``state`` region: round trip, stale and busy writers, layout checks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import posix_ipc
import pytest

from clp.paths import InstallRoot
from clp.state import (
    PATH_ERROR,
    PATH_NORMAL,
    PATH_NOT_USED,
    PATH_UNKNOWN,
    PathRecord,
    StateBusy,
    StateError,
    StateNotRunning,
    StateReader,
    StateStale,
    StateWriter,
)
from clp.state.layout import HEADER, RECORD, writer_alive

REPO = Path(__file__).resolve().parents[2]

CHILD_WRITER = """
import sys, time
from pathlib import Path
from clp.paths import InstallRoot
from clp.state import StateWriter
w = StateWriter.create(InstallRoot(Path(sys.argv[1])), 2, 2)
w.publish({"from": "child"})
print("ready", flush=True)
time.sleep(60)
"""






@contextlib.contextmanager
def child_writer(root: InstallRoot) -> Iterator[subprocess.Popen[str]]:
    """A separate process holding the writer role until the block ends (then SIGKILLed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", CHILD_WRITER, str(root.root)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]


def dead_writer(root: InstallRoot) -> int:
    """Leave a region behind a SIGKILLed writer; its pid."""
    with child_writer(root) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return proc.pid


def shm_mode(name: str) -> int:
    return os.stat(f"/dev/shm{name}").st_mode & 0o777


def test_path_constants() -> None:
    assert (PATH_UNKNOWN, PATH_NORMAL, PATH_ERROR, PATH_NOT_USED) == (0, 1, 2, 3)
    assert HEADER.size == 72 and RECORD.size == 48


def test_round_trip(root: InstallRoot) -> None:
    with StateWriter.create(root, 3, 2) as w:
        w.set_path(2, 1, last_rx=12.5, seq=7, state=PATH_ERROR, rx_count=9, drops=1)
        w.publish({"cluster": "c1", "servers": ["a", "b", "c"]})
        with StateReader.open(root) as r:
            view = r.read()
    h = view.header
    assert (h.magic, h.version, h.writer_pid, h.generation) == (b"CLPSTATE", 1, os.getpid(), 1)
    assert (h.n_servers, h.n_paths) == (3, 2)
    assert h.seq == 2 and h.seq % 2 == 0
    assert view.paths[2][1] == PathRecord(12.5, 7, PATH_ERROR, 9, 1)
    assert view.paths[0][0] == PathRecord(0.0, 0, PATH_UNKNOWN, 0, 0)
    assert len(view.paths) == 3 and all(len(row) == 2 for row in view.paths)
    assert view.snapshot == {"cluster": "c1", "servers": ["a", "b", "c"]}


def test_snapshot_before_first_publish_is_empty(root: InstallRoot) -> None:
    with StateWriter.create(root, 1, 1), StateReader.open(root) as r:
        assert r.read().snapshot == {}


def test_publish_alternates_slots_and_advances(root: InstallRoot) -> None:
    with StateWriter.create(root, 1, 1) as w, StateReader.open(root) as r:
        seen = []
        for k in range(5):
            w.publish({"k": k})
            view = r.read()
            assert view.snapshot == {"k": k}
            seen.append((view.header.active, view.header.seq, view.header.updated))
    assert [a for a, _, _ in seen] == [1, 0, 1, 0, 1]
    assert [s for _, s, _ in seen] == [2, 4, 6, 8, 10]
    assert [u for _, _, u in seen] == sorted(u for _, _, u in seen)


def test_not_running_without_segment(root: InstallRoot) -> None:
    with pytest.raises(StateNotRunning):
        StateReader.open(root)


def test_close_unlinks_segment_and_semaphore(root: InstallRoot) -> None:
    w = StateWriter.create(root, 1, 1)
    assert shm_mode(root.shm_name("state")) == 0o600
    w.close(unlink=True)
    with pytest.raises(StateNotRunning):
        StateReader.open(root)
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.Semaphore(root.sem_name("state"))


def test_close_without_unlink_keeps_region_and_frees_role(root: InstallRoot) -> None:
    w = StateWriter.create(root, 1, 1)
    w.publish({"k": 1})
    w.close(unlink=False)
    with StateReader.open(root) as r:
        assert r.read().snapshot == {"k": 1}
    with StateWriter.create(root, 1, 1) as again:
        assert again.generation == 2


def test_snapshot_too_big_is_refused_and_old_one_kept(root: InstallRoot) -> None:
    with StateWriter.create(root, 1, 1, snapshot_capacity=64) as w:
        w.publish({"small": True})
        with pytest.raises(StateError, match=r"\d+ bytes, more than the 64 bytes"):
            w.publish({"big": "x" * 100})
        with StateReader.open(root) as r:
            assert r.read().snapshot == {"small": True}


def test_set_path_outside_table(root: InstallRoot) -> None:
    with StateWriter.create(root, 2, 2) as w, pytest.raises(IndexError):
        w.set_path(2, 0, last_rx=0.0, seq=0, state=0, rx_count=0, drops=0)


def corrupt(root: InstallRoot, offset: int, data: bytes) -> None:
    shm = posix_ipc.SharedMemory(root.shm_name("state"))
    try:
        os.pwrite(shm.fd, data, offset)
    finally:
        shm.close_fd()


@pytest.mark.parametrize(("offset", "data", "message"), [
    (0, b"NOTCLPST", "not a clp state region"),
    (8, (99).to_bytes(4, "little"), "layout version 99"),
    (16, (12).to_bytes(8, "little"), "has size"),
])
def test_bad_header_is_refused(root: InstallRoot, offset: int, data: bytes,
                               message: str) -> None:
    with StateWriter.create(root, 1, 1):
        corrupt(root, offset, data)
        with pytest.raises(StateError, match=message):
            StateReader.open(root)


def test_stale_region_is_detected_and_taken_over(root: InstallRoot) -> None:
    pid = dead_writer(root)
    with pytest.raises(StateStale) as e:
        StateReader.open(root)
    assert e.value.writer_pid == pid
    with StateReader.open(root, allow_stale=True) as r:
        assert not r.writer_alive()
        assert r.read().snapshot == {"from": "child"}
    with StateWriter.create(root, 1, 1) as w:  # the dead writer kept the semaphore taken
        assert w.generation == 2
        with StateReader.open(root) as r:
            h = r.read().header
            assert (h.writer_pid, h.generation, h.n_servers) == (os.getpid(), 2, 1)


def test_busy_with_live_writer_in_another_process(root: InstallRoot) -> None:
    with child_writer(root) as proc:
        with pytest.raises(StateBusy, match=str(proc.pid)) as e:
            StateWriter.create(root, 2, 2)
        assert e.value.writer_pid == proc.pid
        with StateReader.open(root) as r:  # the refused writer touched nothing
            assert r.read().snapshot == {"from": "child"}


def test_busy_with_second_writer_in_same_process(root: InstallRoot) -> None:
    with StateWriter.create(root, 1, 1), pytest.raises(StateBusy, match=str(os.getpid())):
        StateWriter.create(root, 1, 1)


def test_writer_alive_rejects_reused_pid_and_zombies() -> None:
    assert writer_alive(os.getpid())
    assert not writer_alive(os.getpid(), start_ticks=1)  # same pid, different process start
    assert not writer_alive(0)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert not writer_alive(proc.pid)
    finally:
        proc.wait(timeout=10)
