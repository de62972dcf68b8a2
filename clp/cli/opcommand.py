"""What the operation commands (clpgrp, clprsc, clpdown, clpstdn) share: send one control
operation to this server or, with ``-h HOST``, to the named server, wait for its end, and finish
with the daemon's verdict as the product's result line."""

from __future__ import annotations

from typing import Any, NoReturn

import click

from clp.cli.common import Code, finish, invalid_name
from clp.cli.targets import ClusterTargets, Outcome, TargetError
from clp.paths import InstallRoot

# how long a group operation may take before the command gives up waiting (the daemon goes on)
OP_TIMEOUT = 600.0

host_option = click.option("-h", "host", metavar="HOST",
                           help="Send the request to this server instead of the local one.")


def targets() -> ClusterTargets:
    try:
        return ClusterTargets(InstallRoot.from_env())
    except TargetError as e:
        finish(e.code, str(e), e.product)


def run_op(t: ClusterTargets, host: str | None, op: str, args: dict[str, Any],
           timeout: float = OP_TIMEOUT) -> Outcome:
    try:
        (server,) = t.select(False, host)
    except TargetError as e:
        finish(e.code, str(e), e.product)
    return t.control(server, op, {**args, "timeout": timeout}, timeout=timeout + 10)


def report(out: Outcome) -> NoReturn:
    """The daemon's verdict as the command's result: the product's sentence for its code, and
    the daemon's own words (which group, which server) as the detail."""
    if not out.ok:
        finish(out.code or Code.INTERNAL, out.message)
    if out.message:
        click.echo(out.message, err=True)
    finish(Code.SUCCESS)


def check_server(t: ClusterTargets, server: str | None) -> None:
    if server is not None and server not in t.config.server_names:
        invalid_name("server", server, t.config.name)
