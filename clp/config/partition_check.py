"""Warnings about configurations where the product's own rules allow a group to run twice.

The seed (chapter 2, network partition resolution) says so itself for these cases; clp follows
those rules, so it says it out loud instead (docs/network-partition.md has the details):

- ``ping`` resolution and no disk heartbeat between two servers: if every LAN path breaks while
  both still reach a ping target, each finds the other down and both fail over.
- ``ping`` resolution is ignored when its target was already failing before the loss: every
  server fails over then (the alert log warns as soon as a target stops answering).
- no resolution and no disk heartbeat, with groups holding a shared disk: losing every LAN path
  activates the disk on two servers.
- some servers use a resolver and others none: an isolated server without one goes on alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from clp.config.issues import ConfigIssue
from clp.config.rawdata import as_dict, as_list, interconnect_servers


def _members_of(item: Mapping[str, Any]) -> set[str]:
    return set(interconnect_servers(item))


SHARED_TYPES = ("disk", "volmgr", "nas")





def _disk_pairs(data: Mapping[str, Any]) -> set[frozenset[str]]:
    """Pairs of servers joined by a disk heartbeat (a path that is not the network)."""
    pairs: set[frozenset[str]] = set()
    for item in map(as_dict, as_list(data.get("interconnects"))):
        if item.get("type") == "disk":
            members = sorted(_members_of(item))
            pairs |= {frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1:]}
    return pairs


def _shared_groups(data: Mapping[str, Any]) -> list[str]:
    out = []
    for name, group in as_dict(data.get("groups")).items():
        types = [as_dict(r).get("type") for r in as_dict(as_dict(group).get("resources")).values()]
        if any(t in SHARED_TYPES for t in types):
            out.append(str(name))
    return out


def check_partition(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    servers = [str(s) for s in as_dict(data.get("servers"))]
    np = as_dict(data.get("network_partition"))
    resolvers = [as_dict(r) for r in as_list(np.get("resolvers"))]
    pairs = _disk_pairs(data)
    unjoined = [(a, b) for i, a in enumerate(servers) for b in servers[i + 1:]
                if frozenset((a, b)) not in pairs]
    for index, r in enumerate(resolvers):
        if r.get("type") != "ping":
            continue
        users = _members_of(r)
        exposed = [f"{a}/{b}" for a, b in unjoined if a in users and b in users]
        if exposed:
            yield ConfigIssue(
                f"network_partition.resolvers.{index}",
                f"ping resolution without a disk heartbeat between {', '.join(exposed)}: if "
                f"every LAN path breaks while both servers still reach the ping target, both "
                f"fail over and a group can run on two servers; a ping target that already "
                f"fails before the loss lets every server fail over (add a disk heartbeat)",
                severity="warning")
    used = set().union(*(_members_of(r) for r in resolvers)) if resolvers else set()
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
            f"no network partition resolution and no disk heartbeat between "
            f"{', '.join(f'{a}/{b}' for a, b in unjoined)}: if every LAN path breaks, "
            f"{', '.join(shared)} (shared disk) can be activated on two servers; add a disk "
            f"heartbeat or a ping/http resolver", severity="warning")
