"""``clplogcc``'s collection on one server: what each type gathers, and the archive it makes.

The product's collection types select classes of information; ours, item by item (``PLAN``, also
the table of docs/commands.md):

============================  ==========================  =====  =====  =====
item                          archive path                type3  type1  type2
============================  ==========================  =====  =====  =====
logs (current files)          log/                        yes    yes    yes
logs (rotated .1 .. .N)       log/                               yes    yes
clp.conf, secrets masked      etc/clp.conf                yes    yes    yes
names of etc/ (no contents)   etc/listing.txt             yes    yes    yes
scripts                       etc/scripts/                       yes    yes
clpstat --json                state/clpstat.json          yes    yes    yes
clpshm dump                   state/clpshm.txt                   yes    yes
clpsupervise status           state/clpsupervise.json            yes    yes
run/ names                    state/run-listing.txt                     yes
work/                         work/                                     yes
processes (ps)                os/ps.txt                          yes    yes
uname, os-release             os/uname.txt, os/os-release        yes    yes
ip addr, ip route             os/ip-addr.txt, ip-route.txt       yes    yes
df, mounts                    os/df.txt, os/mounts.txt           yes    yes
kernel ring buffer, sockets   os/dmesg.txt, os/sockets.txt              yes
syslog (-r generations) [1]   syslog/                            yes    yes
============================  ==========================  =====  =====  =====

[1] of /var/log/syslog* and /var/log/messages*; a server with neither (journald only) gives
this boot's journal instead.

Each item is bounded (a command by ``ITEM_TIMEOUT``, a file by ``MAX_FILE``: its tail is kept) and
the whole by a deadline; an item that fails or is skipped is recorded in ``index.json`` with its
reason, never fatal to the others. Secrets never enter the archive: of etc/ only clp.conf (its
passwords, pass phrases and communities masked) and scripts/ are copied, the rest is listed by
name; symbolic links are recorded, not followed; every name is relative, without ``..``.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from clp.config.secrets import mask_secrets
from clp.paths import InstallRoot

TYPES = ("type1", "type2", "type3")
DEFAULT_TYPE = "type1"
ITEM_TIMEOUT = 20.0  # seconds one command may take
MAX_FILE = 64 * 1024 * 1024  # bytes of one file (or command output) kept: its tail
DEFAULT_SYSLOG = 2
ROTATED = re.compile(r"\.\d+(\.gz)?$")
SYSLOG_NAMES = ("syslog", "messages")
SYSLOG_DIR = Path("/var/log")


class CollectError(Exception):
    """A collection that cannot start at all (bad request, no room for the archive)."""


@dataclass(frozen=True)
class Item:
    name: str  # what index.json calls it
    types: frozenset[str]
    kind: str  # "files", "conf", "listing", "cmd", "func", "syslog"
    target: str  # archive path (a directory for files/syslog)
    source: str = ""  # install-root-relative directory, or the command / function key
    rotated: bool | None = None  # files: only rotated (True) / only current (False) / all


ALL = frozenset(TYPES)
WIDE = frozenset({"type1", "type2"})
TYPE2 = frozenset({"type2"})

PLAN: tuple[Item, ...] = (
    Item("logs", ALL, "files", "log", "log", rotated=False),
    Item("rotated logs", WIDE, "files", "log", "log", rotated=True),
    Item("clp.conf", ALL, "conf", "etc/clp.conf", "etc/clp.conf"),
    Item("etc listing", ALL, "listing", "etc/listing.txt", "etc"),
    Item("scripts", WIDE, "files", "etc/scripts", "etc/scripts"),
    Item("clpstat", ALL, "cmd", "state/clpstat.json", "clpstat"),
    Item("clpshm dump", WIDE, "cmd", "state/clpshm.txt", "clpshm"),
    Item("clpsupervise status", WIDE, "func", "state/clpsupervise.json", "supervise"),
    Item("run listing", TYPE2, "listing", "state/run-listing.txt", "run"),
    Item("work", TYPE2, "files", "work", "work"),
    Item("processes", WIDE, "cmd", "os/ps.txt", "ps"),
    Item("uname", WIDE, "cmd", "os/uname.txt", "uname"),
    Item("os-release", WIDE, "files", "os", "/etc/os-release"),
    Item("ip addr", WIDE, "cmd", "os/ip-addr.txt", "ip-addr"),
    Item("ip route", WIDE, "cmd", "os/ip-route.txt", "ip-route"),
    Item("df", WIDE, "cmd", "os/df.txt", "df"),
    Item("mounts", WIDE, "files", "os", "/proc/mounts"),
    Item("dmesg", TYPE2, "cmd", "os/dmesg.txt", "dmesg"),
    Item("sockets", TYPE2, "cmd", "os/sockets.txt", "ss"),
    Item("syslog", WIDE, "syslog", "syslog"),
)


def _clp_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-c", f"from clp.cli.{module} import main; main()", *args]


COMMANDS: dict[str, list[str]] = {
    "clpstat": _clp_command("clpstat", "--json"),
    "clpshm": _clp_command("clpshm", "dump"),
    "ps": ["ps", "-eLo", "pid,ppid,lwp,user,stat,lstart,time,args"],
    "uname": ["uname", "-a"],
    "ip-addr": ["ip", "addr"],
    "ip-route": ["ip", "route", "show", "table", "all"],
    "df": ["df", "-P"],
    "dmesg": ["dmesg"],
    "ss": ["ss", "-tanpu"],
}
JOURNAL = ["journalctl", "--no-pager", "-o", "short-iso", "-b"]
# directories of the install root never copied, whatever the type: the archives being made
EXCLUDED = ("work/logcc",)


def plan(collect_type: str) -> list[Item]:
    """The items of ``collect_type``, in archive order."""
    if collect_type not in TYPES:
        raise CollectError(f"Collect type must be specified 'type1' or 'type2' or 'type3'. "
                           f"Incorrect collection type is specified. ({collect_type!r})")
    return [item for item in PLAN if collect_type in item.types]


def mask_config(text: str) -> tuple[str, list[str]]:
    """clp.conf with every secret replaced by ``MASK`` (:mod:`clp.config.secrets`), and the
    dotted paths masked. A file that is not YAML is not copied at all (it could hold a secret
    we cannot find)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CollectError(f"clp.conf is not valid YAML, not copied: {e}") from None
    masked: list[str] = []
    doc = mask_secrets(doc, found=masked)
    note = ("# clp.conf as collected by clplogcc: secrets replaced by ********"
            + (f" ({', '.join(masked)})" if masked else " (none found)")
            + "; comments and layout are not kept\n")
    return note + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), masked


