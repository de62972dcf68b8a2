"""Logging for every clp service: the ``clp`` logger feeds ``clusterpro_evt`` through its queue.

Callers log with ``extra={"event_id": N, "alert": True}`` when a line is a product event, and
``"evt_module": "rm"`` when it belongs to another of the product's modules than the process's
(the monitors of ``clusterpro`` log as ``rm``, in ``log/rm.log``). A line is
an alert when ``alert=True`` is given, or when it is ERROR or worse and carries an event ID (an
unexpected error without an event ID is logged, not alerted: alerts are for operators).

Problems (WARNING and above) also go to stderr, so a supervisor's capture shows them even when
``clusterpro_evt`` is down. Records the queue refused are counted; the first record the queue
accepts again is followed by a WARNING "N log records dropped".
"""

from __future__ import annotations

import logging
import os
import sys

from clp.evt.records import LEVELS, MODULE_RE, RESERVED_MODULES, Record, make_record
from clp.evt.sender import EventSender
from clp.paths import InstallRoot

_MARK = "_clp_evt_handler"  # set on the handlers we install, so a second call replaces them


class EventHandler(logging.Handler):
    """Turns LogRecords into queue records for one module."""

    def __init__(self, sender: EventSender, module: str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.sender = sender
        self.module = module
        self.reported = 0  # sender.dropped already announced
        self.setFormatter(logging.Formatter("%(message)s"))

    def to_record(self, record: logging.LogRecord) -> Record:
        return to_event(record, self.module, self.format(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.sender.send(self.to_record(record)):
                self._report_drops()
        except Exception:
            self.handleError(record)

    def _report_drops(self) -> None:
        dropped = self.sender.dropped
        lost = dropped - self.reported
        if lost <= 0:
            return
        note = make_record(self.module, "WARNING",
                           f"{lost} log records dropped (event queue full or missing)")
        if self.sender.send(note, count_drop=False):
            self.reported = dropped

    def close(self) -> None:
        self.sender.close()
        super().close()


def to_event(record: logging.LogRecord, module: str, text: str) -> Record:
    """The queue record for one LogRecord (``text``: its formatted message)."""
    event_id = getattr(record, "event_id", None)
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        event_id = None
    alert = getattr(record, "alert", None)
    if not isinstance(alert, bool):
        alert = record.levelno >= logging.ERROR and event_id is not None
    level = record.levelname if record.levelname in LEVELS else _level_name(record.levelno)
    other = getattr(record, "evt_module", None)
    if isinstance(other, str) and MODULE_RE.match(other) and other not in RESERVED_MODULES:
        module = other
    return make_record(module, level, text, event_id=event_id, alert=alert,
                       syslog=bool(getattr(record, "syslog", False)), t=record.created,
                       pid=record.process)


def _level_name(levelno: int) -> str:
    for name in reversed(LEVELS):
        if levelno >= logging.getLevelName(name):
            return name
    return "DEBUG"


def setup_logging(root: InstallRoot, module: str, level: int | str | None = None) -> EventHandler:
    """Configure the ``clp`` logger of this process to log as ``module``; return the queue
    handler. Level: ``level``, else ``$CLP_LOG_LEVEL``, else INFO. Calling again replaces the
    handlers installed before (no duplicate lines)."""
    logger = logging.getLogger("clp")
    for h in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(h)
        h.close()
    logger.setLevel(level or os.environ.get("CLP_LOG_LEVEL", "INFO").upper())

    handler = EventHandler(EventSender(root), module)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter(f"%(asctime)s {module} %(levelname)s %(message)s"))
    for h in (handler, stderr):
        setattr(h, _MARK, True)
        logger.addHandler(h)
    return handler


def drain(timeout: float = 1.0) -> bool:
    """Wait until ``clusterpro_evt`` has taken what this process logged (see EventSender.drain):
    called before a power action that ends the machine, so the alert saying why is written."""
    handlers = [h for h in logging.getLogger("clp").handlers if isinstance(h, EventHandler)]
    return all(h.sender.drain(timeout) for h in handlers)
