"""Warnings about configurations where the product's own rules allow a group to run twice.

The seed (chapter 2, network partition resolution) says so itself for these cases; clp follows
those rules, so it says it out loud instead (docs/network-partition.md has the details). A disk
or COM heartbeat does not go through the network, so two servers it joins are never both "down"
to each other when only the network breaks; the cases below are about servers it does not join:

- ``ping`` or ``http`` resolution: if every LAN path breaks while both servers still reach the
  target, each finds the other down and both fail over.
- ``ping`` resolution is ignored when its target was already failing before the loss: every
  server fails over then (the alert log warns as soon as a target stops answering).
- no resolution, with groups holding a shared disk: losing every LAN path activates the disk on
  two servers.
- some servers use a resolver and others none: an isolated server without one goes on alone.

``witness`` resolution (arbitration) allows none of these, on its conditions, which are errors
when broken: one witness resolver, used by every server (a server outside it would not stop
when cut off, and two arbiters could each pick a side). A ping or HTTP resolver beside it is
allowed (a server then stops when either says it is cut off) and needs no warning. Without a
kernel watchdog (userw ``softdog`` / ``ipmi``) a hung holder is not fenced before a takeover:
a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from clp.config.fencing import WATCHDOG_METHODS
from clp.config.issues import ConfigIssue
from clp.config.rawdata import as_dict, as_list, interconnect_servers

SHARED_TYPES = ("disk", "volmgr", "nas")
OFF_NETWORK = ("disk", "com")  # heartbeat paths that do not go through the network


def _off_network_pairs(data: Mapping[str, Any]) -> set[frozenset[str]]:
    """Pairs of servers joined by a disk or COM heartbeat."""
    pairs: set[frozenset[str]] = set()
    for item in map(as_dict, as_list(data.get("interconnects"))):
        if item.get("type") in OFF_NETWORK:
            members = sorted(set(interconnect_servers(item)))
            pairs |= {frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1:]}
    return pairs


def _shared_groups(data: Mapping[str, Any]) -> list[str]:
    out = []
    for name, group in as_dict(data.get("groups")).items():
        types = [as_dict(r).get("type") for r in as_dict(as_dict(group).get("resources")).values()]
        if any(t in SHARED_TYPES for t in types):
            out.append(str(name))
    return out


def _watched(data: Mapping[str, Any], servers: list[str]) -> set[str]:
    """Servers a userw monitor with a kernel watchdog runs on (all, when it names none)."""
    out: set[str] = set()
    for m in map(as_dict, as_dict(data.get("monitors")).values()):
        if m.get("type") == "userw" and m.get("method") in WATCHDOG_METHODS:
            named = [str(s) for s in as_list(m.get("servers"))]
            out |= set(named or servers)
    return out


def _check_arbitration(data: Mapping[str, Any], servers: list[str],
                       resolvers: list[dict[str, Any]]) -> Iterator[ConfigIssue]:
    witnesses = [i for i, r in enumerate(resolvers) if r.get("type") == "witness"]
    for extra in witnesses[1:]:
        yield ConfigIssue(
            f"network_partition.resolvers.{extra}",
            "witness arbitration takes one witness resolver: with two, each witness could "
            "pick another side and both sides would stop")
    used = set(interconnect_servers(resolvers[witnesses[0]]))
    outside = [s for s in servers if s not in used]
    if outside:
        yield ConfigIssue(
            f"network_partition.resolvers.{witnesses[0]}.servers",
            f"witness arbitration needs every server: {', '.join(outside)} would go on "
            f"running its groups when cut off")
    unwatched = [s for s in servers if s not in _watched(data, servers)]
    if unwatched:
        yield ConfigIssue(
            f"network_partition.resolvers.{witnesses[0]}",
            f"{', '.join(unwatched)} run{'s' if len(unwatched) == 1 else ''} no userw monitor "
            f"with a kernel watchdog (method softdog or ipmi): a hung server keeps its "
            f"addresses and disks while its groups start elsewhere, which arbitration cannot "
            f"prevent", severity="warning")


def check_partition(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    servers = [str(s) for s in as_dict(data.get("servers"))]
    np = as_dict(data.get("network_partition"))
    resolvers = [as_dict(r) for r in as_list(np.get("resolvers"))]
    if any(r.get("type") == "witness" for r in resolvers):
        yield from _check_arbitration(data, servers, resolvers)
        return
    pairs = _off_network_pairs(data)
    unjoined = [(a, b) for i, a in enumerate(servers) for b in servers[i + 1:]
                if frozenset((a, b)) not in pairs]
    for index, r in enumerate(resolvers):
        users = set(interconnect_servers(r))
        exposed = [f"{a}/{b}" for a, b in unjoined if a in users and b in users]
        if not exposed:
            continue
        kind = "ping target" if r.get("type") == "ping" else "web server"
        failing = (", and a ping target that already fails before the loss lets every server "
                   "fail over" if r.get("type") == "ping" else "")
        yield ConfigIssue(
            f"network_partition.resolvers.{index}",
            f"{r.get('type')} resolution without a disk or COM heartbeat between "
            f"{', '.join(exposed)}: if every LAN path breaks while both servers still reach the "
            f"{kind}, both fail over and a group can run on two servers{failing} (add a disk "
            f"heartbeat)", severity="warning")
    used = set().union(*(interconnect_servers(r) for r in resolvers)) if resolvers else set()
    if resolvers:
        alone = [s for s in servers if s not in used]
        if alone:
            yield ConfigIssue(
                "network_partition.resolvers",
                f"{', '.join(alone)} use{'s' if len(alone) == 1 else ''} no network partition "
                f"resolution while other servers do: isolated, such a server goes on running its "
                f"groups", severity="warning")
        return
    shared = _shared_groups(data)
    if shared and unjoined:
        yield ConfigIssue(
            "network_partition",
            f"no network partition resolution and no disk or COM heartbeat between "
            f"{', '.join(f'{a}/{b}' for a, b in unjoined)}: if every LAN path breaks, "
            f"{', '.join(shared)} (shared disk) can be activated on two servers; add a disk "
            f"heartbeat", severity="warning")