def safe_name(name: str) -> str:
    """``name`` if it is a relative archive name without ``..``; else CollectError."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or "\0" in name:
        raise CollectError(f"unsafe archive name {name!r}")
    return str(p)


def syslog_files(generations: int, log_dir: Path | None = None) -> list[Path]:
    """The newest ``generations`` files of each syslog family present (syslog, syslog.1,
    syslog.2.gz ...; messages ...), newest first."""
    found: list[Path] = []
    log_dir = SYSLOG_DIR if log_dir is None else log_dir
    for family in SYSLOG_NAMES:
        gens: list[tuple[int, Path]] = []
        for p in log_dir.glob(f"{family}*"):
            m = re.fullmatch(re.escape(family) + r"(?:\.(\d+)(?:\.gz)?)?", p.name)
            if m and p.is_file() and not p.is_symlink():
                gens.append((int(m.group(1) or 0), p))
        found += [p for _, p in sorted(gens)[:generations]]
    return found


@dataclass
class Collection:
    """One run: the archive being written, its index, and the deadline."""

    root: InstallRoot
    server: str
    collect_type: str
    syslog_generations: int
    deadline: float  # time.monotonic()
    prefix: str  # the top directory inside the archive
    tar: tarfile.TarFile
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add_bytes(self, target: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(safe_name(f"{self.prefix}/{target}"))
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, target: str, path: Path) -> tuple[int, bool]:
        """Copy a regular file (its tail beyond MAX_FILE); a symlink or other kind is refused.
        Bytes copied, and whether it was cut."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CollectError(f"{path} is not a regular file")
            size = min(st.st_size, MAX_FILE)
            f.seek(st.st_size - size)
            info = tarfile.TarInfo(safe_name(f"{self.prefix}/{target}"))
            info.size, info.mode, info.mtime = size, stat.S_IMODE(st.st_mode), int(st.st_mtime)
            self.tar.addfile(info, f)  # reads exactly size bytes, in blocks
        return size, st.st_size > size


