"""The CLP-CLUSTER-MIB objects (``mib/CLP-CLUSTER-MIB.txt``) as a sorted tree, from the status
document of ``clpstat --json``: pure, so every row and every edge of the walk order is tested
without snmpd.

Each value is ``(type, value)`` with the type word of net-snmp's pass protocol: ``integer``
(enumerations, TruthValue), ``gauge`` (Unsigned32: the same encoding) or ``string`` (UTF-8).
The state words are clpstat's own (:mod:`clp.cli.statviews`); the enumerations are the MIB's
textual conventions, a word the MIB does not know giving the TC's ``unknown``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from clp.cli.statviews import PATH_TYPES, path_word, server_state
from clp.snmp.oids import OBJECTS

Oid = tuple[int, ...]
Value = tuple[str, int | str]
STRING, INTEGER, GAUGE = "string", "integer", "gauge"
ROOT: Oid = tuple(int(x) for x in OBJECTS.split("."))
MAX_TEXT = 255  # octets: ClpUtf8String
MAX_GAUGE = 2**32 - 1
TRUE, FALSE = 1, 2  # TruthValue

# the textual conventions: clpstat's word -> the MIB's number
CLUSTER_STATES = {"Running": 1, "Suspended": 2, "Stopped": 3, "Unknown": 4}
SERVER_STATES = {"Online": 1, "Offline": 2, "Caution": 3, "Suspension": 4, "Unknown": 5}
HEARTBEAT_STATES = {"Normal": 1, "Error": 2, "Unused": 3, "Unknown": 4}
HEARTBEAT_KINDS = {"lan": 1, "disk": 2, "com": 3, "witness": 4}
HEARTBEAT_OTHER = 5
ACTIVATION_STATES = {"Online": 1, "Offline": 2, "Online Pending": 3, "Offline Pending": 4,
                     "Online Failure": 5, "Offline Failure": 6, "Unknown": 7}
MONITOR_STATES = {"Normal": 1, "Caution": 2, "Error": 3, "Offline": 4, "Suspend": 5,
                  "Online Pending": 6, "Unknown": 7}

# the MIB's objects: name -> (OID under clpObjects, type); a table's columns sit under
# (table, 1, column) and are followed by the row's index
CLUSTER = 1
SERVER_TABLE, HEARTBEAT_TABLE, GROUP_TABLE = 2, 3, 4
RESOURCE_TABLE, MONITOR_TABLE, MONITOR_SERVER_TABLE = 5, 6, 7
COLUMNS: dict[str, tuple[Oid, str]] = {
    "clpClusterName": ((CLUSTER, 1), STRING),
    "clpClusterStatus": ((CLUSTER, 2), INTEGER),
    "clpClusterStatusText": ((CLUSTER, 3), STRING),
    "clpClusterStatusDetail": ((CLUSTER, 4), STRING),
    "clpClusterNumberOfServers": ((CLUSTER, 5), GAUGE),
    "clpClusterLocalServer": ((CLUSTER, 6), STRING),
    "clpClusterMasterServer": ((CLUSTER, 7), STRING),
    "clpClusterHeartbeatInterval": ((CLUSTER, 8), GAUGE),
    "clpClusterHeartbeatTimeout": ((CLUSTER, 9), GAUGE),
    "clpClusterNumberOfGroups": ((CLUSTER, 10), GAUGE),
    "clpClusterNumberOfMonitors": ((CLUSTER, 11), GAUGE),
    "clpClusterStatusAge": ((CLUSTER, 12), GAUGE),
    "clpServerName": ((SERVER_TABLE, 1, 2), STRING),
    "clpServerStatus": ((SERVER_TABLE, 1, 3), INTEGER),
    "clpServerStatusText": ((SERVER_TABLE, 1, 4), STRING),
    "clpServerIsLocal": ((SERVER_TABLE, 1, 5), INTEGER),
    "clpServerIsMaster": ((SERVER_TABLE, 1, 6), INTEGER),
    "clpHeartbeatName": ((HEARTBEAT_TABLE, 1, 2), STRING),
    "clpHeartbeatType": ((HEARTBEAT_TABLE, 1, 3), INTEGER),
    "clpHeartbeatTypeText": ((HEARTBEAT_TABLE, 1, 4), STRING),
    "clpHeartbeatStatus": ((HEARTBEAT_TABLE, 1, 5), INTEGER),
    "clpHeartbeatStatusText": ((HEARTBEAT_TABLE, 1, 6), STRING),
    "clpGroupName": ((GROUP_TABLE, 1, 2), STRING),
    "clpGroupStatus": ((GROUP_TABLE, 1, 3), INTEGER),
    "clpGroupStatusText": ((GROUP_TABLE, 1, 4), STRING),
    "clpGroupCurrentServer": ((GROUP_TABLE, 1, 5), STRING),
    "clpGroupCurrentServerIndex": ((GROUP_TABLE, 1, 6), GAUGE),
    "clpGroupNumberOfResources": ((GROUP_TABLE, 1, 7), GAUGE),
    "clpResourceName": ((RESOURCE_TABLE, 1, 2), STRING),
    "clpResourceGroupName": ((RESOURCE_TABLE, 1, 3), STRING),
    "clpResourceType": ((RESOURCE_TABLE, 1, 4), STRING),
    "clpResourceStatus": ((RESOURCE_TABLE, 1, 5), INTEGER),
    "clpResourceStatusText": ((RESOURCE_TABLE, 1, 6), STRING),
    "clpMonitorName": ((MONITOR_TABLE, 1, 2), STRING),
    "clpMonitorType": ((MONITOR_TABLE, 1, 3), STRING),
    "clpMonitorStatus": ((MONITOR_TABLE, 1, 4), INTEGER),
    "clpMonitorStatusText": ((MONITOR_TABLE, 1, 5), STRING),
    "clpMonitorTarget": ((MONITOR_TABLE, 1, 6), STRING),
    "clpMonitorServerStatus": ((MONITOR_SERVER_TABLE, 1, 1), INTEGER),
    "clpMonitorServerStatusText": ((MONITOR_SERVER_TABLE, 1, 2), STRING),
}


def at_name(name: str, *index: int) -> Oid:
    """The instance of the MIB object ``name``: a scalar's ``.0``, or the column's row
    ``index``."""
    at, _ = COLUMNS[name]
    return ROOT + at + (index or (0,))


def text(value: Any) -> str:
    """A ClpUtf8String: one line (the pass protocol is line based), at most 255 octets of
    UTF-8, cut at a character boundary."""
    line = " ".join(str(value).splitlines()) if value is not None else ""
    raw = line.encode("utf-8", "replace")[:MAX_TEXT]
    return raw.decode("utf-8", "ignore")


def gauge(value: float) -> int:
    return min(MAX_GAUGE, max(0, int(value)))


@dataclass(frozen=True)
class Tree:
    """The objects in SNMP order: numeric, a prefix before what it prefixes (tuple order)."""

    values: Mapping[Oid, Value]
    oids: list[Oid] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "oids", sorted(self.values))

    def get(self, oid: Oid) -> Value | None:
        return self.values.get(oid)

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        """The first object after ``oid`` (which need not exist), None past the last."""
        i = bisect.bisect_right(self.oids, oid)
        if i == len(self.oids):
            return None
        found = self.oids[i]
        return found, self.values[found]

    def __len__(self) -> int:
        return len(self.oids)


class _Builder:
    def __init__(self) -> None:
        self.values: dict[Oid, Value] = {}

    def put(self, name: str, index: Iterable[int], value: int | str) -> None:
        at, kind = COLUMNS[name]
        self.values[ROOT + at + tuple(index)] = (kind, text(value) if kind == STRING else value)

    def row(self, index: Iterable[int], **columns: int | str) -> None:
        index = tuple(index)
        for name, value in columns.items():
            self.put(name, index, value)


def from_outage(status: str, detail: str, cluster: str = "") -> Tree:
    """The tree when there is no status to show: the cluster scalars say why, the tables are
    empty. ``status``: Stopped or Unknown."""
    b = _Builder()
    b.row((0,), clpClusterName=cluster, clpClusterStatus=CLUSTER_STATES[status],
          clpClusterStatusText=status, clpClusterStatusDetail=detail,
          clpClusterNumberOfServers=0, clpClusterLocalServer="", clpClusterMasterServer="",
          clpClusterHeartbeatInterval=0, clpClusterHeartbeatTimeout=0,
          clpClusterNumberOfGroups=0, clpClusterNumberOfMonitors=0, clpClusterStatusAge=0)
    return Tree(b.values)


def from_status(doc: Mapping[str, Any]) -> Tree:
    """The tree of a status document (:func:`clp.cli.clpstat.load_local`)."""
    b = _Builder()
    _cluster(b, doc)
    servers = list(doc["servers"])
    for i, server in enumerate(servers, 1):
        word = server_state(doc, server)
        b.row((i,), clpServerName=server, clpServerStatus=SERVER_STATES.get(word, 5),
              clpServerStatusText=word, clpServerIsLocal=_truth(server == doc.get("me")),
              clpServerIsMaster=_truth(server == doc.get("master")))
        for p, path in enumerate(doc.get("paths", []), 1):
            state = path_word(doc, server, path["name"])
            b.row((i, p), clpHeartbeatName=path["name"],
                  clpHeartbeatType=HEARTBEAT_KINDS.get(path["type"], HEARTBEAT_OTHER),
                  clpHeartbeatTypeText=PATH_TYPES.get(path["type"], path["type"]),
                  clpHeartbeatStatus=HEARTBEAT_STATES.get(state, 4),
                  clpHeartbeatStatusText=state)
    _groups(b, doc.get("groups") or {}, servers)
    _monitors(b, doc.get("monitors") or {}, servers)
    return Tree(b.values)


def _cluster(b: _Builder, doc: Mapping[str, Any]) -> None:
    status = "Suspended" if doc.get("suspended") else "Running"
    beat = doc.get("heartbeat") or {}
    timeout = (doc.get("membership") or {}).get("timeout", beat.get("timeout", 0))
    b.row((0,), clpClusterName=doc["cluster"], clpClusterStatus=CLUSTER_STATES[status],
          clpClusterStatusText=status, clpClusterStatusDetail="",
          clpClusterNumberOfServers=len(doc["servers"]),
          clpClusterLocalServer=doc.get("me") or "", clpClusterMasterServer=doc.get("master") or "",
          clpClusterHeartbeatInterval=gauge(beat.get("interval", 0) * 1000),
          clpClusterHeartbeatTimeout=gauge(timeout * 1000),
          clpClusterNumberOfGroups=len(doc.get("groups") or {}),
          clpClusterNumberOfMonitors=len(doc.get("monitors") or {}),
          clpClusterStatusAge=gauge(doc.get("status_age", 0) * 1000))


def _groups(b: _Builder, groups: Mapping[str, Any], servers: list[str]) -> None:
    for g, (name, group) in enumerate(groups.items(), 1):
        word = group.get("state", "Unknown")
        current = group.get("server") or ""
        resources = group.get("resources") or {}
        b.row((g,), clpGroupName=name, clpGroupStatus=ACTIVATION_STATES.get(word, 7),
              clpGroupStatusText=word, clpGroupCurrentServer=current,
              clpGroupCurrentServerIndex=servers.index(current) + 1 if current in servers else 0,
              clpGroupNumberOfResources=len(resources))
        for r, (rname, res) in enumerate(resources.items(), 1):
            word = res.get("state", "Unknown")
            b.row((g, r), clpResourceName=rname, clpResourceGroupName=name,
                  clpResourceType=res.get("type") or "",
                  clpResourceStatus=ACTIVATION_STATES.get(word, 7), clpResourceStatusText=word)


def _monitors(b: _Builder, monitors: Mapping[str, Any], servers: list[str]) -> None:
    for m, (name, mon) in enumerate(monitors.items(), 1):
        word = mon.get("state", "Unknown")
        b.row((m,), clpMonitorName=name, clpMonitorType=mon.get("type") or "",
              clpMonitorStatus=MONITOR_STATES.get(word, 7), clpMonitorStatusText=word,
              clpMonitorTarget=mon.get("target") or "")
        on = mon.get("servers") or {}
        for s, server in enumerate(servers, 1):
            if server in on:
                b.row((m, s), clpMonitorServerStatus=MONITOR_STATES.get(on[server], 7),
                      clpMonitorServerStatusText=on[server])


def _truth(flag: bool) -> int:
    return TRUE if flag else FALSE


def walk(tree: Tree, start: Oid = ROOT) -> Iterator[tuple[Oid, Value]]:
    """Every object after ``start`` by successive getnext, as a manager walks: what the
    order of :meth:`Tree.next` gives, bounded by the tree's size."""
    at = start
    for _ in range(len(tree)):
        found = tree.next(at)
        if found is None:
            return
        at = found[0]
        yield found
