"""``clpstat``: the cluster's status, read straight from shared memory, or its configuration.

    clpstat [-s | --local | -g | -m | -n | -p] [-h HOST] [--detail] [--long] [--json]
    clpstat -i | --cl | --sv [NAME] | --hb [NAME] | --np [NAME] | --grp [NAME] | --rsc [NAME]
            | --mon [NAME]   [--detail] [--json]

The status never comes from ``clusterpro`` itself (``-h HOST`` asks another server's
``clusterpro_trn`` instead), so it answers quickly and still answers when the daemon is busy or
the cluster is suspended. The layouts are the product's (:mod:`clp.cli.statviews`,
:mod:`clp.cli.confviews`). Imports are kept light on purpose: this command must run in well
under 100 ms.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from clp.cli.common import (
    Code,
    Command,
    finish,
    invalid_name,
    json_option,
    print_json,
    require_root,
)
from clp.paths import InstallRoot


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


F = TypeVar("F", bound=Callable[..., Any])


def _optional_name(flag: str, what: str) -> Callable[[F], F]:
    return click.option(f"--{flag}", flag, is_flag=False, flag_value="*", default=None,
                        metavar="[NAME]", help=f"Show the configuration of {what}.")


@click.command(cls=Command)
@click.option("-s", "view", flag_value="s", help="The status (the default).")
@click.option("--local", "local", is_flag=True,
              help="The status as this server sees it (clpstat always reads this server's).")
@click.option("-g", "view", flag_value="g", help="The group map.")
@click.option("-m", "view", flag_value="m", help="Every monitor on every server.")
@click.option("-n", "view", flag_value="n", help="The heartbeat matrix.")
@click.option("-p", "view", flag_value="p", help="The network partition resolution matrix.")
@click.option("-i", "view", flag_value="i", help="The whole configuration.")
@click.option("--cl", "view", flag_value="cl", help="The cluster's configuration.")
@_optional_name("sv", "the servers (or NAME)")
@_optional_name("hb", "the heartbeat resources (or NAME)")
@_optional_name("np", "the network partition resources (or NAME)")
@_optional_name("grp", "the groups (or NAME)")
@_optional_name("rsc", "the group resources (or NAME)")
@_optional_name("mon", "the monitor resources (or NAME)")
@click.option("-h", "host", metavar="HOST", help="Show the status as the named server sees it.")
@click.option("--detail", is_flag=True, help="More: receive times, reasons, every parameter.")
@click.option("--long", "long", is_flag=True, help="Do not cut long names.")
@json_option
def main(view: str | None, local: bool, sv: str | None, hb: str | None, np: str | None,
         grp: str | None, rsc: str | None, mon: str | None, host: str | None, detail: bool,
         long: bool, as_json: bool) -> None:
    """Show the cluster status or its configuration."""
    require_root()
    if local and host:
        finish(Code.INVALID_OPTION, "--local and -h cannot be used together.")
    named = {k: v for k, v in (("sv", sv), ("hb", hb), ("np", np), ("grp", grp), ("rsc", rsc),
                               ("mon", mon)) if v is not None}
    if len(named) + (view is not None) > 1:
        finish(Code.INVALID_OPTION, "Use one view at a time.")
    if named or view in ("i", "cl"):
        (kind, name), = named.items() if named else [(view, None)]
        _config_view(kind, None if name == "*" else name, detail, as_json)
    root = InstallRoot.from_env()
    doc = read_remote(root, host) if host else read_local(root)
    view = view or "s"
    if as_json:
        print_json(_json_view(doc, view))
    else:
        from clp.cli import statviews

        click.echo({"s": lambda: statviews.summary(doc, detail, long),
                    "g": lambda: statviews.group_map(doc),
                    "m": lambda: statviews.monitors(doc, detail),
                    "n": lambda: statviews.heartbeats(doc),
                    "p": lambda: statviews.partitions(doc)}[view]())
    interval = doc["heartbeat"]["interval"]
    if doc["status_age"] > max(5 * interval, 3.0):
        click.echo(f"Warning: the status was last updated {doc['status_age']:.1f} s ago; the "
                   f"cluster service (pid {doc['writer_pid']}) may be hung.", err=True)
    sys.exit(0)


def _json_view(doc: dict[str, Any], view: str) -> dict[str, Any]:
    """The part of the status document a view shows (the whole of it for the summary)."""
    keep = {"g": ("groups",), "m": ("monitors",), "n": ("paths", "membership"),
            "p": ("resolvers", "partition")}.get(view)
    if keep is None:
        return doc
    return {"cluster": doc["cluster"], "me": doc["me"], "servers": doc["servers"],
            **{k: doc.get(k) for k in keep}}


def _config_view(kind: str, name: str | None, detail: bool, as_json: bool) -> NoReturn:
    from clp.cli.confviews import KINDS, NAMES, names_of, render
    from clp.cli.confviews import as_json as config_json
    from clp.config import ConfigError, load_config

    root = InstallRoot.from_env()
    try:
        config = load_config(root.config_dir)
    except ConfigError as e:
        finish(Code.INVALID_CONFIG, "\n".join(map(str, e.issues)))
    if name is not None and name not in names_of(config, kind):
        invalid_name(NAMES[kind], name, config.name)
    kinds = list(KINDS) if kind == "i" else [kind]
    if as_json:
        print_json(config_json(config, kinds, name))
    else:
        click.echo(render(config, kinds, name, detail))
    sys.exit(0)


def read_remote(root: InstallRoot, host: str) -> dict[str, Any]:
    from clp.cli.targets import ClusterTargets, TargetError

    try:
        targets = ClusterTargets(root)
        (server,) = targets.select(False, host)
    except TargetError as e:
        finish(e.code, str(e), e.product)
    out = targets.control(server, "status")
    if not out.ok:
        finish(out.code, out.message)
    doc = out.data
    doc["status_age"] = max(0.0, time.time() - doc.get("updated", time.time()))
    doc["writer_pid"] = doc.get("pid")
    return doc


if __name__ == "__main__":
    main()
