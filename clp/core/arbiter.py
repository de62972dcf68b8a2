"""Witness arbitration: the tiebreaker that only one side of a partition can win.

Pure: no I/O and no clock; the witness server (``clpwitnessd``) keeps one :class:`Arbiter` per
cluster and the partition simulation drives the same class, so what is proved there is what runs.

A cluster whose servers use a ``witness`` resolver (docs/network-partition.md, "Witness
arbitration") asks the witness two things:

- **claim** (at a loss, instead of pinging a target): "I lost these servers". Granted only when
  no claim in force names the claimer; the claim then names each lost server. So of two sides
  that lost each other, the first to ask wins and the other is refused: it is isolated and stops.
  The grant says, per lost server, how long its last granted request still proves it may hold
  groups (``left``): the winner need not wait for a proof that ran out long ago (a crash).
- **renew** (in the background, every half heartbeat interval): "I am still here, and these are
  the servers I hear". Granted only when no claim in force names the renewer. A server holding
  groups needs, for every peer, a heartbeat saying the peer hears it or a granted renewal, no
  older than its lease (clp.core.liveness, "Holding needs proof"): a server claimed against
  cannot renew, so it stops a lease after its last grant at the latest; the claimer waits for
  that (the grant's ``left``) before its groups start (clp.core.partition, "Won at the
  witness").

A claim stays in force while its claimer renews within the lease it gave (a claimer that stops
renewing may hold nothing on it after that lease either, so its claims go with it), and until the
claimer says in a renewal that it hears the claimed server again (a restarted server, heard by
everyone, is free again). A refused request renews nothing.

A witness that restarts has forgotten every claim: for ``hold`` seconds after it starts it grants
nothing, so every lease taken from the witness before has run out before it grants again. A
request whose lease is longer than ``hold`` is refused with the reason (the operator must give
the witness a longer hold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_SERVERS = 32  # servers per cluster the arbiter keeps (a cluster has at most 32)


@dataclass(frozen=True)
class Answer:
    granted: bool
    reason: str  # why not, or what was granted, for the server's log
    # a granted claim: per lost server, how long its last granted request still proves it may
    # hold groups (its lease from when the witness granted it, less the time since); a lost
    # server not named holds no proof from the witness at all (none granted, or ran out)
    left: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Arbiter:
    started: float  # when the witness started (its own monotonic clock)
    hold: float  # seconds it grants nothing after starting (longer than every lease)
    _renewed: dict[str, tuple[float, float]] = field(default_factory=dict)  # at, lease
    _claims: dict[str, dict[str, float]] = field(default_factory=dict)  # against -> by -> at

    def claim(self, me: str, lost: Iterable[str], lease: float, now: float) -> Answer:
        lost = sorted(set(lost) - {me})
        refused = self._refuse(me, lease, now, len(lost) + 1)
        if refused is not None:
            return refused
        if not lost:
            return Answer(False, "a claim names at least one lost server")
        self._renewed[me] = (now, lease)
        for s in lost:
            self._claims.setdefault(s, {})[me] = now
        left = {s: at + span - now for s, (at, span) in self._renewed.items() if s in lost}
        return Answer(True, f"{me} won the witness against {', '.join(lost)}", left)

    def renew(self, me: str, heard: Iterable[str], lease: float, now: float) -> Answer:
        heard = set(heard) - {me}
        refused = self._refuse(me, lease, now, len(heard) + 1)
        if refused is not None:
            return refused
        self._renewed[me] = (now, lease)
        for s in heard:
            by = self._claims.get(s)
            if by is not None and by.pop(me, None) is not None and not by:
                del self._claims[s]
        return Answer(True, "renewed")

    def claimed_by(self, server: str, now: float) -> list[str]:
        """The servers whose claim against ``server`` is in force now."""
        return sorted(by for by, _ in self._claims.get(server, {}).items()
                      if self._alive(by, now))

    def summary(self, now: float) -> dict[str, object]:
        """For the witness's operator view: claims in force, and each server's last renewal."""
        return {
            "holding_for": round(max(0.0, self.started + self.hold - now), 3),
            "claims": {s: by for s in sorted(self._claims) if (by := self.claimed_by(s, now))},
            "renewed": {s: round(now - at, 3) for s, (at, _) in sorted(self._renewed.items())},
        }

    def _alive(self, server: str, now: float) -> bool:
        at, lease = self._renewed.get(server, (float("-inf"), 0.0))
        return now < at + lease

    def _prune(self, now: float) -> None:
        """Forget servers whose lease ran out and the claims that are no longer in force (a
        server renamed or removed from the cluster gives its place back)."""
        for s in [s for s in self._renewed if not self._alive(s, now)]:
            del self._renewed[s]
        for against in list(self._claims):
            by = self._claims[against]
            for s in [s for s in by if s not in self._renewed]:
                del by[s]
            if not by:
                del self._claims[against]

    def _refuse(self, me: str, lease: float, now: float, names: int) -> Answer | None:
        self._prune(now)
        if not 0 < lease <= self.hold:
            return Answer(False, f"a lease of {lease:g} s is outside (0, {self.hold:g}] s, the "
                                 f"witness's hold after a restart (clpwitnessd --arbiter-hold)")
        if names > MAX_SERVERS or len(self._renewed.keys() | {me}) > MAX_SERVERS:
            return Answer(False, f"a cluster has at most {MAX_SERVERS} servers")
        if now < self.started + self.hold:
            return Answer(False, f"the witness restarted {now - self.started:.1f} s ago and "
                                 f"grants nothing for {self.hold:g} s (claims made before are "
                                 f"lost)")
        by = self.claimed_by(me, now)
        if by:
            return Answer(False, f"{', '.join(by)} won the witness against {me}")
        return None
