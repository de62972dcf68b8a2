"""IP addresses as the kernel and clp.conf write them, compared as addresses.

``2001:DB8:0::1`` in clp.conf and ``2001:db8::1`` from ``recvfrom`` are one address, and a
``%scope`` (the interface of an IPv6 link-local address) names how to reach it, not which
address it is. Every place that matches a source address against a configured one (ping
replies, witness clients) compares :func:`unscoped` values; LAN heartbeat senders are matched
the same way in C (``native/hbrx.c``: the address bytes, the scope left out).
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def unscoped(text: str | Address) -> Address | None:
    """The address ``text`` names, without its ``%scope``; None when it is not an address."""
    try:
        return ipaddress.ip_address(str(text).split("%", 1)[0])
    except ValueError:
        return None
