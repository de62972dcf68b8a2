"""Where a clp installation keeps its files, and the names of its IPC objects.

One install root per server (``CLP_ROOT``, default ``/opt/nec/clusterpro`` as the product).
Every path and every POSIX IPC name is derived from it, so several instances (the lab's
servers, or tests) can coexist on one machine without touching each other.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DEFAULT_ROOT = "/opt/nec/clusterpro"


class InstallRoot:
    """Where everything of clp lives on a server. (A plain class, not a dataclass: every
    command builds one, and importing dataclasses costs more than the whole of clpstat's
    reading.)"""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        object.__setattr__(self, "root", root)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"InstallRoot is read-only (cannot set {name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InstallRoot) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"InstallRoot(root={self.root!r})"

    @classmethod
    def from_env(cls) -> InstallRoot:
        return cls(Path(os.environ.get("CLP_ROOT", DEFAULT_ROOT)))

    # configuration: the directory the seed tells users to keep together
    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "clp.conf"

    @property
    def key_file(self) -> Path:
        """Per-cluster HMAC key, mode 0600, identical on every server."""
        return self.config_dir / "cluster.key"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def alert_log(self) -> Path:
        return self.log_dir / "alert.log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def control_socket(self) -> Path:
        """Control API of ``clusterpro`` (root-only UNIX socket)."""
        return self.run_dir / "clusterpro.sock"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "clpsupervise.sock"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    # POSIX IPC names (one flat namespace per IPC namespace, hence the root hash)
    @property
    def ipc_tag(self) -> str:
        return hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:10]

    def shm_name(self, region: str) -> str:
        return f"/clp.{self.ipc_tag}.{region}"

    def sem_name(self, region: str) -> str:
        return f"/clp.{self.ipc_tag}.{region}.lock"

    def mq_name(self, queue: str) -> str:
        return f"/clp.{self.ipc_tag}.{queue}"

    @property
    def volatile_dir(self) -> Path:
        """Per-install-root files that survive a restart of the services but not a reboot of the
        server (tmpfs: /dev/shm on Linux, /tmp on Solaris)."""
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
        return base / f"clp.{self.ipc_tag}.d"

    def ensure_dirs(self) -> None:
        for d in (self.config_dir, self.log_dir, self.run_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)


Stamp = tuple[int, int, int]


def file_stamp(path: Path) -> Stamp | None:
    """What tells a file changed (inode, modification time, size), following symlinks: a
    service that re-reads clp.conf or the key when it changes compares two of these. None when
    the file cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
