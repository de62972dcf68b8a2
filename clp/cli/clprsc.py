"""``clprsc``: start or stop one group resource, or show where it runs.

    clprsc -s RESOURCE [-h HOST]    start RESOURCE on the server its group is active on
    clprsc -t RESOURCE [-h HOST]    stop it (its group stays where it is)
    clprsc -n RESOURCE              print the server RESOURCE is active on
"""

from __future__ import annotations

import click

from clp.cli.common import Code, finish, require_root
from clp.cli.opcommand import host_option, report, run_op, targets
from clp.paths import InstallRoot


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-s", "action", flag_value="start", help="Start the resource.")
@click.option("-t", "action", flag_value="stop", help="Stop the resource.")
@click.option("-n", "action", flag_value="where", help="Print the server it is active on.")
@host_option
@click.argument("resource")
def main(action: str | None, host: str | None, resource: str) -> None:
    """Operate one group resource."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -n.")
    if action == "where":
        _where(resource)
    t = targets()
    try:
        t.config.resource(resource)
    except KeyError:
        finish(Code.INVALID_OPTION, f"Resource {resource} does not exist.")
    op = "rsc_start" if action == "start" else "rsc_stop"
    report(run_op(t, host, op, {"resource": resource}))


def _where(resource: str) -> None:
    from clp.cli.clpstat import read_local

    doc = read_local(InstallRoot.from_env())
    for info in doc.get("groups", {}).values():
        if resource in info.get("resources", {}):
            state = info["resources"][resource].get("state", "Unknown")
            if state != "Online" or not info.get("server"):
                finish(Code.GROUP_OFFLINE, f"Resource {resource} is not active ({state}).")
            click.echo(info["server"])
            raise SystemExit(0)
    finish(Code.INVALID_OPTION, f"Resource {resource} does not exist.")


if __name__ == "__main__":
    main()
