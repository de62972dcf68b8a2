"""The world of the partition simulation (:mod:`tests.sim.partitionsim`): the cluster's shape and
what its faults do to heartbeats and to the resolvers' targets.

- Paths: ``lan1``, ``lan2`` (every server, through the network), optionally ``disk`` (every
  server, a medium of its own), ``com`` (s1-s2 only, a cable) and ``witness`` (every server; a
  heartbeat goes through the witness server, so both ends must reach that target).
- Resolvers: ``ping`` (budget ``0.3 * (retry + 1)``: timeout 0.3, ``retry`` retries), ``http``
  (budget 0.5) and ``witness`` (arbitration through the witness server, budget 0.5: the
  simulation asks a real :class:`clp.core.arbiter.Arbiter`), used by every server or by all but
  ``nonuser``.
- Faults, each a window ``[start, end)``: ``cut`` (a path, or ``*`` every path, dead), ``oneway``
  (dead from ``who`` to ``to`` only: asymmetric loss), ``isolate`` (``who``'s network paths dead
  and no target reachable from it; with ``disk``, its disk path too), ``split`` (the network in
  two sides, ``side`` and the rest, each reaching the targets or not), ``target`` (the ping, http
  or witness target unreachable for everyone), ``loss`` (random loss on a path), ``hang`` and
  ``crash`` (of ``who``; what they do to the server is the simulation's business).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from clp.core.partition import ResolverSpec

INTERVAL = 1.0
LAN = ("lan1", "lan2")
INF = float("inf")


@dataclass(frozen=True)
class Config:
    n: int = 2
    timeout: float = 3.0
    disk: bool = False
    com: bool = False
    witness: bool = False
    resolvers: tuple[str, ...] = ("ping",)  # "ping", "http", "witness"
    retry: int = 1  # ping
    nonuser: str | None = None  # a server that uses no resolver
    max_delay: float = 0.0
    wake: bool = True  # wake at Liveness.next_deadline, as the service does
    watchdog: bool = False  # userw feeds a kernel watchdog (device timeout = the heartbeat's)

    @property
    def servers(self) -> list[str]:
        return [f"s{i}" for i in range(1, self.n + 1)]

    def paths(self) -> dict[str, set[str]]:
        every = set(self.servers)
        out = {"lan1": every, "lan2": every}
        out |= {"disk": every} if self.disk else {}
        out |= {"com": {"s1", "s2"}} if self.com else {}
        out |= {"witness": every} if self.witness else {}
        return out

    def specs(self) -> tuple[ResolverSpec, ...]:
        users = frozenset(s for s in self.servers if s != self.nonuser)
        budget = {"ping": 0.3 * (self.retry + 1), "http": 0.5, "witness": 0.5}
        return tuple(ResolverSpec(f"{r}np1", r, users, budget[r], self.retry if r == "ping" else 0,
                                  f"{r} target") for r in self.resolvers)


@dataclass(frozen=True)
class Fault:
    kind: str  # cut | oneway | isolate | split | target | loss | hang | crash
    start: float
    end: float = INF
    who: str = ""  # a server (oneway sender, isolate, hang, crash) or a target (target)
    path: str = ""  # cut, oneway, loss: a path, or "*" for every path
    to: str = ""  # oneway receiver
    disk: bool = False  # isolate: the disk path dies too
    side: frozenset[str] = frozenset()  # split: one side
    reach: tuple[bool, bool] = (True, True)  # split: (side, the rest) reach the targets
    loss: float = 0.0

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Scenario:
    cfg: Config
    faults: tuple[Fault, ...] = ()
    horizon: float = 30.0
    seed: int = 0



class World:
    """What the faults allow at time ``t``; random loss draws from the simulation's ``rng``."""

    def __init__(self, faults: tuple[Fault, ...], rng: random.Random) -> None:
        self.faults, self.rng = faults, rng

    def on(self, kind: str, t: float) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind and f.covers(t)]

    def hung(self, s: str, t: float) -> bool:
        return any(f.who == s for f in self.on("hang", t))

    def hang_end(self, s: str, t: float) -> float:
        while self.hung(s, t):
            t = max(f.end for f in self.on("hang", t) if f.who == s)
        return t

    def isolated(self, s: str, t: float, disk: bool = False) -> bool:
        return any(f.who == s and (f.disk or not disk) for f in self.on("isolate", t))

    def reach(self, s: str, target: str, t: float) -> bool:
        if self.isolated(s, t) or any(f.who == target for f in self.on("target", t)):
            return False
        return all(f.reach[0] if s in f.side else f.reach[1] for f in self.on("split", t))

    def delivers(self, path: str, a: str, b: str, t: float) -> bool:
        if any(f.path in (path, "*") for f in self.on("cut", t)):
            return False
        if any(f.path in (path, "*") and (f.who, f.to) == (a, b) for f in self.on("oneway", t)):
            return False
        if path in LAN and (self.isolated(a, t) or self.isolated(b, t) or any(
                (a in f.side) != (b in f.side) for f in self.on("split", t))):
            return False
        if path == "witness" and not (self.reach(a, "witness", t) and self.reach(b, "witness", t)):
            return False
        if path == "disk" and (self.isolated(a, t, disk=True) or self.isolated(b, t, disk=True)):
            return False
        return not any(f.path in (path, "*") and self.rng.random() < f.loss
                       for f in self.on("loss", t))
