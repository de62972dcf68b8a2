"""The status views of ``clpstat`` in the product's layouts, from the status document.

- the summary (``clpstat``, ``-s``, ``--local``): the [V] layout exactly: the header and footer
  rules, a 16-character name field padded with dots, a 17-character status column, the heartbeat
  and network-partition resources under each server, ``current : None`` for a group that runs
  nowhere, the monitors under ``<monitor>``; names longer than the field are cut unless
  ``--long``;
- ``-g`` the group map, ``-m`` the monitors per server, ``-n`` the heartbeat matrix, ``-p`` the
  network-partition matrix.

State words are the product's: a server is Online, Offline, Caution (a heartbeat path to it is
in error), Suspension (the cluster is suspended) or Unknown; a heartbeat resource Normal, Error,
Unused (the path does not join that server) or Unknown. clp's extras (the timeout ratio, the
partition verdict, every group's last decision, monitor reasons) appear with ``--detail``.
Standard library only: clpstat must start fast.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing is not imported: see clp.state.layout
if TYPE_CHECKING:
    from typing import Any

RULE = " " + "=" * 69
PATH_TYPES = {"lan": "LAN Heartbeat", "disk": "Disk Heartbeat", "com": "COM Heartbeat",
              "witness": "Witness Heartbeat"}
NP_TYPES = {"ping": "ping resolution", "http": "http resolution"}
PATH_WORDS = {"Not Used": "Unused"}
FIELD, STATUS = 16, 17


# '=' before the title of each header as the product prints it ([V] samples: CLUSTER STATUS
# 24, GROUPMAP INFORMATION 22); the others centred; every header is 70 columns
HEADER_LEFT = {"CLUSTER STATUS": 24, "GROUPMAP INFORMATION": 22}


def header(title: str) -> str:
    """`` ========================  CLUSTER STATUS  ===========================``."""
    inner = f"  {title}  "
    left = HEADER_LEFT.get(title, (69 - len(inner)) // 2)
    return " " + "=" * left + inner + "=" * (69 - left - len(inner))


def _name(name: str, long: bool) -> str:
    return name if long else name[:FIELD]


def _dotted(name: str, long: bool) -> str:
    """``server1 .........``: the name, a space and dots up to 17 columns."""
    shown = _name(name, long)
    return f"{shown} {'.' * max(0, FIELD - len(shown))}"


def server_state(doc: dict[str, Any], server: str) -> str:
    entry = doc["membership"]["servers"][server]
    state = entry["state"]
    if doc.get("suspended") and state == "Online":  # one that is down still says so
        return "Suspension"
    if state == "Online" and any(p.get("state") == "Error" for p in entry["paths"].values()):
        return "Caution"
    return state


def path_word(doc: dict[str, Any], server: str, path: str) -> str:
    state = doc["membership"]["servers"][server]["paths"].get(path, {}).get("state", "Unknown")
    return PATH_WORDS.get(state, state)


def np_word(doc: dict[str, Any], server: str, name: str) -> str:
    """A resolver's state as ``server`` sees it: known for this server only."""
    if server != doc["me"]:
        return "-"
    r = (doc.get("partition") or {}).get("resolvers", {}).get(name) or {}
    return "Error" if r.get("failing") else ("Normal" if r.get("ok") else "Unknown")


def config_line(doc: dict[str, Any]) -> list[str]:
    """``--detail``: the configuration generation the cluster service runs, and the one on disk
    if it differs (pushed since it started: in force at its next start). Not in the product's
    layout, so not in the plain summary (a script parsing it sees the product's lines)."""
    running, disk = doc.get("config"), doc.get("config_on_disk")
    if not running:
        return []
    text = f"  Config  : generation {running['generation']}"
    if disk and disk.get("generation") != running["generation"]:
        text += f" (generation {disk['generation']} on disk: in force at the next start)"
    return [text]


