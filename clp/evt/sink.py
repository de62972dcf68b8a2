"""Where ``clusterpro_evt`` writes records: per-module log files, the alert log, syslog.

* ``log/<module>.log``: ``YYYY/MM/DD HH:MM:SS.mmm LEVEL [event_id] message`` (local time,
  ``[-]`` without an event ID; continuation lines of a multi-line message indented by 4 spaces).
* ``log/alert.log``: one JSON object per line, ``{"time", "server", "module", "event_id",
  "level", "message"}``; ``time`` is ISO 8601 with the UTC offset so alert logs of servers in
  different time zones merge correctly.
* syslog: ``<PRI>clusterpro: <type: MODULE><event: ID> message`` on ``/dev/log`` (facility
  daemon), the product's layout. Without a syslog socket the sink warns once and skips.

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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from clp.alert.spool import SpoolWriter
from clp.evt.records import Record

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_GENERATIONS = 2
LOG_MODE = 0o640
SYSLOG_FACILITY_DAEMON = 3
SYSLOG_SEVERITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}
SYSLOG_MAX = 2048  # bytes per datagram; longer messages are cut
SYSLOG_RETRY = 60.0  # seconds before trying a missing syslog socket again

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


class SyslogSink:
    """Datagrams to the local syslog socket; a missing socket is warned about once, not fatal."""

    def __init__(self, path: str = "/dev/log", ident: str = "clusterpro",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.ident = ident
        self.clock = clock
        self.sock: socket.socket | None = None
        self.warned = False
        self.failed = 0
        self._next_try = 0.0

    def _connect(self) -> bool:
        if self.sock is not None:
            return True
        if self.clock() < self._next_try:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            self._next_try = self.clock() + SYSLOG_RETRY
            if not self.warned:
                self.warned = True
                log.warning("syslog socket %s unusable (%s): syslog output skipped", self.path,
                            e.strerror or e)
            return False
        self.sock = sock
        return True

    def format(self, rec: Record) -> bytes:
        pri = SYSLOG_FACILITY_DAEMON * 8 + SYSLOG_SEVERITY.get(rec["level"], 6)
        eid = "" if rec["event_id"] is None else rec["event_id"]
        text = f"<{pri}>{self.ident}: <type: {rec['module']}><event: {eid}> {rec['msg']}"
        return text.encode()[:SYSLOG_MAX]

    def send(self, rec: Record) -> bool:
        if not self._connect():
            self.failed += 1
            return False
        assert self.sock is not None
        try:
            self.sock.send(self.format(rec))
        except OSError:  # syslogd restarted: reconnect on the next record
            self.close()
            self.failed += 1
            return False
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


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
        if self.syslog is not None and (rec["alert"] or rec.get("syslog")):
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

    def close(self) -> None:
        if self.syslog is not None:
            self.syslog.close()
        if self.spool is not None:
            self.spool.close()
