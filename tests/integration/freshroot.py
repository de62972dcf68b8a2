"""A fresh root to install clp into: ``chroot`` into a directory whose /usr and /etc are the
host's, read-only, and whose /opt, /etc/systemd, /root, /run and /tmp are its own (empty at
first, kept on the host between commands).

Every command runs in its own ``unshare --mount`` namespace, so the bind mounts vanish with it
and nothing is ever mounted on the host. /run has no systemd/system in it: systemctl works
offline there, as on a machine being installed before its first boot.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from pathlib import Path

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USR_LINKS = ("bin", "lib", "lib64", "sbin")  # Debian 12: merged /usr
OWN_DIRS = ("opt", "root", "run", "tmp", "var/tmp", "dev", "proc", "usr", "etc", "src",
            "wheels", "state/systemd/system")


class FreshRoot:
    def __init__(self, base: Path, repo: Path, wheels: Path) -> None:
        self.dir = base / "root"
        self.state = base / "state"
        self.repo, self.wheels = repo, wheels
        self.started: list[subprocess.Popen] = []
        for d in OWN_DIRS:
            (base / d if d.startswith("state") else self.dir / d).mkdir(parents=True,
                                                                        exist_ok=True)
        (self.dir / "tmp").chmod(0o1777)
        for link in USR_LINKS:
            if Path("/", link).is_symlink() and not (self.dir / link).exists():
                (self.dir / link).symlink_to(f"usr/{link}")

    def path(self, inside: str) -> Path:
        """A path of the fresh root, as the host sees it (/etc/systemd is kept in state/)."""
        if inside.startswith("/etc/systemd"):
            return self.state / "systemd" / inside.removeprefix("/etc/systemd").lstrip("/")
        return self.dir / inside.lstrip("/")

    def _argv(self, command: str, env: dict[str, str]) -> list[str]:
        r = shlex.quote(str(self.dir))
        words = " ".join(shlex.quote(f"{k}={v}") for k, v in
                         {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **env}.items())
        script = "\n".join([
            "set -e",
            f"mount --bind -o ro /usr {r}/usr",
            f"mount --bind -o ro /etc {r}/etc",
            f"mount --bind {shlex.quote(str(self.state / 'systemd'))} {r}/etc/systemd",
            f"mount --rbind /dev {r}/dev",
            f"mount -t proc proc {r}/proc",
            f"mount --bind -o ro {shlex.quote(str(self.repo))} {r}/src",
            f"mount --bind -o ro {shlex.quote(str(self.wheels))} {r}/wheels",
            f"exec chroot {r} /usr/bin/env -i {words} /bin/sh -c {shlex.quote(command)}"])
        return ["unshare", "--mount", "--propagation", "private", "--ipc", "--", "sh", "-c",
                script]

    def run(self, command: str, timeout: float = 120, **env: str
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(command, env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, command: str, **env: str) -> subprocess.Popen:
        """A long-running command in the fresh root, ended by :meth:`close` if still there."""
        proc = subprocess.Popen(self._argv(command, env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
