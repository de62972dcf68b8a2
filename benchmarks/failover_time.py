"""Failover time: clp against keepalived and Pacemaker, same lab topology, same run.

A group with a floating IP and an exec resource running a small TCP service lives on one of two lab
servers. We crash (power off) the server that owns it and measure, from a client namespace, the
time from the crash to the first answer of the service from the other server. keepalived (VRRP,
unicast to the peer, same VIP, the same TCP service running on both servers) and Pacemaker +
Corosync (IPaddr2, no fencing; :mod:`benchmarks.pacemaker_lab`) are measured the same way, and
so is clp with the address alone in its group ("address only").

With ``--stress`` the whole run is repeated under a CPU load (stress-ng, one worker per core)
and every failover that happened without a crash is counted as a false failover.

With ``--resolution-only``, clp alone without network-partition resolution, with ping and with
witness arbitration: the price of the takeover wait (docs/network-partition.md) on a crash.

Usage: python benchmarks/failover_time.py [--runs 20] [--stress] [--resolution-only]
                                          [--only ROW ...]
       (root; own labs, removed after)
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import pacemaker_lab  # noqa: E402
from benchmarks.benchlib import machine, median, pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402
from clp.lab.samples import witness_arbitration, write_sample_config  # noqa: E402
from tests.integration.labutil import status, wait_all_online, wait_for  # noqa: E402

VIP, PORT = "198.18.0.12", 8080
# The service: accept, send this server's name, close (python3 -S: no site import, ~10 ms).
APP_PY = """import socket
me = socket.gethostname().encode() + b"\\n"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(128)
while True:
    c = s.accept()[0]
    c.sendall(me)
    c.close()
"""
APP = "python3 -S /opt/nec/clusterpro/work/bench-app.py"
# The client is started before the crash, and starts probing when told "go" on its standard
# input (just before the crash: its own start is not timed). A new connection attempt every
# 2 ms, each given 0.1 s, many in flight: one attempt at a time would wait out its connect
# timeout while the address moves (a SYN to the dead server's MAC is lost), and the measure would
# be only as fine as that timeout. The first answer from a server other than the crashed one
# ends it; its time is when that answer arrived.
PROBE = r"""
import errno, selectors, socket, sys, time
target, old = (sys.argv[1], int(sys.argv[2])), sys.argv[3].encode()
print("ready", flush=True)
sys.stdin.readline()
deadline = time.time() + float(sys.argv[4])
sel, nxt = selectors.DefaultSelector(), 0.0
while time.time() < deadline:
    now = time.time()
    if now >= nxt:
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex(target) not in (0, errno.EINPROGRESS):
            s.close()
        else:
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, now + 0.1)
        nxt = now + 0.002
    for key, events in sel.select(max(0.0, nxt - time.time())):
        s = key.fileobj
        if not events & selectors.EVENT_READ:  # connected (or failed): wait for the name
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                sel.modify(s, selectors.EVENT_READ, key.data)
                continue
        try:
            name = s.recv(64).strip()
        except OSError:
            name = b""
        sel.unregister(s)
        s.close()
        if name and name != old:
            print(repr(time.time()), name.decode())
            sys.exit(0)
    for key in list(sel.get_map().values()):
        if key.data < time.time():
            sel.unregister(key.fileobj)
            key.fileobj.close()
