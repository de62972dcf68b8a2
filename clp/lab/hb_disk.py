"""The lab's heartbeat disk (``diskhb1``): one shared disk that each server reaches through its
own loop device, so one server's disk path can fail alone.

One backing file ``/var/lib/clplab/<lab>/diskhb1.img`` (16 MiB) and one loop device per server
attached to it, buffered (``--direct-io=off``): every loop device reads and writes the backing
file through the host's page cache, so what a server writes with ``O_DIRECT`` through its loop
device is what every other server reads with ``O_DIRECT`` through its own, like one disk on a
shared bus. Each server sees its loop device as ``/dev/lab/diskhb1`` (a node made by its init,
:mod:`clp.lab.init`, from ``--disk=diskhb1=major:minor``).

Fault (``clplab unplug SERVER diskhb``): that server's loop device is moved to offset = end of
the file with ``LOOP_SET_STATUS64``. Its capacity becomes 0 while the server keeps it open: its
reads return end of file (the heartbeat's C helper reports a short read as EIO), its writes
fail with ENOSPC, and it neither reads nor overwrites the others' slots, exactly as a server whose
HBA or cable to the shared disk died. ``plug`` sets offset 0 again. The other servers' loop
devices are untouched.

The loop devices are found again from the backing file's path (:func:`loops_of`), so teardown
detaches them without lab.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path
from typing import Any

from clp.lab.netns import VAR_DIR, LabError, run
from clp.lab.shared_disk import loop_devices

NAME = "diskhb1"
LINK = "diskhb"  # the link name of clplab unplug/plug
DEVICE = f"/dev/lab/{NAME}"  # as the servers see it (the lab config's interconnect names it)
IMAGE_SIZE = 16 * 1024 * 1024

# <linux/loop.h>: struct loop_info64 is 232 bytes; lo_offset is the u64 at byte 24
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
_LOOP_INFO64_SIZE = 232
_LO_OFFSET = struct.Struct("=Q")
_LO_OFFSET_AT = 24


def image_path(lab: str) -> Path:
    return VAR_DIR / lab / f"{NAME}.img"


def make(lab: Any) -> None:
    """Create the backing file and one loop device per server of ``lab`` (a :class:`Lab`),
    recording each in ``lab.doc["diskhb"]`` as soon as it exists."""
    path = image_path(lab.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(IMAGE_SIZE)  # zeros: the first server to start writes the header
    lab.doc["diskhb"] = {"file": str(path), "loops": {}}
    lab._save()
    for server in lab.servers:
        loop = run(["losetup", "-f", "--show", "--direct-io=off", str(path)]).strip()
        if not loop.startswith("/dev/loop"):
            raise LabError(f"losetup -f --show {path}: unexpected answer {loop!r}")
        rdev = os.stat(loop).st_rdev
        lab.doc["diskhb"]["loops"][server] = {"loop": loop,
                                              "dev": f"{os.major(rdev)}:{os.minor(rdev)}"}
        lab._save()


def init_args(doc: dict[str, Any], server: str) -> list[str]:
    """The ``--disk`` argument of ``server``'s init (none if the lab has no heartbeat disk)."""
    entry = (doc.get("diskhb") or {}).get("loops", {}).get(server)
    return [f"--disk={NAME}={entry['dev']}"] if entry else []


def loop_of(doc: dict[str, Any], server: str) -> str:
    """The host's loop device behind ``server``'s ``/dev/lab/diskhb1``."""
    entry = (doc.get("diskhb") or {}).get("loops", {}).get(server)
    if not entry:
        raise LabError(f"{server} has no heartbeat disk (clplab up --diskhb makes one)")
    return str(entry["loop"])


def set_offset(loop: str, offset: int) -> None:
    """Move ``loop`` to ``offset`` in its backing file (it may be open and in use)."""
    info = bytearray(_LOOP_INFO64_SIZE)
    fd = os.open(loop, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, LOOP_GET_STATUS64, info)
        _LO_OFFSET.pack_into(info, _LO_OFFSET_AT, offset)
        fcntl.ioctl(fd, LOOP_SET_STATUS64, info)
    except OSError as e:
        raise LabError(f"{loop}: cannot set offset {offset}: {e}") from None
    finally:
        os.close(fd)


def offset_of(loop: str) -> int:
    info = bytearray(_LOOP_INFO64_SIZE)
    fd = os.open(loop, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, LOOP_GET_STATUS64, info)
    finally:
        os.close(fd)
    return int(_LO_OFFSET.unpack_from(info, _LO_OFFSET_AT)[0])


def fail(loop: str) -> None:
    """The disk path behind ``loop`` dies: offset to the end of the file, capacity 0."""
    back = os.stat(_backing_file(loop)).st_size
    set_offset(loop, back)


def repair(loop: str) -> None:
    set_offset(loop, 0)


def _backing_file(loop: str) -> str:
    for name, back in loop_devices():
        if name == loop:
            return back
    raise LabError(f"{loop} is not attached")


def loops_of(lab: str) -> list[str]:
    """Every loop device attached to ``lab``'s heartbeat disk file, from the system itself."""
    path = str(image_path(lab))
    return [loop for loop, back in loop_devices() if back == path]


def detach_lab(lab: str) -> None:
    """Detach the heartbeat disk's loop devices and remove the file (teardown; no lab.json)."""
    for loop in loops_of(lab):
        run(["losetup", "-d", loop], check=False)
    with contextlib.suppress(OSError):
        image_path(lab).unlink()
