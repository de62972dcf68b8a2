import pytest

from clp.heartbeat import packet
from clp.heartbeat.packet import Drop, Heartbeat, PacketError

KEY = b"k" * 32
CID = packet.cluster_id("cluster")


def hb(seq: int = 1, inc: int = 100, sender: int = 1, path: int = 0) -> Heartbeat:
    return Heartbeat(CID, sender, path, inc, seq, 12.5, packet.SENDER_RUNNING)


def test_round_trip_is_fixed_size():
    data = packet.encode(KEY, hb())
    assert len(data) == packet.PACKET_SIZE == 96
    assert packet.decode(KEY, data, CID) == hb()


@pytest.mark.parametrize("mangle, drop", [
    (lambda d: d[:-1], Drop.MALFORMED),
    (lambda d: d + b"x", Drop.MALFORMED),
    (lambda d: b"XXXX" + d[4:], Drop.MALFORMED),
    (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], Drop.BAD_MAC),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), Drop.BAD_MAC),
])
def test_damaged_packets_are_refused_with_their_reason(mangle, drop):
    with pytest.raises(PacketError) as e:
        packet.decode(KEY, mangle(packet.encode(KEY, hb())), CID)
    assert e.value.drop is drop


def test_wrong_key_is_bad_mac_and_other_cluster_is_unknown_cluster():
    with pytest.raises(PacketError) as e:
        packet.decode(b"x" * 32, packet.encode(KEY, hb()), CID)
    assert e.value.drop is Drop.BAD_MAC
    other = Heartbeat(packet.cluster_id("other"), 1, 0, 1, 1, 0.0, 0)
    with pytest.raises(PacketError) as e:
        packet.decode(KEY, packet.encode(KEY, other), CID)
    assert e.value.drop is Drop.UNKNOWN_CLUSTER


def test_bitmaps_of_heard_and_resolved_down_servers_round_trip():
    hb = Heartbeat(CID, 3, 1, 7, 9, 1.0, packet.SENDER_RUNNING, heard=(1 << 31) | 5,
                   offline=1 << 30)
    data = packet.encode(KEY, hb)
    assert len(data) == packet.PACKET_SIZE == 96
    assert packet.decode(KEY, data, CID) == hb
