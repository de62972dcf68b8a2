"""Which servers the group layer may count on: membership plus network-partition resolution.

Pure, like the two parts it joins (:mod:`clp.core.membership`, :mod:`clp.core.partition`); the
cluster service drives one :class:`Liveness` and the safety simulation drives one per simulated
server, so what is proved there is what runs.

- A server membership declares Offline is first *pending*: the resolvers this server uses are
  probed (:attr:`Step.probe`), and until :meth:`resolved` it still counts as online for the groups
  (nothing moves on a guess).
- Resolved *down*: it is declared Offline in every heartbeat this server sends (the ``offline``
  bitmap) and its groups may move at ``takeover_at`` (see ``Partition.grace``).
- Resolved *isolated*, or told by a peer that it was declared down (*yield*): :attr:`verdict` is
  set and the service takes the network-partition action. Nothing else is decided after that.
- Declared down by a peer while this server has run less than a timeout and an interval (not
  :meth:`settled`): the mark may be left from this server's previous run and the peer clears it
  once it hears this one, so it does not yield yet; but it does not count itself for the groups
  either until the mark clears, or it has settled and yields (the peer may be taking over).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clp.core.membership import Decision, Membership, PathState, ServerState
from clp.core.partition import Fence, Partition, ResolverSpec, Verdict

FIRST_SEEN = 16  # heartbeats per server whose first receipt is remembered (several intervals)


@dataclass
class Step:
    decisions: list[Decision] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    probe: tuple[str, ...] = ()  # resolvers to probe now, then call resolved()


class Liveness:
    def __init__(self, me: str, servers: list[str], paths: dict[str, set[str]], timeout: float,
                 interval: float, resolvers: tuple[ResolverSpec, ...], now: float,
                 fence: Mapping[str, Fence] | None = None) -> None:
        """``fence``: the servers whose watchdog a takeover waits for (Partition.fence)."""
        self.me = me
        self.servers = list(servers)
        self.membership = Membership(me, servers, paths, timeout, now)
        self.partition = Partition(me, tuple(servers), resolvers, interval, dict(fence or {}),
                                   timeout=timeout)
        self.down: dict[str, float] = {}  # resolved down -> when its groups may move
        self.verdict: Verdict | None = None  # isolated or yield: this server must stop
        self.started = now
        self.holding = False  # set by the caller: this server runs (or starts) some group
        self._proof: dict[str, float] = {}  # peer -> when it last showed it hears this server
        self._frozen: tuple[str, ...] | None = None
        self._newest: dict[str, tuple[float, ...]] = {}  # server -> order of its newest heartbeat
        self._first: dict[str, dict[tuple[float, ...], float]] = {s: {} for s in servers}

    # --- queries ----------------------------------------------------------------------------

    def online(self) -> list[str]:
        return [s for s in self.servers
                if self.membership.server_state(s) == ServerState.ONLINE]

    def group_online(self, now: float) -> list[str]:
        """The servers the group layer counts as up: Online, pending resolution, or down but
        still inside the takeover wait. Once this server must stop (isolated, yield), the view is
        frozen as it was, the lost servers included: a stopping server takes nothing over."""
        if self._frozen is not None:
            return list(self._frozen)
        return self._view(now, proofs=True)

    def _view(self, now: float, proofs: bool) -> list[str]:
        keep = (set(self.online()) - self.partition.keeping) | set(self.partition.pending)
        keep |= {s for s, at in self.down.items() if at > now}
        if self.partition.marked_by and not self.settled(now):
            keep.discard(self.me)  # a peer counts it down: see the module
        if proofs and not self.holding and not self.may_hold(now):
            keep.discard(self.me)  # it would stop as isolated at once: it takes nothing
        return [s for s in self.servers if s in keep]

    def may_hold(self, now: float) -> bool:
        """Whether this server has the proofs to hold groups and keep them (:meth:`lease`): for
        every peer, a heartbeat saying it hears this server, or every resolver that counts
        against it answering (its last probe too, or the proof lapses soon). A server whose
        target stopped answering while a peer is down must not start a group only to stop at
        once; it starts it when its target answers again."""
        span = self.partition.lease
        if not span or self.verdict is not None or self.membership.suspended:
            return True
        for peer in self.servers:
            if peer == self.me or self._proof.get(peer, self.started) + span > now:
                continue
            rx = self.membership.last_rxs(peer)
            if self.partition.reached_until(rx)[0] <= now or not all(
                    self.partition.answering(r.name) for r in self.partition.counting(rx)):
                return False
        return True

    def proved(self, peer: str) -> float | None:
        """When ``peer`` last showed that it hears this server (None: not since it started)."""
        return self._proof.get(peer)

    def settled(self, now: float) -> bool:
        """Whether this server has run long enough for a peer's Offline mark to be current."""
        return now - self.started > self.membership.timeout + self.partition.interval

    def unheard(self) -> frozenset[str]:
        return frozenset(s for s in self.servers
                         if self.membership.server_state(s) == ServerState.UNKNOWN)

    def bitmaps(self, now: float | None = None) -> tuple[int, int]:
        """(heard, offline) for this server's heartbeats sent at ``now``: heard, the servers it
        counts Online, but not a peer with a hearing window silent for longer than that
        (:meth:`Partition.hear_window`; ``now`` None: no window applies)."""
        heard = sum(1 << i for i, s in enumerate(self.servers)
                    if self.membership.server_state(s) == ServerState.ONLINE
                    and not self._unheard_for(now, s))
        offline = sum(1 << self.servers.index(s) for s in self.down)
        return heard, offline

    def _unheard_for(self, now: float | None, server: str) -> bool:
        window = None if now is None or server == self.me else \
            self.partition.hear_window(server)
        return window is not None and now - self.membership.timer_from(server) > window

    def next_deadline(self, now: float) -> float | None:
        times = [at for at in self.down.values() if at > now]
        deadline = self.membership.next_deadline()
        if deadline is not None:
            times.append(deadline)
        lease = self.lease(now)
        if lease is not None and lease[0] > now:
            times.append(lease[0])
        return min(times, default=None)

    def lease(self, now: float) -> tuple[float, str, str | None] | None:
        """While this server holds groups and uses resolvers: until when it may go on holding
        them with the proofs it has, the peer whose proofs end first, and the resolver whose
        answer counted against that peer ends first (None: none counts). For every peer, a
        heartbeat that says the peer hears this server, or an answer of every resolver that
        counts against it, no older than the lease (see "Holding needs proof" in
        :mod:`clp.core.partition`)."""
        if not self.holding or self.verdict is not None or self.membership.suspended:
            return None
        span = self.partition.lease
        if not span:
            return None
        worst: tuple[float, str, str | None] | None = None
        for peer in self.servers:
            if peer == self.me:
                continue
            heard = self._proof.get(peer, self.started) + span  # see "Holding needs proof"
            reached, which = self.partition.reached_until(self.membership.last_rxs(peer))
            until = max(heard, reached)
            if worst is None or until < worst[0]:
                worst = (until, peer, which)
        return worst

    # --- inputs -----------------------------------------------------------------------------

    def quiet(self, server: str, path: str) -> bool:
        """Whether a heartbeat from ``server`` on ``path`` whose bitmaps repeat the sender's
        previous ones would only move the path's timer (:meth:`alive` may take it)."""
        m = self.membership
        return (self.verdict is None and not m.suspended and server not in self.down
                and m.server_state(server) is ServerState.ONLINE
                and m.path_state(server, path) is PathState.NORMAL)

    def alive(self, now: float, server: str, path: str, first: float,
              order: tuple[float, ...]) -> bool:
        """:meth:`heartbeat` for a heartbeat whose bitmaps repeat those of the sender's newest
        one taken, done cheaply when its server is Online and the path Normal (:meth:`quiet`);
        False, with nothing done, when it is not so: the caller then calls :meth:`heartbeat`.
        ``first``: when this heartbeat first arrived on any path."""
        if self.verdict is not None:
            return True  # heartbeat() takes nothing any more either
        if server in self.down or not self.membership.alive(now, server, path, first):
            return False
        if order > self._newest.get(server, ()):
            self._newest[server] = order
            if self.partition.hears_me(server):  # its bitmaps are those of the newest taken
                self._proved(server, first)
        return True

    def heartbeat(self, now: float, server: str, path: str, heard: int = 0,
                  offline: int = 0, order: tuple[float, ...] | None = None,
                  first: float | None = None) -> Step:
        """A heartbeat from ``server`` on ``path``. ``order``: the sender's (incarnation,
        sequence) of it; a copy not newer than one already taken from that server (the same
        heartbeat on another path, a late copy relayed by a witness) keeps the server alive but
        its bitmaps are old news and are not looked at. ``first``: when it first arrived on any
        path, if the caller knows (else the first call with that ``order`` says)."""
        step = Step()
        if self.verdict is not None:
            return step
        was_down = server in self.down
        first = self._first_seen(now, server, order, first)
        step.decisions = self.membership.heartbeat(now, server, path, first)
        if self.membership.suspended:
            return step
        if order is not None:
            if order <= self._newest.get(server, ()):
                return step
            self._newest[server] = order
        verdict = self.partition.heartbeat(server, heard, offline, was_down, self.settled(now))
        if self.partition.hears_me(server):
            self._proved(server, now if first is None else first)
        if (self.membership.server_state(server) == ServerState.ONLINE
                and server not in self.partition.keeping):
            self.down.pop(server, None)
        if verdict is not None:
            self._stop(now, step, verdict)
        return step

    def _first_seen(self, now: float, server: str, order: tuple[float, ...] | None,
                    first: float | None) -> float | None:
        """When the heartbeat ``order`` of ``server`` was first received, on whichever path
        (the last FIRST_SEEN heartbeats are remembered; an older copy counts from ``now``, or
        from ``first`` when the caller knows better)."""
        seen = self._first.get(server)
        if order is None or seen is None or server == self.me:
            return first  # membership refuses an unknown server
        at = seen.setdefault(order, now if first is None else min(now, first))
        if len(seen) > FIRST_SEEN:
            del seen[next(iter(seen))]  # the oldest received
        return at

    def tick(self, now: float) -> Step:
        step = Step()
        if self.verdict is not None:
            return step
        self.partition.ratio = self.membership.ratio
        step.decisions = self.membership.tick(now)
        lost = tuple(d.server for d in step.decisions if d.kind == "server_down")
        if lost:
            self._lose(now, step, lost)
        lease = self.lease(now)
        if lease is not None and lease[0] <= now:
            self._stop(now, step, self._lapsed(now, lease[1], lease[2]))
        return step

    def _proved(self, server: str, at: float) -> None:
        """A heartbeat of ``server`` first arrived at ``at`` says it hears this server."""
        self._proof[server] = max(at, self._proof.get(server, at))

    def _lapsed(self, now: float, peer: str, resolver: str | None) -> Verdict:
        """The isolated verdict of a lease that ran out (see :meth:`lease`)."""
        heard = self.proved(peer)
        hears = (f"{peer} has not shown for {now - heard:.2f} s that it hears {self.me}"
                 if heard is not None else
                 f"{peer} has not shown that it hears {self.me} since {self.me} started")
        spec = next(r for r in self.partition.resolvers if r.name == resolver)  # a finite
        # lease always comes from a resolver that counts (lease() names it)
        reached = self.partition.reached_until(self.membership.last_rxs(peer))[0] - \
            self.partition.lease
        answered = (f"{spec.describe} has not answered a probe sent in the last "
                    f"{now - reached:.2f} s" if reached > float("-inf")
                    else f"{spec.describe} has not answered since {self.me} started")
        return Verdict("isolated", (peer,), (
            f"{self.me} is isolated from the network: {hears} (it may declare {self.me} down "
            f"and take over) and {answered}; holding groups needs one of the two within "
            f"{self.partition.lease:.2f} s"))

    def resolved(self, now: float, results: dict[str, bool],
                 left: Mapping[str, float] | None = None) -> Step:
        """The probes of a loss answered; ``left``: a witness's grant (Partition.resolved)."""
        step = Step()
        self.partition.ratio = self.membership.ratio
        verdict = self.partition.resolved(now, results, left)
        if self.verdict is None:
            self._apply(now, step, verdict)
        later = tuple(s for s in self.partition.take_later()
                      if self.membership.server_state(s) == ServerState.OFFLINE)
        if later and self.verdict is None:  # lost while that claim was out: a claim of theirs
            self._lose(now, step, later)
        return step

    def background(self, name: str, ok: bool, at: float) -> str | None:
        return self.partition.background(name, ok, at)

    # --- helpers ----------------------------------------------------------------------------

    def _lose(self, now: float, step: Step, lost: tuple[str, ...]) -> None:
        """``lost`` declared Offline: the probes to run, or the verdict at once."""
        out = self.partition.lost(now, lost, {s: self.membership.last_rxs(s) for s in lost},
                                  {s: self.membership.timer_from(s) for s in lost})
        if isinstance(out, Verdict):
            self._apply(now, step, out)
        else:
            step.probe = out

    def _apply(self, now: float, step: Step, verdict: Verdict) -> None:
        if verdict.kind != "down":
            self._stop(now, step, verdict)
            return
        # a server that came back while we probed is not down
        lost = tuple(s for s in verdict.servers
                     if self.membership.server_state(s) == ServerState.OFFLINE)
        if not lost:
            return
        for s in lost:
            self.down[s] = verdict.takeover_at
        step.verdicts.append(Verdict("down", lost, verdict.reason, verdict.takeover_at))

    def _stop(self, now: float, step: Step, verdict: Verdict) -> None:
        view = set(self._view(now, proofs=False)) | set(verdict.servers)
        self._frozen = tuple(s for s in self.servers if s in view)
        self.verdict = verdict
        step.verdicts.append(verdict)
