"""ARP on Linux through an AF_PACKET socket: the duplicate-address probe and gratuitous ARP of
floating IPs, without spawning ``arping``.

``arping`` counts in whole seconds (``-w 1`` at best) and stays until its last packet is sent, so
a floating IP's start took over two seconds before the next resource could begin. Here the probe
waits ``timeout`` (a fraction of a second: a LAN answers ARP in well under a millisecond) and the
announcement sends its first packet at once and the repeats from a background thread.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
import time
from pathlib import Path

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa
REQUEST, REPLY = 1, 2


def _mac(iface: str) -> bytes:
    text = Path(f"/sys/class/net/{iface}/address").read_text().strip()
    return bytes.fromhex(text.replace(":", ""))


def _frame(src_mac: bytes, sender_ip: bytes, target_ip: bytes) -> bytes:
    eth = BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
    return eth + _ARP.pack(1, 0x0800, 6, 4, REQUEST, src_mac, sender_ip, b"\0" * 6, target_ip)


def _socket(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        s.bind((iface, ETH_P_ARP))
    except BaseException:  # no such interface: do not leak the socket
        s.close()
        raise
    return s


def probe(iface: str, ip: str, timeout: float = 0.2, count: int = 2) -> bool:
    """Does any other host answer ARP for ``ip`` on ``iface``? (RFC 5227 probe: sender IP 0)."""
    target = ipaddress.IPv4Address(ip).packed
    mac = _mac(iface)
    with _socket(iface) as s:
        deadline = time.monotonic() + timeout
        sends = [deadline - timeout + i * timeout / count for i in range(count)]
        while True:
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                s.send(_frame(mac, b"\0" * 4, target))
            if now >= deadline:
                return False
            wait = min([deadline, *sends[:1]]) - now
            if not select.select([s], [], [], max(wait, 0))[0]:
                continue
            data = s.recv(2048)
            if len(data) < 14 + _ARP.size:
                continue
            _, _, _, _, op, sha, spa, _, _ = _ARP.unpack_from(data, 14)
            if op == REPLY and spa == target and sha != mac:
                return True


def announce(iface: str, ip: str, count: int = 3, spacing: float = 0.2) -> None:
    """Gratuitous ARP for ``ip``: the first packet now, the others ``spacing`` apart, behind."""
    if count <= 0:
        return
    addr = ipaddress.IPv4Address(ip).packed
    frame = _frame(_mac(iface), addr, addr)
    s = _socket(iface)
    try:
        s.send(frame)
    except BaseException:  # the caller logs the error; the socket must not leak
        s.close()
        raise
    if count == 1:
        s.close()
        return

    def repeat() -> None:
        with s:
            for _ in range(count - 1):
                time.sleep(spacing)
                try:
                    s.send(frame)
                except OSError:  # the address or interface went away meanwhile
                    return

    threading.Thread(target=repeat, name=f"garp-{ip}", daemon=True).start()
