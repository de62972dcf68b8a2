"""The monitor manager of ``clusterpro``: runs this server's monitor resources and their recovery.

For every monitor whose ``servers`` name this server it keeps a type instance (the check), a
:class:`~clp.core.monitor_recovery.MonitorTracker` (states and the recovery chain, pure) and,
while it monitors, an asyncio task that asks the :class:`~clp.monitors.runner.MonitorRunner`
for one check every interval (never on the event loop, each bounded by the timeout times the
``clptoratio`` ratio) and feeds the result to the tracker. Steps the tracker chooses are carried
out by :class:`~clp.clusterd.monitor_actions.StepRunner`.

When a monitor runs (:meth:`reconcile`, called after every change of the groups here):

- always-timing monitors from when this server's groups are known (after the start-up probe)
  until the cluster service stops;
- active-timing monitors while their target resource is Online here: a resource that starts
  stopping (Offline Pending) stops its monitors first, so a group move never raises a monitor
  error, and a check still running then is ignored when it returns;
- nothing while the cluster is suspended or a monitor is suspended by ``clpmonctrl -s``.

Monitor states go to every peer with the group reports and to the state region, so ``clpstat``
on any server shows every server's monitors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clp.clusterd.monitor_actions import RM, StepRunner
from clp.config import ClusterConfig
from clp.config.model import MonitorConfig
from clp.control.protocol import Reply
from clp.core.group_states import ResourceState
from clp.core.monitor_recovery import (
    EV_ALL_RESUMED,
    EV_ALL_SUSPENDED,
    EV_DELAY,
    EV_NOT_HERE,
    EV_PSEUDO_OFF,
    EV_PSEUDO_ON,
    EV_RESUMED,
    EV_SUSPENDED,
    MONITORING_STATES,
    Decision,
    MonitorState,
    MonitorTracker,
    Outcome,
    Policy,
    Situation,
    Step,
)
from clp.monitors import registry
from clp.monitors.base import Check, Health, MonitorContext, MonitorType
from clp.monitors.mrw import NOTICE_WORD, MessageMonitor
from clp.monitors.runner import MonitorRunner, checked
from clp.paths import InstallRoot

if TYPE_CHECKING:
    from clp.clusterd.groups import GroupManager

log = logging.getLogger("clp.rm")
OUTCOMES = {Health.NORMAL: Outcome.NORMAL, Health.CAUTION: Outcome.CAUTION,
            Health.ERROR: Outcome.FAILED, Health.UNKNOWN: Outcome.BROKEN}
E_BAD_ARGS, E_NOT_SUPPORTED = 2, 6
QUIET = Situation()


@dataclass
class Running:
    """One monitor of this server."""

    cfg: MonitorConfig
    kind: type[MonitorType]
    check: MonitorType
    tracker: MonitorTracker
    task: asyncio.Task[None] | None = None
    suspended: bool = False  # by clpmonctrl -s
    pseudo: bool = False  # clpmonctrl -e: every check fails
    generation: int = 0  # bumped when monitoring stops: a late result is dropped
    step: asyncio.Task[None] | None = None
    last_check: float | None = None  # wall clock of the last result


def policy_of(mc: MonitorConfig, polled: bool) -> Policy:
    r = mc.recovery
    before = frozenset(k for k, on in (("reactivation", r.script and r.script.before_reactivation),
                                       ("failover", r.script and r.script.before_failover),
                                       ("final_action", r.script and r.script.before_final_action))
                       if on)
    return Policy(mc.name, mc.retry, mc.no_retry_on_timeout, mc.no_recovery_on_timeout,
                  r.target, r.kind, r.reactivation_threshold, r.failover_threshold,
                  r.final_action, r.reset_after, r.script.count if r.script else 0, before,
                  polled)


class MonitorManager:
    def __init__(self, config: ClusterConfig, me: str, root: InstallRoot,
                 groups: GroupManager, steps: StepRunner, ratio: Callable[[], float],
                 on_change: Callable[[], None],
                 gate: Callable[[], str | None] = lambda: None) -> None:
        self.config, self.me, self.root = config, me, root
        self.groups = groups
        self.steps = steps
        self.ratio = ratio  # the clptoratio ratio now
        self.on_change = on_change  # publish and report
        # asked before acting on a result: a server woken from a hang fences instead (the
        # service's resource gate), it must not recover anything
        self.gate = gate
        self.settings = config.monitor_settings
        self.ready = False  # this server's groups are known (after the start-up probe)
        self.stopping = False
        self.cluster_suspended = False
        self.monitors: dict[str, Running] = {}
        for mc in config.monitors:
            kind = registry.get(mc.type)
            if self.me not in mc.servers:
                continue
            ctx = MonitorContext(config.name, me, mc.name, mc.target, root, config, log,
                                 mc.interval, mc.timeout, self.local_states, ratio)
            self.monitors[mc.name] = Running(mc, kind, kind(mc.params, ctx),
                                             MonitorTracker(policy_of(mc, kind.polled)))
        self.runner = MonitorRunner(max(4, len(self.monitors) + 4))
        self._results = Results()
        for mc in config.monitors:
            if self.me not in mc.servers:
                log.info("%s is not monitored by this server.", mc.name,
                         extra={"event_id": EV_NOT_HERE, **RM})

    # --- what runs ------------------------------------------------------------------------

    def local_states(self) -> dict[str, str]:
        return {n: m.tracker.state.value for n, m in self.monitors.items()}

    def start(self) -> None:
        """This server's groups are known: monitoring begins."""
        self.ready = True
        self.reconcile()

    def reconcile(self) -> None:
        """Start and stop monitors as their timing says (called after every group change)."""
        if not self.ready:
            return
        for m in self.monitors.values():
            why = self._why_not(m)
            if why is None and m.task is None:
                self._begin(m)
            elif why is not None and m.task is not None:
                state = MonitorState.SUSPEND if m.suspended or self.cluster_suspended \
                    else MonitorState.OFFLINE
                self._halt(m, why, state)
            elif why is not None and m.tracker.state not in (MonitorState.OFFLINE,
                                                             MonitorState.SUSPEND):
                self._apply(m, m.tracker.stop(time.monotonic(), why))

    def _why_not(self, m: Running) -> str | None:
        if self.stopping:
            return "the cluster service is stopping"
        if self.cluster_suspended:
            return "the cluster is suspended"
        if m.suspended:
            return "suspended by the operator"
        if m.cfg.timing == "active":
            state = self._resource_state(str(m.cfg.target))
            if state != ResourceState.ONLINE:
                return f"{m.cfg.target} is not Online on {self.me}"
        return None

    def _resource_state(self, resource: str) -> ResourceState | None:
        gc, _rc = self.config.resource(resource)
        runner = self.groups.runners.get(gc.name)
        if runner is None or not self.groups.adopted:
            return None
        return runner.resource_states().get(resource)

    def _begin(self, m: Running) -> None:
        m.generation += 1
        self._apply(m, m.tracker.start(time.monotonic()))
        m.task = asyncio.ensure_future(self._monitor(m, m.generation))

    def _halt(self, m: Running, why: str, state: MonitorState = MonitorState.OFFLINE) -> None:
        m.generation += 1
        task, m.task = m.task, None
        if task is not None:
            task.cancel()
        self._apply(m, m.tracker.stop(time.monotonic(), why, state))
        self._spawn(self._end(m))

    async def _end(self, m: Running) -> None:
        await self._results.wait(self.runner.call(m.cfg.name, m.check, "end",
                                                  self._timeout(m), m.cfg.nice, log))

    def stop_all(self, why: str) -> None:
        """The cluster service stops: every monitor stops, nothing more is recovered."""
        self.stopping = True
        for m in self.monitors.values():
            if m.task is not None:
                self._halt(m, why)

    def suspend_cluster(self, suspended: bool) -> None:
        self.cluster_suspended = suspended
        self.reconcile()

    def close(self) -> None:
        for m in self.monitors.values():
            if m.task is not None:
                m.task.cancel()
        self.runner.shutdown()

    # --- the check loop -------------------------------------------------------------------

    def _timeout(self, m: Running) -> float:
        return m.cfg.timeout * max(1.0, float(self.ratio()))

    async def _monitor(self, m: Running, generation: int) -> None:
        await asyncio.sleep(m.cfg.wait_start)
        begun = await self._results.wait(self.runner.call(
            m.cfg.name, m.check, "begin", self._timeout(m), m.cfg.nice, log))
        if begun.health is not Health.NORMAL:
            log.error("Failed to start monitoring %s. (%s)", m.cfg.name, begun.reason,
                      extra={"event_id": 7, "alert": True, **RM})
        if not m.kind.polled:
            self._result(m, generation, Check(Health.NORMAL, "waiting for notices"))
            return
        # on a grid of the interval: monitors of the same interval check together, so their
        # results come back in one wake-up of the loop (see Results)
        next_at = math.ceil(time.monotonic() / m.cfg.interval) * m.cfg.interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        while generation == m.generation:
            late = time.monotonic() - next_at
            if late > max(1.0, m.cfg.interval):
                log.warning("the check of monitor %s starts %.1f s late", m.cfg.name, late,
                            extra=RM)
                next_at = time.monotonic()
            if m.pseudo:
                result = Check(Health.ERROR, "pseudo failure (clpmonctrl -e)")
            else:
                timeout = self._timeout(m)
                if m.check.inline():
                    result = self._check_inline(m)
                else:
                    result = await self._results.wait(self.runner.call(
                        m.cfg.name, m.check, "check", timeout, m.cfg.nice, log))
                self._delay_warning(m, result, timeout)
            self._result(m, generation, result)
            next_at += m.cfg.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _check_inline(m: Running) -> Check:
        """A check that cannot block (MonitorType.inline), on the loop; what the runner makes
        of a thread's result and of its exceptions."""
        started = time.monotonic()
        try:
            result = m.check.check()
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not take the daemon down
            log.exception("check of monitor %s raised", m.cfg.name, extra=RM)
            return Check(Health.UNKNOWN, f"check of monitor {m.cfg.name} failed: {exc!r}")
        return checked(m.check, result, time.monotonic() - started)

    def _delay_warning(self, m: Running, result: Check, timeout: float) -> None:
        rate = self.settings.delay_warning
        if result.timed_out or result.elapsed <= timeout * rate / 100:
            return
        log.warning("Detected a monitor delay in monitoring %s. (timeout=%g*%g actual-time=%.1f "
                    "delay warning rate=%g)", m.cfg.name, m.cfg.timeout, self.ratio(),
                    result.elapsed, rate, extra={"event_id": EV_DELAY, "alert": True, **RM})

    def _result(self, m: Running, generation: int, result: Check) -> None:
        if generation != m.generation:
            return  # monitoring stopped (or restarted) while this check ran
        if self.gate():
            return  # fenced: nothing is acted on any more
        m.last_check = time.time()
        outcome = Outcome.TIMEOUT if result.timed_out else OUTCOMES[result.health]
        # what the cluster looks like matters only to a recovery: not worked out for the
        # (many) normal results
        situation = QUIET if outcome is Outcome.NORMAL else self.situation(m)
        d = m.tracker.on_check(time.monotonic(), outcome, result.reason, situation)
        self._apply(m, d)

    # --- recovery -------------------------------------------------------------------------

    def situation(self, m: Running) -> Situation:
        p = m.tracker.policy
        groups = self.steps.groups_of(p.kind, p.target)
        if p.kind == "local_server":
            active = True
        elif p.kind == "resource":
            active = self._resource_state(p.target) in (ResourceState.ONLINE,
                                                        ResourceState.ONLINE_FAILURE)
        else:
            active = bool(set(groups) & set(self.steps.active_groups()))
        busy = p.kind != "local_server" and any(self.groups.busy(g) for g in groups)
        return Situation(
            target_active=active, target_busy=busy,
            recovery_disabled=self.settings.disable_recovery or self.stopping,
            failover_possible=any(self.groups.others_for(g) for g in groups),
            others_alive=len(self.groups.online) > 1,
            restrain_alone=self.settings.restrain_final_action_alone)

    def _apply(self, m: Running, d: Decision) -> None:
        for line in d.lines:
            log.log(line.level, line.text,
                    extra={"event_id": line.event_id, "alert": line.alert, **RM})
        if d.step is not None:
            log.info("monitor %s: %s", m.cfg.name, d.step.reason, extra=RM)
            m.step = asyncio.ensure_future(self._carry_out(m, d.step))
        if d.changed or d.lines or d.step is not None:
            self.on_change()

    async def _carry_out(self, m: Running, step: Step) -> None:
        try:
            ok, why = await self.steps.run(m.cfg, step)
        except Exception as e:  # noqa: BLE001 - a bug in a step must not leave it "recovering"
            log.exception("monitor %s: recovery step %s broke off", m.cfg.name, step.action,
                          extra=RM)
            ok, why = False, f"broke off: {e!r}"
        self._apply(m, m.tracker.step_done(time.monotonic(), ok, why))

    # --- operator requests (clpmonctrl, mrw notices) --------------------------------------

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Reply]]]:
        return {"monitor_control": self.op_control, "monitor_counters": self.op_counters,
                "monitor_pseudo": self.op_pseudo, "mrw_notice": self.op_notice}

    def _select(self, args: dict[str, Any]) -> list[Running] | Reply:
        names = args.get("monitors")
        if names is None:
            return list(self.monitors.values())
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return Reply(False, E_BAD_ARGS, "monitors must be a list of monitor names.")
        known = {mc.name for mc in self.config.monitors}
        unknown = [n for n in names if n not in known]
        if unknown:
            return Reply(False, 5, f"Monitor {unknown[0]} is not registered. Check the cluster "
                                   "configuration information.", {"unknown": unknown})
        absent = [n for n in names if n not in self.monitors]
        if absent:
            return Reply(False, E_BAD_ARGS, f"{absent[0]} is not monitored by {self.me}.")
        return [self.monitors[n] for n in names]

    async def op_control(self, args: dict[str, Any]) -> Reply:
        """clpmonctrl -s / -r: suspend or resume monitors on this server."""
        action = args.get("action")
        if action not in ("suspend", "resume"):
            return Reply(False, E_BAD_ARGS, f"Unknown monitor action {action!r}.")
        chosen = self._select(args)
        if isinstance(chosen, Reply):
            return chosen
        changed = []
        for m in chosen:
            want = action == "suspend"
            if m.suspended == want:
                continue
            m.suspended = want
            if not want:
                m.pseudo = False  # a pseudo failure ends with the suspend
            changed.append(m.cfg.name)
            event, text = (EV_SUSPENDED, "Monitoring %s was suspended.") if want else \
                (EV_RESUMED, "Monitoring %s was resumed.")
            log.info(text, m.cfg.name, extra={"event_id": event, "alert": True, **RM})
        if args.get("monitors") is None and changed:
            log.info("All monitors were %s.", "suspended" if action == "suspend" else "resumed",
                     extra={"event_id": EV_ALL_SUSPENDED if action == "suspend"
                            else EV_ALL_RESUMED, "alert": True, **RM})
        self.reconcile()
        for m in chosen:  # a monitor not running now shows Suspend too
            if m.suspended and m.tracker.state != MonitorState.SUSPEND:
                self._apply(m, m.tracker.stop(time.monotonic(), "suspended by the operator",
                                              MonitorState.SUSPEND))
        return Reply(True, 0, "", {"changed": changed,
                                   "states": {m.cfg.name: m.tracker.state.value for m in chosen}})

    async def op_counters(self, args: dict[str, Any]) -> Reply:
        """clpmonctrl -v / -c: show or reset the recovery counters on this server."""
        action = args.get("action", "show")
        if action not in ("show", "reset"):
            return Reply(False, E_BAD_ARGS, f"Unknown counter action {action!r}.")
        chosen = self._select(args)
        if isinstance(chosen, Reply):
            return chosen
        if action == "reset":
            for m in chosen:
                self._apply(m, m.tracker.reset(time.monotonic()))
        return Reply(True, 0, "", {"server": self.me, "monitors": {
            m.cfg.name: self.counters(m) for m in chosen}})

    def counters(self, m: Running) -> dict[str, Any]:
        r = m.cfg.recovery
        c = m.tracker.counts
        return {"target": r.target, "script": {"count": c["recovery"],
                                               "threshold": r.script.count if r.script else 0},
                "reactivation": {"count": c["restart"], "threshold": r.reactivation_threshold},
                "failover": {"count": c["failover"], "threshold": r.failover_threshold},
                "final_action": {"count": c["final"], "action": r.final_action}}

    async def op_pseudo(self, args: dict[str, Any]) -> Reply:
        """clpmonctrl -e / -n: a pseudo failure on or off (off without names: every monitor)."""
        action = args.get("action")
        if action not in ("enable", "disable"):
            return Reply(False, E_BAD_ARGS, f"Unknown pseudo failure action {action!r}.")
        if action == "enable" and not args.get("monitors"):
            return Reply(False, E_BAD_ARGS, "Name the monitor of the pseudo failure.")
        chosen = self._select(args)
        if isinstance(chosen, Reply):
            return chosen
        refused = [m.cfg.name for m in chosen if not m.kind.pseudo_failure]
        if action == "enable" and refused:
            log.warning("An attempt was made to enable Dummy Failure of monitor resource %s, "
                        "but failed.", refused[0], extra={"event_id": 184, "alert": True, **RM})
            kind = self.monitors[refused[0]].kind.name
            return Reply(False, E_NOT_SUPPORTED, f"Monitor {refused[0]} ({kind}) does not "
                                                 f"support the pseudo failure.")
        want = action == "enable"
        for m in chosen:
            if m.pseudo != want:
                m.pseudo = want
                log.info("Dummy Failure of monitor resource %s is %s.", m.cfg.name,
                         "enabled" if want else "disabled",
                         extra={"event_id": EV_PSEUDO_ON if want else EV_PSEUDO_OFF,
                                "alert": True, **RM})
        return Reply(True, 0, "", {"pseudo": {m.cfg.name: m.pseudo for m in chosen}})

    async def op_notice(self, args: dict[str, Any]) -> Reply:
        """An external error notice (or its clearing) for the mrw monitors of a category."""
        category, keyword = args.get("category"), args.get("keyword")
        state, text = args.get("state", "error"), str(args.get("message", ""))[:500]
        if not isinstance(category, str) or not NOTICE_WORD.match(category):
            return Reply(False, E_BAD_ARGS, f"Invalid category {category!r}.")
        if keyword is not None and (not isinstance(keyword, str) or
                                    not NOTICE_WORD.match(keyword)):
            return Reply(False, E_BAD_ARGS, f"Invalid keyword {keyword!r}.")
        if state not in ("error", "normal"):
            return Reply(False, E_BAD_ARGS, f"Invalid notice state {state!r}.")
        source = str(args.get("from") or "local")[:100]
        log.info("There was a notification (%s) from external (IP=%s).",
                 f"{category}{'.' + keyword if keyword else ''}: {state} {text}".strip(),
                 source, extra={"event_id": 10, "alert": True, "evt_module": "trnsv"})
        only = args.get("monitor")
        if only is not None and (not isinstance(only, str) or only not in self.monitors
                                 or not isinstance(self.monitors[only].check, MessageMonitor)):
            return Reply(False, 5, f"{only!r} is not an mrw monitor of {self.me}.")
        hit = [m for m in self.monitors.values() if isinstance(m.check, MessageMonitor)
               and m.check.matches(category, keyword) and only in (None, m.cfg.name)]
        for m in hit:
            if m.tracker.state not in MONITORING_STATES:
                continue  # not monitoring now (suspended, stopping): the notice is logged only
            health = Health.ERROR if state == "error" else Health.NORMAL
            self._result(m, m.generation, Check(health, text or f"notice {category}"))
        return Reply(True, 0, "", {"monitors": [m.cfg.name for m in hit]})

    # --- what others see ------------------------------------------------------------------

    def snapshot(self, peers: dict[str, dict[str, str]]) -> dict[str, Any]:
        """The ``monitors`` part of the state snapshot: every monitor, its state on each server
        (``peers``: the states the online peers reported; Unknown for a server that is not
        online, which the monitor's overall state leaves out), and this server's details."""
        out = {}
        for mc in self.config.monitors:
            m = self.monitors.get(mc.name)
            states = {s: (m.tracker.state.value if m is not None else "Offline")
                      if s == self.me else peers.get(s, {}).get(mc.name, "Unknown")
                      for s in mc.servers}
            here = m.tracker.snapshot() if m is not None else {"state": "Offline",
                                                                "reason": "not monitored here"}
            out[mc.name] = {
                "type": mc.type, "timing": mc.timing, "target": mc.target,
                "state": summary({s: st for s, st in states.items()
                                  if s == self.me or s in peers}),  # a server down says nothing
                "servers": states, "local": {
                    **here, "suspended": bool(m and m.suspended), "pseudo": bool(m and m.pseudo),
                    "last_check": m.last_check if m else None,
                    "counters": self.counters(m) if m else None},
                "recovery": {"target": mc.recovery.target, "kind": mc.recovery.kind,
                             "final_action": mc.recovery.final_action},
            }
        return out

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


