"""``clpdown``: shut down (or with ``-r`` reboot) this server, or HOST with ``-h``.

Its groups are moved to the other servers first (as a failover), then the cluster service stops
and the OS shuts down or reboots.
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
    """Shut down a server of the cluster."""
    require_root()
    with exclusive("clpdown"):
        report(run_op(targets(), host, "down", {"action": "reboot" if reboot else "shutdown"}))


if __name__ == "__main__":
    main()
