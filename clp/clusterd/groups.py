"""The group manager of ``clusterpro``: runs this server's groups, feeds and obeys the coordinator.

It owns one :class:`~clp.core.group_runner.GroupRunner` per group whose policy names this server
and carries out their steps with the :class:`~clp.resources.runner.ResourceRunner` (threads,
never the event loop). :meth:`tick` gives the :class:`~clp.core.coordinator.Coordinator` the
membership's Online set and every server's last report and, when this server is the master,
sends the coordinator's commands (to itself directly). It runs when its inputs change (a peer's
report that differs from its last one, a state change of a group here, an operator request: see
:meth:`changed`), at once, so a planned move does not wait for a heartbeat round; and every
heartbeat interval as a backstop. This server's report goes to its online peers at once when
what it says changes, and otherwise at least every REPORT_REFRESH seconds (or interval).

Safety rules:

- A command is obeyed only from the server this server sees as master; anything else is logged
  and refused (the master re-sends).
- Until the probe at start has told which resources already run here, this server reports its
  groups Unknown, which stops the master from starting them anywhere. Groups whose resources are
  all active are re-adopted Online without running start scripts; partially active ones are
  Online Failure and left as they are for the operator (see :meth:`GroupRunner.adopt`).
- When this server's cluster service stops (``clpcl -t``, ``clpdown``, SIGTERM) it reports
  ``leaving``, so nothing is placed here, and deactivates its groups in reverse order first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from clp.clusterd.reboot_limit import RebootLimit
from clp.clusterd.report_check import Names, check_report
from clp.config import ClusterConfig
from clp.config.model import GroupConfig, ResourceConfig
from clp.core.coordinator import Command, Coordinator, ServerReport
from clp.core.group_runner import CALLER_ACTIONS, GroupRunner, Outcome, RecoveryAction
from clp.core.group_states import (
    GROUP_BUSY_STATES,
    GROUP_STOPPED_STATES,
    GroupState,
    ResourceState,
)
from clp.core.group_types import E_BAD_ARGS, E_NO_MASTER, E_STATE, OK
from clp.paths import InstallRoot
from clp.resources.base import Context
from clp.resources.runner import ResourceRunner, probe_state

log = logging.getLogger("clp.rc")

DEFAULT_TIMEOUT = 1800.0
REPORT_FRESH = 3  # report periods: a peer reachable by cluster RPC has reported within this many
REPORT_REFRESH = 1.0  # seconds: an unchanged report is sent again after this long (see tick)
# a group that asks to fail over is in one of these (activation gave up; a monitor asked)
FAILOVER_STATES = (GroupState.ONLINE, GroupState.ONLINE_FAILURE)
PROBE_TIMEOUT = 60.0


class Send(Protocol):
    """Cluster RPC to a peer (:meth:`clp.clusterd.peer.PeerClient.send`): its reply or None."""

    def __call__(self, server: str, op: str, args: dict[str, Any],
                 timeout: float = ...) -> Awaitable[dict[str, Any] | None]: ...


@dataclass
class PeerReport:
    incarnation: int
    report: ServerReport
    resources: dict[str, str]
    monitors: dict[str, str] = field(default_factory=dict)  # monitor -> state there
    received: float = field(default_factory=time.monotonic)


class GroupManager:
    def __init__(self, config: ClusterConfig, me: str, root: InstallRoot,
                 runner: ResourceRunner, send: Send, *, incarnation: int = 0,
                 settle: float = 0.0, now: float | None = None,
                 on_stop: Callable[[str], None] | None = None) -> None:
        self.config, self.me, self.root = config, me, root
        self.runner, self.send = runner, send
        self.incarnation = incarnation
        self.on_stop = on_stop or (lambda action: None)
        start = time.monotonic() if now is None else now
        self.coord = Coordinator(me, config.server_names, config.groups, config.sync_wait,
                                 start, resend=30.0, settle=settle)
        self.runners = {g.name: GroupRunner(g) for g in config.groups if me in g.servers}
        self.adopted = False
        self.leaving = False
        self.online: list[str] = [me]
        self.unheard: frozenset[str] = frozenset()  # servers never heard from since this start
        self.rejected: Counter[str] = Counter()  # invalid parts of peer reports, by part
        self._names = Names(config.server_names, [g.name for g in config.groups],
                            [rc.name for g in config.groups for rc in g.resources], (),
                            [mc.name for mc in config.monitors])
        self.monitor_states: Callable[[], dict[str, str]] = dict  # set by the service
        self.reboot_limit = RebootLimit(root.work_dir, config.reboot_limit.max_count)
        self.peers: dict[str, PeerReport] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._sending: set[str] = set()
        self._resend: set[str] = set()
        self.on_change: Callable[[], None] = self.report_now
        self.on_event: Callable[[], object] = self.tick_event  # the service adds its guards
        self.clock: Callable[[], float] = time.monotonic  # the clock of every tick's ``now``
        # a report goes out at every change; with nothing new, at most this often (it shows the
        # peers that this server answers cluster RPC, and repairs a report that was lost)
        self.report_every = max(config.heartbeat_interval, REPORT_REFRESH)
        self._reported = -math.inf
        self._intents_reported: dict[str, Any] | None = None  # the master's, as last reported
        self._event_due = False
        self._round = asyncio.Event()  # set (and replaced) after every decision round

    # --- membership and reports -----------------------------------------------------------

    def set_online(self, online: list[str], unheard: frozenset[str] = frozenset()) -> None:
        self.unheard = unheard
        for s in set(self.online) - set(online):
            if self.peers.pop(s, None) is not None:
                log.info("discarded the group report of %s: it left the cluster", s)
        self.online = [s for s in self.config.server_names if s in online]

    def on_report(self, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        """Keep a peer's report, its invalid parts dropped (see :mod:`report_check`).

        A report of an older incarnation than the last one kept (a late delivery from before a
        restart of the sender) is refused; once the sender has left the membership its record is
        gone, so a lower incarnation (after a reboot) is accepted again.
        """
        names = Names(self._names.servers, self._names.groups, self._names.resources,
                      [g.name for g in self.config.groups if sender in g.servers],
                      self._names.monitors)
        rep = check_report(args, names)
        for part, problem in rep.problems:
            self.rejected[f"report.{part}"] += 1
            log.warning("report from %s: %s: %s", sender, part, problem)
        old = self.peers.get(sender)
        if old is not None and rep.incarnation < old.incarnation:
            self.rejected["report.stale"] += 1
            log.warning("refused a stale report from %s: incarnation %d, already %d", sender,
                        rep.incarnation, old.incarnation)
            return {"ok": False, "code": E_STATE, "message": "stale incarnation"}
        report = ServerReport(rep.groups, rep.failover, rep.intents, rep.leaving,
                              rep.failover_reasons)
        self.peers[sender] = PeerReport(rep.incarnation, report, rep.resources, rep.monitors)
        if old is None or (old.report, old.resources, old.monitors) != (
                report, rep.resources, rep.monitors):
            self.changed()  # a decision input, or what clpstat shows of that server
        return {"ok": True, "code": OK, "message": ""}

    def _intents(self) -> dict[str, Any] | None:
        """The intent table this server reports: the coordinator's when it is the master."""
        return self.coord.export_intents() if self.coord.master == self.me else None

    def local_report(self) -> ServerReport:
        groups = {g: (r.state if self.adopted else GroupState.UNKNOWN)
                  for g, r in self.runners.items()}
        failover = {g: r.failover_reason for g, r in self.runners.items()
                    if r.wants_failover and r.state in FAILOVER_STATES}
        return ServerReport(groups, frozenset(failover), self._intents(), self.leaving,
                            {g: why for g, why in failover.items() if why})

    def holding(self) -> bool:
        """Whether some group of this server may have resources up (anything but Offline):
        network-partition resolution then needs proofs to go on (see "Holding needs proof" in
        clp.core.partition). Not before the groups found at start are adopted (their probes
        take moments): a server that starts with nothing running while its target is still
        down (a site powering up) must not stop for that; one that finds groups running needs
        its proofs as soon as adoption ends, the lease counting from the service's start."""
        return self.adopted and any(r.state is not GroupState.OFFLINE
                                    for r in self.runners.values())

    def local_resources(self) -> dict[str, str]:
        out = {}
        for r in self.runners.values():
            for name, st in r.resource_states().items():
                out[name] = (st if self.adopted else ResourceState.UNKNOWN).value
        return out

    def report_payload(self) -> dict[str, Any]:
        rep = self.local_report()
        return {"server": self.me, "incarnation": self.incarnation,
                "groups": {g: s.value for g, s in rep.groups.items()},
                "resources": self.local_resources(), "failover": sorted(rep.failover),
                "failover_reasons": dict(rep.failover_reasons),
                "monitors": self.monitor_states(),
                "leaving": rep.leaving, "intents": rep.intents}

    def peer_monitors(self) -> dict[str, dict[str, str]]:
        """The monitor states each online peer last reported."""
        return {s: p.monitors for s, p in self.peers.items() if s in self.online}

    def reports(self) -> dict[str, ServerReport]:
        out = {s: p.report for s, p in self.peers.items() if s in self.online}
        out[self.me] = self.local_report()
        return out

    # --- the tick -------------------------------------------------------------------------

    def changed(self) -> None:
        """An input of the decision changed: decide once the current callback is done (several
        changes in a row make one round)."""
        if not self._event_due:
            self._event_due = True
            asyncio.get_running_loop().call_soon(self._event)

    def _event(self) -> None:
        self._event_due = False
        self.on_event()

    def tick_event(self) -> list[Command]:
        """A decision round for an event; it reports only what it changed (see :meth:`tick`),
        never the periodic refresh."""
        return self.tick(self.clock(), report=False)

    async def next_round(self, timeout: float) -> None:
        """Wait until the next decision round is done, at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._round.wait(), timeout)

    def tick(self, now: float, report: bool = True) -> list[Command]:
        """One decision round; never blocks (sends and resource steps run as tasks)."""
        try:
            return self._decide(now, report)
        finally:
            self._round.set()  # whoever waits for an outcome looks again
            self._round = asyncio.Event()

    def _decide(self, now: float, report: bool) -> list[Command]:
        cmds = self.coord.decide(now, self.online, self.reports())
        for alert in self.coord.alerts:
            log.error(alert, extra={"alert": True})
        self.coord.alerts.clear()
        for cmd in cmds:
            log.info(cmd.reason)
            args = {"kind": cmd.kind, "group": cmd.group, "event": cmd.event,
                    "reason": cmd.reason}
            if cmd.server == self.me:
                self._answered(cmd.server, cmd.group, self.on_command(self.me, args))
            else:
                self._spawn(self._send_command(cmd.server, cmd.group, args))
        if cmds or self._intents() != self._intents_reported or (
                report and now - self._reported >= self.report_every):
            self.report_now()  # (a change of a group here was reported when it changed)
        return cmds

    async def _send_command(self, server: str, group: str, args: dict[str, Any]) -> None:
        self._answered(server, group, await self.send(server, "command", args))

    def _answered(self, server: str, group: str, reply: dict[str, Any] | None) -> None:
        """A refused command is decided again at the next tick (an unreachable server is
        re-sent after the coordinator's resend time, or leaves the membership)."""
        if reply is not None and not reply.get("ok"):
            log.warning("%s refused command for group %s: %s", server, group,
                        reply.get("message"))
            pending = self.coord.pending.get(group)
            if pending is not None and pending.cmd.server == server:
                self.coord.forget_pending(group)

    def report_now(self) -> None:
        """Send this server's report to every online peer; a peer whose previous report is still
        on its way gets the newest one right after it."""
        self._reported = self.clock()
        self._intents_reported = self._intents()
        for peer in self.online:
            if peer == self.me:
                continue
            if peer in self._sending:
                self._resend.add(peer)
            else:
                self._sending.add(peer)
                self._spawn(self._send_report(peer))

    async def _send_report(self, peer: str) -> None:
        try:
            while True:
                self._resend.discard(peer)
                await self.send(peer, "report", self.report_payload())
                if peer not in self._resend or peer not in self.online:
                    break
        finally:
            self._sending.discard(peer)
            self._resend.discard(peer)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- commands -------------------------------------------------------------------------

    def on_command(self, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        master = self.coord.master_of(self.online)
        group, kind = args.get("group"), args.get("kind")
        if sender != master:
            log.warning("refused %s of group %s from %s: the master is %s", kind, group, sender,
                        master)
            return {"ok": False, "code": E_NO_MASTER,
                    "message": f"{sender} is not the master ({master})"}
        if kind not in ("activate", "deactivate"):
            return {"ok": False, "code": E_BAD_ARGS, "message": f"unknown command {kind!r}"}
        runner = self.runners.get(str(group))
        if runner is None:
            return {"ok": False, "code": E_BAD_ARGS, "message": f"no group {group} on {self.me}"}
        if not self.adopted or (kind == "activate" and self.leaving):
            return {"ok": False, "code": E_STATE, "message": f"{self.me} is not ready"}
        event = str(args.get("event") or "START")
        out = runner.activate(event) if kind == "activate" else runner.deactivate(event)
        if sender != self.me:
            log.info("%s (from master %s)", args.get("reason"), sender)
        self.start(str(group), out)
        return {"ok": True, "code": OK, "message": ""}

    def start(self, group: str, out: Outcome) -> None:
        """Carry out an outcome of a runner (its steps, then its recovery action) in a task."""
        self._log(out)
        if out.step is None and out.action is None:
            if out.lines:
                self._changed()
            return
        op = self.runners[group].op or ""
        task = asyncio.ensure_future(self._drive(group, out))
        task.add_done_callback(partial(self._drive_done, group, op))
        self._tasks[group] = task

    def _drive_done(self, group: str, op: str, task: asyncio.Task[None]) -> None:
        """An unexpected error while driving ``group``: fail it, so it can be stopped or moved."""
        if task.cancelled() or task.exception() is None:
            return
        e = task.exception()
        log.error("group %s: %s broke off: %r", group, op or "operation", e,
                  exc_info=e, extra={"alert": True})
        self._log(self.runners[group].abort(f"{op or 'operation'} broke off: {e!r}"))
        self._changed()

    async def wait_idle(self, group: str) -> None:
        task = self._tasks.get(group)
        if task is not None:
            await asyncio.wait({task})  # its errors are handled by _drive_done

    async def _drive(self, group: str, out: Outcome) -> None:
        runner = self.runners[group]
        gc = self.config.group(group)
        while out.step is not None:
            step = out.step
            rc = gc.resource(step.resource)
            self._changed()
            timeout = float(rc.params.get(f"timeout_{step.op}", DEFAULT_TIMEOUT))
            result = await asyncio.wrap_future(
                self.runner.run(step.op, rc, self._context(gc, rc, step.event), timeout))
            out = runner.on_result(step.resource, result.ok, result.reason)
            self._log(out)
        self._changed()
        if out.action is not None:
            self._recover(out.action)

    def _context(self, gc: GroupConfig, rc: ResourceConfig, event: str) -> Context:
        return Context.for_group(cluster=self.config.name, server=self.me, group=gc.name,
                                 resource=rc.name, event=event, servers=gc.servers,
                                 root=self.root, log=log)

    def _log(self, out: Outcome) -> None:
        for line in out.lines:
            log.info(line)

    def _recover(self, action: RecoveryAction) -> None:
        log.error("group %s: %s", action.group, action.reason, extra={"alert": True})
        if action.action == "failover":
            return
        allowed, count = self.reboot_limit.allow("rc", action.action)
        if not allowed:
            log.warning("Restart count exceeded the maximum value %d. Final action of resource "
                        "%s will not be executed.", count, action.resource,
                        extra={"event_id": 100, "alert": True})
            return
        if action.action == "panic":
            from clp.platform import power

            try:
                power.panic()
            except power.PowerRefused as e:
                log.error("%s", e, extra={"alert": True})
        elif action.action in CALLER_ACTIONS:
            self.on_stop(action.action)

    # --- recovery asked by a monitor -----------------------------------------------------

    async def restart_group(self, group: str) -> tuple[bool, str]:
        """Reactivate ``group`` here; (it is Online again, why not)."""
        return await self._local_op(group, self.runners[group].restart())

    async def restart_resource(self, resource: str) -> tuple[bool, str]:
        """Reactivate ``resource`` (and what depends on it) here."""
        gc, _rc = self.config.resource(resource)
        return await self._local_op(gc.name, self.runners[gc.name].restart_resource(resource))

    async def _local_op(self, group: str, out: Outcome) -> tuple[bool, str]:
        if out.code != OK:
            self._log(out)
            return False, out.lines[0] if out.lines else "refused"
        self.start(group, out)
        await self.wait_idle(group)
        state = self.runners[group].state
        return state == GroupState.ONLINE, f"group {group} is {state.value}"

    async def fail_over(self, group: str, reason: str, timeout: float) -> tuple[bool, str]:
        """Ask the master to move ``group`` away from here; done when it has stopped here."""
        runner = self.runners[group]
        before = runner.deactivations
        out = runner.request_failover(reason)
        self._log(out)
        if out.code != OK:
            return False, out.lines[0] if out.lines else "refused"
        self._changed()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if runner.deactivations > before:  # it stopped here (the master may start it again)
                if runner.event != "FAILOVER":
                    return False, f"group {group} was stopped ({runner.event}) instead"
                return runner.state != GroupState.OFFLINE_FAILURE, \
                    f"group {group} stopped on {self.me} for the failover"
            await asyncio.sleep(0.1)
        return False, f"group {group} did not leave {self.me} in {timeout:g} s"

    def busy(self, group: str) -> bool:
        """Starting, stopping or moving: here, or as a command of the master in flight."""
        runner = self.runners.get(group)
        if runner is not None and (runner.busy or runner.state in GROUP_BUSY_STATES):
            return True
        return group in self.coord.pending

    def others_for(self, group: str) -> list[str]:
        """The other online servers of ``group``'s policy that can take it: not leaving, and
        reachable by cluster RPC (a report from it within a few intervals). A server heard only
        on the disk or COM heartbeat could not be told to start the group (the product's rc 77:
        a failover fails when the servers cannot communicate)."""
        gc = self.config.group(group)
        fresh = time.monotonic() - REPORT_FRESH * self.report_every
        return [s for s in gc.servers if s != self.me and s in self.online and s in self.peers
                and not self.peers[s].report.leaving and self.peers[s].received >= fresh]

    async def reachable(self, servers: list[str]) -> list[str]:
        """Those of ``servers`` that answer a report now (a cluster RPC round trip, bounded by
        a few heartbeat intervals): checked right before a monitor's failover is asked for."""
        timeout = max(0.5, REPORT_FRESH * self.config.heartbeat_interval)
        replies = await asyncio.gather(*(self.send(s, "report", self.report_payload(),
                                                   timeout=timeout) for s in servers))
        return [s for s, r in zip(servers, replies, strict=True) if r is not None]

    # --- start and stop of the service ----------------------------------------------------

    async def adopt(self, refuse_active: Callable[[list[str]], None] | None = None) -> None:
        """Probe every resource of this server's groups and take over what already runs.

        With ``refuse_active``, a resource found active is not taken over: it is called with
        their names and nothing is adopted (the caller fences this server).

        A resource that cannot be probed (a synchronous exec script leaves nothing to look at)
        follows the others of its group; in a group where nothing can be probed it follows the
        marker this service left when the group was last Online here. The markers live in
        volatile storage, so they survive a restart of the service but not of the server.
        """
        online_before = {p.name for p in self._marker_dir().glob("*")} \
            if self._marker_dir().is_dir() else set()
        probed = {}
        for name in self.runners:
            gc = self.config.group(name)
            futures = {rc.name: self.runner.run("probe", rc, self._context(gc, rc, "START"),
                                                PROBE_TIMEOUT) for rc in gc.resources}
            probed[name] = {rname: probe_state(await asyncio.wrap_future(fut))
                            for rname, fut in futures.items()}
        guessed = {}
        for name, answers in probed.items():
            known = [a for a in answers.values() if a is not None]
            if known:
                guess, basis = all(known), "the group's other resources"
            else:
                guess, basis = name in online_before, "the group's last state on this server"
            for rname, answer in answers.items():
                if answer is None:
                    log.info("%s cannot be probed; taken as %s from %s", rname,
                             "active" if guess else "inactive", basis)
            guessed[name] = {r: guess if a is None else a for r, a in answers.items()}
        active = [r for answers in guessed.values() for r, up in answers.items() if up]
        if refuse_active is not None and active:
            refuse_active(active)
            return
        for name, runner in self.runners.items():
            self._log(runner.adopt(guessed[name]))
        self.adopted = True
        self._changed()

    def _marker_dir(self) -> Path:
        return self.root.volatile_dir / "online"

    def _changed(self) -> None:
        """Remember which groups are Online here (for :meth:`adopt`), then report."""
        if self.adopted:
            markers = self._marker_dir()
            markers.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name, runner in self.runners.items():
                marker = markers / name
                if runner.state == GroupState.ONLINE:
                    marker.touch()
                else:
                    marker.unlink(missing_ok=True)
        self.on_change()
        self.changed()

    async def stop_all(self, event: str = "STOP") -> None:
        """Deactivate every group of this server, in reverse configuration order. A group in
        Offline Failure is deactivated again, as the seed's cluster stop deactivates every
        group (its deactivation recovery and final action apply once more); if it stays in
        Offline Failure, the reports sent while leaving say so and the other servers keep it
        stranded (clp.core.coordinator, rule 2) instead of taking it over."""
        self.leaving = True
        self._changed()
        for name in reversed(list(self.runners)):
            await self.wait_idle(name)
            runner = self.runners[name]
            if runner.state is GroupState.OFFLINE and not runner.busy:
                continue
            self.start(name, runner.deactivate(event))
            await self.wait_idle(name)

    def group_snapshot(self) -> dict[str, Any]:
        """The ``groups`` part of the state snapshot (see :mod:`clp.clusterd.publish`)."""
        out = {}
        reports = self.reports()
        for gc in self.config.groups:
            states = {s: r.groups.get(gc.name, GroupState.OFFLINE) for s, r in reports.items()
                      if s in gc.servers}
            server = next((s for s in gc.servers if s in states
                           and states[s] not in GROUP_STOPPED_STATES), None)
            if server is None:
                server = next((s for s in gc.servers if states.get(s) ==
                               GroupState.OFFLINE_FAILURE), None)
            state = states[server] if server else GroupState.OFFLINE
            res = self.local_resources() if server == self.me else \
                (self.peers[server].resources if server in self.peers else {})
            out[gc.name] = {
                "state": state.value, "server": server, "policy": list(gc.servers),
                "states": {s: st.value for s, st in states.items()},
                "resources": {rc.name: {"type": rc.type, "state": res.get(rc.name, "Offline")}
                              for rc in gc.resources},
                "reason": self.coord.reasons.get(gc.name, ""),
            }
        return out