def summary(doc: dict[str, Any], detail: bool = False, long: bool = False) -> str:
    lines = [header("CLUSTER STATUS"), f"  Cluster : {doc['cluster']}"]
    lines += config_line(doc) if detail else []
    if detail and doc["membership"].get("ratio", 1) != 1:
        lines.append(f"  Timeout ratio : {doc['membership']['ratio']:g} (heartbeat timeout "
                     f"{doc['membership']['timeout']:g} s)")
    local = doc.get("counters", {}).get("paths", {})
    lines.append("  <server>")
    for server in doc["servers"]:
        mark = "*" if server == doc["me"] else " "
        lines.append(f"   {mark}{_dotted(server, long)}: {server_state(doc, server)}")
        for p in doc["paths"]:
            text = (f"      {_name(p['name'], long):<15}: {path_word(doc, server, p['name']):<17}"
                    f"{PATH_TYPES.get(p['type'], p['type'])}")
            entry = doc["membership"]["servers"][server]["paths"].get(p["name"], {})
            if detail and entry.get("last_rx_time"):
                text += f"  last rx {time.time() - entry['last_rx_time']:.1f} s ago"
            error = local.get(p["name"], {}).get("local_error")
            if detail and server == doc["me"] and error:
                text += f"  ({error})"
            lines.append(text.rstrip())
        for r in doc.get("resolvers", []):
            if server in r["servers"]:
                kind = NP_TYPES.get(r["type"], r["type"])
                lines.append(f"      {_name(r['name'], long):<15}: "
                             f"{np_word(doc, server, r['name']):<17}{kind}")
    if detail:
        lines += _partition_detail(doc.get("partition") or {})
    lines.append("  <group>")
    for name, group in doc.get("groups", {}).items():
        lines.append(f"    {_dotted(name, long)}: {group.get('state', 'Unknown')}")
        lines.append(f"      {'current':<15}: {group.get('server') or 'None'}")
        for rname, res in group.get("resources", {}).items():
            lines.append(f"      {_name(rname, long):<15}: {res.get('state', 'Unknown')}")
        if detail and group.get("reason"):
            lines.append(f"      {'last decision':<15}: {group['reason']}")
    lines.append("  <monitor>")
    for name, mon in doc.get("monitors", {}).items():
        text = f"    {_name(name, long):<17}: {mon.get('state', 'Unknown')}"
        reason = (mon.get("local") or {}).get("reason")
        if detail and reason:
            text += f"  ({reason})"
        lines.append(text)
    lines.append(RULE)
    return "\n".join(lines)


def _partition_detail(np: dict[str, Any]) -> list[str]:
    lines = [f"  {'partition action':<17}: {str(np.get('action', '')).replace('_', ' ')}"]
    if np.get("pending"):
        lines.append(f"  {'resolving':<17}: {', '.join(np['pending'])}")
    if np.get("verdict"):
        lines.append(f"  {'stopping':<17}: {np['verdict']['reason']}")
    return lines


def _server_index(doc: dict[str, Any]) -> list[str]:
    """``*server0 : server1`` lines: the product numbers the servers from 0."""
    return [f"  {'*' if s == doc['me'] else ' '}server{i} : {s}"
            for i, s in enumerate(doc["servers"])]


def _mark(doc: dict[str, Any], server: str) -> str:
    state = server_state(doc, server)
    return {"Online": "o", "Caution": "o", "Offline": "x", "Suspension": "s"}.get(state, "-")


GROUP_MARKS = {"Online": "o", "Online Pending": "p", "Offline Pending": "p",
               "Online Failure": "e", "Offline Failure": "e"}


