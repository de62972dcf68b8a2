"""Synchronous client of a control socket, for the commands (they are short-lived and blocking)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from clp.control.protocol import MAX_LINE, ProtocolError, Reply, request_line


class NotRunning(Exception):
    """Nothing listens on the socket: the service is not running on this server."""


def call(sock_path: Path, op: str, args: dict[str, Any] | None = None,
         timeout: float = 30.0) -> Reply:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(str(sock_path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise NotRunning(f"{sock_path}: {e.strerror}") from None
        s.sendall(request_line(op, args))
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed before a complete reply")
            buf += chunk
            if len(buf) > MAX_LINE * 4:
                raise ProtocolError("reply too long")
        return Reply.from_obj(json.loads(buf))
    finally:
        s.close()
