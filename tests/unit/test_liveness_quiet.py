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
        "silence": live.membership.silence(now), "proof": dict(live._proof),
        "lease": live.lease(now),
        "partition": (dict(p._heard_me), set(p._marked), dict(p._reached),
                      set(p._keeping), tuple(p.pending)),
    }


@dataclass
class Sender:
    inc: int = 1
    seq: int = 0
    heard: int = 0b111
    offline: int = 0
    sent: dict[int, float] = field(default_factory=dict)  # seq -> first arrival


def pause(rng: random.Random) -> float:
    """Time to the next input: mostly well inside the timeout, now and then beyond it."""
    return rng.choice((0.001, 0.01, 0.02, 0.05, 0.05, 0.1)) if rng.random() < 0.97 else 0.7


def next_record(rng: random.Random, senders: dict[str, Sender], heard_rate: float
                ) -> tuple[str, str, Sender, int]:
    """(sender, path, its state, sequence) of the next record received: mostly a new heartbeat
    (now and then after a restart, or with a bitmap bit flipped), else a copy of a recent one."""
    name = rng.choice(("b", "c"))
    s = senders[name]
    path = rng.choice([p for p, m in PATHS.items() if name in m])
    if rng.random() < 0.7 or s.seq == 0:
        s.seq += 1
        if rng.random() < 0.03:
            s.inc, s.seq = s.inc + 1, 1  # restarted
        if rng.random() < heard_rate:
            s.heard ^= 1 << rng.randrange(3)
        if rng.random() < 0.01:
            s.offline ^= 1 << rng.randrange(3)
    return name, path, s, rng.randint(max(1, s.seq - 3), s.seq)


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
        now += pause(rng)
        op = rng.random()
        if op < 0.7:
            name, path, s, seq = next_record(rng, senders, heard_rate=0.03)
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
            assert full.background(PING.name, ok, now) == fast.background(PING.name, ok, now), \
                seed
            full.holding = fast.holding = rng.random() < 0.25
        elif full.partition.pending:
            ok = rng.random() < 0.8
            assert full.resolved(now, {PING.name: ok}) == fast.resolved(now, {PING.name: ok}), \
                seed
        assert state(full, now) == state(fast, now), seed
    return quiet_taken


def test_news_delivered_late_and_pulls_reach_the_state_of_taking_every_record_in_order() -> None:
    """The real heartbeat table between the records and a Liveness driven as the service
    drives it: news is handed over later (after other copies and records came in, as from the
    receive threads through the event loop), quiet entries are pulled at random moments, and
    the service marks entries quiet and acknowledges news. At every point where nothing is
    waiting, its Liveness must be where one taking every record in arrival order is."""
    taken = [deferred_schedule(seed) for seed in range(60)]
    assert sum(taken) > 1500, taken  # the quiet lane was exercised (a verdict ends a schedule)


def deferred_schedule(seed: int) -> int:
    from clp.heartbeat import packet
    from clp.heartbeat.packet import Heartbeat
    from clp.heartbeat.rxtable import NEWS, QUIET, RxTable

    rng = random.Random(seed)
    key, cid = b"k" * 32, packet.cluster_id("c")
    paths = list(PATHS)
    table = RxTable(key, cid, 0, len(SERVERS), len(paths))
    for i, p in enumerate(paths):
        table.set_members(i, [SERVERS.index(s) for s in PATHS[p]])
    full = Liveness("a", SERVERS, PATHS, TIMEOUT, INTERVAL, (PING,), 0.0)
    fast = Liveness("a", SERVERS, PATHS, TIMEOUT, INTERVAL, (PING,), 0.0)
    senders = {s: Sender() for s in ("b", "c")}
    waiting: list[Any] = []  # news not handed to the service yet
    quiet_taken = 0

    def sync() -> None:
        for s in ("b", "c"):
            for i, p in enumerate(paths):
                if s in PATHS[p]:
                    table.set_quiet(SERVERS.index(s), i, fast.quiet(s, p))

    def take_quiet() -> None:
        nonlocal quiet_taken
        for arrived, sender, index, first, inc, seq, heard, offline in table.pull():
            server, path = SERVERS[sender], paths[index]
            if fast.alive(arrived, server, path, first, (inc, seq)):
                quiet_taken += 1
            else:
                fast.heartbeat(arrived, server, path, heard, offline, (inc, seq), first)
                sync()

    def deliver(rec: Any) -> None:
        take_quiet()
        hb = rec.heartbeat
        server, path = SERVERS[rec.sender], paths[rec.path]
        fast.heartbeat(rec.arrived, server, path, hb.heard, hb.offline, (hb.incarnation, hb.seq),
                       rec.first)
        sync()
        table.ack(rec.sender)

    now = 0.0
    for _ in range(400):
        now += pause(rng)
        op = rng.random()
        if op < 0.6:
            name, path, s, seq = next_record(rng, senders, heard_rate=0.05)
            data = packet.encode(key, Heartbeat(cid, SERVERS.index(name), paths.index(path),
                                                s.inc, seq, 0.0, 0, s.heard, s.offline))
            code, rec = table.ingest(paths.index(path), data, SERVERS.index(name), now, 0.0)
            if code in (NEWS, QUIET):  # a replay on its own path is dropped by both
                full.heartbeat(now, name, path, s.heard, s.offline, (s.inc, seq))
            if code == NEWS:
                waiting.append(rec)
        elif op < 0.75 and waiting:
            deliver(waiting.pop(0))
        elif op < 0.85:
            take_quiet()
        else:  # a round: what is waiting is handed over first, then the table, then the tick
            while waiting:
                deliver(waiting.pop(0))
            take_quiet()
            full.tick(now)
            fast.tick(now)
            sync()
            if rng.random() < 0.3:  # (not holding: the proofs are compared, no lease lapses)
                ok = rng.random() < 0.6
                full.background(PING.name, ok, now)
                fast.background(PING.name, ok, now)
            if full.partition.pending and rng.random() < 0.3:
                full.resolved(now, {PING.name: True})
                fast.resolved(now, {PING.name: True})
                sync()
        if full.verdict is not None or fast.verdict is not None:
            # a verdict freezes each where it was when it came, and in the service it comes
            # when its news is handed over, later: the same verdict, then nothing more
            while waiting:
                deliver(waiting.pop(0))
            take_quiet()
            assert (fast.verdict and fast.verdict.kind, fast.verdict and fast.verdict.servers) \
                == (full.verdict and full.verdict.kind, full.verdict and full.verdict.servers), \
                (seed, fast.verdict, full.verdict)
            return quiet_taken
        if not waiting:
            take_quiet()
            got, want = state(fast, now), state(full, now)
            assert got == want, (seed, got, want)
    return quiet_taken
