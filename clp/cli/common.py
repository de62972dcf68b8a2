"""What every ``clp*`` command shares: result messages, exit codes, the root check, --json.

Commands print; daemons log. Every command ends with one result line in the product's form
(``Command succeeded.(code:0)``) and exits with that code, so scripts can rely on either.
"""

from __future__ import annotations

import json
import os
import sys
from enum import IntEnum
from typing import Any, NoReturn

import click


class Code(IntEnum):
    SUCCESS = 0
    NOT_ROOT = 1
    INVALID_OPTION = 2
    INVALID_CONFIG = 3
    NOT_RUNNING = 5
    UNREACHABLE = 7
    PARTIAL = 9
    INTERNAL = 11
    GROUP_OFFLINE = 14


MESSAGES = {
    Code.SUCCESS: "Command succeeded.",
    Code.NOT_ROOT: "Log in as administrator.",
    Code.INVALID_OPTION: "Invalid option.",
    Code.INVALID_CONFIG: "Invalid configuration file. Create valid cluster configuration data.",
    Code.NOT_RUNNING: "The cluster service is not running. Check if the cluster service is active.",
    Code.UNREACHABLE: "Could not connect to the server. Check if the cluster service is active.",
    Code.PARTIAL: "The command failed on one or more servers.",
    Code.INTERNAL: "Internal error.",
    Code.GROUP_OFFLINE: "The group is not active on any server.",
}


def result_line(code: int, detail: str = "") -> str:
    base = detail or MESSAGES.get(Code(code) if code in Code._value2member_map_ else Code.INTERNAL)
    return f"{base}(code:{int(code)})"


def finish(code: int, detail: str = "") -> NoReturn:
    """Print the result line (errors to stderr) and exit with ``code``."""
    click.echo(result_line(code, detail), err=code != 0)
    sys.exit(int(code))


def require_root() -> None:
    if os.geteuid() != 0:
        finish(Code.NOT_ROOT)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
