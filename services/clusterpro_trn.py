"""``clusterpro_trn``: the transaction service (remote commands, configuration transfer).

A server with its cluster key but no ``clp.conf`` (reinstalled; the seed restores it with
``clpcfctrl --push -h`` from another server) listens on every address at the default transfer
port and serves only configuration pushes; once one is committed it exits with
``EX_TEMPFAIL`` and its supervisor starts it again on the new configuration. After a commit on a
configured server it does the same only when its own listening addresses or port, or the
cluster name, changed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from clp.config import ClusterConfig, ConfigError, load_config
from clp.evt.logsetup import setup_logging
from clp.keys import KeyFileError, load_key
from clp.paths import InstallRoot
from clp.platform import sdnotify

log = logging.getLogger("clp.trn")

DEFAULT_TRANSFER_PORT = 29002
RESTART = 75  # EX_TEMPFAIL: the supervisor starts the service again (on the new files)


def _listen_on(config: ClusterConfig) -> tuple[list[str], int, str]:
    from clp.clusterd.service import local_server_name

    me = local_server_name(config)
    return sorted({ic.addresses[me] for ic in config.interconnects
                   if ic.type == "lan" and me in ic.addresses}), config.ports.transfer, \
        config.name


def _changed_listen(root: InstallRoot, loaded: tuple[list[str], int, str] | None) -> bool:
    """Whether the committed configuration moves this service's addresses or port, or renames
    the cluster (requests are checked against its name)."""
    try:
        return _listen_on(load_config(root.config_dir)) != loaded
    except (ConfigError, SystemExit) as e:
        log.error("the committed configuration does not load here: %s", e)
        return False


async def _serve(root: InstallRoot) -> int:
    from clp.trn.config_transfer import waiting_gateway
    from clp.trn.gateway import Gateway

    key = load_key(root.key_file)
    if root.config_file.exists():
        config = load_config(root.config_dir)
        listen: tuple[list[str], int, str] | None = _listen_on(config)
        gateway = Gateway(root, config.name, key)
        addresses, port, _name = listen
    else:
        listen, addresses, port = None, ["0.0.0.0"], DEFAULT_TRANSFER_PORT
        gateway = waiting_gateway(root, key)
        log.warning("no %s: waiting for a configuration push (clpcfctrl --push -h) on port %d",
                    root.config_file, port)
    servers = [await asyncio.start_server(gateway.serve, host=a, port=port) for a in addresses]
    log.info("transaction service listening on %s port %d", ", ".join(addresses), port)
    stop = asyncio.Event()
    code = 0
    loop = asyncio.get_running_loop()

    def committed() -> None:  # a gateway thread: the reply goes out before the restart
        nonlocal code
        if listen is None or _changed_listen(root, listen):
            code = RESTART
            log.info("configuration committed: restarting to listen as it says")
            loop.call_soon_threadsafe(loop.call_later, 1.0, stop.set)

    gateway.on_config_commit = committed
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sdnotify.ready(f"listening on port {port}")
    await stop.wait()
    sdnotify.stopping()
    for s in servers:
        s.close()
    gateway.close()
    log.info("transaction service stopped (refused requests: %s)", dict(gateway.rejected))
    return code


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