sys.exit(1)
"""
START_SH = f"""#!/bin/sh
cp "$(dirname "$0")/app.py" /opt/nec/clusterpro/work/bench-app.py
setsid nohup {APP} >/dev/null 2>&1 &
echo $! > /opt/nec/clusterpro/work/bench-app.pid
i=0
while [ $i -lt 200 ] && ! ss -Hltn "sport = :{PORT}" | grep -q .; do sleep 0.01; i=$((i+1)); done
"""
STOP_SH = """#!/bin/sh
pid=$(cat /opt/nec/clusterpro/work/bench-app.pid 2>/dev/null) && kill "$pid" 2>/dev/null
exit 0
"""
KEEPALIVED = """global_defs {{
  router_id {me}
  vrrp_version 3    # sub-second advert_int needs VRRPv3 (v2 counts whole seconds)
  script_user root
  enable_script_security
}}
vrrp_instance VI_1 {{
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id 51
  priority {prio}
  advert_int {advert}
  unicast_src_ip {src}
  unicast_peer {{
    {peer}
  }}
  virtual_ipaddress {{
    {vip}/24 dev eth0
  }}
}}
"""


class Client:
    """The probe of :data:`PROBE` on the lab's client, started and ready before the crash."""

    def __init__(self, lab: Lab, old_owner: str, limit: float = 60.0) -> None:
        self.limit = limit
        self.proc = lab.client_popen(["python3", "-c", PROBE, VIP, str(PORT), old_owner,
                                      str(limit)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"the client probe did not start: {self.proc.communicate()[1]}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def answered_after(self, t0: float) -> float:
        """Seconds from ``t0`` to the first answer from another server."""
        try:
            out, err = self.proc.communicate(timeout=self.limit + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise RuntimeError(f"{VIP}:{PORT} never answered from another server after the "
                               f"crash: {err}")
        return float(out.split()[0]) - t0


def crash_and_time(lab: Lab, owner: str) -> float:
    """Crash ``owner``; seconds from the crash to the service answering from another server."""
    client = Client(lab, owner)
    t0 = time.time()
    client.go()
    lab.crash(owner)
    return client.answered_after(t0)


def owner_clp(lab: Lab, observer: str) -> str | None:
    g = status(lab, observer)["groups"]["failover1"]
    return g["server"] if g["state"] == "Online" else None


def clp_config(dest: Path, interval: float, timeout: float, ping_check: bool = True,
               resolution: str | None = None, app_in_group: bool = True,
               check_timeout: float | None = None, witness_timeout: float = 1.0) -> None:
    """The sample (LANs, disk and COM heartbeats) with one group; without network-partition
    resolution unless asked (keepalived has none: its rows compare detection and takeover):
    ``resolution`` "ping" keeps the sample's ping resolver (budget 1 s), "witness" replaces it
    with witness arbitration by the lab router's witness (``witness_timeout``: its budget).
    ``app_in_group`` False: the group holds the floating IP alone and the service runs on every
    server, as keepalived's does."""
    write_sample_config(dest, n_servers=2, interval=interval, timeout=timeout)
    conf = yaml.safe_load((dest / "clp.conf").read_text())
    if resolution is None:
        conf["network_partition"]["resolvers"] = []
    elif resolution == "witness":
        witness_arbitration(conf, witness_timeout)
    fip = {"type": "fip", "ip": VIP, "ping_check": ping_check}
    if check_timeout is not None:
        fip["check_timeout"] = check_timeout
    resources = {"fip1": fip, "exec1": {"type": "exec"}} if app_in_group else {"fip1": fip}
    conf["groups"] = {"failover1": {"resources": resources}}
    conf["monitors"] = {}  # the sample's watch its own groups; userw and fipw1 are created
    (dest / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))
    scripts = dest / "scripts"
    shutil.rmtree(scripts)
    if not app_in_group:
        return
    (scripts / "failover1" / "exec1").mkdir(parents=True)
    for name, text in (("start.sh", START_SH), ("stop.sh", STOP_SH), ("app.py", APP_PY)):
        path = scripts / "failover1" / "exec1" / name
        path.write_text(text)
        path.chmod(0o755)


def run_clp(runs: int, interval: float, timeout: float, workdir: Path,
            **options: Any) -> tuple[list[float], int]:
    """``options``: those of :func:`clp_config`."""
    conf = workdir / ("clp-" + "-".join(f"{v}" for v in (interval, timeout, *options.values())))
    clp_config(conf, interval, timeout, **options)
    name = "f" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, config_dir=conf)
    times, false_failovers = [], 0
    on_every_server = not options.get("app_in_group", True)
    try:
        wait_all_online(lab)
        granted(lab, options.get("resolution"))
        if on_every_server:
            for s in lab.servers:
                _start_app(lab, s)
        owner = wait_for("failover1 Online", lambda: owner_clp(lab, "server1"), timeout=60)
        for _ in range(runs):
            other = "server2" if owner == "server1" else "server1"
            # quiet period: the group must stay where it is (no false failover)
            time.sleep(max(3 * timeout, 2.0))
            if owner_clp(lab, other) != owner:
                false_failovers += 1
            try:
                times.append(crash_and_time(lab, owner))
            except RuntimeError as e:
                raise RuntimeError(f"{e} (run {len(times) + 1}, {owner} crashed); {other}'s "
                                   f"nm.log ends:\n{log_tail(lab, other)}") from None
            wait_for("failover1 on the survivor", lambda o=other: owner_clp(lab, o) == o,
                     timeout=30)
            lab.restart(owner)
            wait_all_online(lab)
            granted(lab, options.get("resolution"))
            if on_every_server:
                _start_app(lab, owner)
            owner = other
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return times, false_failovers


def granted(lab: Lab, resolution: str | None) -> None:
    """With witness arbitration, until every server's renewals are granted (the lab's witness
    grants nothing for a while after it starts, and a restarted server renews first)."""
    if resolution == "witness":
        wait_for("witness renewals granted", lambda: all(
            status(lab, s)["partition"]["resolvers"]["witnessnp1"].get("ok")
            for s in lab.servers), timeout=60)


def log_tail(lab: Lab, server: str, lines: int = 60) -> str:
    path = lab.root_of(server) / "log" / "nm.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _vrrp_owner(lab: Lab) -> str | None:
    holders = [s for s in lab.servers if VIP in lab.addresses_on(s)]
    return holders[0] if len(holders) == 1 else None


def _start_app(lab: Lab, server: str) -> None:
    """The TCP service, started outside the cluster (keepalived's, and clp's address-only rows)."""
    (lab.root_of(server) / "work" / "bench-app.py").write_text(APP_PY)
    r = lab.exec(server, ["sh", "-c", f"setsid nohup {APP} >/dev/null 2>&1 &"])
    if r.returncode != 0:
        raise RuntimeError(f"the service on {server}: {r.stderr}")


def _start_keepalived(lab: Lab, server: str, advert: float) -> None:
    i = lab.servers.index(server) + 1
    conf = KEEPALIVED.format(me=server, prio=200 - i, advert=f"{advert:g}", src=f"198.18.0.{i}",
                             peer=f"198.18.0.{3 - i}", vip=VIP)
    path = lab.root_of(server) / "work" / "keepalived.conf"
    path.write_text(conf)
    _start_app(lab, server)
    r = lab.exec(server, ["keepalived", "-D", "-f", "/opt/nec/clusterpro/work/keepalived.conf",
                          "-p", "/opt/nec/clusterpro/work/k.pid",
                          "-r", "/opt/nec/clusterpro/work/v.pid", "--no-syslog", "-l"])
    if r.returncode != 0:
        raise RuntimeError(f"keepalived on {server}: {r.stderr}")


def run_keepalived(runs: int, advert: float) -> tuple[list[float], int]:
    name = "k" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, services=[])
    times, false_failovers = [], 0
    try:
        for s in lab.servers:
            _start_keepalived(lab, s, advert)
        owner = wait_for("a VRRP master", lambda: _vrrp_owner(lab), timeout=30)
        for _ in range(runs):
            time.sleep(max(10 * advert, 2.0))
            if _vrrp_owner(lab) != owner:  # the VIP moved without a crash
                false_failovers += 1
                owner = wait_for("a VRRP master", lambda: _vrrp_owner(lab), timeout=30)
            times.append(crash_and_time(lab, owner))
            survivor = wait_for("the VIP on the survivor", lambda: _vrrp_owner(lab), timeout=30)
            lab.restart(owner)
            _start_keepalived(lab, owner, advert)
            owner = survivor
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return times, false_failovers


