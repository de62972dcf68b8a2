"""A server's configuration files as generations: staged, then committed by one rename.

Layout under ``etc/`` once a configuration has been pushed (``clpcfctrl --push``)::

    etc/current          -> .gen-<N>-<txn>        (a relative symlink: the commit point)
    etc/clp.conf         -> current/clp.conf
    etc/scripts          -> current/scripts
    etc/.gen-<N>-<txn>/  clp.conf, scripts/..., generation.json  (the running generation)
    etc/.staged-<txn>/   a pushed configuration waiting for its commit (at most one)

Committing replaces the ``current`` symlink with ``rename(2)``, so ``clp.conf`` and ``scripts/``
switch together: a reader sees the old pair or the new one, never half of each. ``cluster.key``
and the other files of ``etc/`` are not part of a generation and are never touched.

A configuration travels as ``files``: ``{relative path: {"mode": int, "data": base64}}``, only
``clp.conf`` and regular files under ``scripts/``. Every path is checked before anything is
written (no absolute path, no ``..``, no symlink in the source): a bad one refuses the whole
configuration. Its digest is SHA-256 over the sorted paths, modes and contents.

No network here: :mod:`clp.trn.config_transfer` serves these operations to ``clpcfctrl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

CONFIG_FILE = "clp.conf"
SCRIPTS = "scripts"
CURRENT = "current"
GENERATION_FILE = "generation.json"
STAGED_PREFIX = ".staged-"
GEN_PREFIX = ".gen-"
STAGE_TTL = 300.0  # a stage older than this was abandoned (its pusher died): removed, not a lock
MAX_FILES = 2000
MAX_BYTES = 150 * 1024  # what fits in one signed frame (clp.net.frames.MAX_FRAME) as base64
TXN = re.compile(r"[0-9a-f]{16}")


class StoreError(Exception):
    """A request that cannot be done; nothing was changed."""


class Busy(StoreError):
    """Another push holds the stage of this server."""


@dataclass(frozen=True)
class Generation:
    number: int  # 0: the files were never pushed (written at install or by hand)
    digest: str
    committed: float | None = None  # when
    source: str = ""  # the server clpcfctrl ran on

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.number, "hash": self.digest, "committed": self.committed,
                "from": self.source}


# -- files <-> a directory -------------------------------------------------------------------

def check_path(rel: str) -> PurePosixPath:
    """The relative path of a configuration file, or StoreError naming what is wrong."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or "\\" in rel or "\0" in rel:
        raise StoreError(f"{rel!r}: not a relative path")
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise StoreError(f"{rel!r}: a path with '..' or an empty part leaves the configuration "
                         f"directory")
    if rel != CONFIG_FILE and p.parts[0] != SCRIPTS or len(p.parts) == 1 and rel == SCRIPTS:
        raise StoreError(f"{rel!r}: a configuration holds clp.conf and files under scripts/ "
                         f"only")
    return p


def collect(directory: Path) -> dict[str, dict[str, Any]]:
    """``clp.conf`` and every file under ``scripts/`` of ``directory``. A symlink, a device, a
    FIFO ... anywhere is refused: pushing it could reach outside the directory."""
    if not directory.is_dir():
        raise StoreError(f"{directory}: the target directory does not exist")
    conf = directory / CONFIG_FILE
    if conf.is_symlink() or not conf.is_file():
        raise StoreError(f"{conf}: missing, or not a regular file")
    names = [CONFIG_FILE]
    scripts = directory / SCRIPTS
    if scripts.is_symlink():
        raise StoreError(f"{scripts}: a symlink (it would push what it points to)")
    if scripts.exists():
        for dirpath, dirnames, filenames in os.walk(scripts):
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                mode = full.lstat().st_mode
                if stat.S_ISLNK(mode):
                    raise StoreError(f"{full}: a symlink (it would push what it points to)")
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise StoreError(f"{full}: not a regular file or directory")
                if stat.S_ISREG(mode):
                    names.append(full.relative_to(directory).as_posix())
    if len(names) > MAX_FILES:
        raise StoreError(f"{directory}: {len(names)} files, more than {MAX_FILES}")
    files, total = {}, 0
    for rel in sorted(names):
        check_path(rel)
        data = (directory / rel).read_bytes()
        total += len(data)
        files[rel] = {"mode": stat.S_IMODE((directory / rel).stat().st_mode) & 0o755,
                      "data": base64.b64encode(data).decode()}
    if total > MAX_BYTES:
        raise StoreError(f"{directory}: {total} bytes of configuration, more than {MAX_BYTES}")
    return files


