"""The lab's shared disks: a sparse file per disk, one loop device, ext4 on it.

Every server sees disk n as ``/dev/lab/disk<n>``: its init mounts a private tmpfs on
``/dev/lab`` and creates a block node with the loop device's numbers there (see
:mod:`clp.lab.init`). The loop device itself is found again from its backing file under
``/var/lib/clplab/<lab>/``, so teardown detaches it even without lab.json.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from clp.lab.netns import VAR_DIR, LabError, run

DISK_SIZE = 256 * 1024 * 1024
LAB_DEV_DIR = Path("/dev/lab")  # an empty mount point on the host; each server mounts over it


def image_path(lab: str, n: int) -> Path:
    return VAR_DIR / lab / f"disk{n}.img"


def attach(lab: str, n: int) -> dict[str, str]:
    """Create disk n's sparse file and attach a free loop device to it."""
    path = image_path(lab, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(DISK_SIZE)
    loop = run(["losetup", "-f", "--show", str(path)]).strip()
    if not loop.startswith("/dev/loop"):
        raise LabError(f"losetup -f --show {path}: unexpected answer {loop!r}")
    return {"name": f"disk{n}", "file": str(path), "loop": loop}


def format_ext4(loop: str) -> str:
    """mkfs.ext4 on ``loop``; returns its ``major:minor`` for the servers' device nodes."""
    run(["mkfs.ext4", "-q", "-F", loop])
    rdev = os.stat(loop).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


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
    """The lab a loop device belongs to, from a backing file ``/var/lib/clplab/<lab>/disk*``."""
    parts = Path(back).parts
    base = VAR_DIR.parts
    if len(parts) == len(base) + 2 and parts[:len(base)] == base and \
            parts[-1].startswith("disk"):
        return parts[-2]
    return None


def detach_lab(lab: str) -> None:
    """Detach every loop device of ``lab``; call once no server is left to hold a mount."""
    for loop, back in loop_devices():
        if lab_of_file(back) == lab:
            run(["losetup", "-d", loop], check=False)
    with contextlib.suppress(OSError):
        for path in (VAR_DIR / lab).glob("disk*.img"):
            path.unlink()
