"""``clpstat``: the cluster's status, read straight from shared memory.

It never talks to ``clusterpro`` (``-h HOST`` asks another server's ``clusterpro_trn`` instead), so
it answers quickly and still answers when the daemon is busy. Imports are kept light on purpose:
this command must run in well under 100 ms.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from clp.cli.common import Code, finish, json_option, print_json, require_root
from clp.paths import InstallRoot

PATH_TYPES = {"lan": "LAN Heartbeat", "disk": "DISK Heartbeat", "com": "COM Heartbeat",
              "witness": "Witness Heartbeat"}
RULE = "=" * 69


def read_local(root: InstallRoot) -> dict[str, Any]:
    """The status document: the published snapshot plus the live per-path table."""
    from clp.state import StateError, StateNotRunning, StateReader, StateStale

    try:
        reader = StateReader.open(root)
    except StateNotRunning:
        finish(Code.NOT_RUNNING)
    except StateStale as e:
        finish(Code.NOT_RUNNING, f"The cluster service on this server has stopped abnormally "
               f"(its status is left by dead process {e.writer_pid}); 'clpshm cleanup' removes "
               f"it.")
    except StateError as e:
        finish(Code.INTERNAL, f"The status in shared memory cannot be read: {e}")
    try:
        view = reader.read()
    except StateError as e:
        finish(Code.INTERNAL, f"The status in shared memory cannot be read: {e}")
    finally:
        reader.close()
    doc = dict(view.snapshot)
    doc["status_age"] = max(0.0, time.time() - view.header.updated)
    doc["writer_pid"] = view.header.writer_pid
    _merge_live_paths(doc, view.paths)
    return doc


def _merge_live_paths(doc: dict[str, Any], table: list[list[Any]]) -> None:
    """Overlay the in-place records (fresher than the snapshot) on the snapshot's path states."""
    names = [p["name"] for p in doc["paths"]]
    members = doc["membership"]["servers"]
    for si, server in enumerate(doc["servers"]):
        paths = members[server]["paths"]
        for pi, name in enumerate(names):
            rec = table[si][pi]
            entry = paths.setdefault(name, {})
            entry["last_rx_time"] = rec.last_rx or None
            entry["seq"] = rec.seq
            entry["received"] = rec.rx_count
            if server == doc["me"]:
                entry["drops"] = rec.drops


def render(doc: dict[str, Any], detail: bool) -> str:
    lines = [f" {'  CLUSTER STATUS  ':=^69}"]
    suspended = " (suspended)" if doc.get("suspended") else ""
    lines.append(f"  Cluster : {doc['cluster']}{suspended}")
    ratio = doc["membership"].get("ratio", 1)
    if ratio != 1:
        lines.append(f"  Timeout ratio : {ratio:g} (heartbeat timeout "
                     f"{doc['membership']['timeout']:g} s)")
    local = doc.get("counters", {}).get("paths", {})
    lines.append("  <server>")
    members = doc["membership"]["servers"]
    for server in doc["servers"]:
        mark = "*" if server == doc["me"] else " "
        state = members[server]["state"]
        lines.append(f"   {mark}{server} {'.' * max(1, 16 - len(server))}: {state}")
        for p in doc["paths"]:
            entry = members[server]["paths"].get(p["name"], {})
            text = f"      {p['name']:<15}: {entry.get('state', 'Unknown'):<15}" \
                   f"{PATH_TYPES.get(p['type'], p['type'])}"
            if detail and entry.get("last_rx_time"):
                text += f"  last rx {time.time() - entry['last_rx_time']:.1f} s ago"
            error = local.get(p["name"], {}).get("local_error")
            if server == doc["me"] and error:
                text += f"  ({error})"
            lines.append(text.rstrip())
    lines += _partition_lines(doc.get("partition") or {})
    lines.append("  <group>")
    for name, group in doc.get("groups", {}).items():
        lines.append(f"    {name} {'.' * max(1, 16 - len(name))}: {group.get('state', 'Unknown')}")
        lines.append(f"      {'current':<15}: {group.get('server') or '-'}")
        for rname, res in group.get("resources", {}).items():
            lines.append(f"      {rname:<15}: {res.get('state', 'Unknown')}")
        if detail and group.get("reason"):
            lines.append(f"      {'last decision':<15}: {group['reason']}")
    lines.append("  <monitor>")
    for name, mon in doc.get("monitors", {}).items():
        text = f"    {name:<17}: {mon.get('state', 'Unknown')}"
        reason = (mon.get("local") or {}).get("reason")
        if detail and reason:
            text += f"  ({reason})"
        lines.append(text)
    lines.append(f" {RULE}")
    return "\n".join(lines)


