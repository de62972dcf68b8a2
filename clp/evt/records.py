"""One log record as it travels through the ``evt`` message queue: a compact UTF-8 JSON object.

Fields (unknown keys are ignored by the reader, so a newer sender does not break an older
``clusterpro_evt``):

======== ============ ==========================================================
t        float        wall-clock time of the event (seconds since the epoch)
module   str          module type (``nm``, ``trn``, ``logcmd``...): names ``log/<module>.log``
level    str          one of :data:`LEVELS`
event_id int | null   the product's event ID, when the event has one
alert    bool         also goes to the alert log (and syslog)
syslog   bool         also goes to syslog (optional, default false)
mail     bool         asked for the mail report (optional; handled by alertsync later)
trap     bool         asked for the SNMP trap (optional; handled by the alert service later)
server   str          short host name of the sender
pid      int          sender's process id
msg      str          the message text; truncated with :data:`TRUNCATED` to fit one queue message
======== ============ ==========================================================

JSON rather than ``struct``: the message text dominates the size, and a reader can report exactly
which field of a malformed record is wrong.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUNCATED = "...[truncated]"
MODULE_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")  # also a file name: no '/', no '..'
RESERVED_MODULES = frozenset({"alert"})  # log/alert.log is the alert log itself

Record = dict[str, Any]


class RecordError(ValueError):
    """A queue message that is not a valid record (the reader counts it and goes on)."""


def short_hostname() -> str:
    return socket.gethostname().split(".", 1)[0]


def make_record(module: str, level: str, msg: str, *, event_id: int | None = None,
                alert: bool = False, syslog: bool = False, mail: bool = False,
                trap: bool = False,
                t: float | None = None, server: str | None = None,
                pid: int | None = None) -> Record:
    rec: Record = {
        "t": time.time() if t is None else t,
        "module": module,
        "level": level,
        "event_id": event_id,
        "alert": alert,
        "server": short_hostname() if server is None else server,
        "pid": os.getpid() if pid is None else pid,
        "msg": msg,
    }
    if syslog:
        rec["syslog"] = True
    if mail:
        rec["mail"] = True
    if trap:
        rec["trap"] = True
    return rec


def _dump(rec: Record) -> bytes:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()


def encode(rec: Record, max_size: int) -> bytes:
    """Serialize ``rec`` into at most ``max_size`` bytes, shortening ``msg`` if it must."""
    data = _dump(rec)
    if len(data) <= max_size:
        return data
    msg_bytes = str(rec.get("msg", "")).encode()

    def shortened(keep: int) -> bytes:
        return _dump({**rec, "msg": msg_bytes[:keep].decode(errors="ignore") + TRUNCATED})

    if len(shortened(0)) > max_size:
        raise RecordError(f"record does not fit in {max_size} bytes even without its message")
    # binary search (JSON escaping makes the size non-linear); escaped text is never shorter
    lo, hi = 0, min(len(msg_bytes), max_size)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(shortened(mid)) <= max_size:
            lo = mid
        else:
            hi = mid - 1
    return shortened(lo)


def _check(rec: dict[str, Any], key: str, types: tuple[type, ...], optional: bool = False) -> None:
    if key not in rec:
        if optional:
            return
        raise RecordError(f"missing field {key!r}")
    value = rec[key]
    if isinstance(value, bool) and bool not in types:
        raise RecordError(f"field {key!r} has type bool")
    if not isinstance(value, types):
        raise RecordError(f"field {key!r} has type {type(value).__name__}")


def decode(data: bytes) -> Record:
    """Parse and validate one queue message; raise :class:`RecordError` when it is not a record."""
    try:
        rec = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"not a JSON record: {e}") from None
    if not isinstance(rec, dict):
        raise RecordError("not a JSON object")
    _check(rec, "t", (int, float))
    _check(rec, "module", (str,))
    _check(rec, "level", (str,))
    _check(rec, "event_id", (int, type(None)))
    _check(rec, "alert", (bool,))
    _check(rec, "syslog", (bool,), optional=True)
    _check(rec, "mail", (bool,), optional=True)
    _check(rec, "trap", (bool,), optional=True)
    _check(rec, "server", (str,))
    _check(rec, "pid", (int,))
    _check(rec, "msg", (str,))
    if not MODULE_RE.match(rec["module"]) or rec["module"] in RESERVED_MODULES:
        raise RecordError(f"invalid module name {rec['module']!r}")
    if rec["level"] not in LEVELS:
        raise RecordError(f"invalid level {rec['level']!r}")
    for key in ("server", "msg"):  # JSON may carry lone surrogates ("\\ud800") no sink can write
        rec[key] = rec[key].encode("utf-8", "replace").decode()
    return rec
