"""Fault to recovery, per monitor type: from the fault to the service answering again.

The sample cluster (clp/samples/lab2: failover1 = fip1, disk1, exec1 running the sample TCP
service; its monitors at interval 1 s) on two lab servers, a fresh lab for every run. Each row
injects one fault on server1, which runs failover1, and measures from the client namespace, as a
user would, the time until the service answers through the floating IP again, on server2 (a
failover) or on server1 (a reactivation), plus the time until the monitor declared the error
(its rm 9 alert). Beside them, the product's formula for the detection of that monitor: interval
x retry + timeout (a check that fails at once is detected after (retry + 1) intervals at most; one
that hangs after the timeout plus the retries).

| row | fault | monitor | recovery |
|---|---|---|---|
| process killed, restart | the application (kill -9) | pidw1 (retry 0) | reactivation of exec1 |
| process killed | the same, reactivation threshold 0 | pidw1 | failover of failover1 |
| link down | server1's public NIC loses its link | miiw1 (retry 1), ipw1 | failover of All Groups |
| address gone | fip1 removed by hand | fipw2 (retry 1) | failover of failover1 |
| disk hung | server1's path to disk1 hangs | diskw1 (read_direct, timeout 5) | panic of server1 |
| disk path failed | server1's path to disk1 returns EIO | diskw1 | failover of failover1 |

    python benchmarks/monitor_recovery.py [--runs 5] [--rows ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import write_sample_config  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

FIP, PORT = "198.18.0.12", 8080
APP = "clp.lab.demo_app"
# The sample application answers "<hostname> <line>" once the line is fsynced on the shared
# disk: a reply from the expected server is the service back (a hung disk delays the reply, a
# bare TCP connect would not notice).
PROBE = r"""
import socket, sys, time
host, port, want, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.settimeout(0.5)
            s.sendall(b"probe\n")
            if s.makefile().readline().startswith(want + " "):
                print(repr(time.time()))
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
sys.exit(1)
"""
DISKW = {"type": "diskw", "device": "/dev/lab/disk1", "interval": 1, "timeout": 5,
         "io_size": 4096, "timing": "active", "target": "disk1"}


def edit_for(row: str) -> Callable[[dict], None]:
    def edit(conf: dict) -> None:
        if row == "process killed":
            conf["monitors"]["pidw1"]["recovery"] = {"reactivation_threshold": 0}
        if row == "disk hung":
            conf["monitors"]["diskw1"] = {**DISKW, "recovery": {
                "target": "LocalServer", "final_action": "panic"}}
        if row == "disk path failed":
            conf["monitors"]["diskw1"] = {**DISKW, "recovery": {
                "target": "failover1", "reactivation_threshold": 0}}
    return edit


# row -> (the monitor that detects it, the server that answers afterwards, the fault)
FAULTS: dict[str, tuple[str, str, Callable[[Lab], object]]] = {
    "process killed, restart": ("pidw1", "server1", lambda lab: lab.kill("server1", APP)),
    "process killed": ("pidw1", "server2", lambda lab: lab.kill("server1", APP)),
    "link down": ("miiw1", "server2", lambda lab: lab.unplug("server1", "pub")),
    "address gone": ("fipw2", "server2", lambda lab: lab.exec("server1", [
        "ip", "addr", "del", f"{FIP}/24", "dev", "eth0"])),
    "disk hung": ("diskw1", "server2", lambda lab: lab.disk_path("server1", "disk1", "hang")),
    "disk path failed": ("diskw1", "server2",
                         lambda lab: lab.disk_path("server1", "disk1", "eio")),
}


@contextlib.contextmanager
def sample_lab(row: str) -> Iterator[Lab]:
    with tempfile.TemporaryDirectory() as tmp:
        conf_dir = Path(tmp)
        write_sample_config(conf_dir, n_servers=2, interval=1.0, timeout=10.0)
        path = conf_dir / "clp.conf"
        conf = yaml.safe_load(path.read_text())
        edit_for(row)(conf)
        path.write_text(yaml.safe_dump(conf, sort_keys=False))
        name = "mr" + secrets.token_hex(2)
        lab = None
        try:
            lab = Lab.up(name=name, n=2, config_dir=conf_dir)
            yield lab
        finally:
            try:
                if lab is not None:
                    with contextlib.suppress(Exception):
                        lab.disk_path("server1", "disk1", "eio")  # a hung path unwinds
                    lab.down()
            finally:
                Lab.cleanup_all(name)


def error_time(lab: Lab, monitor: str, after: float) -> float | None:
    """Wall time of the first rm 9 alert of ``monitor`` on server1 after ``after``."""
    path = lab.root_of("server1") / "log" / "alert.log"
    for line in path.read_text().splitlines() if path.exists() else []:
        rec = json.loads(line)
        if rec.get("module") == "rm" and rec.get("event_id") == 9 and monitor in rec["message"]:
            t = datetime.fromisoformat(rec["time"]).timestamp()
            if t >= after:
                return t
    return None


def one_run(row: str) -> tuple[float, float]:
    monitor, answers, inject = FAULTS[row]
    with sample_lab(row) as lab:
        wait_all_online(lab)
        wait_for("every monitor Normal", lambda: all(
            m["state"] in ("Normal", "Offline")
            for m in status(lab, "server1")["monitors"].values())
            and status(lab, "server1")["groups"]["failover1"]["server"] == "server1",
            timeout=60)
        # a random phase against the monitors' checks (they run every second from their start):
        # a fault right after a check and one right before it are equally likely
        time.sleep(2 + random.random())
        t0 = time.time()
        inject(lab)
        if row == "disk hung":  # the panic leaves I/O blocked on the path: it is cut
            release = threading.Thread(target=release_after_panic, args=(lab,), daemon=True)
            release.start()
        r = lab.client_exec(["python3", "-c", PROBE, FIP, str(PORT), answers, "120"],
                            timeout=130)
        if r.returncode != 0:
            raise RuntimeError(f"{row}: the service never answered again: {r.stderr}")
        answered = float(r.stdout.strip()) - t0
        detected = wait_for(f"{monitor}'s error alert", lambda: error_time(lab, monitor, t0),
                            timeout=30)
        return detected - t0, answered


def release_after_panic(lab: Lab) -> None:
    """A real machine is reset by the panic; a lab server's I/O blocked on the hung path must be
    failed for its processes to end (what the integration test does too)."""
    with contextlib.suppress(Exception):
        wait_for("server1's panic", lambda: any(
            json.loads(x).get("event_id") == 35 for x in (
                lab.root_of("server1") / "log" / "alert.log").read_text().splitlines()),
            timeout=60)
    lab.disk_path("server1", "disk1", "eio")


def formula(conf: dict, monitor: str) -> float:
    m = conf["monitors"].get(monitor) or {}
    return float(m.get("interval", 1)) * int(m.get("retry", 0)) + float(m.get("timeout", 5))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rows", nargs="*", default=list(FAULTS), choices=list(FAULTS))
    opts = p.parse_args()
    print(machine())
    rows = []
    for row in opts.rows:
        detect, answer = [], []
        for _ in range(opts.runs):
            d, a = one_run(row)
            detect.append(d)
            answer.append(a)
        with tempfile.TemporaryDirectory() as tmp:
            write_sample_config(Path(tmp), 2, 1.0, 10.0)
            conf = yaml.safe_load((Path(tmp) / "clp.conf").read_text())
        edit_for(row)(conf)
        monitor = FAULTS[row][0]
        rows.append([row, monitor, f"{formula(conf, monitor):g}", f"{median(detect):.2f}",
                     f"{max(detect):.2f}", f"{median(answer):.2f}", f"{pct(answer, 0.9):.2f}",
                     f"{max(answer):.2f}"])
    print(table(f"Fault to recovery, {opts.runs} runs each (heartbeat 1 s / 10 s, monitors at "
                "interval 1 s)", ["fault", "monitor", "formula s", "detect p50 s",
                                  "detect max s", "service p50 s", "service p90 s",
                                  "service max s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
