"""Where ``clusterpro_evt`` writes records: per-module log files, the alert log, syslog.

* ``log/<module>.log``: ``YYYY/MM/DD HH:MM:SS.mmm LEVEL [event_id] message`` (local time,
  ``[-]`` without an event ID; continuation lines of a multi-line message indented by 4 spaces).
* ``log/alert.log``: one JSON object per line, ``{"time", "server", "module", "event_id",
  "level", "message"}``; ``time`` is ISO 8601 with the UTC offset so alert logs of servers in
  different time zones merge correctly.
* syslog: ``<PRI>Mmm dd hh:mm:ss clusterpro: <type: MODULE><event: ID> message`` datagrams on
  ``/dev/log``: the product's tag and message behind the RFC 3164 header glibc writes, facility
  from ``cluster.syslog`` (daemon by default), severity from the level, at most
  :data:`SYSLOG_MAX` bytes. An unusable socket is logged once and its records wait in a bounded
  backlog until it is back (:class:`SyslogSink`; docs/syslog.md).

Files are opened per write with ``O_APPEND``: a file removed or moved by an operator (or log
collection) is simply recreated, and two writers never interleave within a line. Rotation is by
size: ``x.log`` -> ``x.log.1`` -> ... -> ``x.log.<generations>`` (the oldest is deleted).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from clp.alert.spool import SpoolWriter
from clp.config.cluster_schema import SYSLOG_FACILITIES
from clp.evt.records import TRUNCATED, Record

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_GENERATIONS = 2
LOG_MODE = 0o640
SYSLOG_SEVERITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}
SYSLOG_FACILITY_DAEMON = SYSLOG_FACILITIES["daemon"]
SYSLOG_MAX = 2048  # bytes per datagram, header included; longer messages are cut
SYSLOG_RETRY = 1.0  # seconds between attempts to reach a missing syslog socket
SYSLOG_BACKLOG = 1000  # datagrams kept while the syslog socket is unusable
SYSLOG_SEND_TIMEOUT = 0.5  # seconds a send may block on a syslogd that does not read
SYSLOG_FLUSH_BUDGET = 1.0  # seconds one flush may spend: the log files and the spool come first
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

log = logging.getLogger("clp.evt")


def format_time(t: float) -> str:
    lt = time.localtime(t)
    return time.strftime("%Y/%m/%d %H:%M:%S", lt) + f".{int(t * 1000) % 1000:03d}"


def format_line(rec: Record) -> str:
    eid = "-" if rec["event_id"] is None else rec["event_id"]
    msg = rec["msg"].rstrip("\n").replace("\n", "\n    ")
    return f"{format_time(rec['t'])} {rec['level']} [{eid}] {msg}\n"


def alert_json(rec: Record) -> str:
    when = datetime.fromtimestamp(rec["t"]).astimezone().isoformat(timespec="milliseconds")
    return json.dumps({"time": when, "server": rec["server"], "module": rec["module"],
                       "event_id": rec["event_id"], "level": rec["level"],
                       "message": rec["msg"]}, ensure_ascii=False) + "\n"


class RotatingFile:
    """An append-only text file rotated by size."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 generations: int = DEFAULT_GENERATIONS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.generations = generations

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)

    def write(self, text: str) -> None:
        data = text.encode()
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            if size and size + len(data) > self.max_bytes:
                os.close(fd)
                fd = -1
                self.rotate()
                fd = self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            if fd >= 0:
                os.close(fd)

    def backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def rotate(self) -> None:
        """``x.log.(n-1)`` -> ``x.log.n`` for each kept generation, ``x.log`` -> ``x.log.1``."""
        if self.generations <= 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        for n in range(self.generations, 0, -1):
            src = self.path if n == 1 else self.backup(n - 1)
            with contextlib.suppress(FileNotFoundError):
                os.replace(src, self.backup(n))