def group_map(doc: dict[str, Any]) -> str:
    """``clpstat -g``: which group runs on which server (``failover1[o]``: o Online, e a failure
    state, p starting or stopping)."""
    lines = [header("GROUPMAP INFORMATION"), f"  Cluster : {doc['cluster']}",
             *[" " + x for x in _server_index(doc)], "", "  " + "-" * 68]
    for i, server in enumerate(doc["servers"]):
        groups = [f"{g}[{GROUP_MARKS.get(info['states'].get(server, ''), '-')}]"
                  for g, info in doc.get("groups", {}).items()
                  if info.get("states", {}).get(server) not in (None, "Offline")]
        lines.append(f"    server{i} [{_mark(doc, server)}] : {' '.join(groups)} ".rstrip(" ")
                     + " ")
    lines.append(RULE)
    return "\n".join(lines)


def monitors(doc: dict[str, Any], detail: bool = False) -> str:
    """``clpstat -m``: every monitor's state on every server (``--detail``: this server's
    reason and recovery counters)."""
    lines = [header("MONITOR RESOURCE STATUS"), f"  Cluster : {doc['cluster']}",
             *_server_index(doc), ""]
    for n, (name, mon) in enumerate(doc.get("monitors", {}).items()):
        lines.append(f"  Monitor{n} [{name} : {mon.get('state', 'Unknown')}]")
        lines.append("  " + "-" * 66)
        for i, server in enumerate(doc["servers"]):
            if server in mon.get("servers", {}):
                lines.append(f"    server{i} [{_mark(doc, server)}] : {mon['servers'][server]}")
        local = mon.get("local") or {}
        if detail and local.get("reason"):
            lines.append(f"    {'reason':<11}: {local['reason']}")
        counters = local.get("counters")
        if detail and counters:
            lines.append(f"    {'counters':<11}: reactivation {counters['reactivation']['count']}"
                         f"/{counters['reactivation']['threshold']}, failover "
                         f"{counters['failover']['count']}/{counters['failover']['threshold']}"
                         f", final action {counters['final_action']['count']}/1 "
                         f"({counters['final_action']['action']})")
    lines.append(RULE)
    return "\n".join(lines)


PATH_MARKS = {"Normal": "o", "Error": "x", "Unused": "-", "Unknown": "-"}


def _matrix(doc: dict[str, Any], title: str, label: str, names: list[str],
            mark: Any) -> str:
    lines = [header(title), f"  Cluster : {doc['cluster']}", *_server_index(doc), ""]
    lines += [f"  {label}{i} : {name}" for i, name in enumerate(names)]
    me = doc["servers"].index(doc["me"])
    # columns as the product's: the first mark under the first number, at column 16
    lines += ["", f" [on server{me} : {server_state(doc, doc['me'])}]",
              f"         {label}".ljust(13) + "".join(f"{i:>4}" for i in range(len(names))),
              " " + "-" * 65]
    for i, server in enumerate(doc["servers"]):
        row = "".join(f"{mark(server, n):>4}" for n in names)
        lines.append(f"  server{i:<5}:{row[1:]}")
    lines.append(RULE)
    return "\n".join(lines)


def heartbeats(doc: dict[str, Any]) -> str:
    """``clpstat -n``: each heartbeat path to each server as this server sees it (o working,
    x lost, - not used or unknown)."""
    return _matrix(doc, "HEARTBEAT RESOURCE STATUS", "HB", [p["name"] for p in doc["paths"]],
                   lambda s, n: PATH_MARKS.get(path_word(doc, s, n), "-"))


def partitions(doc: dict[str, Any]) -> str:
    """``clpstat -p``: each network-partition resolver of each server, as this server sees it
    (o working, x failing, - not used there or not known here)."""
    resolvers = doc.get("resolvers", [])
    servers_of = {r["name"]: r["servers"] for r in resolvers}

    def mark(server: str, name: str) -> str:
        if server not in servers_of[name]:
            return "-"
        return {"Normal": "o", "Error": "x"}.get(np_word(doc, server, name), "-")

    return _matrix(doc, "NETWORK PARTITION RESOURCE STATUS", "NP",
                   [r["name"] for r in resolvers], mark)
