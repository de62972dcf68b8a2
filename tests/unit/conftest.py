"""Fixtures shared by the unit tests."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import posix_ipc
import pytest

from clp.paths import InstallRoot


def remove_ipc(root: InstallRoot) -> None:
    """Remove every IPC object and volatile file an install root can own."""
    for unlink, name in ((posix_ipc.unlink_shared_memory, root.shm_name("state")),
                         (posix_ipc.unlink_semaphore, root.sem_name("state")),
                         (posix_ipc.unlink_message_queue, root.mq_name("evt"))):
        with contextlib.suppress(posix_ipc.ExistentialError):
            unlink(name)
    shutil.rmtree(root.volatile_dir, ignore_errors=True)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallRoot]:
    """A private install root (``CLP_ROOT`` points at it) whose IPC objects are removed after."""
    install = InstallRoot(tmp_path / "root")
    install.ensure_dirs()
    monkeypatch.setenv("CLP_ROOT", str(install.root))
    remove_ipc(install)
    try:
        yield install
    finally:
        remove_ipc(install)
