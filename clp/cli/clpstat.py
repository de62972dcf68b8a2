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

from clp.cli.common import Code, finish, invalid_name, print_json, require_root

TYPE_CHECKING = False  # typing is not imported: see clp.state.layout
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from clp.paths import InstallRoot

# The usual forms, parsed here without click (importing it costs more than the rest of the
# command): a view flag at most, the flags below, each once. Anything else, --help included,
# goes to the full command line (clp.cli.clpstat_options), which gives the same meaning to
# every form taken here.
FAST_VIEWS = {"-s": "s", "-g": "g", "-m": "m", "-n": "n", "-p": "p"}
FAST_FLAGS = {"--local": "local", "--detail": "detail", "--long": "long", "--json": "as_json"}


def main(argv: list[str] | None = None) -> None:
    """Show the cluster status or its configuration."""
    args = sys.argv[1:] if argv is None else list(argv)
    fast = _fast(args)
    if fast is None:
        from clp.cli.clpstat_options import command

        command(args=args, prog_name="clpstat")
        return
    show(**fast)


def _fast(args: list[str]) -> dict[str, Any] | None:
    if len(set(args)) != len(args) or sum(a in FAST_VIEWS for a in args) > 1:
        return None
    if any(a not in FAST_VIEWS and a not in FAST_FLAGS for a in args):
        return None
    opts: dict[str, Any] = dict.fromkeys(FAST_FLAGS.values(), False)
    opts.update(view=None, sv=None, hb=None, np=None, grp=None, rsc=None, mon=None, host=None)
    for a in args:
        if a in FAST_VIEWS:
            opts["view"] = FAST_VIEWS[a]
        else:
            opts[FAST_FLAGS[a]] = True
    return opts


def read_local(root: InstallRoot) -> dict[str, Any]:
    """The status document, or the command's exit with the product's message."""
    from clp.state.layout import StateError, StateNotRunning, StateStale

    try:
        return load_local(root)
    except StateNotRunning:
        finish(Code.NOT_RUNNING)
    except StateStale as e:
        finish(Code.NOT_RUNNING, f"The cluster service on this server has stopped abnormally "
               f"(its status is left by dead process {e.writer_pid}); 'clpshm cleanup' removes "
               f"it.")
    except StateError as e:
        finish(Code.INTERNAL, f"The status in shared memory cannot be read: {e}")


def load_local(root: InstallRoot) -> dict[str, Any]:
    """The status document: the published snapshot plus the live per-path table. Raises
    StateError (StateNotRunning, StateStale) where clpstat exits: the SNMP agent answers on."""
    from clp.state.reader import StateReader

    reader = StateReader.open(root)
    try:
        view = reader.read()
    finally:
        reader.close()
    doc = dict(view.snapshot)
    doc["status_age"] = max(0.0, time.time() - view.header.updated)
    doc["writer_pid"] = view.header.writer_pid
    _merge_live_paths(doc, view.paths)
    return doc


def _merge_live_paths(doc: dict[str, Any], table: list[list[Any]]) -> None:
    """Overlay the in-place records (written on every heartbeat and every change: fresher than
    the snapshot, which is published on a change of its own and every second) on the
    snapshot's paths."""
    from clp.state.layout import PATH_STATE_NAMES

    names = [p["name"] for p in doc["paths"]]
    members = doc["membership"]["servers"]
    for si, server in enumerate(doc["servers"]):
        paths = members[server]["paths"]
        for pi, name in enumerate(names):
            rec = table[si][pi]
            entry = paths.setdefault(name, {})
            entry["state"] = PATH_STATE_NAMES.get(rec.state, entry.get("state", "Unknown"))
            entry["last_rx_time"] = rec.last_rx or None
            entry["seq"] = rec.seq
            entry["received"] = rec.rx_count
            if server == doc["me"]:
                entry["drops"] = rec.drops


def show(view: str | None, local: bool, sv: str | None, hb: str | None, np: str | None,
         grp: str | None, rsc: str | None, mon: str | None, host: str | None, detail: bool,
         long: bool, as_json: bool) -> NoReturn:
    """The view asked for, whichever way the options were parsed."""
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
    from clp.paths import InstallRoot

    root = InstallRoot.from_env()
    doc = read_remote(root, host) if host else read_local(root)
    if not host:
        doc["config_on_disk"] = disk_generation(root)
    view = view or "s"
    if as_json:
        print_json(_json_view(doc, view))
    else:
        from clp.cli import statviews

        print({"s": lambda: statviews.summary(doc, detail, long),
               "g": lambda: statviews.group_map(doc),
               "m": lambda: statviews.monitors(doc, detail),
               "n": lambda: statviews.heartbeats(doc),
               "p": lambda: statviews.partitions(doc)}[view]())
    running, disk = doc.get("config"), doc.get("config_on_disk")
    if running and disk and running["generation"] != disk["generation"] and not as_json:
        print(f"Note: the cluster service runs configuration generation {running['generation']}"
              f"; generation {disk['generation']} is on disk and takes effect at its next "
              f"start.", file=sys.stderr)
    interval = doc["heartbeat"]["interval"]
    if doc["status_age"] > max(5 * interval, 3.0):
        print(f"Warning: the status was last updated {doc['status_age']:.1f} s ago; the "
              f"cluster service (pid {doc['writer_pid']}) may be hung.", file=sys.stderr)
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
    from clp.paths import InstallRoot

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
        print(render(config, kinds, name, detail))
    sys.exit(0)


def disk_generation(root: InstallRoot) -> dict[str, Any]:
    """The configuration generation in etc/ (clp.trn.config_store's generation.json, read here
    without importing it: clpstat must stay fast); generation 0: never pushed."""
    import json

    try:
        with open(root.config_dir / "current" / "generation.json") as f:
            doc = json.load(f)
        return {"generation": int(doc["generation"]), "hash": str(doc["hash"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"generation": 0, "hash": None}


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
