"""clpcfchk: check a cluster configuration directory before it is applied.

Separate from the daemons (Patroni's ``--validate-config``): a user can check an edited
``clp.conf`` on any machine, see every error and warning at once with its line, and script on the
exit code (0 valid, 3 errors: the other commands' code for an invalid configuration). As the other
commands, help is ``--help`` only (``-h`` names a host elsewhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from clp.cli.common import Code
from clp.cli.options import Command
from clp.config import ConfigError, ConfigIssue, load_config
from clp.config.script_template import create_missing
from clp.keys import KeyFileError, load_key, write_arbiter_key, write_new_key


def _report(directory: Path) -> tuple[list[ConfigIssue], list[ConfigIssue]]:
    """(errors, warnings) of the configuration in ``directory``."""
    try:
        config = load_config(directory)
    except ConfigError as exc:
        return exc.issues, exc.warnings
    return [], list(config.warnings)


def _create_key(path: Path) -> None:
    if path.exists():
        raise click.ClickException(f"{path} exists; remove it first to replace the key "
                                   f"(every server must then get the new one)")
    if not path.parent.is_dir():
        raise click.ClickException(f"{path.parent} is not a directory")
    write_new_key(path)
    click.echo(f"Created the cluster key {path} (mode 0600).")


def _create_arbiter_key(path: Path, directory: Path) -> None:
    try:
        write_arbiter_key(path, load_key(directory / "cluster.key"))
    except KeyFileError as e:
        raise click.ClickException(str(e)) from None
    except FileExistsError:
        raise click.ClickException(f"{path} exists: choose a new file") from None
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}") from None
    click.echo(f"Created the arbiter key {path} (mode 0600): give it to the witness with "
               f"'clpwitnessd --arbiter CLUSTER={path}'.")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@click.command(cls=Command)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--scripts", "scripts", is_flag=True,
              help="Also create the default start.sh/stop.sh (mode 0755) of every exec resource "
                   "that lacks one, in DIRECTORY/scripts/<group>/<resource>/.")
@click.option("--new-key", is_flag=True,
              help="Also create DIRECTORY/cluster.key, the cluster's authentication key "
                   "(refused if one exists). Copy the directory to every server.")
@click.option("--arbiter-key", "arbiter_key", metavar="FILE", type=click.Path(path_type=Path),
              help="Also write FILE, the key of witness arbitration derived from "
                   "DIRECTORY/cluster.key (refused if FILE exists), for clpwitnessd --arbiter.")
def main(directory: Path, as_json: bool, scripts: bool, new_key: bool,
         arbiter_key: Path | None) -> None:
    """Check the cluster configuration in DIRECTORY (clp.conf and scripts/)."""
    if new_key:
        _create_key(directory / "cluster.key")
    if arbiter_key is not None:
        _create_arbiter_key(arbiter_key, directory)
    if scripts:
        for path in create_missing(directory):
            if not as_json:
                click.echo(f"Created the script {path} (mode 0755).")
    errors, warnings = _report(directory)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "directory": str(directory),
                    "valid": not errors,
                    "errors": [i.to_dict() for i in errors],
                    "warnings": [i.to_dict() for i in warnings],
                },
                indent=2,
            )
        )
    else:
        for issue in errors:
            click.echo(f"Error: {issue}")
        for issue in warnings:
            click.echo(f"Warning: {issue}")
        summary = f"{_plural(len(errors), 'error')}, {_plural(len(warnings), 'warning')}."
        if errors:
            click.echo(f"Invalid configuration: {summary}")
        else:
            click.echo(f"The configuration is valid: {summary}")
            click.echo("Command succeeded.")
    raise SystemExit(int(Code.INVALID_CONFIG) if errors else 0)
