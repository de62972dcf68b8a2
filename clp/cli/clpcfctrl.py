"""``clpcfctrl``: deliver (push) or back up (pull) the cluster configuration.

    clpcfctrl --push [-l|-w] [-x DIR] [-h HOST] [-p PORT] [--nocheck] [--timeout S] [--json]
    clpcfctrl --pull [-l|-w] -x DIR [-h HOST] [-p PORT]

``--push`` validates the configuration of DIR (``clp.conf`` + ``scripts/``; without ``-x``, the
one this server runs), computes the seed's reflect method against the one the cluster runs,
prints it with every change and what to do around the upload, refuses when the cluster is not in
the state the method needs, and otherwise delivers it to every server of the configuration (with
``-h``, to that one only: a reinstalled server) all or nothing (:mod:`clp.cli.cfpush`).
``--pull`` writes the configuration this server (or HOST) runs into DIR, with
``generation.json`` saying which generation it is: the seed's backup of chapters 8 and 9.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click

from clp.cli.cfpush import Answer, Transfer, next_generation, refusal
from clp.cli.common import Code, exclusive, finish, require_root
from clp.cli.options import Command
from clp.config import ClusterConfig, ConfigError, load_config
from clp.config.reflect import EFFECTS, Plan, plan
from clp.paths import InstallRoot
from clp.trn import config_store as store

DELIVER = ("Failed to deliver the configuration file. Check if the other server is active and "
           "run the command again.")
DOWNLOAD = "Failed to download the configuration file. Check if the other server is active."
NO_DIR = "The target directory does not exist."
SUCCEEDED = "Command succeeded.(code:0)"
E_STATE = 14  # "Invalid server status." (clp.cli.common.PRODUCT)


@click.command(cls=Command)
@click.option("--push", "mode", flag_value="push", help="Deliver the configuration.")
@click.option("--pull", "mode", flag_value="pull", help="Back up the running configuration.")
@click.option("-l", "fmt", flag_value="l", help="Accepted for the product's Linux format: "
              "clp.conf is YAML in UTF-8 whatever the flag; it changes nothing.")
@click.option("-w", "fmt", flag_value="w", help="Accepted for the product's Windows format "
              "(the seed's backup uses it): clp.conf is YAML in UTF-8 whatever the flag; it "
              "changes nothing.")
@click.option("-x", "directory", metavar="DIR", type=click.Path(path_type=Path),
              help="The configuration directory (clp.conf and scripts/).")
@click.option("-h", "host", metavar="HOST", help="Only this server (push: a reinstalled one).")
@click.option("-p", "port", type=click.IntRange(1, 65535), metavar="PORT",
              help="The data transfer port (default: the configuration's, 29002).")
@click.option("--nocheck", is_flag=True, help="Push even when the cluster is not in the state "
              "the change needs (the configuration is validated all the same).")
@click.option("--timeout", type=click.FloatRange(0.5, 600), default=30.0, show_default=True,
              help="Seconds to wait for each server's answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (push) as JSON.")
def main(mode: str | None, fmt: str | None, directory: Path | None, host: str | None,
         port: int | None, nocheck: bool, timeout: float, as_json: bool) -> None:
    """Deliver (--push) or back up (--pull) the cluster configuration."""
    if mode is None:
        finish(Code.INVALID_OPTION, "Give --push or --pull.",
               product="Invalid mode. Check if --push or --pull option is specified.")
    require_root()
    if directory is not None and not directory.is_dir():
        finish(Code.INVALID_OPTION, f"{directory} is not a directory.", product=NO_DIR)
    with exclusive("clpcfctrl"):
        if mode == "pull":
            if directory is None:
                finish(Code.INVALID_OPTION, "--pull needs -x DIR, the directory to write to.")
            pull(InstallRoot.from_env(), directory, host, port, timeout)
        push(InstallRoot.from_env(), directory, host, port, nocheck, timeout, as_json)


class Cluster:
    """Who the command talks to: the servers and addresses of the configuration this server
    runs, else of the pushed one (the first delivery of a new cluster), and the cluster key."""

    def __init__(self, root: InstallRoot, fallback: ClusterConfig | None, port: int | None,
                 timeout: float) -> None:
        from clp.clusterd.service import local_server_name
        from clp.keys import KeyFileError, load_key

        try:
            self.running: ClusterConfig | None = load_config(root.config_dir)
        except ConfigError:
            self.running = None
        config = self.running or fallback
        if config is None:
            finish(Code.INVALID_CONFIG, f"{root.config_file} is missing or invalid: there is "
                   f"no configuration to pull here.")
        try:
            key = load_key(root.key_file)
        except KeyFileError as e:
            finish(Code.INVALID_CONFIG, f"{e} (every server needs the cluster key first)")
        try:
            me = local_server_name(config)
        except SystemExit as e:
            finish(Code.INVALID_CONFIG, str(e))
        self.config = config
        addresses: dict[str, list[str]] = {}
        for c in (config, fallback):
            for ic in (c.interconnects if c else ()):
                for s, a in (ic.addresses.items() if ic.type == "lan" else ()):
                    if a not in addresses.setdefault(s, []):
                        addresses[s].append(a)
        self.transfer = Transfer(config.name, me, key, addresses,
                                 port or config.ports.transfer, timeout)

    def servers(self, host: str | None, new: ClusterConfig | None = None) -> list[str]:
        names = list((new or self.config).server_names)
        if host is None:
            return names
        if host not in names:
            finish(Code.INVALID_OPTION, f"{host} is not a server of the configuration.",
                   product="Invalid host name. Server specified by -h option is not included "
                           "in the configuration data.")
        return [host]


def pull(root: InstallRoot, directory: Path, host: str | None, port: int | None,
         timeout: float) -> NoReturn:
    for name in (store.CONFIG_FILE, store.SCRIPTS, store.GENERATION_FILE):
        if (directory / name).exists() or (directory / name).is_symlink():
            finish(Code.INVALID_OPTION, f"{directory / name} exists: pull into a directory "
                   f"without a configuration (nothing was written).")
    if host is None:
        try:
            gen, files = store.ConfigStore(root.config_dir).snapshot()
        except store.StoreError as e:
            finish(Code.INVALID_CONFIG, str(e))
        if gen is None:
            finish(Code.INVALID_CONFIG, f"{root.config_file} does not exist.")
        generation: dict[str, Any] = gen.to_dict()
    else:
        cluster = Cluster(root, None, port, timeout)
        (server,) = cluster.servers(host)
        answer = cluster.transfer.call(server, {"action": "pull"})
        if not answer.ok or not answer.data.get("generation"):
            finish(Code.UNREACHABLE, f"{server}: {answer.message or 'no configuration'}",
                   product=DOWNLOAD)
        generation, files = answer.data["generation"], answer.data.get("files")
    try:
        tree = store.decoded(files)
        _write_backup(directory, tree, generation)
    except store.StoreError as e:
        finish(Code.INVALID_CONFIG, f"the configuration received is refused: {e} (nothing "
               f"was written)", product=DOWNLOAD)
    click.echo(f"Configuration generation {generation['generation']} "
               f"({generation['hash'][:12]}) written to {directory}.", err=True)
    finish(Code.SUCCESS, product=SUCCEEDED)


def _write_backup(directory: Path, tree: dict[str, tuple[int, bytes]],
                  generation: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".clpcfctrl-", dir=directory))
    try:
        store.write_tree(tmp / "c", tree)
        os.chmod(tmp / "c" / store.CONFIG_FILE, 0o600)  # it may hold SMTP and SNMPv3 secrets
        (tmp / "c" / store.GENERATION_FILE).write_text(json.dumps(generation, indent=2) + "\n")
        for name in (store.SCRIPTS, store.CONFIG_FILE, store.GENERATION_FILE):
            (tmp / "c" / name).rename(directory / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _validated(files: dict[str, Any], where: str) -> ClusterConfig:
    """The pushed files as the servers will have them, validated as clpcfchk does."""
    with tempfile.TemporaryDirectory(prefix="clpcfctrl-") as tmp:
        store.write_tree(Path(tmp) / "c", store.decoded(files))
        try:
            return load_config(Path(tmp) / "c")
        except ConfigError as e:
            for issue in e.issues:
                click.echo(f"Error: {issue}", err=True)
            finish(Code.INVALID_CONFIG, f"{where}: {len(e.issues)} error(s); nothing was "
                   f"delivered (check it with clpcfchk).")


def _source(root: InstallRoot, directory: Path | None) -> dict[str, Any]:
    try:
        if directory is not None:
            return store.collect(directory)
        gen, files = store.ConfigStore(root.config_dir).snapshot()
    except store.StoreError as e:
        finish(Code.INVALID_CONFIG, f"{e}; nothing was delivered.")
    if gen is None:
        finish(Code.INVALID_CONFIG, f"{root.config_file} does not exist: give the "
               f"configuration with -x DIR.")
    return files


def push(root: InstallRoot, directory: Path | None, host: str | None, port: int | None,
         nocheck: bool, timeout: float, as_json: bool) -> NoReturn:
    files = _source(root, directory)
    new = _validated(files, str(directory or root.config_dir))
    cluster = Cluster(root, new, port, timeout)
    servers = cluster.servers(host, new)
    t = cluster.transfer
    current = t.each(servers, {"action": "generation"})
    _all_answered(current, "nothing was delivered")
    gens = {s: a.data.get("generation") for s, a in current.items()}
    the_plan = _plan(t, gens, new)
    statuses = _statuses(root, cluster, servers)
    _show(the_plan, gens, as_json)
    why = refusal(the_plan, statuses) if the_plan is not None else None
    if why and not nocheck:
        finish(E_STATE, f"Not delivered: {why}.")
    if why:
        click.echo(f"Warning (--nocheck): {why}; delivering anyway.", err=True)
    number = next_generation(gens.values())
    staged = t.stage_all(servers, number, files, store.digest(files), gens)
    _all_answered(staged, "every server stays on its old configuration")
    done = t.commit_all(servers)
    for server, answer in done.items():
        if answer.ok:
            click.echo(f"file delivery to server {server} success.")
    failed = {s: a for s, a in done.items() if not a.ok}
    if failed:
        finish(Code.PARTIAL, "; ".join(f"{s}: {a.message}" for s, a in failed.items())
               + ". They keep their old configuration: run 'clpcfctrl --push -h SERVER' for "
               "each when it is back.")
    click.echo("The upload is completed successfully.(cfmgr:0)")
    click.echo(f"Configuration generation {number} is in force on {', '.join(servers)}.",
               err=True)
    if the_plan is not None and not as_json:
        after = the_plan.steps()[the_plan.steps().index("clpcfctrl --push -x <dir>") + 1:]
        if after:
            click.echo("Now: " + "; ".join(after), err=True)
    running = sorted(s for s, d in statuses.items() if d is not None)
    if running and the_plan is not None and the_plan.changes:
        click.echo(f"Note: the cluster service on {', '.join(running)} keeps the configuration "
                   f"it loaded; the new one is in force for it at its next start (alert "
                   f"settings: at once). See docs/design-notes.md.", err=True)
    finish(Code.SUCCESS, product=SUCCEEDED)


def _all_answered(answers: dict[str, Answer], consequence: str) -> None:
    bad = {s: a for s, a in answers.items() if not a.ok}
    if not bad:
        return
    detail = "; ".join(f"{s}: {a.message}" for s, a in bad.items()) + f" ({consequence})."
    if any(a.code == Code.ALREADY_RUN for a in bad.values()):
        finish(Code.ALREADY_RUN, detail, product="This command is already run.")
    if any(a.code == Code.INVALID_OPTION for a in bad.values()):
        finish(Code.INVALID_CONFIG, detail, product=DELIVER)
    finish(Code.UNREACHABLE, detail, product=DELIVER)


def _plan(t: Transfer, gens: dict[str, Any], new: ClusterConfig) -> Plan | None:
    """The plan against the newest generation the targets run (None: none has one)."""
    have = {s: g for s, g in gens.items() if g}
    if not have:
        return None
    source = max(have, key=lambda s: (int(have[s]["generation"]), s == t.me))
    answer = t.call(source, {"action": "pull"})
    if not answer.ok:
        finish(Code.UNREACHABLE, f"{source}: {answer.message}", product=DOWNLOAD)
    with tempfile.TemporaryDirectory(prefix="clpcfctrl-") as tmp:
        try:
            store.write_tree(Path(tmp) / "c", store.decoded(answer.data.get("files")))
            old = load_config(Path(tmp) / "c")
        except (store.StoreError, ConfigError):
            return None  # what runs does not load: nothing to compare with, as a first push
    return plan(old.raw, new.raw)


def _statuses(root: InstallRoot, cluster: Cluster, servers: list[str]
              ) -> dict[str, dict[str, Any] | None]:
    """Each target's status document; None where its ``clusterpro`` is not running."""
    from clp.cli.targets import ClusterTargets, TargetError

    try:
        targets = ClusterTargets(root)
    except TargetError:
        return dict.fromkeys(servers)  # no configuration here: no cluster runs it
    out: dict[str, dict[str, Any] | None] = {}
    for server in servers:
        r = targets.control(server, "status", timeout=cluster.transfer.timeout)
        if r.ok:
            out[server] = r.data
        elif r.code == Code.NOT_RUNNING:
            out[server] = None
        else:
            finish(Code.UNREACHABLE, f"{server}: its state cannot be read: {r.message} "
                   f"(nothing was delivered)", product=DELIVER)
    return out


def _show(p: Plan | None, gens: dict[str, Any], as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {"generations": gens, "method": p.method if p else None}
        if p is not None:
            doc.update(label=p.label, effect=EFFECTS[p.method], steps=p.steps(),
                       groups=list(p.groups), resources=[list(r) for r in p.resources],
                       changes=[{"path": c.path, "kind": c.kind, "old": c.old, "new": c.new,
                                 "method": c.method} for c in p.changes])
        click.echo(json.dumps(doc, default=str))
        return
    if p is None:
        click.echo("First delivery: no server runs a configuration yet.", err=True)
        return
    out = sys.stderr
    print(f"Reflect method: {p.method}: {p.label}", file=out)
    print(f"  effect: {EFFECTS[p.method]}", file=out)
    for c in p.changes:
        print(f"  {c.describe()}", file=out)
    if not p.changes:
        print("  (no change)", file=out)
    print("  steps: " + "; ".join(p.steps()), file=out)


if __name__ == "__main__":
    sys.exit(main())
