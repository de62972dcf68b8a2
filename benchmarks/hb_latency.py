"""Every heartbeat path, in one run.

- LAN: one-way delay between two lab servers (p50/p99, from the service's counters), the round
  trip of a record over UDP on the interconnect, clp against a raw echo
  (benchmarks/lanhb_roundtrip.py), and the time from a crash to Offline, at interval 0.1 s /
  timeout 0.5 s;
- disk: the disk heartbeat's I/O cycle on one loop device, three ways
  (benchmarks/diskhb_cycle.py);
- COM: the round trip over a socat pty pair, three ways (benchmarks/comhb_roundtrip.py);
- CPU: clusterpro / clusterpro_evt / witness CPU time with 8 servers at interval 0.1 s, every
  path kind against LAN only (benchmarks/hb_cpu.py).

Usage: python benchmarks/hb_latency.py [--seconds S] [--crashes N] [--lan-round-trips N]
       [--lan-rtt-only] [--disk-iterations N] [--disk-only] [--com-round-trips N] [--com-only]
       [--cpu-seconds S] [--cpu-rounds N] [--cpu-only]
       (root; own labs, loop devices and pty pairs, removed after)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from benchmarks.comhb_roundtrip import com_table  # noqa: E402
from benchmarks.diskhb_cycle import disk_table  # noqa: E402
from benchmarks.hb_cpu import cpu_table, lab_up  # noqa: E402
from benchmarks.hb_cpu import measure as measure_cpu  # noqa: E402
from benchmarks.lanhb_roundtrip import measure as measure_rtt  # noqa: E402
from benchmarks.lanhb_roundtrip import rtt_table  # noqa: E402
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
    ap.add_argument("--lan-round-trips", type=int, default=1000)
    ap.add_argument("--lan-rtt-only", action="store_true", help="Only the LAN round trip.")
    ap.add_argument("--disk-iterations", type=int, default=2000)
    ap.add_argument("--disk-only", action="store_true", help="Only the disk heartbeat cycle.")
    ap.add_argument("--com-round-trips", type=int, default=1000)
    ap.add_argument("--com-only", action="store_true", help="Only the COM heartbeat round trip.")
    ap.add_argument("--cpu-seconds", type=float, default=20.0)
    ap.add_argument("--cpu-rounds", type=int, default=3,
                    help="Labs of each kind for the CPU table, alternating.")
    ap.add_argument("--cpu-only", action="store_true", help="Only the CPU time of 8 servers.")
    args = ap.parse_args()
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    if args.com_only:
        print(com_table(args.com_round_trips))
        return
    if args.disk_only:
        print(disk_table(args.disk_iterations))
        return
    if args.cpu_only:
        print(cpu_table(measure_cpu(args.cpu_seconds, args.cpu_rounds), args.cpu_seconds))
        return
    with lab_up("b", n=2, interval=INTERVAL, timeout=TIMEOUT) as lab:
        wait_all_online(lab)
        if args.lan_rtt_only:
            print(rtt_table(measure_rtt(lab, args.lan_round_trips), args.lan_round_trips))
            return
        time.sleep(args.seconds)
        rows = delays(lab)
        rtt = measure_rtt(lab, args.lan_round_trips)
        detect = crash_to_offline(lab, args.crashes)
    print(table(f"LAN heartbeat one-way delay (interval {INTERVAL} s, {args.seconds:.0f} s)",
                ["receiver", "path", "samples", "p50 ms", "p99 ms", "max ms"], rows))
    print()
    print(rtt_table(rtt, args.lan_round_trips))
    print()
    print(table(f"crash -> Offline (interval {INTERVAL} s, timeout {TIMEOUT} s, "
                f"{args.crashes} crashes; bound is timeout + interval = {TIMEOUT + INTERVAL} s)",
                ["median s", "p90 s", "max s"],
                [[f"{median(detect):.3f}", f"{pct(detect, 0.9):.3f}", f"{max(detect):.3f}"]]))
    print(flush=True)
    print(disk_table(args.disk_iterations))
    print(flush=True)
    print(com_table(args.com_round_trips))
    print(flush=True)
    print(cpu_table(measure_cpu(args.cpu_seconds, args.cpu_rounds), args.cpu_seconds))
    print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
