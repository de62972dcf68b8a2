"""CPU time of the heartbeat: 8 lab servers at interval 0.1 s, every path kind against LAN only.

Labs one after the other in the same run, alternating (``rounds`` of each kind): 8 servers with
lanhb1, lanhb2, diskhb1 (the lab's heartbeat disk), witnesshb1 (the lab router's clpwitnessd)
and comhb1 (server1-server2 serial cable); and 8 servers with lanhb1 and lanhb2 only. No
groups, no shared data disk. Once every server sees all 8 Online (and server1 sees every path
Normal), the CPU time (utime + stime from /proc/<pid>/stat) of each server's ``clusterpro`` and
``clusterpro_evt`` (and of the witness) is read over ``--cpu-seconds``; the table shows the mean
over the labs of each kind. Each server's UDP datagrams and TCP connections per second (its
network namespace's /proc/net/snmp) are printed beside it: the cluster RPC (a ``report`` to
every peer each interval, over kept TCP connections: about 0 connects per second once up) is
part of what ``clusterpro`` does at 0.1 s, whatever the heartbeat paths.

The generated config is checked as clpcfchk checks it (``load_config`` on the directory) and
given to the lab as its config directory.

RLIMIT_MSGQUEUE is one budget per user: the lab gives each server its share of it as its evt
queue depth (clp.lab.lab.mq_depth), so all 8 servers log as they would on 8 machines, with
shorter queues.

Called by benchmarks/hb_latency.py (``--cpu-only`` runs only this).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from benchmarks.benchlib import median, table
from clp.config import ConfigError, load_config
from clp.config.lab import generate_lab_config
from clp.lab import Lab
from clp.lab import netns as nx
from clp.lab import router as lab_router
from clp.paths import InstallRoot
from clp.platform.supervisor_client import SupervisorClient
from tests.integration.labutil import status, wait_all_online, wait_for

N_SERVERS = 8
INTERVAL, TIMEOUT = 0.1, 0.5
SERVICES = ("clusterpro", "clusterpro_evt")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NORMAL_WAIT = 30.0
ALL = "all paths"
LAN = "LAN only"
KINDS: dict[str, dict[str, bool]] = {  # label -> generate_lab_config keywords
    ALL: {"diskhb": True, "com": True, "witness": True},
    LAN: {},
}


@contextlib.contextmanager
def lab_up(prefix: str, **kw: object) -> Iterator[Lab]:
    """A lab that is removed whatever happens (Lab.up cleans up after its own failure)."""
    name = prefix + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, **kw)  # type: ignore[arg-type]
        yield lab
    finally:
        try:
            if lab is not None:
                lab.down()
        finally:
            Lab.cleanup_all(name)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def service_of(argv: list[str]) -> str | None:
    """``clusterpro`` for `.../clusterpro`, `python .../clusterpro` or `python -m
    services.clusterpro` (likewise clusterpro_evt); None for anything else."""
    for i, arg in enumerate(argv[:2]):
        if os.path.basename(arg) in SERVICES:
            return os.path.basename(arg)
        if arg == "-m" and i + 1 < len(argv) and argv[i + 1].startswith("services."):
            name = argv[i + 1].removeprefix("services.")
            return name if name in SERVICES else None
    return None


def service_pids(lab: Lab, server: str) -> dict[str, list[int]]:
    """Host pids of the server's services: processes of its pid namespace by command line."""
    init = lab._init_pid(server)
    ns = nx.pidns_of(init) if init else None
    found: dict[str, list[int]] = {s: [] for s in SERVICES}
    for pid in nx.pids_in_pidns(ns) if ns else []:
        name = service_of(_cmdline(pid))
        if name is not None and nx.alive(pid):
            found[name].append(pid)
    return found


def _stat(pid: int) -> tuple[int, int] | None:
    """(utime + stime in clock ticks, start time): the start time tells a restarted pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12]), int(fields[19])


def kernel_ticks(pid: int) -> int:
    """stime of ``pid``: its time in the kernel (system calls, the network stack it runs)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[12])
    except (OSError, IndexError, ValueError):
        return 0


