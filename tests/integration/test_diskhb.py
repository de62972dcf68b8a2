"""The disk heartbeat on real loop devices: the C helper through diskio, the lab's per-server
loop devices over one file, and two DiskHeartbeat paths exchanging heartbeats through them.

Root only (loop devices). Each test's loop devices and files are removed in its fixture, also
when it fails.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clp.config.model import Interconnect
from clp.heartbeat import disklayout as layout
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.diskhb import DiskHeartbeat
from clp.heartbeat.diskio import BLOCK, DiskDevice
from clp.heartbeat.packet import Heartbeat
from clp.lab import Lab, hb_disk, shared_disk
from clp.paths import InstallRoot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices need root")

KEY = secrets.token_bytes(32)
SERVERS = ("server1", "server2")
INTERVAL = 0.02


def attach(path: Path) -> str:
    return subprocess.run(["losetup", "-f", "--show", "--direct-io=off", str(path)],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[Callable[[int], list[str]]]:
    """``make(size)`` -> two loop devices over one new backing file of ``size`` bytes."""
    made: list[str] = []

    def make(size: int = 16 * 1024 * 1024) -> list[str]:
        path = tmp_path / f"hb{len(made)}.img"
        with open(path, "wb") as f:
            f.truncate(size)
        pair = [attach(path), attach(path)]
        made.extend(pair)
        return pair

    try:
        yield make
    finally:
        for loop in made:
            subprocess.run(["losetup", "-d", loop], check=False)


def test_loops_over_one_file_are_coherent_for_o_direct(loops):
    a, b = loops()
    with DiskDevice.open(a) as da, DiskDevice.open(b) as db:
        for n in range(5):  # each overwrite is seen at once: no stale cache on either side
            da.write(7, bytes([n + 1]) * 100)
            assert db.read(7, 1) == bytes([n + 1]) * 100 + bytes(BLOCK - 100)
            db.write(8, bytes([n + 10]) * BLOCK)
            assert da.read(8, 1) == bytes([n + 10]) * BLOCK


def test_cycle_writes_one_slot_and_reads_the_range(loops):
    a, _ = loops()
    with DiskDevice.open(a) as dev:
        assert dev.size == 16 * 1024 * 1024
        assert BLOCK % dev.block_size == 0
        dev.write(1, b"peer")
        data = dev.cycle(b"mine", 2, 0, 4)
        assert len(data) == 4 * BLOCK
        assert data[BLOCK:BLOCK + 4] == b"peer" and data[2 * BLOCK:2 * BLOCK + 4] == b"mine"
        assert data[3 * BLOCK:] == bytes(BLOCK)


def test_errors_are_oserrors_with_errno(loops, tmp_path):
    with pytest.raises(OSError) as e:
        DiskDevice.open(str(tmp_path / "nothing"))
    assert e.value.errno == errno.ENOENT and "nothing: open" in str(e.value)
    a, _ = loops(1024 * 1024)
    with DiskDevice.open(a) as dev:
        with pytest.raises(OSError) as e:
            dev.read(dev.size // BLOCK - 1, 2)  # past the end: short read
        assert e.value.errno == errno.EIO
        hb_disk.fail(a)
        with pytest.raises(OSError) as e:
            dev.cycle(b"x", 1, 0, 2)
        assert e.value.errno == errno.ENOSPC
        hb_disk.repair(a)
        dev.cycle(b"x", 1, 0, 2)
        dev.close()
        with pytest.raises(OSError) as e:
            dev.read(0, 1)
        assert e.value.errno == errno.EBADF


def test_offset_fault_fails_one_loop_only(loops):
    a, b = loops()
    hb_disk.fail(a)
    try:
        assert hb_disk.offset_of(a) == 16 * 1024 * 1024
        assert int(subprocess.check_output(["blockdev", "--getsize64", a])) == 0
        assert int(subprocess.check_output(["blockdev", "--getsize64", b])) == 16 * 1024 * 1024
    finally:
        hb_disk.repair(a)
    assert hb_disk.offset_of(a) == 0


class Server:
    """One server's disk heartbeat path and what it received."""

    def __init__(self, index: int, device: str, peer_device: str, cluster: str = "cluster"):
        self.got: list[Heartbeat] = []
        self.ctx = PathContext(KEY, cluster, SERVERS, index, incarnation=1, interval=INTERVAL,
                               on_heartbeat=lambda sender, path, hb, *_: self.got.append(hb))
        devices = {SERVERS[index]: device, SERVERS[1 - index]: peer_device}
        ic = Interconnect("diskhb1", "disk", 0, devices=devices, servers=SERVERS)
        self.path = DiskHeartbeat(self.ctx, ic, 0)
        self.seq = 0

    def send(self) -> None:
        self.seq += 1
        self.path.send(Outgoing(self.seq, packet.SENDER_RUNNING, 0.0))


