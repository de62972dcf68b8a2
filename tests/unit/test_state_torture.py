"""Torture: one writer flips records and snapshots at full speed, two readers check every read.

Every field the writer stores is derived from one counter ``k``, so a reader can tell a torn or
mixed read from a good one: seq == rx_count == drops == int(last_rx), state == k % 4, and the
snapshot's pad length and check value follow from its ``k``. Values must never go backwards.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import zlib
from pathlib import Path
from typing import Any

from clp.paths import InstallRoot
from clp.state import StateError, StateReader, StateView, StateWriter

N_SERVERS, N_PATHS = 4, 3
WRITE_SECONDS = 2.8
READ_SECONDS = 2.3
MIN_READS = 2000
MAX_REPORTED = 20


def snapshot(k: int) -> dict[str, Any]:
    pad = "x" * (k % 5000)
    return {"k": k, "pad": pad, "check": zlib.crc32(f"{k}:{pad}".encode())}


def writer_main(root: str, ready: Any, done: Any, out: Any) -> None:
    w = StateWriter.create(InstallRoot(Path(root)), N_SERVERS, N_PATHS, 16 * 1024)
    try:
        ready.set()
        k = 0
        deadline = time.monotonic() + WRITE_SECONDS
        while time.monotonic() < deadline:
            k += 1
            for s in range(N_SERVERS):
                for p in range(N_PATHS):
                    w.set_path(s, p, last_rx=float(k), seq=k, state=k % 4, rx_count=k, drops=k)
            w.publish(snapshot(k))
        out.put(("writer", k))
        done.wait(10)  # keep the segment until the readers have finished with it
    finally:
        w.close(unlink=True)


class Checker:
    def __init__(self) -> None:
        self.header_seq = 0
        self.records = [[0] * N_PATHS for _ in range(N_SERVERS)]
        self.snap_k = 0
        self.errors: list[str] = []
        self.n_errors = 0

    def fail(self, what: str) -> None:
        self.n_errors += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(what)

    def check(self, view: StateView) -> None:
        h = view.header
        if h.seq % 2 or h.seq < self.header_seq:
            self.fail(f"header seq {h.seq} after {self.header_seq}")
        self.header_seq = h.seq
        highest = 0
        for s, row in enumerate(view.paths):
            for p, rec in enumerate(row):
                k = rec.seq
                if not (rec.rx_count == rec.drops == k and rec.last_rx == float(k)
                        and rec.state == k % 4):
                    self.fail(f"torn record [{s}][{p}]: {rec}")
                if k < self.records[s][p] or k < highest - 1:
                    self.fail(f"record [{s}][{p}] went back to {k}")
                self.records[s][p] = k
                highest = max(highest, k)
        self.check_snapshot(view.snapshot, highest)

    def check_snapshot(self, snap: dict[str, Any], highest: int) -> None:
        if not snap:  # nothing published yet
            return
        k = snap["k"]
        if snap != snapshot(k):
            self.fail(f"torn snapshot k={k}")
        if k < self.snap_k or k < highest - 1:
            self.fail(f"snapshot went back to {k} (had {self.snap_k}, records at {highest})")
        self.snap_k = k


def reader_main(root: str, name: str, out: Any) -> None:
    checker = Checker()
    reads = 0
    with StateReader.open(InstallRoot(Path(root))) as reader:
        deadline = time.monotonic() + READ_SECONDS
        while time.monotonic() < deadline:
            try:
                checker.check(reader.read())
            except StateError as e:
                checker.fail(f"read failed: {e}")
            reads += 1
    out.put((name, reads, checker.n_errors, checker.errors, checker.snap_k))




def test_readers_never_see_torn_or_backward_state(root: InstallRoot) -> None:
    ctx = mp.get_context("fork")
    ready, done, out = ctx.Event(), ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=writer_main, args=(str(root.root), ready, done, out))
    procs = [writer]
    try:
        writer.start()
        assert ready.wait(10), "the writer did not start"
        readers = [ctx.Process(target=reader_main, args=(str(root.root), f"reader{i}", out))
                   for i in range(2)]
        procs += readers
        for r in readers:
            r.start()
        results = {}
        for _ in range(3):
            item = out.get(timeout=15)
            results[item[0]] = item[1:]
        done.set()
    finally:
        done.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    (writes,) = results["writer"]
    assert writes > 100
    for name in ("reader0", "reader1"):
        reads, n_errors, errors, last_k = results[name]
        assert n_errors == 0, f"{name}: {n_errors} inconsistencies, first: {errors}"
        assert reads >= MIN_READS, f"{name} managed only {reads} reads"
        assert 0 < last_k <= writes
    assert writer.exitcode == 0
