"""``clpshm``: look into, or clean up, this server's shared-memory state.

    clpshm dump [--json]       the state region's header, path table and snapshot
    clpshm cleanup [--force]   remove the state region, its semaphore and the evt queue

``cleanup`` is for what a crashed ``clusterpro`` leaves behind; it refuses while the writer is
alive, unless ``--force``.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click

from clp.cli.common import Code, finish, print_json, require_root
from clp.cli.options import json_option
from clp.paths import InstallRoot
from clp.state import (
    PATH_ERROR,
    PATH_NORMAL,
    PATH_NOT_USED,
    PATH_UNKNOWN,
    StateError,
    StateNotRunning,
    StateReader,
    StateView,
)

PATH_STATES = {PATH_UNKNOWN: "Unknown", PATH_NORMAL: "Normal", PATH_ERROR: "Error",
               PATH_NOT_USED: "Not Used"}


@click.group(context_settings={"help_option_names": ["--help"]})
def main() -> None:
    """Inspect or clean up the cluster service's shared memory."""
    require_root()


def _open(root: InstallRoot) -> StateReader:
    try:
        return StateReader.open(root, allow_stale=True)
    except StateNotRunning:
        finish(Code.NOT_RUNNING)
    except StateError as e:
        finish(Code.INTERNAL, f"Cannot read the state region: {e}.")


def _document(root: InstallRoot, view: StateView, alive: bool) -> dict[str, Any]:
    h = view.header
    header = h._asdict()
    header["magic"] = h.magic.decode(errors="replace")
    return {
        "segment": root.shm_name("state"),
        "semaphore": root.sem_name("state"),
        "writer_alive": alive,
        "header": header,
        "paths": [[rec._asdict() for rec in row] for row in view.paths],
        "snapshot": view.snapshot,
    }


def _labels(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Server and path names from the snapshot when it has them, else indexes."""
    snap, h = doc["snapshot"], doc["header"]
    servers = snap.get("servers")
    paths = [p.get("name") for p in snap.get("paths", []) if isinstance(p, dict)]
    if not isinstance(servers, list) or len(servers) != h["n_servers"]:
        servers = [str(i) for i in range(h["n_servers"])]
    if len(paths) != h["n_paths"]:
        paths = [str(i) for i in range(h["n_paths"])]
    return [str(s) for s in servers], [str(p) for p in paths]


def render(doc: dict[str, Any], now: float) -> str:
    h = doc["header"]
    alive = "alive" if doc["writer_alive"] else "DEAD (stale region, see 'clpshm cleanup')"
    updated = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(h["updated"]))
    lines = [f"  Segment    : {doc['segment']}", f"  Semaphore  : {doc['semaphore']}",
             f"  Magic      : {h['magic']}  (layout version {h['version']})",
             f"  Size       : {h['size']} bytes (snapshot slots of {h['capacity']} bytes)",
             f"  Writer     : pid {h['writer_pid']}, {alive}",
             f"  Generation : {h['generation']}",
             f"  Sequence   : {h['seq']}  (active snapshot slot {h['active']})",
             f"  Updated    : {updated}  ({max(0.0, now - h['updated']):.1f} s ago)",
             "  <paths>",
             f"    {'server':<16} {'path':<12} {'state':<9} {'last rx':>9} {'seq':>10} "
             f"{'received':>10} {'drops':>7}"]
    servers, paths = _labels(doc)
    for si, row in enumerate(doc["paths"]):
        for pi, rec in enumerate(row):
            ago = f"{now - rec['last_rx']:.1f}s" if rec["last_rx"] else "-"
            state = PATH_STATES.get(rec["state"], str(rec["state"]))
            lines.append(f"    {servers[si]:<16} {paths[pi]:<12} {state:<9} {ago:>9} "
                         f"{rec['seq']:>10} {rec['rx_count']:>10} {rec['drops']:>7}")
    lines.append("  <snapshot>")
    lines.extend("    " + line for line in json.dumps(doc["snapshot"], indent=2).splitlines())
    return "\n".join(lines)


@main.command()
@json_option
def dump(as_json: bool) -> None:
    """Print the state region: header, path table and snapshot."""
    root = InstallRoot.from_env()
    reader = _open(root)
    try:
        view = reader.read()
        alive = reader.writer_alive()
    except StateError as e:
        finish(Code.INTERNAL, f"Cannot read the state region: {e}.")
    finally:
        reader.close()
    doc = _document(root, view, alive)
    if as_json:
        print_json(doc)
        return
    click.echo(render(doc, time.time()))
    finish(Code.SUCCESS)


def _writer_pid(root: InstallRoot) -> int | None:
    """The live writer's pid, or None when there is none (no region, dead writer, unreadable)."""
    try:
        reader = StateReader.open(root, allow_stale=True)
    except StateError:
        return None
    try:
        return reader.header.writer_pid if reader.writer_alive() else None
    finally:
        reader.close()


def _remove_all(root: InstallRoot) -> list[str]:
    import posix_ipc

    from clp.state.writer import remove_region

    removed = remove_region(root)
    with contextlib.suppress(posix_ipc.ExistentialError):
        posix_ipc.unlink_message_queue(root.mq_name("evt"))
        removed.append(root.mq_name("evt"))
    return removed


@main.command()
@click.option("--force", is_flag=True, help="Remove even while the writer is alive.")
def cleanup(force: bool) -> None:
    """Remove the state region, its semaphore and the evt queue left by a dead service."""
    root = InstallRoot.from_env()
    pid = _writer_pid(root)
    if pid is not None and not force:
        finish(Code.INVALID_OPTION, f"The cluster service (pid {pid}) is alive and owns the "
               f"state region; stop it first, or use --force.")
    removed = _remove_all(root)
    for name in removed:
        click.echo(f"Removed {name}")
    if not removed:
        click.echo("Nothing to clean up.")
    if pid is not None:
        click.echo(f"Warning: process {pid} is still running without its shared memory; "
                   f"restart the cluster service.", err=True)
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
