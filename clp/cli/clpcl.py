"""``clpcl``: start, stop, restart, suspend and resume the cluster service.

    clpcl -s [-a | -h HOST] [--web] [--alert]        start
    clpcl -t [-a | -h HOST] [-w WAIT] [--web] [--alert]   stop
    clpcl -r [-a | -h HOST] [--web] [--alert]        restart
    clpcl --suspend [-a] [--force] / --resume [-a]   the whole cluster

As the product, ``-a`` prints one line per server (``Start server1 : Command succeeded.``) and
nothing more; suspend and resume always act on every server (``-a`` is accepted for the NEC
procedures that write it). ``--web`` / ``--alert`` also start, stop or restart
``clusterpro_webmgr`` / ``clusterpro_alertsync`` where they are installed (a server without them
says so and the command goes on). While the cluster is suspended only ``--resume`` is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from clp.cli.common import Code, exclusive, finish, product_line, require_root
from clp.cli.options import Command
from clp.cli.targets import ClusterTargets, Outcome, TargetError
from clp.paths import InstallRoot

START_WAIT = 60.0
EXTRA_SERVICES = {"web": "clusterpro_webmgr", "alert": "clusterpro_alertsync"}


def _start(t: ClusterTargets, server: str, wait: float | None) -> Outcome:
    out = t.service(server, "start")
    if not out.ok:
        return out
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:  # "succeeded" means it answers, not just that it forked
        status = t.control(server, "status")
        if status.ok:
            return status
        time.sleep(0.2)
    return Outcome(False, Code.NOT_RUNNING,
                   f"The cluster service on {server} did not answer within {START_WAIT:.0f} s.", {})


def _stop(t: ClusterTargets, server: str, wait: float | None) -> Outcome:
    out = t.service(server, "stop")
    if not out.ok or wait is None:
        return out
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:  # -w: wait until it no longer answers
        if not t.control(server, "status", timeout=2).ok:
            return out
        time.sleep(0.2)
    return Outcome(False, 16, f"The cluster service on {server} was still running "
                              f"{wait:g} s after the stop request.", {})


def _restart(t: ClusterTargets, server: str, wait: float | None) -> Outcome:
    out = _stop(t, server, wait)
    return _start(t, server, wait) if out.ok else out


Action = Callable[[ClusterTargets, str, float | None], Outcome]
ACTIONS: dict[str, tuple[str, Action]] = {
    "start": ("Start", _start), "stop": ("Stop", _stop), "restart": ("Restart", _restart)}


@click.command(cls=Command)
@click.option("-s", "action", flag_value="start", help="Start the cluster service.")
@click.option("-t", "action", flag_value="stop", help="Stop the cluster service.")
@click.option("-r", "action", flag_value="restart", help="Restart the cluster service.")
@click.option("--suspend", "action", flag_value="suspend", help="Suspend the whole cluster.")
@click.option("--resume", "action", flag_value="resume", help="Resume the whole cluster.")
@click.option("-a", "all_servers", is_flag=True, help="On every server of the cluster.")
@click.option("-h", "host", metavar="HOST", help="On the named server.")
@click.option("-w", "wait", type=click.IntRange(1, 3600), metavar="WAIT",
              help="With -t (and -r): wait up to WAIT seconds for the service to stop.")
@click.option("--web", is_flag=True, help="Also the WebManager service (clusterpro_webmgr).")
@click.option("--alert", is_flag=True,
              help="Also the alert synchronization service (clusterpro_alertsync).")
@click.option("--apito", type=click.IntRange(1, 9999), metavar="TIMEOUT",
              help="Accepted for the product's scripts (clp's requests have their own limits).")
@click.option("--force", is_flag=True, help="Suspend even when some servers are down.")
def main(action: str | None, all_servers: bool, host: str | None, wait: int | None,
         web: bool, alert: bool, apito: int | None, force: bool) -> None:
    """Operate the cluster service."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -r, --suspend, --resume.")
    if (web or alert or wait) and action in ("suspend", "resume"):
        finish(Code.INVALID_OPTION, "--web, --alert and -w go with -s, -t or -r.")
    with exclusive("clpcl"):
        try:
            targets = ClusterTargets(InstallRoot.from_env())
            if action in ("suspend", "resume"):  # always the whole cluster; -a, -h accepted
                _whole_cluster(targets, action, force)
            servers = targets.select(all_servers, host)
        except TargetError as e:
            finish(e.code, str(e), e.product)
        if _suspended(targets, servers):
            finish(Code.SUSPENDED, "The cluster is suspended: only clpcl --resume can be used.")
        label, fn = ACTIONS[action]
        extra = [EXTRA_SERVICES[k] for k, on in (("web", web), ("alert", alert)) if on]
        results = []
        for s in servers:
            out = fn(targets, s, float(wait) if wait else None)
            if out.ok:
                _extra_services(targets, s, action, extra)
            results.append((s, out))
        _report(label, results, many=all_servers)


def _suspended(t: ClusterTargets, servers: list[str]) -> bool:
    """Whether the cluster is suspended, as this server or a target sees it (this server's
    service may be the one that is stopped)."""
    for server in dict.fromkeys([t.me, *servers]):
        status = t.control(server, "status", timeout=5)
        if status.ok:
            return bool(status.data.get("suspended"))
    return False


def _extra_services(t: ClusterTargets, server: str, action: str, names: list[str]) -> None:
    for name in names:
        out = t.service(server, action, name)
        if not out.ok:
            click.echo(f"{name} on {server}: {out.message}", err=True)


def _whole_cluster(t: ClusterTargets, action: str, force: bool) -> None:
    servers = list(t.config.server_names)
    if action == "suspend" and not force:
        status = {s: t.control(s, "status") for s in servers}
        down = [s for s, o in status.items() if not o.ok]
        if down:
            finish(Code.PARTIAL, f"Cannot suspend: the cluster service is not reachable on "
                   f"{', '.join(down)}. Use --force to suspend the others.",
                   product="All servers must be activated. Check the status of servers.")
    results = [(s, t.control(s, action)) for s in servers]
    if force:  # servers that are down are expected to fail; report but don't fail the command
        results = [(s, o) for s, o in results if o.code not in (Code.NOT_RUNNING,
                                                                  Code.UNREACHABLE)]
    _report(action.capitalize(), results, many=True)


def _report(label: str, results: list[tuple[str, Outcome]], many: bool) -> None:
    """``-a``: one line per server, the product's, and the exit code says whether all did."""
    failed = [(s, o) for s, o in results if not o.ok]
    if many:
        for server, o in results:
            text = product_line(o.code if not o.ok else 0) or o.message
            click.echo(f"{label} {server} : {text}")
            if not o.ok and o.message and o.message != text:
                click.echo(f"{label} {server} : {o.message}", err=True)
        raise SystemExit(int(Code.PARTIAL) if failed else 0)
    (server, o), = results
    if not o.ok:
        finish(o.code, o.message)
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
