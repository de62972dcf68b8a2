"""The on-disk layout of a disk heartbeat device (``diskhb``), as pure functions.

The device is cut into 4096-byte blocks (any logical sector size up to 4096 divides them, so
every transfer can be ``O_DIRECT``)::

    block      contents
        0      header, written identically by every server of the cluster (zero-padded)
        1 + i  slot of the server with index i in clp.conf (i = 0..31): its latest 96-byte
               heartbeat record (clp.heartbeat.packet) followed by zeros
     33..      unused

Header (network byte order, 32 bytes, then zeros to the block's end)::

    offset size field
         0    8 magic           b"CLPDISKH"
         8    2 layout version  1
        10    2 reserved        0
        12    4 slot size       4096
        16    4 slots           32
        20    4 reserved        0
        24    8 cluster id      clp.heartbeat.packet.cluster_id(cluster name)

The header lets a server recognise the device before it writes: a block 0 with our magic and
another cluster id means the configured path names another cluster's heartbeat disk (a typo, a
renumbered device), and writing to it would break that cluster's heartbeat; the server refuses
and reports it. A blank layout (block 0 all zeros, and every slot block either all zeros or a
clp heartbeat record: a new or cleared partition) is initialised. Anything else there (a file
system, a volume label, an md RAID superblock at 4 KiB, a ZFS label, old data) means the path
names a partition that holds data: clp refuses to write rather than destroy it, and says how to
clear a partition that really is meant for the heartbeat.

A slot that is all zeros was never written (that server has not started since the device was
initialised): not a heartbeat, not a drop. The device must be at least 10 MiB (the seed's
requirement for the heartbeat partition), though the layout uses only 132 KiB.
"""

from __future__ import annotations

import struct
from enum import Enum

from clp.heartbeat.packet import MAGIC as RECORD_MAGIC
from clp.heartbeat.packet import PACKET_SIZE

BLOCK = 4096
MAGIC = b"CLPDISKH"
LAYOUT_VERSION = 1
SLOTS = 32
MIN_DEVICE_SIZE = 10 * 1024 * 1024
_HEADER = struct.Struct("!8sH2xII4xQ")
HEADER_SIZE = _HEADER.size
assert HEADER_SIZE == 32


class LayoutError(Exception):
    """The device cannot be used as this cluster's heartbeat disk; the message says why."""


class HeaderState(Enum):
    OURS = "ours"  # this cluster's header, same layout
    BLANK = "blank"  # all zeros: the device is to be initialised


def encode_header(cluster_id: int) -> bytes:
    return _HEADER.pack(MAGIC, LAYOUT_VERSION, BLOCK, SLOTS, cluster_id)


def check_header(block0: bytes, cluster_id: int) -> HeaderState:
    """What block 0 says about the device; LayoutError if this cluster must not write to it."""
    if not any(block0):
        return HeaderState.BLANK
    if len(block0) < HEADER_SIZE or block0[:len(MAGIC)] != MAGIC:
        raise LayoutError(
            f"block 0 holds data that is not a clp heartbeat header (a file system, a volume "
            f"label?): not writing to it; if this partition is meant for the disk heartbeat, "
            f"clear it first (dd if=/dev/zero of=DEVICE bs={BLOCK} count={SLOTS + 1})")
    _, version, slot_size, slots, other = _HEADER.unpack_from(block0)
    if other != cluster_id:
        raise LayoutError(f"it holds the heartbeat header of another cluster (cluster id "
                          f"{other:#018x}, ours is {cluster_id:#018x}): not writing to it; "
                          "is the device path right?")
    if (version, slot_size, slots) != (LAYOUT_VERSION, BLOCK, SLOTS):
        raise LayoutError(f"its header has layout version {version}, slot size {slot_size}, "
                          f"{slots} slots; this clp writes version {LAYOUT_VERSION}, "
                          f"{BLOCK}, {SLOTS}")
    return HeaderState.OURS


def check_layout(blocks: bytes, cluster_id: int) -> HeaderState:
    """:func:`check_header` of block 0 of ``blocks`` (read from block 0 on); when it is blank,
    also every slot block read must be unwritten or hold a heartbeat record, since the server
    initialising the header then writes its slot: a blank block 0 alone does not make a free
    device (an md RAID v1.2 superblock starts at 4 KiB, a ZFS label's data at 16 KiB)."""
    state = check_header(blocks[:BLOCK], cluster_id)
    if state is HeaderState.BLANK:
        for n in range(1, len(blocks) // BLOCK):
            block = blocks[n * BLOCK:(n + 1) * BLOCK]
            if any(block) and not (block.startswith(RECORD_MAGIC) and not any(block[PACKET_SIZE:])):
                raise LayoutError(
                    f"block 0 is blank but block {n} holds data that is not a clp heartbeat "
                    f"record (a RAID superblock, a volume label?): not writing to it; if this "
                    f"partition is meant for the disk heartbeat, clear it first "
                    f"(dd if=/dev/zero of=DEVICE bs={BLOCK} count={SLOTS + 1})")
    return state


def check_size(size: int) -> None:
    if size < MIN_DEVICE_SIZE:
        raise LayoutError(f"it has {size} bytes; a heartbeat disk needs at least "
                          f"{MIN_DEVICE_SIZE // (1024 * 1024)} MiB")


def slot_block(index: int) -> int:
    """Block number of server ``index``'s slot."""
    if not 0 <= index < SLOTS:
        raise ValueError(f"server index {index} has no slot (0..{SLOTS - 1})")
    return 1 + index


def read_range(members: list[int] | frozenset[int]) -> tuple[int, int]:
    """(first block, number of blocks) read every round: the header and every member's slot,
    in one contiguous read."""
    return 0, slot_block(max(members)) + 1


def slot_of(data: bytes, index: int, first: int = 0) -> bytes:
    """The record in server ``index``'s slot, from ``data`` read starting at block ``first``."""
    start = (slot_block(index) - first) * BLOCK
    return data[start:start + PACKET_SIZE]


def is_blank(slot: bytes) -> bool:
    """True for a slot nobody has written since the device was initialised."""
    return not any(slot)
