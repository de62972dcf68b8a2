"""Time from an alert to its mail and its traps at the receivers, in a lab running the seed's
sample cluster with an ``alert`` section: an SMTP server (aiosmtpd) and net-snmp's snmptrapd on
the lab's client machine (tests/integration/alertlab.py); a v2c trap and a v3 authPriv inform.

Each run raises one ERROR alert with ``clplogcmd`` on server1. The start is the alert's own time
stamp (carried in the mail's ``Time:`` and the trap's time object, to the millisecond); the end
is when the receiver has it: the Maildir file's modification time for the mail, the moment the
trap's line appears in snmptrapd's output (polled every 2 ms) for a trap. The lab's servers and
the receivers share one clock.

Usage: python benchmarks/alert_latency.py [--runs N]   (root; its own lab)
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import write_sample_config  # noqa: E402
from tests.integration.alertlab import alert_section, receivers_on_client  # noqa: E402
from tests.integration.labutil import wait_all_online  # noqa: E402

WAIT = 30.0
TIME = re.compile(r"Time:\s+(\S+)")
TRAP_TIME = re.compile(r'207\.3\.6\.0 = STRING: "([^"]+)"')


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def measure(runs: int) -> dict[str, list[float]]:
    name = "bal" + secrets.token_hex(2)
    out: dict[str, list[float]] = {"mail": [], "v2c trap": [], "v3 authPriv inform": []}
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        clp_conf = write_sample_config(conf, n_servers=2, interval=1.0, timeout=10.0)
        doc = yaml.safe_load(clp_conf.read_text())
        doc["alert"] = alert_section(["server1", "server2"])
        clp_conf.write_text(yaml.safe_dump(doc))
        lab = Lab.up(name=name, n=2, config_dir=conf)
        try:
            wait_all_online(lab)
            with receivers_on_client(name, lab.servers, Path(tmp) / "rx") as rx:
                for i in range(runs):
                    text = f"benchmark alert {i}"
                    r = lab.exec("server1", ["clplogcmd", "-m", text, "-l", "ERR", "--alert"])
                    if r.returncode != 0:
                        sys.exit(r.stderr)
                    seen: dict[str, float] = {}  # trap line -> when it was first seen
                    deadline = time.monotonic() + WAIT
                    while len(seen) < 2 and time.monotonic() < deadline:
                        now = time.time()
                        for line in rx.traps():
                            if text in line:
                                seen.setdefault(line, now)
                        time.sleep(0.002)
                    if len(seen) < 2:
                        sys.exit(f"run {i}: {len(seen)} traps within {WAIT} s")
                    for line, at in seen.items():
                        kind = "v3 authPriv inform" if "SNMP v3" in line else "v2c trap"
                        raised = stamp(TRAP_TIME.search(line).group(1))  # type: ignore[union-attr]
                        out[kind].append(at - raised)
                    mail_deadline = time.monotonic() + WAIT
                    while time.monotonic() < mail_deadline:
                        found = [p for p in (rx.maildir / "new").glob("*")
                                 if text in p.read_text(errors="replace")]
                        if found:
                            body = found[0].read_text(errors="replace")
                            out["mail"].append(os.stat(found[0]).st_mtime -
                                               stamp(TIME.search(body).group(1)))  # type: ignore
                            break
                        time.sleep(0.01)
                    else:
                        sys.exit(f"run {i}: no mail within {WAIT} s")
        finally:
            lab.down()
            Lab.cleanup_all(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    results = measure(args.runs)
    rows = [[k, str(len(v)), f"{median(v) * 1000:.0f}", f"{pct(v, 0.9) * 1000:.0f}",
             f"{max(v) * 1000:.0f}"] for k, v in results.items()]
    print(f"machine: {machine()}")
    print(table(f"alert to receiver ({args.runs} ERROR alerts from server1 of a 2-server lab; "
                f"receivers on the lab's client machine)",
                ["channel", "runs", "median ms", "p90 ms", "max ms"], rows))


if __name__ == "__main__":
    main()
