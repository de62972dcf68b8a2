"""The cluster-wide alert log: one journal per server, merged when read.

``clusterpro_alertsync`` keeps, under ``work/alert/cluster/``, one journal per server of the
cluster (``<server>.jsonl``): its own alerts, taken from its ``log/alert.log`` as
``clusterpro_evt`` writes them, and every peer's, as the peer shipped them
(:mod:`clp.alert.sync`). A journal line is ``{"epoch": E, "seq": N, "alert": {...}}`` plus, in the
local journal, ``"pos": [inode, offset]``, where in ``alert.log`` the alert ended (so the
tail resumes there after a restart, :mod:`clp.alert.tail`). ``alert`` is the alert.log object
(``time``, ``server``, ``module``, ``event_id``, ``level``, ``message``).

An alert's id is ``(server, epoch, seq)``: ``seq`` counts the server's alerts from 1, ``epoch``
names the local journal they were counted in (its creation time in ns; a journal removed by an
operator starts a new epoch, whose seq starts at 1 again). Every journal keeps the newest
:data:`HISTORY` alerts: that is what a server that was down can catch up.

The merged view (:func:`read_cluster_log`) is every journal in time order (the alert's own time,
UTC, then server and seq), without duplicates: an alert is one alert whatever path brought it,
so the view dedupes by id and also by content (server, time to the ms, module, event id, level,
message), which covers a local journal rebuilt from alert.log under a new epoch. Two alerts
identical in all of these are shown once.

Journals are written only by ``clusterpro_alertsync``, one line per ``write``, ``O_APPEND``: a
reader (a command, the WebUI) reads them at any time and ignores a torn last line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from clp.paths import InstallRoot

HISTORY = 10_000  # alerts kept per server
SUFFIX = ".jsonl"
ALERT_FIELDS = ("time", "server", "module", "event_id", "level", "message")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def cluster_dir(root: InstallRoot) -> Path:
    return root.work_dir / "alert" / "cluster"


@dataclass(frozen=True)
class Entry:
    """One alert of one server's journal."""

    epoch: int
    seq: int
    alert: dict[str, Any]
    pos: tuple[int, int] | None = None  # local journal only: (inode, offset) in alert.log

    def line(self) -> str:
        doc: dict[str, Any] = {"epoch": self.epoch, "seq": self.seq, "alert": self.alert}
        if self.pos is not None:
            doc["pos"] = list(self.pos)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def valid_alert(a: object) -> bool:
    """An alert.log object as clusterpro_evt writes it (a peer's is checked before it is kept)."""
    if not isinstance(a, dict) or set(a) != set(ALERT_FIELDS):
        return False
    if not all(isinstance(a[k], str) for k in ("time", "server", "module", "level", "message")):
        return False
    if a["event_id"] is not None and not isinstance(a["event_id"], int):
        return False
    return timestamp(a) is not None


def timestamp(alert: dict[str, Any]) -> float | None:
    try:
        t = datetime.fromisoformat(alert["time"])
    except (KeyError, TypeError, ValueError):
        return None
    if t.tzinfo is None:
        return None
    return t.timestamp()


def parse_line(text: str) -> Entry | None:
    """A journal line, or None for a torn or foreign one."""
    try:
        doc = json.loads(text)
        epoch, seq, alert = doc["epoch"], doc["seq"], doc["alert"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(epoch, int) and isinstance(seq, int) and seq > 0 and valid_alert(alert)):
        return None
    pos = doc.get("pos")
    if isinstance(pos, list) and len(pos) == 2 and all(isinstance(x, int) for x in pos):
        return Entry(epoch, seq, alert, (pos[0], pos[1]))
    return Entry(epoch, seq, alert)


