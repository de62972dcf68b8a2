"""Heartbeat stability: a short interval held for minutes, idle, under CPU load and under clpstat
calls; nothing must move.

clp on two lab servers (the sample's paths: two LANs, disk and COM; one group with a floating IP)
at ``--interval`` / ``--timeout`` (default 0.01 s / 0.03 s), and keepalived at the same advert
interval on two other lab servers, for ``--minutes`` in each phase:

- idle;
- ``stress-ng --cpu 0`` (every core busy);
- with ``--clpstat RATE``, ``clpstat`` started RATE times a second on server1 (as many at once
  as it takes), the phase that checks that operators reading the status disturb nothing.

Counted: servers declared down and heartbeat paths lost (both alert logs), ``heartbeat loop
late`` warnings (both nm.log) and the group's or the VIP's moves (sampled every 0.2 s). The
target: 0 of each.

    python benchmarks/hb_stability.py [--minutes 10] [--interval 0.01 --timeout 0.03]
                                      [--clpstat 100] [--no-keepalived]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import alert_records, machine, table  # noqa: E402
from benchmarks.failover_time import (  # noqa: E402
    TEN_MS,
    _start_keepalived,
    _vrrp_owner,
    clp_config,
    cpu_load,
    owner_clp,
)
from clp.lab import Lab  # noqa: E402
from tests.integration.labutil import wait_all_online, wait_for  # noqa: E402

LATE = re.compile(r"heartbeat loop late by ([0-9.]+) s")
SAMPLE = 0.2
# Run inside server1: start clpstat RATE times a second for SECONDS, never more than 32 at once.
CLPSTAT_LOAD = r"""
import subprocess, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
running, started, skipped = [], 0, 0
t0 = time.monotonic()
end = t0 + seconds
while time.monotonic() < end:
    running = [p for p in running if p.poll() is None]
    if len(running) < 32:
        running.append(subprocess.Popen(["clpstat"], stdout=subprocess.DEVNULL))
        started += 1
    else:
        skipped += 1
    time.sleep(max(0.0, t0 + (started + skipped) / rate - time.monotonic()))
for p in running:
    p.wait()
print(started, skipped)
"""


def clp_counts(lab: Lab, seen: list[str] | None = None) -> Counter[str]:
    """The counts so far; ``seen`` gets each down and loss as "server: message"."""
    found: Counter[str] = Counter()
    for module, eid, rec in alert_records(lab):
        if module == "nm" and eid in (2, 6):
            found["servers down" if eid == 2 else "heartbeat paths lost"] += 1
            if seen is not None:
                seen.append(f"{rec.get('time', '?')} {rec.get('server', '?')}: "
                        f"{rec.get('message', rec)}")
    for server in lab.servers:
        nm = lab.root_of(server) / "log" / "nm.log"
        for m in LATE.finditer(nm.read_text(errors="replace") if nm.exists() else ""):
            found["heartbeat loop late"] += 1
            found["latest late (ms)"] = max(found["latest late (ms)"],
                                            round(float(m.group(1)) * 1000))
    return found


def moves_while(owner: Callable[[], str | None], seconds: float) -> int:
    """Owner changes seen while sampling every SAMPLE s for ``seconds``."""
    moves, last = 0, owner()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(SAMPLE)
        now = owner()
        if now is not None and now != last:
            moves += 1
            last = now
    return moves


def run_clp(opts: argparse.Namespace, workdir: Path) -> list[list[str]]:
    conf = workdir / "clp-stability"
    clp_config(conf, opts.interval, opts.timeout, app_in_group=False,
               **(TEN_MS if opts.interval < 0.1 else {}))
    name = "s" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, config_dir=conf)
    rows = []
    try:
        wait_all_online(lab)
        wait_for("failover1 Online", lambda: owner_clp(lab, "server1"), timeout=60)
        seconds = opts.minutes * 60

        def owner() -> str | None:
            with contextlib.suppress(Exception):
                return owner_clp(lab, "server2")
            return None

        phases: list[tuple[str, Callable[[], int]]] = [
            ("idle", lambda: moves_while(owner, seconds))]
        if shutil.which("stress-ng"):
            def under_stress() -> int:
                with cpu_load(True):
                    return moves_while(owner, seconds)
            phases.append(("stress-ng --cpu 0", under_stress))
        notes: list[str] = []
        if opts.clpstat:
            def clpstat_load() -> int:
                proc = lab.popen("server1", ["python3", "-c", CLPSTAT_LOAD, str(opts.clpstat),
                                             str(seconds)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
                moved = moves_while(owner, seconds)
                out, err = proc.communicate(timeout=120)
                if proc.returncode != 0:
                    raise RuntimeError(f"the clpstat load failed: {err}")
                started, skipped = (int(x) for x in out.split())
                notes.append(f"clpstat: {started / seconds:.1f} started a second (asked "
                             f"{opts.clpstat:g}; {skipped} slots skipped with 32 running)")
                return moved
            phases.append((f"clpstat {opts.clpstat:g}/s asked", clpstat_load))
        for label, phase in phases:
            earlier: list[str] = []
            before = clp_counts(lab, earlier)
            moved = phase()
            events: list[str] = []
            after = clp_counts(lab, events)
            notes += [f"{label}: {e}" for e in (Counter(events) - Counter(earlier)).elements()]
            rows.append(["clp", label, str(moved),
                         *(str(after[k] - before[k]) for k in
                           ("servers down", "heartbeat paths lost", "heartbeat loop late")),
                         str(after["latest late (ms)"])])
        for note in notes:
            print(note)
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return rows


def run_keepalived(opts: argparse.Namespace) -> list[list[str]]:
    name = "k" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, services=[])
    rows = []
    try:
        for s in lab.servers:
            _start_keepalived(lab, s, opts.interval)
        wait_for("a VRRP master", lambda: _vrrp_owner(lab), timeout=30)
        seconds = opts.minutes * 60
        rows.append(["keepalived", "idle", str(moves_while(lambda: _vrrp_owner(lab), seconds)),
                     "-", "-", "-", "-"])
        if shutil.which("stress-ng"):
            with cpu_load(True):
                moved = moves_while(lambda: _vrrp_owner(lab), seconds)
            rows.append(["keepalived", "stress-ng --cpu 0", str(moved), "-", "-", "-", "-"])
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="Per phase.")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=0.03)
    ap.add_argument("--clpstat", type=float, default=0.0,
                    help="Also a phase with clpstat started this many times a second.")
    ap.add_argument("--no-keepalived", action="store_true")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/clp-stability-bench"))
    opts = ap.parse_args()
    if not shutil.which("stress-ng"):
        print("stress-ng is not installed (tools/install-deps.sh --bench): idle phases only")
    opts.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    rows = run_clp(opts, opts.workdir)
    if not opts.no_keepalived and shutil.which("keepalived"):
        rows += run_keepalived(opts)
    print(table(f"{opts.minutes:g} min per phase at interval {opts.interval:g} s / timeout "
                f"{opts.timeout:g} s (keepalived: advert_int {opts.interval:g} s)",
                ["system", "phase", "moves", "servers down", "paths lost", "loop late",
                 "max late ms (so far)"], rows))


if __name__ == "__main__":
    main()
