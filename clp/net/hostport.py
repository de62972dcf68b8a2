"""``host:port`` as clp.conf writes a witness or HTTP target (``[v6]:port`` for IPv6).

One parser for every reader: the schema's ``host-port`` format
(``clp.config.validation.is_host_port``), the witness and HTTP probe clients, and
``clpwitnessd --listen``; ``ValueError`` names what is wrong.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def split_host_port(value: str) -> tuple[str, int]:
    """``"198.18.0.254:29005"`` -> ``("198.18.0.254", 29005)``; ``"[::1]:80"`` -> ``("::1", 80)``.
    The host is a DNS name, an IPv4 address, or an IPv6 address in brackets."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (for example 198.18.0.254:29005)")
    if host.startswith("[") and host.endswith("]"):
        if not _is_ip(host[1:-1], 6):
            raise ValueError(f"{value!r}: {host[1:-1]!r} in brackets is not an IPv6 address")
        return host[1:-1], int(port)
    if ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, [{host}]:{port}")
    if not (_HOST.match(host) or _is_ip(host, 4)):
        raise ValueError(f"{value!r}: {host!r} is not a host name or an IPv4 address")
    return host, int(port)


def host_header(host: str, port: int) -> str:
    """The ``Host:`` header value for ``host``/``port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
