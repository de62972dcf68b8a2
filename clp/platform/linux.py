"""Linux host operations for resources: addresses, gratuitous ARP, fsck/mount/umount, and the
processes holding a mount point.

Command lines are built by ``*_argv`` methods (pure, unit-tested) and run through
``clp.platform.proc.run``; addresses are read, added and removed over rtnetlink
(``clp.platform.netlink``), mounts read from ``/proc/self/mountinfo``. ``SolarisPlatform``
overrides the builders and readers.

A reader that cannot read (netlink fails or answers junk) raises ``PlatformError`` rather than
answering "nothing here": an empty answer would let a stop report an address gone while it is
still up.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from clp.platform import arp, netlink
from clp.platform.proc import ProcResult, run

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IfaceAddr = tuple[str, Network, Address]  # (interface, its subnet, its address)


class PlatformError(Exception):
    """The state of this server could not be read (the command failed, hung or answered junk)."""


@dataclass(frozen=True)
class Mount:
    device: str  # major:minor
    mount_point: str
    source: str
    fs: str


@dataclass(frozen=True)
class Process:
    pid: int
    start: int  # start time: tells a process from a later one that reuses its pid
    command: str  # its command line, arguments separated by spaces


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _iface_addr(name: str, cidr: str) -> IfaceAddr:
    iface = ipaddress.ip_interface(cidr)
    return name, iface.network, iface.ip


def subnet_for(addrs: list[IfaceAddr], ip: str) -> tuple[str, int] | None:
    """The interface of ``addrs`` whose subnet contains ``ip`` (not a host route), and the
    prefix length."""
    addr = ipaddress.ip_address(ip)
    for name, net, _own in addrs:
        if addr.version == net.version and addr in net and net.prefixlen < net.max_prefixlen:
            return name, net.prefixlen
    return None


def holder_of(addrs: list[IfaceAddr], ip: str) -> str | None:
    """The interface of ``addrs`` that carries ``ip``, or None."""
    addr = ipaddress.ip_address(ip)
    return next((name for name, _net, own in addrs if own == addr), None)


class LinuxPlatform:
    name = "linux"

    # -- addresses -----------------------------------------------------------------------------
    def interfaces(self, log: logging.Logger | None = None) -> list[IfaceAddr]:
        """(interface, its subnet, its address) for every address configured here, read over
        rtnetlink; raises ``PlatformError`` when the kernel's answer cannot be had or read."""
        try:
            return [_iface_addr(name, cidr) for name, cidr in netlink.addresses()]
        except (OSError, ValueError) as exc:
            raise PlatformError(f"cannot read the addresses over netlink: {exc}") from exc

    def interface_for(self, ip: str) -> tuple[str, int] | None:
        """The interface whose subnet contains ``ip`` (not a host route), and the prefix length;
        raises ``PlatformError`` as ``interfaces``."""
        return subnet_for(self.interfaces(), ip)

    def has_address(self, ip: str) -> str | None:
        """The interface carrying ``ip`` on this server, or None; raises ``PlatformError``."""
        return holder_of(self.interfaces(), ip)

    def add_address(self, ip: str, prefix: int, iface: str, log: logging.Logger | None) -> None:
        """``ip addr add``, over rtnetlink; raises ``PlatformError`` with the kernel's reason."""
        try:
            netlink.add_address(ip, prefix, iface)
        except OSError as exc:
            raise PlatformError(exc.strerror or str(exc)) from exc

    def del_address(self, ip: str, prefix: int, iface: str, log: logging.Logger | None) -> None:
        """``ip addr del``, over rtnetlink; raises ``PlatformError`` with the kernel's reason."""
        try:
            netlink.del_address(ip, prefix, iface)
        except OSError as exc:
            raise PlatformError(exc.strerror or str(exc)) from exc

    def announce(self, ip: str, iface: str, count: int, log: logging.Logger | None = None) -> None:
        """Gratuitous ARP (IPv4; an IPv6 address is announced by the kernel's unsolicited NA)."""
        if ipaddress.ip_address(ip).version == 4:
            arp.announce(iface, ip, count)

    def answers(self, ip: str, iface: str, log: logging.Logger | None = None,
                timeout: float = 0.2) -> bool:
        """Does another host already answer for ``ip``? An ARP probe (IPv4), else one ping."""
        if ipaddress.ip_address(ip).version == 4:
            found, how = arp.answers(iface, ip, timeout)
            if log is not None:
                log.info("duplicate-address check of %s on %s: %s (%s)", ip, iface,
                         "answered" if found else "no answer", how)
            return found
        r = run(["ping", "-c", "1", "-W", "1", ip], timeout=5, log=log)
        return r.returncode == 0

    def watch_addresses(self, wanted: dict[str, str], period: float,
                        lifetime: float) -> list[str]:
        """Keep probing exactly these addresses (ip -> interface; IPv4) in the background, so
        that :meth:`answers` for one of them needs only a last short probe; see
        :func:`clp.platform.arp.keep_watching`. The addresses that could not be watched."""
        return arp.keep_watching({ip: i for ip, i in wanted.items()
                                  if ipaddress.ip_address(ip).version == 4}, period, lifetime)

    # -- links and processes (monitors) --------------------------------------------------------
    def link_up(self, device: str) -> bool:
        """Whether the NIC ``device`` has link (carrier) and is up; ``PlatformError`` when there
        is no such NIC or its state cannot be read."""
        base = Path("/sys/class/net") / device
        if "/" in device or device in ("", ".", "..") or not base.is_dir():
            raise PlatformError(f"there is no network interface {device!r}")
        try:
            operstate = (base / "operstate").read_text().strip()
            carrier = (base / "carrier").read_text().strip()
        except OSError as e:  # carrier is unreadable while the interface is down (EINVAL)
            if (base / "operstate").exists() and e.errno == 22:
                return False
            raise PlatformError(f"cannot read the link state of {device}: {e}") from e
        return carrier == "1" and operstate in ("up", "unknown")

    def processes(self) -> list[Process]:
        """Every running process (not the ended ones their parent has not reaped yet): its id,
        start time (clock ticks since boot) and command line."""
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_bytes()
                raw = Path(entry.path, "cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
            comm_end = stat.rfind(b")")
            fields = stat[comm_end + 2:].split()
            if fields[0] in (b"Z", b"X"):  # ended, not yet reaped by its parent: not running
                continue
            argv = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
            if not argv:  # a kernel thread or a zombie: its name, as ps shows it
                argv = "[" + stat[stat.find(b"(") + 1:comm_end].decode("utf-8", "replace") + "]"
            found.append(Process(int(entry.name), int(fields[19]), argv))
        return found

    # -- disks ---------------------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            found.append(Mount(fields[2], _unescape(fields[4]), _unescape(tail[1]), tail[0]))
        return found

    def device_id(self, device: str) -> str | None:
        """major:minor of a block device (None when it is not one, e.g. a zfs dataset)."""
        try:
            rdev = os.stat(device).st_rdev
        except OSError:
            return None
        return f"{os.major(rdev)}:{os.minor(rdev)}" if rdev else None

    def mounted_at(self, device: str) -> list[str]:
        """Mount points where ``device`` is mounted on this server."""
        dev = self.device_id(device)
        return [m.mount_point for m in self.mounts()
                if (dev is not None and m.device == dev) or (dev is None and m.source == device)]

    def is_mount_point(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(m.mount_point == real for m in self.mounts())

    def fsck_argv(self, device: str, fs: str) -> list[str] | None:
        if fs == "xfs":
            return ["xfs_repair", device]
        if fs in ("ext2", "ext3", "ext4"):
            return ["e2fsck", "-p", device]
        return None  # zfs checks itself (scrub); ufs is Solaris

    def mount_argv(self, device: str, mount_point: str, fs: str, options: str) -> list[str]:
        return ["mount", "-t", fs, "-o", options, device, mount_point]

    def umount_argv(self, mount_point: str) -> list[str]:
        return ["umount", mount_point]

    def kill_holders_argv(self, mount_point: str, force: bool) -> list[str]:
        return ["fuser", "-k", "-KILL" if force else "-TERM", "-m", mount_point]

    def execute(self, argv: list[str], timeout: float, log: logging.Logger | None) -> ProcResult:
        return run(argv, timeout=timeout, log=log)
