"""comhb over a real socat pty pair: two ComHeartbeat instances in one event loop."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import serial

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.comhb import ComHeartbeat
from clp.heartbeat.packet import Heartbeat
from clp.lab import Lab, com_cable
from clp.lab.com_cable import start_pair, stop_pair
from clp.lab.netns import RUN_DIR

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

INTERVAL = 0.05
KEY = b"s" * 32
SERVERS = ("server1", "server2")


class Cable:
    """A socat pty pair linked at ``a`` and ``b``; ``pull`` and ``plug`` it."""

    def __init__(self, directory: Path) -> None:
        self.a, self.b = directory / "server1", directory / "server2"
        self.pid: int | None = None

    def plug(self) -> None:
        self.pid = start_pair(self.a, self.b).pid

    def pull(self) -> None:
        if self.pid is not None:
            stop_pair(self.pid, (self.a, self.b))
            self.pid = None


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[Cable]:
    c = Cable(tmp_path)
    try:
        yield c
    finally:
        c.pull()


class Side:
    def __init__(self, index: int, cable: Cable) -> None:
        self.got: list[tuple[int, int, Heartbeat]] = []
        self.ctx = PathContext(KEY, "cluster", SERVERS, index, incarnation=1, interval=INTERVAL,
                               on_heartbeat=lambda s, p, hb, *_: self.got.append((s, p, hb)))
        ic = Interconnect("comhb1", "com", 0, devices={"server1": str(cable.a),
                                                       "server2": str(cable.b)},
                          servers=SERVERS)
        self.path = ComHeartbeat(self.ctx, ic, 0)


async def run_rounds(sides: list[Side], until: Callable[[], bool], timeout: float,
                     seq: list[int]) -> bool:
    """Send a round every INTERVAL until ``until()`` holds (True) or ``timeout`` (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seq[0] += 1
        for s in sides:
            s.path.send(Outgoing(seq[0], packet.SENDER_RUNNING, time.time()))
        await asyncio.sleep(INTERVAL)
        if until():
            return True
    return False


def in_loop(cable: Cable, body: Callable[[list[Side], list[int]], Awaitable[None]],
            n: int = 2) -> None:
    sides = [Side(i, cable) for i in range(n)]

    async def main() -> None:
        try:
            for s in sides:
                await s.path.start()
            await body(sides, [0])
        finally:
            for s in sides:
                s.path.close()

    asyncio.run(main())


def test_two_servers_exchange_heartbeats(cable: Cable) -> None:
    cable.plug()

    async def body(sides: list[Side], seq: list[int]) -> None:
        assert await run_rounds(sides, lambda: all(len(s.got) >= 10 for s in sides), 3.0, seq)
        for me, s in enumerate(sides):
            assert {sender for sender, _, _ in s.got} == {1 - me}
            assert {path for _, path, _ in s.got} == {0}
            c = s.path.counters()
            assert c["local_error"] is None
            assert c["drops"] == {}
            assert c["resyncs"] == 0
            assert c["type"] == "com" and c["sent"] >= 10

    in_loop(cable, body)


def test_pulled_cable_is_a_local_error_on_both_and_plugging_restores(cable: Cable) -> None:
    cable.plug()

    async def body(sides: list[Side], seq: list[int]) -> None:
        assert await run_rounds(sides, lambda: all(len(s.got) >= 3 for s in sides), 3.0, seq)
        cable.pull()
        assert await run_rounds(
            sides, lambda: all(s.path.local_error for s in sides), 10 * INTERVAL, seq)
        counts = [len(s.got) for s in sides]
        await run_rounds(sides, lambda: False, 5 * INTERVAL, seq)
        assert [len(s.got) for s in sides] == counts  # nothing delivered without the cable
        assert all(s.path.counters()["device_errors"] >= 1 for s in sides)
        cable.plug()
        assert await run_rounds(
            sides, lambda: all(s.path.local_error is None and len(s.got) >= c + 3
                               for s, c in zip(sides, counts, strict=True)), 3.0, seq)
        assert [s.path.reopens for s in sides] == [1, 1]

    in_loop(cable, body)


def test_missing_device_at_start_then_cable_plugged(cable: Cable) -> None:
    async def body(sides: list[Side], seq: list[int]) -> None:
        assert await run_rounds(sides, lambda: all(s.path.local_error for s in sides), 1.0, seq)
        assert "cannot open" in (sides[0].path.local_error or "")
        cable.plug()
        assert await run_rounds(sides, lambda: all(len(s.got) >= 3 for s in sides), 3.0, seq)
        assert all(s.path.local_error is None for s in sides)

    in_loop(cable, body)


def test_noise_and_a_corrupted_record_are_skipped_and_counted(cable: Cable) -> None:
    """Only server1 runs clp; the test writes on server2's end: noise, a record with a flipped
    bit, then a good record from server2. server1 gets the good one and counts the rest."""
    cable.plug()
    cid = packet.cluster_id("cluster")

    def rec(seq: int) -> bytes:
        return packet.encode(KEY, Heartbeat(cid, 1, 0, 1, seq, time.time(), 0))

    async def body(sides: list[Side], seq: list[int]) -> None:
        me = sides[0]
        bad = bytearray(rec(1))
        bad[70] ^= 0x40
        with serial.Serial(str(cable.b), 115200, timeout=0.1) as far:
            await asyncio.sleep(2 * INTERVAL)  # server1's port is open
            far.write(b"\x00line noise CLP\xff" + bytes(bad) + b"xyz" + rec(2))
            assert await run_rounds([me], lambda: len(me.got) >= 1, 2.0, seq)
        assert [hb.seq for _, _, hb in me.got] == [2]
        c = me.path.counters()
        assert c["drops"] == {"bad_mac": 1}
        assert c["resyncs"] == 1
        assert c["bytes_skipped"] == len(b"\x00line noise CLP\xff") + 96 + 3
        assert c["local_error"] is None

    in_loop(cable, body, n=1)


def test_close_stops_the_thread_promptly(cable: Cable) -> None:
    cable.plug()

    async def body(sides: list[Side], seq: list[int]) -> None:
        await run_rounds(sides, lambda: False, 3 * INTERVAL, seq)
        thread = sides[0].path._thread
        t0 = time.monotonic()
        sides[0].path.close()
        assert time.monotonic() - t0 < 1.0  # never the 2 s join on the event loop
        assert thread is not None
        thread.join(1.0)  # close() waits 50 ms at most; the thread ends on its own
        assert not thread.is_alive()
        sides[0].path.close()  # idempotent

    in_loop(cable, body)


# The lab's COM cable (root): a socat pty pair server1 <-> server2, pulled and plugged back.

READ = """
import serial, sys, time
port = serial.Serial(sys.argv[1], 115200, timeout=0.1)
print("open", flush=True)
got, deadline = b"", time.monotonic() + 10
while b"over" not in got and time.monotonic() < deadline:
    got += port.read(64)
print(got.decode(errors="replace"), flush=True)
"""
WRITE = "import serial, sys; serial.Serial(sys.argv[1], 115200).write(sys.argv[2].encode())"


def _crosses(lab: Lab, src: str, dst: str) -> bool:
    """Bytes written on ``src``'s end inside ``src`` are read on ``dst``'s end inside ``dst``."""
    reader = lab.popen(dst, ["python3", "-c", READ, "/dev/lab/comhb1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       start_new_session=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "open\n"
        w = lab.exec(src, ["python3", "-c", WRITE, "/dev/lab/comhb1",
                           f"hello from {src} over"])
        assert w.returncode == 0, w.stderr
        out, _ = reader.communicate(timeout=15)
        return f"hello from {src} over" in out
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait(5)


@pytest.mark.lab
@needs_root
def test_lab_com_cable_unplug_plug_and_teardown() -> None:
    name = "t" + secrets.token_hex(2)
    try:
        lab = Lab.up(name=name, n=2, services=[], disks=0, client=False, com=True)
        conf = (lab.root_of("server1") / "etc" / "clp.conf").read_text()
        assert "server1: /dev/lab/comhb1" in conf
        for server in lab.servers:  # the link resolves to a pty inside each server
            r = lab.exec(server, ["sh", "-c", "test -c /dev/lab/comhb1 && "
                                  "readlink -f /dev/lab/comhb1"])
            assert r.returncode == 0 and r.stdout.startswith("/dev/pts/"), r
        assert _crosses(lab, "server1", "server2") and _crosses(lab, "server2", "server1")
        first = lab.doc["com"]["pid"]
        assert com_cable.cable_pids(name) == [first]

        lab.unplug("server2", "comhb")
        assert com_cable.cable_pids(name) == []
        assert not Path(com_cable.device(name, "server1")).exists()
        assert Lab.load(name).doc["unplugged"] == [["server2", "comhb"]]
        lab.plug("server2", "comhb")
        assert com_cable.cable_pids(name) == [lab.doc["com"]["pid"]] != [first]
        assert _crosses(lab, "server1", "server2")

        lab.unplug("server1", "comhb")
        lab.unplug("server2", "comhb")
        lab.plug("server1", "comhb")  # the other end is still out: no cable yet
        assert com_cable.cable_pids(name) == []
        lab.plug("server2", "comhb")
        assert len(com_cable.cable_pids(name)) == 1

        (RUN_DIR / name / "lab.json").write_text("{not json")  # teardown without the record
        Lab.cleanup_all(name)
        assert com_cable.cable_pids(name) == []
        assert not (RUN_DIR / name).exists()
    finally:
        Lab.cleanup_all(name)
    assert com_cable.cable_pids(name) == []
