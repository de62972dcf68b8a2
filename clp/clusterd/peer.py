"""Cluster RPC between ``clusterpro`` services: group reports, master commands, forwarded requests.

Every server listens on TCP ``ports.rpc`` on each of its LAN interconnect addresses. A message is
one authenticated request frame (:mod:`clp.net.frames`: HMAC with the cluster key, cluster name,
nonce, time), answered by one reply frame echoing the nonce. Operations (``args``):

- ``report``  ``{server, incarnation, groups: {g: state}, resources: {r: state}, failover: [g],
  leaving, intents?}``: what a server runs, sent to every online peer each heartbeat interval and
  at once on a change.
- ``command`` ``{kind, group, event, reason}``: the master tells a server to (de)activate a group.
- ``request`` ``{op, group, server}``: a group operation, sent to the master by any server.
- ``rsc``     ``{op, resource, timeout}``: start/stop one resource, sent to the server running its
  group.
- ``down``    ``{action}``: stop the groups, stop the service, then the power action.

Replies are ``{ok, code, message, data?}``. A frame that fails authentication, names another
cluster, is too old or replayed is dropped, counted and logged, never acted on. Sends are bounded
(:data:`SEND_TIMEOUT`) and try the peer's interconnect addresses in priority order; a failure is
returned as ``None`` and logged once per peer until it succeeds again, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from clp.config import ClusterConfig
from clp.core.group_types import E_INTERNAL
from clp.net import frames

log = logging.getLogger("clp.rc")

SEND_TIMEOUT = 2.0
OPS = ("report", "command", "request", "rsc", "down")

Handler = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]  # (op, sender, args)


def peer_addresses(config: ClusterConfig, server: str) -> list[str]:
    """The addresses of ``server`` on the LAN interconnects, in heartbeat priority order."""
    return [ic.addresses[server] for ic in config.interconnects
            if ic.type == "lan" and server in ic.addresses]


class PeerServer:
    def __init__(self, config: ClusterConfig, me: str, key: bytes, handler: Handler) -> None:
        self.config, self.me, self.key, self.handler = config, me, key, handler
        self.guard = frames.NonceGuard()
        self.rejected: Counter[str] = Counter()
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        for address in peer_addresses(self.config, self.me):
            try:
                self._servers.append(await asyncio.start_server(
                    self._serve, address, self.config.ports.rpc, reuse_address=True))
            except OSError as e:
                log.error("cannot listen for cluster RPC on %s:%d: %s", address,
                          self.config.ports.rpc, e)

    async def close(self) -> None:
        for s in self._servers:
            s.close()
        for s in self._servers:
            await s.wait_closed()
        self._servers = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            request = await asyncio.wait_for(frames.read_frame(reader, self.key), timeout=10)
            self.guard.check(request, self.config.name, time.time())
            if request["op"] not in OPS or request.get("from") not in self.config.server_names:
                raise frames.FrameError(f"unknown op {request['op']!r} or sender "
                                        f"{request.get('from')!r}")
        except (TimeoutError, frames.FrameError, asyncio.IncompleteReadError,
                ConnectionError) as e:
            self.rejected[type(e).__name__] += 1
            log.warning("refused a cluster RPC from %s: %s", peer, e or type(e).__name__)
            writer.close()
            return
        try:
            reply = await self.handler(request["op"], request["from"], request["args"])
        except Exception as e:  # noqa: BLE001 - one bad message must not stop the cluster
            log.exception("cluster RPC %s from %s failed", request["op"], request["from"])
            reply = {"ok": False, "code": E_INTERNAL, "message": f"internal error: {e}"}
        await frames.send_reply(writer, self.key, request, reply)


class PeerClient:
    def __init__(self, config: ClusterConfig, me: str, key: bytes) -> None:
        self.config, self.me, self.key = config, me, key
        self._failing: set[str] = set()

    async def send(self, server: str, op: str, args: dict[str, Any],
                   timeout: float = SEND_TIMEOUT) -> dict[str, Any] | None:
        errors = []
        for address in peer_addresses(self.config, server):
            try:
                reply = await asyncio.wait_for(self._call(address, op, args), timeout)
            except (OSError, TimeoutError, frames.FrameError, asyncio.IncompleteReadError) as e:
                errors.append(f"{address}: {e or type(e).__name__}")
                continue
            if server in self._failing:
                self._failing.discard(server)
                log.info("cluster RPC to %s works again (%s)", server, address)
            return reply
        if server not in self._failing:
            self._failing.add(server)
            log.warning("cluster RPC %s to %s failed: %s", op, server,
                        "; ".join(errors) or "no LAN interconnect address")
        return None

    async def _call(self, address: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        request = frames.new_request(self.config.name, self.me, op, args)
        reader, writer = await asyncio.open_connection(address, self.config.ports.rpc)
        try:
            writer.write(frames.pack(self.key, request))
            await writer.drain()
            answer = await frames.read_frame(reader, self.key)
        finally:
            writer.close()
        if answer.get("nonce") != request["nonce"] or not isinstance(answer.get("reply"), dict):
            raise frames.FrameError("reply does not answer our request")
        return answer["reply"]
