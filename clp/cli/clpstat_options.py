"""``clpstat``'s full command line (click): every option, ``--help``, and the product's
``Invalid option.`` for a mistake. The usual forms do not come here: :func:`clp.cli.clpstat.main`
parses them without click (see ``FAST_VIEWS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from clp.cli.clpstat import show
from clp.cli.options import Command, json_option

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
def command(view: str | None, local: bool, sv: str | None, hb: str | None, np: str | None,
            grp: str | None, rsc: str | None, mon: str | None, host: str | None, detail: bool,
            long: bool, as_json: bool) -> None:
    """Show the cluster status or its configuration."""
    show(view, local, sv, hb, np, grp, rsc, mon, host, detail, long, as_json)