def collect(root: InstallRoot, server: str, collect_type: str, syslog_generations: int,
            out: Path, budget: float) -> dict[str, Any]:
    """Write the archive of this server to ``out`` (tar.gz) within ``budget`` seconds; its
    index (also inside it as index.json)."""
    items = plan(collect_type)
    if not 1 <= syslog_generations <= 99:
        raise CollectError("Syslog generation must be specified in the range 1 to 99.")
    started = time.time()
    prefix = safe_name(out.name.removesuffix(".tar.gz"))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)  # root's
    with os.fdopen(fd, "wb") as f, \
            tarfile.open(fileobj=f, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        c = Collection(root, server, collect_type, syslog_generations,
                       time.monotonic() + budget, prefix, tar)
        for item in items:
            c.entries.append(_run_item(c, item))
        index = {"server": server, "type": collect_type, "syslog_generations": syslog_generations,
                 "started": started, "seconds": round(time.time() - started, 3),
                 "items": c.entries}
        c.add_bytes("index.json", json.dumps(index, indent=2).encode())
    return index


def _run_item(c: Collection, item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {"item": item.name, "path": item.target}
    t0 = time.monotonic()
    if t0 >= c.deadline:
        return {**entry, "ok": False, "error": "skipped: the collection's time ran out"}
    try:
        entry.update(HANDLERS[item.kind](c, item))
        entry.setdefault("ok", True)
    except (OSError, CollectError, subprocess.SubprocessError, tarfile.TarError) as e:
        entry.update(ok=False, error=str(e))
    entry["seconds"] = round(time.monotonic() - t0, 3)
    return entry


def _walk(base: Path) -> Iterator[Path]:
    """Every entry under ``base``, without following symbolic links, sorted."""
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            yield here / name


def _files(c: Collection, item: Item) -> dict[str, Any]:
    src = Path(item.source) if item.source.startswith("/") else c.root.root / item.source
    if src.is_file():  # one file of the OS (/etc/os-release, /proc/mounts)
        with open(src, "rb") as f:
            data = f.read(MAX_FILE)  # /proc files have no size to take a tail of
        c.add_bytes(f"{item.target}/{src.name}", data)
        return {"files": 1, "bytes": len(data)}
    if not src.is_dir():
        return {"ok": True, "note": f"{src} does not exist"}
    copied, total, skipped = 0, 0, []
    for p in _walk(src):
        rel = p.relative_to(src).as_posix()
        if any(p.is_relative_to(c.root.root / e) for e in EXCLUDED):
            continue
        if item.rotated is not None and bool(ROTATED.search(p.name)) != item.rotated:
            continue
        if time.monotonic() >= c.deadline:
            skipped.append(f"{rel}: the collection's time ran out")
            break
        try:
            n, cut = c.add_file(f"{item.target}/{rel}", p)
        except (OSError, CollectError) as e:
            skipped.append(f"{rel}: {'a symbolic link, not followed' if p.is_symlink() else e}")
            continue
        copied, total = copied + 1, total + n
        if cut:
            skipped.append(f"{rel}: only its last {MAX_FILE} bytes")
    return {"files": copied, "bytes": total, **({"skipped": skipped} if skipped else {})}


def _conf(c: Collection, item: Item) -> dict[str, Any]:
    text = (c.root.root / item.source).read_text(errors="replace")
    masked_text, masked = mask_config(text)
    c.add_bytes(item.target, masked_text.encode(), 0o600)
    return {"masked": masked}


def _listing(c: Collection, item: Item) -> dict[str, Any]:
    """Names, kinds, modes, sizes and times of a directory of the install root: no contents."""
    base = c.root.root / item.source
    lines = []
    for p in _walk(base) if base.is_dir() else []:
        st = p.lstat()
        lines.append(f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid} {st.st_size:>10} "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))} "
                     f"{p.relative_to(base).as_posix()}")
    c.add_bytes(item.target, ("\n".join(lines) + "\n").encode())
    return {"entries": len(lines)}


def _command(c: Collection, item: Item) -> dict[str, Any]:
    return _run_command(c, item.target, item.source, COMMANDS[item.source])


def _run_command(c: Collection, target: str, name: str, argv: list[str]) -> dict[str, Any]:
    """``argv``'s output (stdout and stderr, its tail beyond MAX_FILE) as ``target``; a command
    that fails or exceeds ITEM_TIMEOUT keeps what it wrote and is recorded as failed."""
    timeout = max(0.1, min(ITEM_TIMEOUT, c.deadline - time.monotonic()))
    env = {**os.environ, "CLP_ROOT": str(c.root.root), "LANG": "C", "COLUMNS": "400"}
    with tempfile.TemporaryFile() as out:  # on disk: a command's output is not held in memory
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as e:
            raise CollectError(f"{argv[0]}: {e.strerror}") from None
        try:
            code: int | None = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            code = None
        size = out.tell()
        out.seek(max(0, size - MAX_FILE))
        info = tarfile.TarInfo(safe_name(f"{c.prefix}/{target}"))
        info.size, info.mode, info.mtime = min(size, MAX_FILE), 0o644, int(time.time())
        c.tar.addfile(info, out)
    shown = [name, *argv[3:]] if argv[0] == sys.executable else argv
    entry: dict[str, Any] = {"command": " ".join(shown), "bytes": info.size}
    if code is None:
        return {**entry, "ok": False, "error": f"timed out after {timeout:.0f} s (output kept)"}
    if code != 0:
        return {**entry, "ok": False, "error": f"exit code {code} (output kept)"}
    return entry


def _function(c: Collection, item: Item) -> dict[str, Any]:
    data = FUNCTIONS[item.source](c)
    c.add_bytes(item.target, json.dumps(data, indent=2).encode())
    return {}


def _supervise(c: Collection) -> dict[str, Any]:
    from clp.platform.supervisor_client import SupervisorClient, SupervisorError

    try:
        return SupervisorClient(c.root, timeout=min(ITEM_TIMEOUT, 5.0)).status()
    except SupervisorError as e:
        raise CollectError(str(e)) from None


def _syslog(c: Collection, item: Item) -> dict[str, Any]:
    files = syslog_files(c.syslog_generations)
    entry: dict[str, Any] = {"files": [str(p) for p in files]}
    if not files:  # journald only (Debian 12's default): this boot's journal instead
        return {"note": "no /var/log/syslog* or /var/log/messages* on this server: "
                        "this boot's journal instead",
                **_run_command(c, f"{item.target}/journal.txt", "journal", JOURNAL)}
    for p in files:
        _, cut = c.add_file(f"{item.target}/{p.name}", p)
        if cut:
            entry.setdefault("skipped", []).append(f"{p.name}: only its last {MAX_FILE} bytes")
    return entry


HANDLERS: dict[str, Callable[[Collection, Item], dict[str, Any]]] = {
    "files": _files, "conf": _conf, "listing": _listing, "cmd": _command, "func": _function,
    "syslog": _syslog,
}
FUNCTIONS: dict[str, Callable[[Collection], dict[str, Any]]] = {"supervise": _supervise}


def archive_name(server: str, when: float | None = None) -> str:
    """``<server>-<YYYYmmddHHMMSS>.tar.gz``: a second collection does not overwrite the first."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(when))
    return safe_name(f"{server}-{stamp}.tar.gz")


def local_server(root: InstallRoot) -> str:
    """This server's name in clp.conf, else its host name (a server without a configuration can
    still have its logs collected)."""
    from clp.config import ConfigError, load_config

    try:
        from clp.clusterd.service import local_server_name

        return local_server_name(load_config(root.config_dir))
    except (ConfigError, SystemExit):
        return socket.gethostname().split(".")[0]


def check_archive(path: Path) -> int:
    """Read the archive through (in a stream: nothing of it held in memory) and refuse it if a
    member is absolute, climbs with ``..``, or is a link; the number of members."""
    n = 0
    with tarfile.open(path, "r|gz") as tar:
        for member in tar:
            safe_name(member.name)
            if member.issym() or member.islnk() or member.isdev():
                raise CollectError(f"archive member {member.name!r} is a link or a device")
            n += 1
    return n
