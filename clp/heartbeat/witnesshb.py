"""Witness heartbeat (``witnesshb``): heartbeats relayed by a witness server over HTTP.

Every round this server POSTs its record to ``http://<target>/v1/heartbeat/<cluster>`` on a kept
connection and gets back the latest record of every server of the cluster with its age at the
witness (:mod:`clp.witness.wire`). The witness has no key: each record is verified here like any
other (:class:`clp.heartbeat.base.Receiver`), and a record the witness received two intervals ago
or earlier is ignored, since it says nothing about the sender now. An unchanged record simply is
not news (``count_stale=False``).

The witness's age is only its word. The record's own send time is signed by the sender, so a
record sent more than two intervals plus :data:`CLOCK_SKEW` ago by this server's clock is refused
(a ``late`` drop): a witness that holds records back and hands them out later can keep a dead
server looking alive for that long at most, however many records it withheld.

One exchange at a time: if the previous round's exchange still runs (slow witness), the round is
skipped rather than queued. An exchange is bounded by ``min(2 * interval, 5 s)``; any failure
(refused, timeout, malformed answer) closes the connection, the next round reconnects, and the
witness counts as unreachable (:class:`DeviceHealth`) until an exchange succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat.base import DeviceHealth, HeartbeatPath, Outgoing, PathContext, percentiles
from clp.net import http11
from clp.net.hostport import host_header, split_host_port
from clp.net.http11 import Closed, HttpError
from clp.witness.wire import HEARTBEAT_PREFIX, MAX_ANSWER, WireError, decode_entries, post

log = logging.getLogger("clp.witnesshb")

MAX_EXCHANGE = 5.0
# Clock difference between two servers tolerated on top of the two intervals a record may take
# to go through the witness (the product requires synchronised clocks: NTP keeps them within
# milliseconds). It bounds how late a dishonest witness can hand out a record (docs/witness.md).
CLOCK_SKEW = 1.0


class WitnessHeartbeat(HeartbeatPath):
    type: ClassVar[str] = "witness"

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int) -> None:
        super().__init__(ctx, ic, index, log)
        if not ic.target:
            raise ValueError(f"{ic.name}: a witness heartbeat needs a target")
        self.target = ic.target
        self.host, self.port = split_host_port(ic.target)
        self.timeout = min(2 * ctx.interval, MAX_EXCHANGE)
        self.max_age_ms = int(2 * ctx.interval * 1000)
        self.max_late = 2 * ctx.interval + CLOCK_SKEW  # seconds since the record was sent
        self.health = DeviceHealth(ic.name, f"witness {ic.target}", log)
        self.skipped = 0  # rounds skipped because the previous exchange was still running
        self.old = 0  # records ignored because the witness had them for too long
        self.rtt: deque[float] = deque(maxlen=1000)
        self._request_head = (f"POST {HEARTBEAT_PREFIX}{ctx.cluster_name} HTTP/1.1\r\n"
                              f"Host: {host_header(self.host, self.port)}\r\n"
                              "User-Agent: clp-witnesshb\r\n"
                              "Content-Type: application/octet-stream\r\n").encode()
        self._task: asyncio.Task[None] | None = None
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._closed = False
        self._offered: dict[int, bytes] = {}  # sender -> the last record the witness offered

    @property
    def local_error(self) -> str | None:
        return self.health.error

    async def start(self) -> None:
        """Nothing to open: the first round connects (an unreachable witness at start is a
        DeviceHealth error of that round, like any later one)."""

    def send(self, out: Outgoing) -> None:
        if self._closed:
            return
        if self._task is not None and not self._task.done():
            self.skipped += 1
            return
        data = self.ctx.encode(out, self.index)
        self._task = asyncio.get_running_loop().create_task(self._round(data))

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._disconnect()

    def counters(self) -> dict[str, Any]:
        return {**super().counters(), "target": self.target, "skipped": self.skipped,
                "old": self.old, "rtt": percentiles(self.rtt)}

    # --- one round --------------------------------------------------------------------------

    async def _round(self, data: bytes) -> None:
        """Never raises: every failure is a DeviceHealth error (the path is down meanwhile)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._exchange(data)
            entries = decode_entries(body)
        except TimeoutError:
            self._failed(f"no answer within {self.timeout:g} s")
            return
        except Closed:
            self._failed("the witness closed the connection without answering")
            return
        except (OSError, HttpError, WireError) as e:
            self._failed(str(e) or type(e).__name__)
            return
        except Exception as e:  # a bug must not kill the heartbeat loop: report it as a fault
            log.exception("%s: unexpected error talking to the witness", self.name)
            self._failed(f"internal error: {e!r}")
            return
        self.rtt.append(time.monotonic() - started)
        self.sent += 1
        self.health.ok()
        self._accept(entries, time.time())

    def _accept(self, entries: list[tuple[int, int, bytes]], now: float) -> None:
        """``now``: this server's wall clock, to compare with the records' send times."""
        for sender, age_ms, record in entries:
            if sender not in self.peers:
                continue  # our own record, or a server that does not use this path
            if age_ms >= self.max_age_ms:
                self.old += 1
                continue
            if self._offered.get(sender) == record:
                continue  # unchanged since the last answer: not news (and not late again)
            self._offered[sender] = record
            self.receiver.accept(record, f"witness {self.target}", expect_sender=sender,
                                 count_stale=False, max_late=(now, self.max_late))

    def _failed(self, reason: str) -> None:
        self.send_errors += 1
        self._disconnect()
        self.health.failed(reason)

    async def _exchange(self, data: bytes) -> bytes:
        """POST ``data``; the answer's body. Reuses the connection, opens one when needed."""
        if self._conn is not None:
            try:
                return await self._post(data)
            except (ConnectionError, Closed):
                self._disconnect()  # the witness closed the kept connection: one fresh try
        self._conn = await asyncio.open_connection(self.host, self.port, limit=http11.LINE_LIMIT)
        return await self._post(data)

    async def _post(self, data: bytes) -> bytes:
        assert self._conn is not None
        body, keep = await post(self._conn, self._request_head, data, MAX_ANSWER)
        if not keep:
            self._disconnect()
        return body

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn[1].close()
            self._conn = None
