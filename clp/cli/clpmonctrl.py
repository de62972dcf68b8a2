"""``clpmonctrl``: suspend and resume monitors, show and reset their recovery counters, and the
pseudo failure (dummy failure) that tests a monitor's recovery chain (seed chapter 8, step 1).

    clpmonctrl -s [-m MONITOR ...] [-w WAIT] [-h HOST]   suspend monitoring
    clpmonctrl -r [-m MONITOR ...] [-w WAIT] [-h HOST]   resume monitoring
    clpmonctrl -v [-m MONITOR ...] [-h HOST] [--json]    show the recovery counters
    clpmonctrl -c [-m MONITOR ...] [-h HOST]             reset the recovery counters
    clpmonctrl -e -m MONITOR [-h HOST]                   pseudo failure on
    clpmonctrl -n [-m MONITOR] [-h HOST]                 pseudo failure off (all without -m)

As the product, each acts on one server: this one, or ``-h HOST``. Without ``-m`` every monitor
of that server. Exit codes are the product's: 0 success, 1 not root, 2 invalid option, 4 invalid
configuration, 5 monitor not registered, 6 the monitor type cannot do this, 10 the cluster
service is not running, 200 the server cannot be reached.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, NoReturn

import click

from clp.cli.common import PRODUCT, Code, exclusive, finish, print_json, require_root
from clp.cli.options import Command
from clp.cli.targets import ClusterTargets, TargetError
from clp.paths import InstallRoot

# clpmonctrl's exit codes (the product's), and its sentences for them
OK, NOT_ROOT, BAD_OPTION, BAD_CONFIG, NOT_REGISTERED, NOT_SUPPORTED = 0, 1, 2, 4, 5, 6
NOT_RUNNING, SUSPENDED, ALREADY_RUN, UNREACHABLE, INTERNAL = 10, 11, 128, 200, 255
NOT_REGISTERED_TEXT = "Monitor resource is not registered."
TEXTS = {
    BAD_CONFIG: "Invalid cluster configuration data. Check the cluster configuration "
                "information.",
    NOT_REGISTERED: NOT_REGISTERED_TEXT,
    NOT_RUNNING: "The cluster has been stopped. Check the active status of the cluster daemon "
                 "by using the command such as ps command.",
    SUSPENDED: PRODUCT[Code.SUSPENDED],
    UNREACHABLE: PRODUCT[Code.UNREACHABLE],
    INTERNAL: PRODUCT[Code.INTERNAL],
}
# the daemon's reply codes -> clpmonctrl's
FROM_REPLY = {5: NOT_RUNNING, 7: UNREACHABLE, 19: SUSPENDED, 11: INTERNAL}
ACTIONS = {"s": ("monitor_control", {"action": "suspend"}),
           "r": ("monitor_control", {"action": "resume"}),
           "v": ("monitor_counters", {"action": "show"}),
           "c": ("monitor_counters", {"action": "reset"}),
           "e": ("monitor_pseudo", {"action": "enable"}),
           "n": ("monitor_pseudo", {"action": "disable"})}
RULE = "=" * 69


def _fail(code: int, detail: str) -> NoReturn:
    finish(code, detail, product=TEXTS.get(code))


@click.command(cls=Command)
@click.option("-s", "action", flag_value="s", help="Suspend monitoring.")
@click.option("-r", "action", flag_value="r", help="Resume monitoring.")
@click.option("-v", "action", flag_value="v", help="Show the recovery counters.")
@click.option("-c", "action", flag_value="c", help="Reset the recovery counters.")
@click.option("-e", "action", flag_value="e", help="Pseudo failure on (needs -m).")
@click.option("-n", "action", flag_value="n", help="Pseudo failure off.")
@click.option("-m", "monitors", multiple=True, metavar="MONITOR",
              help="A monitor resource (again for more); all when left out.")
@click.option("-w", "wait", type=int, default=5, show_default=True, metavar="WAIT",
              help="Seconds to wait for a suspend or resume (1 to 999).")
@click.option("-h", "host", metavar="HOST", help="Act on this server instead of this one.")
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's answer as JSON.")
def main(action: str | None, monitors: tuple[str, ...], wait: int, host: str | None,
         as_json: bool) -> None:
    """Control monitor resources."""
    require_root()
    if action is None:
        _fail(BAD_OPTION, "Specify one of -s, -r, -v, -c, -e, -n.")
    if not 1 <= wait <= 999:
        _fail(BAD_OPTION, f"-w {wait}: the wait is 1 to 999 seconds.")
    if action == "e" and len(monitors) != 1:
        _fail(BAD_OPTION, "-e needs one monitor resource (-m MONITOR).")
    try:
        t = ClusterTargets(InstallRoot.from_env())
        (server,) = t.select(False, host)
    except TargetError as e:
        if e.code == 3:
            _fail(BAD_CONFIG, str(e))
        finish(BAD_OPTION, str(e), e.product)
    unknown = [m for m in monitors if m not in {mc.name for mc in t.config.monitors}]
    if unknown:
        _fail(NOT_REGISTERED, f"{unknown[0]} is not a monitor resource of cluster "
                              f"{t.config.name}.")
    op, args = ACTIONS[action]
    args = {**args, "monitors": list(monitors) if monitors else None}
    with exclusive("clpmonctrl", code=ALREADY_RUN) if action not in ("v",) \
            else contextlib.nullcontext():
        out = t.control(server, op, args, timeout=float(wait) + 25)
    if not out.ok:
        _fail(FROM_REPLY.get(out.code, out.code or INTERNAL), out.message)
    if as_json:  # the document alone, so that it parses
        print_json({"server": server, **out.data})
        sys.exit(OK)
    if action in ("v", "c"):
        click.echo(render_counters(server, out.data.get("monitors") or {}))
    finish(OK)


def render_counters(server: str, counters: dict[str, Any]) -> str:
    lines = [f" {'  MONITOR RESOURCE RECOVERY COUNTERS  ':=^69}", f"  Server : {server}"]
    for name, c in counters.items():
        lines.append("  " + "-" * 66)
        lines.append(f"  Monitor Resource {name}")
        lines.append(f"    {'Recovery Target':<22}: {c['target']}")
        lines.append(f"    {'Script Count':<22}: {c['script']['count']} / "
                     f"{c['script']['threshold']}")
        lines.append(f"    {'Reactivation Count':<22}: {c['reactivation']['count']} / "
                     f"{c['reactivation']['threshold']}")
        lines.append(f"    {'Failover Count':<22}: {c['failover']['count']} / "
                     f"{c['failover']['threshold']}")
        lines.append(f"    {'Final Action Count':<22}: {c['final_action']['count']} / 1 "
                     f"({c['final_action']['action']})")
    lines.append(f" {RULE}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
