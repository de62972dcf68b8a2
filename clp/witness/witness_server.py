"""The witness HTTP server (``clpwitnessd``): asyncio, stdlib only, several clusters at once.

Routes (docs/witness.md):

- ``POST /v1/heartbeat/<cluster>``: store the posted record, answer every record of the cluster.
- ``POST /v1/arbiter/<cluster>``: witness arbitration (:mod:`clp.witness.arbitration`), for the
  clusters whose arbiter key it was given.
- ``GET /v1/clusters``: JSON for operators (clusters, senders, ages, claims in force).
- ``GET /`` and ``HEAD /``: 200, so the witness doubles as the target of an ``http`` network
  partition resolver.

Every connection is bounded in time (``idle_timeout`` waiting for a request line,
``request_timeout`` for the rest of a request and for writing the answer) and every request in
size (:mod:`clp.net.http11`); connections are capped in all (below the open-file limit) and per
client address (:mod:`clp.witness.limits`), and one over a cap is closed at once and counted.
A malformed request is answered 400 with the reason and its connection closed (its framing
cannot be trusted); the server goes on. Errors are logged once per (client address, kind), so
a broken or hostile client cannot flood the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable

from clp.net import http11
from clp.net.http11 import Closed, HttpError
from clp.witness.arbitration import ARBITER_PREFIX, Arbitration
from clp.witness.limits import (
    MAX_CONNECTIONS,
    MAX_PER_CLIENT,
    client_key,
    connection_cap,
    open_file_limit,
)
from clp.witness.store import Store, StoreFull
from clp.witness.wire import CLUSTER_RE, CLUSTERS_PATH, HEARTBEAT_PREFIX, WireError, check_record

log = logging.getLogger("clp.witness")

IDLE_TIMEOUT = 15.0  # well above the usual heartbeat interval (3 s): kept connections stay
REQUEST_TIMEOUT = 10.0
LINGER = 1.0  # seconds, and bytes, read and dropped after an error answer
LINGER_BYTES = 1 << 20
MAX_LOGGED = 10000  # (client, kind) pairs remembered for log-once
BANNER = b"clp witness\n"


class WitnessServer:
    def __init__(self, store: Store | None = None, idle_timeout: float = IDLE_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, max_per_client: int = MAX_PER_CLIENT,
                 clock: Callable[[], float] = time.monotonic,
                 open_files: Callable[[], int] = open_file_limit,
                 arbitration: Arbitration | None = None) -> None:
        self.store = store or Store()
        self.arbitration = arbitration or Arbitration({}, clock=clock)
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections  # lowered by start() to fit the open-file limit
        self.max_per_client = max_per_client
        self.clock = clock
        self.open_files = open_files
        self.connections = 0
        self.per_client: Counter[str] = Counter()  # client_key -> connections held
        self.requests = 0
        self.errors: dict[str, int] = {}
        self._logged: set[tuple[str, str]] = set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False
        self._expirer: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on ``host``:``port`` (port 0: any free port, see :attr:`port`)."""
        self.max_connections = connection_cap(self.max_connections, self.open_files())
        self._server = await asyncio.start_server(self.serve, host, port,
                                                  limit=http11.LINE_LIMIT, reuse_address=True)
        self._expirer = asyncio.get_running_loop().create_task(self._expire_forever())
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._expirer is not None:
            self._expirer.cancel()
        if self._server is not None:
            self._server.close()
            self._closing = True
            for writer in list(self._writers):  # kept-alive clients: their handlers see EOF
                writer.close()
            deadline = time.monotonic() + 1.0
            while self.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, max(self.store.expiry / 4, 0.05)))
            self.store.expire(self.clock())

    # --- one connection ---------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else "?"
        key = client_key(client)
        if self.connections >= self.max_connections:
            self._error(client, "connections", f"more than {self.max_connections} connections")
            writer.close()
            return
        if self.per_client[key] >= self.max_per_client:
            self._error(client, "client_connections",
                        f"more than {self.max_per_client} connections from {key}")
            writer.close()
            return
        self.connections += 1
        self.per_client[key] += 1
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer, client):
                pass
        except (Closed, ConnectionError, TimeoutError, HttpError):
            pass
        finally:
            self.connections -= 1
            self.per_client[key] -= 1
            if not self.per_client[key]:
                del self.per_client[key]
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           client: str) -> bool:
        """Read, answer; True to keep the connection for another request."""
        try:
            method, target, version = await asyncio.wait_for(
                http11.read_request_line(reader), self.idle_timeout)
        except TimeoutError:
            return False  # an idle keep-alive connection: just close it
        except HttpError as e:
            return await self._refuse(reader, writer, client, e)
        try:
            async with asyncio.timeout(self.request_timeout):
                headers = await http11.read_headers(reader)
                length = http11.content_length(headers)
                if length and headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await http11.read_body(reader, length)
        except HttpError as e:
            return await self._refuse(reader, writer, client, e)
        except TimeoutError:
            late = HttpError(408, f"request not complete within {self.request_timeout:g} s")
            return await self._refuse(reader, writer, client, late)
        self.requests += 1
        keep = version == "1.1" and http11.keep_alive(version, headers)  # 1.0: one answer
        answer = self.route(method, target, body, client, method == "HEAD", close=not keep)
        await self._send(writer, answer)
        return keep

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      client: str, e: HttpError) -> bool:
        """Answer the error and close: after a broken request the framing is lost. What the
        client still sends is read and dropped for a moment first (a lingering close), since
        closing with unread data resets the connection and the client might lose the answer."""
        if self._closing:
            return False  # we closed it ourselves (shutdown): not the client's error
        self._error(client, f"http{e.status}", e.reason)
        await self._send(writer, http11.response(e.status, e.reason.encode() + b"\n", close=True))
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(LINGER):
                drained = 0
                while drained < LINGER_BYTES and (chunk := await reader.read(65536)):
                    drained += len(chunk)
        return False

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.request_timeout)

    # --- routing ----------------------------------------------------------------------------

    def route(self, method: str, target: str, body: bytes, client: str, head_only: bool,
              close: bool = False) -> bytes:
        path = target.split("?", 1)[0]

        def answer(status: int, data: bytes, ctype: str = "text/plain; charset=utf-8",
                   extra: dict[str, str] | None = None) -> bytes:
            return http11.response(status, data, ctype, head_only, close, extra)

        def allow(methods: str) -> bytes:
            self._error(client, "http405", f"{method} {path}")
            return answer(405, f"{method} is not allowed on {path}\n".encode(),
                          extra={"Allow": methods})

        if path.startswith(HEARTBEAT_PREFIX):
            if method != "POST":
                return allow("POST")
            status, data = self._heartbeat(path.removeprefix(HEARTBEAT_PREFIX), body, client)
            ctype = "application/octet-stream" if status == 200 else "text/plain; charset=utf-8"
            return answer(status, data, ctype)
        if path.startswith(ARBITER_PREFIX):
            if method != "POST":
                return allow("POST")
            cluster = path.removeprefix(ARBITER_PREFIX)
            status, data = self.arbitration.handle(cluster, body)
            if status != 200:
                self._error(client, "arbiter", data.decode(errors="replace").strip())
            return answer(status, data)
        if path == CLUSTERS_PATH:
            if method not in ("GET", "HEAD"):
                return allow("GET, HEAD")
            now = self.clock()
            self.store.expire(now)
            doc = self.store.summary(now)
            doc.update(arbitration=self.arbitration.summary(), connections=self.connections,
                       max_connections=self.max_connections,
                       max_per_client=self.max_per_client, requests=self.requests,
                       errors=self.errors)
            return answer(200, json.dumps(doc, indent=1).encode() + b"\n", "application/json")
        if path == "/":
            if method not in ("GET", "HEAD"):
                return allow("GET, HEAD")
            return answer(200, BANNER)
        self._error(client, "http404", path)
        return answer(404, f"no such path {path}\n".encode())

    def _heartbeat(self, cluster: str, body: bytes, client: str) -> tuple[int, bytes]:
        if not CLUSTER_RE.match(cluster):
            self._error(client, "cluster", f"bad cluster name {cluster[:40]!r}")
            return 400, b"cluster name: 1 to 31 of A-Z a-z 0-9 _ -\n"
        try:
            sender = check_record(body, cluster)
            now = self.clock()
            self.store.put(cluster, sender, body, now)
        except WireError as e:
            self._error(client, "record", str(e))
            return 400, f"{e}\n".encode()
        except StoreFull as e:
            self._error(client, "full", str(e))
            return 503, f"{e}\n".encode()
        return 200, self.store.answer(cluster, now)

    def _error(self, client: str, kind: str, detail: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if (client, kind) in self._logged:
            return
        if len(self._logged) >= MAX_LOGGED:
            self._logged.clear()
        self._logged.add((client, kind))
        log.warning("%s: %s (%s); further errors of this kind from %s are only counted",
                    client, detail, kind, client)
