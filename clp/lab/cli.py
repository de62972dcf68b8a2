"""``clplab``: build, inspect, break and remove a lab cluster (root only).

``--name`` (default ``clp``) may be given before or after the subcommand:
``clplab --name demo up -n 3`` and ``clplab up --name demo -n 3`` are the same.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from clp.config.lab import ROUTER_USES
from clp.lab import chaos, com_cable, hb_disk, shared_disk
from clp.lab.lab import MAX_DISKS, Lab
from clp.lab.netns import LINKS, LabError

DEFAULT_NAME = "clp"
DISK_NAMES = [f"disk{n}" for n in range(1, MAX_DISKS + 1)]


def _name_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The same ``--name`` on every subcommand, overriding the group's."""
    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.ensure_object(dict)["name"] = value

    return click.option("--name", "name_", metavar="NAME", expose_value=False,
                        callback=remember, help="Lab name (default: clp).")(f)


def _name(ctx: click.Context) -> str:
    return ctx.ensure_object(dict).get("name") or DEFAULT_NAME


class LabGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabError as e:
            click.echo(f"clplab: {e}", err=True)
            sys.exit(1)


@click.group(cls=LabGroup)
@click.option("--name", default=None, metavar="NAME", help="Lab name (default: clp).")
@click.pass_context
def main(ctx: click.Context, name: str | None) -> None:
    """An N-server clp cluster on this machine, in namespaces (root only)."""
    ctx.ensure_object(dict)["name"] = name


@main.command()
@_name_option
@click.option("-n", "servers", type=int, default=2, show_default=True, help="Number of servers.")
@click.option("--config", "config_dir", type=click.Path(exists=True, file_okay=False),
              help="Directory with clp.conf (and scripts/) for every server; else generated.")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Heartbeat interval of a generated config (s).")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Heartbeat timeout of a generated config (s).")
@click.option("--service", "services", multiple=True,
              help="Run only this service spec (NAME or NAME=COMMAND); repeatable.")
@click.option("--disks", type=int, default=1, show_default=True,
              help="Shared disks (/dev/lab/disk1...) seen by every server.")
@click.option("--client/--no-client", default=True, show_default=True,
              help="A client namespace on both LANs (198.18.0.200, 198.18.1.200).")
@click.option("--diskhb", is_flag=True,
              help="A heartbeat disk /dev/lab/diskhb1 (one loop device per server) and, in a "
                   "generated config, a disk interconnect on it.")
@click.option("--com", is_flag=True,
              help="A serial cable between server1 and server2 (a socat pty pair, "
                   "/dev/lab/comhb1 in each) and, in a generated config, comhb1 on it.")
@click.option("--router", is_flag=True,
              help="A router on both LANs (198.18.0.254, 198.18.1.254): ping target, and a "
                   "witness / HTTP target on port 29005.")
@click.option("--use", "router_uses", multiple=True, type=click.Choice(ROUTER_USES),
              help="A generated config uses the router (implies --router): witness (witnesshb1),"
                   " ping, http or arbiter (network partition resolvers; arbiter: witness "
                   "arbitration); repeatable.")
@click.option("--installed", "installed_tree", type=click.Path(exists=True, file_okay=False),
              help="Run this installation (make install DESTDIR=D: D/opt/nec/clusterpro) with "
                   "the start commands of its systemd units, instead of the repository.")
@click.pass_context
def up(ctx: click.Context, servers: int, config_dir: str | None, interval: float,
       timeout: float, services: tuple[str, ...], disks: int, client: bool,
       diskhb: bool, com: bool, router: bool, router_uses: tuple[str, ...],
       installed_tree: str | None) -> None:
    """Build the lab and boot every server."""
    lab = Lab.up(name=_name(ctx), n=servers, config_dir=Path(config_dir) if config_dir else None,
                 interval=interval, timeout=timeout, services=list(services) or None,
                 disks=disks, client=client, diskhb=diskhb, com=com, router=router,
                 router_uses=router_uses,
                 installed_tree=Path(installed_tree) if installed_tree else None)
    click.echo(f"lab {lab.name!r} is up: {', '.join(lab.servers)}")


