"""COM heartbeat round trip over a socat pty pair (the lab's serial cable), three ways in the same
run, interleaved in rounds:

- raw: pyserial writes 96 bytes, an echo thread reads exactly 96 and writes them back; no
  framing, no verification (the floor a serial heartbeat can reach in Python);
- framed: what comhb does with the bytes: packet.encode, write, read what is there,
  FrameScanner, packet.decode (HMAC); the echo side decodes and answers with its own record;
- plugin: two ComHeartbeat instances in one event loop, the far one answering every heartbeat
  from its on_heartbeat callback (adds the port threads' hand-off to and from the loop).

Measured at the originator. Called by benchmarks/hb_latency.py; alone:
python benchmarks/comhb_roundtrip.py [--round-trips N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import serial

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, pct, table  # noqa: E402
from clp.config.model import Interconnect  # noqa: E402
from clp.heartbeat import packet  # noqa: E402
from clp.heartbeat.base import Outgoing, PathContext  # noqa: E402
from clp.heartbeat.comframe import FrameScanner, authentic  # noqa: E402
from clp.heartbeat.comhb import ComHeartbeat  # noqa: E402
from clp.heartbeat.packet import PACKET_SIZE, Heartbeat  # noqa: E402
from clp.lab.com_cable import start_pair, stop_pair  # noqa: E402

KEY = b"b" * 32
CID = packet.cluster_id("cluster")
ROUNDS = 10
WARMUP = 20
WAYS = ("raw pyserial echo (no framing)", "clp framing (encode, scan, decode)",
        "ComHeartbeat pair (threads + event loop)")


@contextmanager
def cable(directory: Path, tag: str) -> Iterator[tuple[str, str]]:
    a, b = directory / f"{tag}-a", directory / f"{tag}-b"
    proc = start_pair(a, b)
    try:
        yield str(a), str(b)
    finally:
        stop_pair(proc.pid, (a, b))


def _port(path: str) -> serial.Serial:
    return serial.Serial(path, 115200, timeout=1.0, write_timeout=1.0)


def _echo(path: str, stop: threading.Event, handle: Callable[[bytes], bytes]) -> None:
    with _port(path) as port:
        port.timeout = 0.1
        while not stop.is_set():
            data = read_available(port)
            if data:
                port.write(handle(data))


def read_available(port: serial.Serial) -> bytes:
    data = port.read(1)
    if data and port.in_waiting:
        data += port.read(port.in_waiting)
    return data


@contextmanager
def echo_thread(path: str, handle: Callable[[bytes], bytes]) -> Iterator[None]:
    stop = threading.Event()
    t = threading.Thread(target=_echo, args=(path, stop, handle), daemon=True)
    t.start()
    time.sleep(0.05)  # its port is open
    try:
        yield
    finally:
        stop.set()
        t.join(2)


def record(sender: int, seq: int) -> bytes:
    return packet.encode(KEY, Heartbeat(CID, sender, 0, 1, seq, time.time(), 0))


def raw_block(a: str, b: str, n: int) -> list[float]:
    out = []

    def echo(data: bytes) -> bytes:
        return data

    with echo_thread(b, echo), _port(a) as port:
        payload = record(0, 1)
        for i in range(WARMUP + n):
            t0 = time.perf_counter()
            port.write(payload)
            got = port.read(PACKET_SIZE)
            if len(got) != PACKET_SIZE:
                raise RuntimeError("raw echo lost bytes")
            if i >= WARMUP:
                out.append(time.perf_counter() - t0)
    return out


def framed_block(a: str, b: str, n: int) -> list[float]:
    far = FrameScanner(authentic(KEY, CID))

    def answer(data: bytes) -> bytes:
        reply = b""
        for c in far.feed(data):
            if c.good:
                reply += record(1, packet.decode(KEY, c.frame, CID).seq)
        return reply

    out = []
    near = FrameScanner(authentic(KEY, CID))
    with echo_thread(b, answer), _port(a) as port:
        for seq in range(1, WARMUP + n + 1):
            t0 = time.perf_counter()
            port.write(record(0, seq))
            while not any(c.good and packet.decode(KEY, c.frame, CID).seq == seq
                          for c in near.feed(read_available(port))):
                pass
            if seq > WARMUP:
                out.append(time.perf_counter() - t0)
    return out


def plugin_block(a: str, b: str, n: int) -> list[float]:
    return asyncio.run(_plugin(a, b, n))


async def _plugin(a: str, b: str, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    waiter: list[asyncio.Future[int]] = []
    ic = Interconnect("comhb1", "com", 0, devices={"s1": a, "s2": b}, servers=("s1", "s2"))
    paths: list[ComHeartbeat] = []

    def on_hb(me: int, sender: int, path: int, hb: Heartbeat) -> None:
        if me == 1:  # the far end answers at once
            paths[1].send(Outgoing(hb.seq, 0, time.time()))
        elif waiter and not waiter[0].done():
            waiter[0].set_result(hb.seq)

    for me in (0, 1):
        ctx = PathContext(KEY, "cluster", ("s1", "s2"), me, 1, 0.1,
                          on_heartbeat=lambda s, p, hb, *_, me=me: on_hb(me, s, p, hb))
        paths.append(ComHeartbeat(ctx, ic, 0))
    out = []
    try:
        for p in paths:
            await p.start()
        await asyncio.sleep(0.1)  # ports open
        for seq in range(1, WARMUP + n + 1):
            waiter[:] = [loop.create_future()]
            t0 = time.perf_counter()
            paths[0].send(Outgoing(seq, 0, time.time()))
            await asyncio.wait_for(waiter[0], 2.0)
            if seq > WARMUP:
                out.append(time.perf_counter() - t0)
    finally:
        for p in paths:
            p.close()
    return out


def measure(round_trips: int) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {w: [] for w in WAYS}
    per = max(1, round_trips // ROUNDS)
    blocks = dict(zip(WAYS, (raw_block, framed_block, plugin_block), strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            for i, (way, block) in enumerate(blocks.items()):
                with cable(Path(tmp), str(i)) as (a, b):
                    runs[way] += block(a, b, per)
    return runs


def com_table(round_trips: int) -> str:
    runs = measure(round_trips)
    base = pct(runs[WAYS[0]], 0.5)
    rows = [[way, str(len(t)), f"{pct(t, 0.5) * 1e6:.0f}", f"{pct(t, 0.99) * 1e6:.0f}",
             f"{max(t) * 1e6:.0f}", f"{pct(t, 0.5) / base:.2f}"] for way, t in runs.items()]
    return table(f"COM heartbeat round trip over a socat pty pair (96-byte record, 115200 8N1 "
                 f"on a pty: no baud-rate delay; interleaved in {ROUNDS} rounds)",
                 ["way", "round trips", "p50 us", "p99 us", "max us", "p50 x raw"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--round-trips", type=int, default=1000)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(com_table(args.round_trips))


if __name__ == "__main__":
    main()
