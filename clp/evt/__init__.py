"""Logging and events: every process sends records to ``clusterpro_evt`` through a POSIX
message queue (:mod:`clp.evt.sender`), which writes the log files, alert log and syslog
(:mod:`clp.evt.sink`). Services call :func:`clp.evt.logsetup.setup_logging` once at start."""

from clp.evt.logsetup import setup_logging
from clp.evt.sender import EventSender

__all__ = ["EventSender", "setup_logging"]