def rfc3164_time(t: float) -> str:
    """``Mmm dd hh:mm:ss`` in local time, English month names whatever the locale (as glibc)."""
    lt = time.localtime(t)
    return f"{MONTHS[lt.tm_mon - 1]} {lt.tm_mday:2d} " + time.strftime("%H:%M:%S", lt)


def cut_utf8(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of UTF-8 ``data``, never ending inside a character."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and data[end] & 0xC0 == 0x80:  # data[end] continues a character: drop it all
        end -= 1
    return data[:end]


class SyslogSink:
    """Datagrams to the local syslog socket; an unusable socket is never fatal, never silent.

    A datagram that cannot be sent waits in a backlog (at most ``backlog_size``; the oldest
    beyond are dropped and counted in ``lost``) and goes out, in order, as soon as the socket
    takes it again: a broken connection (syslogd restarted) is reconnected at once, a missing
    socket is tried again every :data:`SYSLOG_RETRY` seconds (on the next record or
    :meth:`flush`). Losing the socket and getting it back are each logged once, the second
    with how many waiting records were sent and how many were lost. Sends time out after
    :data:`SYSLOG_SEND_TIMEOUT`, so a stuck syslogd cannot stop the log files being written.
    """

    def __init__(self, path: str = "/dev/log", facility: int = SYSLOG_FACILITY_DAEMON,
                 ident: str = "clusterpro", backlog_size: int = SYSLOG_BACKLOG,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.backlog_size = backlog_size
        self.facility = facility
        self.ident = ident
        self.enabled = True
        self.clock = clock
        self.sock: socket.socket | None = None
        self.backlog: deque[bytes] = deque()
        self.sent = 0
        self.lost = 0  # dropped from a full backlog (or by turning output off)
        self.down = False
        self._lost_reported = 0
        self._next_try = 0.0

    def configure(self, facility: int, enabled: bool) -> None:
        self.facility = facility
        if self.enabled and not enabled and self.backlog:
            self.lost += len(self.backlog)
            log.warning("syslog output turned off: %d records waiting for %s dropped",
                        len(self.backlog), self.path)
            self.backlog.clear()
        self.enabled = enabled

    def format(self, rec: Record) -> bytes:
        """``<PRI>Mmm dd hh:mm:ss clusterpro: <type: MODULE><event: ID> message``: the RFC 3164
        header glibc's syslog() writes, without ``[pid]`` so the tag is the product's
        ``clusterpro:``; cut to :data:`SYSLOG_MAX` bytes on a character boundary."""
        pri = self.facility * 8 + SYSLOG_SEVERITY.get(rec["level"], 6)
        eid = "" if rec["event_id"] is None else rec["event_id"]
        head = f"<{pri}>{rfc3164_time(rec['t'])} {self.ident}: ".encode()
        body = f"<type: {rec['module']}><event: {eid}> {rec['msg']}".encode()
        room = SYSLOG_MAX - len(head)
        if len(body) > room:
            body = cut_utf8(body, room - len(TRUNCATED)) + TRUNCATED.encode()
        return head + body

    def send(self, rec: Record) -> bool:
        """Send one record (after any waiting); False if it had to wait in the backlog."""
        self.backlog.append(self.format(rec))
        if len(self.backlog) > self.backlog_size:
            self.backlog.popleft()
            self.lost += 1
        return self.flush()

    def flush(self) -> bool:
        """Send what waits in the backlog; True when nothing is left waiting."""
        if not self.backlog:
            return True
        if self.sock is None and self.clock() < self._next_try:
            return False
        waiting = len(self.backlog)
        reused = self.sock is not None
        try:
            done = self._deliver()
        except OSError as e:
            self.close()
            if not reused:
                return self._went_down(e)
            try:
                done = self._deliver()  # the connection broke (syslogd restarted): reconnect
            except OSError as e2:
                self.close()
                return self._went_down(e2)
        if not done:
            return False
        self._came_back(waiting)
        return True

    def _deliver(self) -> bool:
        """Send the backlog, for at most :data:`SYSLOG_FLUSH_BUDGET`; True when all went."""
        if self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(SYSLOG_SEND_TIMEOUT)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self.sock = sock
        deadline = time.monotonic() + SYSLOG_FLUSH_BUDGET
        while self.backlog:
            if time.monotonic() > deadline:  # a slow syslogd: the rest on the next flush
                return False
            self.sock.send(self.backlog[0])
            self.backlog.popleft()
            self.sent += 1
        return True

    def _went_down(self, e: OSError) -> bool:
        self._next_try = self.clock() + SYSLOG_RETRY
        if not self.down:
            self.down = True
            log.warning("syslog socket %s unusable (%s): records for syslog wait (up to %d) "
                        "and are sent when it is back, tried every %g s", self.path,
                        e.strerror or e, self.backlog_size, SYSLOG_RETRY)
        return False

    def _came_back(self, sent: int) -> None:
        if not self.down:
            return
        self.down = False
        lost = self.lost - self._lost_reported
        self._lost_reported = self.lost
        log.warning("syslog socket %s usable again: %d waiting records sent, %d dropped "
                    "from a full backlog", self.path, sent, lost)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def shutdown(self) -> None:
        """At exit: a last attempt, and the records that never reached syslog said."""
        self._next_try = 0.0
        if not self.flush():
            self.lost += len(self.backlog)
            log.warning("%d records never reached syslog (socket %s unusable)",
                        len(self.backlog), self.path)
        self.close()


class EventWriter:
    """Routes one decoded record to every place it belongs. Alerts, and records asking for a
    mail or a trap, also go to the alert service's spool (not this service's own records: a
    full spool is reported as one of them)."""

    def __init__(self, log_dir: Path, alert_log: Path, syslog: SyslogSink | None,
                 max_bytes: int = DEFAULT_MAX_BYTES,
                 generations: int = DEFAULT_GENERATIONS,
                 spool: SpoolWriter | None = None) -> None:
        self.spool = spool
        self.spool_refused = 0  # in the current streak
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.generations = generations
        self.alerts = RotatingFile(alert_log, max_bytes, generations)
        self.syslog = syslog
        self.files: dict[str, RotatingFile] = {}

    def module_file(self, module: str) -> RotatingFile:
        f = self.files.get(module)
        if f is None:
            f = self.files[module] = RotatingFile(self.log_dir / f"{module}.log", self.max_bytes,
                                                  self.generations)
        return f

    def write(self, rec: Record) -> None:
        self.module_file(rec["module"]).write(format_line(rec))
        if rec["alert"]:
            self.alerts.write(alert_json(rec))
        if self.syslog is not None and self.syslog.enabled and (rec["alert"] or rec.get("syslog")):
            self.syslog.send(rec)
        if self.spool is not None and rec["module"] != "evt" and (
                rec["alert"] or rec.get("mail") or rec.get("trap")):
            self._to_spool(rec)

    def _to_spool(self, rec: Record) -> None:
        assert self.spool is not None
        if self.spool.put(rec):
            if self.spool_refused:
                log.warning("alert spool takes alerts again; %d alerts were not reported by "
                            "mail or trap meanwhile (they are in the alert log)",
                            self.spool_refused, extra={"alert": True})
                self.spool_refused = 0
            return
        self.spool_refused += 1
        if self.spool_refused == 1:
            log.error("alert spool %s refused an alert (%s): it and the next ones are not "
                      "reported by mail or trap until it takes them again; is "
                      "clusterpro_alertsync running?", self.spool.outbox,
                      self.spool.why,
                      extra={"alert": True})

    def flush(self) -> None:
        """Retry what waits for syslog (called when the queue is idle)."""
        if self.syslog is not None:
            self.syslog.flush()

    def close(self) -> None:
        if self.syslog is not None:
            self.syslog.shutdown()
        if self.spool is not None:
            self.spool.close()
