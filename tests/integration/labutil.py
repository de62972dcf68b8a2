"""Helpers for integration tests that run a real clp cluster in the lab."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from clp.lab import Lab, shared_disk, teardown
from clp.lab import netns as nx

T = TypeVar("T")

# Fast heartbeats so the suite stays short; the product's defaults are exercised by unit tests.
INTERVAL = 0.2
TIMEOUT = 1.5

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
SLEEPER = ["sleeper=sleep 1000"]  # a lab whose servers run a sleeper instead of the services


def leftovers(name: str) -> list[str]:
    found = [f"netns {ns}" for ns in nx.netns_list() if ns.startswith(f"{name}-")]
    found += [f"link {ln}" for ln in nx.link_list() if ln.startswith(f"{name}-")]
    found += [f"nft {t}" for t in nx.nft_tables() if t == f"clplab_{name}"]
    found += [f"dir {d}" for d in (nx.RUN_DIR / name, nx.VAR_DIR / name) if d.exists()]
    found += [f"mount {m}" for base in (nx.VAR_DIR / name, nx.RUN_DIR / name)
              for m in nx.host_mounts_under(base)]
    found += [f"pid {p}" for p in nx.lab_pids(name)]
    found += [f"loop {d}" for d, back in shared_disk.loop_devices()
              if shared_disk.lab_of_file(back) == name]
    if shared_disk.LAB_DEV_DIR.exists() and not teardown.known_labs():
        found.append(f"dir {shared_disk.LAB_DEV_DIR}")  # made for the labs, gone with the last
    return found


@contextmanager
def lab_cluster(n: int, interval: float = INTERVAL, timeout: float = TIMEOUT) -> Iterator[Lab]:
    name = "t" + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, n=n, interval=interval, timeout=timeout)
        yield lab
    finally:
        if lab is not None:
            lab.down()
        Lab.cleanup_all(name)


def status(lab: Lab, server: str) -> dict[str, Any]:
    r = lab.exec(server, ["clpstat", "--json"], timeout=20)
    if r.returncode != 0:
        raise AssertionError(f"clpstat on {server} failed ({r.returncode}): {r.stderr}{r.stdout}")
    return json.loads(r.stdout)


def server_states(lab: Lab, observer: str) -> dict[str, str]:
    doc = status(lab, observer)
    return {s: v["state"] for s, v in doc["membership"]["servers"].items()}


def path_state(doc: dict[str, Any], server: str, path: str) -> str:
    return doc["membership"]["servers"][server]["paths"][path]["state"]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0,
             step: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except AssertionError as e:  # the service may still be starting
            last = e
        else:
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def wait_all_online(lab: Lab, timeout: float = 60.0) -> None:
    for observer in lab.servers:
        wait_for(f"{observer} to see every server Online",
                 lambda o=observer: all(v == "Online" for v in server_states(lab, o).values())
                 and len(server_states(lab, o)) == len(lab.servers), timeout)