def _partition_lines(np: dict[str, Any]) -> list[str]:
    resolvers = np.get("resolvers") or {}
    if not resolvers and not np.get("verdict"):
        return []
    lines = ["  <network partition resolution>"]
    for name, r in resolvers.items():
        state = "Error" if r.get("failing") else ("Normal" if r.get("ok") else "Unknown")
        lines.append(f"    {name:<17}: {state:<15}{r.get('target', '')}")
    lines.append(f"    {'action':<17}: {str(np.get('action', '')).replace('_', ' ')}")
    if np.get("pending"):
        lines.append(f"    {'resolving':<17}: {', '.join(np['pending'])}")
    if np.get("verdict"):
        lines.append(f"    {'stopping':<17}: {np['verdict']['reason']}")
    return lines


def render_monitors(doc: dict[str, Any], detail: bool) -> str:
    """``clpstat -m``: every monitor's state on every server (``--detail``: this server's reason
    and recovery counters too)."""
    servers = list(doc["servers"])
    members = doc["membership"]["servers"]
    lines = [f" {'  MONITOR RESOURCE STATUS  ':=^69}", f"  Cluster : {doc['cluster']}"]
    for i, server in enumerate(servers):
        lines.append(f"  {'*' if server == doc['me'] else ' '}server{i} : {server}")
    lines.append("")
    for n, (name, mon) in enumerate(doc.get("monitors", {}).items()):
        lines.append(f"  Monitor{n} [{name} : {mon.get('state', 'Unknown')}]")
        lines.append("  " + "-" * 66)
        for i, server in enumerate(servers):
            if server not in mon.get("servers", {}):
                continue
            mark = "o" if members.get(server, {}).get("state") == "Online" else "x"
            lines.append(f"    server{i} [{mark}] : {mon['servers'][server]}")
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
    lines.append(f" {RULE}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-s", "status", is_flag=True, help="Show the status (the default).")
@click.option("-m", "monitors", is_flag=True, help="Show every monitor on every server.")
@click.option("-h", "host", metavar="HOST", help="Show the status as the named server sees it.")
@click.option("--detail", is_flag=True, help="Add heartbeat receive times, monitor reasons.")
@json_option
def main(status: bool, monitors: bool, host: str | None, detail: bool, as_json: bool) -> None:
    """Show the cluster status."""
    require_root()
    root = InstallRoot.from_env()
    doc = read_remote(root, host) if host else read_local(root)
    if as_json:
        print_json({"monitors": doc.get("monitors", {})} if monitors else doc)
    elif monitors:
        click.echo(render_monitors(doc, detail))
    else:
        click.echo(render(doc, detail))
    interval = doc["heartbeat"]["interval"]
    if doc["status_age"] > max(5 * interval, 3.0):
        click.echo(f"Warning: the status was last updated {doc['status_age']:.1f} s ago; the "
                   f"cluster service (pid {doc['writer_pid']}) may be hung.", err=True)
    sys.exit(0)


def read_remote(root: InstallRoot, host: str) -> dict[str, Any]:
    from clp.cli.targets import ClusterTargets, TargetError

    try:
        targets = ClusterTargets(root)
        (server,) = targets.select(False, host)
    except TargetError as e:
        finish(e.code, str(e))
    out = targets.control(server, "status")
    if not out.ok:
        finish(out.code, out.message)
    doc = out.data
    doc["status_age"] = max(0.0, time.time() - doc.get("updated", time.time()))
    doc["writer_pid"] = doc.get("pid")
    return doc


if __name__ == "__main__":
    main()
