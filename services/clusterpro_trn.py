"""``clusterpro_trn``: the transaction service (remote command gateway for now)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from clp.config import ConfigError, load_config
from clp.evt.logsetup import setup_logging
from clp.keys import KeyFileError, load_key
from clp.paths import InstallRoot
from clp.platform import sdnotify

log = logging.getLogger("clp.trn")


async def _serve(root: InstallRoot) -> int:
    from clp.clusterd.service import local_server_name
    from clp.trn.gateway import Gateway

    config = load_config(root.config_dir)
    key = load_key(root.key_file)
    me = local_server_name(config)
    gateway = Gateway(root, config.name, key)
    addresses = sorted({ic.addresses[me] for ic in config.interconnects
                        if ic.type == "lan" and me in ic.addresses})
    servers = [await asyncio.start_server(gateway.serve, host=a, port=config.ports.transfer)
               for a in addresses]
    log.info("transaction service listening on %s port %d", ", ".join(addresses),
             config.ports.transfer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sdnotify.ready(f"listening on port {config.ports.transfer}")
    await stop.wait()
    sdnotify.stopping()
    for s in servers:
        s.close()
    gateway.close()
    log.info("transaction service stopped (refused requests: %s)", dict(gateway.rejected))
    return 0


def main() -> None:
    root = InstallRoot.from_env()
    root.ensure_dirs()
    setup_logging(root, "trn")
    try:
        sys.exit(asyncio.run(_serve(root)))
    except ConfigError as e:
        sys.exit("clusterpro_trn: invalid configuration:\n" + "\n".join(map(str, e.issues)))
    except KeyFileError as e:
        sys.exit(f"clusterpro_trn: {e}")


if __name__ == "__main__":
    main()