class Results:
    """Hands the results of worker threads to the event loop, several per wake-up.

    ``asyncio.wrap_future`` wakes the loop (a write to its self-pipe) for every result; with
    tens of monitors checking every second that was the largest part of their cost. Here a
    result is queued and the loop is woken only when the queue was empty: the results of
    checks that end together (monitors on the same interval grid) cost one wake-up."""

    def __init__(self) -> None:
        self._queue: deque[tuple[asyncio.Future[Check], Check]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, future: Future[Check]) -> Check:
        self._loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Check] = self._loop.create_future()
        future.add_done_callback(lambda f: self._post(waiter, f.result()))
        return await waiter

    def _post(self, waiter: asyncio.Future[Check], result: Check) -> None:
        with self._lock:
            self._queue.append((waiter, result))
            first = len(self._queue) == 1
        if first and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            ready, self._queue = list(self._queue), deque()
        for waiter, result in ready:
            if not waiter.done():
                waiter.set_result(result)


SEVERITY = ("Error", "Unknown", "Caution", "Normal", "Online Pending", "Suspend", "Offline")


def summary(states: dict[str, str]) -> str:
    """A monitor's state over every server, as clpstat shows it: the worst state of a server
    that monitors it (Error before Caution before Normal), Offline when none does."""
    present = set(states.values())
    for state in SEVERITY:
        if state in present:
            return state
    return "Offline"

