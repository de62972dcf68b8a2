"""The sample cluster configurations shipped in ``clp/samples``, made ready for a lab.

``clp/samples/lab2`` is the seed's two-server example (chapter 5, "2 ノードの構成設定例") with its
groups and exec1 scripts. Tests and demos need it with other heartbeat values or more servers:
the cluster/servers/interconnects part then comes from :func:`generate_lab_config`, and the rest
(groups, ports, sync wait, network partition) from the sample.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from clp.config.lab import generate_lab_config

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
LAB2 = SAMPLES_DIR / "lab2"


def write_sample_config(dest_dir: Path, n_servers: int = 2, interval: float = 1.0,
                        timeout: float = 10.0, sync_wait: float | None = None) -> Path:
    """Copy the two-server sample to ``dest_dir`` for ``n_servers`` servers; returns clp.conf.

    The heartbeat interval/timeout (and the sync wait, if given) replace the sample's; for more
    than two servers the servers and interconnect addresses are the lab's usual ones."""
    dest_dir = Path(dest_dir)
    shutil.copytree(LAB2, dest_dir, dirs_exist_ok=True)
    sample = yaml.safe_load((LAB2 / "clp.conf").read_text())
    lab = yaml.safe_load(generate_lab_config(n_servers, interval, timeout))
    sample["cluster"]["heartbeat"] = lab["cluster"]["heartbeat"]
    if sync_wait is not None:
        sample["cluster"]["sync_wait"] = sync_wait
    sample["servers"] = lab["servers"]
    sample["interconnects"] = lab["interconnects"]
    conf = dest_dir / "clp.conf"
    conf.write_text(f"# clp/samples/lab2 for {n_servers} servers (clp.lab.samples)\n"
                    + yaml.safe_dump(sample, sort_keys=False, default_flow_style=None))
    return conf
