"""``http`` network partition resolver: a HEAD request to a web server that is always up.

The seed: a server that lost every heartbeat sends an HTTP HEAD request; any answer means the lost
servers are down, none means this server is cut off. Any well-formed status line counts, 404 or
500 included: the question is whether the network reaches the web server, not whether the page
is fine. A refused connection, a timeout, or bytes that are not an HTTP status line do not.
"""

from __future__ import annotations

import asyncio
import contextlib

from clp.net import http11
from clp.net.hostport import host_header, split_host_port
from clp.net.http11 import Closed, HttpError

DEFAULT_INTERVAL = 5.0  # seconds between background probes
DEFAULT_TIMEOUT = 10.0  # seconds for the whole exchange (connect, send, status line)
DEFAULT_PATH = "/"


def budget(timeout: float) -> float:
    """Worst-case seconds of one probe: one request bounded by ``timeout``."""
    return timeout


def request(host: str, port: int, path: str) -> bytes:
    if not path.startswith("/") or any(not 0x21 <= ord(c) <= 0x7E for c in path):
        raise ValueError(f"HTTP path {path!r}: starts with '/', printable ASCII, no spaces")
    return (f"HEAD {path} HTTP/1.1\r\nHost: {host_header(host, port)}\r\n"
            "User-Agent: clp-np\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()


async def probe(target: str, timeout: float, path: str = DEFAULT_PATH) -> bool:
    """True when ``target`` (``host:port``) answers a HEAD request with an HTTP status line
    within ``timeout`` seconds. ValueError for a malformed target or path."""
    host, port = split_host_port(target)
    data = request(host, port, path)
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=http11.LINE_LIMIT)
            writer.write(data)
            await writer.drain()
            await http11.read_status_line(reader)
        return True
    except (TimeoutError, OSError, HttpError, Closed):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)
