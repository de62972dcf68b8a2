"""The small, strict HTTP/1.1 of the witness, its clients and the http resolver (asyncio).

Strict means: one request or status line of the exact form, ``Name: value`` header lines (no
folding, no control characters, no space before the colon), a bounded number and size of them,
``Content-Length`` only (no chunked bodies), and a bounded body. Anything else is an
:class:`HttpError` carrying the status to answer and a reason meant for whoever sent it.
"""

from __future__ import annotations

import asyncio
import re

LINE_LIMIT = 8192  # the StreamReader limit: one line (request, status or header)
MAX_HEADERS = 32
MAX_HEAD = 16384  # all header lines together
MAX_BODY = 4096

REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 501: "Not Implemented",
           503: "Service Unavailable"}
_REQUEST = re.compile(rb"^([A-Z]{1,16}) (/[\x21-\x7e]*) HTTP/(1\.[01])\r?\n$")
_STATUS = re.compile(rb"^HTTP/1\.([01]) ([1-5][0-9][0-9])(?: [\x20-\x7e\t]*)?\r?\n$")
_HEADER = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*?)[ \t]*\r?\n$")


class HttpError(Exception):
    """A request (or an answer) that breaks the rules; ``status`` is what a server answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Closed(Exception):
    """The peer closed the connection cleanly between two messages."""


async def read_line(reader: asyncio.StreamReader, first: bool = False) -> bytes:
    """One line with its end; Closed at a clean end before a message (``first``)."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431, f"a line is longer than {LINE_LIMIT} bytes") from None
    except asyncio.IncompleteReadError as e:
        if first and not e.partial:
            raise Closed() from None
        raise HttpError(400, "the connection closed in the middle of a message") from None


async def read_request_line(reader: asyncio.StreamReader) -> tuple[str, str, str]:
    """(method, target, version "1.1"/"1.0") of the next request; Closed if the peer is done."""
    line = await read_line(reader, first=True)
    m = _REQUEST.match(line)
    if m is None:
        raise HttpError(400, "malformed request line (expected 'METHOD /path HTTP/1.1')")
    return m.group(1).decode(), m.group(2).decode(), m.group(3).decode()


async def read_status_line(reader: asyncio.StreamReader) -> tuple[str, int]:
    """(version "1.1"/"1.0", status) of an answer; Closed if the server closed before it."""
    line = await read_line(reader, first=True)
    m = _STATUS.match(line)
    if m is None:
        raise HttpError(400, f"malformed status line {line[:80]!r}")
    return f"1.{m.group(1).decode()}", int(m.group(2))


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """Header lines up to the empty line; names lower-cased; a repeated name is an error."""
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = await read_line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        size += len(line)
        if len(headers) >= MAX_HEADERS or size > MAX_HEAD:
            raise HttpError(431, f"more than {MAX_HEADERS} header lines or {MAX_HEAD} bytes")
        m = _HEADER.match(line)
        if m is None:
            raise HttpError(400, f"malformed header line {line[:60]!r}")
        name = m.group(1).decode().lower()
        if name in headers:
            raise HttpError(400, f"header {name!r} given twice")
        headers[name] = m.group(2).decode()


def content_length(headers: dict[str, str], limit: int = MAX_BODY) -> int:
    if "transfer-encoding" in headers:
        raise HttpError(501, "Transfer-Encoding is not supported; send Content-Length")
    value = headers.get("content-length", "0")
    if not value.isdigit() or len(value) > 12:
        raise HttpError(400, f"Content-Length {value[:20]!r} is not a number")
    if int(value) > limit:
        raise HttpError(413, f"Content-Length {value} is above the limit of {limit} bytes")
    return int(value)


async def read_body(reader: asyncio.StreamReader, length: int) -> bytes:
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise HttpError(400, "the connection closed before the whole body arrived") from None


def keep_alive(version: str, headers: dict[str, str]) -> bool:
    """HTTP/1.1 keeps the connection unless told ``close``; HTTP/1.0 only on ``keep-alive``."""
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "1.1":
        return "close" not in tokens
    return "keep-alive" in tokens


def response(status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
             head_only: bool = False, close: bool = False,
             extra: dict[str, str] | None = None) -> bytes:
    """A whole answer; for HEAD (``head_only``) the same headers without the body."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Server: clpwitnessd",
             f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body
