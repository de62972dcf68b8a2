"""clpstat wall time against `python3 -c pass`, both run inside a lab server, in the same run;
and Pacemaker's `crm_mon -1` the same way, inside a lab server of a Pacemaker cluster
(:mod:`benchmarks.pacemaker_lab`), when Pacemaker is installed.

Usage: python benchmarks/clpstat_latency.py [--runs N] [--no-pacemaker]   (root; own labs)
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import pacemaker_lab  # noqa: E402
from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import wait_all_online  # noqa: E402

TIMER = r"""
import json, subprocess, sys, time
runs = int(sys.argv[1])
out = {}
for name in sys.argv[2:]:
    argv = name.split()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    out[name] = times
print(json.dumps(out))
"""


CLP_COMMANDS = ["python3 -c pass", "clpstat", "clpstat --json"]
PACEMAKER_COMMANDS = ["python3 -c pass", "crm_mon -1"]


def time_commands(lab: Lab, commands: list[str], runs: int) -> dict[str, list[float]]:
    r = lab.exec("server1", ["python3", "-c", TIMER, str(runs), *commands], timeout=600)
    if r.returncode != 0:
        sys.exit(r.stderr)
    return json.loads(r.stdout)


def clp_results(runs: int) -> dict[str, list[float]]:
    name = "b" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, interval=1.0, timeout=10.0)
    try:
        wait_all_online(lab)
        return time_commands(lab, CLP_COMMANDS, runs)
    finally:
        lab.down()
        Lab.cleanup_all(name)


def pacemaker_results(runs: int) -> dict[str, list[float]]:
    name = "p" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, services=[])
    try:
        for s in lab.servers:
            pacemaker_lab.start(lab, s, 1000)
        pacemaker_lab.wait_members(lab, "server1", set(lab.servers))
        pacemaker_lab.configure(lab, "server1", "198.18.0.12")
        return time_commands(lab, PACEMAKER_COMMANDS, runs)
    finally:
        lab.down()
        Lab.cleanup_all(name)


def rows_of(results: dict[str, list[float]]) -> list[list[str]]:
    base = median(results["python3 -c pass"])
    return [[k, f"{median(v) * 1000:.1f}", f"{pct(v, 0.9) * 1000:.1f}", f"{median(v) / base:.2f}"]
            for k, v in results.items()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--no-pacemaker", action="store_true")
    args = ap.parse_args()
    header = ["command", "median ms", "p90 ms", "x python3 -c pass"]
    print(f"machine: {machine()}")
    print(table(f"clpstat latency ({args.runs} runs each, inside lab server1)", header,
                rows_of(clp_results(args.runs))))
    if args.no_pacemaker:
        return
    try:
        pacemaker_lab.check_installed()
    except SystemExit as e:
        print(f"no Pacemaker row: {e}")
        return
    print()
    print(table(f"crm_mon latency ({args.runs} runs each, inside server1 of a Pacemaker lab)",
                header, rows_of(pacemaker_results(args.runs))))


if __name__ == "__main__":
    main()
