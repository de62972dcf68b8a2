"""Planned move time: ``clpgrp -m`` of a group whose resources take ~0 s, at several heartbeat
intervals. A move is a stop on one server and a start on the other; each step follows the event
that allows it (a report, a state change), so the time should not depend on the interval.

Two numbers per move, both from the lab's client namespace clock:
- ``clpgrp -m``: the command's wall time on the server that runs the group (it returns once the
  group is Online on the other server);
- ``service gap``: from the last connection the old server accepted to the first the new one
  accepted (the floating IP's service, polled every 5 ms while the command runs).

Usage: python benchmarks/move_time.py [--runs 10] [--intervals 0.1,1,3]  (root; own labs)
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from benchmarks.failover_time import PORT, VIP, clp_config, owner_clp  # noqa: E402
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import wait_all_online, wait_for  # noqa: E402

# Poll the service until stopped (SIGTERM): print the last failure-free time before the first
# failure and the first success after it.
GAP_PROBE = r"""
import signal, socket, sys, time
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, end)
last_ok, gap_start, gap_end = None, None, None
limit = time.time() + 120
while not stop and time.time() < limit:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.05):
            now = time.time()
            if gap_start is not None and gap_end is None:
                gap_end = now
            last_ok = now
    except OSError:
        if gap_start is None and last_ok is not None:
            gap_start = last_ok
    time.sleep(0.005)
print(gap_start, gap_end)
"""


def one_move(lab: Lab, owner: str) -> tuple[float, float]:
    probe = lab.client_popen(["python3", "-c", GAP_PROBE, VIP, str(PORT)],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # the probe is connecting
    t0 = time.monotonic()
    r = lab.exec(owner, ["clpgrp", "-m", "failover1"])
    took = time.monotonic() - t0
    if r.returncode != 0:
        probe.kill()
        raise RuntimeError(f"clpgrp -m failed: {r.stdout} {r.stderr}")
    time.sleep(0.3)
    probe.terminate()
    out, _ = probe.communicate(timeout=30)
    start, end = out.split()
    if start == "None" or end == "None":
        raise RuntimeError(f"the service never paused or never came back: {out!r}")
    return took, float(end) - float(start)


def run(runs: int, interval: float, workdir: Path) -> tuple[list[float], list[float]]:
    conf = workdir / f"move-{interval:g}"
    clp_config(conf, interval, 3 * interval)
    name = "m" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, config_dir=conf)
    cmd, gap = [], []
    try:
        wait_all_online(lab)
        owner = wait_for("failover1 Online", lambda: owner_clp(lab, "server1"), timeout=60)
        time.sleep(2 * interval + 1)
        for _ in range(runs):
            took, paused = one_move(lab, owner)
            cmd.append(took)
            gap.append(paused)
            owner = "server2" if owner == "server1" else "server1"
            wait_for("failover1 on its new server", lambda o=owner: owner_clp(lab, o) == o,
                     timeout=30)
            time.sleep(0.5)
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return cmd, gap


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--intervals", default="0.1,1,3")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/clp-move-bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for interval in (float(x) for x in args.intervals.split(",")):
        cmd, gap = run(args.runs, interval, args.workdir)
        rows.append([f"{interval:g} s", str(len(cmd)), f"{median(cmd):.3f}", f"{pct(cmd, 0.9):.3f}",
                     f"{median(gap):.3f}", f"{pct(gap, 0.9):.3f}"])
    print(f"machine: {machine()}")
    print(table(f"clpgrp -m failover1 (floating IP + exec, ~0 s each), {args.runs} moves",
                ["interval", "moves", "clpgrp -m p50 s", "p90 s", "service gap p50 s", "p90 s"],
                rows))


if __name__ == "__main__":
    main()
