"""Network helpers shared by the tests."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, address: str = "127.0.0.1") -> int:
    """A port of ``kind`` (TCP by default) free on ``address`` now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
