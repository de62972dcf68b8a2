"""``clpshm dump|cleanup`` against a throwaway install root."""

from __future__ import annotations

import json
import os

import posix_ipc
import pytest
from click.testing import CliRunner, Result

from clp.cli.clpshm import main
from clp.paths import InstallRoot
from clp.state import PATH_NORMAL, StateNotRunning, StateReader, StateWriter
from tests.unit.test_state import dead_writer


def run(root: InstallRoot, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"CLP_ROOT": str(root.root)})


def exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm{name}") or os.path.exists(f"/dev/shm/sem.{name[1:]}")


def evt_queue(root: InstallRoot) -> None:
    posix_ipc.MessageQueue(root.mq_name("evt"), posix_ipc.O_CREAT, mode=0o600).close()


def queue_exists(root: InstallRoot) -> bool:
    try:
        posix_ipc.MessageQueue(root.mq_name("evt")).close()
    except posix_ipc.ExistentialError:
        return False
    return True


def test_dump_not_running(root: InstallRoot) -> None:
    result = run(root, "dump")
    assert result.exit_code == 5
    assert result.output.startswith("Could not connect to the server. Check if the cluster "
                                    "service is active.\n")
    assert "The cluster service is not running" in result.output


def test_dump_text_and_json(root: InstallRoot) -> None:
    with StateWriter.create(root, 2, 1) as w:
        w.set_path(1, 0, last_rx=0.0, seq=41, state=PATH_NORMAL, rx_count=40, drops=2)
        w.publish({"servers": ["server1", "server2"], "paths": [{"name": "lankhb1"}]})
        text = run(root, "dump")
        as_json = run(root, "dump", "--json")
    assert text.exit_code == 0, text.output
    assert f"pid {os.getpid()}, alive" in text.output
    assert "server2" in text.output and "lankhb1" in text.output and "Normal" in text.output
    assert text.output.rstrip().endswith("Command succeeded.")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["writer_alive"] is True
    assert doc["header"]["magic"] == "CLPSTATE" and doc["header"]["generation"] == 1
    assert doc["paths"][1][0] == {"last_rx": 0.0, "seq": 41, "state": PATH_NORMAL,
                                  "rx_count": 40, "drops": 2}
    assert doc["snapshot"]["servers"] == ["server1", "server2"]


def test_dump_says_when_the_writer_is_dead(root: InstallRoot) -> None:
    pid = dead_writer(root)
    result = run(root, "dump", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["writer_alive"] is False and doc["header"]["writer_pid"] == pid
    assert "DEAD" in run(root, "dump").output


def test_cleanup_after_dead_writer_removes_everything(root: InstallRoot) -> None:
    dead_writer(root)
    evt_queue(root)
    result = run(root, "cleanup")
    assert result.exit_code == 0, result.output
    for name in (root.shm_name("state"), root.sem_name("state"), root.mq_name("evt")):
        assert f"Removed {name}" in result.output
    assert not exists(root.shm_name("state")) and not exists(root.sem_name("state"))
    assert not queue_exists(root)
    with pytest.raises(StateNotRunning):
        StateReader.open(root)
    with StateWriter.create(root, 1, 1) as w:  # a fresh start works after the cleanup
        assert w.generation == 1


def test_cleanup_refuses_a_live_writer(root: InstallRoot) -> None:
    with StateWriter.create(root, 1, 1):
        result = run(root, "cleanup")
        assert result.exit_code != 0
        assert str(os.getpid()) in result.output and "--force" in result.output
        assert result.output.startswith("Invalid option.")
        with StateReader.open(root) as r:  # untouched
            assert r.read().header.writer_pid == os.getpid()


def test_cleanup_force_removes_a_live_writers_region(root: InstallRoot) -> None:
    w = StateWriter.create(root, 1, 1)
    try:
        result = run(root, "cleanup", "--force")
        assert result.exit_code == 0, result.output
        assert str(os.getpid()) in result.output  # warned that it is still running
        assert not exists(root.shm_name("state"))
    finally:
        w.close()  # finds the region gone and leaves whatever is there alone


def test_cleanup_with_nothing_to_remove(root: InstallRoot) -> None:
    result = run(root, "cleanup")
    assert result.exit_code == 0
    assert "Nothing to clean up." in result.output
