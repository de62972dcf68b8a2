"""``clprsc``: start or stop one group resource, or show where it runs.

    clprsc -s RESOURCE [-h HOST] [-f]   start RESOURCE on the server its group is active on
    clprsc -t RESOURCE [-h HOST] [-f]   stop it (its group stays where it is)
    clprsc -n RESOURCE [-h HOST]        print the server RESOURCE is active on

A start needs the resources it depends on Online, a stop needs the resources that depend on it
Offline; ``-f`` (the product's) starts them first / stops them first, in dependency order.
"""

from __future__ import annotations

import click

from clp.cli.common import Code, exclusive, finish, invalid_name, require_root
from clp.cli.opcommand import host_option, report, run_op, targets
from clp.cli.options import Command
from clp.paths import InstallRoot


@click.command(cls=Command)
@click.option("-s", "action", flag_value="start", help="Start the resource.")
@click.option("-t", "action", flag_value="stop", help="Stop the resource.")
@click.option("-n", "action", flag_value="where", help="Print the server it is active on.")
@click.option("-f", "force", is_flag=True,
              help="With -s: start what it depends on too; with -t: stop what depends on it.")
@host_option
@click.option("--apito", type=click.IntRange(1, 9999), metavar="TIMEOUT",
              help="Accepted for the product's scripts.")
@click.argument("resource", required=False)
def main(action: str | None, force: bool, host: str | None, apito: int | None,
         resource: str | None) -> None:
    """Operate one group resource."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -n.")
    if not resource:
        finish(Code.INVALID_OPTION, "Name the group resource.")
    if action == "where":
        _where(resource, host)
    t = targets()
    try:
        t.config.resource(resource)
    except KeyError:
        invalid_name("resource", resource, t.config.name)
    op = "rsc_start" if action == "start" else "rsc_stop"
    with exclusive("clprsc"):
        report(run_op(t, host, op, {"resource": resource, "force": force}))


def _where(resource: str, host: str | None) -> None:
    from clp.cli.clpstat import read_local, read_remote

    root = InstallRoot.from_env()
    doc = read_remote(root, host) if host else read_local(root)
    for info in doc.get("groups", {}).values():
        if resource in info.get("resources", {}):
            state = info["resources"][resource].get("state", "Unknown")
            if state != "Online" or not info.get("server"):
                finish(Code.GROUP_OFFLINE, f"Resource {resource} is not active ({state}).")
            click.echo(info["server"])
            raise SystemExit(0)
    invalid_name("resource", resource, doc.get("cluster", ""))


if __name__ == "__main__":
    main()
