"""``ping`` network partition resolver: ICMP echo to one or more targets (IPv4 and IPv6).

The seed: a server that lost every heartbeat pings its targets (typically the gateway); an answer
means the lost servers are down, no answer from any target means this server is cut off.

One probe opens its own ICMP socket per address family, raw when allowed (root), else the kernel's
unprivileged "ping" datagram socket (``net.ipv4.ping_group_range``), and watches it with
``loop.add_reader``. A reply counts only if it comes from one of the targets and carries this
probe's identifier, one of its sequence numbers and its random token, so concurrent probes, the
system's ``ping`` and any other ICMP traffic cannot be taken for an answer. A late reply to an
earlier try counts too: the target did answer.

A raw socket sees every ICMP datagram of the host: one readable callback reads at most MAX_READS
of them, so a flood cannot starve the event loop (the rest wait for the next callback). An IPv6
link-local target needs its interface (``fe80::1%eth0``); replies are matched on the address
alone, since the kernel gives a reply's source with or without the scope.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import struct
from collections.abc import Callable, Sequence

from clp.net.addresses import Address, unscoped

DEFAULT_INTERVAL = 5.0  # seconds between background probes
DEFAULT_TIMEOUT = 3.0  # seconds to wait for an answer to one try
DEFAULT_RETRY = 3  # tries after the first; also failed rounds before "failing" (partition.py)

_ECHO = {socket.AF_INET: (8, 0), socket.AF_INET6: (128, 129)}  # (request type, reply type)
_PROTO = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_PAD = b"clp-np-ping\0" * 2
MAX_READS = 64  # datagrams read per readable callback


def budget(timeout: float, retry: int) -> float:
    """Worst-case seconds of one probe: every try waits its whole timeout."""
    return timeout * (retry + 1)


def parse_target(text: str) -> Address:
    """The address of one target; ValueError when it is not an IP address, or is an IPv6
    link-local address without the interface to reach it through."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.is_link_local \
            and not address.scope_id:
        raise ValueError(f"ping target {text!r} is an IPv6 link-local address: name its "
                         f"interface, as {text}%eth0")
    return address


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _IcmpSocket:
    """One family's socket of one probe: sends echo requests, calls ``on_reply`` on a match."""

    def __init__(self, family: int, ident: int, token: bytes, targets: set[Address],
                 on_reply: Callable[[Address], None]) -> None:
        self.family = family
        self.ident = ident
        self.token = token
        self.targets = {unscoped(t) for t in targets}
        self.on_reply = on_reply
        self.sequences: set[int] = set()
        self.send_errors: list[str] = []
        try:
            self.sock = socket.socket(family, socket.SOCK_RAW, _PROTO[family])
            self.raw = True
        except PermissionError:
            self.sock = socket.socket(family, socket.SOCK_DGRAM, _PROTO[family])
            self.raw = False  # the kernel sets the identifier and filters replies for us
        self.sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, target: Address, seq: int) -> None:
        request, _ = _ECHO[self.family]
        payload = self.token + _PAD
        header = _HEADER.pack(request, 0, 0, self.ident, seq)
        if self.family == socket.AF_INET:  # the kernel computes ICMPv6 checksums itself
            header = _HEADER.pack(request, 0, checksum(header + payload), self.ident, seq)
        self.sequences.add(seq)
        try:
            self.sock.sendto(header + payload, (str(target), 0))
        except OSError as e:  # no route, interface down: this target does not answer this try
            self.send_errors.append(f"{target}: {e.strerror or e}")

    def _readable(self) -> None:
        for _ in range(MAX_READS):  # bounded: the loop has other work (heartbeats)
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an ICMP error queued on the socket: not an answer
            source = self._match(data, addr[0])
            if source is not None:
                self.on_reply(source)

    def _match(self, data: bytes, source: str) -> Address | None:
        if self.raw and self.family == socket.AF_INET:
            data = data[(data[0] & 0x0F) * 4:] if data else b""  # skip the IPv4 header
        if len(data) < _HEADER.size + len(self.token):
            return None
        kind, code, _, ident, seq = _HEADER.unpack_from(data)
        if (kind, code) != (_ECHO[self.family][1], 0) or seq not in self.sequences:
            return None
        if self.raw and ident != self.ident:
            return None
        if data[_HEADER.size:_HEADER.size + len(self.token)] != self.token:
            return None
        address = unscoped(source)
        return address if address in self.targets else None

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


async def probe(targets: Sequence[str], timeout: float, retry: int) -> bool:
    """True as soon as any target answers; each of ``retry + 1`` tries pings every target and
    waits ``timeout``. False when none answered. ValueError for a target that is not an IP
    address (or is a link-local IPv6 one without its scope); OSError when no ICMP socket can be
    opened (neither root nor ping_group_range)."""
    addresses = [parse_target(t) for t in targets]
    if not addresses:
        raise ValueError("ping needs at least one target")
    if timeout <= 0 or retry < 0:
        raise ValueError(f"timeout {timeout!r} must be > 0 and retry {retry!r} >= 0")
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Address] = loop.create_future()

    def on_reply(source: Address) -> None:
        if not answered.done():
            answered.set_result(source)

    ident, first = secrets.randbelow(0x10000), secrets.randbelow(0x10000)
    token = secrets.token_bytes(8)
    families = {socket.AF_INET if a.version == 4 else socket.AF_INET6 for a in addresses}
    sockets: dict[int, _IcmpSocket] = {}
    try:
        errors = []
        for family in families:
            try:
                sockets[family] = _IcmpSocket(family, ident, token, set(addresses), on_reply)
            except OSError as e:  # IPv6 disabled, say: its targets cannot answer
                errors.append(e)
        if not sockets:
            raise errors[0]
        for attempt in range(retry + 1):
            for address in addresses:
                family = socket.AF_INET if address.version == 4 else socket.AF_INET6
                if family in sockets:
                    sockets[family].send(address, (first + attempt) & 0xFFFF)
            try:
                await asyncio.wait_for(asyncio.shield(answered), timeout)
                return True
            except TimeoutError:
                continue
        return False
    finally:
        for s in sockets.values():
            s.close()