@main.command()
@_name_option
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every server and remove everything of the lab."""
    name = _name(ctx)
    try:
        Lab.load(name).down()
    except LabError:
        Lab.cleanup_all(name)  # a half-built or corrupt lab: remove what can be found
    click.echo(f"lab {name!r} removed")


@main.command()
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """State, init pid and addresses of every server."""
    doc = Lab.load(_name(ctx)).status()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"lab {doc['lab']}" + (f"  partition: {doc['partition']}" if doc["partition"]
                                      else ""))
    for server, s in doc["servers"].items():
        addrs = " ".join(f"{k}={v}" for k, v in s["addresses"].items())
        unplugged = f"  unplugged: {','.join(s['unplugged'])}" if s["unplugged"] else ""
        click.echo(f"  {server:<10} {s['state']:<8} pid {s['init_pid'] or '-':<8} "
                   f"{addrs}{unplugged}")
    for disk, d in doc["disks"].items():
        paths = "  ".join(f"{s} {p['loop']} {p['mode']}" for s, p in d["paths"].items())
        click.echo(f"  /dev/lab/{disk}  {paths}")
    if doc["client"]:
        click.echo("  client     198.18.0.200 198.18.1.200")
    if doc.get("router"):
        r = doc["router"]
        click.echo(f"  router     {' '.join(r['addresses'].values())}  witness {r['witness']} "
                   f"{'pid ' + str(r['witness_pid']) if r['witness_pid'] else 'stopped'}"
                   + (f"  unplugged: {','.join(r['unplugged'])}" if r["unplugged"] else ""))


def _replace_with(lab: Lab, server: str, argv: list[str]) -> None:
    """Become ``nsenter``: output streams, the terminal works, the exit code passes through."""
    argv = lab._nsenter(server, argv)
    os.chdir("/")
    os.execvpe(argv[0], argv, lab._env(server))


@main.command(context_settings={"ignore_unknown_options": True})
@_name_option
@click.argument("server")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec(ctx: click.Context, server: str, command: tuple[str, ...]) -> None:  # noqa: A001
    """Run COMMAND inside SERVER (use -- before it)."""
    _replace_with(Lab.load(_name(ctx)), server, list(command))


@main.command(context_settings={"ignore_unknown_options": True})
@_name_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def client(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Run COMMAND on the lab's client machine (use -- before it)."""
    lab = Lab.load(_name(ctx))
    if not lab.doc.get("client"):
        raise LabError(f"lab {lab.name!r} has no client")
    os.chdir("/")
    argv = ["ip", "netns", "exec", f"{lab.name}-client", *command]
    os.execvpe(argv[0], argv, lab._client_env())


@main.command()
@_name_option
@click.argument("server")
@click.pass_context
def shell(ctx: click.Context, server: str) -> None:
    """Interactive bash inside SERVER."""
    lab = Lab.load(_name(ctx))
    lab.index(server)
    _replace_with(lab, server, ["bash", "-i"])


def _online_everywhere(lab: Lab) -> tuple[bool, str]:
    """(every server sees every server Online, what is still missing)."""
    for observer in lab.servers:
        try:
            r = lab.exec(observer, ["clpstat", "--json"], timeout=20)
        except LabError as e:
            return False, str(e)
        if r.returncode != 0:
            return False, f"clpstat on {observer} failed: {(r.stderr or r.stdout).strip()[-300:]}"
        try:
            seen = json.loads(r.stdout)["membership"]["servers"]
        except (ValueError, KeyError, TypeError):
            return False, f"clpstat --json on {observer} gave no membership"
        states = {s: seen.get(s, {}).get("state", "unknown") for s in lab.servers}
        if any(v != "Online" for v in states.values()):
            return False, f"{observer} sees {states}"
    return True, ""


@main.command("wait-online")
@_name_option
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.pass_context
def wait_online(ctx: click.Context, timeout: float) -> None:
    """Wait until every server sees every server Online."""
    lab = Lab.load(_name(ctx))
    deadline = time.monotonic() + timeout
    why = "not checked"
    while time.monotonic() < deadline:
        ok, why = _online_everywhere(lab)
        if ok:
            click.echo(f"every server of {lab.name!r} sees every server Online")
            return
        time.sleep(0.5)
    raise LabError(f"not every server Online after {timeout:g} s: {why}")


def _fault(action: str, doc: str) -> None:
    @main.command(action, help=doc)
    @_name_option
    @click.argument("server")
    @click.pass_context
    def command(ctx: click.Context, server: str) -> None:
        getattr(Lab.load(_name(ctx)), action)(server)
        click.echo(f"{server}: {action} done")


_fault("crash", "Power off SERVER: SIGKILL every process of it, drop its floating IPs, cut "
                "its shared-disk writes at once (its paths fail until restart).")
@main.command("hang", help="Freeze SERVER: SIGSTOP every process of it, its cables go dark "
                           "(--live: they stay up, its kernel goes on answering).")
@_name_option
@click.argument("server")
@click.option("--live", is_flag=True, help="Keep its cables up: only user space hangs.")
@click.pass_context
def hang(ctx: click.Context, server: str, live: bool) -> None:
    Lab.load(_name(ctx)).hang(server, live=live)
    click.echo(f"{server}: hang{' (cables live)' if live else ''} done")


_fault("resume", "Unfreeze a hung SERVER (SIGCONT, cables back).")
_fault("restart", "Boot a crashed or shut down SERVER again.")


