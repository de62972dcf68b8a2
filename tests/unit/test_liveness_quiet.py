"""Liveness.alive, the receive path's fast lane, changes exactly what Liveness.heartbeat would
for every heartbeat the heartbeat table calls quiet (clp.heartbeat.rxtable): random schedules of
heartbeats on three paths (copies, bitmap changes, restarts, marks), ticks, resolver rounds and
resolutions are fed to two Liveness, one taking every heartbeat in full, the other taking the
quiet ones through alive(); after every input their whole state must be the same."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from clp.core.liveness import Liveness
from clp.core.partition import ResolverSpec

SERVERS = ["a", "b", "c"]
PATHS = {"lan1": set(SERVERS), "lan2": set(SERVERS), "disk": {"a", "b"}}
TIMEOUT, INTERVAL = 0.5, 0.1
PING = ResolverSpec("pingnp1", "ping", frozenset(SERVERS), budget=0.2, retry=1)


def state(live: Liveness, now: float) -> dict[str, Any]:
    p = live.partition
    return {
        "membership": live.membership.snapshot(), "down": dict(live.down),
        "verdict": live.verdict, "newest": dict(live._newest), "bitmaps": live.bitmaps(),
        "deadline": live.next_deadline(now), "online": live.group_online(now),
        "silence": live.membership.silence(now),
        "partition": (dict(p._failing_heard), dict(p._heard_me), set(p._marked),
                      set(p._keeping), tuple(p.pending)),
    }


@dataclass
class Sender:
    inc: int = 1
    seq: int = 0
    heard: int = 0b111
    offline: int = 0
    sent: dict[int, float] = field(default_factory=dict)  # seq -> first arrival


@dataclass
class Table:
    """The news rule of native/hbrx.c: the newest heartbeat of each sender, by order."""

    newest: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def quiet(self, live: Liveness, server: str, path: str, order: tuple[int, int], heard: int,
              offline: int) -> bool:
        quiet = live.quiet(server, path)  # what the service last told the table
        last = self.newest.get(server)
        if last is None or order > last[:2]:
            if last is None or last[0] != order[0] or last[2:] != (heard, offline) \
                    or offline & 1:  # bit 0: "a", this server
                quiet = False
            self.newest[server] = (*order, heard, offline)
        return quiet


def test_alive_does_what_heartbeat_does_for_quiet_heartbeats() -> None:
    taken = [schedule(seed) for seed in range(60)]
    assert sum(taken) > 3000 and sum(1 for n in taken if n > 20) > 40, taken  # exercised


def schedule(seed: int) -> int:
    """One random schedule; how many heartbeats went through the fast lane."""
    rng = random.Random(seed)
    full = Liveness("a", SERVERS, PATHS, TIMEOUT, INTERVAL, (PING,), 0.0)
    fast = Liveness("a", SERVERS, PATHS, TIMEOUT, INTERVAL, (PING,), 0.0)
    table = Table()
    senders = {s: Sender() for s in ("b", "c")}
    now, quiet_taken = 0.0, 0
    for _ in range(400):
        now += rng.choice((0.001, 0.01, 0.02, 0.05, 0.05, 0.1)) if rng.random() < 0.97 else 0.7
        op = rng.random()
        if op < 0.7:
            name = rng.choice(("b", "c"))
            s = senders[name]
            path = rng.choice([p for p, m in PATHS.items() if name in m])
            if rng.random() < 0.7 or s.seq == 0:  # a new heartbeat, else a copy of an older one
                s.seq += 1
                if rng.random() < 0.03:
                    s.inc, s.seq = s.inc + 1, 1  # restarted
                if rng.random() < 0.03:
                    s.heard ^= 1 << rng.randrange(3)
                if rng.random() < 0.01:
                    s.offline ^= 1 << rng.randrange(3)
            seq = rng.randint(max(1, s.seq - 3), s.seq)
            order = (s.inc, seq)
            first = s.sent.setdefault(seq + 1000 * s.inc, now)
            step = full.heartbeat(now, name, path, s.heard, s.offline, order, first)
            if table.quiet(fast, name, path, order, s.heard, s.offline):
                assert fast.alive(now, name, path, first, order), seed
                assert not step.decisions and not step.verdicts, (seed, step)
                quiet_taken += 1
            else:
                fast.heartbeat(now, name, path, s.heard, s.offline, order, first)
        elif op < 0.85:
            assert full.tick(now) == fast.tick(now), seed
        elif op < 0.95:
            ok = rng.random() < 0.6
            assert full.background(PING.name, ok) == fast.background(PING.name, ok), seed
        elif full.partition.pending:
            ok = rng.random() < 0.8
            assert full.resolved(now, {PING.name: ok}) == fast.resolved(now, {PING.name: ok}), \
                seed
        assert state(full, now) == state(fast, now), seed
    return quiet_taken
