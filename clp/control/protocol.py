"""The control API's wire format: one JSON object per line over a root-only UNIX socket.

Request ``{"op": "suspend", "args": {...}}``; response ``{"ok": true, "code": 0, "message": "...",
"data": {...}}``. ``code`` is the command exit code the client should return, so every client (the
``clp*`` commands, the trn gateway, the WebUI) reports the daemon's verdict the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 64 * 1024


class ProtocolError(Exception):
    """A request or response that is not what the protocol says."""


@dataclass
class Reply:
    ok: bool
    code: int = 0
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        return (json.dumps({"ok": self.ok, "code": self.code, "message": self.message,
                            "data": self.data}) + "\n").encode()

    @classmethod
    def from_obj(cls, obj: object) -> Reply:
        if not isinstance(obj, dict) or not isinstance(obj.get("ok"), bool):
            raise ProtocolError(f"malformed reply: {obj!r:.200}")
        return cls(obj["ok"], int(obj.get("code", 0)), str(obj.get("message", "")),
                   dict(obj.get("data") or {}))


def parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"request is not JSON: {e}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
        raise ProtocolError("request must be an object with a string 'op'")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("'args' must be an object")
    return obj["op"], args


def request_line(op: str, args: dict[str, Any] | None = None) -> bytes:
    return (json.dumps({"op": op, "args": args or {}}) + "\n").encode()
