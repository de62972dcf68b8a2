"""Cost of monitoring: the CPU ``clusterpro`` spends running 50 monitors at interval 1 s.

Two lab servers (heartbeat interval 1 s, LAN paths only, no groups), one after the other in the
same run, alternating: with 50 ``dummy`` monitors (interval 1 s; a check that looks for a file
that does not exist, so the probe itself costs almost nothing and what is measured is the
runner: scheduling, the worker thread, the timeout timer, the core's decision, publishing) and
with none but ``userw`` (created with every cluster). The CPU time (utime + stime) of each
server's ``clusterpro`` is read over ``--seconds``; the difference divided by 50 is the cost of
one monitor at 1 s, and the table states it for 50 monitors as a share of one core.

    python benchmarks/monitor_cost.py [--rounds 2] [--seconds 60] [--monitors 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, table  # noqa: E402
from benchmarks.hb_cpu import cpu_over, lab_up, service_pids  # noqa: E402
from clp.config import load_config  # noqa: E402
from clp.config.lab import generate_lab_config  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402


def config_dir(base: Path, n_monitors: int) -> Path:
    conf = yaml.safe_load(generate_lab_config(2, 1.0, 10.0))
    conf["monitors"] = {f"dummyw{i}": {"type": "dummy", "interval": 1, "timeout": 5,
                                       "fail_file": "/nonexistent/clp-bench",
                                       "recovery": {"target": "LocalServer"}}
                        for i in range(1, n_monitors + 1)}
    folder = base / f"m{n_monitors}"
    (folder / "scripts").mkdir(parents=True)
    (folder / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))
    load_config(folder)  # as clpcfchk checks it
    return folder


def measure(folder: Path, n_monitors: int, seconds: float) -> float:
    """Mean CPU share of one core of the servers' clusterpro with ``n_monitors`` monitors."""
    with lab_up("mc", n=2, config_dir=folder) as lab:
        wait_all_online(lab)
        wait_for("every monitor Normal", lambda: all(
            m["state"] == "Normal" for m in status(lab, "server1")["monitors"].values()),
            timeout=60)
        pids = {s: service_pids(lab, s)["clusterpro"] for s in lab.servers}
        shares = cpu_over(pids, seconds)
        errors = sum(1 for m in status(lab, "server1")["monitors"].values()
                     if m["state"] != "Normal")
        if errors:
            raise RuntimeError(f"{errors} monitors not Normal at the end")
        return sum(shares.values()) / len(shares)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--monitors", type=int, default=50)
    opts = p.parse_args()
    print(machine())
    with_m: list[float] = []
    without: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        many, none = config_dir(Path(tmp), opts.monitors), config_dir(Path(tmp), 0)
        for _ in range(opts.rounds):
            with_m.append(measure(many, opts.monitors, opts.seconds))
            without.append(measure(none, 0, opts.seconds))
    a, b = median(with_m), median(without)
    rows = [[f"{opts.monitors} dummy monitors at 1 s", f"{100 * a:.2f} %"],
            ["no monitor but userw", f"{100 * b:.2f} %"],
            [f"the {opts.monitors} monitors (difference)", f"{100 * (a - b):.2f} %"],
            ["one monitor at 1 s", f"{100 * (a - b) / opts.monitors:.3f} %"]]
    print(table(f"clusterpro CPU, share of one core, median of {opts.rounds} rounds of "
                f"{opts.seconds:g} s (2 servers, heartbeat 1 s)", ["case", "CPU"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
