"""The lab's serial cable between server1 and server2 (``comhb1``), made of a socat pty pair.

``socat PTY,link=/run/clplab/<lab>/comhb1/server1,raw,echo=0 PTY,link=.../server2,raw,echo=0``
joins two pseudo-terminals: what one end writes the other reads, like a null-modem cable. The
links live on the host's /run, which every lab server sees (its mount namespace hides only
/run/systemd and /run/dbus), and point into /dev/pts, which it sees too. Each server's init
links ``/dev/lab/comhb1`` to its end (:func:`init_args`), so the configured device is the same
path in every lab and stays valid when the cable is plugged again with new pty numbers.

Pulling the cable (``Lab.unplug(server, "comhb")``, either end) stops socat: both ends read EIO
and the links go. Plugging it back starts socat again with the same links once neither end is
unplugged. socat runs with ``CLPLAB=<lab>`` in its environment and the lab's directory in its
command line, so teardown finds it without lab.json.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from clp.lab import netns as nx
from clp.lab.netns import RUN_DIR, LabError

LINK = "comhb"  # the name `clplab unplug/plug SERVER comhb` uses
CABLE = "comhb1"
SERVERS = ("server1", "server2")
START_WAIT = 5.0
STOP_WAIT = 2.0
_CHILDREN: list[subprocess.Popen] = []  # socat processes started here, reaped once ended


def cable_dir(lab: str) -> Path:
    return RUN_DIR / lab / CABLE


def device(lab: str, server: str) -> str:
    """The device path ``server`` configures for comhb1 (valid inside the server)."""
    return str(cable_dir(lab) / server)


def init_args(doc: dict[str, Any], server: str) -> list[str]:
    """``server``'s init makes ``/dev/lab/comhb1`` point at its end of the cable (the path the
    configuration names, the same in every lab and across re-plugging)."""
    if not doc.get("com") or server not in SERVERS:
        return []
    return [f"--link={CABLE}={device(doc['name'], server)}"]


# a pty pair anywhere (the lab's cable, and the tests' own)
def start_pair(a: Path, b: Path, env: dict[str, str] | None = None,
               log: Path | None = None) -> subprocess.Popen:
    """socat joining two new ptys linked at ``a`` and ``b``; returns once both links exist.
    Its messages go to ``log`` (appended), not to a pipe that would die with this process."""
    for link in (a, b):
        link.unlink(missing_ok=True)  # left by a killed socat: may name a reused pty
    argv = ["socat", f"PTY,link={a},raw,echo=0", f"PTY,link={b},raw,echo=0"]
    with open(log or os.devnull, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True,
                                env=env if env is not None else {"PATH": os.environ["PATH"]})
    _CHILDREN.append(proc)
    deadline = time.monotonic() + START_WAIT
    while not (a.is_symlink() and b.is_symlink()):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pair(proc.pid, (a, b))
            tail = log.read_text(errors="replace")[-500:].strip() if log else ""
            raise LabError(f"socat did not make the pty pair {a}, {b}: {tail or 'timed out'}")
        time.sleep(0.01)
    return proc


def stop_pair(pid: int, links: tuple[Path, ...] = ()) -> None:
    """SIGTERM (socat removes its links), SIGKILL after STOP_WAIT; the links go either way."""
    nx.signal_all([pid], signal.SIGTERM)
    if not _wait_gone([pid], STOP_WAIT):
        nx.kill_all([pid])
        _wait_gone([pid], STOP_WAIT)
    for link in links:
        link.unlink(missing_ok=True)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        if not any(nx.alive(p) for p in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


# the lab's cable
class Lab(Protocol):
    """What of :class:`clp.lab.Lab` (or its Faults mixin) the cable uses."""

    name: str
    doc: dict[str, Any]

    def index(self, server: str) -> int: ...

    def _save(self) -> None: ...


def install(lab: Lab) -> None:
    """Lay the cable at lab creation (server1 and server2 only)."""
    lab.doc["com"] = {"cable": CABLE, "pid": None,
                      "devices": {s: device(lab.name, s) for s in SERVERS}}
    _connect(lab)


def _links(lab: str) -> tuple[Path, Path]:
    return cable_dir(lab) / SERVERS[0], cable_dir(lab) / SERVERS[1]


def _connect(lab: Lab) -> None:
    cable_dir(lab.name).mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CLPLAB": lab.name}
    proc = start_pair(*_links(lab.name), env=env, log=cable_dir(lab.name) / "socat.log")
    lab.doc["com"]["pid"] = proc.pid
    lab._save()


def _disconnect(lab: Lab) -> None:
    pid = lab.doc["com"].get("pid")
    if pid and pid in cable_pids(lab.name):  # never a reused pid
        stop_pair(pid, _links(lab.name))
    for link in _links(lab.name):
        link.unlink(missing_ok=True)
    lab.doc["com"]["pid"] = None
    lab._save()


def _check(lab: Lab, server: str) -> None:
    lab.index(server)
    if not lab.doc.get("com"):
        raise LabError(f"lab {lab.name!r} has no COM cable (clplab up --com)")
    if server not in SERVERS:
        raise LabError(f"the COM cable joins {' and '.join(SERVERS)}, not {server}")


def unplug(lab: Lab, server: str) -> None:
    """Pull the cable at ``server``'s end: the pty pair goes, both ends lose it."""
    _check(lab, server)
    _disconnect(lab)
    if [server, LINK] not in lab.doc["unplugged"]:
        lab.doc["unplugged"].append([server, LINK])
    lab._save()


def plug(lab: Lab, server: str) -> None:
    """Plug ``server``'s end back; the cable works again once neither end is unplugged."""
    _check(lab, server)
    lab.doc["unplugged"] = [u for u in lab.doc["unplugged"] if u != [server, LINK]]
    lab._save()
    if not any(link == LINK for _, link in lab.doc["unplugged"]):
        if lab.doc["com"].get("pid") in cable_pids(lab.name):
            return  # already connected
        _connect(lab)


# teardown, without lab.json
def cable_pids(lab: str) -> list[int]:
    """socat processes whose command line names a path under /run/clplab/<lab>/."""
    marker = f"{RUN_DIR / lab}/".encode()
    found = []
    for pid in nx.all_pids():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            named = any(marker in a for a in argv[1:])
            if os.path.basename(argv[0]) == b"socat" and named and nx.alive(pid):
                found.append(pid)
    return found


def kill_lab(lab: str) -> None:
    """Kill every cable of ``lab`` (bounded wait)."""
    pids = cable_pids(lab)
    if pids:
        nx.kill_all(pids)
        _wait_gone(pids, STOP_WAIT)
