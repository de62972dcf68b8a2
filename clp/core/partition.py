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
  *Before the loss* means when the lost servers were last heard (a server never heard: silent
  since this one started, so nothing failed before), not when the timeout ran out: the
  background probes of an isolated server fail during the timeout too, and must not turn its own
  isolation into "the target was already failing".
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
  so (not when the lost server kept hearing this one longer: it times out up to a timeout later;
  a known gap, see the safety simulation). A crashed server costs that much more failover time;
  without resolvers there is no wait (the seed's behaviour, and clpcfchk's warning).
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
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERDICT_KINDS = ("down", "isolated", "yield")


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


@dataclass
class Partition:
    me: str
    servers: tuple[str, ...]  # priority order
    resolvers: tuple[ResolverSpec, ...]
    interval: float
    _fails: dict[str, int] = field(default_factory=dict)  # consecutive background failures
    _failing_cache: frozenset[str] | None = field(default=None, compare=False, repr=False)
    _failing_at_loss: frozenset[str] = frozenset()
    _pending: _Pending | None = None
    _heard_me: dict[str, bool] = field(default_factory=dict)
    _failing_heard: dict[str, frozenset[str]] = field(default_factory=dict)  # at its last heartbeat
    _marked: set[str] = field(default_factory=set)  # peers whose last heartbeat marks me Offline
    _keeping: set[str] = field(default_factory=set)  # resolved down, heard again, still marking me

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
        """How long the groups of ``lost`` wait before moving (see the module)."""
        if not self.resolvers:
            return 0.0
        budgets = [r.budget for r in self.resolvers if r.servers & set(lost)]
        return max(budgets, default=0.0) + 2 * self.interval

    def failing(self, name: str) -> bool:
        """Whether resolver ``name`` fails in the background now (``retry`` rounds in a row)."""
        spec = self._spec(name)
        return self._fails.get(name, 0) >= max(1, spec.retry)

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
        return self._pending.servers if self._pending else ()

    # --- inputs -----------------------------------------------------------------------------

    def background(self, name: str, ok: bool) -> str | None:
        """One background probe round of a resolver; returns an alert text on a change of its
        usability (so an operator learns before a loss that resolution would not work)."""
        spec = self._spec(name)
        before = self.failing(name)
        self._fails[name] = 0 if ok else self._fails.get(name, 0) + 1
        self._failing_cache = None
        after = self.failing(name)
        if after and not before:
            if spec.type == "ping":
                return (f"network partition resolution {name} cannot work: {spec.describe} has "
                        f"not answered {self._fails[name]} rounds in a row; if every heartbeat "
                        f"is lost now, every server fails over")
            return (f"network partition resolution {name}: {spec.describe} does not answer; if "
                    f"every heartbeat is lost now, this server stops as isolated")
        if before and not after:
            return f"network partition resolution {name} works again: {spec.describe} answers"
        return None

    def lost(self, now: float, servers: tuple[str, ...]) -> tuple[str, ...] | Verdict:
        """Membership declared ``servers`` Offline. Returns the names of the resolvers to probe
        now (then call :meth:`resolved`), or at once the Verdict when this server uses none."""
        lost = tuple(s for s in servers if s != self.me)
        if not lost:
            raise ValueError("lost() needs at least one server other than this one")
        mine = self.mine()
        if self._pending is not None:  # more servers lost while probing: one decision for all
            merged = tuple(s for s in self.servers
                           if s in self._pending.servers or s in lost)
            self._pending = _Pending(merged, self._pending.since, self._pending.resolvers)
            return ()
        if not mine:
            return Verdict("down", lost, self._down_reason(lost, "no network partition "
                           "resolution is used by " + self.me), now + self.grace(lost))
        failing = frozenset(r.name for r in mine if self.failing(r.name))
        self._failing_at_loss = failing.intersection(  # never heard: silent since our start
            *(self._failing_heard.get(s, frozenset()) for s in lost))
        self._pending = _Pending(lost, now, tuple(r.name for r in mine))
        return tuple(r.name for r in mine)

    def resolved(self, now: float, results: dict[str, bool]) -> Verdict:
        """The probes asked by :meth:`lost` answered (True: the target answered)."""
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
            if results[name]:
                reached.append(f"{spec.describe} answered")
            elif spec.type == "ping" and name in self._failing_at_loss:
                ignored.append(f"{spec.describe} was already failing before the loss")
            else:
                isolated.append(f"{spec.describe} did not answer")
        if isolated:
            return Verdict("isolated", lost, (
                f"{self.me} is isolated from the network: lost every heartbeat to "
                f"{', '.join(lost)} and {'; '.join(isolated)}"))
        why = "; ".join(reached + [f"{x} (cannot resolve; failing over as the seed does)"
                                   for x in ignored])
        return Verdict("down", lost, self._down_reason(lost, why), now + self.grace(lost))

    def heard(self, server: str) -> None:
        """``server`` was heard now: which of this server's resolvers were failing then (see
        "already failing" in the module). Part of :meth:`heartbeat`; alone for a heartbeat whose
        bitmaps repeat the sender's previous ones."""
        self._failing_heard[server] = self._failing_now

    @property
    def _failing_now(self) -> frozenset[str]:
        """This server's resolvers failing now; kept, since only :meth:`background` changes
        it and a heartbeat asks for it (hundreds a second at interval 0.1 s)."""
        if self._failing_cache is None:
            self._failing_cache = frozenset(r.name for r in self.mine() if self.failing(r.name))
        return self._failing_cache

    def heartbeat(self, server: str, heard: int, offline: int, was_offline: bool,
                  settled: bool = False) -> Verdict | None:
        """A heartbeat from ``server`` with its bitmaps; ``was_offline``: whether this server
        had resolved ``server`` down before this heartbeat; ``settled``: whether this server has
        run longer than a timeout. Returns a "yield" Verdict when this server must give up its
        groups (see the module)."""
        self.heard(server)
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

    def _down_reason(self, lost: tuple[str, ...], why: str) -> str:
        wait = self.grace(lost)
        then = f"; their groups move in {wait:.2f} s" if wait else ""
        return f"{', '.join(lost)} down: {why}{then}"

    def _spec(self, name: str) -> ResolverSpec:
        for r in self.resolvers:
            if r.name == name:
                return r
        raise ValueError(f"unknown resolver {name!r}")
