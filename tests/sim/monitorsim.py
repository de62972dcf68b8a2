"""Monitor resources and their recovery on top of the simulated cluster of :mod:`groupsim`.

Every server runs one :class:`~clp.core.monitor_recovery.MonitorTracker` per monitor, fed one
check result per tick while the monitor runs, and carries its recovery steps out as the daemon
does (:mod:`clp.clusterd.monitors`, :mod:`clp.clusterd.monitor_actions`):

- timing: ``always`` monitors run from the server's start until it leaves; ``active`` ones while
  their resource is Online on that server (a restart or a move stops them first);
- the situation handed to the tracker is the daemon's: the target is active here (its group
  Online or Online Failure, or the resource Online or Online Failure; LocalServer always), busy
  (its group's runner busy or in a pending state, or the master here has a command in flight for
  it), another online server of the group's policy for a failover, another server online;
- one step at a time per monitor, ``step_done`` when its operation is over: a recovery script
  takes a tick; ``restart`` is ``GroupRunner.restart_resource`` (resource) or ``restart`` of each
  group in turn (a group, All Groups), done when the runner is idle again, ok when Online;
  ``failover`` is ``request_failover`` of each group that another server can take, done when the
  group has stopped here (ok: Offline); ``stop_group`` is an operator-like stop request to the
  master as this server sees it (done at its answer); the final actions that stop the cluster
  service or the machine crash the server;
- faults: a monitor's checks fail on a server from a tick, persistently or with a pattern,
  until a tick (healing) or until a reactivation or failover of its target there (a process that
  died).

Recorded: every line the trackers said (:attr:`MonitorSim.lines`), every step started
(:attr:`MonitorSim.steps`), the groups a ``stop_group`` final action stopped. Checked at every
tick besides :meth:`GroupSim.check`: the steps of a monitor on a server in one counter epoch (from
its start, or the last reset of its counters) never exceed its chain's length, and the counters
are reset only after ``reset_after`` ticks of Normal results in a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from clp.config.model import GroupConfig
from clp.core.coordinator import ServerReport
from clp.core.group_states import GROUP_BUSY_STATES, GROUP_STOPPED_STATES, GroupState
from clp.core.group_states import ResourceState as R
from clp.core.group_types import OK
from clp.core.monitor_recovery import (
    EV_COUNTERS_RESET,
    EV_RECOVERY_OVER,
    FINAL_ACTION_EVENTS,
    MONITORING_STATES,
    Decision,
    MonitorTracker,
    Outcome,
    Policy,
    Situation,
    Step,
)
from tests.sim.groupsim import GroupSim, Node

G = GroupState
# final actions after which this server leaves the cluster (in the sim: it crashes)
LEAVES = ("stop_cluster_service", "stop_cluster_service_and_shutdown",
          "stop_cluster_service_and_reboot", "panic", "keepalive_reset", "keepalive_panic",
          "bmc_reset", "bmc_power_off", "bmc_power_cycle", "bmc_nmi")
FAILOVER_WAIT = 1800  # ticks, as the daemon's FAILOVER_WAIT seconds


@dataclass(frozen=True)
class MonitorSpec:
    policy: Policy
    timing: str = "always"  # always | active
    resource: str | None = None  # active: monitored while this resource is Online here

    @property
    def name(self) -> str:
        return self.policy.name

    def chain(self) -> int:
        """The most steps one counter epoch can hold."""
        p = self.policy
        local = p.kind == "local_server"
        return p.script_count + (0 if local else p.reactivation_threshold + p.failover_threshold) \
            + 1


@dataclass(frozen=True)
class Fault:
    server: str
    monitor: str
    start: int
    end: int | None = None  # healed from this tick (None: never by itself)
    pattern: tuple[bool, ...] = (True,)  # cycled from start: True, the check fails
    outcome: Outcome = Outcome.FAILED
    curable: bool = False  # a reactivation or failover of the target on that server ends it


@dataclass
class StepRun:
    """A step being carried out (the daemon's ``StepRunner.run`` task)."""

    step: Step
    started: int
    phase: str  # script | restart | failover
    script_until: int = 0
    todo: list[str] = field(default_factory=list)  # groups still to restart, in turn
    waiting: list[str] = field(default_factory=list)  # groups restarting / failing over
    results: list[tuple[bool, str]] = field(default_factory=list)


@dataclass
class Watch:
    """One monitor on one server (the daemon's ``Running``)."""

    spec: MonitorSpec
    tracker: MonitorTracker
    incarnation: int
    monitoring: bool = False
    run: StepRun | None = None
    epoch_steps: int = 0  # steps started since the start or the last reset of the counters
    normal_from: int | None = None  # first tick of the current run of Normal results
    final_at: int | None = None  # when the final action was counted (this epoch)
    final_done_at: int | None = None  # when its step ended (or it was counted without a step)
    over_at: list[int] = field(default_factory=list)  # ticks of EV_RECOVERY_OVER
    last_open: bool = False  # the last check's situation let recovery go on


@dataclass(frozen=True)
class Said:
    t: int
    server: str
    monitor: str
    event: int | None
    text: str


@dataclass(frozen=True)
class Started:
    t: int
    server: str
    monitor: str
    action: str
    target: str
    incarnation: int


class MonitorSim(GroupSim):
    def __init__(self, servers: list[str], groups: list[GroupConfig],
                 monitors: list[MonitorSpec], sync_wait: float = 10, detect: int = 3,
                 seed: int = 0, settle: float = 3, restrain_alone: bool = False) -> None:
        super().__init__(servers, groups, sync_wait, detect, seed, settle)
        self.monitors = monitors
        self.restrain_alone = restrain_alone
        self.faults: list[Fault] = []
        self.cured: set[Fault] = set()
        self.watches: dict[str, dict[str, Watch]] = {}
        self.incarnations: dict[str, int] = {}
        self.lines: list[Said] = []
        self.steps: list[Started] = []
        self.ended: list[tuple[int, str, str, str, bool, str]] = []  # step_done calls
        self.stopped_by_monitor: set[str] = set()  # groups a stop_group final action stopped
        self.group_of = {rc.name: g.name for g in groups for rc in g.resources}

    # --- servers --------------------------------------------------------------------------

    def boot(self, server: str) -> None:
        was = server in self.nodes
        super().boot(server)
        if server in self.nodes and not was:
            n = self.incarnations[server] = self.incarnations.get(server, 0) + 1
            self.watches[server] = {m.name: Watch(m, MonitorTracker(m.policy), n)
                                    for m in self.monitors}

    def crash(self, server: str) -> None:
        super().crash(server)
        self.watches.pop(server, None)

    def _report(self, node: Node) -> ServerReport:
        rep = super()._report(node)
        reasons = {g: r.failover_reason for g, r in node.runners.items()
                   if g in rep.failover and r.failover_reason}
        return replace(rep, failover_reasons=reasons)

    # --- faults ---------------------------------------------------------------------------

    def outcome(self, server: str, monitor: str) -> Outcome:
        for f in self.faults:
            if f.server != server or f.monitor != monitor or f in self.cured:
                continue
            if f.start <= self.t and (f.end is None or self.t < f.end) \
                    and f.pattern[(self.t - f.start) % len(f.pattern)]:
                return f.outcome
        return Outcome.NORMAL

    def heal_all(self) -> None:
        self.faults = [replace(f, end=min(self.t, f.end if f.end is not None else self.t))
                       for f in self.faults]

    def _cure(self, server: str, monitor: str) -> None:
        self.cured |= {f for f in self.faults if f.curable and f.server == server
                       and f.monitor == monitor and f.start <= self.t}

    # --- what the daemon's managers answer ------------------------------------------------

    def active_groups(self, node: Node) -> list[str]:
        return [g for g, r in node.runners.items() if r.state in (G.ONLINE, G.ONLINE_FAILURE)]

    def groups_of(self, node: Node, kind: str, target: str) -> list[str]:
        if kind == "resource":
            return [self.group_of[target]]
        if kind == "group":
            return [target]
        return self.active_groups(node)

    def resource_state(self, node: Node, resource: str) -> R:
        return node.runners[self.group_of[resource]].resource_states()[resource]

    def group_busy(self, node: Node, group: str) -> bool:
        r = node.runners[group]
        return r.busy or r.state in GROUP_BUSY_STATES or group in node.coord.pending

    def others_for(self, node: Node, group: str) -> list[str]:
        spec = next(g for g in self.groups if g.name == group)
        return [s for s in spec.servers if s != node.name and s in self.online(node.name)]

    def situation(self, node: Node, w: Watch) -> Situation:
        p = w.spec.policy
        groups = self.groups_of(node, p.kind, p.target)
        if p.kind == "local_server":
            active = True
        elif p.kind == "resource":
            active = self.resource_state(node, p.target) in (R.ONLINE, R.ONLINE_FAILURE)
        else:
            active = bool(set(groups) & set(self.active_groups(node)))
        busy = p.kind != "local_server" and any(self.group_busy(node, g) for g in groups)
        return Situation(target_active=active, target_busy=busy, recovery_disabled=False,
                         failover_possible=any(self.others_for(node, g) for g in groups),
                         others_alive=len(self.online(node.name)) > 1,
                         restrain_alone=self.restrain_alone)

    def request_from(self, server: str, op: str, group: str) -> tuple[bool, str]:
        """An operator-like request from ``server`` to the master it sees (group_ops.request)."""
        master = self.nodes[server].coord.master_of(self.online(server))
        node = self.nodes.get(str(master))
        if node is None:
            return False, f"The master server {master} cannot be reached."
        if node.coord.master_of(self.online(node.name)) != node.name:
            return False, f"{node.name} is not the master server."
        seen = {s: r for s, r in self.reports.items() if s != node.name}
        seen[node.name] = self._report(node)
        node.coord.refresh(seen)
        a = node.coord.request(self.t, op, group)
        return a.ok, a.message

    # --- the monitor phase of a tick ------------------------------------------------------

    def after_steps(self) -> None:
        for name in [s for s in self.servers if s in self.nodes]:
            node = self.nodes.get(name)
            if node is None:
                continue
            for w in list(self.watches[name].values()):
                if w.run is not None:
                    self._progress(node, w)
                if name not in self.nodes:
                    break
            if name not in self.nodes:
                continue
            for w in list(self.watches[name].values()):
                self._reconcile(node)
                if name not in self.nodes:
                    break
                if w.monitoring:
                    self._check(node, w)
                if name not in self.nodes:
                    break

    def _reconcile(self, node: Node) -> None:
        for w in self.watches[node.name].values():
            why = None
            if w.spec.timing == "active" and w.spec.resource is not None and \
                    self.resource_state(node, w.spec.resource) != R.ONLINE:
                why = f"{w.spec.resource} is not Online on {node.name}"
            if why is None and not w.monitoring:
                w.monitoring = True
                self._decided(node, w, w.tracker.start(self.t))
            elif why is not None and w.monitoring:
                w.monitoring, w.normal_from = False, None
                self._decided(node, w, w.tracker.stop(self.t, why))

    def _check(self, node: Node, w: Watch) -> None:
        outcome = self.outcome(node.name, w.spec.name)
        if w.tracker.state not in MONITORING_STATES:
            return
        if outcome is Outcome.NORMAL:
            if w.normal_from is None:
                w.normal_from = self.t
        else:
            w.normal_from = None
        s = self.situation(node, w)
        w.last_open = s.target_active and not s.target_busy and w.tracker.step is None
        reason = "ok" if outcome is Outcome.NORMAL else f"injected {outcome.value}"
        self._decided(node, w, w.tracker.on_check(self.t, outcome, reason, s))

    def _decided(self, node: Node, w: Watch, d: Decision) -> None:
        tracker = w.tracker
        for line in d.lines:
            self.lines.append(Said(self.t, node.name, w.spec.name, line.event_id, line.text))
            if line.event_id == EV_COUNTERS_RESET:
                reset = w.spec.policy.reset_after
                assert reset > 0 and w.normal_from is not None \
                    and self.t - w.normal_from >= reset, (
                        f"t={self.t}: counters of {w.spec.name} on {node.name} reset, Normal "
                        f"since {w.normal_from} (reset_after {reset:g})")
                w.epoch_steps, w.final_at, w.final_done_at = 0, None, None
            elif line.event_id == EV_RECOVERY_OVER:
                w.over_at.append(self.t)
        if tracker.counts["final"] and w.final_at is None:
            w.final_at = self.t
            if d.step is None:
                w.final_done_at = self.t
        if d.step is None:
            return
        w.epoch_steps += 1
        assert w.epoch_steps <= w.spec.chain(), (
            f"t={self.t}: {w.spec.name} on {node.name}: step {w.epoch_steps} ({d.step.action}) "
            f"in one counter epoch, its chain has {w.spec.chain()}")
        self.steps.append(Started(self.t, node.name, w.spec.name, d.step.action, d.step.target,
                                  w.incarnation))
        self._carry_out(node, w, d.step)

    # --- carrying steps out (monitor_actions.StepRunner) ----------------------------------

    def _carry_out(self, node: Node, w: Watch, step: Step) -> None:
        w.run = StepRun(step, self.t, "script", self.t + 1)
        if step.script is None:
            self._action(node, w)

    def _action(self, node: Node, w: Watch) -> None:
        run = w.run
        assert run is not None
        step = run.step
        if step.action == "script":
            return self._done(node, w, True, "")
        if step.action == "restart":
            run.phase = "restart"
            if step.kind == "resource":
                group = self.group_of[step.target]
                out = node.runners[group].restart_resource(step.target)
                if out.code != OK:
                    return self._done(node, w, False, out.lines[0] if out.lines else "refused")
                self._apply(node, group, out)
                run.waiting = [group]
            else:
                run.todo = self.groups_of(node, step.kind, step.target)
                self._next_restart(node, run)
            return self._progress(node, w)
        if step.action == "failover":
            run.phase = "failover"
            groups = [g for g in self.groups_of(node, step.kind, step.target)
                      if self.others_for(node, g)]
            if not groups:
                return self._done(node, w, False, "no other server can take the group")
            for g in groups:
                out = node.runners[g].request_failover(step.reason)
                if out.code != OK:
                    run.results.append((False, out.lines[0] if out.lines else "refused"))
                else:
                    run.waiting.append(g)
            return self._progress(node, w)
        text = FINAL_ACTION_EVENTS[step.action][1].format(target=step.target, monitor=w.spec.name)
        self.lines.append(Said(self.t, node.name, w.spec.name,
                               FINAL_ACTION_EVENTS[step.action][0], text))
        self.actions.append((self.t, node.name, f"monitor:{step.action}", step.reason))
        if step.action == "stop_group":
            refused = []
            for g in self.groups_of(node, step.kind, step.target):
                ok, why = self.request_from(node.name, "stop", g)
                if ok:
                    self.stopped_by_monitor.add(g)
                else:
                    refused.append(why)
            return self._done(node, w, not refused, "; ".join(refused))
        assert step.action in LEAVES, step.action
        self.crash(node.name)
        return None

    def _next_restart(self, node: Node, run: StepRun) -> None:
        while run.todo:
            g = run.todo.pop(0)
            out = node.runners[g].restart()
            if out.code != OK:
                run.results.append((False, out.lines[0] if out.lines else "refused"))
                continue
            self._apply(node, g, out)
            run.waiting = [g]
            return

    def _progress(self, node: Node, w: Watch) -> None:
        run = w.run
        assert run is not None
        if run.phase == "script":
            if self.t >= run.script_until:
                self._action(node, w)
            return
        if run.phase == "restart":
            while run.waiting and not node.runners[run.waiting[0]].busy:
                g = run.waiting.pop(0)
                state = node.runners[g].state
                run.results.append((state == G.ONLINE, f"group {g} is {state.value}"))
                if run.step.kind != "resource":
                    self._next_restart(node, run)
            if not run.waiting and not run.todo:
                self._cure(node.name, w.spec.name)
                self._done(node, w, *_all(run.results))
            return
        for g in list(run.waiting):
            r = node.runners[g]
            if r.state in GROUP_STOPPED_STATES and not r.busy:
                run.waiting.remove(g)
                run.results.append((r.state == G.OFFLINE, f"group {g} is {r.state.value} on "
                                                          f"{node.name}"))
            elif self.t - run.started >= FAILOVER_WAIT:
                run.waiting.remove(g)
                run.results.append((False, f"group {g} did not leave {node.name}"))
        if not run.waiting:
            self._cure(node.name, w.spec.name)
            self._done(node, w, *_all(run.results))

    def _done(self, node: Node, w: Watch, ok: bool, why: str) -> None:
        run, w.run = w.run, None
        assert run is not None
        self.ended.append((self.t, node.name, w.spec.name, run.step.action, ok, why))
        if run.step.action not in ("script", "restart", "failover"):
            w.final_done_at = self.t
        self._decided(node, w, w.tracker.step_done(self.t, ok, why))

    # --- queries --------------------------------------------------------------------------

    def recovering(self) -> list[tuple[str, str]]:
        return [(s, m) for s, ws in self.watches.items() for m, w in ws.items()
                if w.run is not None]


def _all(results: list[tuple[bool, str]]) -> tuple[bool, str]:
    failed = [why for ok, why in results if not ok]
    return not failed, "; ".join(failed) if failed else "; ".join(w for _, w in results)
