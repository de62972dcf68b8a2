"""The disk heartbeat's I/O cycle (write this server's slot, read header and slots in one read)
on a loop device set up like the lab's heartbeat disk (buffered, over a file), three ways in the
same run: the C helper called through diskio (what clp runs), the same I/O in a plain
C loop (benchmarks/diskhb_loop.c, compiled here with gcc), and pure Python (os.pwritev/os.preadv
on mmap buffers). All O_DIRECT | O_DSYNC, the cycle of a two-server cluster (write block 1, read
blocks 0..2). Measured twice: backing file on disk (like the lab's) and on tmpfs (no flush
cost, so the difference between the ways is the cost of the call).

Called by benchmarks/hb_latency.py; alone: python benchmarks/diskhb_cycle.py [--iterations N].
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, pct, table  # noqa: E402
from clp.heartbeat.diskio import BLOCK, DiskDevice  # noqa: E402

HERE = Path(__file__).resolve().parent
WRITE_BLOCK, FIRST, N_BLOCKS = 1, 0, 3
WARMUP = 300
ROUNDS = 4
# the lab's heartbeat disk lives on /var/lib (a real disk: every O_DSYNC write is a flush of the
# backing file); on tmpfs the flush is free, which leaves the cost of the call itself
BACKINGS = (("/var/tmp", "disk (/var/tmp)"), ("/dev/shm", "tmpfs (/dev/shm)"))


@contextlib.contextmanager
def loop_device(workdir: Path) -> Iterator[str]:
    image = workdir / "diskhb.img"
    with open(image, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    loop = subprocess.run(["losetup", "-f", "--show", "--direct-io=off", str(image)],
                          check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield loop
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def timed(step: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(WARMUP):
        step()
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def via_diskio(device: str, iterations: int) -> list[float]:
    record = os.urandom(96)
    with DiskDevice.open(device) as dev:
        return timed(lambda: dev.cycle(record, WRITE_BLOCK, FIRST, N_BLOCKS), iterations)


def via_c_loop(binary: Path, device: str, iterations: int) -> list[float]:
    """Its output goes to a file: into a pipe, every flush woke this (pinned) process on the
    loop's CPU and made the C loop look up to 2.7x slower than Python."""
    out = binary.with_suffix(".out")
    with open(out, "w") as f:
        subprocess.run([str(binary), device, str(iterations + WARMUP), str(WRITE_BLOCK),
                        str(FIRST), str(N_BLOCKS)], check=True, stdout=f)
    return [int(line) / 1e9 for line in out.read_text().split()][WARMUP:]


def via_python(device: str, iterations: int) -> list[float]:
    fd = os.open(device, os.O_RDWR | os.O_DIRECT | os.O_DSYNC | os.O_CLOEXEC)
    wbuf, rbuf = mmap.mmap(-1, BLOCK), mmap.mmap(-1, N_BLOCKS * BLOCK)  # page aligned
    wbuf.write(os.urandom(96))

    def step() -> None:
        if os.pwritev(fd, [wbuf], WRITE_BLOCK * BLOCK) != BLOCK or \
                os.preadv(fd, [rbuf], FIRST * BLOCK) != N_BLOCKS * BLOCK:
            raise OSError("short transfer")

    try:
        return timed(step, iterations)
    finally:
        os.close(fd)


WAYS = ("C helper via diskio (cffi)", "plain C loop (diskhb_loop.c)",
        "pure Python os.pwritev/preadv")


def measure(backing_dir: str, iterations: int, binary: Path) -> dict[str, list[float]]:
    """Every way on one loop device over a file in ``backing_dir``, interleaved in ROUNDS
    rounds so that a slow spell of the machine hits all three alike."""
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    per_round = max(1, iterations // ROUNDS)
    with tempfile.TemporaryDirectory(dir=backing_dir) as tmp, loop_device(Path(tmp)) as loop:
        for _ in range(ROUNDS):
            times[WAYS[0]] += via_diskio(loop, per_round)
            times[WAYS[1]] += via_c_loop(binary, loop, per_round)
            times[WAYS[2]] += via_python(loop, per_round)
    return times


@contextlib.contextmanager
def one_cpu() -> Iterator[int]:
    """Run on one CPU (the C loop, a child, inherits it). Unpinned, the medians moved by up to
    1.7x between runs with where the scheduler put the caller relative to the loop device's
    worker (cross-CPU wake-ups are costly in a VM), which hid the difference between the ways."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


def disk_table(iterations: int) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, one_cpu() as cpu:
        binary = Path(tmp) / "diskhb_loop"
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "diskhb_loop.c")],
                       check=True)
        for backing, label in BACKINGS:
            runs = measure(backing, iterations, binary)
            base = pct(runs[WAYS[1]], 0.5)
            rows += [[label, way, f"{pct(t, 0.5) * 1e6:.1f}", f"{pct(t, 0.99) * 1e6:.1f}",
                      f"{max(t) * 1e6:.1f}", f"{pct(t, 0.5) / base:.2f}"]
                     for way, t in runs.items()]
    return table(f"disk heartbeat cycle on a buffered loop device (write 1 block, read "
                 f"{N_BLOCKS}; O_DIRECT|O_DSYNC; {iterations} iterations per way, interleaved "
                 f"in {ROUNDS} rounds, pinned to CPU {cpu})",
                 ["backing file", "way", "p50 us", "p99 us", "max us", "p50 x C"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(disk_table(args.iterations))


if __name__ == "__main__":
    main()
