"""The lab's router ``<lab>-router``: the ping target, the witness and the HTTP target.

A plain network namespace on both LANs with host number 254 (198.18.0.254 on the public LAN,
198.18.1.254 on the interconnect), built like the client namespace: its cables are
``<lab>-rp`` / ``<lab>-ri`` on the host, so ``Lab.unplug("router", "pub")`` pulls one. It answers
pings (the seed's sample pings the gateway: this is the lab's gateway, though it forwards
nothing) and runs ``clpwitnessd --listen 0.0.0.0:29005``, which is the witness of ``witnesshb``
and the target of an ``http`` resolver (it answers ``HEAD /``).

The witness is a background process started in its own session, with ``CLPLAB=<lab>`` and
``CLPLAB_SERVER=router`` in its environment and its pid in lab.json (``witness_pid``); teardown
finds it without lab.json (by environment, and as a process in ``<lab>-router``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from clp.lab import netns as nx
from clp.lab.netns import LINKS, VAR_DIR, LabError
from clp.witness.wire import DEFAULT_PORT

ROUTER = nx.ROUTER  # the name faults and clplab use: unplug router pub
HOST = 254
PORT_INDEX = "r"  # host ends of its cables: <lab>-rp, <lab>-ri
WITNESS_PORT = DEFAULT_PORT
ARBITER_HOLD = 10.0  # seconds the lab's witness grants nothing after it starts (longer than
# the leases of the lab's configurations; the default of 60 s would slow every lab test)
START_WAIT = 10.0
STOP_WAIT = 5.0
_CHILDREN: list[subprocess.Popen] = []  # witnesses started here, reaped once ended


class _Lab(Protocol):
    name: str
    doc: dict[str, Any]

    def _save(self) -> None: ...


def address(link: str = "pub") -> str:
    """The router's address on ``link`` (198.18.0.254 on pub, 198.18.1.254 on ic1)."""
    return nx.address(HOST, link)


def witness_target() -> str:
    return f"{address('pub')}:{WITNESS_PORT}"


def install(lab: _Lab) -> None:
    """The namespace, its cables and the witness (the lab's bridges exist already)."""
    lab.doc["router"] = True
    lab.doc["witness_pid"] = None
    lab._save()
    nx.add_host(lab.name, ROUTER, PORT_INDEX, HOST)
    start_witness(lab)


def _check(lab: _Lab) -> None:
    if not lab.doc.get("router"):
        raise LabError(f"lab {lab.name!r} has no router (clplab up --router)")


def log_path(lab: str) -> Path:
    return VAR_DIR / lab / ROUTER / "clpwitnessd.log"


def witness_pid(lab: _Lab) -> int | None:
    """The live witness of the lab, checked against /proc (a reused pid is not taken for it)."""
    pid = lab.doc.get("witness_pid")
    if not pid or not nx.alive(pid):
        return None
    env = nx.environ_of(pid)
    if env and (env.get("CLPLAB") != lab.name or env.get("CLPLAB_SERVER") != ROUTER):
        return None
    return int(pid)


def arbiter_key_path(lab: str) -> Path:
    """The lab cluster's arbiter key, which the lab's witness is given."""
    return VAR_DIR / lab / "arbiter.key"


def _argv(doc: dict[str, Any]) -> list[str]:
    listen = ["--listen", f"0.0.0.0:{WITNESS_PORT}"]
    if doc.get("cluster"):  # the lab's witness arbitrates the lab's cluster
        listen += ["--arbiter", f"{doc['cluster']}={arbiter_key_path(doc['name'])}",
                   "--arbiter-hold", f"{ARBITER_HOLD:g}"]
    installed = Path(doc["bin"]) / "clpwitnessd"
    if installed.exists():
        return [str(installed), *listen]
    return [doc["python"], "-m", "services.clpwitnessd", *listen]  # not reinstalled yet


def start_witness(lab: _Lab) -> int:
    """Start clpwitnessd in the router (nothing if it runs); returns once it listens."""
    _check(lab)
    _reap()
    pid = witness_pid(lab)
    if pid is not None:
        return pid
    env = {"PATH": f"{lab.doc['bin']}:/usr/sbin:/usr/bin:/sbin:/bin",
           "PYTHONPATH": lab.doc["repo"], "CLPLAB": lab.name, "CLPLAB_SERVER": ROUTER,
           "HOME": "/root", "LANG": "C.UTF-8"}
    log = log_path(lab.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = ["ip", "netns", "exec", nx.netns_name(lab.name, ROUTER), *_argv(lab.doc)]
    with open(log, "ab") as out:  # `ip netns exec` execs: the pid is the witness's
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    _CHILDREN.append(proc)
    lab.doc["witness_pid"] = proc.pid
    lab._save()
    deadline = time.monotonic() + START_WAIT
    while not listening(proc.pid, WITNESS_PORT):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_witness(lab)
            tail = log.read_text(errors="replace")[-1000:].strip()
            raise LabError(f"the lab's witness did not start listening on port {WITNESS_PORT}; "
                           f"{log}:\n{tail}")
        time.sleep(0.02)
    return proc.pid


def stop_witness(lab: _Lab) -> None:
    """SIGTERM to the witness (it stops cleanly), SIGKILL after STOP_WAIT."""
    _check(lab)
    pid = witness_pid(lab)
    if pid is not None:
        nx.signal_all([pid], signal.SIGTERM)
        if not _wait_gone(pid, STOP_WAIT):
            nx.kill_all([pid])
            _wait_gone(pid, STOP_WAIT)
    lab.doc["witness_pid"] = None
    lab._save()
    _reap()


def status(lab: _Lab) -> dict[str, Any] | None:
    if not lab.doc.get("router"):
        return None
    return {"addresses": {link: address(link) for link in LINKS},
            "witness": witness_target(), "witness_pid": witness_pid(lab),
            "unplugged": [lk for s, lk in lab.doc.get("unplugged", []) if s == ROUTER]}


def listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in ``pid``'s network namespace (IPv4)."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
            return True
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap()
        if not nx.alive(pid):
            return True
        time.sleep(0.02)
    return not nx.alive(pid)


def _reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)
