"""The sample cluster configurations shipped in ``clp/samples``, made ready for a lab.

``clp/samples/lab2`` is the seed's two-server example (chapter 5, "2 ノードの構成設定例") with its
groups and exec1 scripts. Tests and demos need it with other heartbeat values or more servers:
the cluster/servers/LAN part then comes from :func:`generate_lab_config`, and the rest (disk and
COM heartbeats, groups, ports, sync wait, network partition) from the sample.
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
    names = list(lab["servers"])
    others = [_for_servers(ic, names) for ic in sample["interconnects"] if ic["type"] != "lan"]
    sample["interconnects"] = lab["interconnects"] + [ic for ic in others if ic]
    for resolver in sample.get("network_partition", {}).get("resolvers") or []:
        resolver["servers"] = names
    conf = dest_dir / "clp.conf"
    conf.write_text(f"# clp/samples/lab2 for {n_servers} servers (clp.lab.samples)\n"
                    + yaml.safe_dump(sample, sort_keys=False, default_flow_style=None))
    return conf


def _for_servers(ic: dict, names: list[str]) -> dict | None:
    """The sample's disk heartbeat for every server; its serial cable (server1-server2 only)
    and other paths as they are."""
    if ic["type"] == "disk":
        device = next(iter(ic["devices"].values()))
        return {**ic, "devices": {name: device for name in names}}
    return ic


def witness_arbitration(conf: dict, timeout: float = 1.0) -> dict:
    """``conf`` (clp.conf as data) with witness arbitration by the lab router's witness in
    place of its resolvers, for every server; ``timeout``: the witness's, the ping budget of
    the sample (0.5 s x 2 tries) by default, so both resolve as fast."""
    from clp.config.lab import WITNESS_TARGET

    conf.setdefault("network_partition", {})["resolvers"] = [{
        "type": "witness", "target": WITNESS_TARGET, "servers": list(conf["servers"]),
        "interval": 1, "timeout": timeout}]
    return conf
