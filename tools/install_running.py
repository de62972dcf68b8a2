"""What of an installation runs: its processes, its supervisor, its systemd services.

A process belongs to the installation when the program or script it was started as (the first
two words of its command line, seen from that process's own root and mount namespace through
``/proc/PID/root``) is one of the installation's files: the same device and inode as something in
``bin/`` or ``lib/python/bin/``. So a server chrooted into the install root, a lab server that has
the installed code bind-mounted at the product's path, and a plain process started from
``$PREFIX/bin`` are all found, while a process of another installation with the same path in
another mount namespace is not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

CODE_DIRS = ("bin", "lib/python/bin")


class Running(NamedTuple):
    what: str  # "clusterpro_evt (pid 812)", "clusterpro (systemd: active)"
    pid: int | None = None


def identities(install: Path) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of the installation's programs: each link itself, and what it points to
    when that is inside the installation (never the system's python a venv links to)."""
    found = set()
    inside = install.resolve()
    for sub in CODE_DIRS:
        with contextlib.suppress(OSError):
            for entry in os.scandir(install / sub):
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    found.add((st.st_dev, st.st_ino))
                    if entry.is_symlink() and Path(entry.path).resolve().is_relative_to(inside):
                        st = entry.stat()
                        found.add((st.st_dev, st.st_ino))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [w.decode(errors="replace") for w in raw.split(b"\0") if w]


def _started_from(pid: int, argv: list[str], ids: set[tuple[int, int]]) -> str | None:
    for word in reversed(argv[:2]):  # the script a python runs names it better than python
        if not word.startswith("/"):
            continue
        for stat in (os.lstat, os.stat):
            with contextlib.suppress(OSError):
                st = stat(f"/proc/{pid}/root{word}")
                if (st.st_dev, st.st_ino) in ids:
                    return os.path.basename(word)
    return None


def processes(install: Path) -> list[Running]:
    ids = identities(install)
    if not ids:
        return []
    found = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        name = _started_from(pid, _cmdline(pid), ids)
        if name is not None:
            found.append(Running(f"{name} (pid {pid})", pid))
    return found


def supervisor_answers(install: Path) -> bool:
    """``clpsupervise`` of this install root listens (a stale socket file refuses)."""
    path = install / "run" / "clpsupervise.sock"
    if not path.exists():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def systemd_active(names: Iterable[str]) -> list[Running]:
    """The services systemd runs now (only where systemd is this machine's init)."""
    if not (shutil.which("systemctl") and Path("/run/systemd/system").is_dir()):
        return []
    found = []
    for name in names:
        r = subprocess.run(["systemctl", "is-active", f"{name}.service"], capture_output=True,
                           text=True, timeout=30)
        if r.stdout.strip() in ("active", "activating", "deactivating", "reloading"):
            found.append(Running(f"{name} (systemd: {r.stdout.strip()})"))
    return found


def smf_online(fmris: Iterable[str]) -> list[Running]:
    if not shutil.which("svcs"):
        return []
    found = []
    for fmri in fmris:
        r = subprocess.run(["svcs", "-H", "-o", "state", fmri], capture_output=True, text=True,
                           timeout=30)
        if r.returncode == 0 and r.stdout.strip() not in ("disabled", "uninitialized", ""):
            found.append(Running(f"{fmri} (SMF: {r.stdout.strip()})"))
    return found


def what_runs(install: Path, systemd_names: Iterable[str] = (),
              fmris: Iterable[str] = ()) -> list[Running]:
    found = processes(install)
    if supervisor_answers(install):
        found.append(Running("clpsupervise (run/clpsupervise.sock answers)"))
    return found + systemd_active(systemd_names) + smf_online(fmris)


def terminate(pids: Iterable[int], wait: float = 30.0) -> list[int]:
    """SIGTERM, then wait (bounded) for them to go; returns those still alive."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)]
    return alive


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
