"""The lab's shared disks: an ext4 image per disk, reached by each server through its own path.

Disk n is the sparse file ``/var/lib/clplab/<lab>/disk<n>.img`` (``mkfs.ext4`` on the file
itself). One FUSE daemon per lab (:mod:`clp.lab.pathfs`, mounted on the host at
``/run/clplab/<lab>/diskpaths``) shows one file per (server, disk), ``server1-disk1.img``, a
direct-I/O passthrough to the image, and each server has its own loop device (buffered,
``--direct-io=off``) on its file. Its init makes ``/dev/lab/disk<n>`` from that loop device's
numbers (see :mod:`clp.lab.init`). Every read and write of every path reaches the image through
the host's page cache, so what server2 writes through its path server1 reads through its own.

A path's mode (:data:`MODES`) is ``ok``, ``hang`` (its I/O blocks in the daemon) or ``eio``
(its I/O fails), or ``cut`` (fails, set by the lab's power-off of its server and given back
by its restart: kept by the daemon, so no other process's view of lab.json can lose it); the
daemon's control socket ``/run/clplab/<lab>/diskpaths.sock`` sets and
reports them, answering once a mode is applied.

Teardown finds everything from the system, without lab.json: the daemon by its environment
(``CLPLAB=<lab>``, ``CLPLAB_SERVER=diskpaths``), the loop devices by their backing files (the
image or a path file of the lab), the mount under the lab's run directory. It sets every path to
``eio`` first (:func:`release_paths`), so any process stuck on a hung path unwinds, and stops
the daemon last (:func:`stop_daemon`), after the loop devices are detached and the mount is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from clp.lab import labdaemon
from clp.lab import netns as nx
from clp.lab.netns import RUN_DIR, VAR_DIR, LabError, run

DISK_SIZE = 256 * 1024 * 1024
LAB_DEV_DIR = Path("/dev/lab")  # an empty mount point on the host; each server mounts over it
MODES = ("ok", "hang", "eio")  # what an operator sets
CUT = "cut"
DAEMON = "diskpaths"  # the daemon's CLPLAB_SERVER, its mount point and socket names
CONTROL_TIMEOUT = 10.0


def image_path(lab: str, n: int) -> Path:
    return VAR_DIR / lab / f"disk{n}.img"


def control_path(lab: str) -> Path:
    return labdaemon.control_path(lab, DAEMON)


def paths_dir(lab: str) -> Path:
    """The FUSE mount point on the host: one file per (server, disk)."""
    return labdaemon.mount_dir(lab, DAEMON)


def path_name(server: str, disk: str) -> str:
    return f"{server}-{disk}"


def path_file(lab: str, server: str, disk: str) -> Path:
    return paths_dir(lab) / f"{path_name(server, disk)}.img"


def make_image(lab: str, n: int) -> dict[str, Any]:
    """Disk n's sparse image with ext4 on it (made on the file: no FUSE, no loop device)."""
    path = image_path(lab, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(DISK_SIZE)
    run(["mkfs.ext4", "-q", "-F", str(path)])
    return {"name": f"disk{n}", "file": str(path), "paths": {}}


# the daemon
def start_daemon(lab: str, python: str, repo: str, disks: list[dict[str, Any]],
                 servers: list[str]) -> int:
    """Mount the lab's paths (every server to every disk); returns once the daemon answers."""
    files = [f"--file={path_name(s, d['name'])}={d['file']}" for d in disks for s in servers]
    return labdaemon.start(lab, DAEMON, _what(lab), python, repo, "clp.lab.pathfs", files)


def _what(lab: str) -> str:
    return f"the disk path daemon of {lab}"


def control(lab: str, request: dict[str, Any], timeout: float = CONTROL_TIMEOUT) -> dict:
    """One request to the daemon; its answer once applied (LabError if none)."""
    return labdaemon.control(lab, DAEMON, _what(lab), request, timeout)


def set_mode(lab: str, names: list[str] | None, mode: str) -> dict[str, str]:
    """``names`` (every path if None) to ``mode``; returns every path's mode once applied."""
    if mode not in (*MODES, CUT):
        raise LabError(f"disk path mode {mode!r}: one of {', '.join(MODES)}")
    request: dict[str, Any] = {"op": "set", "mode": mode}
    if names is not None:
        request["files"] = names
    return dict(control(lab, request)["modes"])


def modes(lab: str) -> dict[str, str]:
    """Every path's mode (``server1-disk1`` -> ``ok``); empty when no daemon answers."""
    with contextlib.suppress(LabError):
        return dict(control(lab, {"op": "modes"}, timeout=2.0)["modes"])
    return {}


def attach(lab: str, server: str, disk: str) -> dict[str, str]:
    """A loop device of ``server`` on its path file (buffered: every I/O reaches the daemon)."""
    path = path_file(lab, server, disk)
    loop = run(["losetup", "-f", "--show", "--direct-io=off", str(path)]).strip()
    if not loop.startswith("/dev/loop"):
        raise LabError(f"losetup -f --show {path}: unexpected answer {loop!r}")
    rdev = os.stat(loop).st_rdev
    return {"loop": loop, "dev": f"{os.major(rdev)}:{os.minor(rdev)}"}


# found again from the system (teardown, status)
def loop_devices() -> list[tuple[str, str]]:
    """(loop device, backing file) of every attached loop device on the host."""
    out = run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"], check=False)
    try:
        rows = json.loads(out).get("loopdevices", []) if out.strip() else []
    except ValueError:
        return []
    found = []
    for row in rows:
        back = (row.get("back-file") or "").removesuffix(" (deleted)")
        found.append((row.get("name", ""), back))
    return found


def lab_of_file(back: str) -> str | None:
    """The lab a loop device belongs to, from its backing file: ``/var/lib/clplab/<lab>/disk*``
    (an image) or ``/run/clplab/<lab>/diskpaths/*`` (a server's path)."""
    parts = Path(back).parts
    for base, depth in ((VAR_DIR.parts, 2), (RUN_DIR.parts, 3)):
        if len(parts) == len(base) + depth and parts[:len(base)] == base:
            if depth == 2 and parts[-1].startswith("disk"):
                return parts[-2]
            if depth == 3 and parts[-2] == DAEMON:
                return parts[-3]
    return None


def daemon_pids(lab: str) -> list[int]:
    return labdaemon.pids(lab, DAEMON)


def release_paths(lab: str) -> None:
    """Every path to ``eio``, so every request parked by a hang fails and its process unwinds.
    A daemon that does not answer is killed instead (its connection's requests all fail)."""
    pids = daemon_pids(lab)
    if not pids:
        return
    try:
        set_mode(lab, None, "eio")
    except LabError:
        nx.kill_all(pids)
        labdaemon.wait_gone(pids, labdaemon.STOP_WAIT)


def detach_lab(lab: str) -> None:
    """Detach every loop device of ``lab``; call once no server is left to hold a mount."""
    for loop, back in loop_devices():
        if lab_of_file(back) == lab:
            run(["losetup", "-d", loop], check=False)


def unmount_paths(lab: str) -> None:
    labdaemon.unmount(lab, DAEMON)


def stop_daemon(lab: str) -> None:
    labdaemon.stop(lab, DAEMON)


def remove_images(lab: str) -> None:
    with contextlib.suppress(OSError):
        for path in (VAR_DIR / lab).glob("disk*.img"):
            path.unlink()
