"""Time of a full walk of the product's tree (.1.3.6.1.4.1.119.2.3.207) through snmpd and
clpsnmpagent, inside server1 of a lab running the seed's sample cluster: snmpwalk (one GETNEXT
per object), snmpbulkwalk (GETBULK), and snmpwalk over SNMPv3 authPriv; the number of objects;
and `clpstat --json`, which reads the same state, as the anchor.

Usage: python benchmarks/snmpwalk_time.py [--runs N]   (root; its own lab)
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import write_sample_config  # noqa: E402
from clp.snmp.oids import PRODUCT  # noqa: E402
from tests.integration.labutil import wait_all_online  # noqa: E402
from tests.integration.snmplab import (  # noqa: E402
    COMMUNITY,
    PORT,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    snmpd_in,
)

TIMER = r"""
import json, subprocess, sys, time
runs, out = int(sys.argv[1]), {}
for argv in json.loads(sys.argv[2]):
    times, objects = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        objects = sum(1 for line in r.stdout.splitlines() if "No more variables" not in line)
    out[argv[0] + " " + argv[1]] = {"times": times, "objects": objects}
print(json.dumps(out))
"""

V2 = ["-v2c", "-c", COMMUNITY]
V3 = ["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", V3_AUTH, "-x", "AES", "-X",
      V3_PRIV]


def walks() -> list[list[str]]:
    target = [f"127.0.0.1:{PORT}", f".{PRODUCT}"]
    return [["snmpwalk", *V2, "-On", *target], ["snmpbulkwalk", *V2, "-On", *target],
            ["snmpwalk", *V3, "-On", *target], ["clpstat", "--json"]]


def measure(runs: int) -> dict:
    name = "snmpb" + secrets.token_hex(1)
    with tempfile.TemporaryDirectory() as conf:
        write_sample_config(Path(conf), n_servers=2, interval=1.0, timeout=10.0)
        lab = Lab.up(name=name, n=2, config_dir=Path(conf))
    try:
        wait_all_online(lab)
        with snmpd_in(lab, "server1") as snmpd:
            env = [f"{k}={v}" for k, v in snmpd.env.items()]
            r = lab.exec("server1", ["env", *env, "python3", "-c", TIMER, str(runs),
                                     json.dumps(walks())], timeout=600)
            if r.returncode != 0:
                sys.exit(r.stderr)
            return json.loads(r.stdout)
    finally:
        lab.down()
        Lab.cleanup_all(name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    results = measure(args.runs)
    v3 = "snmpwalk -v3"
    stat = "clpstat --json"  # the same state, as the command reads it: the anchor of the table
    rows = [[("snmpwalk v3 authPriv" if k == v3 else k),
             "-" if k == stat else str(v["objects"]),
             f"{median(v['times']) * 1000:.1f}", f"{pct(v['times'], 0.9) * 1000:.1f}",
             "-" if k == stat else f"{median(v['times']) / v['objects'] * 1e6:.0f}",
             f"{median(v['times']) / median(results[stat]['times']):.2f}"]
            for k, v in results.items()]
    print(f"machine: {machine()}")
    print(table(f"full walk of .{PRODUCT} ({args.runs} runs each, inside lab server1, the "
                f"seed's sample cluster)",
                ["walk", "objects", "median ms", "p90 ms", "us per object", "x clpstat"], rows))


if __name__ == "__main__":
    main()
