"""``clusterpro_evt``: the event service. Drains the ``evt`` message queue into the log files.

Every clp process logs by sending records to this install root's ``evt`` queue
(:mod:`clp.evt.logsetup`); this daemon is the only reader. It writes ``log/<module>.log``
(rotated by size), alerts to ``log/alert.log`` and syslog, and records flagged ``syslog`` to
syslog (:mod:`clp.evt.sink`, docs/syslog.md).

Syslog facility and on/off come from ``cluster.syslog`` in the install root's ``etc/clp.conf``,
re-read when the file changes (:mod:`clp.evt.evtconf`); a missing or invalid clp.conf gives the
defaults, said once in ``log/evt.log``, and never stops the service. ``--syslog-socket`` (or
``CLP_EVT_SYSLOG``) names the socket; empty turns syslog output off whatever clp.conf says. A
syslog receiver that is not running is logged once; its records wait and are sent when it is
back, and the log files are written all along.

The queue is created if missing and never unlinked here: records queued while this service was
dead (crash, restart) are written when it comes back. A malformed record is counted and logged,
never fatal. SIGTERM/SIGINT only set a flag; the receive loop wakes at least every
:data:`POLL_SECONDS`, then drains what is queued (bounded) and exits 0.

The daemon's own log lines (module ``evt``) go straight to its writer, not through the queue it
drains, so they cannot be dropped by a full queue or loop back.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click
import posix_ipc

from clp.alert.spool import SpoolWriter
from clp.evt.evtconf import SettingsWatch, SyslogSettings
from clp.evt.logsetup import to_event
from clp.evt.records import RecordError, decode
from clp.evt.sender import open_queue
from clp.evt.sink import DEFAULT_GENERATIONS, DEFAULT_MAX_BYTES, EventWriter, SyslogSink
from clp.paths import InstallRoot
from clp.platform import sdnotify

POLL_SECONDS = 0.5
log = logging.getLogger("clp.evt")


class DirectHandler(logging.Handler):
    """This daemon's own log lines, written as module ``evt`` records without the queue."""

    def __init__(self, writer: EventWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(to_event(record, "evt", self.format(record)))
        except Exception:
            self.handleError(record)


class EventService:
    def __init__(self, queue: posix_ipc.MessageQueue, writer: EventWriter,
                 watch: SettingsWatch | None = None) -> None:
        self.queue = queue
        self.writer = writer
        self.watch = watch
        self.stopping = False
        self.received = 0
        self.malformed = 0
        self.write_errors = 0

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def handle(self, data: bytes) -> bool:
        """Write one queue message; False if it was malformed or could not be written."""
        self.received += 1
        try:
            rec = decode(data)
        except RecordError as e:
            self.malformed += 1
            log.warning("malformed event record ignored (%d so far): %s", self.malformed, e)
            return False
        try:
            self.writer.write(rec)
        except OSError as e:
            self.write_errors += 1
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                print(f"clusterpro_evt: cannot write a {rec['module']} record "
                      f"({self.write_errors} failures so far): {e}", file=sys.stderr)
            return False
        return True

    def step(self, timeout: float) -> bool:
        """Receive and handle at most one record; False if none came within ``timeout``."""
        try:
            data, _priority = self.queue.receive(timeout=timeout)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            return False
        self.handle(data)
        return True

    def tick(self) -> None:
        """Between records: pick up a changed clp.conf, retry what waits for syslog."""
        if self.watch is not None:
            self.watch.poll()
        self.writer.flush()

    def drain(self) -> int:
        """Handle what is queued now, without waiting; bounded so a flood cannot keep us alive."""
        limit = 2 * max(self.queue.max_messages, self.queue.current_messages)
        n = 0
        while n < limit and self.step(0):
            n += 1
        return n

    def run(self) -> int:
        while not self.stopping:
            self.step(POLL_SECONDS)
            self.tick()
        sdnotify.stopping()
        drained = self.drain()
        log.info("event service stopped (%d records received, %d malformed, %d drained at exit)",
                 self.received, self.malformed, drained)
        return 0


def _configure_logging(writer: EventWriter) -> None:
    logger = logging.getLogger("clp")
    logger.setLevel(logging.INFO)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(asctime)s evt %(levelname)s %(message)s"))
    logger.addHandler(DirectHandler(writer))
    logger.addHandler(stderr)


def _apply(sink: SyslogSink, settings: SyslogSettings) -> None:
    sink.configure(settings.code, settings.enabled)


@click.command()
@click.option("--root", type=click.Path(file_okay=False), help="Install root (default: $CLP_ROOT).")
@click.option("--log-size", type=click.IntRange(min=1024), envvar="CLP_EVT_LOG_SIZE",
              default=DEFAULT_MAX_BYTES, show_default=True,
              help="Rotate a log file when it would exceed this many bytes.")
@click.option("--log-generations", type=click.IntRange(0, 99), envvar="CLP_EVT_LOG_GENERATIONS",
              default=DEFAULT_GENERATIONS, show_default=True,
              help="Rotated files kept per log (x.log.1 ... x.log.N).")
@click.option("--syslog-socket", envvar="CLP_EVT_SYSLOG", default="/dev/log", show_default=True,
              help="Local syslog datagram socket; empty to disable syslog output.")
def main(root: str | None, log_size: int, log_generations: int, syslog_socket: str) -> None:
    """Run the event service in the foreground (its supervisor daemonizes it)."""
    install = InstallRoot.from_env() if root is None else InstallRoot(Path(root))
    install.ensure_dirs()
    syslog = SyslogSink(syslog_socket) if syslog_socket else None
    writer = EventWriter(install.log_dir, install.alert_log, syslog, log_size, log_generations,
                         SpoolWriter(install))
    _configure_logging(writer)
    watch = None
    if syslog is None:
        log.info("syslog output off (no syslog socket given)")
    else:
        watch = SettingsWatch(install.config_file, lambda s: _apply(syslog, s))
        watch.poll()
    try:
        queue = open_queue(install, create=True)
    except (posix_ipc.Error, OSError) as e:
        sys.exit(f"clusterpro_evt: {e}")
    service = EventService(queue, writer, watch)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, service.on_signal)
    log.info("event service started (queue %s: depth %d, message size %d, %d records waiting)",
             install.mq_name("evt"), queue.max_messages, queue.max_message_size,
             queue.current_messages)
    sdnotify.ready(f"draining {install.mq_name('evt')}")  # the queue is open, the writer ready
    try:
        code = service.run()
    finally:
        queue.close()
        writer.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
