"""Helpers for lab tests with failover groups: the seed's sample cluster, group states, and a
watcher that fails the test if a group is ever active on two servers at once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from clp.lab import Lab, watchdog
from clp.lab.chaos import Watcher
from clp.lab.samples import write_sample_config
from tests.integration.labutil import INTERVAL, TIMEOUT, status, wait_for

FIP = "198.18.0.12"
APP_PORT = 8080
DISK = "/dev/lab/disk1"


@contextmanager
def sample_cluster(tmp_path: Path, edit=None, n: int = 2, interval: float = INTERVAL,
                   timeout: float = TIMEOUT) -> Iterator[Lab]:
    """The seed's sample (ManagementGroup, failover1 with fip1, disk1, exec1) in a lab.

    ``edit(conf: dict, conf_dir: Path)`` may change clp.conf (as data) and the scripts first.
    """
    conf_dir = tmp_path / "conf"
    write_sample_config(conf_dir, n_servers=n, interval=interval, timeout=timeout)
    if edit is not None:
        conf_file = conf_dir / "clp.conf"
        conf = yaml.safe_load(conf_file.read_text())
        edit(conf, conf_dir)
        conf_file.write_text(yaml.safe_dump(conf, sort_keys=False))
    name = "g" + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, n=n, config_dir=conf_dir)
        yield lab
    finally:
        if lab is not None:
            lab.down()
        Lab.cleanup_all(name)


def lab_softdog(conf: dict, conf_dir: Path) -> None:
    """A ``sample_cluster`` edit: userw feeds each server's lab watchdog (clp.lab.watchdog)."""
    conf["monitors"]["userw"] = {"type": "userw", "method": "softdog",
                                 "device": watchdog.DEVICE}


def group(lab: Lab, observer: str, name: str) -> dict[str, Any]:
    return status(lab, observer)["groups"][name]


def wait_group(lab: Lab, name: str, state: str, server: str | None, observer: str = "",
               timeout: float = 60.0) -> dict[str, Any]:
    observers = [observer] if observer else [s for s in lab.servers if running(lab, s)]

    def probe():
        docs = [group(lab, o, name) for o in observers]
        return all(d["state"] == state and d.get("server") == server for d in docs) and docs[0]

    return wait_for(f"{name} {state} on {server}", probe, timeout=timeout, step=0.1)


def running(lab: Lab, server: str) -> bool:
    return lab.status()["servers"][server]["state"] == "running"


def app_call(lab: Lab, line: str, timeout: float = 2.0) -> str:
    """Send one line to the sample application through the floating IP, from the client."""
    r = lab.client_exec(["python3", "-c", (
        "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), "
        "timeout=float(sys.argv[4])); s.sendall(sys.argv[3].encode()+b'\\n'); "
        "print(s.makefile().readline().strip())"), FIP, str(APP_PORT), line, str(timeout)],
        timeout=timeout + 5)
    if r.returncode != 0:
        raise AssertionError(f"application not reachable at {FIP}:{APP_PORT}: {r.stderr}")
    return r.stdout.strip()


def clp(lab: Lab, server: str, *argv: str, ok: bool = True, timeout: float = 120):
    r = lab.exec(server, list(argv), timeout=timeout)
    if ok and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} on {server} failed ({r.returncode}): "
                             f"{r.stdout}{r.stderr}")
    return r


class ExclusivityWatch(Watcher):
    """The lab's watcher (clp.lab.chaos.Watcher: every floating IP and disk resource of the
    configuration, never on two servers in two consecutive samples) around a test: it fails
    the test on any double activation."""

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        assert not self.violations, "active on two servers:\n" + "\n".join(self.violations[:10])
        assert self.samples > 0

