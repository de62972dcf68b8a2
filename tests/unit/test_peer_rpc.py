"""Cluster RPC over loopback (127.0.0.1 and 127.0.0.2 as the two servers' interconnect
addresses): kept connections, a peer restarted under a kept connection, a timed-out call, and a
client that never sends a request."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from clp.clusterd import peer as rpc
from clp.config import ClusterConfig, load_config
from tests.netutil import free_port

KEY = b"r" * 32


@pytest.fixture
def config(tmp_path: Path) -> ClusterConfig:
    (tmp_path / "clp.conf").write_text(f"""\
cluster:
  name: cluster
  ports: {{rpc: {free_port()}}}
servers:
  server1: {{}}
  server2: {{}}
interconnects:
  - type: lan
    addresses: {{server1: 127.0.0.1, server2: 127.0.0.2}}
""")
    return load_config(tmp_path)


def test_reports_reuse_one_connection_and_survive_a_restart_of_the_peer(
        config: ClusterConfig) -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    async def handler(op: str, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        seen.append((op, sender, args))
        return {"ok": True, "code": 0, "message": "", "data": args["n"]}

    async def scenario() -> None:
        server = rpc.PeerServer(config, "server2", KEY, handler)
        await server.start()
        client = rpc.PeerClient(config, "server1", KEY)
        try:
            for n in range(5):
                reply = await client.send("server2", "report", {"n": n})
                assert reply is not None and reply["data"] == n
            assert client.connections == 1 and len(seen) == 5
            await server.close()  # the peer's service restarts: kept connections die
            server = rpc.PeerServer(config, "server2", KEY, handler)
            await server.start()
            reply = await client.send("server2", "report", {"n": 5})
            assert reply is not None and reply["data"] == 5 and client.connections == 2
        finally:
            client.close()
            await server.close()
        assert [a["n"] for _, _, a in seen] == [0, 1, 2, 3, 4, 5]

    asyncio.run(scenario())


def test_a_timed_out_call_closes_its_connection_and_the_next_gets_its_own_reply(
        config: ClusterConfig) -> None:
    async def handler(op: str, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        if args["slow"]:
            await asyncio.sleep(0.5)
        return {"ok": True, "code": 0, "message": "", "data": args["slow"]}

    async def scenario() -> None:
        server = rpc.PeerServer(config, "server2", KEY, handler)
        await server.start()
        client = rpc.PeerClient(config, "server1", KEY)
        try:
            assert await client.send("server2", "command", {"slow": True}, timeout=0.1) is None
            reply = await client.send("server2", "command", {"slow": False})
            assert reply is not None and reply["data"] is False
            await asyncio.sleep(0.6)  # the slow answer arrives on a closed connection: harmless
            reply = await client.send("server2", "command", {"slow": False})
            assert reply is not None and reply["data"] is False
        finally:
            client.close()
            await server.close()

    asyncio.run(scenario())


def test_a_client_that_sends_nothing_is_closed_and_counted(
        config: ClusterConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc, "FRAME_TIMEOUT", 0.2)

    async def handler(op: str, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("never called")

    async def scenario() -> None:
        server = rpc.PeerServer(config, "server2", KEY, handler)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.2", config.ports.rpc)
            assert await asyncio.wait_for(reader.read(1), timeout=2) == b""  # closed by server
            writer.close()
            assert server.rejected == {"TimeoutError": 1}
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_listener_that_cannot_bind_is_an_alert_and_retried_until_it_listens(
        config: ClusterConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "clp.rc")

    async def handler(op: str, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "code": 0, "message": ""}

    async def scenario() -> None:
        holder = socket.socket()
        holder.bind(("127.0.0.2", config.ports.rpc))
        holder.listen()
        server = rpc.PeerServer(config, "server2", KEY, handler)
        client = rpc.PeerClient(config, "server1", KEY)
        try:
            await server.start()  # the address is taken, as one not up yet at boot
            assert list(server.failed) == ["127.0.0.2"]
            server.retry()
            await asyncio.sleep(0.05)
            assert list(server.failed) == ["127.0.0.2"]  # still taken: alerted once only
            holder.close()
            server.retry()
            for _ in range(50):
                if not server.failed:
                    break
                await asyncio.sleep(0.02)
            assert server.failed == {}
            assert await client.send("server2", "report", {}) is not None
        finally:
            holder.close()
            client.close()
            await server.close()
        alerts = [r for r in caplog.records if getattr(r, "alert", False)]
        assert [r.levelname for r in alerts] == ["ERROR", "INFO"]

    asyncio.run(scenario())
