"""``clpwitnessd``: the witness server, run on a machine outside the cluster (docs/witness.md).

It needs no configuration and no key: it relays heartbeat records between the servers of any
number of clusters and answers ``GET /`` so it can also be an ``http`` network partition target.
The default port 29005 sits next to the product's 29001-29003 and is unprivileged, so the
witness runs as any user. SIGTERM or SIGINT stops it cleanly. It logs to stderr (its supervisor,
systemd or the lab, keeps the log).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from clp.net.hostport import split_host_port
from clp.witness.limits import FD_MARGIN, MAX_CONNECTIONS, MAX_PER_CLIENT, raise_open_file_limit
from clp.witness.store import DEFAULT_EXPIRY, DEFAULT_MAX_CLUSTERS, Store
from clp.witness.wire import DEFAULT_PORT
from clp.witness.witness_server import WitnessServer

log = logging.getLogger("clp.witness")


def parse_listen(ctx: click.Context | None, param: click.Parameter | None,
                 value: str) -> tuple[str, int]:
    """``ADDR:PORT`` / ``[V6]:PORT`` -> (host, port); click.BadParameter with the reason."""
    try:
        return split_host_port(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


async def _serve(host: str, port: int, store: Store, max_connections: int,
                 max_per_client: int) -> int:
    open_files = raise_open_file_limit(max_connections + FD_MARGIN)
    server = WitnessServer(store, max_connections=max_connections, max_per_client=max_per_client)
    try:
        await server.start(host, port)
    except OSError as e:
        log.error("cannot listen on %s port %d: %s", host, port, e.strerror or e)
        return 2
    log.info("witness listening on %s port %d (records expire after %g s, at most %d "
             "clusters)", host, server.port, store.expiry, store.max_clusters)
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
def main(listen: tuple[str, int], expiry: float, max_clusters: int, max_connections: int,
         max_per_client: int) -> None:
    """Relay heartbeat records between the servers of clp clusters."""
    host, port = listen
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s clpwitnessd %(levelname)s %(message)s")
    sys.exit(asyncio.run(_serve(host, port, Store(expiry, max_clusters), max_connections,
                                max_per_client)))


if __name__ == "__main__":
    main()
