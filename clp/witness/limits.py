"""How many connections the witness holds, in all and per client (docs/witness.md).

Anyone can connect to the witness, so its connections are capped twice: in all, below the
process's open-file limit (past it ``accept`` fails with EMFILE and every client is refused, the
cluster servers with the rest), and per client address, so one client cannot take every slot.
An IPv6 client is counted by its /64, since one host commonly owns a whole /64.
"""

from __future__ import annotations

import contextlib
import ipaddress
import resource

from clp.net.addresses import unscoped

MAX_CONNECTIONS = 4096
MAX_PER_CLIENT = 64  # a cluster server holds one connection; many clusters may share a NAT
FD_MARGIN = 64  # descriptors kept for the listening sockets, the log and the interpreter


def open_file_limit() -> int:
    """The soft RLIMIT_NOFILE (a large number when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never above the hard limit, never
    lowered); the soft limit now. A refusal (a hard limit the kernel does not allow) keeps the
    current one: :func:`connection_cap` then caps the connections below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_file_limit()


def connection_cap(wanted: int, open_files: int) -> int:
    """The connections the witness may hold: ``wanted``, or fewer if the open-file limit
    ``open_files`` leaves less room (at least 1)."""
    return max(1, min(wanted, open_files - FD_MARGIN))


def client_key(address: str) -> str:
    """Whose connection it is: the IPv4 address, or the /64 of an IPv6 one."""
    ip = unscoped(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
