"""``clpcfctrl --push``'s coordinator: check the cluster's state, stage everywhere, then commit.

Two phases through every target server's ``clusterpro_trn`` (:mod:`clp.trn.config_transfer`):

1. ``generation`` of every target: one that does not answer refuses the push before anything is
   written (the product: "Failed to deliver the configuration file. Check if the other server is
   active ..."). The plan is computed against the newest generation found (pulled from its
   server), and the cluster's state is read from each server's ``clusterpro`` (``status``).
2. ``stage`` on every target, in parallel, each bounded by the timeout. One refusal, error or
   timeout aborts: every target is told to remove the staged copy (also the one that did not
   answer, in case it staged late), and every server stays on its old generation.
3. ``commit`` on every target. A server that fails between its stage and its commit keeps its
   old generation and its staged copy (removed by the next push); the command names it and exits
   with "Processing failed on some servers", and ``clpcfctrl --push -h SERVER`` brings it level.

The decision parts (:func:`refusal`, :func:`next_generation`) are pure and unit-tested.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from clp.config.reflect import Plan
from clp.net import frames

STOPPED_GROUP = ("Offline", "Offline Failure")


@dataclass
class Answer:
    ok: bool
    code: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def next_generation(current: Iterable[Mapping[str, Any] | None]) -> int:
    """The number of a new generation: one more than the newest any target runs."""
    return 1 + max((int(g["generation"]) for g in current if g), default=0)


def refusal(plan: Plan, statuses: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """Why the cluster is not in the state ``plan``'s method needs (None: it is).

    ``statuses``: every target server's status document, None where ``clusterpro`` is not
    running. A cluster stopped everywhere is in every state a method needs."""
    running = {s: d for s, d in statuses.items() if d is not None}
    if not running:
        return None
    method = plan.method
    names = ", ".join(sorted(running))
    if method == "stop_cluster":
        return (f"the change needs the cluster stopped, and the cluster service runs on "
                f"{names}: run 'clpcl -t -a' first, then push, then 'clpcl -s -a'")
    if method == "suspend_cluster":
        busy = sorted(s for s, d in running.items() if not d.get("suspended"))
        if busy:
            return (f"the change needs the cluster suspended, and it is not suspended on "
                    f"{', '.join(busy)}: run 'clpcl --suspend' first, then push, then "
                    f"'clpcl --resume'")
    if method == "suspend_monitors":
        busy = sorted({f"{m} on {s}" for s, d in running.items() if not d.get("suspended")
                       for m, v in (d.get("monitors") or {}).items()
                       if not (v.get("local") or {}).get("suspended")})
        if busy:
            return (f"the change needs the monitors suspended, and these are not: "
                    f"{', '.join(busy)}: run 'clpmonctrl -s' on every server first (or suspend "
                    f"the cluster)")
    if method == "stop_group":
        return _groups_running(plan, running)
    if method == "stop_resource":
        return _resources_running(plan, running)
    return None


def _groups_running(plan: Plan, running: Mapping[str, Mapping[str, Any]]) -> str | None:
    active = sorted({g for d in running.values() for g in plan.groups
                     if g not in plan.new_groups and _group_state(d, g) not in STOPPED_GROUP})
    if not active:
        return None
    return (f"the change needs group(s) {', '.join(active)} stopped, and they are not: run "
            + ", ".join(f"'clpgrp -t {g}'" for g in active) + " first")


def _resources_running(plan: Plan, running: Mapping[str, Mapping[str, Any]]) -> str | None:
    active = []
    for group, resource in plan.resources:
        for d in running.values():
            g = (d.get("groups") or {}).get(group)
            if g is None or g.get("state") in STOPPED_GROUP:
                continue
            state = ((g.get("resources") or {}).get(resource) or {}).get("state", "Offline")
            if state not in STOPPED_GROUP and resource not in active:
                active.append(resource)
    if not active:
        return None
    return (f"the change needs resource(s) {', '.join(active)} stopped, and they are not: run "
            + ", ".join(f"'clprsc -t {r}'" for r in active) + " first")


def _group_state(doc: Mapping[str, Any], group: str) -> str:
    g = (doc.get("groups") or {}).get(group)
    return "Offline" if g is None else str(g.get("state", "Unknown"))


class Transfer:
    """Calls the ``config`` operation of the servers' ``clusterpro_trn``."""

    def __init__(self, cluster: str, me: str, key: bytes,
                 addresses: Mapping[str, list[str]], port: int, timeout: float) -> None:
        self.cluster, self.me, self.key = cluster, me, key
        self.addresses, self.port, self.timeout = addresses, port, timeout
        self.txn = secrets.token_hex(8)

    def call(self, server: str, args: dict[str, Any]) -> Answer:
        errors = []
        for address in self.addresses.get(server, []):
            request = frames.new_request(self.cluster, self.me, "config", args)
            try:
                r = frames.call(address, self.port, self.key, request, timeout=self.timeout)
            except TimeoutError:
                errors.append(f"{address}: no answer within {self.timeout:g} s")
                continue
            except (OSError, frames.FrameError) as e:
                errors.append(f"{address}: {e}")
                continue
            return Answer(bool(r.get("ok")), int(r.get("code", 11)), str(r.get("message", "")),
                          dict(r.get("data") or {}))
        return Answer(False, 7, f"could not reach {server} ({'; '.join(errors) or 'no address'})")

    def each(self, servers: Iterable[str], args: dict[str, Any]) -> dict[str, Answer]:
        servers = list(servers)
        with ThreadPoolExecutor(max(1, len(servers))) as pool:
            return dict(zip(servers, pool.map(lambda s: self.call(s, args), servers),
                            strict=True))

    def stage_all(self, servers: list[str], generation: int, files: dict[str, Any],
                  digest: str, bases: Mapping[str, Any] | None = None) -> dict[str, Answer]:
        """Stage everywhere; on any failure abort everywhere. The answers of the stage.
        ``bases``: the generation each server ran when the push was planned (its stage is
        refused if it changed since)."""
        args = {"action": "stage", "txn": self.txn, "generation": generation, "hash": digest,
                "files": files, "source": self.me, "deadline": time.time() + self.timeout}
        with ThreadPoolExecutor(max(1, len(servers))) as pool:
            answers = dict(zip(servers, pool.map(
                lambda s: self.call(s, args if bases is None else {**args, "base": bases[s]}),
                servers), strict=True))
        if not all(a.ok for a in answers.values()):
            self.each(servers, {"action": "abort", "txn": self.txn})
        return answers

    def commit_all(self, servers: list[str]) -> dict[str, Answer]:
        return self.each(servers, {"action": "commit", "txn": self.txn})
