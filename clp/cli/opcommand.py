"""What the operation commands (clpgrp, clprsc, clpdown, clpstdn) share: send one control
operation to this server or, with ``-h HOST``, to the named server, wait for its end, and finish
with the daemon's verdict as the product's result line."""

from __future__ import annotations

from typing import Any, NoReturn

import click

from clp.cli.common import Code, finish
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
        finish(e.code, str(e))


def run_op(t: ClusterTargets, host: str | None, op: str, args: dict[str, Any],
           timeout: float = OP_TIMEOUT) -> Outcome:
    try:
        (server,) = t.select(False, host)
    except TargetError as e:
        finish(e.code, str(e))
    return t.control(server, op, {**args, "timeout": timeout}, timeout=timeout + 10)


def report(out: Outcome) -> NoReturn:
    if not out.ok:
        finish(out.code or Code.INTERNAL, out.message)
    if out.message:
        click.echo(out.message)
    finish(Code.SUCCESS)


def check_server(t: ClusterTargets, server: str | None, option: str) -> None:
    if server is not None and server not in t.config.server_names:
        finish(Code.INVALID_OPTION, f"{option} {server}: {server} is not a server of cluster "
               f"{t.config.name}.")