def _cable(action: str, doc: str) -> None:
    @main.command(action, help=doc)
    @_name_option
    @click.argument("server")
    @click.argument("link", type=click.Choice([*LINKS, hb_disk.LINK, com_cable.LINK,
                                               *DISK_NAMES]))
    @click.pass_context
    def command(ctx: click.Context, server: str, link: str) -> None:
        getattr(Lab.load(_name(ctx)), action)(server, link)
        click.echo(f"{server}: {link} {action}ged")


_cable("unplug", "Pull SERVER's cable on LINK (pub or ic1; diskhb: its heartbeat disk path; "
                 "comhb: the serial cable, both ends; disk1...: its path to that shared disk, "
                 "as disk-path SERVER DISK eio). SERVER may be 'router'.")
_cable("plug", "Plug SERVER's cable on LINK back in (disk1...: disk-path SERVER DISK ok).")


@main.command()
@_name_option
@click.argument("server")
@click.argument("pattern")
@click.option("--signal", "sig", default="KILL", show_default=True,
              help="The signal's name (KILL, TERM, STOP ...).")
@click.pass_context
def kill(ctx: click.Context, server: str, pattern: str, sig: str) -> None:
    """A process of SERVER dies: every one whose command line contains PATTERN."""
    import signal

    try:
        number = signal.Signals[f"SIG{sig.upper().removeprefix('SIG')}"]
    except KeyError:
        raise LabError(f"unknown signal {sig!r}") from None
    pids = Lab.load(_name(ctx)).kill(server, pattern, number)
    click.echo(f"{server}: {number.name} to {', '.join(map(str, pids))}")


@main.command()
@_name_option
@click.argument("address")
@click.option("--remove", is_flag=True, help="The other host gives the address back.")
@click.pass_context
def duplicate(ctx: click.Context, address: str, remove: bool) -> None:
    """Another host on the public LAN (the client machine) takes ADDRESS, or gives it back."""
    lab = Lab.load(_name(ctx))
    if remove:
        lab.remove_duplicate_address(address)
    else:
        lab.duplicate_address(address)
    click.echo(f"client: {address} {'removed' if remove else 'added'}")


@main.command("chaos")
@_name_option
@click.option("--seed", type=int, default=None, help="Replay this schedule (default: a new one).")
@click.option("--faults", type=click.IntRange(0, 1000), default=10, show_default=True)
@click.option("--span", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds the faults are spread over (then everything is repaired).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(chaos.KINDS),
              help="Only these fault kinds (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def chaos_command(ctx: click.Context, seed: int | None, faults: int, span: float,
                  kinds: tuple[str, ...], as_json: bool) -> None:
    """Run a seeded schedule of faults against the lab while watching that no floating IP or
    shared disk is active on two servers; at the end every group must run once. Exit 1 if not;
    the report names the seed that replays it."""
    seed = secrets.randbelow(2**31) if seed is None else seed
    report = chaos.run(Lab.load(_name(ctx)), seed, faults, span, kinds or chaos.KINDS)
    click.echo(json.dumps(report.to_dict()) if as_json else report.text())
    ctx.exit(0 if report.ok else 1)


@main.command("disk-path")
@_name_option
@click.argument("server")
@click.argument("disk", type=click.Choice(DISK_NAMES))
@click.argument("mode", type=click.Choice(shared_disk.MODES))
@click.pass_context
def disk_path(ctx: click.Context, server: str, disk: str, mode: str) -> None:
    """SERVER's path to shared DISK works (ok), hangs (every I/O blocks) or fails (eio: every
    I/O, a hang's blocked I/O too, gets EIO). Release a hung path with eio, not ok."""
    Lab.load(_name(ctx)).disk_path(server, disk, mode)
    click.echo(f"{server}: path to {disk} {mode}")


@main.command()
@_name_option
@click.argument("action", type=click.Choice(["stop", "start"]))
@click.pass_context
def witness(ctx: click.Context, action: str) -> None:
    """Stop or start the witness on the lab's router (unplug/plug router LINK cuts its cables)."""
    lab = Lab.load(_name(ctx))
    getattr(lab, f"witness_{action}")()
    click.echo(f"witness {'stopped' if action == 'stop' else 'started'}")


@main.command()
@_name_option
@click.argument("groups", nargs=-1, required=True)
@click.pass_context
def partition(ctx: click.Context, groups: tuple[str, ...]) -> None:
    """Cut both LANs between GROUPS, each a comma list: partition server1 server2,server3."""
    parsed = [[s for s in g.split(",") if s] for g in groups]
    Lab.load(_name(ctx)).partition(parsed)
    click.echo("partitioned: " + " | ".join(",".join(g) for g in parsed))


@main.command()
@_name_option
@click.pass_context
def heal(ctx: click.Context) -> None:
    """Remove the partition."""
    Lab.load(_name(ctx)).heal()
    click.echo("healed")


if __name__ == "__main__":
    main()
