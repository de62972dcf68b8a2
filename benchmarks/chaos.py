"""Long chaos runs: ``clplab chaos`` schedules on the seed's sample cluster, each in a fresh lab.

Every schedule: a 2-server lab from the sample configuration (LAN, disk and COM heartbeats, ping
resolution, failover1 with a floating IP, a shared disk and an application, and the
ManagementGroup), ``--faults`` faults of every kind spread over ``--span`` seconds
(:func:`clp.lab.chaos.plan`), then every fault repaired and every group waited for. The table:
schedules run, faults injected, steps the lab refused (a server already off: the cluster's own
fence or final action got there first), double activations (must be 0), groups not running at
the end (must be 0), cluster services the repair started again (they had stopped themselves:
an isolated server's network-partition action, a final action; as in the product they wait for
the operator, and the repair does what the operator would), and the time per schedule. Each
failed schedule is printed with its seed.

With ``--arbitration`` the sample resolves partitions by witness arbitration (the lab router's
witness, docs/network-partition.md) instead of ping; with ``--watchdog`` its userw feeds each
server's lab watchdog (clp.lab.watchdog) instead of the keepalive method. A hung server's
resources count; a double activation with a hung server that feeds no watchdog is *allowed*
(the keepalive limit, its own column), any other is a double activation.

Usage: python benchmarks/chaos.py [--schedules 200] [--faults 20] [--span 120] [--seed 1]
                                  [--arbitration] [--watchdog]
       (root; own labs, removed after)
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, table  # noqa: E402
from clp.lab import Lab, chaos  # noqa: E402
from clp.lab.samples import witness_arbitration, write_sample_config  # noqa: E402
from tests.integration.grouputil import lab_softdog, wait_group  # noqa: E402
from tests.integration.labutil import status, wait_for  # noqa: E402


def one(seed: int, faults: int, span: float, arbitration: bool,
        watchdog: bool) -> chaos.Report:
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        path = write_sample_config(conf, n_servers=2)
        doc = yaml.safe_load(path.read_text())
        if arbitration:
            witness_arbitration(doc)
        if watchdog:
            lab_softdog(doc, conf)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        name = "x" + secrets.token_hex(2)
        lab = None
        try:
            lab = Lab.up(name=name, n=2, config_dir=conf)
            wait_group(lab, "failover1", "Online", "server1", timeout=120)
            if arbitration:  # the lab's witness grants nothing for a while after it starts
                wait_for("witness renewals granted", lambda: all(
                    status(lab, s)["partition"]["resolvers"]["witnessnp1"].get("ok")
                    for s in lab.servers), timeout=60)
            return chaos.run(lab, seed, faults, span)
        finally:
            if lab is not None:
                lab.down()
            Lab.cleanup_all(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--faults", type=int, default=20)
    ap.add_argument("--span", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1, help="The first schedule's seed (then +1).")
    ap.add_argument("--arbitration", action="store_true",
                    help="Witness arbitration instead of the sample's ping resolution.")
    ap.add_argument("--watchdog", action="store_true",
                    help="userw feeds the lab's watchdog instead of the keepalive method.")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    reports = []
    for k in range(args.schedules):
        started = time.monotonic()
        report = one(args.seed + k, args.faults, args.span, args.arbitration, args.watchdog)
        reports.append((report, time.monotonic() - started))
        state = "ok" if report.ok else "FAILED"
        print(f"schedule {k + 1}/{args.schedules} seed {report.seed}: {state}, "
              f"{len(report.errors)} steps refused, {report.seconds:.0f} s", flush=True)
        if not report.ok:
            print(report.text(), flush=True)
    faults = sum(len([s for s in r.steps if s.action in chaos.KINDS]) for r, _ in reports)
    rows = [[str(len(reports)), str(faults), str(sum(len(r.errors) for r, _ in reports)),
             str(sum(len(r.violations) for r, _ in reports)),
             str(sum(len(r.allowed) for r, _ in reports)),
             str(sum(len(r.not_running) for r, _ in reports)),
             str(sum(len(r.stopped) for r, _ in reports)),
             f"{median([t for _, t in reports]):.0f}"]]
    how = (", witness arbitration" if args.arbitration else "") + \
        (", lab watchdog" if args.watchdog else "")
    print(table(f"clplab chaos on the sample{how}, {args.faults} faults over {args.span:g} s per "
                f"schedule, seeds {args.seed}..{args.seed + len(reports) - 1}",
                ["schedules", "faults", "steps refused", "double activations",
                 "allowed (keepalive limit)",
                 "groups not running at the end", "services restarted by the repair",
                 "s per schedule (median, lab included)"],
                rows))
    return 0 if all(r.ok for r, _ in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