def run_pacemaker(runs: int, token_ms: int) -> tuple[list[float], int]:
    """Pacemaker + Corosync with an IPaddr2 floating IP; the service runs on both servers."""
    name = "p" + secrets.token_hex(2)
    lab = Lab.up(name=name, n=2, services=[])
    both = set(lab.servers)
    times, false_failovers = [], 0
    try:
        for s in lab.servers:
            _start_app(lab, s)
            pacemaker_lab.start(lab, s, token_ms)
        pacemaker_lab.wait_members(lab, "server1", both)
        pacemaker_lab.configure(lab, "server1", VIP)
        owner = wait_for("the VIP started", lambda: _vrrp_owner(lab), timeout=120)
        for _ in range(runs):
            time.sleep(max(3 * token_ms / 1000, 2.0))
            if _vrrp_owner(lab) != owner:  # the VIP moved without a crash
                false_failovers += 1
                owner = wait_for("the VIP", lambda: _vrrp_owner(lab), timeout=60)
            try:
                times.append(crash_and_time(lab, owner))
            except RuntimeError as e:
                other = next(s for s in lab.servers if s != owner)
                raise RuntimeError(f"{e} (run {len(times) + 1}, {owner} crashed); crm_mon -1 on "
                                   f"{other}:\n{pacemaker_lab.status(lab, other)}") from None
            survivor = wait_for("the VIP on the survivor", lambda: _vrrp_owner(lab), timeout=60)
            lab.restart(owner)
            _start_app(lab, owner)
            pacemaker_lab.start(lab, owner, token_ms)
            pacemaker_lab.wait_members(lab, survivor, both)
            owner = survivor
    finally:
        lab.down()
        Lab.cleanup_all(name)
    return times, false_failovers


def row(label: str, detect: str, times: list[float], false: int) -> list[str]:
    return [label, detect, str(len(times)), f"{median(times):.3f}", f"{pct(times, 0.9):.3f}",
            f"{max(times):.3f}", str(false)]


