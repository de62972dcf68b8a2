"""Checks of a peer's group ``report`` before anything of it is used.

A report comes from an authenticated peer, but a bug or a version mismatch there must not crash
this server's group manager nor mislead its coordinator. Each part is checked for its shape
(dicts and lists of the expected types), for names (configured servers, groups, resources) and
for values (group and resource states, events). An invalid part is dropped (an invalid group
state becomes Unknown, which holds the master back, never Offline), and every problem is
returned as a short sentence so that the caller logs it with the sender and counts it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from clp.core.group_states import GroupState, ResourceState
from clp.core.group_types import EVENTS
from clp.core.monitor_recovery import MonitorState

MONITOR_STATES = frozenset(s.value for s in MonitorState)


@dataclass
class CheckedReport:
    incarnation: int = 0
    groups: dict[str, GroupState] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    monitors: dict[str, str] = field(default_factory=dict)
    failover: frozenset[str] = frozenset()
    failover_reasons: dict[str, str] = field(default_factory=dict)
    leaving: bool = False
    intents: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (part, what is wrong)


@dataclass(frozen=True)
class Names:
    """What the configuration knows: a report may only name these."""

    servers: Collection[str]
    groups: Collection[str]
    resources: Collection[str]
    sender_groups: Collection[str]  # the groups whose policy names the sender
    monitors: Collection[str] = ()


def check_report(args: dict[str, Any], names: Names) -> CheckedReport:
    out = CheckedReport()
    inc = args.get("incarnation")
    if isinstance(inc, int) and not isinstance(inc, bool) and inc >= 0:
        out.incarnation = inc
    else:
        out.problems.append(("incarnation", f"not a non-negative integer: {inc!r}"))
    out.groups = _groups(args.get("groups"), names, out.problems)
    out.resources = _resources(args.get("resources"), names, out.problems)
    out.monitors = _monitors(args.get("monitors"), names, out.problems)
    failover = args.get("failover") or []
    if not _names_list(failover, names.groups):
        out.problems.append(("failover", f"not a list of configured groups: {failover!r}"))
    else:
        out.failover = frozenset(failover)
    out.failover_reasons = _reasons(args.get("failover_reasons"), out.failover, out.problems)
    leaving = args.get("leaving", False)
    if isinstance(leaving, bool):
        out.leaving = leaving
    else:
        out.problems.append(("leaving", f"not a boolean: {leaving!r}"))
    if args.get("intents") is not None:
        out.intents = _intents(args["intents"], names, out.problems)
    return out


MAX_REASON = 500


def _reasons(raw: Any, failover: frozenset[str], problems: list[tuple[str, str]]
             ) -> dict[str, str]:
    """Why each group asks to fail over: a short line per group that asks."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(("failover_reasons", f"not a mapping: {raw!r}"))
        return {}
    out = {}
    for g, why in raw.items():
        if g in failover and isinstance(why, str) and len(why) <= MAX_REASON \
                and "\n" not in why:
            out[g] = why
        else:
            problems.append(("failover_reasons", f"invalid reason for {g!r}: {why!r:.80}"))
    return out


def _groups(raw: Any, names: Names, problems: list[tuple[str, str]]) -> dict[str, GroupState]:
    if not isinstance(raw, dict):
        problems.append(("groups", f"not a mapping: {raw!r}; its groups taken as Unknown"))
        return {g: GroupState.UNKNOWN for g in names.sender_groups}
    out = {}
    for g, st in raw.items():
        if g not in names.groups:
            problems.append(("groups", f"unknown group {g!r}"))
            continue
        try:
            out[g] = GroupState(st)
        except (ValueError, TypeError):
            problems.append(("groups", f"invalid state {st!r} of group {g}; taken as Unknown"))
            out[g] = GroupState.UNKNOWN
    return out


def _resources(raw: Any, names: Names, problems: list[tuple[str, str]]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(("resources", f"not a mapping: {raw!r}"))
        return {}
    out = {}
    for r, st in raw.items():
        if r not in names.resources:
            problems.append(("resources", f"unknown resource {r!r}"))
            continue
        try:
            out[r] = ResourceState(st).value
        except (ValueError, TypeError):
            problems.append(("resources", f"invalid state {st!r} of resource {r}"))
    return out


def _monitors(raw: Any, names: Names, problems: list[tuple[str, str]]) -> dict[str, str]:
    """The sender's monitor states: configured monitors, the product's state words."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(("monitors", f"not a mapping: {raw!r:.80}"))
        return {}
    out = {}
    for m, st in raw.items():
        if m not in names.monitors:
            problems.append(("monitors", f"unknown monitor {m!r:.40}"))
        elif st not in MONITOR_STATES:
            problems.append(("monitors", f"invalid state {st!r:.40} of monitor {m}"))
        else:
            out[m] = st
    return out


def _intents(raw: Any, names: Names, problems: list[tuple[str, str]]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.append(("intents", f"not a mapping: {raw!r}"))
        return None
    out: dict[str, Any] = {"synced": raw.get("synced") is True, "reasons": {}, "groups": {},
                           "stranded": {}}
    stranded = raw.get("stranded") or {}
    if not isinstance(stranded, dict):
        problems.append(("stranded", f"not a mapping: {stranded!r}"))
        stranded = {}
    for g, server in stranded.items():
        if g in names.groups and server in names.servers:
            out["stranded"][g] = server
        else:
            problems.append(("stranded", f"invalid stranded group {g!r} on {server!r}"))
    reasons = raw.get("reasons") or {}
    if not isinstance(reasons, dict):
        problems.append(("reasons", f"not a mapping: {reasons!r}"))
        reasons = {}
    for g, why in reasons.items():
        if g in names.groups and isinstance(why, str):
            out["reasons"][g] = why
        else:
            problems.append(("reasons", f"invalid reason for {g!r}: {why!r}"))
    groups = raw.get("groups") or {}
    if not isinstance(groups, dict):
        problems.append(("intents", f"groups is not a mapping: {groups!r}"))
        groups = {}
    for g, d in groups.items():
        wrong = _intent_problem(g, d, names)
        if wrong:
            problems.append(("intents", f"intent of group {g!r} dropped: {wrong}"))
        else:
            out["groups"][g] = d
    return out


def _intent_problem(group: Any, d: Any, names: Names) -> str:
    if group not in names.groups:
        return "unknown group"
    if not isinstance(d, dict):
        return f"not a mapping: {d!r}"
    for key in ("want", "stopped"):
        if not isinstance(d.get(key, False), bool):
            return f"{key} is not a boolean: {d.get(key)!r}"
    if d.get("server") is not None and d.get("server") not in names.servers:
        return f"unknown server {d.get('server')!r}"
    if d.get("event") is not None and d.get("event") not in EVENTS:
        return f"unknown event {d.get('event')!r}"
    for key in ("failed", "avoid"):
        servers = d.get(key) or []
        if not _names_list(servers, names.servers):
            return f"{key} is not a list of configured servers: {servers!r}"
    if not isinstance(d.get("cause", ""), str):
        return f"cause is not a string: {d.get('cause')!r}"
    return ""


def _names_list(raw: Any, known: Collection[str]) -> bool:
    return isinstance(raw, list) and all(isinstance(x, str) and x in known for x in raw)
