"""Recorded group scenarios (Pacemaker's crm_simulate style): input, events, expected decisions.

Each ``scenarios/*.yaml`` holds ``servers``, ``groups`` (as in clp.conf, resources are dummies),
optional ``sync_wait``, ``boot`` ({server: time}, default 0) and ``until``; ``events`` ``[{at,
crash|boot: server}, {at, op: start|stop|move, group, server?}, {at, fail: {server, resource}},
{at, heal: {server, resource}}]`` (``fail`` with ``op: stop`` makes the stop fail); and
``expect``, an ordered list that must appear in that order in the run's timeline of commands
(``kind: activate|deactivate``, with ``group``, ``server``, ``event``), recovery actions
(``kind: action``, with ``server``, ``action``) and alerts (``kind: alert``). Every item may
carry ``reason_contains``, ``after`` and ``before`` (times).
``final`` maps a group to the server it must be Online on at the end (null: nowhere), and
``reasons`` a group to text its last reason on the master must contain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sim.groupsim import GroupSim, make_group

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))


def timeline(sim: GroupSim) -> list[dict[str, Any]]:
    out = [{"t": r.t, "kind": r.cmd.kind, "group": r.cmd.group, "server": r.cmd.server,
            "event": r.cmd.event, "reason": r.cmd.reason} for r in sim.log]
    out += [{"t": t, "kind": "action", "server": s, "action": a, "reason": why,
             "group": why.split()[0]} for t, s, a, why in sim.actions]
    out += [{"t": t, "kind": "alert", "reason": a} for t, a in sim.alerts]
    order = {"action": 0, "activate": 1, "deactivate": 1, "alert": 2}  # as within one tick
    return sorted(out, key=lambda e: (e["t"], order[e["kind"]]))


def matches(entry: dict[str, Any], want: dict[str, Any]) -> bool:
    for k, v in want.items():
        if k == "reason_contains":
            if v not in entry["reason"]:
                return False
        elif k == "after":
            if entry["t"] < v:
                return False
        elif k == "before":
            if entry["t"] >= v:
                return False
        elif k == "group" and entry["kind"] == "action":
            continue
        elif entry.get(k) != v:
            return False
    return True


def play(spec: dict[str, Any]) -> GroupSim:
    groups = [make_group(g["name"], g["servers"], g.get("start", "auto"),
                         g.get("failback", "manual"), str(g.get("exclusive", "off")),
                         g.get("resources")) for g in spec["groups"]]
    sim = GroupSim(spec["servers"], groups, sync_wait=spec.get("sync_wait", 10))
    boot = {s: spec.get("boot", {}).get(s, 0) for s in spec["servers"]}
    events = [{"at": t, "boot": s} for s, t in boot.items()] + spec.get("events", [])
    for ev in sorted(events, key=lambda e: e["at"]):
        sim.run_until(ev["at"])
        if "boot" in ev:
            sim.boot(ev["boot"])
        elif "crash" in ev:
            sim.crash(ev["crash"])
        elif "fail" in ev:
            failing = sim.fail_stop if ev["fail"].get("op") == "stop" else sim.fail
            failing.add((ev["fail"]["server"], ev["fail"]["resource"]))
        elif "heal" in ev:
            sim.fail.discard((ev["heal"]["server"], ev["heal"]["resource"]))
            sim.fail_stop.discard((ev["heal"]["server"], ev["heal"]["resource"]))
        else:
            sim.request(ev["op"], ev["group"], ev.get("server"))
    sim.run_until(spec.get("until", 60))
    return sim


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())
    sim = play(spec)
    line = timeline(sim)
    text = "\n".join(f"{e['t']:4} {e['kind']:10} {e.get('server', '')} {e.get('event', '')} "
                     f"{e['reason']}" for e in line)
    i = 0
    for want in spec["expect"]:
        while i < len(line) and not matches(line[i], want):
            i += 1
        assert i < len(line), f"expected {want} (in order) in:\n{text}"
        i += 1
    master = sim.nodes[sorted(sim.nodes, key=spec["servers"].index)[0]].coord
    for group, server in (spec.get("final") or {}).items():
        assert sim.online_on(group) == ([server] if server else []), text
    for group, text_in in (spec.get("reasons") or {}).items():
        assert text_in in master.reasons[group], master.reasons[group]


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 6
