"""Readiness and stopping told to systemd (``sd_notify``), without linking libsystemd.

The units in ``systemd/`` are ``Type=notify``: systemd counts a service as started only when it
sends ``READY=1`` to the datagram socket named by ``$NOTIFY_SOCKET``, so the next service in the
seed's order (``After=``) starts when the previous one can really serve, not when its process
exists. ``stopping()`` tells systemd that a stop has begun (``clusterpro`` can take minutes to stop
its groups, and ``systemctl status`` then says so).

Where nothing asked for it (clpsupervise, SMF, a shell, the tests) ``NOTIFY_SOCKET`` is unset and
every call is a no-op returning False. A send that fails (the manager restarted, a full socket
buffer) must never stop a daemon: it returns False and is logged once per process, not on every
call.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("clp.platform.sdnotify")

_failed_once = False
_target = ""  # NOTIFY_SOCKET, once ready() took it out of the environment


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one datagram; True if it was sent."""
    target = os.environ.get("NOTIFY_SOCKET", "") or _target
    if not target:
        return False
    if target[0] not in "/@":  # vsock: and other transports of newer systemd: not ours to guess
        _failed(f"NOTIFY_SOCKET {target!r} is neither a path nor an abstract '@name'")
        return False
    address = "\0" + target[1:] if target[0] == "@" else target
    message = "\n".join(f.replace("\n", " ") for f in fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.send(message)
    except OSError as e:
        _failed(f"cannot notify the service manager at {target}: {e}")
        return False
    return True


def ready(status: str = "") -> bool:
    """This service now serves: the ones ordered after it may start. ``NOTIFY_SOCKET`` then
    leaves the environment (kept here for :func:`stopping`), so the scripts and applications
    the service starts do not inherit it and cannot speak for it."""
    global _target
    _target = os.environ.pop("NOTIFY_SOCKET", "") or _target
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def stopping() -> bool:
    """This service has begun to stop."""
    return notify("STOPPING=1")


def _failed(why: str) -> None:
    global _failed_once
    if not _failed_once:
        _failed_once = True
        log.warning("%s (further notifications failing are not logged)", why)
