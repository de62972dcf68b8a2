"""Authenticated request/response frames between servers (cluster RPC over TCP).

A frame is a 4-byte big-endian length, that many bytes of JSON, then HMAC-SHA256(key, length +
JSON). A request carries the cluster name, a random nonce and the sender's time; the receiver
refuses a frame whose MAC fails, whose cluster differs, whose time is more than ``MAX_SKEW`` away
from its own, or whose nonce it has already seen, so a captured request cannot be replayed. The
reply echoes the nonce, so a client never takes an old reply for a new answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import struct
import time
from typing import Any

MAX_FRAME = 256 * 1024
MAX_SKEW = 300.0
_LEN = struct.Struct("!I")


class FrameError(Exception):
    """A frame that must not be acted on (malformed, forged, replayed, foreign cluster)."""


def pack(key: bytes, obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    head = _LEN.pack(len(body))
    return head + body + hmac.digest(key, head + body, "sha256")


def unpack_body(key: bytes, head: bytes, rest: bytes) -> dict[str, Any]:
    body, mac = rest[:-32], rest[-32:]
    if not hmac.compare_digest(mac, hmac.digest(key, head + body, "sha256")):
        raise FrameError("authentication failed")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FrameError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise FrameError("frame is not an object")
    return obj


def frame_length(head: bytes) -> int:
    (n,) = _LEN.unpack(head)
    if n > MAX_FRAME:
        raise FrameError(f"declared length {n} exceeds {MAX_FRAME}")
    return n


async def read_frame(reader: asyncio.StreamReader, key: bytes,
                     head: bytes | None = None) -> dict[str, Any]:
    """The next frame; ``head``: its 4 length bytes when the caller has read them already."""
    if head is None:
        head = await reader.readexactly(4)
    rest = await reader.readexactly(frame_length(head) + 32)
    return unpack_body(key, head, rest)


async def send_reply(writer: asyncio.StreamWriter, key: bytes, request: dict[str, Any],
                     reply: dict[str, Any], close: bool = True) -> bool:
    """Answer ``request`` (echoing its nonce), then close the connection unless ``close`` is
    False; a peer that went away meanwhile is not an error. Whether the answer was sent."""
    sent = False
    try:
        writer.write(pack(key, {"nonce": request["nonce"], "reply": reply}))
        await writer.drain()
        sent = True
    except ConnectionError:
        pass
    finally:
        if close or not sent:
            writer.close()
    return sent


def new_request(cluster: str, sender: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"cluster": cluster, "from": sender, "nonce": secrets.token_hex(16),
            "time": time.time(), "op": op, "args": args}


class NonceGuard:
    """Remembers nonces for twice the allowed skew; anything older is refused by its time.

    Nonces are kept in the order they came (a dict keeps it), so the expired ones are dropped
    from the front: a check costs the same whatever the rate (rebuilding the whole table on every
    request cost a server of 8 at interval 0.1 s about a sixth of its CPU). Should the clock step
    back, expired entries behind a newer one wait for it to expire (only frames signed with the
    cluster key get here: the table grows with the cluster's own traffic only)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def check(self, request: dict[str, Any], cluster: str, now: float) -> None:
        if request.get("cluster") != cluster:
            raise FrameError(f"foreign cluster {request.get('cluster')!r}")
        sent, nonce = request.get("time"), request.get("nonce")
        if not isinstance(sent, (int, float)) or abs(now - sent) > MAX_SKEW:
            raise FrameError(f"request time {sent!r} is more than {MAX_SKEW:.0f} s from ours")
        if not isinstance(nonce, str) or len(nonce) != 32:
            raise FrameError("missing or malformed nonce")
        if nonce in self._seen:
            raise FrameError("replayed request")
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if now - seen[oldest] < 2 * MAX_SKEW:
                break
            del seen[oldest]
        seen[nonce] = now
        if not isinstance(request.get("op"), str) or not isinstance(request.get("args"), dict):
            raise FrameError("request needs a string 'op' and an object 'args'")


def call(address: str, port: int, key: bytes, request: dict[str, Any],
         timeout: float = 30.0) -> dict[str, Any]:
    """Blocking client call: send one request, return the reply object (for the commands)."""
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(pack(key, request))
        f = s.makefile("rb")
        head = f.read(4)
        if len(head) != 4:
            raise FrameError("connection closed before a reply")
        rest = f.read(frame_length(head) + 32)
        reply = unpack_body(key, head, rest)
    if reply.get("nonce") != request["nonce"] or not isinstance(reply.get("reply"), dict):
        raise FrameError("reply does not answer our request")
    return reply["reply"]
