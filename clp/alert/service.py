"""The alert service's loop: spool in, deliveries out, outcomes back into the spool.

One thread owns the spool files and the targets (:class:`AlertService.run`); each target
delivers in its own thread (:class:`clp.alert.delivery.Target`) and hands back an
:class:`~clp.alert.delivery.Outcome`. The loop wakes on the event service's datagram (a new
alert), on an outcome, or every :data:`SCAN_SECONDS` (a lost datagram, clp.conf changed).

What the alert log says about deliveries (module ``mail`` or ``trap``, as the product's ``mail``
events): event 5 ERROR on the first failure of a streak ("mail failed(<why>).(SMTP server: X)"),
6 INFO when the target takes alerts again after failures ("mail successed.(SMTP server: X)"),
7 ERROR for each alert given up, naming the file it is kept in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import socket
import time
from pathlib import Path

from clp.alert import mail
from clp.alert.delivery import Backoff, Outcome, Sender, Target
from clp.alert.settings import MAIL_MODULE, TRAP_MODULE, AlertSettings, channels, from_raw
from clp.alert.spool import Entry, Spool, SpoolError, wake_socket
from clp.alert.syncnet import AlertSync
from clp.alert.trap import TrapSender, engine_id
from clp.config import ConfigError, load_config
from clp.evt.records import Record
from clp.paths import InstallRoot, file_stamp

SCAN_SECONDS = 1.0
EV_FAILED, EV_RECOVERED, EV_GIVEN_UP = 5, 6, 7
log = logging.getLogger("clp.alertsync")


class _Outcomes(queue.Queue[Outcome]):
    """A queue that also wakes the loop's selector."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self.wake_fd = wake_fd

    def put(self, item: Outcome, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        with contextlib.suppress(OSError):
            os.write(self.wake_fd, b"!")


def _module(target: str) -> str:
    return MAIL_MODULE if target == "mail" else TRAP_MODULE


class AlertService:
    def __init__(self, root: InstallRoot, server: str, sync: bool = False) -> None:
        self.root = root
        self.server = server
        self.spool = Spool(root)
        self.settings = AlertSettings()
        self.cluster = "-"
        self.targets: dict[str, Target] = {}
        self.specs: dict[str, object] = {}  # what each target was built from
        self.waiting: dict[str, tuple[Entry, set[str]]] = {}  # spool name -> entry, targets due
        self.stamp: tuple[int, int, int] | None | str = "unread"
        self.ready = False  # settings known: until then the spool is only kept
        self.stopping = False
        self.sel = selectors.DefaultSelector()
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)
        self.outcomes = _Outcomes(self._pipe_w)
        self.sock: socket.socket | None = None
        self.sync = AlertSync(root, server) if sync else None  # the cluster-wide alert log

    # configuration
    def reload(self) -> None:
        """Read clp.conf again when it changed. A configuration that is missing or does not
        load keeps the settings in force and the spool untouched (said once per change); only a
        configuration that loads decides, and one without an ``alert`` section sends nothing."""
        stamp = file_stamp(self.root.config_file)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        if stamp is None:
            log.error("%s is missing: the alert settings in force stay, and alerts wait in the "
                      "spool until it is back", self.root.config_file, extra={"alert": True})
            return
        try:
            config = load_config(self.root.config_dir)
        except ConfigError as e:
            why = "; ".join(map(str, e.issues[:5]))
        except Exception as e:  # unreadable, or a bug: the service goes on with what it has
            why = f"{type(e).__name__}: {e}"
        else:
            self._apply(from_raw(config.raw), config.name)
            if self.sync is not None:
                self.sync.configure(config)
            return
        log.error("%s is not valid, the alert settings in force stay: %s",
                  self.root.config_file, why, extra={"alert": True})

    def _apply(self, settings: AlertSettings, cluster: str) -> None:
        if self.ready and settings == self.settings and cluster == self.cluster:
            return
        self.ready = True
        self.settings, self.cluster = settings, cluster
        self._rebuild()

    def _senders(self) -> dict[str, tuple[Sender, str, object]]:
        """Each target's sender, its description, and what it depends on (a target whose
        dependencies did not change is kept on a reload)."""
        s = self.settings
        out: dict[str, tuple[Sender, str, object]] = {}
        if s.mail is not None:
            ms = s.mail

            def send_mail(rec: Record) -> str:
                return mail.send(ms, rec, self.cluster, self.server)

            out["mail"] = (send_mail, f"mail to {', '.join(ms.to)} via "
                                      f"{', '.join(x.label for x in ms.smtp)}",
                           (ms, s.retry, self.cluster))
        if s.snmp is not None:
            state = self.root.work_dir / "snmp"
            for d in s.snmp.destinations:
                engine = d.engine_id or engine_id(self.server)
                what = f"SNMP {d.label}" + (f", engine id {engine}" if d.version == "v3" and
                                            not d.inform else "")
                out[d.key] = (TrapSender(d, state, self.server), what, (d, s.retry))
        return out

    def _rebuild(self) -> None:
        """Targets for new settings: a target whose settings did not change keeps running (and
        keeps what it is sending); a changed one is replaced, and what was queued in it is queued
        in the new one (a delivery under way in the old one still reports its outcome, so it may
        go out twice)."""
        wanted = self._senders()
        for key in list(self.targets):
            if key not in wanted or wanted[key][2] != self.specs.get(key):
                self.targets.pop(key).stop()
                self.specs.pop(key, None)
        r = self.settings.retry
        for key, (send, what, spec) in wanted.items():
            if key in self.targets:
                continue
            t = Target(key, send, Backoff(r.initial, r.max), r.give_up, self.outcomes)
            self.targets[key], self.specs[key] = t, spec
            t.start()
            log.info("alert reports: %s", what)
        if not self.targets:
            log.info("alert reports: none configured (alert.mail, alert.snmp in clp.conf)")
        for name, (entry, _due) in list(self.waiting.items()):
            self._dispatch(name, entry)
        self.scan()

    # the spool
    def scan(self) -> None:
        if not self.ready:
            return
        for name in self.spool.names():
            if name in self.waiting:
                continue
            try:
                entry = self.spool.read(name)
            except SpoolError as e:
                kept = self._aside(name)
                log.error("%s; kept as %s", e, kept, extra={"alert": True})
                continue
            self._dispatch(name, entry)

    def _dispatch(self, name: str, entry: Entry) -> None:
        """Queue an alert in every target it is due to (a target that has it already ignores
        it); an alert due nowhere is finished."""
        due = {t for t in channels(self.settings, entry.record) if t in self.targets}
        due -= entry.done | entry.given_up
        if not due:
            self.waiting.pop(name, None)
            self._finish(entry)
            return
        self.waiting[name] = (entry, due)
        for key in sorted(due):
            self.targets[key].add(name, entry.record)

    def _aside(self, name: str) -> Path | str:
        try:
            return self.spool.set_aside(name)
        except OSError as e:
            return f"(not moved: {e.strerror})"

    def _finish(self, entry: Entry) -> None:
        try:
            kept = self.spool.finish(entry)
        except OSError as e:
            log.error("alert spool: cannot finish %s: %s", entry.path, e.strerror,
                      extra={"alert": True})
            return
        if kept is not None:
            log.info("alert %s kept in %s (delivery given up to %s)", entry.name, kept,
                     ", ".join(sorted(entry.given_up)))

    def apply(self, o: Outcome) -> None:
        module = {"evt_module": _module(o.target)}
        what = "mail" if o.target == "mail" else "trap"
        label = "SMTP server" if o.target == "mail" else "destination"
        if o.kind == "delivered" and o.failures:
            log.info("%s successed.(%s: %s)", what, label, o.where,
                     extra={"event_id": EV_RECOVERED, "alert": True, **module})
        elif o.kind == "failed" and o.failures == 1:
            log.error("%s failed(%s).(%s: %s); retrying in %g s, then with backoff", what,
                      o.reason, label, o.where, o.retry_in,
                      extra={"event_id": EV_FAILED, "alert": True, **module})
        elif o.kind == "given_up":
            # about an alert that is itself a report of a delivery: logged, not alerted, or two
            # failing channels would report each other's give-ups forever
            waiting = self.waiting.get(o.name)
            about_delivery = waiting is not None and \
                waiting[0].record["module"] in (MAIL_MODULE, TRAP_MODULE)
            log.error("%s of alert %s given up after %d failed attempts (%s); the alert is kept "
                      "in %s", what, o.name, o.failures, o.reason, self.spool.failed,
                      extra={"event_id": EV_GIVEN_UP, "alert": not about_delivery, **module})
        if o.kind == "failed" or o.name not in self.waiting:
            return
        entry, due = self.waiting[o.name]
        (entry.done if o.kind == "delivered" else entry.given_up).add(o.target)
        due.discard(o.target)
        if due:
            try:
                self.spool.save(entry)
            except OSError as e:
                log.warning("alert spool: cannot record delivery in %s: %s", entry.path,
                            e.strerror)
            return
        del self.waiting[o.name]
        self._finish(entry)

    # the loop
    def _listen(self) -> None:
        path = wake_socket(self.root)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.setblocking(False)
        self.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, "alert")
        self.sel.register(self._pipe_r, selectors.EVENT_READ, "outcome")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._pipe_r, 4096):
                pass
        assert self.sock is not None
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(64):
                pass

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._pipe_w, b"!")

    def start(self) -> None:
        self.spool.ensure()
        self._listen()
        self.reload()

    def run(self) -> int:
        scanned = 0.0
        while not self.stopping:
            events = self.sel.select(SCAN_SECONDS)
            self._drain()
            while True:
                try:
                    self.apply(self.outcomes.get_nowait())
                except queue.Empty:
                    break
            now = time.monotonic()
            woke = any(key.data == "alert" for key, _ in events)
            if woke or now - scanned >= SCAN_SECONDS:
                if now - scanned >= SCAN_SECONDS:
                    self.reload()
                self.scan()
                scanned = now
            if self.sync is not None and self.sync.failed:
                self.close()  # restarted by its supervisor: alerts wait in spool and alert.log
                return 1
        self.close()
        return 0

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        for target in self.targets.values():
            target.stop()
        if self.sock is not None:
            self.sock.close()
            with contextlib.suppress(FileNotFoundError):
                wake_socket(self.root).unlink()
