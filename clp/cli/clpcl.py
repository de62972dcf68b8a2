"""``clpcl``: start, stop, restart, suspend and resume the cluster service.

    clpcl -s [-a | -h HOST]      start          clpcl -t [-a | -h HOST]   stop
    clpcl -r [-a | -h HOST]      restart        clpcl --suspend [--force] / --resume
"""

from __future__ import annotations

import time

import click

from clp.cli.common import Code, finish, require_root, result_line
from clp.cli.targets import ClusterTargets, Outcome, TargetError
from clp.paths import InstallRoot

START_WAIT = 60.0


def _start(t: ClusterTargets, server: str) -> Outcome:
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


def _stop(t: ClusterTargets, server: str) -> Outcome:
    return t.service(server, "stop")


def _restart(t: ClusterTargets, server: str) -> Outcome:
    out = _stop(t, server)
    return _start(t, server) if out.ok else out


ACTIONS = {"start": ("Start", _start), "stop": ("Stop", _stop), "restart": ("Restart", _restart)}


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-s", "action", flag_value="start", help="Start the cluster service.")
@click.option("-t", "action", flag_value="stop", help="Stop the cluster service.")
@click.option("-r", "action", flag_value="restart", help="Restart the cluster service.")
@click.option("--suspend", "action", flag_value="suspend", help="Suspend the whole cluster.")
@click.option("--resume", "action", flag_value="resume", help="Resume the whole cluster.")
@click.option("-a", "all_servers", is_flag=True, help="On every server of the cluster.")
@click.option("-h", "host", metavar="HOST", help="On the named server.")
@click.option("--force", is_flag=True, help="Suspend even when some servers are down.")
def main(action: str | None, all_servers: bool, host: str | None, force: bool) -> None:
    """Operate the cluster service."""
    require_root()
    if action is None:
        finish(Code.INVALID_OPTION, "Specify one of -s, -t, -r, --suspend, --resume.")
    try:
        targets = ClusterTargets(InstallRoot.from_env())
        if action in ("suspend", "resume"):
            if all_servers or host:
                finish(Code.INVALID_OPTION, f"--{action} applies to the whole cluster; "
                       "-a and -h cannot be used with it.")
            _whole_cluster(targets, action, force)
        servers = targets.select(all_servers, host)
    except TargetError as e:
        finish(e.code, str(e))
    label, fn = ACTIONS[action]
    results = [(s, fn(targets, s)) for s in servers]
    _report(label, results, many=all_servers)


def _whole_cluster(t: ClusterTargets, action: str, force: bool) -> None:
    servers = list(t.config.server_names)
    if action == "suspend" and not force:
        status = {s: t.control(s, "status") for s in servers}
        down = [s for s, o in status.items() if not o.ok]
        if down:
            finish(Code.PARTIAL, f"Cannot suspend: the cluster service is not reachable on "
                   f"{', '.join(down)}. Use --force to suspend the others.")
    results = [(s, t.control(s, action)) for s in servers]
    if force:  # servers that are down are expected to fail; report but don't fail the command
        results = [(s, o) for s, o in results if o.code not in (Code.NOT_RUNNING,
                                                                  Code.UNREACHABLE)]
    _report(action.capitalize(), results, many=True)


def _report(label: str, results: list[tuple[str, Outcome]], many: bool) -> None:
    failed = [o for _, o in results if not o.ok]
    if many:
        for server, o in results:
            line = result_line(o.code if not o.ok else 0, o.message if not o.ok else "")
            click.echo(f"{label} {server} : {line}", err=not o.ok)
        if failed:
            finish(Code.PARTIAL)
        finish(Code.SUCCESS)
    (server, o), = results
    if not o.ok:
        finish(o.code, o.message)
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
