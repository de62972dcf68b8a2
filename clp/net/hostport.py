"""``host:port`` as clp.conf writes a witness or HTTP target (``[v6]:port`` for IPv6).

The schema's ``host-port`` format (``clp.config.validation.is_host_port``) has already refused a
malformed value; this only splits a valid one, and raises ``ValueError`` for anything else so a
command-line caller (``clpwitnessd --listen``) gets a clear message.
"""

from __future__ import annotations


def split_host_port(value: str) -> tuple[str, int]:
    """``"198.18.0.254:29005"`` -> ``("198.18.0.254", 29005)``; ``"[::1]:80"`` -> ``("::1", 80)``.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (for example 198.18.0.254:29005)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, [{host}]:{port}")
    if not host:
        raise ValueError(f"{value!r}: empty host")
    return host, int(port)


def host_header(host: str, port: int) -> str:
    """The ``Host:`` header value for ``host``/``port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
