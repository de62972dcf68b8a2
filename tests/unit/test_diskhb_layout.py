"""The disk heartbeat's on-disk layout: header, slots, refusal of another cluster's device."""

from __future__ import annotations

import pytest

from clp.heartbeat import disklayout as layout
from clp.heartbeat import packet
from clp.heartbeat.packet import Heartbeat

CID = packet.cluster_id("cluster")
OTHER = packet.cluster_id("elsewhere")
KEY = b"k" * 32


def block(data: bytes) -> bytes:
    return data + bytes(layout.BLOCK - len(data))


def test_header_round_trip_is_ours() -> None:
    header = layout.encode_header(CID)
    assert len(header) == layout.HEADER_SIZE
    assert header.startswith(b"CLPDISKH")
    assert layout.check_header(block(header), CID) is layout.HeaderState.OURS


def test_every_server_writes_the_same_header() -> None:
    assert layout.encode_header(CID) == layout.encode_header(packet.cluster_id("cluster"))


@pytest.mark.parametrize("block0", [bytes(layout.BLOCK), b""])
def test_zeros_mean_blank(block0: bytes) -> None:
    assert layout.check_header(block0, CID) is layout.HeaderState.BLANK


@pytest.mark.parametrize("block0", [b"\xff" * layout.BLOCK, block(b"XFSB superblock"),
                                    bytes(1080) + b"\x53\xef" + bytes(layout.BLOCK - 1082)])
def test_data_in_block_0_is_never_overwritten(block0: bytes) -> None:
    with pytest.raises(layout.LayoutError, match="not a clp heartbeat header.*dd if=/dev/zero"):
        layout.check_header(block0, CID)


def test_a_blank_block_0_before_data_is_not_a_free_device() -> None:
    md_superblock = block(bytes.fromhex("fc4e2ba9") + b"\x01" + bytes(50))  # md v1.2 at 4 KiB
    zfs_nvlist = block(b"\x01\x01\x00\x00" + b"version" + bytes(10))
    for n, data in ((1, md_superblock), (4, zfs_nvlist)):
        blocks = bytearray(layout.BLOCK * (1 + layout.SLOTS))
        blocks[n * layout.BLOCK:(n + 1) * layout.BLOCK] = data
        with pytest.raises(layout.LayoutError, match=f"block {n} holds data.*dd if=/dev/zero"):
            layout.check_layout(bytes(blocks), CID)


def test_a_blank_block_0_over_old_heartbeat_records_is_initialised() -> None:
    record = packet.encode(KEY, Heartbeat(OTHER, 1, 0, 1, 1, 0.0, 0, 0, 0))
    blocks = bytes(layout.BLOCK * 2) + block(record) + bytes(layout.BLOCK * 30)
    assert layout.check_layout(blocks, CID) is layout.HeaderState.BLANK
    ours = block(layout.encode_header(CID)) + block(b"anything: not looked at once ours")
    assert layout.check_layout(ours, CID) is layout.HeaderState.OURS


def test_another_clusters_header_is_refused_naming_its_id() -> None:
    with pytest.raises(layout.LayoutError) as e:
        layout.check_header(block(layout.encode_header(OTHER)), CID)
    assert f"{OTHER:#018x}" in str(e.value)
    assert "another cluster" in str(e.value)


def test_another_layout_version_is_refused() -> None:
    header = bytearray(layout.encode_header(CID))
    header[9] = 99  # version, low byte
    with pytest.raises(layout.LayoutError, match="layout version 99"):
        layout.check_header(block(bytes(header)), CID)


def test_size_below_10_mib_is_refused() -> None:
    layout.check_size(10 * 1024 * 1024)
    with pytest.raises(layout.LayoutError, match="at least 10 MiB"):
        layout.check_size(10 * 1024 * 1024 - 4096)


def test_slots_follow_the_header() -> None:
    assert [layout.slot_block(i) for i in (0, 1, 31)] == [1, 2, 32]
    with pytest.raises(ValueError):
        layout.slot_block(32)
    assert layout.read_range(frozenset({0, 2})) == (0, 4)  # header, slots 0..2


def test_slot_decodes_to_the_packet_written() -> None:
    hb = Heartbeat(CID, 2, 3, 7, 41, 1.5, packet.SENDER_RUNNING, heard=0b101)
    record = packet.encode(KEY, hb)
    first, n = layout.read_range([0, 1, 2])
    device = bytearray(n * layout.BLOCK)
    device[:layout.HEADER_SIZE] = layout.encode_header(CID)
    start = layout.slot_block(2) * layout.BLOCK
    device[start:start + len(record)] = record
    slot = layout.slot_of(bytes(device), 2, first)
    assert packet.decode(KEY, slot, CID) == hb
    assert layout.is_blank(layout.slot_of(bytes(device), 1, first))
    assert not layout.is_blank(slot)


def test_slot_of_a_range_not_starting_at_the_header() -> None:
    data = bytes(layout.BLOCK) + b"x" * packet.PACKET_SIZE + bytes(layout.BLOCK - 96)
    assert layout.slot_of(data, 1, first=1) == b"x" * packet.PACKET_SIZE
