"""Round trip of one heartbeat record over UDP on a lab cluster's interconnect (lanhb1).

An echo process inside server2 (bound to its interconnect address, port 29100, next to the
running cluster's own heartbeats on 29002) sends every datagram back unchanged. A sender inside
server1 measures, interleaved in rounds:

- raw: the same 96 bytes sent and received, compared as bytes (the limit of Python + UDP here);
- clp: a record made by ``clp.heartbeat.packet.encode`` (HMAC-SHA256 with the cluster key), sent,
  and the echo verified by ``packet.decode`` (size, magic, MAC, cluster id) and its sequence
  checked: one encode and one decode per round trip on top of raw;
- encode + decode alone, no socket (what the clp row adds, measured in the same process).

Called by benchmarks/hb_latency.py (``--lan-rtt-only`` runs only this, in its own lab).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import pct, table  # noqa: E402
from clp.lab import Lab  # noqa: E402

ECHO_PORT = 29100
ROUNDS = 50  # blocks of round_trips / ROUNDS per way, alternating, so drift hits all ways alike
IDLE_EXIT = 30.0  # the echo ends by itself this long after the last datagram


def cpus() -> tuple[int, int]:
    """Sender and echo on two different CPUs, as on two machines: left to the scheduler, they
    sometimes share one (no cross-CPU wakeup) and the round trip changes by 3x between runs."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], allowed[-1]

ECHO = r"""
import os, socket, sys
os.sched_setaffinity(0, {int(sys.argv[4])})
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
while True:
    try:
        data, addr = s.recvfrom(2048)
    except TimeoutError:
        break
    if data == b"STOP":
        break
    s.sendto(data, addr)
"""

SENDER = r"""
import json, os, socket, sys, time
from clp.heartbeat import packet
from clp.keys import load_key
from clp.paths import InstallRoot

src, dst, port, cluster = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
n, rounds = int(sys.argv[5]), int(sys.argv[6])
os.sched_setaffinity(0, {int(sys.argv[7])})
key = load_key(InstallRoot.from_env().key_file)
cid = packet.cluster_id(cluster)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(1.0)
peer = (dst, port)
clock = time.perf_counter_ns
seq = 0
lost = {"raw": 0, "clp": 0}


def record(seq):
    return packet.Heartbeat(cid, 1, 0, 1, seq, time.time(), packet.SENDER_RUNNING)


RAW = packet.encode(key, record(0))
assert len(RAW) == packet.PACKET_SIZE


def raw_once():
    t0 = clock()
    s.sendto(RAW, peer)
    data, addr = s.recvfrom(2048)
    t1 = clock()
    if data != RAW or addr[0] != dst:
        raise SystemExit(f"raw: unexpected answer from {addr}")
    return t1 - t0


def clp_once():
    global seq
    seq += 1
    t0 = clock()
    s.sendto(packet.encode(key, record(seq)), peer)
    data, addr = s.recvfrom(2048)
    hb = packet.decode(key, data, cid)
    t1 = clock()
    if hb.seq != seq or addr[0] != dst:
        raise SystemExit(f"clp: answer seq {hb.seq} from {addr}, expected {seq}")
    return t1 - t0


def codec_once():
    global seq
    seq += 1
    t0 = clock()
    packet.decode(key, packet.encode(key, record(seq)), cid)
    return clock() - t0


def drain():
    s.setblocking(False)
    try:
        while True:
            s.recvfrom(2048)
    except BlockingIOError:
        pass
    s.settimeout(1.0)


def block(name, step, count):
    out = []
    while len(out) < count:
        try:
            out.append(step())
        except TimeoutError:
            lost[name] += 1
            drain()
    return out


ways = {"raw": raw_once, "clp": clp_once, "codec": codec_once}
for name, step in ways.items():
    block(name, step, 200)  # warm-up
runs = {name: [] for name in ways}
per = max(1, n // rounds)
for r in range(rounds):
    order = list(ways) if r % 2 == 0 else list(reversed(ways))
    for name in order:
        runs[name] += block(name, ways[name], per)
s.sendto(b"STOP", peer)
print(json.dumps({"runs": runs, "lost": lost}))
"""

WAYS = {
    "raw": "raw: the same 96 bytes echoed, compared as bytes (no encode/decode)",
    "clp": "clp: packet.encode, send, receive, packet.decode (HMAC check), seq check",
    "codec": "encode + decode alone in the sender (no socket)",
}


def measure(lab: Lab, round_trips: int, cluster: str = "cluster") -> dict:
    """Round trips from server1 to an echo in server2 on lanhb1; times in seconds."""
    src, dst = lab.addresses("server1")["ic1"], lab.addresses("server2")["ic1"]
    cpu_sender, cpu_echo = cpus()
    echo = lab.popen("server2", ["python3", "-c", ECHO, dst, str(ECHO_PORT), str(IDLE_EXIT),
                                 str(cpu_echo)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, start_new_session=True)
    try:
        ready = echo.stdout.readline().strip() if echo.stdout else ""
        if ready != "ready":
            raise RuntimeError(f"the echo in server2 did not start: {echo.stderr.read()}")
        r = lab.exec("server1", ["python3", "-c", SENDER, src, dst, str(ECHO_PORT), cluster,
                                 str(round_trips), str(ROUNDS), str(cpu_sender)], timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"the sender in server1 failed ({r.returncode}): {r.stderr}")
        doc = json.loads(r.stdout)
        echo.wait(timeout=10)
    finally:
        if echo.poll() is None:  # the echo and nsenter share their own process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(echo.pid, signal.SIGKILL)
            echo.wait(timeout=10)
    return {"runs": {k: [ns / 1e9 for ns in v] for k, v in doc["runs"].items()},
            "lost": doc["lost"], "cpus": (cpu_sender, cpu_echo)}


def rtt_table(result: dict, round_trips: int) -> str:
    runs, lost = result["runs"], result["lost"]
    base = pct(runs["raw"], 0.5)
    rows = [[WAYS[w], str(len(t)), str(lost.get(w, 0)), f"{pct(t, 0.5) * 1e6:.0f}",
             f"{pct(t, 0.99) * 1e6:.0f}", f"{max(t) * 1e6:.0f}", f"{pct(t, 0.5) / base:.2f}"]
            for w, t in runs.items()]
    return table(f"LAN heartbeat round trip server1 -> echo in server2 -> server1 over lanhb1 "
                 f"(UDP, 96-byte record, {round_trips} per way interleaved in {ROUNDS} rounds, "
                 f"sender on CPU {result['cpus'][0]}, echo on CPU {result['cpus'][1]}, "
                 f"cluster running at its own interval meanwhile)",
                 ["way", "n", "lost", "p50 us", "p99 us", "max us", "p50 x raw"], rows)
