"""Starting and stopping this server's clp services through whatever supervises them.

``clpsupervise`` when its control socket is there (servers without systemd, the lab), else
systemd, else SMF. Which one is used is decided by what runs, never guessed: with none of them the
caller gets an error naming what was looked for.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from clp.paths import InstallRoot

# The product's five system services in start order (seed chapter 3's table; chapters 8, 9 and 10
# disable them in the reverse order). systemd/ and smf/ encode this order in their dependencies.
SERVICES = ("clusterpro_evt", "clusterpro_trn", "clusterpro", "clusterpro_webmgr",
            "clusterpro_alertsync")
STOP_ORDER = tuple(reversed(SERVICES))


class ServiceError(Exception):
    pass


class ServiceManager(Protocol):
    def start(self, name: str) -> None: ...
    def stop(self, name: str) -> None: ...


class _Supervised:
    def __init__(self, root: InstallRoot) -> None:
        from clp.platform.supervisor_client import SupervisorClient

        self.client = SupervisorClient(root)

    def start(self, name: str) -> None:
        self._check(self.client.start(name))

    def stop(self, name: str) -> None:
        self._check(self.client.stop(name))

    @staticmethod
    def _check(reply: object) -> None:
        ok = reply.get("ok", True) if isinstance(reply, dict) else True
        if not ok:
            raise ServiceError(str(reply.get("message")))  # type: ignore[union-attr]


class _Command:
    """systemd or SMF: one command line per action."""

    def __init__(self, argv: dict[str, list[str]]) -> None:
        self.argv = argv

    def _run(self, action: str, name: str) -> None:
        cmd = [*self.argv[action], name]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise ServiceError(f"{' '.join(cmd)} failed: {r.stderr.strip() or r.returncode}")

    def start(self, name: str) -> None:
        self._run("start", name)

    def stop(self, name: str) -> None:
        self._run("stop", name)


def service_manager(root: InstallRoot) -> ServiceManager:
    if root.supervisor_socket.exists():
        return _Supervised(root)
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        return _Command({"start": ["systemctl", "start"], "stop": ["systemctl", "stop"]})
    if shutil.which("svcadm"):
        return _Command({"start": ["svcadm", "enable", "-st"],
                         "stop": ["svcadm", "disable", "-st"]})
    raise ServiceError(f"no service manager found: clpsupervise is not running "
                       f"({root.supervisor_socket}), and neither systemd nor SMF is present")
