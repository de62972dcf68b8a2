"""Network-partition resolution: is a silent server down, or is this server cut off?

Pure: no I/O and no clock. The service asks it when membership declares servers Offline (every
heartbeat path to them lost), runs the probes it names, and feeds the results back; it also feeds
every background probe result and every heartbeat's bitmaps. The outputs are :class:`Verdict`
objects, each with the one-line reason the service logs.

The seed's rules (chapter 2, "ネットワークパーティション解決リソースを理解する"):

- No resolver used by this server: a lost server is down; its groups fail over at once.
- ``ping``: a resolver answers "reachable" when at least one of its targets answers; when none
  does, this server is isolated. A ping resolver that was already failing in the background
  before the loss (``retry`` consecutive failed rounds) cannot resolve: it is ignored and the
  lost server counts as down (the seed: every server fails over; clpcfchk warns about it).
  *Before the loss* means independently of it (:meth:`Partition.already_failing`): the lost
  server was heard when the resolver last answered, and every path that delivered then went on
  delivering two intervals past the first unanswered probe. Not "failing when it was last
  heard": the background probes of an isolated server fail during the timeout too, and with one
  lossy path left it still hears the lost server now and then after it was cut off; neither may
  turn its own isolation into "the target was already failing". A server never heard since this
  one started: nothing failed before.
- ``http``: a HEAD request answered means reachable; no answer means isolated, even if the web
  server was already down before (the seed: every server shuts down).
- Several resolvers: isolated if any resolver used by this server says so.
- Isolated: the configured action (stop the cluster service, or stop it and shut down).

Safer than the seed, because the two sides of a partition decide at different speeds (a target
that answers decides in a millisecond, one that does not only after its timeout):

- **Takeover wait.** When resolution is configured, the groups of a server found down move only
  after ``grace`` = the slowest probe the lost server itself could be running (its resolvers'
  ``budget``) plus two heartbeat intervals, so an isolated server has decided and released its
  resources before anyone else takes them, when both sides lost each other within an interval or
  so (a lost server that kept hearing this one longer is covered by "Holding needs proof",
  below). A crashed server costs that much more failover time; without resolvers there is no
  wait (the seed's behaviour, and clpcfchk's warning). A server whose userw feeds a kernel
  watchdog is also waited for until its watchdog would have reset it, were it hung just before
  the verdict (``fence``, clp.config.fencing): its kernel would still answer for its addresses
  and write to its disks.
- **Declared down.** Every heartbeat carries the sender's ``heard`` bitmap (servers it counts
  Online) and ``offline`` bitmap (servers it *resolved down*: not while still probing, and never
  by an isolated server, which stops instead). A server that hears a peer which had heard it
  before and now has resolved it down knows the peer will take its groups after the takeover
  wait (one-way loss: it still hears the peer, the peer does not hear it), so it *yields*: the
  isolated action. When both had resolved each other down (a partition healed after both sides
  went on alone), the lower-priority server yields, and the higher-priority one keeps declaring
  it Offline until that peer's own mark clears (:attr:`Partition.keeping`), so the peer sees the
  mark whichever of them hears the other first. "Had heard it before" only protects a server
  that just started from the mark a peer still keeps for its previous run: once it has run longer
  than a timeout and an interval (``settled``), a peer that could hear it would have cleared the
  mark, so the mark counts even if that peer never heard it (one-way loss since its start).
  Until then a marked server takes no group (:attr:`marked_by`, used by the liveness layer).
- **Holding needs proof.** A peer takes this server's groups only after it has declared this
  server down, probed and waited the takeover wait: at the earliest ``grace`` (``budget`` + 2
  intervals) after the last heartbeat in which it said it still heard this server (its
  ``heard`` bitmap), and ``grace`` after a probe of a target this server could not reach then.
  So while this server holds groups it needs, for every peer, one of two proofs no older than
  the ``lease`` (its resolvers' longest ``budget`` + 1 interval): a heartbeat from the peer that
  says it hears this server, or an answer from every resolver that counts against that peer (a
  ping target that failed independently of the peer's loss does not, as at a loss). Without
  either it takes the network-partition action as isolated, an interval or more before any
  peer may take over (:meth:`clp.core.liveness.Liveness.lease`). This closes two schedules
  the takeover wait alone did not: a server cut off whose last path is lossy (it hears the
  others now and then, so its own timeout comes up to a timeout late), and a server running
  alone that is cut off later (it has no peer to lose, so it probed nothing, and a peer that
  starts meanwhile takes over). Its price: a server holding groups while a peer is down (or
  unheard for longer than the lease) stops when its targets stop answering for the lease, as
  it cannot tell that from being cut off; background probes go every half interval.

Witness arbitration (``witness`` resolvers, clp.core.arbiter) allows none of the seed's
double activations: only one side of a partition wins the claim. And it can cut the takeover
wait, since the witness knows what the other side's proofs are worth:

- **Won at the witness.** A granted claim says, per lost server, how long its last grant from
  the witness still proves it may hold groups (``left``; none when it holds no proof there).
  Its other proof is this server's heartbeats saying they hear it: for a peer that uses a
  witness, this server stops saying so a *hearing window* after the peer's newest heartbeat
  (:meth:`Partition.hear_window`: the heartbeat timeout less the peer's lease and two
  intervals, when that leaves at least an interval), so that proof has run out an interval
  before the peer is declared down. The groups then move once both proofs ran out and an
  interval passed for the release (or the watchdog's reset after a hang at that moment):
  a crashed server's groups move at the verdict, a server that is still renewing at the
  witness is waited for as before (:meth:`Partition.won_wait`). Without a hearing window the
  usual wait applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

VERDICT_KINDS = ("down", "isolated", "yield")
EPSILON = 1e-9  # seconds: sums of configured times are compared with this much slack


class Fence(Protocol):
    """A server's watchdog, as a takeover from it waits for it."""

    def wait(self, ratio: float) -> float: ...


