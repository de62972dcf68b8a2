"""A deterministic simulated cluster running the group core: one Coordinator and one GroupRunner
per group on every server, a simulated clock, delayed reports and commands, crashes and restarts.

The model (one tick = one second, the heartbeat interval):

- A server that is up reports its group states every tick; the others see that report one tick
  later. Its own report it sees at once.
- Membership is perfect but slow: a server that crashed is still Online for the others during
  ``detect`` ticks (its last report stands), then Offline and its report is discarded. A restart
  needs the server to have been seen Offline first, and starts with every group Offline (its
  resources died with it: power-off semantics).
- The master's commands reach their target ``delay`` ticks later (1 or 2, from a seeded random);
  the target refuses a command whose sender it does not see as master.
- A resource start or stop takes one tick; a start fails while its resource is in ``fail`` for
  that server. A final action that stops the cluster service (or powers off) crashes the server.

The simulator records every command (with its send time) and every alert; :meth:`GroupSim.check`
holds the invariants and is called after each tick.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from clp.config.model import GroupConfig, Recovery, ResourceConfig
from clp.core.coordinator import Command, Coordinator, ServerReport
from clp.core.group_runner import CALLER_ACTIONS, GroupRunner, Outcome
from clp.core.group_states import GROUP_FREE_STATES, GroupState

G = GroupState


def make_group(name: str, servers: list[str], start: str = "auto", failback: str = "manual",
               exclusive: str = "off", resources: list[dict[str, Any]] | None = None
               ) -> GroupConfig:
    rcs = []
    for r in resources or [{"name": f"{name}-r1"}]:
        act = r.get("activation", {})
        deact = r.get("deactivation", {})
        rcs.append(ResourceConfig(
            r["name"], "dummy", {}, tuple(r.get("depends", ())),
            Recovery(act.get("retry", 0), act.get("failover_threshold", 1),
                     act.get("final_action", "none")),
            Recovery(deact.get("retry", 0), 0,
                     deact.get("final_action", "stop_cluster_service_and_shutdown"))))
    return GroupConfig(name, tuple(servers), start, failback, exclusive, tuple(rcs))


@dataclass
class Node:
    name: str
    coord: Coordinator
    runners: dict[str, GroupRunner]
    busy: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # group -> (t, op, rsc)


@dataclass
class Record:
    t: int
    sender: str
    cmd: Command


class GroupSim:
    def __init__(self, servers: list[str], groups: list[GroupConfig], sync_wait: float = 10,
                 detect: int = 3, seed: int = 0, settle: float = 3) -> None:
        self.servers = servers
        self.groups = groups
        self.sync_wait, self.detect, self.settle = sync_wait, detect, settle
        self.rng = random.Random(seed)
        self.t = 0
        self.nodes: dict[str, Node] = {}
        self.down_at: dict[str, int] = {}  # crashed servers and when
        self.reports: dict[str, ServerReport] = {}  # as last sent (seen next tick by others)
        self.inflight: list[tuple[int, str, Command]] = []  # (deliver at, sender, command)
        self.fail: set[tuple[str, str]] = set()  # (server, resource) whose start fails
        self.fail_stop: set[tuple[str, str]] = set()  # (server, resource) whose stop fails
        self.log: list[Record] = []
        self.alerts: list[tuple[int, str]] = []
        self.actions: list[tuple[int, str, str, str]] = []  # (t, server, action, reason)

    # --- events ---------------------------------------------------------------------------

    def boot(self, server: str) -> None:
        if server in self.nodes:
            return
        if server in self.down_at and self.t - self.down_at[server] <= self.detect:
            return  # not yet seen Offline: a restart would be a new incarnation unseen
        self.down_at.pop(server, None)
        coord = Coordinator(server, self.servers, self.groups, self.sync_wait, self.t,
                            resend=10, settle=self.settle)
        self.nodes[server] = Node(server, coord, {g.name: GroupRunner(g) for g in self.groups})
        self.reports.pop(server, None)

    def crash(self, server: str) -> None:
        if server in self.nodes:
            del self.nodes[server]
            self.down_at[server] = self.t

    def request(self, op: str, group: str, server: str | None = None) -> tuple[bool, str]:
        """An operator request, sent to the master as the first live server sees it."""
        if not self.nodes:
            return False, "no server"
        first = self.nodes[sorted(self.nodes, key=self.servers.index)[0]]
        master = first.coord.master_of(self.online(first.name))
        if master not in self.nodes:
            return False, "master down"
        a = self.nodes[master].coord.request(self.t, op, group, server)
        return a.ok, a.message

    # --- the clock ------------------------------------------------------------------------

    def online(self, viewer: str) -> list[str]:
        return [s for s in self.servers if s in self.nodes
                or (s in self.down_at and self.t - self.down_at[s] <= self.detect)]

    def tick(self) -> None:
        self.t += 1
        for at, sender, cmd in [x for x in self.inflight if x[0] <= self.t]:
            self.inflight.remove((at, sender, cmd))
            self._deliver(sender, cmd)
        for node in list(self.nodes.values()):
            self._finish_steps(node)
        self.after_steps()
        sent = dict(self.reports)
        for name in list(self.nodes):
            node = self.nodes.get(name)
            if node is None:
                continue
            seen = {s: r for s, r in sent.items() if s != name}
            seen[name] = self._report(node)
            for cmd in node.coord.decide(self.t, self.online(name), seen):
                self.log.append(Record(self.t, name, cmd))
                self.inflight.append((self.t + self.rng.choice((1, 2)), name, cmd))
            self.alerts.extend((self.t, a) for a in node.coord.alerts)
            node.coord.alerts.clear()
        stale = {s: r for s, r in self.reports.items() if s in self.online(s)}
        self.reports = stale | {n: self._report(node) for n, node in self.nodes.items()}
        self.check()

    def after_steps(self) -> None:
        """What else runs on the servers in a tick, once its resource steps are done and before
        the coordinators decide (a subclass: the monitors, :mod:`tests.sim.monitorsim`)."""

    def run_until(self, t: int) -> None:
        while self.t < t:
            self.tick()

    def _report(self, node: Node) -> ServerReport:
        c = node.coord
        return ServerReport(
            {g: r.state for g, r in node.runners.items()},
            frozenset(g for g, r in node.runners.items()
                      if r.wants_failover and r.state in (G.ONLINE, G.ONLINE_FAILURE)),
            c.export_intents() if c.master == node.name else None)

    def _deliver(self, sender: str, cmd: Command) -> None:
        node = self.nodes.get(cmd.server)
        if node is None:
            return
        if node.coord.master_of(self.online(node.name)) != sender:
            return  # refused: only the master commands
        runner = node.runners[cmd.group]
        if runner.busy:
            return  # the master re-sends
        out = runner.activate(cmd.event) if cmd.kind == "activate" else runner.deactivate(cmd.event)
        self._apply(node, cmd.group, out)

    def _apply(self, node: Node, group: str, out: Outcome) -> None:
        if out.step is not None:
            node.busy[group] = (self.t + 1, out.step.op, out.step.resource)
        if out.action is not None:
            self.actions.append((self.t, node.name, out.action.action, out.action.reason))
            if out.action.action in CALLER_ACTIONS:
                self.crash(node.name)

    def _finish_steps(self, node: Node) -> None:
        for group, (at, op, rsc) in list(node.busy.items()):
            if at > self.t or node.name not in self.nodes:
                continue
            del node.busy[group]
            ok = (node.name, rsc) not in (self.fail if op == "start" else self.fail_stop)
            out = node.runners[group].on_result(rsc, ok, "done" if ok else "injected failure")
            self._apply(node, group, out)

    # --- invariants -----------------------------------------------------------------------

    def active_on(self, group: str) -> list[str]:
        return [n for n, node in self.nodes.items()
                if node.runners[group].state not in GROUP_FREE_STATES]

    def online_on(self, group: str) -> list[str]:
        return [n for n, node in self.nodes.items() if node.runners[group].state == G.ONLINE]

    def check(self) -> None:
        for g in self.groups:
            active = self.active_on(g.name)
            assert len(active) <= 1, f"t={self.t}: {g.name} active on {active}"
        for rec in self.log:
            assert rec.cmd.reason and "\n" not in rec.cmd.reason
            if rec.t == self.t and rec.cmd.kind == "activate" and rec.cmd.event == "FAILOVER":
                healthy = self.online_on(rec.cmd.group)
                assert not healthy, f"t={self.t}: failover of {rec.cmd.group} while Online " \
                                    f"on {healthy}"