def decoded(files: Any) -> dict[str, tuple[int, bytes]]:
    """Checked ``files`` as {path: (mode, bytes)}; StoreError on the first bad entry."""
    if not isinstance(files, dict) or CONFIG_FILE not in files:
        raise StoreError("a configuration needs clp.conf")
    if len(files) > MAX_FILES:
        raise StoreError(f"{len(files)} files, more than {MAX_FILES}")
    out = {}
    for rel, entry in files.items():
        check_path(rel)
        if not isinstance(entry, dict) or not isinstance(entry.get("mode"), int) \
                or not isinstance(entry.get("data"), str):
            raise StoreError(f"{rel!r}: malformed entry")
        try:
            data = base64.b64decode(entry["data"], validate=True)
        except ValueError:
            raise StoreError(f"{rel!r}: content is not base64") from None
        out[rel] = (entry["mode"] & 0o755, data)
    for rel in out:  # a file cannot also be a directory of another one
        for parent in PurePosixPath(rel).parents:
            if str(parent) in out:
                raise StoreError(f"{rel!r}: {parent} is also a file")
    return out


def digest(files: dict[str, dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        e = files[rel]
        h.update(f"{rel}\0{e['mode'] & 0o755:o}\0".encode())
        h.update(base64.b64decode(e["data"]))
        h.update(b"\0")
    return h.hexdigest()


def write_tree(target: Path, files: dict[str, tuple[int, bytes]]) -> None:
    """Write ``files`` into the new directory ``target`` (it must not exist), synced to disk."""
    target.mkdir(mode=0o755)
    (target / SCRIPTS).mkdir(mode=0o755)
    for rel, (mode, data) in files.items():
        path = target / rel
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode or 0o644)
        try:
            os.write(fd, data)
            os.fchmod(fd, mode or 0o644)
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_doc(directory: Path) -> Generation | None:
    try:
        doc = json.loads((directory / GENERATION_FILE).read_text())
        return Generation(int(doc["generation"]), str(doc["hash"]), doc.get("committed"),
                          str(doc.get("from", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- the store of one server -----------------------------------------------------------------

class ConfigStore:
    """The generations in ``etc`` (an install root's config directory)."""

    def __init__(self, etc: Path) -> None:
        self.etc = etc

    def current(self) -> Generation | None:
        """The generation the files in ``etc`` are; None when there is no clp.conf."""
        gen = _read_doc(self.etc / CURRENT)
        if gen is not None:
            return gen
        if not (self.etc / CONFIG_FILE).is_file():
            return None
        try:
            return Generation(0, digest(collect(self.etc)))
        except (StoreError, OSError):
            return Generation(0, "")

    def snapshot(self) -> tuple[Generation | None, dict[str, dict[str, Any]]]:
        """The running generation and its files, read from one generation directory (a commit
        meanwhile does not mix two)."""
        where = self._current_dir()
        if where is None:
            if not (self.etc / CONFIG_FILE).is_file():
                return None, {}
            files = collect(self.etc)
            return Generation(0, digest(files)), files
        gen = _read_doc(where)
        files = collect(where)
        return gen or Generation(0, digest(files)), files

    def staged(self) -> list[tuple[str, float]]:
        """(txn, age in seconds) of every staged configuration."""
        out = []
        now = time.time()
        for p in self.etc.glob(STAGED_PREFIX + "*"):
            txn = p.name[len(STAGED_PREFIX):]
            if not TXN.fullmatch(txn):  # not a stage of ours (a hand-made copy): not a lock
                continue
            try:
                out.append((txn, now - p.lstat().st_mtime))
            except FileNotFoundError:
                continue
        return out

    def _staged_dir(self, txn: str) -> Path:
        if not isinstance(txn, str) or not TXN.fullmatch(txn):
            raise StoreError(f"invalid transaction id {txn!r}")
        return self.etc / f"{STAGED_PREFIX}{txn}"

    def stage(self, txn: str, number: int, files: Any, expected: str, source: str) -> None:
        """Write a pushed configuration beside the running one. Busy when another push staged
        one less than STAGE_TTL ago (an older one is abandoned: removed)."""
        target = self._staged_dir(txn)
        tree = decoded(files)
        if digest(files) != expected:
            raise StoreError("the configuration's digest does not match its content")
        for other, age in self.staged():
            if other == txn:
                doc = _read_json(target / GENERATION_FILE)
                if doc is not None and doc.get("hash") == expected:
                    return  # the same stage asked again (a reply lost): already done
                raise StoreError(f"transaction {txn} is already staged")
            if age < STAGE_TTL:
                raise Busy(f"another configuration push (transaction {other}) is in progress")
            self.abort(other)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise StoreError(f"invalid generation {number!r}")
        self._adoptable()
        tmp = self.etc / f".partial-{txn}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            write_tree(tmp, tree)
            doc = {"generation": number, "hash": expected, "committed": None, "from": source}
            (tmp / GENERATION_FILE).write_text(json.dumps(doc) + "\n")
            _fsync_dir(tmp)
            os.rename(tmp, target)  # only a complete copy is ever called staged
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def abort(self, txn: str) -> bool:
        """Remove a staged configuration; whether there was one."""
        target = self._staged_dir(txn)
        if not target.exists():
            return False
        shutil.rmtree(target)
        return True

    def commit(self, txn: str) -> Generation:
        """Make the staged configuration the current one: one rename of ``current``."""
        staged = self._staged_dir(txn)
        done = sorted(self.etc.glob(f"{GEN_PREFIX}*-{txn}"))
        if not staged.is_dir() and done:  # committed before (a reply lost, a crash midway)
            final = done[0]
            doc = json.loads((final / GENERATION_FILE).read_text())
            if self._current_dir() != final:
                self._switch(final, txn)
            return Generation(int(doc["generation"]), str(doc["hash"]), doc["committed"],
                              str(doc.get("from", "")))
        if not staged.is_dir():
            raise StoreError(f"transaction {txn} is not staged here (aborted, or too old)")
        doc = json.loads((staged / GENERATION_FILE).read_text())
        doc["committed"] = time.time()
        _write_json(staged / GENERATION_FILE, doc)
        self._adopt_layout()
        final = self.etc / f"{GEN_PREFIX}{doc['generation']}-{txn}"
        os.rename(staged, final)
        self._switch(final, txn)
        return Generation(int(doc["generation"]), str(doc["hash"]), doc["committed"],
                          str(doc.get("from", "")))

    def _switch(self, final: Path, txn: str) -> None:
        """Point ``current`` at ``final``: the commit point."""
        link = self.etc / f".current-{txn}"
        link.unlink(missing_ok=True)
        os.symlink(final.name, link)
        previous = self._current_dir()
        os.replace(link, self.etc / CURRENT)  # the commit point
        _fsync_dir(self.etc)
        self._prune(keep={final.name, previous.name if previous else ""})

    def _adoptable(self) -> dict[str, Any]:
        """The files a first push keeps as generation 0 (none on a server without clp.conf).
        Files that cannot be kept whole (a symlink in scripts/, an unreadable file) refuse the
        push: a server must never be left with a clp.conf or scripts it had not."""
        if (self.etc / CURRENT).is_symlink() or not (self.etc / CONFIG_FILE).is_file():
            return {}
        try:
            return decoded(collect(self.etc))
        except StoreError as e:
            raise StoreError(f"the configuration files in {self.etc} cannot be kept as its "
                             f"generation 0 ({e}): fix them, then push again") from None

    def _current_dir(self) -> Path | None:
        cur = self.etc / CURRENT
        return self.etc / os.readlink(cur) if cur.is_symlink() else None

    def _adopt_layout(self) -> None:
        """First push: move the files found in etc/ into generation 0 and point clp.conf and
        scripts/ at ``current``. Each step leaves the same content visible; scripts/ is absent
        only between two renames."""
        links = {CONFIG_FILE: f"{CURRENT}/{CONFIG_FILE}", SCRIPTS: f"{CURRENT}/{SCRIPTS}"}
        if (self.etc / CURRENT).is_symlink() and all(
                (self.etc / n).is_symlink() and os.readlink(self.etc / n) == t
                for n, t in links.items()):
            return
        gen0 = self.etc / f"{GEN_PREFIX}0-install"
        if not gen0.exists():
            tmp = self.etc / ".partial-install"
            shutil.rmtree(tmp, ignore_errors=True)
            tree = self._adoptable()  # raises, before anything moved, if they cannot be kept
            write_tree(tmp, tree)
            os.rename(tmp, gen0)
        if not (self.etc / CURRENT).is_symlink():
            os.symlink(gen0.name, self.etc / ".current-install")
            os.replace(self.etc / ".current-install", self.etc / CURRENT)
        for name, target in links.items():
            path = self.etc / name
            if path.is_symlink() and os.readlink(path) == target:
                continue
            tmp_link = self.etc / f".link-{name}"
            tmp_link.unlink(missing_ok=True)
            os.symlink(target, tmp_link)
            if path.is_dir() and not path.is_symlink():
                aside = self.etc / f".old-{name}-{os.getpid()}"
                os.rename(path, aside)
                os.rename(tmp_link, path)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.replace(tmp_link, path)

    def _prune(self, keep: set[str]) -> None:
        """Keep the new and the previous generation (for a look back), remove older ones."""
        for p in self.etc.glob(GEN_PREFIX + "*"):
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """Whole or not at all, also across a power loss."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(doc) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_generation(etc: Path) -> dict[str, Any] | None:
    """For clpstat and the services: the generation in ``etc`` as a dict (None: no config)."""
    gen = ConfigStore(etc).current()
    return None if gen is None else gen.to_dict()