def measure_resolution(runs: int, workdir: Path) -> list[list[str]]:
    """The cost of resolution's takeover wait: the same crash, without it, with ping and with
    witness arbitration; at timeout 0.3 s (no room for a hearing window: the witness waits as
    ping does) and 0.5 s with a witness timeout of 0.1 s (a window: no wait after a crash)."""
    rows = []
    for timeout, witness in ((0.3, 1.0), (0.5, 0.1)):
        for resolution in (None, "ping", "witness"):
            times, false = run_clp(runs, 0.1, timeout, workdir, resolution=resolution,
                                   witness_timeout=witness)
            label = {None: "clp", "ping": "clp, ping resolution",
                     "witness": f"clp, witness arbitration (timeout {witness:g} s)"}[resolution]
            rows.append(row(label, f"interval 0.1 s / timeout {timeout:g} s", times, false))
            print("row:", " | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


# Every row: (key for --only, label, how it runs). clp's timeout is 3 intervals, like
# keepalived's master-down time (3 adverts plus a skew under one advert). At 10 ms the floating
# IP's check waits 10 ms (check_timeout 0.01), not the default 0.1 s: a cluster that detects in
# 30 ms sets it so, or the check would take three times the detection.
TEN_MS = {"check_timeout": 0.01}
ROWS: list[tuple[str, str, tuple[Any, ...]]] = [
    *((f"clp-{i:g}-{t:g}", "clp", ("clp", i, t, TEN_MS if i < 0.1 else {}))
      for i, t in ((1.0, 3.0), (1.0, 5.0), (0.1, 0.3), (0.1, 0.5), (0.01, 0.03))),
    # without the floating IP's duplicate-address check, which keepalived lacks
    ("clp-nocheck-0.1-0.3", "clp, no fip check", ("clp", 0.1, 0.3, {"ping_check": False})),
    # the address alone moves, the service runs on both servers: what keepalived's rows do
    *((f"clp-addr-{i:g}-{t:g}", "clp, address only",
       ("clp", i, t, {"app_in_group": False, **(TEN_MS if i < 0.1 else {})}))
      for i, t in ((1.0, 3.0), (0.1, 0.3), (0.01, 0.03))),
    *((f"keepalived-{a:g}", "keepalived", ("keepalived", a)) for a in (1.0, 0.1, 0.01)),
    # no fencing (the lab has no fence device); IPaddr2, the service on both servers
    *((f"pacemaker-{t}", "pacemaker", ("pacemaker", t)) for t in (1000, 500)),
]


def measure(runs: int, workdir: Path, only: set[str] | None = None) -> list[list[str]]:
    rows = []
    for key, label, how in ROWS:
        if only is not None and key not in only:
            continue
        if how[0] == "clp":
            _, interval, timeout, options = how
            times, false = run_clp(runs, interval, timeout, workdir, **options)
            detect = f"interval {interval:g} s / timeout {timeout:g} s"
        elif how[0] == "pacemaker":
            times, false = run_pacemaker(runs, how[1])
            detect = f"corosync token {how[1]} ms"
        else:
            times, false = run_keepalived(runs, how[1])
            detect = f"advert_int {how[1]:g} s (down after ~3x)"
        rows.append(row(label, detect, times, false))
        print("row:", " | ".join(rows[-1]), file=sys.stderr, flush=True)  # kept if a later
    return rows                                                            # row fails


@contextlib.contextmanager
def cpu_load(enabled: bool):
    if not enabled:
        yield
        return
    if not shutil.which("stress-ng"):
        raise SystemExit("--stress needs stress-ng (apt-get install stress-ng)")
    p = subprocess.Popen(["stress-ng", "--cpu", "0", "--cpu-load", "100", "--quiet"])
    try:
        yield
    finally:
        p.terminate()
        p.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--stress", action="store_true", help="Run again under a full CPU load.")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/clp-failover-bench"))
    ap.add_argument("--resolution-only", action="store_true",
                    help="Only clp without resolution, with ping and with witness arbitration "
                         "(their takeover wait).")
    ap.add_argument("--only", action="append", choices=[k for k, _, _ in ROWS],
                    help="Only this row (repeatable; default: every row).")
    args = ap.parse_args()
    only = set(args.only) if args.only else None
    header = ["system", "detection", "runs", "p50 s", "p90 s", "max s", "false failovers"]
    if args.resolution_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        print(f"machine: {machine()}")
        print(table(f"crash -> first TCP connection to {VIP}:{PORT} ({args.runs} runs)", header,
                    measure_resolution(args.runs, args.workdir)))
        return
    if not shutil.which("keepalived"):
        raise SystemExit("keepalived is not installed (tools/install-deps.sh --bench)")
    if only is None or any(k.startswith("pacemaker") for k in only):
        pacemaker_lab.check_installed()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(table(f"crash -> first TCP connection to {VIP}:{PORT} from a client ({args.runs} runs)",
                header, measure(args.runs, args.workdir, only)))
    if args.stress:
        with cpu_load(True):
            rows = measure(args.runs, args.workdir, only)
        print()
        print(table("the same under stress-ng --cpu 0 (every core busy)", header, rows))


if __name__ == "__main__":
    main()
