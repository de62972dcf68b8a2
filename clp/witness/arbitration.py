"""Witness arbitration on the wire: ``POST /v1/arbiter/<cluster>`` (docs/witness.md).

The decisions are :class:`clp.core.arbiter.Arbiter`'s; this module carries them. Unlike a
relayed heartbeat, a grant cannot be checked by the servers afterwards, so both directions are
authenticated with the cluster's *arbiter key* (derived from the cluster key, :func:`clp.keys.
arbiter_key`): the witness holds that key only, and it lets nobody forge heartbeats.

A body (request or answer) is ``<hex HMAC-SHA256>\\n<JSON>``, the MAC over a direction tag
(``req`` / ``ans``), the cluster name and the JSON bytes, so an answer is never taken for a
request, nor a record of one cluster for another.

- Request: ``{"op": "claim"|"renew", "server", "names", "lease", "epoch", "inc", "seq"}``.
  ``names``: the lost servers (claim) or the servers the sender hears (renew); ``lease``:
  seconds; ``inc``: the sender's incarnation (each start of its cluster service has a greater
  one, whatever its clock says); ``seq``: its requests, counted from 1 in an incarnation.
- Answer: ``{"granted", "reason", "epoch", "seq", "left"}``, ``seq`` the request's, ``left``
  (a granted claim) per lost server the seconds its last grant still proves.

Replays: ``epoch`` is the witness's, drawn at its start, and (``inc``, ``seq``) grows with every
request of a server within an epoch; a request with another epoch is answered, not granted,
with the current one (the server asks again with it), and one whose (``inc``, ``seq``) is not
above the last seen from that server is refused. So a recorded request is worth nothing later,
and nothing recorded before a witness restart is worth anything after it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clp.core.arbiter import MAX_SERVERS, Answer, Arbiter
from clp.witness.wire import CLUSTER_RE, WireError

ARBITER_PREFIX = "/v1/arbiter/"
DEFAULT_HOLD = 60.0  # seconds a restarted witness grants nothing (longer than any lease)
OPS = ("claim", "renew")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
EPOCH_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_BODY = 4096


def seal(key: bytes, cluster: str, direction: str, doc: Mapping[str, Any]) -> bytes:
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return _mac(key, cluster, direction, data).encode() + b"\n" + data


def unseal(key: bytes, cluster: str, direction: str, body: bytes) -> dict[str, Any]:
    """The JSON object of a sealed body, or WireError naming what is wrong."""
    if len(body) > MAX_BODY:
        raise WireError(f"an arbitration body has at most {MAX_BODY} bytes, not {len(body)}")
    mac, sep, data = body.partition(b"\n")
    if not sep or not re.fullmatch(rb"[0-9a-f]{64}", mac):
        raise WireError("an arbitration body starts with a 64-digit hex MAC and a newline")
    if not hmac.compare_digest(mac.decode(), _mac(key, cluster, direction, data)):
        raise WireError(f"the MAC does not match (not the arbiter key of cluster {cluster!r})")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"the JSON does not parse: {e}") from None
    if not isinstance(doc, dict):
        raise WireError("the JSON is not an object")
    return doc


def _mac(key: bytes, cluster: str, direction: str, data: bytes) -> str:
    return hmac.new(key, f"{direction}\n{cluster}\n".encode() + data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Request:
    op: str
    server: str
    names: tuple[str, ...]
    lease: float
    epoch: str
    inc: int
    seq: int

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Request:
        """From a request's JSON, or WireError naming the first field that is wrong."""
        op, server, names = doc.get("op"), doc.get("server"), doc.get("names")
        lease, epoch = doc.get("lease"), doc.get("epoch")
        inc, seq = doc.get("inc"), doc.get("seq")
        if op not in OPS:
            raise WireError(f"op {op!r} is not one of {', '.join(OPS)}")
        if not isinstance(server, str) or not NAME_RE.match(server):
            raise WireError(f"server {server!r} is not a server name")
        if (not isinstance(names, list) or len(names) > MAX_SERVERS
                or not all(isinstance(n, str) and NAME_RE.match(n) for n in names)):
            raise WireError(f"names: a list of at most {MAX_SERVERS} server names")
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0:
            raise WireError(f"lease {lease!r} is not a positive number of seconds")
        if not isinstance(epoch, str) or not (epoch == "" or EPOCH_RE.match(epoch)):
            raise WireError(f"epoch {epoch!r} is not 16 hex digits (or empty)")
        for name, value in (("inc", inc), ("seq", seq)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 63:
                raise WireError(f"{name} {value!r} is not a positive 63-bit integer")
        assert isinstance(inc, int) and isinstance(seq, int)
        return cls(op, server, tuple(names), float(lease), epoch, inc, seq)

    def doc(self) -> dict[str, Any]:
        return {"op": self.op, "server": self.server, "names": list(self.names),
                "lease": self.lease, "epoch": self.epoch, "inc": self.inc, "seq": self.seq}


@dataclass
class Arbitration:
    """The witness's side: an :class:`Arbiter` for every cluster it has an arbiter key of."""

    keys: Mapping[str, bytes]  # cluster name -> arbiter key
    hold: float = DEFAULT_HOLD
    clock: Callable[[], float] = time.monotonic
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    arbiters: dict[str, Arbiter] = field(init=False, default_factory=dict)
    _seq: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.keys:
            if not CLUSTER_RE.match(name):
                raise ValueError(f"cluster name {name!r}: 1 to 31 of A-Z a-z 0-9 _ -")
        now = self.clock()
        self.arbiters = {name: Arbiter(now, self.hold) for name in self.keys}

    def handle(self, cluster: str, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, body) for a request posted for ``cluster``. Errors are plain text;
        a well-formed, authentic request always gets a sealed answer (granted or not)."""
        key = self.keys.get(cluster)
        if key is None:
            return 404, f"this witness arbitrates no cluster {cluster[:40]!r}\n".encode()
        try:
            req = Request.parse(unseal(key, cluster, "req", body))
        except WireError as e:
            return 400, f"{e}\n".encode()
        if req.epoch != self.epoch:
            answer = Answer(False, "the witness's epoch changed (it restarted): ask again")
        elif (req.inc, req.seq) <= self._seq.get((cluster, req.server), (0, 0)):
            answer = Answer(False, f"request {req.inc}/{req.seq} is not above the last one of "
                                   f"{req.server} (a replayed or reordered request)")
        else:
            self._seq[(cluster, req.server)] = (req.inc, req.seq)
            arbiter, now = self.arbiters[cluster], self.clock()
            if req.op == "claim":
                answer = arbiter.claim(req.server, req.names, req.lease, now)
            else:
                answer = arbiter.renew(req.server, req.names, req.lease, now)
        return 200, seal(key, cluster, "ans", {"granted": answer.granted, "reason": answer.reason,
                                               "epoch": self.epoch, "seq": req.seq,
                                               "left": {s: round(v, 6)
                                                        for s, v in answer.left.items()}})

    def summary(self) -> dict[str, Any]:
        now = self.clock()
        return {"epoch": self.epoch, "hold": self.hold,
                "clusters": {name: a.summary(now) for name, a in sorted(self.arbiters.items())}}
