"""The witness: clpwitnessd as a real process on loopback, WitnessHeartbeat clients through it,
strict HTTP handling, several clusters; and the lab's router running it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.packet import Heartbeat
from clp.heartbeat.witnesshb import WitnessHeartbeat
from clp.witness.wire import decode_entries
from tests.netutil import free_port

INTERVAL = 0.1
KEY = b"w" * 32
SERVERS = ("server1", "server2")
BIN = Path(sys.executable).parent / "clpwitnessd"


class Witness:
    """clpwitnessd on 127.0.0.1:port; ``stop`` and ``start`` it like an operator would."""

    def __init__(self, port: int, log: Path, args: tuple[str, ...] = ()) -> None:
        self.port = port
        self.log = log
        self.args = args
        self.proc: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "services.clpwitnessd"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*argv, "--listen", self.target, *self.args],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.02)
        raise AssertionError(f"clpwitnessd did not listen: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            self.proc = None


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[Witness]:
    w = Witness(free_port(), tmp_path / "clpwitnessd.log")
    try:
        w.start()
        yield w
    finally:
        w.stop(signal.SIGKILL)


class Side:
    def __init__(self, index: int, target: str, cluster: str = "cluster",
                 key: bytes = KEY) -> None:
        self.got: list[tuple[int, int, Heartbeat]] = []
        self.ctx = PathContext(key, cluster, SERVERS, index, incarnation=1, interval=INTERVAL,
                               on_heartbeat=lambda s, p, hb, *_: self.got.append((s, p, hb)))
        ic = Interconnect("witnesshb1", "witness", 0, target=target, servers=SERVERS)
        self.path = WitnessHeartbeat(self.ctx, ic, 0)
        self.seq = 0

    def send(self) -> None:
        self.seq += 1
        self.path.send(Outgoing(self.seq, packet.SENDER_RUNNING, time.time()))


async def rounds(sides: list[Side], until: Callable[[], bool], timeout: float) -> bool:
    """A round every INTERVAL until ``until()`` (True) or ``timeout`` (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in sides:
            s.send()
        await asyncio.sleep(INTERVAL)
        if until():
            return True
    return False


def in_loop(sides: list[Side], body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            for s in sides:
                await s.path.start()
            await body()
        finally:
            for s in sides:
                s.path.close()

    asyncio.run(main())


def test_two_servers_exchange_heartbeats_through_the_witness(witness: Witness) -> None:
    a, b = Side(0, witness.target), Side(1, witness.target)

    async def body() -> None:
        assert await rounds([a, b], lambda: len(a.got) >= 5 and len(b.got) >= 5, 5)
        assert {s for s, _, _ in a.got} == {1} and {s for s, _, _ in b.got} == {0}
        assert a.path.local_error is None and b.path.local_error is None
        seqs = [hb.seq for _, _, hb in a.got]
        assert seqs == sorted(set(seqs))  # each record delivered once, in order
        assert a.path.counters()["rtt"]["p50"] < 0.05

    in_loop([a, b], body)


def test_witness_down_is_a_local_error_and_back_restores_delivery(witness: Witness) -> None:
    a, b = Side(0, witness.target), Side(1, witness.target)

    async def body() -> None:
        assert await rounds([a, b], lambda: len(a.got) >= 3, 5)
        witness.stop(signal.SIGKILL)
        assert await rounds([a, b], lambda: a.path.local_error is not None
                            and b.path.local_error is not None, 3)
        before = len(a.got)
        await rounds([a, b], lambda: False, 5 * INTERVAL)
        assert len(a.got) == before
        witness.start()
        assert await rounds([a, b], lambda: a.path.local_error is None
                            and len(a.got) >= before + 3, 5)

    in_loop([a, b], body)


def test_a_record_the_witness_got_long_ago_is_not_news(witness: Witness) -> None:
    b = Side(1, witness.target)
    late = Side(0, witness.target)

    async def body() -> None:
        await rounds([b], lambda: b.path.sent >= 2, 3)
        await asyncio.sleep(3 * INTERVAL)  # b's last record is now older than 2 intervals
        await rounds([late], lambda: late.path.sent >= 3, 3)
        assert late.got == [] and late.path.old >= 1
        await rounds([b, late], lambda: len(late.got) >= 1, 3)  # b speaks again: news

    in_loop([b, late], body)


def test_two_clusters_are_kept_apart(witness: Witness) -> None:
    alpha = [Side(i, witness.target, "alpha", b"a" * 32) for i in range(2)]
    beta = [Side(i, witness.target, "beta", b"b" * 32) for i in range(2)]
    loner = Side(0, witness.target, "gamma", b"g" * 32)

    async def body() -> None:
        everyone = [*alpha, *beta, loner]
        assert await rounds(everyone, lambda: all(len(s.got) >= 3 for s in alpha + beta), 5)
        assert loner.got == [] and loner.path.local_error is None
        for s in everyone:
            assert s.path.receiver.drops == {}  # nobody was even offered another cluster's
        doc = json.loads(urllib.request.urlopen(
            f"http://{witness.target}/v1/clusters", timeout=2).read())
        assert {n: sorted(c["servers"]) for n, c in doc["clusters"].items()} == {
            "alpha": ["0", "1"], "beta": ["0", "1"], "gamma": ["0"]}

    in_loop([*alpha, *beta, loner], body)


# --- strict HTTP: every bad request gets a 4xx and the server goes on --------------------------

def record(cluster: str = "cluster", sender: int = 0, seq: int = 1) -> bytes:
    return packet.encode(KEY, Heartbeat(packet.cluster_id(cluster), sender, 0, 1, seq,
                                        time.time(), packet.SENDER_RUNNING))


def exchange(port: int, raw: bytes, timeout: float = 3.0) -> tuple[int, bytes]:
    """Send ``raw``; (status, body) of the answer read until the server closes or it is whole."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return 0


def post(cluster: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST /v1/heartbeat/{cluster} HTTP/1.1\r\nHost: w\r\nContent-Length: {len(body)}"
            "\r\n").encode() + extra + b"\r\n" + body


BAD_REQUESTS = {
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "bad length": (post("cluster", record()[:95]), 400),
    "bad cluster name": (post("no.dots", record()), 400),
    "cluster name too long": (post("c" * 32, record()), 400),
    "huge content-length": (b"POST /v1/heartbeat/cluster HTTP/1.1\r\nContent-Length: "
                            b"99999999999\r\n\r\n", 413),
    "content-length not a number": (b"POST /v1/heartbeat/cluster HTTP/1.1\r\nContent-Length: "
                                    b"-1\r\n\r\n", 400),
    "above the body limit": (b"POST /v1/heartbeat/cluster HTTP/1.1\r\nContent-Length: "
                             b"5000\r\n\r\n", 413),
    "chunked": (b"POST /v1/heartbeat/cluster HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                501),
    "sender out of range": (post("cluster", record(sender=40)), 400),
    "record of another cluster": (post("cluster", record("other")), 400),
    "not a record": (post("cluster", b"x" * 96), 400),
    "folded header": (b"GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"".join(
        f"X-{i}: {i}\r\n".encode() for i in range(40)) + b"\r\n", 431),
    "line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "wrong method": (b"GET /v1/heartbeat/cluster HTTP/1.1\r\n\r\n", 405),
    "unknown path": (b"GET /etc/passwd HTTP/1.1\r\n\r\n", 404),
    "post to root": (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_request_gets_a_4xx_and_the_witness_goes_on(witness: Witness, case: str) -> None:
    raw, status = BAD_REQUESTS[case]
    got, body = exchange(witness.port, raw)
    assert got == status, body
    assert body.strip()  # a reason for whoever sent it
    good = record()
    got, body = exchange(witness.port, post("cluster", good))
    assert got == 200 and [(s, r) for s, _, r in decode_entries(body)] == [(0, good)]


def test_keep_alive_answers_several_requests_on_one_connection(witness: Witness) -> None:
    with socket.create_connection(("127.0.0.1", witness.port), timeout=3) as s:
        s.sendall(post("cluster", record(seq=1)) + b"HEAD / HTTP/1.1\r\n\r\n"
                  + post("cluster", record(sender=1, seq=1)))
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 3:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    last = data.rsplit(b"\r\n\r\n", 1)[1]
    assert [s for s, _, _ in decode_entries(last)] == [0, 1]


def test_sigterm_stops_the_witness_cleanly(witness: Witness) -> None:
    kept = socket.create_connection(("127.0.0.1", witness.port), timeout=3)
    half = socket.create_connection(("127.0.0.1", witness.port), timeout=3)
    try:
        kept.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert kept.recv(100).startswith(b"HTTP/1.1 200 ")
        half.sendall(b"GET / HTTP/1.1\r\nX: 1\r\n")
        time.sleep(0.1)
        assert witness.stop(signal.SIGTERM) == 0
    finally:
        kept.close()
        half.close()
    log = witness.log.read_text()
    assert "witness stopped" in log and "Traceback" not in log and "WARNING" not in log


def test_the_daemon_caps_connections_per_client_and_shows_the_refusals(tmp_path: Path) -> None:
    w = Witness(free_port(), tmp_path / "clpwitnessd.log", ("--max-per-client", "2"))
    w.start()
    time.sleep(0.3)  # start()'s probe connection is gone at the witness too
    try:
        kept = [socket.create_connection(("127.0.0.1", w.port), timeout=3) for _ in range(2)]
        for s in kept:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert s.recv(200).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(("127.0.0.1", w.port), timeout=3) as third:
            assert third.recv(100) == b""  # closed at once, no answer
        kept.pop().close()
        time.sleep(0.1)
        doc = json.loads(urllib.request.urlopen(f"http://{w.target}/v1/clusters",
                                                timeout=2).read())
        assert doc["errors"] == {"client_connections": 1} and doc["max_per_client"] == 2
        assert doc["expiry"] == 60 and doc["max_connections"] >= 1
        kept[0].close()
    finally:
        assert w.stop(signal.SIGTERM) == 0
    assert "client_connections" in w.log.read_text()


def test_a_bad_listen_address_is_a_clear_error() -> None:
    argv = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "services.clpwitnessd"]
    r = subprocess.run([*argv, "--listen", "localhost"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "'localhost' is not host:port" in r.stderr
    r = subprocess.run([*argv, "--listen", "[::1]:0"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "--listen" in r.stderr


# --- the lab's router ----------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.mark.lab
@needs_root
def test_lab_router_answers_pings_and_runs_the_witness() -> None:
    from clp.lab import Lab, router
    from tests.integration.labutil import leftovers

    name = "t" + secrets.token_hex(2)
    try:
        lab = Lab.up(name=name, n=2, services=["sleeper=sleep 1000"], disks=0, router=True)
        for address in ("198.18.0.254", "198.18.1.254"):
            r = lab.exec("server1", ["ping", "-c1", "-W1", "-n", address])
            assert r.returncode == 0, r.stdout + r.stderr
        fetch = ("import urllib.request; print(urllib.request.urlopen("
                 "'http://198.18.0.254:29005/v1/clusters', timeout=2).read().decode())")
        r = lab.exec("server1", [sys.executable, "-c", fetch])
        assert r.returncode == 0 and json.loads(r.stdout)["clusters"] == {}, r.stderr
        lab.unplug("router", "pub")
        assert lab.exec("server1", ["ping", "-c1", "-W1", "-n", "198.18.0.254"]).returncode
        lab.plug("router", "pub")
        lab.witness_stop()
        assert router.witness_pid(lab) is None
        assert lab.exec("server1", [sys.executable, "-c", fetch]).returncode != 0
        lab.witness_start()
        assert lab.exec("server1", [sys.executable, "-c", fetch]).returncode == 0
        (Path("/run/clplab") / name / "lab.json").unlink()  # teardown must not need it
    finally:
        Lab.cleanup_all(name)
    assert leftovers(name) == []


def test_a_slow_client_gets_408_and_an_idle_one_is_closed() -> None:
    from clp.witness.witness_server import WitnessServer

    async def main() -> None:
        server = WitnessServer(idle_timeout=0.5, request_timeout=0.3)
        await server.start("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /v1/heartbeat/cluster HTTP/1.1\r\nContent-Length: 96\r\n")
            started = time.monotonic()
            answer = await asyncio.wait_for(reader.read(), 8)  # the server closes after it
            assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 4
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(reader.read(), 3) == b""  # idle: closed, no answer
            writer.close()
            assert server.connections == 0 and server.errors == {"http408": 1}
        finally:
            await server.close()

    asyncio.run(main())


def test_the_daemon_arbitrates_the_clusters_it_has_a_key_of(tmp_path: Path) -> None:
    from clp.keys import write_arbiter_key
    from clp.np.witness import WitnessArbiter

    key = tmp_path / "arbiter.key"
    write_arbiter_key(key, bytes(range(32)))
    w = Witness(free_port(), tmp_path / "clpwitnessd.log",
                ("--arbiter", f"cluster={key}", "--arbiter-hold", "0.2"))
    w.start()
    try:
        time.sleep(0.3)

        async def ask() -> tuple[bool, bool]:
            derived = bytes.fromhex(key.read_text().removeprefix("arbiter:"))
            s1, s2 = (WitnessArbiter(w.target, "cluster", derived, s, 2.0, 1) for s in SERVERS)
            won, lost = await s2.claim(("server1",), 0.2), await s1.claim(("server2",), 0.2)
            s1.close()
            s2.close()
            return won.granted, lost.granted

        assert asyncio.run(ask()) == (True, False)
    finally:
        w.stop()
    assert "arbitrating cluster; granting nothing for 0.2 s" in w.log.read_text()
    argv = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "services.clpwitnessd"]
    for bad, says in ((f"cluster{key}", "is not CLUSTER=FILE"),
                      (f"cluster={tmp_path / 'none'}", "is not an arbiter key")):
        r = subprocess.run([*argv, "--arbiter", bad], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and says in r.stderr, r.stderr
