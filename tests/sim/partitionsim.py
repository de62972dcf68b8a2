"""A deterministic simulated cluster driving one :class:`Liveness` per server, with one shared-disk
group G: is G ever active on two servers, and if so, do the product's own rules allow it?

The model (the paths, resolvers and faults are in :mod:`tests.sim.partitionworld`):

- Servers ``s1..sN`` (priority order), heartbeat interval 1.0. Every server runs a *round* every
  interval (own phase): it sends a heartbeat on each of its paths to every other member, with the
  bitmaps of :meth:`Liveness.bitmaps` at send time, then ``tick``. Like the service it also wakes
  at :meth:`Liveness.next_deadline` to ``tick``. A packet the world does not lose arrives after a
  delay in ``[0, max_delay)``.
- When a Step names probes, each result is the world's reachability of that target at probe
  time; they arrive together after 0.01 if every target answered, else after the budget of the
  slowest silent one (``resolved``). A background probe per resolver at start and every half
  interval, send to send, answered the same way. A ``witness`` resolver's target is one
  :class:`Arbiter` for the cluster: reached, it answers a probe at a loss with a claim against
  the lost servers and a background probe with a renewal naming the servers the node counts
  Online (a hung node sends none), both at send time.
- ``hang``: the server sends, ticks and processes nothing; at resume the service's fence: rounds
  more than ``timeout`` apart, it panics, holding nothing from then on. With ``watchdog``
  (userw feeding a kernel watchdog, its device timeout the heartbeat timeout), a server hung
  for that long is reset by its kernel (it holds nothing and stays off), a hung holder counts as
  active (its kernel still answers for G's address and writes to its disk), and every server's
  takeover waits for the watchdog (``Liveness(fence=...)``, clp.config.fencing). Without it, a
  hung holder does not count: that is the ``keepalive`` method's known limit. ``crash``: it
  stops and releases at once; restarts with a fresh Liveness at the window's end if finite.
- The group, as the coordinator: a running server with no verdict that has heard (or declared
  down) every server activates G, after 0.1 s, when it is the first of its ``group_online`` (for
  ``SETTLE`` already, unless alone there: the coordinator's settle) and the owner it knows of is
  not in it, and it has a report from every other server in it, none of them holding or
  activating G (reports ride on LAN heartbeats: whether the sender holds or is activating G;
  dropped when the sender is declared down). The owner it knows of is the last sender that
  said it holds G; the reports keep what each server said, as the coordinator does. A
  verdict (isolated, yield) releases G after 0.2 s and ends the service (no heartbeat after).
  *Active* = holds G and is not hung.

Checked after every event and every quarter interval (:meth:`PartitionSim.check`): no two active
holders, unless one of the product's rules allows it (:meth:`PartitionSim.classify`); each such
case is recorded once in :attr:`PartitionSim.allowed`, any other raises :class:`Unsafe` with the
timeline. Events run in time order from one seeded ``random.Random``, so a scenario always plays
out the same way.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass, field

from clp.config.fencing import FEED_LAG, WatchdogWait
from clp.core.arbiter import Arbiter
from clp.core.liveness import Liveness, Step
from clp.core.partition import ResolverSpec, Verdict
from tests.sim.partitionworld import INF, INTERVAL, LAN, Config, Fault, Scenario, World

__all__ = ["INTERVAL", "Config", "Fault", "PartitionSim", "Scenario", "Unsafe"]

ACTIVATE, STOP, ANSWER, SLACK = 0.1, 0.2, 0.01, 0.001
BACKGROUND = INTERVAL / 2  # background probes, send to send (clp.clusterd.resolution.period)
SETTLE = 2 * INTERVAL  # the coordinator's settle, as the service configures it
EPS = 1e-9
ROUND, DELIVER, OTHER, CHECK = 0, 1, 2, 3  # order of events at the same time
NO_RESOLVER = "no network partition resolution is used by"
FAILING = "already failing"


@dataclass(frozen=True)
class Down:
    """Why ``server`` counts as down for a node: the verdict and the world at probe time."""
    verdict: Verdict
    at: float
    peer_inc: int
    peer_alive: bool
    peer_reach: bool  # it reached every target the node probed


@dataclass
class Node:
    name: str
    live: Liveness
    inc: int = 0
    state: str = "running"  # running | stopping | stopped | fenced | crashed
    holds: bool = False
    activating: bool = False
    act_id: int = 0
    owner: str | None = None
    reports: dict[str, bool] = field(default_factory=dict)
    heard_me: dict[str, bool] = field(default_factory=dict)  # did its last heartbeat say so
    downs: dict[str, Down] = field(default_factory=dict)
    basis: dict[str, Down] = field(default_factory=dict)  # downs when it activated
    kept: dict[str, Down] = field(default_factory=dict)  # heard again, kept running by the rule
    last_round: float | None = None
    master_since: float | None = None  # first of its group_online since
    wake_at: float = INF
    probed: dict[str, tuple[int, bool, bool]] | None = None  # the world when it probed


class Unsafe(AssertionError):
    pass


class PartitionSim:
    def __init__(self, sc: Scenario) -> None:
        self.sc, self.cfg = sc, sc.cfg
        self.rng = random.Random(sc.seed)
        self.world = World(sc.faults, self.rng)
        self.servers, self.paths, self.specs = self.cfg.servers, self.cfg.paths(), self.cfg.specs()
        self.now = 0.0
        self._queue: list[tuple[float, int, int, tuple]] = []
        self._seq = 0
        self.nodes: dict[str, Node] = {}
        self.timeline: list[tuple[float, str, str]] = []
        self.holdings: list[tuple[float, str, bool]] = []
        self.allowed: list[tuple[str, float, str, str, str]] = []  # class, t, a, b, reason
        self.verdicts: list[tuple[float, str, Verdict]] = []
        self.episodes: dict[tuple, str] = {}
        self.rx: dict[tuple[str, str], list[tuple[float, float, bool]]] = defaultdict(list)
        self.arbiter = Arbiter(started=-100.0, hold=100.0)  # up long before the cluster
        for s in self.servers:
            self._boot(s, 0.0, 0)
        first = self.nodes["s1"]
        self._set_holds(first, True, 0.0)
        for n in self.nodes.values():
            n.owner = "s1"
        for k in range(int(sc.horizon * 4 / INTERVAL) + 1):
            self._push(k * INTERVAL / 4, CHECK, ("check",))
        for f in sc.faults:
            self._push(f.start, OTHER, ("fault", f, "begins"))
            if f.end < INF:
                self._push(f.end, OTHER, ("fault", f, "ends"))

    # --- the world ----------------------------------------------------------------------------

    def active(self, n: Node, t: float) -> bool:
        """Holds G and runs; hung too with ``watchdog`` (see the module)."""
        return n.holds and n.state in ("running", "stopping") and (
            self.cfg.watchdog or not self.world.hung(n.name, t))

    def holders(self, t: float) -> list[str]:
        """Who held G at ``t`` (hung or not), from the record of changes."""
        now: dict[str, bool] = {}
        for at, s, h in self.holdings:
            if at <= t:
                now[s] = h
        return [s for s in self.servers if now.get(s)]

    # --- running ------------------------------------------------------------------------------

    def _push(self, t: float, prio: int, what: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, prio, self._seq, what))

    def run(self) -> PartitionSim:
        while self._queue:
            t, _, _, what = heapq.heappop(self._queue)
            if t > self.sc.horizon:
                break
            self.now = t
            getattr(self, "_on_" + what[0])(t, *what[1:])
            self.check(t)
        return self

    def log(self, t: float, who: str, text: str) -> None:
        self.timeline.append((t, who, text))


    def _boot(self, s: str, t: float, inc: int) -> None:
        fence = {x: WatchdogWait.of(self.cfg.timeout, INTERVAL)
                 for x in self.servers} if self.cfg.watchdog else None  # device = heartbeat
        live = Liveness(s, self.servers, self.paths, self.cfg.timeout, INTERVAL, self.specs, t,
                        fence)
        self.nodes[s] = Node(s, live, inc, last_round=t)  # the service's loop starts timed
        self._push(t + self.rng.uniform(0, INTERVAL), ROUND, ("round", s, inc))
        for r in live.partition.mine():  # the service probes at once when it starts
            self._push(t, OTHER, ("background", s, inc, r))

    def _node(self, s: str, inc: int, t: float, what: tuple | None = None) -> Node | None:
        """The node if this event is still for it and it runs; a hung node gets ``what`` again
        at the end of its hang."""
        n = self.nodes[s]
        if n.inc != inc or n.state not in ("running", "stopping"):
            return None
        if self.world.hung(s, t):
            if what is not None:
                self._push(self.world.hang_end(s, t), OTHER, what)
            return None
        n.live.holding = n.holds or n.activating
        return n

    def _on_fault(self, t: float, f: Fault, edge: str) -> None:
        who = f.who or f.path or "network"
        self.log(t, who, f"fault {edge}: {f}")
        if f.kind == "hang" and edge == "begins" and self.cfg.watchdog:
            # fed at the latest FEED_LAG intervals after the last round (userw's rule), then
            # the device's timeout: the latest it fires
            n = self.nodes[f.who]
            fed = (n.last_round if n.last_round is not None else t) + FEED_LAG * INTERVAL
            self._push(max(t, fed) + self.cfg.timeout, OTHER, ("watchdog", f.who, n.inc, t))
        if f.kind != "crash":
            return
        n = self.nodes[f.who]
        if any(g.who == f.who for g in self.world.on("crash", t)) != (edge == "begins"):
            return  # overlapping crash windows: one crash
        if edge == "begins" and n.state != "crashed":
            n.state, n.activating = "crashed", False
            self._set_holds(n, False, t)
        elif edge == "ends" and n.state == "crashed":
            self._boot(f.who, t, n.inc + 1)
            self.log(t, f.who, "restarted: a fresh Liveness, holding nothing")

    def _on_watchdog(self, t: float, s: str, inc: int, since: float) -> None:
        """Hung since ``since`` without a break, not fed since: the kernel's watchdog resets
        the server."""
        n = self.nodes[s]
        if n.inc != inc or n.state not in ("running", "stopping") or \
                self.world.hang_end(s, since) < t - EPS:
            return
        n.state, n.activating = "crashed", False
        self._set_holds(n, False, t)
        self.log(t, s, f"watchdog: not fed for {t - since:.2f} s; reset")

    def _on_round(self, t: float, s: str, inc: int) -> None:
        n = self._node(s, inc, t)
        if n is None:
            if self.nodes[s].inc == inc and self.nodes[s].state in ("running", "stopping"):
                self._push(self.world.hang_end(s, t), ROUND, ("round", s, inc))  # hung
            return
        gap = None if n.last_round is None else t - n.last_round
        if gap is not None and gap > self.cfg.timeout:
            n.state, n.activating = "fenced", False
            self._set_holds(n, False, t)
            self.log(t, s, f"hang fence: rounds {gap:.2f} s apart; panic")
            return
        n.last_round = t
        self._push(t + INTERVAL, ROUND, ("round", s, inc))
        heard, offline = n.live.bitmaps(t)
        for path, members in self.paths.items():
            for to in sorted(members - {s}) if s in members else ():
                if self.world.delivers(path, s, to, t):
                    delay = self.rng.uniform(0, self.cfg.max_delay) if self.cfg.max_delay else 0
                    self._push(t + delay, DELIVER,
                               ("deliver", to, s, path, (inc, t), n.holds or n.activating,
                                heard, offline))
        self._after(n, t, n.live.tick(t))

    def _on_deliver(self, t: float, to: str, sender: str, path: str, order: tuple[int, float],
                    holds: bool, heard: int, offline: int) -> None:
        """``order``: the sender's (incarnation, send time), its heartbeat's identity."""
        sent = order[1]
        n = self._node(to, self.nodes[to].inc, t)
        if n is None:
            return
        bit = 1 << self.servers.index(to)
        keeps = sender in n.live.down and self.servers.index(to) < self.servers.index(sender)
        if n.live.verdict is None:  # would a mark of `to` in `offline` make it give way?
            gives_way = (n.heard_me.get(sender, False) or n.live.settled(t)) and not keeps
            self.rx[(to, sender)].append((t, sent, gives_way))
        if offline & bit and keeps:  # both resolved the other down: `to` keeps running
            n.kept[sender] = n.downs[sender]
        elif not offline & bit:
            n.kept.pop(sender, None)
        n.heard_me[sender] = bool(heard & bit)
        if path in LAN:
            n.reports[sender] = holds
            if holds:
                n.owner = sender
            elif n.owner == sender:
                n.owner = None
        self._after(n, t, n.live.heartbeat(t, sender, path, heard, offline, order))

    def _on_wake(self, t: float, s: str, inc: int) -> None:
        n = self._node(s, inc, t)
        if n is not None and abs(t - n.wake_at) < EPS:
            n.wake_at = INF
            self._after(n, t, n.live.tick(t))

    def _on_probed(self, t: float, s: str, inc: int, results: dict[str, bool],
                   left: dict[str, float] | None) -> None:
        n = self._node(s, inc, t, ("probed", s, inc, results, left))
        if n is not None:
            self._after(n, t, n.live.resolved(t, results, left))
            n.probed = None

    def _on_background(self, t: float, s: str, inc: int, r: ResolverSpec) -> None:
        """A background probe sent now: its answer after ``ANSWER``, or no answer after its
        budget; the next one a period after this send, and never before this one ends."""
        n = self._node(s, inc, t)
        ok = self.world.reach(s, r.type, t)
        if r.type == "witness":  # a hung node sends nothing; a renewal may be refused
            ok = n is not None and ok and self.arbiter.renew(
                s, n.live.online(), n.live.partition.lease, t).granted
        took = ANSWER if ok else r.budget
        if self.nodes[s].inc == inc and self.nodes[s].state in ("running", "stopping"):
            self._push(t + max(took, BACKGROUND), OTHER, ("background", s, inc, r))
        if n is not None:
            self._push(t + took, OTHER, ("probe_result", s, inc, r, ok, t))

    def _on_probe_result(self, t: float, s: str, inc: int, r: ResolverSpec, ok: bool,
                         sent: float) -> None:
        n = self._node(s, inc, t, ("probe_result", s, inc, r, ok, sent))
        if n is not None:
            alert = n.live.background(r.name, ok, sent)
            if alert:
                self.log(t, s, alert)

    def _on_activated(self, t: float, s: str, inc: int) -> None:
        n = self._node(s, inc, t, ("activated", s, inc))
        if n is not None and n.activating:
            n.activating, n.owner = False, s
            self._set_holds(n, True, t)

    def _on_released(self, t: float, s: str, inc: int) -> None:
        n = self._node(s, inc, t, ("released", s, inc))
        if n is not None:
            n.state = "stopped"
            self._set_holds(n, False, t)
            self.log(t, s, "released G; the cluster service ends")

    def _on_consider(self, t: float, s: str, inc: int) -> None:
        n = self._node(s, inc, t, ("consider", s, inc))
        if n is not None:
            self._consider(n, t)

    def _on_check(self, t: float) -> None:
        pass  # run() checks after every event

    # --- a node's decisions -------------------------------------------------------------------

    def _after(self, n: Node, t: float, step: Step) -> None:
        for d in step.decisions:
            self.log(t, n.name, d.reason)
            if d.kind == "server_down":
                n.reports.pop(d.server, None)
        for v in step.verdicts:
            self._verdict(n, t, v)
        if step.probe:
            specs = [r for r in self.specs if r.name in step.probe]
            left: dict[str, float] = {}
            results = {r.name: self._probe(n, r, t, left) for r in specs}
            wait = max([ANSWER] + [r.budget for r in specs if not results[r.name]])
            n.probed = self._snapshot(t, specs)
            self.log(t, n.name, f"probes {', '.join(step.probe)}: {results}")
            self._push(t + wait, OTHER, ("probed", n.name, n.inc, results,
                                         left if any(r.type == "witness" for r in specs)
                                         else None))
        self._consider(n, t)
        n.live.holding = n.holds or n.activating
        d = n.live.next_deadline(t) if self.cfg.wake else None
        if n.wake_at < t:
            n.wake_at = INF  # that wake-up was lost in a hang
        if d is not None and max(d, t) + SLACK < n.wake_at - EPS:
            n.wake_at = max(d, t) + SLACK
            self._push(n.wake_at, OTHER, ("wake", n.name, n.inc))

    def _probe(self, n: Node, r: ResolverSpec, t: float, left: dict[str, float]) -> bool:
        """A probe at a loss: the world's reach, and with a witness its grant of the claim
        (what the grant says of the lost servers' proofs goes into ``left``)."""
        ok = self.world.reach(n.name, r.type, t)
        if r.type == "witness" and ok:
            answer = self.arbiter.claim(n.name, n.live.partition.claiming,
                                        n.live.partition.lease, t)
            ok = answer.granted
            left.update(answer.left)
        return ok

    def _snapshot(self, t: float, specs: list[ResolverSpec]) -> dict[str, tuple[int, bool, bool]]:
        """Each server's incarnation, whether it runs (hung, only if its hang ends before it
        would fence itself or be reset: it goes on as it was), whether it reaches every target
        probed."""
        return {s: (m.inc, m.state in ("running", "stopping") and self._goes_on(m, t),
                    all(self.world.reach(s, r.type, t) for r in specs))
                for s, m in self.nodes.items()}

    def _goes_on(self, n: Node, t: float) -> bool:
        if not self.world.hung(n.name, t):
            return True
        return n.last_round is not None and \
            self.world.hang_end(n.name, t) - n.last_round <= self.cfg.timeout

    def _verdict(self, n: Node, t: float, v: Verdict) -> None:
        self.verdicts.append((t, n.name, v))
        self.log(t, n.name, f"verdict {v.kind}: {v.reason}")
        if v.kind != "down":
            n.state = "stopping"
            self._push(t + STOP, OTHER, ("released", n.name, n.inc))
            return
        world = n.probed or self._snapshot(t, [])
        for s in v.servers:
            n.downs[s] = Down(v, t, *world[s])

    def _consider(self, n: Node, t: float) -> None:
        live = n.live
        up = live.group_online(t)
        if not up or up[0] != n.name:
            n.master_since = None
        elif n.master_since is None:
            n.master_since = t
            self._push(t + SETTLE, OTHER, ("consider", n.name, n.inc))
        if n.state != "running" or n.holds or n.activating or live.verdict or live.unheard():
            return
        if n.master_since is None or (len(up) > 1 and t - n.master_since < SETTLE - EPS):
            return
        if n.owner in up or any(s not in n.reports for s in up[1:]):
            return
        if any(n.reports.get(s) for s in up[1:]):  # as the coordinator: running elsewhere
            return
        n.activating, n.act_id = True, n.act_id + 1
        n.basis = {s: n.downs[s] for s in live.down if s in n.downs}
        self.log(t, n.name, f"activates G: first of {up}, owner {n.owner} not among them")
        self._push(t + ACTIVATE, OTHER, ("activated", n.name, n.inc))

    def _set_holds(self, n: Node, holds: bool, t: float) -> None:
        if n.holds != holds:
            n.holds = holds
            self.holdings.append((t, n.name, holds))
            self.log(t, n.name, "holds G" if holds else "holds G no more")

    # --- the invariant ------------------------------------------------------------------------

    def check(self, t: float) -> None:
        """No two active holders of G, except where :meth:`classify` finds an allowing rule."""
        act = [n for n in self.nodes.values() if self.active(n, t)]
        for i, a in enumerate(act):
            for b in act[i + 1:]:
                key = (a.name, a.inc, a.act_id, b.name, b.inc, b.act_id)
                if key in self.episodes:
                    continue
                found = self.classify(a, b, t) or self.classify(b, a, t)
                if found is None:
                    raise Unsafe(f"G active on {a.name} and {b.name} at t={t:.3f}, allowed by "
                                 f"no rule\n{self.story()}")
                self.episodes[key] = found[0]
                self.allowed.append((found[0], t, a.name, b.name, found[1]))

    def classify(self, x: Node, y: Node, t: float) -> tuple[str, str] | None:
        """Which rule lets ``x`` go on while ``y`` holds G, from the down verdict about ``y`` in
        force in ``x`` (also when ``x`` heard ``y`` again but keeps running because both had
        resolved the other down; else, if ``x`` heard ``y`` since, the one it activated on):

        (a) made with no resolver used by ``x`` (the seed: every server fails over), about a
            ``y`` that was running, not hung (a hung server must fence itself when it resumes);
        (b) every target ``x`` probed answered, ``y`` was alive and reached them too at probe
            time, and no heartbeat ``x`` sent after the verdict reached ``y`` early enough for
            ``y`` to give way (``STOP`` before now; not counting those the rule lets ``y`` run
            through: ``y`` had also resolved ``x`` down and has the higher priority, or ``y`` had
            just started and ``x`` had not heard it): nothing could tell the two sides apart;
        (c) a ping resolver failing before the loss was ignored ("already failing"); also
            without a verdict: ``x`` holds G with no proof from ``y`` any more and no resolver
            counting against ``y``, its ping target having failed independently of ``y``'s
            loss (the same rule, as "Holding needs proof" applies it);
        (d) ``y`` uses no resolver while ``x`` does (docs/network-partition.md, case 4: cut
            off, ``y`` goes on running its groups), and was running when ``x`` decided."""
        rec = x.downs.get(y.name) if y.name in x.live.down else x.kept.get(y.name)  # in force
        if rec is None and x.act_id and y.name in x.basis:  # heard again since it activated
            rec = x.basis[y.name] if x.basis[y.name].peer_inc == y.inc else None
        if rec is None:
            return self._holding_on_failing(x, y, t)
        why = rec.verdict.reason
        if NO_RESOLVER in why and rec.peer_alive:
            return "a", why
        if FAILING in why:
            return "c", why
        if y.name == self.cfg.nonuser and rec.peer_alive:
            return "d", why
        joined = any(sent >= rec.at and r + STOP <= t + EPS and gives_way
                     for r, sent, gives_way in self.rx[(y.name, x.name)])
        if rec.peer_alive and rec.peer_reach and not joined:
            return "b", why
        return None

    def _holding_on_failing(self, x: Node, y: Node, t: float) -> tuple[str, str] | None:
        """Class (c) without a verdict (see :meth:`classify`)."""
        live = x.live
        rx = live.membership.last_rxs(y.name)
        proved = live.proved(y.name)
        if (proved is not None and proved + live.partition.lease > t) or \
                live.partition.reached_until(rx)[1] is not None:
            return None
        failing = [r.name for r in live.partition.mine()
                   if live.partition.already_failing(r.name, rx)]
        if not failing:
            return None
        return "c", (f"{x.name} holds G with no proof from {y.name}: {', '.join(failing)} "
                     f"already failing")

    def story(self, last: int = 30) -> str:
        return "\n".join(f"  {t:8.3f} {who:>8}  {text}" for t, who, text in self.timeline[-last:])

    # --- queries for tests --------------------------------------------------------------------

    def verdicts_of(self, s: str, kind: str | None = None) -> list[tuple[float, Verdict]]:
        return [(t, v) for t, w, v in self.verdicts if w == s and kind in (None, v.kind)]

    def changes(self, s: str, holds: bool) -> list[float]:
        return [t for t, w, h in self.holdings if w == s and h == holds]
