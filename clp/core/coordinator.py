"""The cluster-wide group decisions: where each failover group runs, and when it moves.

Pure: no I/O, ``now`` passed in. Every server runs one Coordinator over the same inputs (its
membership's Online set and the group states each server reports for itself) but only the
*master* acts: the highest-priority server (clp.conf order) that this server sees Online. The
other servers copy the master's intent table from its reports, so a new master continues where the
old one stopped (a stop by the operator stays a stop).

Rules (numbers as in the design issue):

1. Server sync wait: auto-start groups start once every server is online, or ``sync_wait`` seconds
   after this coordinator started, whichever comes first.
2. A group is never commanded active on a server while any online server of its policy reports it
   in a state other than Offline (Offline Failure included: a resource failed to stop there), or
   has not reported yet. A server that left the membership has lost all its groups (power-off
   semantics), except a group it reported in Offline Failure while its cluster service was
   stopping: a resource failed to stop there and may still be active, so the group is
   *stranded* and starts nowhere until that server reports it again, or the operator starts it
   with force (``clpgrp -s -f``) once the resource is released.
3. Auto-start groups start at cluster start on :func:`~clp.core.placement.target_server`; manual
   ones only by request.
4. When the owner goes down, each of its groups goes to ``target_server()`` (event FAILOVER).
5. Failback ``auto``: when a higher-priority server of the policy is online and free, the group is
   deactivated and activated there (FAILBACK). ``manual``: it stays.
6. Move: deactivate, then activate on the named server or the next by policy. Stop: deactivate and
   remember the operator stopped it (not restarted until started).
7. A group that a server asks to move away (its activation recovery gave up there: Online Failure;
   or a monitor's recovery chose a failover: Online) is deactivated there and activated on the
   next server of the policy that has not failed it in this round; when every online server
   failed it, it stays stopped with an alert. A round ends when the group is Online somewhere,
   or on an operator start.
8. An intent per group (want online or not, requested server and event) and at most one command
   in progress per group; a command with no visible effect is re-sent after ``resend`` seconds.

A server that becomes master waits ``settle`` seconds (a few report intervals) before its first
command, so that a command the old master sent just before it died shows in the target's report
first instead of being issued twice. Alone in the cluster it does not wait: a command to itself
from the old master was either taken before this server became master, and shows in its own
state, or is refused as not coming from the master.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clp.core.group_states import (
    GROUP_BUSY_STATES,
    GROUP_FREE_STATES,
    GROUP_STOPPED_STATES,
    GroupState,
)
from clp.core.group_types import (
    EVENTS,
    Answer,
    Command,
    GroupSpec,
    Intent,
    ServerReport,
)
from clp.core.operator_requests import OperatorRequests
from clp.core.placement import target_server

__all__ = ["EVENTS", "Answer", "Command", "Coordinator", "Intent", "ServerReport"]

G = GroupState

ACTIVE_AT_SYNC = (G.ONLINE, G.ONLINE_PENDING, G.ONLINE_FAILURE)


@dataclass
class _Pending:
    cmd: Command
    sent: float


class Coordinator(OperatorRequests):
    def __init__(self, me: str, servers: Sequence[str], groups: Sequence[GroupSpec],
                 sync_wait: float, now: float, resend: float = 30.0, settle: float = 0.0
                 ) -> None:
        self.me = me
        self.servers = list(servers)
        self.groups = {g.name: g for g in groups}
        self.sync_wait = sync_wait
        self.started = now
        self.resend = resend
        self.settle = settle
        self.master_since = now
        self.synced = False
        self.intents = {g.name: Intent() for g in groups}
        self.pending: dict[str, _Pending] = {}
        self.last_owner: dict[str, str | None] = {g.name: None for g in groups}
        self.reasons: dict[str, str] = {g.name: "" for g in groups}
        self.alerts: list[str] = []  # drained by the caller
        self.master: str | None = None
        self._online: list[str] = []  # so that at the first decision every server has joined
        self._leaving: set[str] = set()
        self._joined: dict[str, list[str]] = {}  # failback candidates: servers that came online
        self._where: dict[str, dict[str, GroupState]] = {g.name: {} for g in groups}
        self._restop: set[str] = set()  # Offline Failure groups the operator stopped again
        # group -> the server whose service stopped with it in Offline Failure (rule 2)
        self.stranded: dict[str, str] = {}

    # --- queries --------------------------------------------------------------------------

    def master_of(self, online: Sequence[str]) -> str | None:
        """The highest-priority online server whose cluster service is not stopping."""
        up = [s for s in self.servers if s in online]
        return next((s for s in up if s not in self._leaving), up[0] if up else None)

    def where(self, group: str) -> dict[str, GroupState]:
        """The last states of ``group`` on the online servers of its policy."""
        return dict(self._where[group])

    def owner(self, group: str) -> str | None:
        w = self._where[group]
        return next((s for s, st in w.items() if st not in GROUP_FREE_STATES
                     and st != G.UNKNOWN), None)

    def export_intents(self) -> dict[str, Any]:
        return {"synced": self.synced, "reasons": dict(self.reasons),
                "stranded": dict(self.stranded), "groups": {
            g: {"want": i.want, "server": i.server, "event": i.event, "stopped": i.stopped,
                "failed": sorted(i.failed), "avoid": sorted(i.avoid), "cause": i.cause}
            for g, i in self.intents.items()}}

    def import_intents(self, data: Mapping[str, Any]) -> None:
        """Copy the master's table (checked by :mod:`clp.clusterd.report_check` on receipt)."""
        self.synced = self.synced or bool(data.get("synced"))
        self.stranded = {  # the master's: it saw the stop, or a forced start ended it
            g: server for g, server in (data.get("stranded") or {}).items()
            if g in self.groups and server in self.servers and server not in self._online}
        for g, why in (data.get("reasons") or {}).items():
            if g in self.reasons and isinstance(why, str):
                self.reasons[g] = why
        for g, d in (data.get("groups") or {}).items():
            if g in self.intents and isinstance(d, dict):
                self.intents[g] = Intent(bool(d.get("want")), d.get("server"), d.get("event"),
                                         bool(d.get("stopped")), set(d.get("failed") or ()),
                                         str(d.get("cause") or ""), set(d.get("avoid") or ()))

    def forget_pending(self, group: str) -> None:
        """A command was refused by its target: decide the group again at the next tick."""
        self.pending.pop(group, None)

    # --- the decision ---------------------------------------------------------------------

    def decide(self, now: float, online: Sequence[str],
               reports: Mapping[str, ServerReport]) -> list[Command]:
        joined = [s for s in self.servers if s in online and s not in self._online]
        self._online = [s for s in self.servers if s in online]
        reports = {s: r for s, r in reports.items() if s in self._online}
        self._leaving = {s for s, r in reports.items() if r.leaving}
        master = self.master_of(self._online)
        if master != self.master:
            self.master, self.master_since = master, now
        if self.master != self.me:
            theirs = reports.get(self.master) if self.master else None
            if theirs is not None and theirs.intents is not None:
                self.import_intents(theirs.intents)
            self.pending.clear()
            self._joined.clear()
        else:
            for name, spec in self.groups.items():
                if spec.failback == "auto":
                    self._joined[name] = [s for s in self.servers if s in self._online and (
                        s in joined or s in self._joined.get(name, ()))]
        self._observe(reports)
        settling = now - self.master_since < self.settle and len(self._online) > 1
        if self.master != self.me or settling:
            return []  # a new master first lets the old master's last commands show in reports
        self._sync(now)
        active = self._active_map()
        out: list[Command] = []
        for name, spec in self.groups.items():
            cmd = self._decide_group(now, spec, reports, active)
            if cmd is not None:
                self.reasons[name] = cmd.reason
                self.pending[name] = _Pending(cmd, now)
                if cmd.kind == "activate":
                    active[name] = cmd.server
                out.append(cmd)
        return out

    def refresh(self, reports: Mapping[str, ServerReport]) -> None:
        """Take newer reports into account between decisions (before an operator request)."""
        reports = {s: r for s, r in reports.items() if s in self._online}
        self._leaving = {s for s, r in reports.items() if r.leaving}
        self._observe(reports)

    def _observe(self, reports: Mapping[str, ServerReport]) -> None:
        for name, spec in self.groups.items():
            self._where[name] = {
                s: (reports[s].groups.get(name, G.OFFLINE) if s in reports else G.UNKNOWN)
                for s in spec.servers if s in self._online}
            for s, st in self._where[name].items():
                if st == G.OFFLINE_FAILURE and s in self._leaving:
                    self.stranded[name] = s  # its service stops with a resource still up
                elif self.stranded.get(name) == s and s in reports and st != G.OFFLINE_FAILURE:
                    del self.stranded[name]  # it reports the group out of Offline Failure
            running = [s for s, st in self._where[name].items()
                       if st in (G.ONLINE, G.ONLINE_PENDING)]
            if running and self.last_owner[name] not in running:
                self.last_owner[name] = running[0]
            elif not self.intents[name].want and all(
                    st in GROUP_STOPPED_STATES for st in self._where[name].values()):
                self.last_owner[name] = None

    def _sync(self, now: float) -> None:
        if self.synced:
            return
        everyone = all(s in self._online for s in self.servers)
        if not everyone and now - self.started < self.sync_wait:
            return
        self.synced = True
        why = ("every server is online" if everyone
               else f"server sync wait ({self.sync_wait:g} s) ended")
        for name, spec in self.groups.items():
            intent = self.intents[name]
            if intent.stopped or intent.want:
                continue
            active = [s for s, st in self._where[name].items() if st in ACTIVE_AT_SYNC]
            if active:  # re-adopted (this service restarted): it runs on as it was
                intent.want = True
                intent.cause = self.reasons[name] = \
                    f"found active on {active[0]} at start: {why}"
            elif spec.start == "auto":
                intent.want, intent.event = True, "START"
                intent.cause = self.reasons[name] = f"cluster start: {why}"

    def _active_map(self) -> dict[str, str]:
        active = {}
        for name in self.groups:
            owner = self.owner(name)
            if owner is not None:
                active[name] = owner
            p = self.pending.get(name)
            if p is not None and p.cmd.kind == "activate":
                active[name] = p.cmd.server
        return active

    def _decide_group(self, now: float, spec: GroupSpec, reports: Mapping[str, ServerReport],
                      active: dict[str, str]) -> Command | None:
        name = spec.name
        where = self._where[name]
        if name in self.pending and not self._pending_done(now, name, where):
            p = self.pending[name]
            if now - p.sent < self.resend:
                return None
            return Command(p.cmd.kind, name, p.cmd.server, p.cmd.event,
                           f"{p.cmd.reason} (re-sent: no answer in {now - p.sent:.0f} s)")
        running = [s for s, st in where.items() if st not in GROUP_FREE_STATES
                   and st != G.UNKNOWN]
        unknown = [s for s, st in where.items() if st == G.UNKNOWN]
        if len(running) > 1:
            return self._extra(spec, running, where)
        stranded = self.stranded.get(name)
        if not running and stranded is not None and stranded not in self._online:
            self.reasons[name] = self._stranded(name, stranded)
            return None
        intent = self.intents[name]
        if not intent.want:
            if not self.synced:
                return None  # what is wanted is not known yet: nothing runs or stops on a guess
            if running and where[running[0]] == G.OFFLINE_FAILURE and name not in self._restop:
                self.reasons[name] = self._offline_failure(name, running[0])
                return None
            if running and where[running[0]] not in GROUP_BUSY_STATES:
                self._restop.discard(name)
                why = "stopped by the operator" if intent.stopped else "it is not to run"
                return Command("deactivate", name, running[0], intent.event or "STOP",
                               f"stop group {name} on {running[0]}: {why}")
            return None
        if running:
            return self._running(spec, running[0], where[running[0]], reports, active)
        if unknown:
            self.reasons[name] = f"waiting for the state of {name} on {', '.join(unknown)}"
            return None
        return self._place(spec, active)

    def _pending_done(self, now: float, name: str, where: Mapping[str, GroupState]) -> bool:
        """Whether the command in progress for ``name`` has finished (then it is forgotten)."""
        p = self.pending[name]
        st = where.get(p.cmd.server)
        if st is None:  # the server left
            done = True
        elif p.cmd.kind == "activate":
            done = st in (G.ONLINE, G.ONLINE_FAILURE)
            intent = self.intents[name]
            if st == G.ONLINE and intent.server in (None, p.cmd.server):  # not moved meanwhile
                intent.server = intent.event = None
                intent.cause = ""
                intent.failed.clear()
                intent.avoid.clear()
        else:
            done = st in GROUP_STOPPED_STATES
        if st in GROUP_BUSY_STATES:
            p.sent = now  # it is being worked on: no re-send while it progresses
        if done:
            del self.pending[name]
        return done

    @staticmethod
    def _stranded(name: str, server: str) -> str:
        return (f"group {name} was in Offline Failure on {server} when its cluster service "
                f"stopped (a resource failed to stop and may still be active there); it starts "
                f"nowhere until {server} is back, or the operator starts it with -f once the "
                f"resource is released")

    @staticmethod
    def _offline_failure(name: str, server: str) -> str:
        return (f"group {name} is in Offline Failure on {server} (a resource failed to stop); it "
                f"stays there until the operator stops it (clpgrp -t), or {server} goes down")

    def _extra(self, spec: GroupSpec, running: list[str],
               where: Mapping[str, GroupState]) -> Command | None:
        """Active on several servers (after a re-adoption): keep the one that last owned it (the
        others were started there without knowing), else the first Online; stop the others."""
        last = self.last_owner[spec.name]
        keep = last if last in running else \
            next((s for s in running if where[s] == G.ONLINE), running[0])
        for s in running:
            if s != keep and where[s] not in GROUP_BUSY_STATES:
                return Command("deactivate", spec.name, s, "RECOVER",
                                 f"stop group {spec.name} on {s}: it is also active on {keep}")
        return None

    def _running(self, spec: GroupSpec, server: str, state: GroupState,
                 reports: Mapping[str, ServerReport], active: dict[str, str]) -> Command | None:
        name, intent = spec.name, self.intents[spec.name]
        report = reports[server]
        if state in (G.ONLINE, G.ONLINE_FAILURE) and name in report.failover:
            monitor = report.failover_reasons.get(name)  # a monitor asked, with its reason
            (intent.avoid if monitor else intent.failed).add(server)
            intent.event, intent.server = "FAILOVER", None
            why = monitor or "its activation failed there"
            return Command("deactivate", name, server, "FAILOVER",
                             f"stop group {name} on {server}: {why}; it fails over")
        if state == G.ONLINE_FAILURE:
            self.reasons[name] = (f"group {name} is in Online Failure on {server} (final "
                                  f"action); it stays until the operator stops it")
            return None
        if state == G.OFFLINE_FAILURE:
            self.reasons[name] = self._offline_failure(name, server)
        if state != G.ONLINE:
            return None
        intent.failed.clear()
        intent.avoid.clear()
        if intent.server is not None and intent.server not in self._online:
            intent.server = intent.event = None
            intent.cause = ""
        if intent.server == server:
            intent.server = intent.event = None
            intent.cause = ""
        if intent.server is not None:
            event = intent.event or "MOVE"
            return Command("deactivate", name, server, event,
                             f"stop group {name} on {server}: {event.lower()} to {intent.server}")
        joined = [s for s in self._joined.get(name, ()) if s in self._online]
        self._joined[name] = []
        higher = [s for s in joined if s in spec.servers and s not in self._leaving
                  and spec.servers.index(s) < spec.servers.index(server)]
        if spec.failback == "auto" and higher:
            others = {g: s for g, s in active.items() if g != name}
            best, _ = target_server(spec, higher, others, self._exclusive())
            if best is not None:
                intent.server, intent.event = best, "FAILBACK"
                return Command("deactivate", name, server, "FAILBACK",
                                 f"stop group {name} on {server}: failback to {best}, which came "
                                 f"online and has a higher priority")
        return None

    def _exclusive(self) -> dict[str, str]:
        return {n: g.exclusive for n, g in self.groups.items()}

    def _place(self, spec: GroupSpec, active: dict[str, str]) -> Command | None:
        name, intent = spec.name, self.intents[spec.name]
        candidates = [s for s in self._online if s not in intent.failed | self._leaving]
        others = {g: s for g, s in active.items() if g != name}
        if intent.server is not None and intent.server in candidates:
            dest, why = intent.server, f"{intent.server} was requested"
        else:
            preferred = [s for s in candidates if s not in intent.avoid]
            dest, why = target_server(spec, preferred, others, self._exclusive())
            if dest is None and preferred != candidates:
                dest, why = target_server(spec, candidates, others, self._exclusive())
                if dest is not None:
                    why = (f"no other server can take it, so back to {dest}, which a monitor "
                           f"moved it from; {why}")
        if dest is None:
            in_policy = [s for s in spec.servers if s in self._online]
            if in_policy and all(s in intent.failed for s in in_policy):
                msg = (f"group {name} failed to start on every server ({', '.join(in_policy)}); "
                       f"it stays stopped")
                self.alerts.append(msg)
                intent.want, intent.server, intent.event = False, None, None
                why = msg
            self.reasons[name] = why
            return None
        owner = self.last_owner[name]
        event = intent.event or "START"
        if owner is not None and owner not in self._online:
            event = "FAILOVER"
            why = f"{owner} is down; {why}"
        elif owner is not None and owner in self._leaving:
            event = "FAILOVER"
            why = f"the cluster service of {owner} is stopping; {why}"
        elif event == "FAILOVER" and (intent.failed or intent.avoid):
            parts = [f"activation failed on {', '.join(sorted(intent.failed))}"] \
                if intent.failed else []
            if intent.avoid:
                parts.append(f"a monitor moved it from {', '.join(sorted(intent.avoid))}")
            why = f"{'; '.join(parts)}; {why}"
        elif event == "START" and intent.cause:
            why = f"{intent.cause}; {why}"
        return Command("activate", name, dest, event,
                         f"{event.lower()} group {name} to {dest}: {why}")
