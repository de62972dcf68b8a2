"""Connections to and from the witness on loopback (127.0.0.1): the caps in all and per client
of WitnessServer, and witnesshb closing its connection when an answer says so."""

from __future__ import annotations

import asyncio
import contextlib
import time

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.base import Outgoing, PathContext
from clp.heartbeat.witnesshb import WitnessHeartbeat
from clp.witness.limits import FD_MARGIN
from clp.witness.witness_server import WitnessServer

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def held(port: int) -> Conn:
    """A kept-alive connection the server has certainly registered (it answered on it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"clp witness\n"), 3)).startswith(
        b"HTTP/1.1 200 ")
    return reader, writer


async def refused(port: int) -> bool:
    """Whether the server closes a new connection without answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 3) == b""
    except ConnectionError:
        return True
    finally:
        writer.close()


def test_connections_are_capped_below_the_open_file_limit_then_freed() -> None:
    async def main() -> None:
        server = WitnessServer(max_connections=4096, open_files=lambda: FD_MARGIN + 2)
        await server.start("127.0.0.1", 0)
        try:
            assert server.max_connections == 2
            conns = [await held(server.port) for _ in range(2)]
            assert await refused(server.port)
            assert server.errors == {"connections": 1} and server.connections == 2
            conns[0][1].close()
            await asyncio.sleep(0.1)
            conns[0] = await held(server.port)  # a freed slot serves again
            for _, writer in conns:
                writer.close()
        finally:
            await server.close()
        assert server.connections == 0 and server.per_client == {}

    asyncio.run(main())


def test_one_client_cannot_take_every_connection() -> None:
    async def main() -> None:
        server = WitnessServer(max_per_client=3)
        await server.start("127.0.0.1", 0)
        try:
            conns = [await held(server.port) for _ in range(3)]
            assert server.per_client == {"127.0.0.1": 3}
            assert await refused(server.port) and await refused(server.port)
            assert server.errors == {"client_connections": 2}
            conns[1][1].close()
            await asyncio.sleep(0.1)
            assert server.per_client == {"127.0.0.1": 2}
            await held(server.port)
        finally:
            await server.close()

    asyncio.run(main())


def test_witnesshb_closes_the_connection_after_an_http_1_0_answer() -> None:
    """A witness answering HTTP/1.0 without ``Connection: keep-alive`` will close: the client
    must not reuse the connection (it used to read every answer as HTTP/1.1)."""
    accepted = 0

    async def fake_witness(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(packet.PACKET_SIZE)
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")  # stays open

    async def main() -> None:
        server = await asyncio.start_server(fake_witness, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ctx = PathContext(b"w" * 32, "cluster", ("s1", "s2"), 0, incarnation=1, interval=0.1,
                          on_heartbeat=lambda *_: None)
        path = WitnessHeartbeat(ctx, Interconnect("witnesshb1", "witness", 0,
                                                  target=f"127.0.0.1:{port}",
                                                  servers=("s1", "s2")), 0)
        try:
            for seq in (1, 2):
                path.send(Outgoing(seq, packet.SENDER_RUNNING, time.time()))
                assert path._task is not None
                await path._task
                assert path.local_error is None and path._conn is None
            assert accepted == 2 and path.sent == 2
        finally:
            path.close()
            server.close()

    asyncio.run(main())
