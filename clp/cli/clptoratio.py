"""``clptoratio``: extend every heartbeat timeout for a while, cluster-wide.

    clptoratio -r RATIO -t TIME     multiply the timeouts by RATIO for TIME (2m, 3h, 4d)
    clptoratio -i                   back to the configured timeouts (ratio 1)
    clptoratio -s [--json]          show the ratio in force

The ratio extends the heartbeat timeout and every monitor's timeout. As the product, TIME is
minutes, hours or days (at most 30 days) and RATIO an integer of 1 or more. Set and reset apply
to every server of the cluster (a ratio on one server only would make it declare its peers down
later than they declare it). A server that is down at that moment keeps its old ratio; the
command says so and exits with code 9.
"""

from __future__ import annotations

import re
import sys
import time

import click

from clp.cli.common import Code, exclusive, finish, print_json, require_root
from clp.cli.options import Command, json_option
from clp.cli.targets import ClusterTargets, Outcome, TargetError
from clp.clusterd.toratio import MAX_PERIOD, MAX_RATIO
from clp.paths import InstallRoot

UNITS = {"m": 60, "h": 3600, "d": 86400}
TIME_RE = re.compile(r"^([1-9][0-9]{0,7})([mhd])$")
BAD_PERIOD = "Set the correct extension period.\nEx) 2m, 3h, 4d"
BAD_RATIO = "Scale factor must be specified by integer value of 1 or more."


def parse_time(text: str) -> float:
    """``30m`` -> 1800.0; raises ValueError naming what is wrong."""
    m = TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"time {text!r}: a positive number of minutes, hours or days "
                         f"(m, h or d)")
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds > MAX_PERIOD:
        raise ValueError(f"time {text!r}: at most 30 days")
    return seconds


def _when(until: float | None) -> str:
    return "-" if until is None else time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(until))


@click.command(cls=Command)
@click.option("-r", "ratio", metavar="RATIO", help="Timeout ratio (integer, 1-10000).")
@click.option("-t", "period", metavar="TIME", help="How long: a number and m, h or d.")
@click.option("-i", "reset", is_flag=True, help="Reset the ratio to 1.")
@click.option("-s", "show", is_flag=True, help="Show the ratio in force.")
@json_option
def main(ratio: str | None, period: str | None, reset: bool, show: bool, as_json: bool) -> None:
    """Extend the heartbeat timeouts of the whole cluster for a while."""
    require_root()
    chosen = sum([ratio is not None or period is not None, reset, show])
    if chosen != 1:
        finish(Code.INVALID_OPTION, "Specify one of: -r RATIO -t TIME, -i, -s.")
    if as_json and not show:
        finish(Code.INVALID_OPTION, "--json goes with -s.")
    args: dict[str, object]
    if show:
        args = {"show": True}
    elif reset:
        args = {"reset": True}
    else:
        if ratio is None or period is None:
            finish(Code.INVALID_OPTION, "-r and -t go together.")
        if not (ratio.isascii() and ratio.isdigit()) or not 1 <= int(ratio) <= MAX_RATIO:
            finish(Code.INVALID_OPTION, f"ratio {ratio}: an integer from 1 to {MAX_RATIO}.",
                   product=BAD_RATIO)
        try:
            args = {"ratio": int(ratio), "period": parse_time(period)}
        except ValueError as e:
            finish(Code.INVALID_OPTION, f"{e}.", product=BAD_PERIOD)
    try:
        targets = ClusterTargets(InstallRoot.from_env())
    except TargetError as e:
        finish(e.code, str(e), e.product)
    if show:
        _show(targets, as_json)
    with exclusive("clptoratio"):
        results = [(s, targets.control(s, "toratio", args)) for s in targets.config.server_names]
    _report(results)


def _show(t: ClusterTargets, as_json: bool) -> None:
    out = t.control(t.me, "toratio", {"show": True})
    if not out.ok:
        finish(out.code, out.message)
    if as_json:  # JSON alone on stdout, as clpstat --json
        print_json({"server": t.me, **out.data})
        sys.exit(0)
    else:
        click.echo(f"present toratio : {out.data['ratio']:g}")
        click.echo(f"heartbeat timeout : {out.data['timeout']:g} s")
        click.echo(f"the end of period : {_when(out.data.get('until'))}")
    finish(Code.SUCCESS)


def _report(results: list[tuple[str, Outcome]]) -> None:
    failed = [s for s, o in results if not o.ok]
    for server, o in results:
        if not o.ok:
            click.echo(f"{server} : {o.message}", err=True)
    codes = {o.code for _, o in results}
    if len(failed) == len(results) and len(codes) == 1:  # one reason everywhere (suspended)
        finish(codes.pop(), f"The ratio was not changed on {', '.join(failed)}.")
    if failed:
        finish(Code.PARTIAL, f"The ratio was not changed on {', '.join(failed)}.")
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
