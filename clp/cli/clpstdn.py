"""``clpstdn``: shut down (or with ``-r`` reboot) every server of the cluster.

Every group is stopped first (nothing fails over), then each server stops its cluster service and
shuts down or reboots.
"""

from __future__ import annotations

import click

from clp.cli.common import exclusive, require_root
from clp.cli.opcommand import host_option, report, run_op, targets
from clp.cli.options import Command


@click.command(cls=Command)
@click.option("-r", "reboot", is_flag=True, help="Reboot instead of shutting down.")
@host_option
def main(reboot: bool, host: str | None) -> None:
    """Shut down the whole cluster."""
    require_root()
    with exclusive("clpstdn"):
        report(run_op(targets(), host, "cluster_shutdown",
                      {"action": "reboot" if reboot else "shutdown"}))


if __name__ == "__main__":
    main()
