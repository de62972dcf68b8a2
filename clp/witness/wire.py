"""What the witness and its clients exchange, byte for byte (docs/witness.md).

``POST /v1/heartbeat/<cluster>``: the body is one 96-byte heartbeat record
(:mod:`clp.heartbeat.packet`). The answer's body is, for every record the witness holds for that
cluster (the client's own included), an :data:`ENTRY` header ``!HI`` (sender index, age in
milliseconds since the witness received the record, capped at :data:`MAX_AGE_MS`) followed by the
96 bytes of the record.

The witness can check only what needs no key: the size, magic, version, kind, that the record's
cluster id is the one of the cluster named in the path, and the sender index (0..31).
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Iterable

from clp.heartbeat import packet
from clp.net import http11
from clp.net.http11 import HttpError

DEFAULT_PORT = 29005  # next to the product's 29001-29003 and unprivileged: see docs/witness.md
HEARTBEAT_PREFIX = "/v1/heartbeat/"
CLUSTERS_PATH = "/v1/clusters"
CLUSTER_RE = re.compile(r"^[A-Za-z0-9_-]{1,31}$")
MAX_SENDERS = 32  # a cluster has at most 32 servers: sender indexes 0..31
ENTRY = struct.Struct("!HI")
ENTRY_SIZE = ENTRY.size + packet.PACKET_SIZE
MAX_AGE_MS = 0xFFFFFFFF
MAX_ANSWER = MAX_SENDERS * ENTRY_SIZE
_HEAD = struct.Struct("!4sBB10xH")  # magic, version, kind, (state, reserved, cluster id), sender
_CLUSTER_ID = struct.Struct("!8xQ")


class WireError(ValueError):
    """A record or an answer that does not follow the format; the message says how."""


def check_record(record: bytes, cluster: str) -> int:
    """The sender index of ``record`` posted for ``cluster``, or WireError naming the fault."""
    if len(record) != packet.PACKET_SIZE:
        raise WireError(f"a heartbeat record has {packet.PACKET_SIZE} bytes, not {len(record)}")
    magic, version, kind, sender = _HEAD.unpack_from(record)
    if magic != packet.MAGIC or version != packet.VERSION or kind != packet.KIND_HEARTBEAT:
        raise WireError(f"not a heartbeat record (magic/version/kind {magic!r}/{version}/{kind})")
    (cid,) = _CLUSTER_ID.unpack_from(record)
    if cid != packet.cluster_id(cluster):
        raise WireError(f"the record is for another cluster than {cluster!r}")
    if sender >= MAX_SENDERS:
        raise WireError(f"sender index {sender} is out of range 0..{MAX_SENDERS - 1}")
    return sender


def encode_entries(entries: Iterable[tuple[int, int, bytes]]) -> bytes:
    """(sender, age in ms, record) -> the answer body."""
    return b"".join(ENTRY.pack(sender, min(max(age, 0), MAX_AGE_MS)) + record
                    for sender, age, record in entries)


def decode_entries(body: bytes) -> list[tuple[int, int, bytes]]:
    """The answer body -> (sender, age in ms, record); WireError when it is not well-formed."""
    if len(body) % ENTRY_SIZE or len(body) > MAX_ANSWER:
        raise WireError(f"an answer of {len(body)} bytes is not a list of {ENTRY_SIZE}-byte "
                        f"entries (at most {MAX_SENDERS})")
    entries = []
    seen = set()
    for offset in range(0, len(body), ENTRY_SIZE):
        sender, age = ENTRY.unpack_from(body, offset)
        if sender >= MAX_SENDERS or sender in seen:
            raise WireError(f"entry {offset // ENTRY_SIZE}: sender index {sender} out of range "
                            "or repeated")
        seen.add(sender)
        start = offset + ENTRY.size
        entries.append((sender, age, body[start:start + packet.PACKET_SIZE]))
    return entries


async def post(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], head: bytes,
               data: bytes, max_body: int) -> tuple[bytes, bool]:
    """POST ``data`` on a kept connection to the witness (``head``: the request line and
    headers, Content-Length left out); (the answer's body, whether the connection may be kept).
    HttpError for an answer without Content-Length, or one that is not 200 (with its text)."""
    reader, writer = conn
    writer.write(head + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    version, status = await http11.read_status_line(reader)
    headers = await http11.read_headers(reader)
    if "content-length" not in headers:
        raise HttpError(400, f"the witness answered {status} without Content-Length")
    body = await http11.read_body(reader, http11.content_length(headers, max_body))
    if status != 200:
        detail = body[:200].decode("utf-8", "replace").strip()
        raise HttpError(status, f"the witness answered {status}: {detail}")
    return body, http11.keep_alive(version, headers)
