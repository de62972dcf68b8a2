"""``clptoratio``: extend every heartbeat timeout for a while, cluster-wide.

    clptoratio -r RATIO -t TIME     multiply the timeouts by RATIO for TIME (30m, 12h, 2d, 90s)
    clptoratio -i                   back to the configured timeouts (ratio 1)
    clptoratio -s [--json]          show the ratio in force

Set and reset apply to every server of the cluster (the product's behaviour: a ratio on one
server only would make it declare its peers down later than they declare it). A server that is
down at that moment keeps its old ratio; the command says so and exits with code 9.
"""

from __future__ import annotations

import re
import sys
import time

import click

from clp.cli.common import Code, finish, json_option, print_json, require_root, result_line
from clp.cli.targets import ClusterTargets, Outcome, TargetError
from clp.clusterd.toratio import MAX_PERIOD, MAX_RATIO
from clp.paths import InstallRoot

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_RE = re.compile(r"^([1-9][0-9]{0,7})([smhd])$")


def parse_time(text: str) -> float:
    """``30m`` -> 1800.0; raises ValueError naming what is wrong."""
    m = TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"time {text!r}: a positive number followed by s, m, h or d "
                         f"(for example 30m, 12h, 2d)")
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds > MAX_PERIOD:
        raise ValueError(f"time {text!r}: at most 366 days")
    return seconds


def _when(until: float | None) -> str:
    return "-" if until is None else time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(until))


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-r", "ratio", type=int, metavar="RATIO", help="Timeout ratio (integer, 1-10000).")
@click.option("-t", "period", metavar="TIME", help="How long: a number and s, m, h or d.")
@click.option("-i", "reset", is_flag=True, help="Reset the ratio to 1.")
@click.option("-s", "show", is_flag=True, help="Show the ratio in force.")
@json_option
def main(ratio: int | None, period: str | None, reset: bool, show: bool, as_json: bool) -> None:
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
        if not 1 <= ratio <= MAX_RATIO:
            finish(Code.INVALID_OPTION, f"ratio {ratio}: an integer from 1 to {MAX_RATIO}.")
        try:
            args = {"ratio": ratio, "period": parse_time(period)}
        except ValueError as e:
            finish(Code.INVALID_OPTION, f"{e}.")
    try:
        targets = ClusterTargets(InstallRoot.from_env())
    except TargetError as e:
        finish(e.code, str(e))
    if show:
        _show(targets, as_json)
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
            click.echo(f"{server} : {result_line(o.code, o.message)}", err=True)
    if failed:
        finish(Code.PARTIAL, f"The ratio was not changed on {', '.join(failed)}.")
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
