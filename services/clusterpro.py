"""``clusterpro``: the cluster service (heartbeats, membership, state, control API)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click

from clp.config import ConfigError, load_config
from clp.evt.logsetup import setup_logging
from clp.keys import KeyFileError, load_key
from clp.paths import InstallRoot
from clp.platform.priority import raise_priority


@click.command()
@click.option("--root", type=click.Path(file_okay=False), help="Install root (default: $CLP_ROOT).")
def main(root: str | None) -> None:
    """Run the cluster service in the foreground (its supervisor daemonizes it)."""
    install = InstallRoot.from_env() if root is None else InstallRoot(Path(root))
    install.ensure_dirs()
    setup_logging(install, "nm")
    try:
        config = load_config(install.config_dir)
        key = load_key(install.key_file)
    except ConfigError as e:
        sys.exit("clusterpro: invalid configuration:\n" + "\n".join(map(str, e.issues)))
    except KeyFileError as e:
        sys.exit(f"clusterpro: {e}")
    from clp.clusterd.service import ClusterService

    service = ClusterService(install, config, key)
    raise_priority(logging.getLogger("clp.nm"))
    os.umask(0o022)
    sys.exit(asyncio.run(service.run()))


if __name__ == "__main__":
    main()
