"""What every ``clp*`` command shares: result messages, exit codes, the root check, --json.

Commands print; daemons log. Every command ends with one result line **on standard output**, in
the product's words for the situation (``Command succeeded.``, ``Log in as root.``,
``Invalid option.``, ``Could not connect to the server. Check if the cluster service is
active.`` ...), so that scripts written for the product (``grep -x 'Command succeeded.'``,
``2>/dev/null``) keep working; when clp knows more than the product's sentence says (which
server, which name, what to do), that detail follows as a second line on standard error. The
exit code says what went wrong (docs/commands.md).

No click here: ``clpstat``'s usual forms run without it (it costs more than the rest of the
command); the click parts every command's options share are in :mod:`clp.cli.options`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from enum import IntEnum

TYPE_CHECKING = False  # typing is not imported: see clp.state.layout
if TYPE_CHECKING:
    from typing import Any, NoReturn


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
    SUSPENDED = 19  # the cluster is suspended: the command cannot be used
    ALREADY_RUN = 128  # another run of the same command is in progress


CONNECT = "Could not connect to the server. Check if the cluster service is active."
# The product's sentence for each outcome (the Reference Guide's message tables).
PRODUCT: dict[int, str] = {
    Code.SUCCESS: "Command succeeded.",
    Code.NOT_ROOT: "Log in as root.",
    Code.INVALID_OPTION: "Invalid option.",
    Code.INVALID_CONFIG: "Invalid configuration file. Create valid cluster configuration data.",
    Code.NOT_RUNNING: CONNECT,
    Code.UNREACHABLE: CONNECT,
    Code.PARTIAL: "Processing failed on some servers. Check the status of failed servers.",
    Code.INTERNAL: "Internal error. Check if memory or OS resources are sufficient.",
    Code.SUSPENDED: "The cluster has been suspended. The cluster daemon has been suspended. "
                    "Check activation status of the cluster daemon by using a command such as "
                    "the ps command.",
    Code.ALREADY_RUN: "This command is already run.",
    14: "Invalid server status.",
    15: "Server is not active. Check if the cluster service is active.",
    16: "Internal communication timeout has occurred in the cluster server. If it occurs "
        "frequently, set a longer timeout.",
    18: "Connection was lost. Check if there is a server where the cluster service is stopped "
        "in the cluster.",
}
# A name that is not in the configuration: the product's sentence per kind of name.
INVALID_NAME = {
    "server": "Invalid server name. Specify a valid server name in the cluster.",
    "group": "Invalid group name. Specify a valid group name in the cluster.",
    "resource": "Invalid group resource name. Specify a valid group resource name in the "
                "cluster.",
    "monitor": "Invalid monitor resource name. Specify a valid monitor resource name in the "
               "cluster.",
    "heartbeat": "Invalid heartbeat resource name. Specify a valid heartbeat resource name in "
                 "the cluster.",
    "np": "Invalid network partition resource name. Specify a valid network partition "
          "resource name in the cluster.",
}


# clp's own words for an outcome when the caller has nothing more precise to say
DEFAULT_DETAIL = {Code.NOT_RUNNING: "The cluster service is not running on this server."}


def product_line(code: int) -> str:
    """The product's sentence for ``code`` ("" when the product has none for it)."""
    return PRODUCT.get(int(code), "")


def finish(code: int, detail: str = "", product: str | None = None) -> NoReturn:
    """Print the result line (the product's sentence, else ``detail``) on stdout, clp's detail
    on stderr when it says more, and exit with ``code``."""
    detail = detail or DEFAULT_DETAIL.get(int(code), "")
    line = product or product_line(code) or detail or PRODUCT[Code.INTERNAL]
    print(line, flush=True)
    if detail and detail != line:
        print(detail, file=sys.stderr, flush=True)
    sys.exit(int(code))


def invalid_name(kind: str, name: str, where: str) -> NoReturn:
    """A server, group, resource ... name that the cluster ``where`` does not have."""
    finish(Code.INVALID_OPTION, f"{name} is not a {kind} of cluster {where}.",
           product=INVALID_NAME[kind])


def require_root() -> None:
    if os.geteuid() != 0:
        finish(Code.NOT_ROOT)


def print_json(obj: Any) -> None:
    """``--json``: indented on a terminal, one line otherwise (a script parses it; indenting
    runs json's Python encoder instead of its C one, which cost clpstat a fifth of its time)."""
    if sys.stdout.isatty():
        print(json.dumps(obj, indent=2))
    else:
        print(json.dumps(obj, separators=(",", ":")))


@contextlib.contextmanager
def exclusive(name: str, code: int = Code.ALREADY_RUN) -> Iterator[None]:
    """One run of command ``name`` at a time on this server (the product refuses a second with
    ``This command is already run.``); the lock goes with the process, even a killed one."""
    from clp.paths import InstallRoot

    run_dir = InstallRoot.from_env().run_dir
    with contextlib.suppress(OSError):
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        finish(Code.INTERNAL, f"cannot open the lock of {name}: {e}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            finish(code, f"Another {name} is running on this server.",
                   product=PRODUCT[Code.ALREADY_RUN])
        yield
    finally:
        os.close(fd)