def side_thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime of each thread of ``pid`` but its main thread (the event loop)."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in map(int, os.listdir(f"/proc/{pid}/task")):
            if tid != pid:
                with contextlib.suppress(OSError, IndexError):
                    f = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1]
                    out[tid] = int(f.split()[11]) + int(f.split()[12])
    return out


def cpu_over(pids: dict[str, list[int]], seconds: float) -> dict[str, float]:
    """CPU seconds per second of wall time of each key's processes (summed) over ``seconds``."""
    before = {k: [_stat(p) for p in v] for k, v in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    after = {k: [_stat(p) for p in v] for k, v in pids.items()}
    wall = time.monotonic() - t0
    out = {}
    for key in pids:
        ticks = 0
        for b, a, pid in zip(before[key], after[key], pids[key], strict=True):
            if b is None or a is None or a[1] != b[1]:
                raise RuntimeError(f"{key}: process {pid} ended or restarted while measured")
            ticks += a[0] - b[0]
        out[key] = ticks / CLK_TCK / wall
    return out


def not_normal(lab: Lab) -> list[str]:
    """Paths server1 does not see Normal (Not Used: the path does not join that pair)."""
    doc = status(lab, "server1")
    bad = []
    for server, entry in doc["membership"]["servers"].items():
        if server == "server1":
            continue
        for path, p in entry["paths"].items():
            if p["state"] not in ("Normal", "Not Used"):
                bad.append(f"{server}/{path}: {p['state']}")
    return bad


def net_counters(lab: Lab) -> Counter[str]:
    """UDP datagrams and TCP connections of every server so far (its netns's /proc/net/snmp)."""
    total: Counter[str] = Counter()
    for server in lab.servers:
        init = lab._init_pid(server)
        with contextlib.suppress(OSError, TypeError):
            rows = [ln.split() for ln in Path(f"/proc/{init}/net/snmp").read_text().splitlines()]
            for head, values in zip(rows[::2], rows[1::2], strict=False):
                if head[0] in ("Udp:", "Tcp:"):
                    total.update({f"{head[0][:-1]} {k}": int(v) for k, v in
                                  zip(head[1:], values[1:], strict=False)})
    return total


NET_RATES = {"UDP in": "Udp InDatagrams", "UDP out": "Udp OutDatagrams",
             "TCP connects": "Tcp ActiveOpens", "TCP accepts": "Tcp PassiveOpens"}


def incidents(lab: Lab) -> dict[str, int]:
    """Heartbeat paths lost and servers declared down, from every server's nm.log so far."""
    found = {"path lost": 0, "server down": 0}
    for server in lab.servers:
        with contextlib.suppress(OSError):
            text = (InstallRoot(lab.root_of(server)).log_dir / "nm.log").read_text(
                errors="replace")
            found["path lost"] += len(re.findall(r"heartbeat path \S+ to \S+ lost", text))
            found["server down"] += len(re.findall(r"server\d+ is down", text))
    return found


def evt_queues(lab: Lab) -> list[str]:
    """The evt queue shape each server's clusterpro_evt logged at its start."""
    shapes = []
    for server in lab.servers:
        log_dir = InstallRoot(lab.root_of(server)).log_dir
        text = ""
        for f in sorted(log_dir.glob("*")):
            with contextlib.suppress(OSError):
                text += f.read_text(errors="replace") if f.is_file() else ""
        found = re.findall(r"event service started \(queue \S+ depth (\d+), message size "
                           r"(\d+)", text)
        shapes.append(f"{found[-1][0]} x {found[-1][1]} bytes" if found else "not logged")
    return shapes


def config_dir(dest: Path, gen_kw: dict[str, bool]) -> list[str]:
    """The generated clp.conf and an empty scripts/ in ``dest``, checked as
    clpcfchk checks it; returns the warnings (errors raise)."""
    dest.mkdir()
    (dest / "clp.conf").write_text(generate_lab_config(N_SERVERS, INTERVAL, TIMEOUT, **gen_kw))
    (dest / "scripts").mkdir()
    try:
        config = load_config(dest)
    except ConfigError as e:
        raise RuntimeError(f"generated config in {dest} is invalid: "
                           f"{'; '.join(map(str, e.issues))}") from None
    return [str(w) for w in config.warnings]


def measure_kind(kind: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        warnings = config_dir(conf, KINDS[kind])
        with lab_up("c", n=N_SERVERS, config_dir=conf, disks=0,
                    client=False) as lab:
            return measure_lab(lab, kind, seconds, (conf / "clp.conf").read_text(), warnings)


def measure_lab(lab: Lab, kind: str, seconds: float, text: str, warnings: list[str]) -> dict:
    installed = InstallRoot(lab.root_of("server1")).config_file.read_text()
    if installed != text:
        raise RuntimeError("the lab installed another config than the one checked")
    t_up = time.monotonic()
    wait_all_online(lab, timeout=180)
    online_after = time.monotonic() - t_up
    with contextlib.suppress(AssertionError):  # reported below
        wait_for("every path Normal on server1", lambda: not not_normal(lab),
                 timeout=NORMAL_WAIT, step=0.5)
    bad = not_normal(lab)
    pids = {}
    for server in lab.servers:
        found = wait_for(f"{', '.join(SERVICES)} running in {server}",
                         lambda s=server: (lambda f: f if all(f.values()) else None)(
                             service_pids(lab, s)), timeout=30)
        pids.update({(server, svc): p for svc, p in found.items()})
    witness = lab_router.witness_pid(lab) if kind == ALL else None
    if witness is not None:
        pids[("router", "clpwitnessd")] = [witness]
    loops = {s: pids[(s, "clusterpro")][0] for s in lab.servers}
    before, net0, t0 = incidents(lab), net_counters(lab), time.monotonic()
    side0 = {s: side_thread_ticks(pid) for s, pid in loops.items()}
    kernel0 = {s: kernel_ticks(pid) for s, pid in loops.items()}
    cpu = cpu_over(pids, seconds)
    side1 = {s: side_thread_ticks(pid) for s, pid in loops.items()}
    kernel1 = {s: kernel_ticks(pid) for s, pid in loops.items()}
    after, net1, t1 = incidents(lab), net_counters(lab), time.monotonic()
    side = {s: sum(v - side0[s].get(t, v) for t, v in side1[s].items()) / CLK_TCK / (t1 - t0)
            for s in lab.servers}
    kernel = {s: (kernel1[s] - kernel0[s]) / CLK_TCK / (t1 - t0) for s in lab.servers}
    net = {k: (net1[v] - net0[v]) / (t1 - t0) / N_SERVERS for k, v in NET_RATES.items()}
    during = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    bad_after = not_normal(lab)
    counters = status(lab, "server1")["counters"]["paths"]
    restarts = {}
    for server in lab.servers:
        doc = SupervisorClient(InstallRoot(lab.root_of(server)), timeout=5.0).status()
        restarts.update({f"{server}/{svc}": v.get("restarts") for svc, v in
                         (doc.get("services") or {}).items() if v.get("restarts")})
    return {"cpu": cpu, "side": side, "kernel": kernel, "net": net, "during": during,
            "restarts": restarts,
            "not_normal": bad, "not_normal_after": bad_after, "online_after": online_after,
            "counters": counters, "warnings": warnings, "evt": evt_queues(lab),
            "n_pids": {k: len(v) for k, v in pids.items()}}


def measure(seconds: float, rounds: int = 3) -> dict[str, list[dict]]:
    """``rounds`` labs of each kind, alternating (all paths, LAN only, all paths, ...)."""
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            results[kind].append(measure_kind(kind, seconds))
    return results


def _mean(runs: list[dict], key: tuple[str, str]) -> float | None:
    values = [r["cpu"][key] for r in runs if key in r["cpu"]]
    return sum(values) / len(values) if values else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f}"


def _ratio(x: float | None, y: float | None) -> str:
    return f"{x / y:.2f}" if x is not None and y else "-"


def cpu_table(results: dict[str, list[dict]], seconds: float) -> str:
    runs_a, runs_b = results[ALL], results[LAN]
    rounds = len(runs_a)
    keys = [(f"server{i}", svc) for svc in SERVICES for i in range(1, N_SERVERS + 1)]
    keys.append(("router", "clpwitnessd"))
    a = {k: v for k in keys if (v := _mean(runs_a, k)) is not None}
    b = {k: v for k in keys if (v := _mean(runs_b, k)) is not None}
    rows = [[k[1], k[0], _pct(a.get(k)), _ms(a.get(k)), _pct(b.get(k)), _ms(b.get(k)),
             _ratio(a.get(k), b.get(k))] for k in keys if k in a or k in b]
    for svc in SERVICES:
        xs = median([a[(f"server{i}", svc)] for i in range(1, N_SERVERS + 1)])
        ys = median([b[(f"server{i}", svc)] for i in range(1, N_SERVERS + 1)])
        rows.append([svc, f"median of {N_SERVERS}", _pct(xs), _ms(xs), _pct(ys), _ms(ys),
                     _ratio(xs, ys)])
    x, y = sum(a.values()), sum(b.values())
    rows.append(["all of the above", "sum", _pct(x), _ms(x), _pct(y), _ms(y), _ratio(x, y)])
    out = [table(f"CPU per process, {N_SERVERS} servers, interval {INTERVAL} s / timeout "
                 f"{TIMEOUT} s, {seconds:g} s measured per lab, mean of {rounds} labs of each "
                 f"kind, alternating (utime+stime, {CLK_TCK} ticks/s); {ALL}: lanhb1 lanhb2 "
                 f"diskhb1 witnesshb1 + comhb1 (server1-server2); {LAN}: lanhb1 lanhb2",
                 ["process", "server", f"{ALL} % core", f"{ALL} ms/s", f"{LAN} % core",
                  f"{LAN} ms/s", f"x {LAN}"], rows)]
    for kind, runs in results.items():
        per_round = [median([r["cpu"][(f"server{i}", "clusterpro")]
                             for i in range(1, N_SERVERS + 1)]) for r in runs]
        net = {k: sum(r["net"][k] for r in runs) / len(runs) for k in NET_RATES}
        side = {s: sum(r["side"][s] for r in runs) / len(runs) for s in runs[0]["side"]}
        kernel = {s: sum(r["kernel"][s] for r in runs) / len(runs) for s in runs[0]["kernel"]}
        out.append(f"{kind}: clusterpro median per lab {', '.join(map(_pct, per_round))} % "
                   f"core; of it in threads other than the event loop (disk, COM I/O): "
                   f"server1 {_ms(side['server1'])} ms/s, server2 {_ms(side['server2'])}, "
                   f"median {_ms(median(side.values()))}; in the kernel (stime, every thread): "
                   f"median {_ms(median(kernel.values()))} ms/s; per server and second: "
                   + ", ".join(f"{k} {v:.0f}" for k, v in net.items()))
        for i, r in enumerate(runs, 1):
            out.append(f"  lab {i}: config warnings {r['warnings'] or 'none'}; all Online "
                       f"{r['online_after']:.1f} s after Lab.up returned; not Normal on "
                       f"server1 before: {r['not_normal'] or 'none'}, after: "
                       f"{r['not_normal_after'] or 'none'}; lost paths / servers down "
                       f"(nm.log, all servers) while measured: {r['during'] or 'none'}; evt "
                       f"queues (depth x size) {dict(Counter(r['evt']))}; service restarts "
                       f"{r['restarts'] or 'none'}")
            more = {k: v for k, v in r["n_pids"].items() if v != 1}
            if more:
                out.append(f"  lab {i}: several processes summed: {more}")
    c = runs_a[-1]["counters"]
    extra = []
    for path, key in (("diskhb1", "cycle"), ("witnesshb1", "rtt"), ("lanhb1", "delay")):
        d = (c.get(path) or {}).get(key) or {}
        if d:
            extra.append(f"{path} {key} p50 {d['p50'] * 1e3:.2f} ms p99 {d['p99'] * 1e3:.2f} ms")
    if extra:
        out.append(f"{ALL}, server1's counters (last lab): " + "; ".join(extra))
    return "\n".join(out)
