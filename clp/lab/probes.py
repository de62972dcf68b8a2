"""What tests look at from outside the cluster: the client machine, addresses and mounts.

A mixin of :class:`clp.lab.Lab`. The client namespace ``<lab>-client`` is a plain network
namespace on both LANs (198.18.0.200, 198.18.1.200): a user's machine reaching the floating IPs
and a ping target. :meth:`addresses_on` and :meth:`mounts_of` read a server's network and mount
namespaces from the host, so a test can check that a group is never active on two servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clp.lab import netns as nx
from clp.lab.netns import LabError

if TYPE_CHECKING:
    from collections.abc import Callable

VIRTUAL_FS = {"tmpfs", "proc", "sysfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2"}


def communicate(proc: subprocess.Popen, where: str, argv: list[str], timeout: float,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Wait for ``proc`` (started in its own session); kill its whole group on the deadline."""
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise LabError(f"{where}: {' '.join(argv)} did not finish within {timeout:g} s "
                       "(killed)") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def lab_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(source, mount point) of the block-device mounts in a mountinfo text, the lab's only:
    shared disks by their ``/dev/lab`` path or a loop device."""
    found = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 2 or rest[0] in VIRTUAL_FS:
            continue
        source, point = rest[1], fields[4].replace("\\040", " ")
        if source.startswith(("/dev/lab/", "/dev/loop")):
            found.append((source, point))
    return found


class Probes:
    name: str
    doc: dict[str, Any]

    if TYPE_CHECKING:
        index: Callable[[str], int]
        _init_pid: Callable[[str], int | None]

    def _client_env(self) -> dict[str, str]:
        return {"PATH": f"{self.doc['bin']}:/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHONPATH": self.doc["repo"], "CLPLAB": self.name,
                "CLPLAB_SERVER": nx.CLIENT, "HOME": "/root", "LANG": "C.UTF-8"}

    def client_popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Start ``argv`` on the client machine (``ip netns exec <lab>-client``)."""
        if not self.doc.get("client"):
            raise LabError(f"lab {self.name!r} has no client (made with client=False)")
        env = {**self._client_env(), **(kw.pop("env", None) or {})}
        env.pop("CLP_NO_POWER", None)
        kw.setdefault("cwd", "/")
        ns = nx.netns_name(self.name, nx.CLIENT)
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], env=env, **kw)

    def client_exec(self, argv: list[str], timeout: float = 30,
                    input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = self.client_popen(argv, stdin=subprocess.PIPE if input is not None
                                 else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
        return communicate(proc, "client", argv, timeout, input)

    def addresses_on(self, server: str) -> list[str]:
        """Every IPv4 address on the server's interfaces now (lo excluded), running or not."""
        self.index(server)
        found = nx.ip_addresses(nx.netns_name(self.name, server))
        return [cidr.split("/")[0] for _, cidr in found if ":" not in cidr]

    def mounts_of(self, server: str) -> list[tuple[str, str]]:
        """(source, mount point) of the shared disks mounted in a server; none when it is down."""
        self.index(server)
        pid = self._init_pid(server)
        if pid is None:
            return []
        try:
            return lab_mounts(Path(f"/proc/{pid}/mountinfo").read_text())
        except OSError as e:
            raise LabError(f"{server}: cannot read its mounts ({e})") from None
