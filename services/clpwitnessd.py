"""``clpwitnessd``: the witness server, run on a machine outside the cluster (docs/witness.md).

It needs no configuration and no key: it relays heartbeat records between the servers of any
number of clusters and answers ``GET /`` so it can also be an ``http`` network partition target.
Given a cluster's arbiter key (``--arbiter CLUSTER=FILE``), it also arbitrates that cluster's
partitions (``witness`` resolvers, docs/network-partition.md).
The default port 29005 sits next to the product's 29001-29003 and is unprivileged, so the
witness runs as any user. SIGTERM or SIGINT stops it cleanly. It logs to stderr (its supervisor,
systemd or the lab, keeps the log).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

import click

from clp.keys import KeyFileError, load_arbiter_key
from clp.net.hostport import split_host_port
from clp.witness.arbitration import DEFAULT_HOLD, Arbitration
from clp.witness.limits import FD_MARGIN, MAX_CONNECTIONS, MAX_PER_CLIENT, raise_open_file_limit
from clp.witness.store import DEFAULT_EXPIRY, DEFAULT_MAX_CLUSTERS, Store
from clp.witness.wire import CLUSTER_RE, DEFAULT_PORT
from clp.witness.witness_server import WitnessServer

log = logging.getLogger("clp.witness")


def parse_listen(ctx: click.Context | None, param: click.Parameter | None,
                 value: str) -> tuple[str, int]:
    """``ADDR:PORT`` / ``[V6]:PORT`` -> (host, port); click.BadParameter with the reason."""
    try:
        return split_host_port(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def parse_arbiters(ctx: click.Context | None, param: click.Parameter | None,
                   values: tuple[str, ...]) -> dict[str, Path]:
    """``CLUSTER=FILE`` options -> {cluster: key file}; click.BadParameter with the reason."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not CLUSTER_RE.match(name) or not path:
            raise click.BadParameter(f"{value!r} is not CLUSTER=FILE (a cluster name of 1 to 31 "
                                     f"of A-Z a-z 0-9 _ -, then the arbiter key file)")
        if name in out:
            raise click.BadParameter(f"cluster {name!r} is given twice")
        out[name] = Path(path)
    return out


async def _serve(host: str, port: int, store: Store, max_connections: int,
                 max_per_client: int, arbitration: Arbitration) -> int:
    open_files = raise_open_file_limit(max_connections + FD_MARGIN)
    server = WitnessServer(store, max_connections=max_connections, max_per_client=max_per_client,
                           arbitration=arbitration)
    try:
        await server.start(host, port)
    except OSError as e:
        log.error("cannot listen on %s port %d: %s", host, port, e.strerror or e)
        return 2
    log.info("witness listening on %s port %d (records expire after %g s, at most %d "
             "clusters)", host, server.port, store.expiry, store.max_clusters)
    if arbitration.keys:
        log.info("arbitrating %s; granting nothing for %g s (epoch %s)",
                 ", ".join(sorted(arbitration.keys)), arbitration.hold, arbitration.epoch)
    if server.max_connections < max_connections:
        log.info("at most %d connections, not %d: the open-file limit is %d (raise the hard "
                 "limit, e.g. LimitNOFILE= in the systemd unit)", server.max_connections,
                 max_connections, open_files)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    log.info("witness stopped after %d requests (errors: %s)", server.requests,
             server.errors or "none")
    return 0


@click.command()
@click.option("--listen", default=f"0.0.0.0:{DEFAULT_PORT}", show_default=True,
              metavar="ADDR:PORT", callback=parse_listen,
              help="Address and TCP port to listen on ([V6]:PORT for IPv6).")
@click.option("--expiry", type=click.FloatRange(min=1.0), default=DEFAULT_EXPIRY,
              show_default=True, help="Seconds after which a server's last record is dropped.")
@click.option("--max-clusters", type=click.IntRange(min=1), default=DEFAULT_MAX_CLUSTERS,
              show_default=True, help="Clusters served at most (503 for one more).")
@click.option("--max-connections", type=click.IntRange(min=1), default=MAX_CONNECTIONS,
              show_default=True,
              help="Connections held at most (fewer if the open-file limit is lower).")
@click.option("--max-per-client", type=click.IntRange(min=1), default=MAX_PER_CLIENT,
              show_default=True, help="Connections held at most per client address (IPv6: /64).")
@click.option("--arbiter", "arbiters", multiple=True, metavar="CLUSTER=FILE",
              callback=parse_arbiters,
              help="Arbitrate the partitions of CLUSTER, with the arbiter key in FILE (from "
                   "'clpcfchk --arbiter-key'); repeat for more clusters.")
@click.option("--arbiter-hold", type=click.FloatRange(min=0.1), default=DEFAULT_HOLD,
              show_default=True,
              help="Seconds after its start the witness grants nothing (it forgot every claim): "
                   "longer than every cluster's lease.")
def main(listen: tuple[str, int], expiry: float, max_clusters: int, max_connections: int,
         max_per_client: int, arbiters: dict[str, Path], arbiter_hold: float) -> None:
    """Relay heartbeat records between the servers of clp clusters, and arbitrate the
    partitions of those whose arbiter key it holds."""
    host, port = listen
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s clpwitnessd %(levelname)s %(message)s")
    try:
        keys = {name: load_arbiter_key(path) for name, path in arbiters.items()}
    except KeyFileError as e:
        raise click.BadParameter(str(e), param_hint="'--arbiter'") from None
    arbitration = Arbitration(keys, arbiter_hold, time.monotonic)
    sys.exit(asyncio.run(_serve(host, port, Store(expiry, max_clusters), max_connections,
                                max_per_client, arbitration)))


if __name__ == "__main__":
    main()
