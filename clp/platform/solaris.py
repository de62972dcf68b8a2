"""Solaris/illumos host operations: the same interface as ``LinuxPlatform``, other commands.

Unit-tested by the command lines it builds (we have no Solaris machine to run them on):
logical interfaces with ``ifconfig addif/removeif`` (the kernel announces the address with a
gratuitous ARP when the logical interface comes up), UFS with ``fsck -F ufs -y``, ZFS datasets in
legacy mount mode, ``fuser -c`` for the processes using a file system, and ``uadmin`` for power.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path

from clp.platform.linux import IfaceAddr, LinuxPlatform, Mount, PlatformError, Process
from clp.platform.proc import run

_IF_LINE = re.compile(r"^(\S+?):(?: |\d+:)")
_INET = re.compile(r"\binet6? ([0-9a-fA-F.:]+)(?:/(\d+))?(?: netmask ([0-9a-f]+))?")


class SolarisPlatform(LinuxPlatform):
    name = "solaris"

    def interfaces(self, log: logging.Logger | None = None) -> list[IfaceAddr]:
        result = run(["ifconfig", "-a"], timeout=10, log=None)
        if not result.ok:
            why = "timed out" if result.timed_out else f"exited {result.returncode}"
            raise PlatformError(f"ifconfig -a {why}: {result.output.strip()}")
        try:
            return parse_ifconfig(result.output)
        except ValueError as exc:
            raise PlatformError(f"cannot read the output of ifconfig -a: {exc}") from exc

    def add_address_argv(self, ip: str, prefix: int, iface: str) -> list[str]:
        return ["ifconfig", iface, "addif", f"{ip}/{prefix}", "up"]

    def del_address_argv(self, ip: str, prefix: int, iface: str) -> list[str]:
        return ["ifconfig", iface, "removeif", ip]

    def add_address(self, ip: str, prefix: int, iface: str, log: logging.Logger | None) -> None:
        self._ifconfig(self.add_address_argv(ip, prefix, iface), log)

    def del_address(self, ip: str, prefix: int, iface: str, log: logging.Logger | None) -> None:
        self._ifconfig(self.del_address_argv(ip, prefix, iface), log)

    def _ifconfig(self, argv: list[str], log: logging.Logger | None) -> None:
        result = self.execute(argv, 30, log)
        if not result.ok:
            why = "timed out" if result.timed_out else f"exited {result.returncode}"
            raise PlatformError(f"{' '.join(argv[:3])} {why}: {result.output.strip()}")

    def announce(self, ip: str, iface: str, count: int, log: logging.Logger | None = None) -> None:
        """Nothing to do: the kernel announces the address on ``addif ... up``."""

    def answers(self, ip: str, iface: str, log: logging.Logger | None = None,
                timeout: float = 1.0) -> bool:
        return run(["ping", ip, str(max(1, round(timeout)))], timeout=5 + timeout,
                   log=log).returncode == 0

    def watch_addresses(self, wanted: dict[str, str], period: float,
                        lifetime: float) -> list[str]:
        return []  # not offered: each check is the full ping (the kernel has no AF_PACKET)

    def link_up(self, device: str) -> bool:
        result = run(["dladm", "show-link", "-p", "-o", "STATE", device], timeout=10, log=None)
        if not result.ok:
            raise PlatformError(f"dladm show-link {device}: {result.output.strip()}")
        return result.output.strip() == "up"

    def processes(self) -> list[Process]:
        result = run(["ps", "-e", "-o", "pid=,etime=,args="], timeout=10, log=None)
        if not result.ok:
            raise PlatformError(f"ps -e failed: {result.output.strip()}")
        return parse_ps(result.output)

    def mounts(self) -> list[Mount]:
        found = []
        for line in Path("/etc/mnttab").read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 3:
                found.append(Mount("", fields[1], fields[0], fields[2]))
        return found

    def mounted_at(self, device: str) -> list[str]:
        return [m.mount_point for m in self.mounts() if m.source == device]

    def fsck_argv(self, device: str, fs: str) -> list[str] | None:
        return ["fsck", "-F", "ufs", "-y", raw_device(device)] if fs == "ufs" else None

    def mount_argv(self, device: str, mount_point: str, fs: str, options: str) -> list[str]:
        return ["mount", "-F", fs, "-o", options, device, mount_point]

    def kill_holders_argv(self, mount_point: str, force: bool) -> list[str]:
        return ["fuser", "-c", "-k", mount_point] if force else [
            "fuser", "-c", "-s", "TERM", mount_point]


def parse_ps(text: str) -> list[Process]:
    """``ps -e -o pid=,etime=,args=`` lines; the start is minus the elapsed seconds, so that a
    process started later has a larger value (as Linux's start time)."""
    found = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        found.append(Process(int(parts[0]), -_etime_seconds(parts[1]),
                             parts[2] if len(parts) > 2 else ""))
    return found


def _etime_seconds(text: str) -> int:
    """[[dd-]hh:]mm:ss -> seconds."""
    days, _, clock = text.rpartition("-")
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


def raw_device(device: str) -> str:
    """fsck wants the character device: /dev/dsk/c1t0d0s6 -> /dev/rdsk/c1t0d0s6."""
    return device.replace("/dev/dsk/", "/dev/rdsk/", 1)


def parse_ifconfig(text: str) -> list[IfaceAddr]:
    found = []
    iface = ""
    for line in text.splitlines():
        head = _IF_LINE.match(line)
        if head and not line[0].isspace():
            iface = head.group(1)
            continue
        match = _INET.search(line)
        if not match or not iface:
            continue
        addr, bits, mask = match.groups()
        if mask:
            bits = str(bin(int(mask, 16)).count("1"))
        net = ipaddress.ip_interface(f"{addr}/{bits or (32 if ':' not in addr else 128)}")
        found.append((iface, net.network, net.ip))
    return found


POWER_ARGV = {
    "shutdown": ["uadmin", "2", "0"],  # A_SHUTDOWN, AD_HALT
    "reboot": ["uadmin", "2", "1"],  # A_SHUTDOWN, AD_BOOT
    "panic": ["uadmin", "5", "1"],  # A_DUMP: panic, dump, reboot
    "reset": ["uadmin", "1", "1"],  # A_REBOOT, AD_BOOT: at once, no sync
}
