"""``witness`` network partition resolver: arbitration by the witness server, which only one side
of a partition can win (docs/network-partition.md, "Witness arbitration").

At a loss this server *claims* the lost servers; in the background it *renews*, naming the
servers it hears (:mod:`clp.core.arbiter` decides, :mod:`clp.witness.arbitration` carries it).
An exchange not answered within the resolver's ``timeout``, refused, or whose answer is not
sealed with this cluster's arbiter key counts as not granted: isolated at a loss, no proof in the
background. One exchange at a time on a kept connection, in order: a claim waits for a renewal
in flight (within its own timeout), so the witness sees this server's requests in the order of
their sequence numbers.
"""

from __future__ import annotations

import asyncio
import contextlib

from clp.core.arbiter import Answer
from clp.net import http11
from clp.net.hostport import host_header, split_host_port
from clp.net.http11 import Closed, HttpError
from clp.witness import wire
from clp.witness.arbitration import ARBITER_PREFIX, MAX_BODY, Request, seal, unseal
from clp.witness.wire import WireError

DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 3.0


def budget(timeout: float) -> float:
    """Worst-case seconds of one claim: one exchange (and the one it waited for) within
    ``timeout``."""
    return timeout


class WitnessArbiter:
    def __init__(self, target: str, cluster: str, key: bytes, me: str, timeout: float,
                 incarnation: int) -> None:
        """``incarnation``: this start's (greater than every earlier start's, whatever the
        clock says: a witness refuses what is not newer than the last request it took)."""
        self.host, self.port = split_host_port(target)
        self.cluster, self.key, self.me, self.timeout = cluster, key, me, timeout
        self.incarnation = incarnation
        self.epoch = ""
        self._seq = 0
        self._lock = asyncio.Lock()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._head = (f"POST {ARBITER_PREFIX}{cluster} HTTP/1.1\r\n"
                      f"Host: {host_header(self.host, self.port)}\r\n"
                      "User-Agent: clp-np\r\nContent-Type: text/plain\r\n").encode()

    async def claim(self, lost: tuple[str, ...], lease: float) -> Answer:
        return await self._ask("claim", lost, lease)

    async def renew(self, heard: tuple[str, ...], lease: float) -> Answer:
        return await self._ask("renew", heard, lease)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn[1].close()
            self._conn = None

    async def _ask(self, op: str, names: tuple[str, ...], lease: float) -> Answer:
        try:
            async with asyncio.timeout(self.timeout), self._lock:
                answer = await self._exchange(op, names, lease)
                if answer is None:  # the witness restarted: once more with its epoch
                    answer = await self._exchange(op, names, lease)
                return answer or Answer(False, "the witness's epoch changed twice in a row")
        except TimeoutError:
            self.close()
            return Answer(False, f"the witness did not answer within {self.timeout:g} s")
        except (OSError, HttpError, Closed, WireError) as e:
            self.close()
            return Answer(False, f"the witness could not be asked: {e}")

    async def _exchange(self, op: str, names: tuple[str, ...], lease: float) -> Answer | None:
        """One request; None when it was refused for an old epoch (the new one is kept). A
        kept connection the witness closed meanwhile gets one fresh try, as a new request (the
        first may have been granted; a claim or a renewal granted twice is granted once)."""
        for fresh in (self._conn is None, True):
            if self._conn is None:
                self._conn = await asyncio.open_connection(self.host, self.port,
                                                           limit=http11.LINE_LIMIT)
            self._seq += 1
            req = Request(op, self.me, names, lease, self.epoch, self.incarnation, self._seq)
            try:
                body = await self._post(seal(self.key, self.cluster, "req", req.doc()))
                break
            except (ConnectionError, Closed):
                self.close()
                if fresh:
                    raise
        doc = unseal(self.key, self.cluster, "ans", body)
        if doc.get("seq") != req.seq or not isinstance(doc.get("granted"), bool):
            raise WireError("the answer is not the answer to this request")
        if doc.get("epoch") != self.epoch:
            self.epoch = str(doc.get("epoch"))
            return None
        left = doc.get("left", {})
        if not isinstance(left, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                for k, v in left.items()):
            raise WireError(f"left {left!r} is not a map of server names to seconds")
        return Answer(doc["granted"], str(doc.get("reason", "")),
                      {k: float(v) for k, v in left.items() if k in names})

    async def _post(self, data: bytes) -> bytes:
        assert self._conn is not None
        body, keep = await wire.post(self._conn, self._head, data, MAX_BODY)
        if not keep:
            self.close()
        return body
