"""clpstat wall time against `python3 -c pass`, both run inside a lab server, in the same run.

Usage: python benchmarks/clpstat_latency.py [--runs N]   (root; builds and removes its own lab)
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import wait_all_online  # noqa: E402

TIMER = r"""
import json, subprocess, sys, time
runs = int(sys.argv[1])
out = {}
for name, argv in (("python3 -c pass", ["python3", "-c", "pass"]), ("clpstat", ["clpstat"]),
                   ("clpstat --json", ["clpstat", "--json"])):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    out[name] = times
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    name = "b" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, interval=1.0, timeout=10.0)
    try:
        wait_all_online(lab)
        r = lab.exec("server1", ["python3", "-c", TIMER, str(args.runs)], timeout=600)
        if r.returncode != 0:
            sys.exit(r.stderr)
        results = json.loads(r.stdout)
    finally:
        lab.down()
        Lab.cleanup_all(name)
    base = median(results["python3 -c pass"])
    rows = [[k, f"{median(v) * 1000:.1f}", f"{pct(v, 0.9) * 1000:.1f}", f"{median(v) / base:.2f}"]
            for k, v in results.items()]
    print(f"machine: {machine()}")
    print(table(f"clpstat latency ({args.runs} runs each, inside lab server1)",
                ["command", "median ms", "p90 ms", "x python3 -c pass"], rows))


if __name__ == "__main__":
    main()
