"""``clpgrp``: start, stop and move failover groups, or show where one runs.

    clpgrp -s [GROUP] [-h HOST] [-a SERVER] [-f]   start GROUP (every group when omitted)
    clpgrp -t [GROUP] [-h HOST] [-f]               stop GROUP (every group when omitted)
    clpgrp -m [GROUP] [-h HOST] [-a SERVER]        move GROUP (every group when omitted)
    clpgrp -n GROUP                                print the server GROUP is active on

As the product, a request is about the server that handles it: this one, or HOST with ``-h``.
``-s`` starts the group there; ``-t`` stops it if it runs there (``-f``: wherever it runs);
``-m`` moves it to the next server of its policy; without a group, ``-s`` starts every group
that server may run, ``-t`` stops and ``-m`` moves every group running there. clp's extension:
``-a SERVER`` starts or moves to that server. Without ``-f``, ``-s`` refuses to start a group
while a server of its policy has not been heard from since the master started (the group might
be active there). The command returns when the operation has finished.
"""

from __future__ import annotations

import click

from clp.cli.common import Code, exclusive, finish, invalid_name, require_root
from clp.cli.opcommand import check_server, host_option, report, run_op, targets
from clp.cli.options import Command
from clp.paths import InstallRoot


@click.command(cls=Command)
@click.option("-s", "action", flag_value="start", help="Start the group (all groups if omitted).")
@click.option("-t", "action", flag_value="stop", help="Stop the group (all groups if omitted).")
@click.option("-m", "action", flag_value="move", help="Move the group (all groups if omitted).")
@click.option("-n", "action", flag_value="where", help="Print the server the group is active on.")
@click.option("-a", "server", metavar="SERVER",
              help="Server to start the group on, or to move it to (clp's extension).")
@host_option
@click.option("-f", "force", is_flag=True,
              help="With -s: start even though a server of the policy has not been heard from "
                   "yet, or the group was left in Offline Failure by a server whose cluster "
                   "service stopped; with -t: stop the group on whichever server runs it.")
@click.option("--apito", type=click.IntRange(1, 9999), metavar="TIMEOUT",
              help="Accepted for the product's scripts.")
@click.argument("group", required=False)
def main(action: str | None, server: str | None, host: str | None, force: bool,
         apito: int | None, group: str | None) -> None:
    """Operate failover groups."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -m, -n.")
    if action == "where" and not group:
        finish(Code.INVALID_OPTION, "-n needs a group name.")
    if server and action not in ("start", "move"):
        finish(Code.INVALID_OPTION, "-a can only be used with -s or -m.")
    if action == "where":
        _where(group, host)
    t = targets()
    check_server(t, server)
    if group is not None and group not in {g.name for g in t.config.groups}:
        invalid_name("group", group, t.config.name)
    args = {"group": group, "server": server, "force": force}
    op = {"start": "group_start", "stop": "group_stop", "move": "group_move"}[action]
    with exclusive("clpgrp"):
        report(run_op(t, host, op, args))


def _where(group: str | None, host: str | None) -> None:
    from clp.cli.clpstat import read_local, read_remote

    root = InstallRoot.from_env()
    doc = read_remote(root, host) if host else read_local(root)
    info = doc.get("groups", {}).get(group)
    if info is None:
        invalid_name("group", str(group), doc.get("cluster", ""))
    if not info.get("server"):
        finish(Code.GROUP_OFFLINE, f"Group {group} is not active on any server "
               f"({info.get('state', 'Unknown')}).")
    click.echo(info["server"])
    raise SystemExit(0)


if __name__ == "__main__":
    main()
