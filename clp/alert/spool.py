"""The alert spool: how ``clusterpro_evt`` hands alerts to ``clusterpro_alertsync``.

One JSON file per alert in ``work/alert/outbox/``, named by time so that a sorted listing is the
order the alerts were raised in. ``clusterpro_evt`` writes each file whole (a temporary name, then
a rename) and sends a wake-up datagram to ``run/alertsync.sock``; the alert service reads the
file, records in it each target the alert was delivered to, and removes it when every target has
it. An alert whose delivery was given up is moved to ``work/alert/failed/`` (the newest
:data:`MAX_FAILED` are kept). Both directories and every file are root's only (0700, 0600).

Files rather than a message queue: an alert waiting for a mail server survives a restart of
either service and of the server, and writing one never blocks the event service. The spool is
bounded (:data:`MAX_ENTRIES`): a full spool refuses new alerts, and the event service counts and
reports what it refused (the alert log itself still has them).

File: ``{"record": <evt record>, "done": [target, ...], "given_up": [target, ...]}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clp.evt.records import Record, RecordError, decode
from clp.paths import InstallRoot

MAX_ENTRIES = 10_000
MAX_FAILED = 10_000  # alerts kept in failed/
STALE_TMP = 60.0  # seconds: a temporary file older than this was left by a crash
COUNT_EVERY = 100  # puts between two recounts of the outbox
SUFFIX = ".json"
log = logging.getLogger("clp.alertsync")


def spool_dir(root: InstallRoot) -> Path:
    return root.work_dir / "alert"


def wake_socket(root: InstallRoot) -> Path:
    return root.run_dir / "alertsync.sock"


class SpoolWriter:
    """The event service's end: never blocks, never raises."""

    def __init__(self, root: InstallRoot, max_entries: int = MAX_ENTRIES) -> None:
        self.outbox = spool_dir(root) / "outbox"
        self.wake = str(wake_socket(root))
        self.max_entries = max_entries
        self.refused = 0
        self.failed = 0
        self.why = ""  # why the last put failed
        self._seq = 0
        self._count: int | None = None
        self._sock: socket.socket | None = None

    def _room(self) -> bool:
        if self._count is None or self._seq % COUNT_EVERY == 0 or self._count >= self.max_entries:
            try:
                self._count = sum(1 for e in os.scandir(self.outbox) if e.name.endswith(SUFFIX))
            except OSError:  # missing (made by the first put) or unusable (the put says why)
                self._count = 0
        return self._count < self.max_entries

    def put(self, rec: Record) -> bool:
        """Spool one alert; False (counted in ``refused`` or ``failed``) when it cannot be."""
        self._seq += 1
        if not self._room():
            self.refused += 1
            self.why = f"full: {self._count} alerts waiting"
            return False
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:08d}"
        tmp = self.outbox / f".{name}.tmp"
        try:
            if not self.outbox.is_dir():  # private from the start: alerts can name anything
                self.outbox.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.outbox.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, json.dumps({"record": rec}, ensure_ascii=False).encode())
            finally:
                os.close(fd)
            os.replace(tmp, self.outbox / (name + SUFFIX))
        except OSError as e:
            self.failed += 1
            self.why = f"cannot write: {e.strerror or e}"
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        assert self._count is not None
        self._count += 1
        self._kick()
        return True

    def _kick(self) -> None:
        """Wake the alert service; it also scans every second, so a lost datagram only delays."""
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        with contextlib.suppress(OSError):
            self._sock.sendto(b"!", self.wake)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass
class Entry:
    path: Path
    record: Record
    done: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.path.name


class SpoolError(Exception):
    """A spool file that is not an alert (kept aside in ``failed/``, reported)."""


class Spool:
    """The alert service's end."""

    def __init__(self, root: InstallRoot) -> None:
        self.outbox = spool_dir(root) / "outbox"
        self.failed = spool_dir(root) / "failed"

    def ensure(self) -> None:
        """The directories, private; temporary files a crash left in the outbox removed."""
        for d in (self.outbox.parent, self.outbox, self.failed):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        now = time.time()
        for e in os.scandir(self.outbox):
            if e.name.startswith(".") and e.name.endswith(".tmp") and \
                    now - e.stat().st_mtime > STALE_TMP:
                with contextlib.suppress(OSError):
                    os.unlink(e.path)

    def names(self) -> list[str]:
        """Every spooled alert, oldest first."""
        try:
            return sorted(e.name for e in os.scandir(self.outbox)
                          if e.name.endswith(SUFFIX) and not e.name.startswith("."))
        except FileNotFoundError:
            return []

    def read(self, name: str) -> Entry:
        path = self.outbox / name
        try:
            doc = json.loads(path.read_bytes())
            rec = decode(json.dumps(doc["record"]).encode())
            done, given_up = set(doc.get("done", ())), set(doc.get("given_up", ()))
        except (OSError, ValueError, TypeError, KeyError, RecordError) as e:
            raise SpoolError(f"{path}: not a spooled alert ({e})") from None
        return Entry(path, rec, done, given_up)

    def save(self, entry: Entry) -> None:
        doc: dict[str, Any] = {"record": entry.record, "done": sorted(entry.done),
                               "given_up": sorted(entry.given_up)}
        tmp = entry.path.with_name(f".{entry.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, ensure_ascii=False))
        os.replace(tmp, entry.path)

    def finish(self, entry: Entry) -> Path | None:
        """Remove a delivered alert; keep one with a target given up in ``failed/`` (its path)."""
        if entry.given_up:
            self.save(entry)
            kept = self.failed / entry.name
            os.replace(entry.path, kept)
            self._bound_failed()
            return kept
        entry.path.unlink(missing_ok=True)
        return None

    def _bound_failed(self) -> None:
        """At most :data:`MAX_FAILED` kept: the oldest go first, and that is said."""
        names = sorted(e.name for e in os.scandir(self.failed) if e.name.endswith(SUFFIX))
        for name in names[:max(0, len(names) - MAX_FAILED)]:
            with contextlib.suppress(FileNotFoundError):
                (self.failed / name).unlink()
            log.warning("alert spool: %s removed, the oldest of more than %d alerts whose "
                        "delivery was given up", name, MAX_FAILED)

    def set_aside(self, name: str) -> Path:
        """Move an unreadable file out of the way, so it is not read again."""
        kept = self.failed / name
        os.replace(self.outbox / name, kept)
        return kept
