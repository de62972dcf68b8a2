"""No false recovery: the sample cluster under CPU and I/O load for a while, nothing must move.

The sample cluster (clp/samples/lab2 with its monitors: userw, fipw1, fipw2, ipw1, miiw1, pidw1,
at interval 1 s; heartbeat 1 s / 10 s) on two lab servers, plus a diskw on the shared disk, with
``stress-ng`` loading every core and the disks (``--cpu 0 --io 2 --hdd 2``) for ``--minutes``
(default 10). Counted from both servers' alert logs: monitor errors (rm 9), warnings (rm 4),
monitor delay warnings (rm 71), recovery steps (rm 12-17, 35-47), heartbeat paths lost and
servers down; and whether failover1 and ManagementGroup are still where they started. The
target: 0 monitor errors, 0 recoveries, 0 moves.

    python benchmarks/monitor_stress.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import alert_records, machine, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import write_sample_config  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

RECOVERY_EVENTS = {12, 13, 14, 15, 16, 17, 35, 37, 39, 41, 43, 45, 47}


def count(lab: Lab) -> Counter[str]:
    found: Counter[str] = Counter()
    for module, eid, _ in alert_records(lab):
        if module == "rm" and eid == 9:
            found["monitor errors (rm 9)"] += 1
        elif module == "rm" and eid == 4:
            found["monitor warnings (rm 4)"] += 1
        elif module == "rm" and eid == 71:
            found["monitor delays (rm 71)"] += 1
        elif module == "rm" and eid in RECOVERY_EVENTS:
            found["recovery steps"] += 1
        elif module == "nm" and eid == 6:
            found["heartbeat paths lost"] += 1
        elif module == "nm" and eid == 2:
            found["servers down"] += 1
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    opts = p.parse_args()
    if not shutil.which("stress-ng"):
        raise SystemExit("stress-ng is needed (tools/install-deps.sh --bench)")
    print(machine())
    name = "ms" + secrets.token_hex(2)
    lab = None
    with tempfile.TemporaryDirectory() as tmp:
        conf_dir = Path(tmp) / "conf"
        write_sample_config(conf_dir, n_servers=2, interval=1.0, timeout=10.0)
        conf = yaml.safe_load((conf_dir / "clp.conf").read_text())
        conf["monitors"]["diskw1"] = {"type": "diskw", "device": "/dev/lab/disk1",
                                      "interval": 1, "timeout": 10,
                                      "recovery": {"target": "failover1"}}
        (conf_dir / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))
        stress = None
        try:
            lab = Lab.up(name=name, n=2, config_dir=conf_dir)
            wait_all_online(lab)
            wait_for("failover1 Online on server1", lambda: status(lab, "server1")["groups"][
                "failover1"]["state"] == "Online", timeout=60)
            before = {g: v["server"] for g, v in status(lab, "server1")["groups"].items()}
            stress = subprocess.Popen(
                ["stress-ng", "--cpu", "0", "--io", "2", "--hdd", "2", "--hdd-bytes", "128M",
                 "--temp-path", tmp, "--quiet"], stdout=subprocess.DEVNULL)
            time.sleep(opts.minutes * 60)
            stress.terminate()
            stress.wait(timeout=30)
            stress = None
            time.sleep(3)
            after = {g: v["server"] for g, v in status(lab, "server1")["groups"].items()}
            found = count(lab)
        finally:
            if stress is not None:
                stress.kill()
            if lab is not None:
                lab.down()
            Lab.cleanup_all(name)
    rows = [[k, str(found.get(k, 0))] for k in (
        "monitor errors (rm 9)", "recovery steps", "monitor warnings (rm 4)",
        "monitor delays (rm 71)", "heartbeat paths lost", "servers down")]
    rows.append(["groups moved", str(sum(before[g] != after[g] for g in before))])
    print(table(f"The sample cluster under stress-ng --cpu 0 --io 2 --hdd 2 for "
                f"{opts.minutes:g} min (monitors at 1 s, heartbeat 1 s / 10 s)",
                ["what", "count"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
