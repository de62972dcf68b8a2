"""Removing a lab: everything of it, found again from the system itself (not from lab.json).

Order matters: every shared disk path to ``eio`` first (a process blocked on a hung path then
unwinds and can die), then processes (a dead server's mount namespace, and with it every mount of
a shared disk, goes away with its last process), nft, namespaces, links, loop devices, the disk
paths' FUSE mount, the disk path daemon last, then files.
The host directories the lab had to create (mount points such as ``/opt/nec/clusterpro`` and
``/dev/lab``) are recorded when made and removed, if still empty, once no lab is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from clp.lab import com_cable, hb_disk, shared_disk, watchdog
from clp.lab import netns as nx
from clp.lab.netns import CREATED_DIRS, RUN_DIR, VAR_DIR

KILL_WAIT = 5.0


def make_host_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) on the host, remembering what did not exist."""
    created: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        created = json.loads(CREATED_DIRS.read_text())
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    created += [str(p) for p in missing if str(p) not in created]
    CREATED_DIRS.parent.mkdir(parents=True, exist_ok=True)
    CREATED_DIRS.write_text(json.dumps(created))


def known_labs() -> list[str]:
    """Every lab name with something left: state dirs, netns, links, nft, loops, processes."""
    names: set[str] = set()
    for d in (RUN_DIR, VAR_DIR):
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.is_dir())
    names.update(t.removeprefix("clplab_") for t in nx.nft_tables() if t.startswith("clplab_"))
    pattern = re.compile(rf"^([a-z0-9]{{1,8}})-(server\d+|{nx.CLIENT}|{nx.ROUTER}|pub|ic1)$")
    for item in (*nx.netns_list(), *nx.link_list()):
        if m := pattern.match(item):
            names.add(m.group(1))
    names.update(n for _, back in shared_disk.loop_devices()
                 if (n := shared_disk.lab_of_file(back)))
    names.update(nx.environ_of(pid)["CLPLAB"] for pid in nx.lab_pids(None))
    return sorted(n for n in names if re.match(r"^[a-z0-9]{1,8}$", n))


def cleanup_lab(lab: str) -> None:
    watchdog.remove(lab)  # first: it would power off the servers as they die
    com_cable.kill_lab(lab)  # its serial cable (socat), found by its command line
    shared_disk.release_paths(lab)  # every disk path to eio: nothing stays blocked on a hang
    namespaces = [ns for ns in nx.netns_list() if ns.startswith(f"{lab}-")]
    victims = set(nx.lab_pids(lab))
    for ns in namespaces:
        victims.update(nx.netns_pids(ns))
    victims.discard(os.getpid())
    victims.difference_update(shared_disk.daemon_pids(lab))  # stopped once nothing uses it
    nx.kill_all(victims)
    deadline = time.monotonic() + KILL_WAIT
    while any(nx.alive(p) for p in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    if nx.nft_table(lab) in nx.nft_tables():
        nx.run(["nft", "delete", "table", "bridge", nx.nft_table(lab)], check=False)
    for ns in namespaces:
        nx.delete_netns(ns)
    pattern = nx.lab_link_re(lab)
    for link in nx.link_list():
        if pattern.match(link):
            nx.delete_link(link)
    hb_disk.detach_lab(lab)
    shared_disk.detach_lab(lab)
    shared_disk.unmount_paths(lab)
    shared_disk.stop_daemon(lab)
    shared_disk.remove_images(lab)
    for base in (VAR_DIR / lab, RUN_DIR / lab):
        for point in nx.host_mounts_under(base):
            nx.run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)


def remove_shared_dirs() -> None:
    """Once no lab is left: the lab's top directories and the mount point dirs it created."""
    labs = [p for d in (RUN_DIR, VAR_DIR) if d.is_dir() for p in d.iterdir() if p.is_dir()]
    if labs:
        return
    created: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        created = json.loads(CREATED_DIRS.read_text())
    for d in sorted(created, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)  # only if empty: never anything a real installation put there
    with contextlib.suppress(OSError):
        CREATED_DIRS.unlink()
    for d in (RUN_DIR, VAR_DIR):
        with contextlib.suppress(OSError):
            d.rmdir()
