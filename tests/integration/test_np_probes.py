"""The network partition probes against real targets: ICMP on loopback and inside a throwaway
network namespace (198.18.200.0/24 on a veth pair with both ends inside: nothing answers behind
198.18.200.1, nothing leaves the namespace), and
HEAD requests to small asyncio servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from clp.np import http, ping

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets and netns need root")


# --- ping ----------------------------------------------------------------------------------

@needs_root
def test_ping_loopback_answers_at_once() -> None:
    async def main() -> None:
        for targets in (["127.0.0.1"], ["::1"], ["127.0.0.1", "::1"]):
            started = time.monotonic()
            assert await ping.probe(targets, 5.0, 0)
            assert time.monotonic() - started < 2.5  # the answer, not the 5 s timeout

    asyncio.run(main())


def test_ping_budget_and_bad_targets() -> None:
    assert ping.budget(3, 3) == 12 and ping.budget(0.2, 1) == 0.4
    with pytest.raises(ValueError):
        asyncio.run(ping.probe(["gateway.example"], 1, 0))
    with pytest.raises(ValueError):
        asyncio.run(ping.probe([], 1, 0))
    with pytest.raises(ValueError, match="link-local"):  # no interface to reach it through
        asyncio.run(ping.probe(["198.18.0.1", "fe80::1"], 1, 0))


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace with lo up and 198.18.200.1/24 on one end of a veth pair whose other end is
    in the namespace too, with no address: ARP for any other host gets no answer."""
    name = "clpnp" + secrets.token_hex(3)
    try:
        for argv in (["ip", "netns", "add", name],
                     ["ip", "-n", name, "link", "set", "lo", "up"],
                     ["ip", "-n", name, "link", "add", "np0", "type", "veth", "peer", "name",
                      "np1"],
                     ["ip", "-n", name, "addr", "add", "198.18.200.1/24", "dev", "np0"],
                     ["ip", "-n", name, "link", "set", "np0", "up"],
                     ["ip", "-n", name, "link", "set", "np1", "up"]):
            subprocess.run(argv, check=True, capture_output=True, timeout=20)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                          text=True, timeout=20).stdout


PROBES = """
import asyncio, json, sys, time
from clp.np import ping
async def main(cases):
    async def one(case):
        started = time.monotonic()
        ok = await ping.probe(case["targets"], case["timeout"], case["retry"])
        return {"ok": ok, "elapsed": time.monotonic() - started}
    return await asyncio.gather(*(one(c) for c in cases))
print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
"""


def probes_in(ns: str, cases: list[dict]) -> list[dict]:
    """Run ping probes concurrently, in one process inside ``ns``."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBES,
                        json.dumps(cases)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@needs_root
@pytest.mark.lab
def test_ping_nobody_behind_the_address_fails_within_its_budget(netns: str) -> None:
    silent = {"targets": ["198.18.200.2"], "timeout": 0.2, "retry": 2}
    [got] = probes_in(netns, [silent])
    assert got["ok"] is False
    assert ping.budget(0.2, 2) <= got["elapsed"] < ping.budget(0.2, 2) + 0.3


@needs_root
@pytest.mark.lab
def test_concurrent_pings_are_not_confused(netns: str) -> None:
    cases = [
        {"targets": ["198.18.200.2"], "timeout": 0.3, "retry": 1},  # nobody there
        {"targets": ["198.18.200.1"], "timeout": 0.3, "retry": 1},  # the namespace itself
        {"targets": ["198.18.200.2", "198.18.200.1"], "timeout": 0.3, "retry": 1},  # any one
        {"targets": ["198.18.201.1"], "timeout": 0.1, "retry": 0},  # no route: send fails
    ]
    got = probes_in(netns, cases)
    assert [g["ok"] for g in got] == [False, True, True, False]
    assert got[1]["elapsed"] < 0.1 and got[2]["elapsed"] < 0.1
    assert got[0]["elapsed"] >= 0.6 and got[3]["elapsed"] >= 0.1


# --- http ----------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serving(handler: Handler, body: Callable[[str], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(f"127.0.0.1:{port}")
    finally:
        server.close()


def answering(data: bytes, keep_open: bool = False) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1:")
        writer.write(data)
        await writer.drain()
        if keep_open:
            await asyncio.sleep(5)
        writer.close()

    return handler


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                    b"HTTP/1.0 404 Not Found\r\n\r\n",
                                    b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
                                    b"HTTP/1.1 204\r\n\r\n"])
def test_http_any_status_line_means_reachable(answer: bytes) -> None:
    async def body(target: str) -> None:
        assert await http.probe(target, 2.0, "/health")

    asyncio.run(serving(answering(answer, keep_open=True), body))


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.2\r\n", b"\x00\x01garbage\r\n",
                                    b"HTTP/1.1 999 Nine\r\n", b"", b"HTTP/1.1 200 OK"])
def test_http_garbage_or_nothing_means_unreachable(answer: bytes) -> None:
    async def body(target: str) -> None:
        started = time.monotonic()
        assert not await http.probe(target, 0.5, "/health")
        assert time.monotonic() - started < 2.0  # within its budget, never hanging

    asyncio.run(serving(answering(answer), body))


def test_http_silence_times_out_and_a_closed_port_is_refused() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    async def body(target: str) -> None:
        started = time.monotonic()
        assert not await http.probe(target, 0.3)
        assert 0.3 <= time.monotonic() - started < 2.0  # the timeout, not the server's 5 s

    asyncio.run(serving(silent, body))

    async def closed() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        started = time.monotonic()
        assert not await http.probe(f"127.0.0.1:{port}", 5.0)
        assert time.monotonic() - started < 2.5  # refused at once, not the 5 s timeout

    asyncio.run(closed())
    assert http.budget(10) == 10
    with pytest.raises(ValueError):
        asyncio.run(http.probe("127.0.0.1:80", 1, "no-slash"))
