"""A deterministic simulated cluster network driving one :class:`Membership` per server.

The model:

- Servers ``s1..sN`` each run a Membership (the *observer*). Time starts at 0 for everybody.
- Every server sends a heartbeat every ``interval`` (each with its own phase) on each path it is
  a member of, to every other member of that path, unless it has crashed (stopped sending on all
  paths for a while, or for good).
- A packet is lost if its path is cut, or its sender or receiver is cut off (partitioned), at send
  time, or at random with the path's loss probability; otherwise it arrives ``delay`` later, with
  ``delay`` uniform in ``[0, max_delay)``, so packets may be reordered.
- Every observer ticks every ``interval`` (each with its own phase), like the service loop.
- An observer may be suspended for a while: like the service, it then drops what it receives, and
  its ticks must decide nothing.
- Events run in time order (deliveries, then ticks, then checks at equal times); the randomness
  comes from one seeded ``random.Random``, so a scenario always plays out the same way.

After each event the affected observer is checked, and at every clock step (``step``, a fraction of
the interval) every observer is: see :meth:`Sim.check`.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from clp.core.membership import Decision, Membership, PathState, ServerState

EPS = 1e-9
DELIVER, TICK, CHECK = 0, 1, 2  # order of events at the same time


@dataclass(frozen=True)
class Window:
    """``who`` (a server or a path name) is affected during ``[start, end)``."""
    who: str
    start: float
    end: float = float("inf")

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Scenario:
    servers: list[str]
    paths: dict[str, frozenset[str]]
    interval: float = 1.0
    timeout: float = 3.0
    horizon: float = 40.0
    steps_per_interval: int = 4
    loss: dict[str, float] = field(default_factory=dict)
    max_delay: float = 0.0
    path_cuts: list[Window] = field(default_factory=list)
    server_cuts: list[Window] = field(default_factory=list)
    crashes: list[Window] = field(default_factory=list)
    suspends: list[Window] = field(default_factory=list)
    seed: int = 0


class Sim:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.now = 0.0
        self.members = {s: Membership(s, sc.servers, {p: set(m) for p, m in sc.paths.items()},
                                      sc.timeout, 0.0) for s in sc.servers}
        # (observer, sender, path) -> time of the last heartbeat handed to the observer
        self.delivered: dict[tuple[str, str, str], float] = {}
        self.resumed = {s: 0.0 for s in sc.servers}
        self.was_suspended = {s: False for s in sc.servers}
        self.decisions: list[tuple[float, str, Decision]] = []
        self._queue: list[tuple[float, int, int, tuple[str, ...]]] = []
        self._seq = 0
        for s in sc.servers:
            self._push(self.rng.uniform(0, sc.interval), DELIVER - 1, ("send", s))
            self._push(self.rng.uniform(0, sc.interval), TICK, ("tick", s))
        step = sc.interval / sc.steps_per_interval
        for k in range(int(sc.horizon / step) + 1):
            self._push(k * step, CHECK, ("check",))

    def _push(self, t: float, prio: int, what: tuple[str, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, prio, self._seq, what))

    def _in(self, windows: list[Window], who: str, t: float) -> bool:
        return any(w.who == who and w.covers(t) for w in windows)

    def suspended(self, obs: str, t: float) -> bool:
        return self._in(self.sc.suspends, obs, t)

    # --- running --------------------------------------------------------------------------

    def run(self) -> Sim:
        while self._queue:
            t, _, _, what = heapq.heappop(self._queue)
            if t > self.sc.horizon:
                break
            self.now = t
            getattr(self, "_on_" + what[0])(t, *what[1:])
        return self

    def _on_send(self, t: float, sender: str) -> None:
        self._push(t + self.sc.interval, DELIVER - 1, ("send", sender))
        if self._in(self.sc.crashes, sender, t):
            return
        for path, members in self.sc.paths.items():
            if sender not in members:
                continue
            for to in sorted(members - {sender}):
                if self._lost(t, path, sender, to):
                    continue
                delay = self.rng.uniform(0, self.sc.max_delay) if self.sc.max_delay else 0.0
                self._push(t + delay, DELIVER, ("deliver", to, sender, path))

    def _lost(self, t: float, path: str, sender: str, to: str) -> bool:
        if self._in(self.sc.path_cuts, path, t):
            return True
        if self._in(self.sc.server_cuts, sender, t) or self._in(self.sc.server_cuts, to, t):
            return True
        loss = self.sc.loss.get(path, 0.0)
        return loss > 0 and self.rng.random() < loss

    def _on_deliver(self, t: float, obs: str, sender: str, path: str) -> None:
        self._sync_suspend(obs, t)
        if self.suspended(obs, t):
            return  # the service drops heartbeats while suspended
        self.delivered[(obs, sender, path)] = t
        self._record(t, obs, self.members[obs].heartbeat(t, sender, path))
        self.check(obs)

    def _on_tick(self, t: float, obs: str) -> None:
        self._push(t + self.sc.interval, TICK, ("tick", obs))
        self._sync_suspend(obs, t)
        ds = self.members[obs].tick(t)
        if self.suspended(obs, t):
            assert ds == [], f"{obs} decided while suspended: {ds}"
        self._record(t, obs, ds)
        self.check(obs)

    def _on_check(self, t: float) -> None:
        for obs in self.sc.servers:
            self._sync_suspend(obs, t)
            self.check(obs)

    def _sync_suspend(self, obs: str, t: float) -> None:
        """Suspend or resume ``obs`` when a suspend window starts or ends (as the service)."""
        now_suspended = self.suspended(obs, t)
        if now_suspended == self.was_suspended[obs]:
            return
        if now_suspended:
            self.members[obs].suspend(t)
        else:
            self.members[obs].resume(t)
            self.resumed[obs] = t
        self.was_suspended[obs] = now_suspended

    def _record(self, t: float, obs: str, ds: list[Decision]) -> None:
        for d in ds:
            assert d.reason.strip() and "\n" not in d.reason, d  # (4)
            assert d.kind in ("server_up", "server_down", "path_lost", "path_restored"), d
            self.decisions.append((t, obs, d))
            if d.kind in ("server_down", "path_lost"):  # (5) no loss before its timer ran out
                paths = self.used(obs, d.server) if d.kind == "server_down" else [d.path]
                since = max([self.delivered.get((obs, d.server, p), 0.0) for p in paths]
                            + [self.resumed[obs]])
                assert t - since > self.members[obs].timeout, f"{obs} at t={t:.3f}: {d}"

    # --- invariants -----------------------------------------------------------------------

    def used(self, obs: str, server: str) -> list[str]:
        return [p for p, m in self.sc.paths.items() if obs in m and server in m]

    def check(self, obs: str) -> None:
        """The invariants, for one observer at ``self.now``.

        (1) no server is Offline (indeed, every server is Online) while some path to it delivered
            a heartbeat within the timeout;
        (2) a server none of whose paths delivered since ``t`` (or since start/resume) is Offline
            by ``t + timeout + interval``, the tick granularity (not checked while suspended);
        (3) a path is Error only if it delivered nothing within the timeout;
        (4) every decision has a non-empty one-line reason, and (5) a server_down or path_lost
            comes only after the timeout ran out since the last delivery, start or resume
            (both checked as decisions are made).
        """
        m = self.members[obs]
        now, timeout = self.now, m.timeout
        assert m.server_state(obs) == ServerState.ONLINE
        for server in self.sc.servers:
            if server == obs:
                continue
            state = m.server_state(server)
            last = {p: self.delivered.get((obs, server, p)) for p in self.used(obs, server)}
            fresh = [p for p, d in last.items() if d is not None and now - d <= timeout]
            where = f"{obs} sees {server} at t={now:.3f}"
            if fresh:  # (1)
                assert state == ServerState.ONLINE, f"{where}: {state} but fresh on {fresh}"
            quiet_since = max([d for d in last.values() if d is not None]
                              + [self.resumed[obs]])
            overdue = now - quiet_since > timeout + self.sc.interval + EPS
            if overdue and not self.suspended(obs, now):  # (2)
                assert state == ServerState.OFFLINE, f"{where}: {state}, quiet since " \
                                                     f"{quiet_since:.3f}"
            for p in self.sc.paths:
                ps = m.path_state(server, p)
                if p not in last:
                    assert ps == PathState.NOT_USED, f"{where}: {p} {ps}"
                elif ps == PathState.ERROR:  # (3)
                    assert p not in fresh, f"{where}: {p} Error but delivered at {last[p]}"

    def kinds(self, obs: str, server: str | None = None) -> list[str]:
        return [d.kind for _, o, d in self.decisions
                if o == obs and (server is None or d.server == server)]
