"""Time of a configuration push (``clpcfctrl --push -x DIR``) on a lab running the sample
cluster, for 2 and 8 servers, with the two reflect methods a running cluster meets most:
``upload_only`` (failover1's ``start`` toggled manual <-> auto) and ``suspend_cluster``
(``cluster.heartbeat.timeout`` toggled 10 <-> 11 s, in the operator's sequence ``clpcl
--suspend``, push, ``clpcl --resume``). Neither may stop a group, so the downtime should be 0.

Per run, from the lab's client namespace and the servers' own status:
- ``push``: wall time of ``clpcfctrl --push`` on server1 (validation, plan, stage and commit on
  every server);
- ``sequence``: wall time of suspend + push + resume (suspend_cluster only);
- ``downtime``: failover1's service (198.18.0.12:8080) probed every 50 ms for the whole run,
  summed from the first failed connection to the next accepted one;
- ``restarts``: groups whose state or server in ``clpstat --json`` changed across the run, or
  (failover1) whose application process changed (a restart gets a new pid).

Usage: python benchmarks/push_time.py [--runs 5] [--servers 2,8]  (root; own labs)
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from benchmarks.failover_time import PORT, VIP, owner_clp  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import write_sample_config  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

BACKUP = "/opt/nec/clusterpro/work/pushbench"  # in server1; on the host under its root

# Probe the service every 50 ms until SIGTERM: print failed connections and the summed time
# from each first failure to the next success (an outage still open at the end counts too).
PROBE = r"""
import signal, socket, sys, time
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, end)
failed, down, since = 0, 0.0, None
limit = time.time() + 300
while not stop and time.time() < limit:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2):
            if since is not None:
                down, since = down + time.time() - since, None
    except OSError:
        failed += 1
        since = time.time() if since is None else since
    time.sleep(0.05)
if since is not None:
    down += time.time() - since
print(failed, down)
"""

APP_PIDS = ("for p in $(pgrep -f 'clp[.]lab[.]demo_app'); do "  # the pattern is not its own
            "[ /proc/$p/ns/net -ef /proc/self/ns/net ] && echo $p; done; true")


def snapshot(lab: Lab) -> dict[str, Any]:
    """Every group's (state, server), and failover1's application pid on its server."""
    groups = status(lab, "server1")["groups"]
    snap: dict[str, Any] = {g: (v["state"], v["server"]) for g, v in groups.items()}
    owner = groups["failover1"]["server"]
    pids = lab.exec(owner, ["sh", "-c", APP_PIDS]).stdout.split() if owner else []
    snap["failover1 app"] = tuple(pids)
    return snap


def restarts(before: dict[str, Any], after: dict[str, Any]) -> int:
    changed = {k.split()[0] for k in before if before[k] != after.get(k)}
    return len(changed)


def run_ok(lab: Lab, argv: list[str], timeout: float = 90) -> tuple[float, str]:
    t0 = time.monotonic()
    r = lab.exec("server1", argv, timeout=timeout)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stdout} {r.stderr}")
    return took, r.stdout


def edit(host_dir: Path, change) -> None:
    conf = yaml.safe_load((host_dir / "clp.conf").read_text())
    change(conf)
    (host_dir / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))


def one_push(lab: Lab, host_dir: Path, method: str, i: int) -> tuple[float, float, float, int]:
    """(push s, sequence s, downtime s, restarts) of one push of ``method``."""
    if method == "upload_only":
        edit(host_dir, lambda c: c["groups"]["failover1"].update(
            start="manual" if i % 2 == 0 else "auto"))
    else:
        edit(host_dir, lambda c: c["cluster"]["heartbeat"].update(timeout=11 if i % 2 == 0
                                                                  else 10))
    before = snapshot(lab)
    probe = lab.client_popen(["python3", "-c", PROBE, VIP, str(PORT)],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # the probe is connecting
    t0 = time.monotonic()
    if method == "suspend_cluster":
        run_ok(lab, ["clpcl", "--suspend"])
    push, out = run_ok(lab, ["clpcfctrl", "--push", "-x", BACKUP, "--json"])
    planned = json.loads(out.splitlines()[0])["method"]
    if planned != method:  # the edit did not make the change this row is about
        raise RuntimeError(f"the push was planned as {planned}, not {method}")
    if method == "suspend_cluster":
        run_ok(lab, ["clpcl", "--resume"])
    sequence = time.monotonic() - t0
    wait_all_online(lab)
    time.sleep(0.5)
    probe.terminate()
    failed, down = probe.communicate(timeout=30)[0].split()
    after = snapshot(lab)
    print(f"{method} {i}: push {push:.3f} s, {failed} failed connections, {before} -> {after}",
          file=sys.stderr)
    return push, sequence, float(down) if int(failed) else 0.0, restarts(before, after)


def run(n: int, runs: int) -> dict[str, list[tuple[float, float, float, int]]]:
    name = "pb" + secrets.token_hex(2)
    with tempfile.TemporaryDirectory() as conf:
        write_sample_config(Path(conf), n_servers=n, interval=1.0, timeout=10.0)
        lab = Lab.up(name=name, n=n, config_dir=Path(conf))
    out: dict[str, list[tuple[float, float, float, int]]] = {}
    try:
        wait_all_online(lab, timeout=120)
        wait_for("failover1 Online", lambda: owner_clp(lab, "server1"), timeout=90)
        host_dir = lab.root_of("server1") / BACKUP.removeprefix("/opt/nec/clusterpro/")
        host_dir.mkdir()
        run_ok(lab, ["clpcfctrl", "--pull", "-x", BACKUP])
        for method in ("upload_only", "suspend_cluster"):
            out[method] = [one_push(lab, host_dir, method, i) for i in range(runs)]
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--servers", default="2,8")
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.servers.split(",")):
        for method, res in run(n, args.runs).items():
            push = [r[0] * 1000 for r in res]
            seq = [r[1] * 1000 for r in res]
            rows.append([str(n), method, str(len(res)), f"{median(push):.0f}",
                         f"{pct(push, 0.9):.0f}",
                         f"{median(seq):.0f}" if method == "suspend_cluster" else "-",
                         f"{sum(r[2] for r in res) * 1000:.0f}", str(sum(r[3] for r in res))])
    print(f"machine: {machine()}")
    print(table(f"clpcfctrl --push -x DIR on server1, sample cluster, {args.runs} runs each",
                ["servers", "method", "runs", "push p50 ms", "p90 ms", "sequence p50 ms",
                 "downtime total ms", "group restarts"], rows))


if __name__ == "__main__":
    main()
