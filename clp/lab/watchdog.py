"""The lab's watchdog devices, the lab's side (the daemon is :mod:`clp.lab.watchdogfs`).

A lab whose configuration has a userw monitor feeding a kernel watchdog through the lab's device
(``method: softdog`` or ``ipmi``, ``device: /dev/lab/watchdog``) gets one watchdog per server,
kept by a daemon on the host (mounted at ``/run/clplab/<lab>/watchdog``, one file per server).
Each server's init links ``/dev/lab/watchdog`` to its own file. A device not fed in time powers
its server off through the lab (``clplab --name <lab> crash <server>``), as softdog resets a
real server. A power-off by the lab, a boot and a reboot disarm the server's device, as a real
reset does.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from clp.config.fencing import WATCHDOG_METHODS
from clp.lab import labdaemon
from clp.lab.netns import LabError

DAEMON = "watchdog"
DEVICE = "/dev/lab/watchdog"  # what a lab configuration's userw names (its ``device``)
LINK = "watchdog"  # the init's /dev/lab/<LINK>


def wanted(conf: str) -> bool:
    """Whether a clp.conf has a userw feeding the lab's watchdog device."""
    try:
        doc = yaml.safe_load(conf) or {}
    except yaml.YAMLError:
        return False
    monitors = doc.get("monitors") if isinstance(doc, dict) else None
    return any(isinstance(m, dict) and m.get("type") == "userw"
               and m.get("method") in WATCHDOG_METHODS and m.get("device") == DEVICE
               for m in (monitors.values() if isinstance(monitors, dict) else ()))


def _what(lab: str) -> str:
    return f"the watchdog daemon of {lab}"


def start(doc: dict[str, Any]) -> int:
    """The daemon of the lab ``doc`` describes, one device per server; returns its pid."""
    lab = doc["name"]
    clplab = Path(doc["bin"]) / "clplab"
    fire = [str(clplab)] if clplab.exists() else [doc["python"], "-m", "clp.lab.cli"]
    args = [f"--server={s}" for s in doc["servers"]]
    args += ["--fire", json.dumps([*fire, "--name", lab, "crash"])]
    return labdaemon.start(lab, DAEMON, _what(lab), doc["python"], doc["repo"],
                           "clp.lab.watchdogfs", args)


def device_file(lab: str, server: str) -> Path:
    return labdaemon.mount_dir(lab, DAEMON) / server


def init_args(doc: dict[str, Any], server: str) -> list[str]:
    """The init's link to the server's device, when the lab has watchdogs."""
    return [f"--link={LINK}={device_file(doc['name'], server)}"] if doc.get("watchdog") else []


def disarm(doc: dict[str, Any], server: str) -> None:
    """The server's device stops (a reset machine has no running watchdog); nothing without
    watchdogs or without a daemon (teardown)."""
    if doc.get("watchdog"):
        with contextlib.suppress(LabError):
            labdaemon.control(doc["name"], DAEMON, _what(doc["name"]),
                              {"op": "disarm", "server": server})


def state(lab: str) -> dict[str, Any]:
    """Every device's state (open, armed, timeout, seconds left, times fired); empty when no
    daemon answers."""
    with contextlib.suppress(LabError):
        return dict(labdaemon.control(lab, DAEMON, _what(lab), {"op": "state"},
                                      timeout=2.0)["devices"])
    return {}


def remove(lab: str) -> None:
    """Teardown: the mount, then the daemon."""
    labdaemon.unmount(lab, DAEMON)
    labdaemon.stop(lab, DAEMON)
