"""LAN heartbeat one-way delay between two lab servers (p50/p99), and the time from a crash to
Offline at interval 0.1 s / timeout 0.5 s.

Usage: python benchmarks/hb_latency.py [--seconds S] [--crashes N]   (root; own lab, removed after)
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

INTERVAL, TIMEOUT = 0.1, 0.5


def delays(lab: Lab) -> list[list[str]]:
    rows = []
    for server in lab.servers:
        counters = status(lab, server)["counters"]["lanhb"]
        for path, c in counters.items():
            d = c["delay"] or {}
            rows.append([f"{server} <- peer", path, str(d.get("n", 0)),
                         f"{d.get('p50', 0) * 1e3:.3f}", f"{d.get('p99', 0) * 1e3:.3f}",
                         f"{d.get('max', 0) * 1e3:.3f}"])
    return rows


def crash_to_offline(lab: Lab, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        wait_all_online(lab)
        t0 = time.time()
        lab.crash("server2")
        wait_for("server2 Offline on server1", lambda: status(lab, "server1")["membership"]
                 ["servers"]["server2"]["state"] == "Offline", timeout=10, step=0.05)
        out.append(status(lab, "server1")["membership"]["servers"]["server2"]["since_wall"] - t0)
        lab.restart("server2")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--crashes", type=int, default=10)
    args = ap.parse_args()
    name = "b" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, interval=INTERVAL, timeout=TIMEOUT)
    try:
        wait_all_online(lab)
        time.sleep(args.seconds)
        rows = delays(lab)
        detect = crash_to_offline(lab, args.crashes)
    finally:
        lab.down()
        Lab.cleanup_all(name)
    print(f"machine: {machine()}")
    print(table(f"LAN heartbeat one-way delay (interval {INTERVAL} s, {args.seconds:.0f} s)",
                ["receiver", "path", "samples", "p50 ms", "p99 ms", "max ms"], rows))
    print()
    print(table(f"crash -> Offline (interval {INTERVAL} s, timeout {TIMEOUT} s, "
                f"{args.crashes} crashes; bound is timeout + interval = {TIMEOUT + INTERVAL} s)",
                ["median s", "p90 s", "max s"],
                [[f"{median(detect):.3f}", f"{pct(detect, 0.9):.3f}", f"{max(detect):.3f}"]]))


if __name__ == "__main__":
    main()
