"""Reading the local ``log/alert.log`` as ``clusterpro_evt`` appends to it.

The position is ``(inode, offset)`` of the end of the last alert taken. ``clusterpro_evt``
rotates by size (``alert.log`` -> ``alert.log.1``, a rename: the inode moves with the file), so
a position whose inode is now ``alert.log.1`` is finished there first, then ``alert.log`` is read
from its start. A position found in neither (both rotated away while the service was down, or a
first start) reads what is kept, ``alert.log.1`` then ``alert.log``: alerts in files already
deleted are lost for the other servers, not delivered twice (the merged view dedupes by
content). Only whole lines are taken; a line that is not an alert.log object is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clp.alert.clusterlog import valid_alert

MAX_READ = 4 * 1024 * 1024  # bytes read per call: a huge backlog is taken in steps


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _read(path: Path, ino: int, offset: int) -> tuple[bytes, int, bool] | None:
    """The whole lines of ``path`` after ``offset``, if ``path`` is still inode ``ino``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_ino != ino:
            return None
        if st.st_size < offset:  # truncated by an operator: start again
            offset = 0
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, MAX_READ)
    finally:
        os.close(fd)
    end = data.rfind(b"\n") + 1
    return data[:end], offset, len(data) == MAX_READ


def parse_alerts(data: bytes, ino: int, offset: int) -> list[tuple[dict[str, Any], int, int]]:
    """(alert, inode, end offset) for each alert line of ``data`` read at ``offset``."""
    out = []
    pos = offset
    for raw in data.splitlines(keepends=True):
        pos += len(raw)
        try:
            a = json.loads(raw)
        except ValueError:
            continue
        if valid_alert(a):
            out.append((a, ino, pos))
    return out


class AlertLogTail:
    def __init__(self, path: Path, pos: tuple[int, int] | None) -> None:
        self.path = path
        self.rotated = path.with_name(path.name + ".1")
        self.pos = pos
        self.full = False

    def read(self) -> list[tuple[dict[str, Any], int, int]]:
        """The alerts appended since the last call (each with where it ended)."""
        out: list[tuple[dict[str, Any], int, int]] = []
        cur, old = _inode(self.path), _inode(self.rotated)
        if self.pos is None or self.pos[0] not in (cur, old):
            if old is not None:
                out += self._take(self.rotated, old, 0)
                if self._more(self.rotated):  # a backlog larger than one read: next call
                    return out
            self.pos = (cur, 0) if cur is not None else None
        elif self.pos[0] != cur:  # the file we were reading is alert.log.1 now: finish it
            out += self._take(self.rotated, self.pos[0], self.pos[1])
            if self._more(self.rotated):
                return out
            self.pos = (cur, 0) if cur is not None else None
        if self.pos is not None:
            out += self._take(self.path, self.pos[0], self.pos[1])
        return out

    def _more(self, _path: Path) -> bool:
        """Whether the last read of ``path`` stopped at :data:`MAX_READ` (a torn last line
        of a rotated file is not more: it never completes)."""
        return self.full

    def _take(self, path: Path, ino: int, offset: int) -> list[tuple[dict[str, Any], int, int]]:
        got = _read(path, ino, offset)
        self.full = False
        if got is None:
            return []
        data, offset, self.full = got
        self.pos = (ino, offset + len(data))
        return parse_alerts(data, ino, offset)
