"""LAN heartbeat one-way delay between two lab servers (p50/p99), and the time from a crash to
Offline at interval 0.1 s / timeout 0.5 s; then the disk heartbeat's I/O cycle on one loop
device, three ways (benchmarks/diskhb_cycle.py); then the COM heartbeat's round trip over a socat
pty pair, three ways (benchmarks/comhb_roundtrip.py).

Usage: python benchmarks/hb_latency.py [--seconds S] [--crashes N] [--disk-iterations N]
       [--disk-only] [--com-round-trips N] [--com-only]
       (root; own lab, loop device and pty pairs, removed after)
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from benchmarks.comhb_roundtrip import com_table  # noqa: E402
from benchmarks.diskhb_cycle import disk_table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

INTERVAL, TIMEOUT = 0.1, 0.5


def delays(lab: Lab) -> list[list[str]]:
    rows = []
    for server in lab.servers:
        counters = status(lab, server)["counters"]["paths"]
        for path, c in counters.items():
            d = c.get("delay") or {}
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
    ap.add_argument("--disk-iterations", type=int, default=2000)
    ap.add_argument("--disk-only", action="store_true", help="Only the disk heartbeat cycle.")
    ap.add_argument("--com-round-trips", type=int, default=1000)
    ap.add_argument("--com-only", action="store_true", help="Only the COM heartbeat round trip.")
    args = ap.parse_args()
    if args.com_only:
        print(f"machine: {machine()}")
        print(com_table(args.com_round_trips))
        return
    if args.disk_only:
        print(f"machine: {machine()}")
        print(disk_table(args.disk_iterations))
        return
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
    print()
    print(disk_table(args.disk_iterations))
    print()
    print(com_table(args.com_round_trips))


if __name__ == "__main__":
    main()
