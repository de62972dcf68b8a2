"""``clpregctrl``: show and reset the counters that limit reboots by final actions.

    clpregctrl --get | -g [-t rc|rm] [-r haltcount]
    clpregctrl --clear | -c [-t rc|rm] [-r haltcount]

``rc`` counts the final actions of group resources that took this server down (shutdown,
reboot, panic, reset), ``rm`` those of monitor resources; ``cluster.reboot_limit.max_count``
stops such final actions once a counter has reached it (see docs/monitors.md). The counters are
this server's (``work/haltcount.json``); the output is the product's layout.
"""

from __future__ import annotations

import sys

import click

from clp.cli.common import PRODUCT, Code, exclusive, finish, require_root
from clp.cli.options import Command
from clp.clusterd.reboot_limit import TYPES, CounterFileError, clear, counter_file, read
from clp.paths import InstallRoot

REGISTRY = "haltcount"
# clpregctrl's exit codes (the product's [M]): its own numbering, not the common table's
ALREADY_RUN, BAD_OPTION, GET_FAILED = 2, 3, 20


class RegCommand(Command):
    option_code = BAD_OPTION


@click.command(cls=RegCommand)
@click.option("-g", "--get", "action", flag_value="get", help="Show the counters.")
@click.option("-c", "--clear", "action", flag_value="clear", help="Reset the counters to 0.")
@click.option("-t", "kind", type=click.Choice(TYPES), metavar="TYPE",
              help="rc (group resources) or rm (monitor resources); both when left out.")
@click.option("-r", "registry", type=click.Choice([REGISTRY]), metavar="REGISTRY",
              help="haltcount (the only registry).")
def main(action: str | None, kind: str | None, registry: str | None) -> None:
    """Show or reset the reboot counters of final actions."""
    require_root()
    if action is None:
        finish(BAD_OPTION, "Specify --get (-g) or --clear (-c).",
               product=PRODUCT[Code.INVALID_OPTION])
    path = counter_file(InstallRoot.from_env().work_dir)
    kinds = (kind,) if kind else TYPES
    try:
        if action == "clear":
            with exclusive("clpregctrl", ALREADY_RUN):
                counts = clear(path, kinds)  # a damaged file is rewritten (said on stderr)
        else:
            counts = read(path)
    except (OSError, CounterFileError) as e:
        verb = "reset" if action == "clear" else "read"
        finish(GET_FAILED, f"The reboot counters cannot be {verb}: {e}")
    lines = ["*************************"]
    for t in kinds:
        lines += ["-------------------------", f"type : {t}", f"registry : {REGISTRY}",
                  "comment : halt count", "kind : int", f"value : {counts[t]}", "default : 0"]
    lines.append("*************************")
    click.echo("\n".join(lines))
    click.echo("success.(code:0)")
    sys.exit(0)


if __name__ == "__main__":
    main()
