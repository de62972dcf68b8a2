"""``clplogcc``: collect the logs, configuration and state of the servers, one archive each.

    clplogcc [-h HOST | -n NODE [-n NODE ...]] [-t type1|type2|type3] [-r N] [-o DIR] [-l]
             [--timeout SECONDS]

Every server of the cluster (or ``-h`` one, or the ``-n`` ones) collects itself, through its
``clusterpro_trn`` (:mod:`clp.trn.logstream`), and streams its archive back; ``-l`` collects
this server only, without ``clusterpro_trn``. What each type collects is the table of
:mod:`clp.trn.logcollect`. Archives are written to ``-o DIR`` (default ``<install>/tmp``) as
``<server>-<YYYYmmddHHMMSS>.tar.gz``. The servers are collected at once; one that cannot be
reached, or gives no archive within ``--timeout`` seconds, is reported with its reason and the
others' archives are still written. One result line per server on stdout (the product's
``Collect Log server1 : Success``), its detail on stderr; the exit code is 0 only if every
server gave its archive.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click

from clp.cli.common import Code, finish, require_root
from clp.cli.options import Command
from clp.cli.targets import ClusterTargets, TargetError
from clp.paths import InstallRoot
from clp.trn import logcollect, logstream

DEFAULT_TIMEOUT = 600
CONNECT_TIMEOUT = 5.0  # per interconnect address
IDLE_TIMEOUT = 30.0  # silence from a server (it sends progress every 2 s) that means it is gone
TYPE_ERROR = ("Collect type must be specified 'type1' or 'type2' or 'type3'. "
              "Incorrect collection type is specified.")
SYSLOG_ERROR = "Syslog generation must be specified in the range 1 to 99."


@dataclass
class Result:
    server: str
    word: str  # the product's result word: Success, Timeout, Busy, Failed, No Freespace
    detail: str
    path: Path | None = None


@click.command(cls=Command)
@click.option("-h", "host", metavar="HOST", help="Collect from this server only.")
@click.option("-n", "nodes", metavar="NODE", multiple=True, help="Collect from NODE (repeat).")
@click.option("-t", "collect_type", default=logcollect.DEFAULT_TYPE, show_default=True,
              metavar="TYPE", help="type1 (default set), type2 (wider), type3 (minimal).")
@click.option("-r", "syslog", default=str(logcollect.DEFAULT_SYSLOG), show_default=True,
              metavar="N", help="Syslog generations to collect (1 to 99).")
@click.option("-o", "out", metavar="DIR", help="Directory of the archives (default "
                                               "<install>/tmp).")
@click.option("-l", "local", is_flag=True, help="This server only, without clusterpro_trn.")
@click.option("--timeout", type=click.IntRange(5, 3600), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds one server may take to give its archive.")
def main(host: str | None, nodes: tuple[str, ...], collect_type: str, syslog: str,
         out: str | None, local: bool, timeout: int) -> None:
    """Collect logs, configuration and state into one archive per server."""
    require_root()
    if collect_type not in logcollect.TYPES:
        finish(Code.INVALID_OPTION, f"-t {collect_type}", product=TYPE_ERROR)
    if not syslog.isdigit() or not 1 <= int(syslog) <= 99:
        finish(Code.INVALID_OPTION, f"-r {syslog}", product=SYSLOG_ERROR)
    if host and nodes:
        finish(Code.INVALID_OPTION, "-h and -n cannot be used together.")
    if local and (host or nodes):
        finish(Code.INVALID_OPTION, "-l collects this server only: it goes without -h and -n.")
    root = InstallRoot.from_env()
    out_dir = _out_dir(root, out)
    if local:
        results = [_collect_local(root, collect_type, int(syslog), out_dir, timeout)]
    else:
        results = _collect_remote(root, host, nodes, collect_type, int(syslog), out_dir, timeout)
    for r in results:
        click.echo(f"Collect Log {r.server} : {r.word}")
        click.echo(f"{r.server}: {r.detail}", err=True)
    sys.exit(Code.SUCCESS if all(r.word == "Success" for r in results) else Code.PARTIAL)


def _out_dir(root: InstallRoot, out: str | None) -> Path:
    if out is None:
        path = root.root / "tmp"
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            finish(Code.INTERNAL, f"cannot make {path}: {e.strerror}")
        return path
    path = Path(out).absolute()
    if not path.is_dir():
        finish(Code.INVALID_OPTION, f"The output path {out} does not exist or is not a "
                                    f"directory.")
    if not os.access(path, os.W_OK | os.X_OK):
        finish(Code.INVALID_OPTION, f"The output path {out} is not writable.")
    return path


def _collect_local(root: InstallRoot, collect_type: str, syslog: int, out_dir: Path,
                   timeout: int) -> Result:
    server = logcollect.local_server(root)
    path = out_dir / logcollect.archive_name(server)
    t0 = time.monotonic()
    try:
        index = logcollect.collect(root, server, collect_type, syslog, path, float(timeout))
    except (OSError, logcollect.CollectError) as e:
        path.unlink(missing_ok=True)
        word = "No Freespace" if getattr(e, "errno", None) == 28 else "Failed"
        return Result(server, word, str(e))
    failed = [e["item"] for e in index["items"] if not e.get("ok")]
    return Result(server, "Success", _done(path, time.monotonic() - t0, failed), path)


def _done(path: Path, seconds: float, failed: list[str]) -> str:
    text = f"{path} ({path.stat().st_size} bytes in {seconds:.1f} s)"
    return text + (f"; items that failed (see index.json): {', '.join(failed)}"
                   if failed else "")


def _collect_remote(root: InstallRoot, host: str | None, nodes: tuple[str, ...],
                    collect_type: str, syslog: int, out_dir: Path, timeout: int
                    ) -> list[Result]:
    try:
        t = ClusterTargets(root)
        servers = t.select(False, host) if host else list(t.config.server_names)
    except TargetError as e:
        finish(e.code, str(e), e.product)
    for node in nodes:
        if node not in t.config.server_names:
            finish(Code.INVALID_OPTION, f"{node} is not a server of cluster {t.config.name}.")
    if nodes:
        servers = list(dict.fromkeys(nodes))
    with ThreadPoolExecutor(len(servers)) as pool:
        return list(pool.map(lambda s: _fetch(t, s, collect_type, syslog, out_dir, timeout),
                             servers))


def _fetch(t: ClusterTargets, server: str, collect_type: str, syslog: int, out_dir: Path,
           timeout: int) -> Result:
    """One server's archive, trying its interconnect addresses in priority order until one
    accepts the connection."""
    from clp.net import frames

    t0 = time.monotonic()
    deadline = t0 + timeout
    # the server stops collecting early enough to send what it has within our deadline
    budget = max(1.0, min(logstream.MAX_BUDGET, timeout * 0.75))
    request = frames.new_request(t.config.name, t.me, "logcc",
                                 logstream.request_args(collect_type, syslog, budget))
    errors: list[logstream.FetchError] = []
    for ic in t.config.interconnects:
        address = ic.addresses.get(server) if ic.type == "lan" else None
        if not address:
            continue
        try:
            path, reply = logstream.fetch(address, t.config.ports.transfer, t.key, request,
                                          out_dir, deadline, CONNECT_TIMEOUT, IDLE_TIMEOUT)
        except logstream.FetchError as e:
            errors.append(e)
            if e.connected or time.monotonic() >= deadline:
                break
            continue
        failed = list(reply.get("failed_items", []))
        return Result(server, "Success", _done(path, time.monotonic() - t0, failed), path)
    if not errors:
        return Result(server, "Failed", "no interconnect address of this server in clp.conf")
    why = "; ".join(map(str, errors))
    if not any(e.connected for e in errors):
        why = f"unreachable on every interconnect ({why})"
    return Result(server, errors[-1].word, why)


if __name__ == "__main__":
    sys.exit(main())
