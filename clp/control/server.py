"""Serves a control API on a root-only UNIX socket from an asyncio loop.

Handlers are coroutines ``handler(args) -> Reply`` registered by op name. A bad request gets an
error reply naming what is wrong and changes nothing; a handler's exception is logged and reported
as an error, never taking the daemon down.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from clp.control.protocol import MAX_LINE, ProtocolError, Reply, parse_request

log = logging.getLogger("clp.control")

Handler = Callable[[dict[str, Any]], Awaitable[Reply]]


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()  # left by a crashed predecessor; our single-instance lock is shm
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                           limit=MAX_LINE + 1)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=10)
            reply = await self._dispatch(line)
            writer.write(reply.to_line())
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as e:
            log.debug("control connection dropped: %s", e)
        finally:
            writer.close()

    async def _dispatch(self, line: bytes) -> Reply:
        try:
            op, args = parse_request(line)
        except ProtocolError as e:
            return Reply(False, 2, f"Invalid request: {e}")
        handler = self.handlers.get(op)
        if handler is None:
            return Reply(False, 2, f"Invalid request: unknown operation {op!r}")
        try:
            return await handler(args)
        except Exception as e:  # noqa: BLE001 - one bad request must not stop the cluster
            log.exception("control operation %s failed", op)
            return Reply(False, 11, f"Internal error in {op}: {e}")
