"""ping's ICMP socket, white-box: a flood is read in bounded batches; a scoped IPv6 target
matches replies from its address with or without the scope; link-local targets need a scope."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from clp.np import ping

TOKEN = b"t" * 8


class FloodedSocket:
    """A raw socket with an endless supply of other ICMP traffic (capped, for the old code)."""

    def __init__(self, supply: int = 10_000) -> None:
        self.reads = 0
        self.supply = supply

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        self.reads += 1
        if self.reads > self.supply:
            raise BlockingIOError
        return b"\x45" + bytes(40), ("198.18.0.9", 0)


def icmp(family: int, targets: set[ping.Address], sock: object = None) -> ping._IcmpSocket:
    """An _IcmpSocket without a real socket (raw, as under root)."""
    s = object.__new__(ping._IcmpSocket)
    s.family, s.ident, s.token, s.raw = family, 7, TOKEN, True
    s.targets = {ping.unscoped(t) for t in targets}
    s.on_reply, s.sequences, s.send_errors = (lambda a: None), {5}, []
    s.sock = sock
    return s


def reply(seq: int = 5) -> bytes:
    return ping._HEADER.pack(129, 0, 0, 7, seq) + TOKEN + ping._PAD


def test_one_readable_callback_reads_a_bounded_batch() -> None:
    sock = FloodedSocket()
    s = icmp(socket.AF_INET, {ipaddress.ip_address("198.18.0.1")}, sock)
    s._readable()
    assert sock.reads == ping.MAX_READS == 64
    s._readable()
    assert sock.reads == 2 * ping.MAX_READS


@pytest.mark.parametrize("target, source", [("fe80::1%eth0", "fe80::1%eth0"),
                                            ("fe80::1%eth0", "fe80::1"),
                                            ("::1%lo", "::1"),
                                            ("2001:db8::1", "2001:db8::1")])
def test_a_scoped_target_matches_its_reply(target: str, source: str) -> None:
    s = icmp(socket.AF_INET6, {ipaddress.ip_address(target)})
    assert s._match(reply(), source) == ipaddress.ip_address(source.split("%")[0])
    assert s._match(reply(seq=6), source) is None  # not one of our tries
    assert s._match(reply(), "fe80::2%eth0") is None


def test_a_link_local_ipv6_target_needs_its_interface() -> None:
    assert ping.parse_target("fe80::1%eth0").scope_id == "eth0"
    assert ping.parse_target("169.254.0.1") == ipaddress.ip_address("169.254.0.1")
    with pytest.raises(ValueError, match="link-local.*fe80::1%eth0"):
        ping.parse_target("fe80::1")
    with pytest.raises(ValueError):
        ping.parse_target("gateway.example")
