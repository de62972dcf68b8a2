"""The lab's FUSE daemons on the host (:mod:`clp.lab.pathfs` for the disk paths,
:mod:`clp.lab.watchdogfs` for the watchdogs): started, asked, found and stopped the same way.

A daemon ``NAME`` of lab ``LAB`` mounts ``/run/clplab/<LAB>/<NAME>``, answers on
``/run/clplab/<LAB>/<NAME>.sock`` (one JSON request, one JSON answer) and logs to
``/var/lib/clplab/<LAB>/<NAME>.log``. Teardown finds it without lab.json, by its environment
(``CLPLAB=<LAB>``, ``CLPLAB_SERVER=<NAME>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from clp.lab import netns as nx
from clp.lab.netns import RUN_DIR, VAR_DIR, LabError, run

START_WAIT = 10.0
STOP_WAIT = 5.0
CONTROL_TIMEOUT = 10.0
_CHILDREN: list[subprocess.Popen] = []  # daemons started here, reaped once ended


def mount_dir(lab: str, name: str) -> Path:
    return RUN_DIR / lab / name


def control_path(lab: str, name: str) -> Path:
    return RUN_DIR / lab / f"{name}.sock"


def start(lab: str, name: str, what: str, python: str, repo: str, module: str,
          args: list[str]) -> int:
    """Run ``python -m module --mount DIR --control SOCKET args...``; returns its pid once it
    answers. ``what``: how errors name it ("the disk path daemon of lab1")."""
    if not os.path.exists("/dev/fuse"):
        run(["modprobe", "fuse"], check=False)
        if not os.path.exists("/dev/fuse"):
            raise LabError(f"{what} needs FUSE: no /dev/fuse (modprobe fuse)")
    mount = mount_dir(lab, name)
    mount.mkdir(parents=True, exist_ok=True)
    argv = [python, "-m", module, "--mount", str(mount), "--control",
            str(control_path(lab, name)), *args]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": repo, "CLPLAB": lab,
           "CLPLAB_SERVER": name, "LANG": "C.UTF-8"}
    log = VAR_DIR / lab / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    _CHILDREN.append(proc)

    def answers() -> bool:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1000:].strip()
            raise LabError(f"{what} exited ({proc.returncode}): {tail}")
        try:
            return bool(control(lab, name, what, {"op": "state"}, timeout=1.0).get("ok"))
        except LabError:
            return False

    nx.poll(f"{what} to answer", answers, START_WAIT)
    return proc.pid


def control(lab: str, name: str, what: str, request: dict[str, Any],
            timeout: float = CONTROL_TIMEOUT) -> dict[str, Any]:
    """One request to the daemon; its answer once applied (LabError if none, or refused)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(timeout)
            s.connect(str(control_path(lab, name)))
            s.sendall(json.dumps(request).encode() + b"\n")
            raw = b""
            for _ in range(1024):  # an answer is a few hundred bytes
                chunk = s.recv(65536)
                raw += chunk
                if not chunk or raw.endswith(b"\n"):
                    break
        answer = json.loads(raw)
    except (OSError, ValueError) as e:
        raise LabError(f"{what} does not answer ({e})") from None
    if not answer.get("ok"):
        raise LabError(f"{what}: {answer.get('error', 'refused')}")
    return dict(answer)


def pids(lab: str, name: str) -> list[int]:
    return [p for p in nx.lab_pids(lab, name) if nx.alive(p)]


def unmount(lab: str, name: str) -> None:
    """Detach the daemon's mount (lazily: umount2 never looks into the mounted file system)."""
    from clp.lab.init import umount  # libc umount2(MNT_DETACH)

    for point in nx.host_mounts_under(mount_dir(lab, name)):
        with contextlib.suppress(OSError):
            umount(point)


def stop(lab: str, name: str) -> None:
    """SIGTERM (it answers what waits, unmounts, exits), SIGKILL after STOP_WAIT."""
    found = pids(lab, name)
    nx.signal_all(found, signal.SIGTERM)
    if not wait_gone(found, STOP_WAIT):
        nx.kill_all(found)
        wait_gone(found, STOP_WAIT)


def wait_gone(found: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for proc in list(_CHILDREN):
            if proc.poll() is not None:
                _CHILDREN.remove(proc)
        if not any(nx.alive(p) for p in found):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
