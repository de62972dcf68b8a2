"""The heartbeat packet: a small fixed binary record authenticated with HMAC-SHA256.

Layout (network byte order, 96 bytes)::

    offset size field
         0    4 magic        b"CLPH"
         4    1 version      2
         5    1 kind         1 = heartbeat
         6    1 state        sender's own state: SENDER_RUNNING, or SENDER_STOPPING while its
                             service stops its groups (informational: for captures and tools;
                             a suspended service sends nothing)
         7    1 reserved     0
         8    8 cluster id   first 8 bytes of sha256(cluster name)
        16    2 sender       index of the sending server in clp.conf
        18    2 path         index of the heartbeat path (interconnect) in clp.conf
        20    4 reserved     0
        24    8 incarnation  grows on every restart of the sender (see clusterd.marks)
        32    8 sequence     per incarnation, from 1: one round's record has the same one on
                             every path (the receive table relies on it to tell copies)
        40    8 send time    sender's wall clock, seconds (float64; informational)
        48    4 heard        bitmap: bit i set when the sender counts server i Online
        52    4 offline      bitmap: bit i set when the sender declared server i Offline
        56    8 reserved     zeros
        64   32 mac          HMAC-SHA256(key, bytes 0..63)

The two bitmaps let a server learn that a peer no longer hears it (asymmetric loss, see
``clp.core.partition``). Every heartbeat path (LAN, disk, COM, witness) carries this same record.

Decoding never trusts the packet: every way it can be wrong has its own reason, so the daemon
counts drops by reason and acts on nothing it could not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import Enum

MAGIC = b"CLPH"
VERSION = 2
KIND_HEARTBEAT = 1
SENDER_RUNNING = 0
# 1: not used (a suspended service sends no heartbeat)
SENDER_STOPPING = 2

_BODY = struct.Struct("!4sBBBxQHH4xQQdII8x")
PACKET_SIZE = _BODY.size + 32
assert _BODY.size == 64


class Drop(Enum):
    """Why a received datagram was not accepted (the counter names shown by clpstat --json)."""

    MALFORMED = "malformed"
    BAD_MAC = "bad_mac"
    UNKNOWN_CLUSTER = "unknown_cluster"
    UNKNOWN_SENDER = "unknown_sender"
    REPLAY = "replay"
    LATE = "late"  # sent too long ago to say anything now (a record a witness relayed late)


class PacketError(Exception):
    def __init__(self, drop: Drop, detail: str) -> None:
        super().__init__(f"{drop.value}: {detail}")
        self.drop = drop


@dataclass(frozen=True)
class Heartbeat:
    cluster_id: int
    sender: int
    path: int
    incarnation: int
    seq: int
    sent: float
    state: int
    heard: int = 0  # bitmap of servers the sender counts Online (bit = server index)
    offline: int = 0  # bitmap of servers the sender declared Offline


def cluster_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def encode(key: bytes, hb: Heartbeat) -> bytes:
    return pack(key, hb.cluster_id, hb.sender, hb.path, hb.incarnation, hb.seq, hb.sent,
                hb.state, hb.heard, hb.offline)


def pack(key: bytes, cluster: int, sender: int, path: int, incarnation: int, seq: int,
         sent: float, state: int, heard: int, offline: int) -> bytes:
    """:func:`encode` without making a :class:`Heartbeat` (every path, every round)."""
    body = _BODY.pack(MAGIC, VERSION, KIND_HEARTBEAT, state, cluster, sender, path,
                      incarnation, seq, sent, heard, offline)
    return body + hmac.digest(key, body, "sha256")


def decode(key: bytes, data: bytes, expected_cluster: int) -> Heartbeat:
    """Verify and parse one datagram; raise PacketError naming why it is refused."""
    if len(data) != PACKET_SIZE:
        raise PacketError(Drop.MALFORMED, f"size {len(data)} != {PACKET_SIZE}")
    body, mac = data[:64], data[64:]
    magic, version, kind, state, cid, sender, path, inc, seq, sent, heard, off = _BODY.unpack(body)
    if magic != MAGIC or version != VERSION or kind != KIND_HEARTBEAT:
        raise PacketError(Drop.MALFORMED, f"magic/version/kind {magic!r}/{version}/{kind}")
    if not hmac.compare_digest(mac, hmac.digest(key, body, "sha256")):
        raise PacketError(Drop.BAD_MAC, "authentication failed")
    if cid != expected_cluster:
        raise PacketError(Drop.UNKNOWN_CLUSTER, f"cluster id {cid:#x}")
    return Heartbeat(cid, sender, path, inc, seq, sent, state, heard, off)
