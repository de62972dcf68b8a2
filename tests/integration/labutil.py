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

from clp.lab import Lab

T = TypeVar("T")

# Fast heartbeats so the suite stays short; the product's defaults are exercised by unit tests.
INTERVAL = 0.2
TIMEOUT = 1.5

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


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
