"""A server's addresses over rtnetlink: list, add and remove them without starting ``ip``.

A floating IP's start read the addresses twice and added its own with ``ip``, three processes of
about 5 ms each, all of them on the path of a failover; ``fipw`` read them with ``ip -j`` every
interval. The kernel answers the same questions on a netlink socket in tens of microseconds.

Only what ``ip addr show`` / ``ip addr add ADDR/PREFIX dev IFACE`` / ``ip addr del`` do is done:
``IFA_LOCAL`` and ``IFA_ADDRESS`` both set to the address (no peer, no broadcast, scope global).
Every failure is an ``OSError`` (the kernel's errno, or ``EBADMSG`` for a reply that cannot be
read, ``ETIMEDOUT`` when the kernel does not answer within ``TIMEOUT``).
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
import socket
import struct

TIMEOUT = 5.0
MAX_REPLIES = 10_000  # datagrams of one dump; far above any real address list

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL = 1, 2

_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port
_IFADDR = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_RTA = struct.Struct("=HH")  # length, type
_seq = itertools.count(1)


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, value: bytes) -> bytes:
    size = _RTA.size + len(value)
    return _RTA.pack(size, kind) + value + b"\0" * (_align(size) - size)


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + _RTA.size <= len(data):
        size, kind = _RTA.unpack_from(data, offset)
        if size < _RTA.size or offset + size > len(data):
            raise OSError(errno.EBADMSG, f"netlink: an attribute of {size} bytes does not fit")
        found[kind] = data[offset + _RTA.size:offset + size]
        offset += _align(size)
    return found


def _talk(kind: int, flags: int, payload: bytes) -> list[bytes]:
    """Send one request; the bodies of the replies of the same sequence (a dump's messages, or
    nothing for an acknowledged change). A netlink error is raised with its errno."""
    seq = next(_seq)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       socket.NETLINK_ROUTE) as s:
        s.settimeout(TIMEOUT)
        s.bind((0, 0))
        s.send(_NLMSG.pack(_NLMSG.size + len(payload), kind, NLM_F_REQUEST | flags, seq, 0)
               + payload)
        bodies = []
        for _ in range(MAX_REPLIES):
            try:
                data = s.recv(1 << 16)
            except TimeoutError:
                raise OSError(errno.ETIMEDOUT, "netlink: the kernel did not answer") from None
            offset = 0
            while offset + _NLMSG.size <= len(data):
                size, mtype, mflags, mseq, _port = _NLMSG.unpack_from(data, offset)
                if size < _NLMSG.size or offset + size > len(data):
                    raise OSError(errno.EBADMSG, f"netlink: a message of {size} bytes")
                body = data[offset + _NLMSG.size:offset + size]
                offset += _align(size)
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return bodies  # the acknowledgement of a change
                if mtype == NLMSG_DONE:
                    return bodies
                bodies.append(body)
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return bodies
        raise OSError(errno.EBADMSG, f"netlink: no end after {MAX_REPLIES} replies")


def addresses() -> list[tuple[str, str]]:
    """(interface, "address/prefix") of every address on this server, like ``ip addr show``."""
    found = []
    names: dict[int, str | None] = {}
    for body in _talk(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        if len(body) < _IFADDR.size:
            raise OSError(errno.EBADMSG, f"netlink: an address message of {len(body)} bytes")
        family, prefix, _flags, _scope, index = _IFADDR.unpack_from(body)
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        attrs = _attrs(body, _align(_IFADDR.size))
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None:
            continue
        if index not in names:
            try:
                names[index] = socket.if_indextoname(index)
            except OSError:  # the interface went away since the dump
                names[index] = None
        name = names[index]
        if name is not None:
            found.append((name, f"{ipaddress.ip_address(raw)}/{prefix}"))
    return found


def _change(kind: int, flags: int, ip: str, prefix: int, iface: str) -> None:
    addr = ipaddress.ip_address(ip)
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    try:
        index = socket.if_nametoindex(iface)
    except OSError:
        raise OSError(errno.ENODEV, f"no interface {iface}") from None
    payload = (_IFADDR.pack(family, prefix, 0, 0, index)
               + _attr(IFA_LOCAL, addr.packed) + _attr(IFA_ADDRESS, addr.packed))
    _talk(kind, NLM_F_ACK | flags, payload)


def add_address(ip: str, prefix: int, iface: str) -> None:
    """``ip addr add IP/PREFIX dev IFACE``; EEXIST when it is there already."""
    _change(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ip, prefix, iface)


def del_address(ip: str, prefix: int, iface: str) -> None:
    """``ip addr del IP/PREFIX dev IFACE``; EADDRNOTAVAIL when it is not there."""
    _change(RTM_DELADDR, 0, ip, prefix, iface)