async def run_rounds(servers: list[Server], until: Callable[[], bool], limit: float = 3.0) -> bool:
    """Send every INTERVAL on every server until ``until()`` or ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        for s in servers:
            s.send()
        await asyncio.sleep(INTERVAL)
        if until():
            return True
    return False


def test_two_servers_exchange_heartbeats_and_one_disk_path_fails_alone(loops):
    a, b = loops()

    async def scenario() -> None:
        s1, s2 = Server(0, a, b), Server(1, b, a)
        try:
            for s in (s1, s2):
                await s.path.start()
            assert await run_rounds([s1, s2], lambda: len(s1.got) >= 5 and len(s2.got) >= 5)
            assert {hb.sender for hb in s1.got} == {1} and {hb.sender for hb in s2.got} == {0}
            assert s1.path.local_error is None and s1.path.receiver.drops == {}

            hb_disk.fail(a)  # server1's path to the disk dies
            assert await run_rounds([s1, s2], lambda: s1.path.local_error is not None)
            await run_rounds([s1, s2], lambda: False, limit=3 * INTERVAL)  # settle
            heard1, heard2 = len(s1.got), len(s2.got)
            await run_rounds([s1, s2], lambda: False, limit=10 * INTERVAL)
            assert (len(s1.got), len(s2.got)) == (heard1, heard2)  # nothing either way
            assert s2.path.local_error is None
            assert s1.path.counters()["io_errors"] > 0

            hb_disk.repair(a)
            assert await run_rounds([s1, s2], lambda: s1.path.local_error is None and
                                    len(s2.got) > heard2 + 2 and len(s1.got) > heard1 + 2)
            cycle = s1.path.counters()["cycle"]
            assert cycle["n"] > 0 and cycle["p50"] <= cycle["p99"]
        finally:
            s1.path.close()
            s2.path.close()

    asyncio.run(scenario())


def test_a_dead_servers_old_slot_is_not_a_heartbeat(loops):
    a, b = loops()

    async def scenario() -> None:
        s1 = Server(0, a, b)
        await s1.path.start()
        await run_rounds([s1], lambda: s1.path.sent >= 3)
        thread = s1.path._thread
        s1.path.close()  # server1 is gone; its last record stays in its slot
        assert thread is not None
        thread.join(2)  # close() does not wait for a round under way: its write lands first
        s2 = Server(1, b, a)
        await s2.path.start()
        try:
            await run_rounds([s2], lambda: False, limit=10 * INTERVAL)
            assert s2.path.sent >= 5 and s2.got == []
        finally:
            s2.path.close()

    asyncio.run(scenario())


def test_another_clusters_disk_is_refused_and_not_written(loops):
    a, b = loops()

    async def scenario() -> None:
        ours, theirs = Server(0, a, b), Server(1, b, a, cluster="other")
        try:
            await ours.path.start()
            await run_rounds([ours], lambda: ours.path.sent >= 1)
            await theirs.path.start()
            assert await run_rounds([theirs], lambda: theirs.path.local_error is not None)
            assert f"{ours.ctx.cluster_id:#018x}" in theirs.path.local_error
            assert "another cluster" in theirs.path.local_error
        finally:
            ours.path.close()
            theirs.path.close()
        with DiskDevice.open(a) as dev:
            assert layout.is_blank(layout.slot_of(dev.read(0, 3), 1))  # never written

    asyncio.run(scenario())


def test_a_raid_superblock_behind_a_blank_block_0_is_refused_and_not_written(loops):
    a, b = loops()
    superblock = bytes.fromhex("fc4e2ba9") + b"\x01" + bytes(BLOCK - 5)  # md v1.2, at 4 KiB
    with DiskDevice.open(a) as dev:
        dev.write(1, superblock)

    async def scenario() -> None:
        server = Server(0, a, b)
        try:
            await server.path.start()
            assert await run_rounds([server], lambda: server.path.local_error is not None)
            assert "block 1 holds data" in server.path.local_error
        finally:
            server.path.close()
        with DiskDevice.open(a) as dev:
            assert dev.read(0, 2) == bytes(BLOCK) + superblock

    asyncio.run(scenario())


def test_a_device_below_10_mib_is_a_device_error(loops):
    a, b = loops(4 * 1024 * 1024)

    async def scenario() -> None:
        s1 = Server(0, a, b)
        await s1.path.start()
        try:
            assert await run_rounds([s1], lambda: s1.path.local_error is not None)
            assert "at least 10 MiB" in s1.path.local_error and s1.path.sent == 0
        finally:
            s1.path.close()

    asyncio.run(scenario())


@pytest.mark.lab
def test_lab_gives_each_server_its_own_loop_and_teardown_finds_them():
    name = "t" + secrets.token_hex(2)
    try:
        lab = Lab.up(name=name, n=2, services=[], disks=0, diskhb=True)
        loop1, loop2 = (hb_disk.loop_of(lab.doc, s) for s in lab.servers)
        assert loop1 != loop2 and set(hb_disk.loops_of(name)) == {loop1, loop2}
        size = ["blockdev", "--getsize64", hb_disk.DEVICE]
        assert lab.exec("server1", size).stdout.strip() == str(hb_disk.IMAGE_SIZE)
        lab.unplug("server1", "diskhb")
        assert lab.exec("server1", size).stdout.strip() == "0"
        assert lab.exec("server2", size).stdout.strip() == str(hb_disk.IMAGE_SIZE)
        assert lab.status()["servers"]["server1"]["unplugged"] == ["diskhb"]
        lab.plug("server1", "diskhb")
        assert lab.exec("server1", size).stdout.strip() == str(hb_disk.IMAGE_SIZE)
        conf = InstallRoot(lab.root_of("server1")).config_file.read_text()
        assert "devices: {server1: /dev/lab/diskhb1, server2: /dev/lab/diskhb1}" in conf
        os.unlink(f"/run/clplab/{name}/lab.json")  # teardown must not need it
    finally:
        Lab.cleanup_all(name)
    assert hb_disk.loops_of(name) == []
    assert [d for d, back in shared_disk.loop_devices()
            if shared_disk.lab_of_file(back) == name] == []