class Journal:
    """One server's alerts, in the order its seq counts them; the newest ``history`` kept."""

    def __init__(self, path: Path, history: int = HISTORY) -> None:
        self.path = path
        self.history = history
        self.entries: list[Entry] = []
        with contextlib.suppress(FileNotFoundError):
            for text in path.read_text(errors="replace").splitlines():
                e = parse_line(text)
                if e is not None:
                    self.entries.append(e)
        if len(self.entries) > history:
            self._rewrite()

    @property
    def last(self) -> tuple[int, int]:
        """(epoch, seq) of the newest alert, (0, 0) for an empty journal."""
        if not self.entries:
            return (0, 0)
        e = self.entries[-1]
        return (e.epoch, e.seq)

    def oldest(self, epoch: int) -> int:
        """The oldest seq of ``epoch`` still kept (0 when none is)."""
        for e in self.entries:
            if e.epoch == epoch:
                return e.seq
        return 0

    def after(self, epoch: int, seq: int) -> Iterator[Entry]:
        """The kept alerts of ``epoch`` after ``seq``, oldest first."""
        for e in self.entries:
            if e.epoch == epoch and e.seq > seq:
                yield e

    def append(self, new: list[Entry]) -> None:
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            for e in new:  # one write per line: a reader never sees half of two lines
                os.write(fd, e.line().encode())
        finally:
            os.close(fd)
        self.entries.extend(new)
        if len(self.entries) > self.history + self.history // 2:
            self._rewrite()

    def _rewrite(self) -> None:
        """Keep the newest ``history`` alerts (trimming in bulk, not on every append)."""
        self.entries = self.entries[-self.history:]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(e.line() for e in self.entries))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def content_key(a: dict[str, Any], ts: float) -> tuple[Any, ...]:
    return (a["server"], round(ts * 1000), a["module"], a["event_id"], a["level"], a["message"])


def merge(journals: Iterable[tuple[str, Iterable[Entry]]]) -> list[dict[str, Any]]:
    """The alerts of every (origin, entries) in time order, each once."""
    seen_ids: set[tuple[str, int, int]] = set()
    seen: set[tuple[Any, ...]] = set()
    rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for origin, entries in journals:
        for e in entries:
            ident = (origin, e.epoch, e.seq)
            ts = timestamp(e.alert) or 0.0
            key = content_key(e.alert, ts)
            if ident in seen_ids or key in seen:
                continue
            seen_ids.add(ident)
            seen.add(key)
            rows.append(((ts, e.alert["server"], origin, e.epoch, e.seq), e.alert))
    rows.sort(key=lambda r: r[0])
    return [a for _, a in rows]


def journal_path(root: InstallRoot, server: str) -> Path:
    if not _NAME.match(server):
        raise ValueError(f"not a server name: {server!r}")
    return cluster_dir(root) / f"{server}{SUFFIX}"


def read_cluster_log(root: InstallRoot) -> list[dict[str, Any]]:
    """The cluster-wide alert log of this server: every server's alerts it holds, oldest first.

    The reader API for commands and the WebUI; it only reads (any time, while the service
    writes). A server's alerts appear once they reached this server."""
    d = cluster_dir(root)
    if not d.is_dir():
        return []
    journals = []
    for path in sorted(d.glob(f"*{SUFFIX}")):
        journals.append((path.name[: -len(SUFFIX)], Journal(path, history=1 << 62).entries))
    return merge(journals)


def format_alert(a: dict[str, Any]) -> str:
    eid = "-" if a["event_id"] is None else a["event_id"]
    return f"{a['time']} {a['server']} {a['level']} {a['module']} [{eid}] {a['message']}"


def main(argv: list[str] | None = None) -> int:
    """``python -m clp.alert.clusterlog``: print this server's cluster-wide alert log (``--json``:
    one object a line, as alert.log)."""
    p = argparse.ArgumentParser(prog="python -m clp.alert.clusterlog",
                                description="This server's cluster-wide alert log, oldest first.")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("-n", "--last", type=int, default=0, help="only the newest N alerts")
    args = p.parse_args(argv)
    alerts = read_cluster_log(InstallRoot.from_env())
    if args.last > 0:
        alerts = alerts[-args.last:]
    for a in alerts:
        print(json.dumps(a, ensure_ascii=False) if args.json else format_alert(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
