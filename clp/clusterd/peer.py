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
cluster, is too old or replayed is dropped, counted and logged, never acted on (and the
connection is closed). Sends are bounded (:data:`SEND_TIMEOUT`) and try the peer's interconnect
addresses in priority order; a failure is returned as ``None`` and logged once per peer until it
succeeds again, never raised.

Connections are kept: a request and its reply leave the connection open, and the client keeps up
to :data:`POOL_SIZE` idle connections per address for :data:`POOL_IDLE` seconds (the server
closes one idle for :data:`SERVE_IDLE`, longer), so the report every peer gets each interval
does not cost a TCP handshake each. A kept connection found closed (the peer restarted) is
replaced by a new one for the same call, with a new request (a new nonce); every operation is
safe to receive twice (reports carry state, commands are re-sent anyway when they show no
effect). A connection whose call failed or timed out is closed, never reused.
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
FRAME_TIMEOUT = 10.0  # a frame begun must be complete within this
SERVE_IDLE = 30.0  # the server closes a connection with no request for this long
POOL_IDLE = 20.0  # the client reuses a connection idle for less than this (< SERVE_IDLE)
POOL_SIZE = 2  # idle connections kept per address
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
        self._servers: dict[str, asyncio.AbstractServer] = {}  # address -> its listener
        self._open: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}  # connections served
        self.failed: dict[str, str] = {}  # address -> why it cannot listen there (yet)
        self._retry: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Listen on every interconnect address of this server. One that fails (the address is
        not up yet at boot) is an error with an alert, and :meth:`retry` tries again."""
        for address in peer_addresses(self.config, self.me):
            if address in self._servers or self._closed:
                continue
            try:
                self._servers[address] = await asyncio.start_server(
                    self._serve, address, self.config.ports.rpc, reuse_address=True)
            except OSError as e:
                if address not in self.failed:
                    log.error("cannot listen for cluster RPC on %s:%d: %s; trying again every "
                              "heartbeat interval", address, self.config.ports.rpc,
                              e.strerror or e, extra={"alert": True})
                self.failed[address] = str(e.strerror or e)
                continue
            if self.failed.pop(address, None) is not None:
                log.info("listening for cluster RPC on %s:%d now", address,
                         self.config.ports.rpc, extra={"alert": True})

    def retry(self) -> None:
        """Once per heartbeat round: listen where start() could not, unless a try still runs."""
        if self.failed and not self._closed and (self._retry is None or self._retry.done()):
            self._retry = asyncio.ensure_future(self.start())

    async def close(self) -> None:
        """Stop listening and close every connection, kept ones included: a stopping service
        answers no more requests."""
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        for s in self._servers.values():
            s.close()
        for writer in self._open:
            writer.close()
        if self._open:  # their handlers see the close and end (a handler mid-request: 1 s)
            await asyncio.wait(list(self._open.values()), timeout=1.0)
        for s in self._servers.values():
            await s.wait_closed()
        self._servers = {}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one connection, one after the other, until the client closes it, it
        stays idle for SERVE_IDLE, or a frame is refused."""
        task = asyncio.current_task()
        if task is not None:
            self._open[writer] = task
        try:
            await self._serve_connection(reader, writer)
        finally:
            self._open.pop(writer, None)

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        served = 0
        while True:
            # the first request must come at once (no idle unknown clients); later ones may
            # wait, the connection being a known peer's
            idle = SERVE_IDLE if served else FRAME_TIMEOUT
            try:
                head = await asyncio.wait_for(reader.readexactly(4), timeout=idle)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
                if not served:
                    self._refuse(peer, e)
                writer.close()
                return
            request = await self._request(reader, head, peer)
            if request is None:
                writer.close()
                return
            try:
                reply = await self.handler(request["op"], request["from"], request["args"])
            except Exception as e:  # noqa: BLE001 - one bad message must not stop the cluster
                log.exception("cluster RPC %s from %s failed", request["op"], request["from"])
                reply = {"ok": False, "code": E_INTERNAL, "message": f"internal error: {e}"}
            if not await frames.send_reply(writer, self.key, request, reply, close=False):
                return
            served += 1

    async def _request(self, reader: asyncio.StreamReader, head: bytes,
                       peer: object) -> dict[str, Any] | None:
        """The rest of the frame begun with ``head``, checked; None when refused."""
        try:
            request = await asyncio.wait_for(frames.read_frame(reader, self.key, head),
                                             timeout=FRAME_TIMEOUT)
            self.guard.check(request, self.config.name, time.time())
            if request["op"] not in OPS or request.get("from") not in self.config.server_names:
                raise frames.FrameError(f"unknown op {request['op']!r} or sender "
                                        f"{request.get('from')!r}")
        except (TimeoutError, frames.FrameError, asyncio.IncompleteReadError,
                ConnectionError) as e:
            self._refuse(peer, e)
            return None
        return request

    def _refuse(self, peer: object, e: BaseException) -> None:
        self.rejected[type(e).__name__] += 1
        log.warning("refused a cluster RPC from %s: %s", peer, e or type(e).__name__)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class PeerClient:
    def __init__(self, config: ClusterConfig, me: str, key: bytes) -> None:
        self.config, self.me, self.key = config, me, key
        self._failing: set[str] = set()
        self._idle: dict[str, list[_Conn]] = {}  # address -> kept connections, oldest first
        self.connections = 0  # connections opened (counters; most calls reuse one)
        self._closed = False

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

    def close(self) -> None:
        """Close the kept connections (the service stops); calls still running close theirs
        when they end."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _call(self, address: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        kept = self._take(address)
        if kept is not None:
            try:
                return await self._exchange(address, kept, op, args)
            except (OSError, asyncio.IncompleteReadError):
                pass  # closed by the peer (restarted): a new connection below
        reader, writer = await asyncio.open_connection(address, self.config.ports.rpc)
        self.connections += 1
        return await self._exchange(address, _Conn(reader, writer), op, args)

    async def _exchange(self, address: str, conn: _Conn, op: str,
                        args: dict[str, Any]) -> dict[str, Any]:
        """One request and its reply on ``conn``, kept afterwards; closed on any failure,
        cancellation included (a timed-out call's reply must never answer the next one)."""
        request = frames.new_request(self.config.name, self.me, op, args)
        try:
            conn.writer.write(frames.pack(self.key, request))
            await conn.writer.drain()
            answer = await frames.read_frame(conn.reader, self.key)
            if answer.get("nonce") != request["nonce"] or \
                    not isinstance(answer.get("reply"), dict):
                raise frames.FrameError("reply does not answer our request")
        except BaseException:
            conn.close()
            raise
        self._keep(address, conn)
        return answer["reply"]

    def _take(self, address: str) -> _Conn | None:
        """The most recently used kept connection to ``address`` young enough to be open still;
        older ones are closed."""
        conns = self._idle.get(address, [])
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if now - conn.idle_since < POOL_IDLE and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    def _keep(self, address: str, conn: _Conn) -> None:
        conns = self._idle.setdefault(address, [])
        if self._closed or len(conns) >= POOL_SIZE or conn.reader.at_eof():
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conns.append(conn)
