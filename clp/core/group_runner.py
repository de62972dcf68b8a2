"""The per-server sequencer of one failover group: which resource to start or stop next.

Pure: the caller runs each :class:`ResourceStep` (off the event loop) and feeds the result back
with :meth:`GroupRunner.on_result`. Activation follows ``GroupConfig.activation_order()``
(dependencies first), deactivation ``deactivation_order()`` (the reverse), one resource at a time.

Recovery of an activation failure, per resource: retry the start ``activation.retry`` times; then,
while this server has failed the resource over fewer than ``activation.failover_threshold`` times,
stop what the group started here, go Online Failure and ask for failover (the coordinator moves
the group); else the final action:

- ``none_continue``: the resource stays Online Failure, activation goes on with the next one
- ``none``: activation stops there, the group is Online Failure
- ``stop_group``: stop what was started, the group stays Online Failure (not restarted)
- ``stop_cluster_service`` / ``..._and_shutdown`` / ``..._and_reboot`` / ``panic``: activation
  stops, the group is Online Failure and the caller carries the action out.

Deactivation failure: retry the stop ``deactivation.retry`` times, then the final action
(``none_continue`` goes on with the next resource, ``none`` stops there, the others are carried
out by the caller); the group ends Offline Failure.

The failover count of a resource is reset when the group is Online here with every resource
Online, and by :meth:`reset_counts` (operator start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clp.core.group_states import (
    GROUP_EDGES,
    GroupState,
    ResourceState,
    change_group_state,
    change_resource_state,
)
from clp.core.group_types import E_STATE, OK

G, R = GroupState, ResourceState

CALLER_ACTIONS = ("stop_cluster_service", "stop_cluster_service_and_shutdown",
                  "stop_cluster_service_and_reboot", "panic")
FINAL_ACTIONS = ("none_continue", "none", "stop_group") + CALLER_ACTIONS


class _Recovery(Protocol):
    retry: int
    failover_threshold: int
    final_action: str


class _Resource(Protocol):
    name: str
    depends: tuple[str, ...]
    activation: Any
    deactivation: Any


class _Group(Protocol):
    name: str
    resources: Any

    def activation_order(self) -> list[str]: ...
    def deactivation_order(self) -> list[str]: ...


@dataclass(frozen=True)
class ResourceStep:
    op: str  # start | stop
    resource: str
    event: str
    reason: str


@dataclass(frozen=True)
class RecoveryAction:
    action: str  # failover, or a final action
    group: str
    resource: str
    reason: str


@dataclass
class Outcome:
    step: ResourceStep | None = None
    action: RecoveryAction | None = None
    lines: list[str] = field(default_factory=list)  # state changes and decisions, to log
    done: bool = False  # the activation/deactivation is over
    code: int = OK  # for a refused request (resource_op): the reply code


@dataclass
class _Named:
    name: str
    state: Any


class GroupRunner:
    def __init__(self, group: _Group) -> None:
        self.group = group
        self.name = group.name
        self._g = _Named(group.name, G.OFFLINE)
        self._r = {rc.name: _Named(rc.name, R.OFFLINE) for rc in group.resources}
        self._rc: Mapping[str, _Resource] = {rc.name: rc for rc in group.resources}
        self.op: str | None = None  # activate | deactivate | cleanup (after a failed activation)
        self.event = ""
        self._queue: list[str] = []
        self._retries: dict[str, int] = {}
        self.failovers: dict[str, int] = {r: 0 for r in self._r}
        self.wants_failover = False
        # why a monitor asks to fail over (for the master); "" for a failed activation
        self.failover_reason = ""
        self.deactivations = 0  # finished deactivations: a failover step waits for the next
        self._after_cleanup: RecoveryAction | None = None
        self._then_start: list[str] = []  # a restart: what to start once the stops are done

    @property
    def state(self) -> GroupState:
        return self._g.state

    @property
    def busy(self) -> bool:
        return self.op is not None

    def resource_states(self) -> dict[str, ResourceState]:
        return {n: r.state for n, r in self._r.items()}

    def reset_counts(self) -> None:
        self.failovers = {r: 0 for r in self._r}

    # --- re-adoption ----------------------------------------------------------------------

    def adopt(self, running: Mapping[str, bool]) -> Outcome:
        """Set states from a probe at service start: which resources are already active here.

        All active: Online (nothing is re-run). None: Offline. Some: Online Failure, and they are
        left as they are: the coordinator will not start the group elsewhere, and the operator
        decides (``clpgrp -t`` stops what runs, then ``-s``).
        """
        out = Outcome(done=True)
        self._g.state, self.op = G.UNKNOWN, None
        for n, r in self._r.items():
            r.state = R.UNKNOWN
            up = bool(running.get(n))
            out.lines.append(change_resource_state(r, R.ONLINE if up else R.OFFLINE,
                                                   "found active" if up else "found inactive"))
        up = [n for n, r in self._r.items() if r.state == R.ONLINE]
        if not self._r or not up:
            new, why = G.OFFLINE, "no resource is active"
        elif len(up) == len(self._r):
            new, why = G.ONLINE, "every resource is active: re-adopted"
        else:
            new, why = G.ONLINE_FAILURE, f"only {', '.join(up)} of its resources are active"
        out.lines.append(change_group_state(self._g, new, why))
        return out

    # --- activation -----------------------------------------------------------------------

    def activate(self, event: str) -> Outcome:
        if self.busy or self.state not in (G.OFFLINE, G.OFFLINE_FAILURE):
            return Outcome(lines=[f"group {self.name}: activation ({event}) ignored, it is "
                                  f"{self.state.value}{' and busy' if self.busy else ''}"],
                           done=not self.busy)
        self.op, self.event, self.wants_failover = "activate", event, False
        self._retries = {}
        out = Outcome(lines=[change_group_state(self._g, G.ONLINE_PENDING, event)])
        self._queue = [n for n in self.group.activation_order() if self._r[n].state != R.ONLINE]
        return self._next(out)

    def deactivate(self, event: str) -> Outcome:
        if self.busy or self.state in (G.OFFLINE, G.UNKNOWN):
            return Outcome(lines=[f"group {self.name}: deactivation ({event}) ignored, it is "
                                  f"{self.state.value}{' and busy' if self.busy else ''}"],
                           done=not self.busy)
        self.op, self.event = "deactivate", event
        self.wants_failover = self.wants_failover and event == "FAILOVER"
        self._retries = {}
        out = Outcome(lines=[change_group_state(self._g, G.OFFLINE_PENDING, event)])
        self._queue = self._to_stop()
        return self._next(out)

    def resource_op(self, op: str, name: str, with_deps: bool = False) -> Outcome:
        """Start or stop one resource of a running group (``clprsc``), without recovery.

        A start needs what the resource depends on Online, a stop needs what depends on it
        Offline; with ``with_deps`` (``clprsc -f``) those are started (stopped) first, in
        dependency order, else the request is refused naming them. The group is Online when
        every resource is Online afterwards, else Online Failure.
        """
        if self.busy or self.state not in (G.ONLINE, G.ONLINE_FAILURE):
            return Outcome(lines=[f"group {self.name}: {op} of {name} refused, the group is "
                                  f"{self.state.value}{' and busy' if self.busy else ''}"],
                           done=True, code=E_STATE)
        want = R.ONLINE if op == "start" else R.OFFLINE
        if op == "start":
            related, order = self._depends_on(name), self.group.activation_order()
        else:
            related, order = self._dependents(name), self.group.deactivation_order()
        missing = [n for n in order if n in related and self._r[n].state != want]
        if missing and not with_deps:
            what = "what it depends on" if op == "start" else "what depends on it"
            return Outcome(lines=[f"{', '.join(missing)} ({what}) must be {want.value} first; "
                                  f"-f does it"], done=True, code=E_STATE)
        if self._r[name].state == want and not missing:
            return Outcome(lines=[f"resource {name} is already {want.value}"], done=True)
        self.op, self.event = f"single_{op}", "STOP" if op == "stop" else "START"
        self._queue = missing + ([name] if self._r[name].state != want else [])
        return self._single_next(Outcome())

    def _single_next(self, out: Outcome) -> Outcome:
        name, op = self._queue[0], self.op.removeprefix("single_") if self.op else ""
        pending = R.ONLINE_PENDING if op == "start" else R.OFFLINE_PENDING
        out.lines.append(change_resource_state(self._r[name], pending, f"clprsc {op}"))
        out.step = ResourceStep(op, name, self.event, f"{op} {name} by the operator")
        return out

    def _depends_on(self, name: str) -> set[str]:
        """Every resource ``name`` depends on, directly or through others."""
        found: set[str] = set()
        todo = [name]
        while todo:
            for dep in self._rc[todo.pop()].depends:
                if dep in self._rc and dep not in found:
                    found.add(dep)
                    todo.append(dep)
        return found

    # --- recovery asked by a monitor -------------------------------------------------------

    def _refuse(self, what: str) -> Outcome | None:
        if self.busy or self.state not in (G.ONLINE, G.ONLINE_FAILURE):
            return Outcome(lines=[f"group {self.name}: {what} refused, the group is "
                                  f"{self.state.value}{' and busy' if self.busy else ''}"],
                           done=True, code=E_STATE)
        return None

    def restart(self, event: str = "RECOVER") -> Outcome:
        """Reactivate the whole group here: stop every resource in reverse order, then start
        them all again. The group is never Offline in between (Offline Pending -> Online
        Pending), so the master never places it elsewhere meanwhile."""
        refused = self._refuse("restart")
        if refused is not None:
            return refused
        self.op, self.event, self._retries = "restart", event, {}
        self._then_start = self.group.activation_order()
        out = Outcome(lines=[change_group_state(self._g, G.OFFLINE_PENDING,
                                                f"{event}: restart of the group")])
        self._queue = self._to_stop()
        return self._next(out)

    def restart_resource(self, name: str, event: str = "RECOVER") -> Outcome:
        """Reactivate one resource here, with the resources that depend on it: they stop
        (dependents first), then start again (it first); the others keep running."""
        refused = self._refuse(f"restart of {name}")
        if refused is not None:
            return refused
        affected = self._dependents(name) | {name}
        self.op, self.event, self._retries = "restart_resource", event, {}
        self._then_start = [n for n in self.group.activation_order() if n in affected]
        self._queue = [n for n in self._to_stop() if n in affected]
        return self._next(Outcome(lines=[
            f"group {self.name}: {event}: restart of {', '.join(self._then_start)}"]))

    def _dependents(self, name: str) -> set[str]:
        """Every resource that depends on ``name``, directly or through others."""
        found: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            for rc in self._rc.values():
                if current in rc.depends and rc.name not in found:
                    found.add(rc.name)
                    todo.append(rc.name)
        return found

    def request_failover(self, reason: str) -> Outcome:
        """Ask the master to move the group away from this server (reported in ``failover``,
        with ``reason``); it is deactivated here when the master commands it."""
        refused = self._refuse("failover")
        if refused is not None:
            return refused
        self.wants_failover, self.failover_reason = True, reason
        return Outcome(lines=[f"group {self.name}: asks to fail over: {reason}"], done=True)

    def _to_stop(self) -> list[str]:
        return [n for n in self.group.deactivation_order() if self._r[n].state != R.OFFLINE]

    def _next(self, out: Outcome) -> Outcome:
        """Issue the next step, or finish the operation in progress."""
        if self._queue:
            name = self._queue[0]
            r = self._r[name]
            if self.op == "activate":
                out.lines.append(change_resource_state(r, R.ONLINE_PENDING, self.event))
                out.step = ResourceStep("start", name, self.event, f"start {name}")
            else:
                out.lines.append(change_resource_state(r, R.OFFLINE_PENDING, self.event))
                out.step = ResourceStep("stop", name, self.event, f"stop {name}")
            return out
        return self._finish(out)

    def _finish(self, out: Outcome) -> Outcome:
        op, self.op = self.op, None
        out.done = True
        if op in ("restart", "restart_resource"):
            return self._restart_stopped(out, op)
        states = [r.state for r in self._r.values()]
        if op == "activate":
            if all(s == R.ONLINE for s in states):
                self.reset_counts()
                out.lines.append(change_group_state(self._g, G.ONLINE, "every resource started"))
            else:
                out.lines.append(change_group_state(self._g, G.ONLINE_FAILURE,
                                                    "a resource failed to start"))
        elif op == "cleanup":
            out.lines.append(change_group_state(self._g, G.ONLINE_FAILURE,
                                                self._after_cleanup.reason
                                                if self._after_cleanup else "activation failed"))
            out.action, self._after_cleanup = self._after_cleanup, None
        elif any(s != R.OFFLINE for s in states):
            self.wants_failover, self.failover_reason = False, ""
            self.deactivations += 1
            out.lines.append(change_group_state(self._g, G.OFFLINE_FAILURE,
                                                "a resource failed to stop"))
        else:
            self.wants_failover, self.failover_reason = False, ""
            self.deactivations += 1
            out.lines.append(change_group_state(self._g, G.OFFLINE, "every resource stopped"))
        return out

    def _restart_stopped(self, out: Outcome, op: str) -> Outcome:
        """The stops of a restart are over: start again, or end in a failure state."""
        start, self._then_start = self._then_start, []
        if all(self._r[n].state == R.OFFLINE for n in start):
            self.op, out.done, self._queue = "activate", False, list(start)
            out.lines.append(change_group_state(self._g, G.ONLINE_PENDING,
                                                f"{self.event}: stopped for the restart, "
                                                f"starting again"))
            return self._next(out)
        failure = G.OFFLINE_FAILURE if op == "restart" else G.ONLINE_FAILURE
        if self.state != failure:
            out.lines.append(change_group_state(self._g, failure,
                                                "a resource failed to stop for the restart"))
        return out

    # --- results --------------------------------------------------------------------------

    def on_result(self, resource: str, ok: bool, reason: str) -> Outcome:
        if not self._queue or self._queue[0] != resource:
            raise RuntimeError(f"group {self.name}: unexpected result for {resource}")
        r = self._r[resource]
        out = Outcome()
        if self.op in ("single_start", "single_stop"):
            return self._single_done(out, r, ok, reason)
        if self.op == "activate":
            if ok:
                out.lines.append(change_resource_state(r, R.ONLINE, reason or "started"))
                self._queue.pop(0)
                return self._next(out)
            out.lines.append(change_resource_state(r, R.ONLINE_FAILURE, reason))
            return self._start_failed(out, resource, reason)
        if ok:
            out.lines.append(change_resource_state(r, R.OFFLINE, reason or "stopped"))
            self._queue.pop(0)
            return self._next(out)
        out.lines.append(change_resource_state(r, R.OFFLINE_FAILURE, reason))
        if self.op == "cleanup":  # already giving up: note it and go on stopping the rest
            self._queue.pop(0)
            return self._next(out)
        return self._stop_failed(out, resource, reason)

    def _single_done(self, out: Outcome, r: _Named, ok: bool, reason: str) -> Outcome:
        start = self.op == "single_start"
        new = (R.ONLINE if ok else R.ONLINE_FAILURE) if start else \
            (R.OFFLINE if ok else R.OFFLINE_FAILURE)
        out.lines.append(change_resource_state(r, new, reason or ("started" if ok else "failed")))
        self._queue.pop(0)
        if ok and self._queue:  # clprsc -f: the next one
            return self._single_next(out)
        self.op, self._queue, out.done = None, [], True
        whole = all(x.state == R.ONLINE for x in self._r.values())
        if whole and self.state != G.ONLINE:
            out.lines.append(change_group_state(self._g, G.ONLINE, "every resource is Online"))
        elif not whole and self.state != G.ONLINE_FAILURE:
            out.lines.append(change_group_state(self._g, G.ONLINE_FAILURE,
                                                f"resource {r.name} is {r.state.value}"))
        return out

    def _start_failed(self, out: Outcome, name: str, reason: str) -> Outcome:
        rec: _Recovery = self._rc[name].activation
        if self._retry(out, "start", name, rec.retry, reason):
            return out
        if self.failovers[name] < rec.failover_threshold:
            self.failovers[name] += 1
            self.wants_failover, self.failover_reason = True, ""
            return self._cleanup(out, RecoveryAction(
                "failover", self.name, name,
                f"start of {name} failed ({reason}) after {rec.retry} retries: failover "
                f"{self.failovers[name]}/{rec.failover_threshold}"))
        action = rec.final_action
        why = (f"start of {name} failed ({reason}) after {rec.retry} retries and "
               f"{rec.failover_threshold} failovers: final action {action}")
        if action == "none_continue":
            out.lines.append(f"group {self.name}: {why}")
            self._queue.pop(0)
            return self._next(out)
        if action == "stop_group":
            return self._cleanup(out, RecoveryAction(action, self.name, name, why))
        self._queue = []
        self.op = None
        out.done = True
        out.lines.append(change_group_state(self._g, G.ONLINE_FAILURE, why))
        out.action = RecoveryAction(action, self.name, name, why)
        return out

    def _retry(self, out: Outcome, op: str, name: str, retries: int, reason: str) -> bool:
        """Issue the next retry of ``op`` (start or stop) of ``name``; False when none is left."""
        tried = self._retries.get(name, 0)
        if tried >= retries:
            return False
        self._retries[name] = tried + 1
        pending, what = (R.ONLINE_PENDING, "activation") if op == "start" else \
            (R.OFFLINE_PENDING, "deactivation")
        out.lines.append(change_resource_state(self._r[name], pending,
                                               f"{what} retry {tried + 1}/{retries}"))
        out.step = ResourceStep(op, name, self.event,
                                f"retry {tried + 1}/{retries} of {op} {name}: {reason}")
        return True

    def abort(self, cause: str) -> Outcome:
        """The operation in progress broke off (a bug or an unexpected error in its driver): put
        the group in a failure state and free it, so it can still be stopped or failed over.

        Activation (and a single resource operation) ends Online Failure, deactivation Offline
        Failure; the resource being worked on goes to the matching failure state.
        """
        op, self.op, self._after_cleanup = self.op, None, None
        out = Outcome(done=True)
        for r in self._r.values():
            if r.state == R.ONLINE_PENDING:
                out.lines.append(change_resource_state(r, R.ONLINE_FAILURE, cause))
            elif r.state == R.OFFLINE_PENDING:
                out.lines.append(change_resource_state(r, R.OFFLINE_FAILURE, cause))
        self._queue = []
        new = G.OFFLINE_FAILURE if op == "deactivate" else G.ONLINE_FAILURE
        if self.state == G.ONLINE_PENDING:
            new = G.ONLINE_FAILURE
        if new != self.state and new in GROUP_EDGES[self.state]:
            out.lines.append(change_group_state(self._g, new, cause))
        return out

    def _cleanup(self, out: Outcome, action: RecoveryAction) -> Outcome:
        """Stop what this activation left running, then report ``action``."""
        out.lines.append(f"group {self.name}: {action.reason}")
        self.op, self._after_cleanup = "cleanup", action
        self._queue = self._to_stop()
        if self._queue:
            name = self._queue[0]
            out.lines.append(change_resource_state(self._r[name], R.OFFLINE_PENDING,
                                                   action.action))
            out.step = ResourceStep("stop", name, self.event, f"stop {name}: {action.action}")
            return out
        return self._finish(out)

    def _stop_failed(self, out: Outcome, name: str, reason: str) -> Outcome:
        rec: _Recovery = self._rc[name].deactivation
        if self._retry(out, "stop", name, rec.retry, reason):
            return out
        action = rec.final_action
        why = f"stop of {name} failed ({reason}) after {rec.retry} retries: final action {action}"
        out.action = RecoveryAction(action, self.name, name, why)
        if action == "none_continue":
            self._queue.pop(0)
            return self._next(out)
        self._queue = []
        out.lines.append(f"group {self.name}: {why}")
        return self._finish(out)