@dataclass(frozen=True)
class ResolverSpec:
    name: str  # pingnp1, httpnp1
    type: str  # ping | http
    servers: frozenset[str]  # the servers that use it
    budget: float  # worst-case seconds of one probe at a loss (all tries of all targets)
    retry: int = 0  # ping: consecutive failed background rounds that make it "failing before"
    describe: str = ""  # "ping 198.18.0.254" for reasons


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of VERDICT_KINDS
    servers: tuple[str, ...]  # "down": the lost servers; otherwise the peers involved
    reason: str
    takeover_at: float = 0.0  # "down": when their groups may move


@dataclass
class _Pending:
    servers: tuple[str, ...]
    since: float
    resolvers: tuple[str, ...]
    timers: dict[str, float] = field(default_factory=dict)  # lost server -> timer_from


@dataclass
class Partition:
    me: str
    servers: tuple[str, ...]  # priority order
    resolvers: tuple[ResolverSpec, ...]
    interval: float
    # server -> how long a takeover from it waits for its watchdog's reset, at a timeout ratio
    # (clp.config.fencing.WatchdogWait)
    fence: Mapping[str, Fence] = field(default_factory=dict)
    ratio: float = 1.0  # the clptoratio ratio now (set by the liveness layer)
    timeout: float = 0.0  # the configured heartbeat timeout (0: no hearing window, see below)
    _fails: dict[str, int] = field(default_factory=dict)  # consecutive background failures
    _failing_at_loss: frozenset[str] = frozenset()
    _pending: _Pending | None = None
    _heard_me: dict[str, bool] = field(default_factory=dict)
    _marked: set[str] = field(default_factory=set)  # peers whose last heartbeat marks me Offline
    _keeping: set[str] = field(default_factory=set)  # resolved down, heard again, still marking me
    _reached: dict[str, float] = field(default_factory=dict)  # last answered probe: sent at
    _unanswered: dict[str, float] = field(default_factory=dict)  # first failed since: sent at
    _later: set[str] = field(default_factory=set)  # lost while a claim was out

    def __post_init__(self) -> None:
        names = [r.name for r in self.resolvers]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate resolver names in {names!r}")
        for r in self.resolvers:
            stray = sorted(r.servers - set(self.servers))
            if stray:
                raise ValueError(f"resolver {r.name!r} names unknown servers {stray!r}")
            if r.budget < 0:
                raise ValueError(f"resolver {r.name!r}: negative budget {r.budget!r}")

    # --- what this server uses --------------------------------------------------------------

    def mine(self) -> tuple[ResolverSpec, ...]:
        return tuple(r for r in self.resolvers if self.me in r.servers)

    def grace(self, lost: tuple[str, ...]) -> float:
        """How long the groups of ``lost`` wait before moving (see the module): for the probes
        the lost servers could be running, and for their watchdogs to reset them. Won at the
        witness, the loss need not come from a hang, which may then begin until the lost
        server's lease runs out (clp.config.fencing)."""
        waits = [self.fence[s].wait(self.ratio) + (self.lease_of(s) if self.arbitrated(s)
                                                   else 0.0)
                 for s in lost if s in self.fence]
        if self.resolvers:
            budgets = [r.budget for r in self.resolvers if r.servers & set(lost)]
            waits.append(max(budgets, default=0.0) + 2 * self.interval)
        return max(waits, default=0.0)

    @property
    def lease(self) -> float:
        """How long this server may hold groups on one proof (see "Holding needs proof" in the
        module): the longest probe of its own resolvers plus an interval; 0 with none."""
        return self.lease_of(self.me)

    def lease_of(self, server: str) -> float:
        """:attr:`lease` of ``server``."""
        budgets = [r.budget for r in self.resolvers if server in r.servers]
        return max(budgets) + self.interval if budgets else 0.0

    def arbitrated(self, server: str) -> bool:
        """Whether ``server`` uses witness arbitration."""
        return any(r.type == "witness" and server in r.servers for r in self.resolvers)

    def hear_window(self, server: str) -> float | None:
        """For a peer that uses witness arbitration: how long after its timer (its newest
        heartbeat) this server still says it hears it (see "Won at the witness" in the
        module), so that its proof from this server has run out, and it has released, before
        it is declared down; None when the timeout leaves no room for that (shorter than its
        lease and three intervals), or it uses no witness."""
        if not self.timeout or not self.arbitrated(server):
            return None
        window = self.timeout - self.lease_of(server) - 2 * self.interval
        return window if window >= self.interval - EPSILON else None

    def reached_until(self, server_rx: Iterable[float]) -> tuple[float, str | None]:
        """Until when this server's resolvers prove it is not isolated, as far as a peer
        taking over matters (``server_rx``: when the peer was last heard on each of its paths):
        the earliest (last answer + lease) of the resolvers that count, and which one that is
        (None: none counts, resolution against that peer is impossible). A ping resolver that
        was already failing while the peer was still heard does not count, as at a loss (see
        :meth:`already_failing`)."""
        until, which = float("inf"), None
        for r in self.counting(server_rx):
            at = self.reached(r.name) + self.lease
            if at < until:
                until, which = at, r.name
        return until, which

    def counting(self, server_rx: Iterable[float]) -> list[ResolverSpec]:
        """This server's resolvers that count against a peer last heard on its paths at
        ``server_rx``: all but a ping resolver that failed independently of its loss."""
        rx = list(server_rx)
        return [r for r in self.mine() if not self.already_failing(r.name, rx)]

    def reached(self, name: str) -> float:
        """When the last answered probe of resolver ``name`` was sent (-inf: none yet)."""
        return self._reached.get(name, float("-inf"))

    def _answered(self, name: str, sent: float) -> None:
        """A probe of resolver ``name`` sent at ``sent`` was answered: reach proved since."""
        self._reached[name] = max(sent, self.reached(name))

    def answering(self, name: str) -> bool:
        """Whether the last background probe of resolver ``name`` was answered."""
        return name not in self._unanswered

    def hears_me(self, server: str) -> bool:
        """Whether the last heartbeat taken from ``server`` said it counts this server Online."""
        return self._heard_me.get(server, False)

    def failing(self, name: str) -> bool:
        """Whether resolver ``name`` fails in the background now (``retry`` rounds in a row)."""
        spec = self._spec(name)
        return self._fails.get(name, 0) >= max(1, spec.retry)

    def already_failing(self, name: str, server_rx: Iterable[float]) -> bool:
        """Whether ping resolver ``name`` failed independently of the loss of a peer last
        heard on its paths at ``server_rx``: it fails now, the peer was heard when the resolver
        last answered, and every path that still delivered then went on delivering at least two
        intervals after the first unanswered probe (a peer not heard since: not before). A
        path that went quiet with the target is the same event (this server cut off): with one
        lossy path left, the peer is heard now and then after the cut, and "failing when last
        heard" would call it independent. Never for http (the seed: no answer means isolated,
        even if the web server was down before)."""
        if self._spec(name).type != "ping" or not self.failing(name):
            return False
        answered = self.reached(name)
        after = self._unanswered.get(name, answered) + 2 * self.interval
        alive = [rx for rx in server_rx if rx >= answered - 2 * self.interval]
        return bool(alive) and all(rx >= after for rx in alive)

    @property
    def marked_by(self) -> tuple[str, ...]:
        """Peers whose last heartbeat declared this server Offline (resolved down)."""
        return tuple(s for s in self.servers if s in self._marked)

    @property
    def keeping(self) -> frozenset[str]:
        """Peers this server resolved down that resolved it down too, heard again since: this
        server has the higher priority and keeps declaring them Offline until their own mark on
        it clears (they give way on seeing it), whatever path or order their heartbeats take."""
        return frozenset(self._keeping)

    @property
    def pending(self) -> tuple[str, ...]:
        """Servers lost and not yet resolved: their groups must not move yet."""
        later = tuple(s for s in self.servers if s in self._later)
        return (self._pending.servers if self._pending else ()) + later

    @property
    def claiming(self) -> tuple[str, ...]:
        """The lost servers the probes in flight are about (a witness's claim names these)."""
        return self._pending.servers if self._pending else ()

    def take_later(self) -> tuple[str, ...]:
        """Servers lost while a claim was in flight: once it is answered the caller loses them
        again (:meth:`lost`), for a claim of their own."""
        later, self._later = self._later, set()
        return tuple(s for s in self.servers if s in later)

    # --- inputs -----------------------------------------------------------------------------

    def background(self, name: str, ok: bool, at: float) -> str | None:
        """One background probe round of a resolver, sent at ``at`` (an answer proves this
        server reached the target after that); returns an alert text on a change of its
        usability (so an operator learns before a loss that resolution would not work)."""
        spec = self._spec(name)
        before = self.failing(name)
        self._fails[name] = 0 if ok else self._fails.get(name, 0) + 1
        if ok:
            self._answered(name, at)
            self._unanswered.pop(name, None)
        else:
            self._unanswered.setdefault(name, at)
        after = self.failing(name)
        if after and not before:
            if spec.type == "ping":
                return (f"network partition resolution {name} cannot work: {spec.describe} has "
                        f"not answered {self._fails[name]} rounds in a row; if every heartbeat "
                        f"is lost now, every server fails over")
            how = "grants no renewal" if spec.type == "witness" else "does not answer"
            return (f"network partition resolution {name}: {spec.describe} {how}; if every "
                    f"heartbeat is lost now, this server stops as isolated")
        if before and not after:
            return f"network partition resolution {name} works again: {spec.describe} answers"
        return None

    def lost(self, now: float, servers: tuple[str, ...],
             rx: Mapping[str, Iterable[float]] | None = None,
             timers: Mapping[str, float] | None = None) -> tuple[str, ...] | Verdict:
        """Membership declared ``servers`` Offline (``rx``: when each was last heard on each of
        its paths; ``timers``: what each one's timeout counted from). Returns the names of the
        resolvers to probe now (then call :meth:`resolved`), or at once the Verdict when this
        server uses none."""
        timers = dict(timers or {})
        lost = tuple(s for s in servers if s != self.me)
        if not lost:
            raise ValueError("lost() needs at least one server other than this one")
        mine = self.mine()
        if self._pending is not None and any(self._spec(n).type == "witness"
                                             for n in self._pending.resolvers):
            # the claim in flight names the servers lost before: these need a claim of their
            # own, once it is answered (take_later)
            self._later.update(s for s in lost if s not in self._pending.servers)
            return ()
        if self._pending is not None:  # more servers lost while probing: one decision for all
            merged = tuple(s for s in self.servers
                           if s in self._pending.servers or s in lost)
            self._pending = _Pending(merged, self._pending.since, self._pending.resolvers,
                                     {**self._pending.timers, **timers})
            return ()
        if not mine:
            return Verdict("down", lost, self._down_reason(lost, "no network partition "
                           "resolution is used by " + self.me), now + self.grace(lost))
        rx = rx or {}
        self._failing_at_loss = frozenset(  # never heard: silent since our start
            r.name for r in mine if all(self.already_failing(r.name, rx.get(s, ()))
                                        for s in lost))
        self._pending = _Pending(lost, now, tuple(r.name for r in mine), timers)
        return tuple(r.name for r in mine)

    def resolved(self, now: float, results: dict[str, bool],
                 left: Mapping[str, float] | None = None) -> Verdict:
        """The probes asked by :meth:`lost` answered (True: the target answered); ``left``:
        a witness's grant, per lost server the seconds its last grant there still proves (a
        lost server it does not name has no proof from it)."""
        if self._pending is None:
            raise ValueError("resolved() without a pending loss")
        pending, self._pending = self._pending, None
        missing = sorted(set(pending.resolvers) - set(results))
        if missing:
            raise ValueError(f"no probe result for {', '.join(missing)}")
        lost = pending.servers
        isolated, ignored, reached = [], [], []
        for name in pending.resolvers:
            spec = self._spec(name)
            witness = spec.type == "witness"
            if results[name]:
                self._answered(name, pending.since)
                reached.append(f"{spec.describe} {'granted the claim' if witness else 'answered'}")
            elif spec.type == "ping" and name in self._failing_at_loss:
                ignored.append(f"{spec.describe} was already failing before the loss")
            else:
                isolated.append(f"{spec.describe} did not "
                                f"{'grant the claim' if witness else 'answer'}")
        if isolated:
            return Verdict("isolated", lost, (
                f"{self.me} is isolated from the network: lost every heartbeat to "
                f"{', '.join(lost)} and {'; '.join(isolated)}"))
        why = "; ".join(reached + [f"{x} (cannot resolve; failing over as the seed does)"
                                   for x in ignored])
        won = left is not None and any(self._spec(n).type == "witness" and results[n]
                                       for n in pending.resolvers)
        wait = self.won_wait(now, lost, left or {}, pending.timers) if won else None
        if wait is None:
            wait = self.grace(lost)
        return Verdict("down", lost, self._down_reason(lost, why, wait), now + wait)

    def won_wait(self, now: float, lost: tuple[str, ...], left: Mapping[str, float],
                 timers: Mapping[str, float]) -> float | None:
        """The takeover wait after a claim granted at ``now`` (see "Won at the witness" in the
        module): until each lost server's last proof ran out (the witness's ``left``, and this
        server's heartbeats, which stopped saying it hears that server a hearing window after
        its timer), then an interval for its release, or its watchdog's reset after a hang at
        that moment. None when a lost server has no hearing window (:meth:`grace` then).
        As the rest of the takeover wait, it counts on a heartbeat reaching its peer within an
        interval; the witness heartbeat path may deliver later, but only between servers that
        both reach the witness, whose proofs there ``left`` bounds anyway."""
        waits = [0.0]
        for s in lost:
            window = self.hear_window(s)
            if window is None or s not in timers:
                return None
            heard = timers[s] + window + self.interval + self.lease_of(s)  # its last such
            # heartbeat, first received an interval later at the latest, and its lease
            end = max(now + left.get(s, float("-inf")), heard)
            after = self.fence[s].wait(self.ratio) if s in self.fence else self.interval
            waits.append(end + after - now)
        return max(waits)

    def heartbeat(self, server: str, heard: int, offline: int, was_offline: bool,
                  settled: bool = False) -> Verdict | None:
        """A heartbeat from ``server`` with its bitmaps; ``was_offline``: whether this server
        had resolved ``server`` down before this heartbeat; ``settled``: whether this server has
        run longer than a timeout. Returns a "yield" Verdict when this server must give up its
        groups (see the module)."""
        bit = 1 << self.servers.index(self.me)
        before = self._heard_me.get(server, False)
        self._heard_me[server] = bool(heard & bit)
        if not offline & bit:
            self._marked.discard(server)
            self._keeping.discard(server)
            return None
        self._marked.add(server)
        mutual = was_offline or server in self._keeping
        if mutual and self.servers.index(self.me) < self.servers.index(server):
            self._keeping.add(server)  # both went on alone; the higher-priority server keeps on
            return None
        if not (before or settled):
            return None
        if mutual:
            return Verdict("yield", (server,), (
                f"{self.me} and {server} each declared the other Offline and both went on; "
                f"{self.me} has the lower priority and gives way"))
        return Verdict("yield", (server,), (
            f"{server} no longer hears {self.me} and declared it Offline while {self.me} still "
            f"hears {server}: {server} takes over, {self.me} gives way"))

    # --- helpers ----------------------------------------------------------------------------

    def _down_reason(self, lost: tuple[str, ...], why: str, wait: float | None = None) -> str:
        wait = self.grace(lost) if wait is None else wait
        then = f"; their groups move in {wait:.2f} s" if wait else ""
        return f"{', '.join(lost)} down: {why}{then}"

    def _spec(self, name: str) -> ResolverSpec:
        for r in self.resolvers:
            if r.name == name:
                return r
        raise ValueError(f"unknown resolver {name!r}")
