"""``clpgrp``: start, stop and move failover groups, or show where one runs.

    clpgrp -s [GROUP] [-a SERVER] [-h HOST] [-f]   start GROUP (every group when omitted)
    clpgrp -t [GROUP] [-h HOST] [-f]               stop GROUP (every group when omitted)
    clpgrp -m GROUP [-a SERVER] [-h HOST]          move GROUP to SERVER, or the next by policy
    clpgrp -n GROUP                                print the server GROUP is active on

The request goes to this server's cluster service (or HOST's with ``-h``), which hands it to the
master server; the command returns when the operation has finished. Without ``-f``, ``-s`` refuses
to start a group while a server of its policy has not been heard from since the master started
(the group might be active there). ``-t`` also stops a group in Online Failure or Offline Failure
(``-f`` is accepted there and changes nothing).
"""

from __future__ import annotations

import click

from clp.cli.common import Code, finish, require_root
from clp.cli.opcommand import check_server, host_option, report, run_op, targets
from clp.paths import InstallRoot


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-s", "action", flag_value="start", help="Start the group (all groups if omitted).")
@click.option("-t", "action", flag_value="stop", help="Stop the group (all groups if omitted).")
@click.option("-m", "action", flag_value="move", help="Move the group to another server.")
@click.option("-n", "action", flag_value="where", help="Print the server the group is active on.")
@click.option("-a", "server", metavar="SERVER",
              help="Server to start the group on, or to move it to.")
@host_option
@click.option("-f", "force", is_flag=True,
              help="With -s: start the group even though a server of its policy has not been "
                   "heard from yet (the group might be active there).")
@click.argument("group", required=False)
def main(action: str | None, server: str | None, host: str | None, force: bool,
         group: str | None) -> None:
    """Operate failover groups."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -m, -n.")
    if action in ("move", "where") and not group:
        finish(Code.INVALID_OPTION, f"{'-m' if action == 'move' else '-n'} needs a group name.")
    if server and action not in ("start", "move"):
        finish(Code.INVALID_OPTION, "-a can only be used with -s or -m.")
    if action == "where":
        _where(group)
    t = targets()
    check_server(t, server, "-a")
    if group is not None and group not in {g.name for g in t.config.groups}:
        finish(Code.INVALID_OPTION, f"Group {group} does not exist.")
    args = {"group": group, "server": server, "force": force}
    op = {"start": "group_start", "stop": "group_stop", "move": "group_move"}[action]
    report(run_op(t, host, op, args))


def _where(group: str) -> None:
    from clp.cli.clpstat import read_local

    doc = read_local(InstallRoot.from_env())
    info = doc.get("groups", {}).get(group)
    if info is None:
        finish(Code.INVALID_OPTION, f"Group {group} does not exist.")
    if not info.get("server"):
        finish(Code.GROUP_OFFLINE, f"Group {group} is not active on any server "
               f"({info.get('state', 'Unknown')}).")
    click.echo(info["server"])
    raise SystemExit(0)


if __name__ == "__main__":
    main()
