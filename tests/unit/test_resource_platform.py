"""fip and ARP when the host misbehaves: an unreadable address list is an error (stop) or
"cannot tell" (probe), never "not active"; a failing ARP socket is closed."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from clp import platform
from clp.paths import InstallRoot
from clp.platform import arp, netlink, solaris
from clp.platform.linux import LinuxPlatform, PlatformError
from clp.platform.proc import ProcResult
from clp.platform.solaris import SolarisPlatform
from clp.resources import registry
from clp.resources.base import Status
from tests.unit.test_resources import context

FIP = {"ip": "198.18.0.12", "ping_check": True, "check_timeout": 0.1, "garp_count": 3}
FAILURES = [(OSError(errno.EBUSY, "Device or resource busy"), "Device or resource busy"),
            (OSError(errno.ETIMEDOUT, "netlink: the kernel did not answer"), "did not answer"),
            (OSError(errno.EBADMSG, "netlink: a message of 3 bytes"), "a message of 3 bytes")]


@pytest.mark.parametrize(("failure", "why"), FAILURES)
def test_unreadable_addresses_are_an_error_not_inactive(
        root: InstallRoot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        failure: OSError, why: str) -> None:
    def fail() -> list[tuple[str, str]]:
        raise failure

    monkeypatch.setattr(netlink, "addresses", fail)
    monkeypatch.setattr(platform, "current", LinuxPlatform)
    with pytest.raises(PlatformError, match=why):
        LinuxPlatform().interfaces()
    fip, ctx = registry.get("fip"), context(root, "fip1")
    stopped = fip.stop(FIP, ctx)
    assert stopped.status is Status.ERROR and why in stopped.reason
    assert stopped.reason.startswith("cannot stop 198.18.0.12: cannot read the addresses")
    started = fip.start(FIP, ctx)
    assert started.status is Status.ERROR and why in started.reason
    assert "no interface" not in started.reason
    with caplog.at_level(logging.WARNING):
        assert fip.probe(FIP, ctx) is None
    assert "cannot tell whether 198.18.0.12 is active" in caplog.text


def test_solaris_unreadable_ifconfig_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solaris, "run", lambda *a, **k: ProcResult(-9, "", timed_out=True))
    with pytest.raises(PlatformError, match="ifconfig -a timed out"):
        SolarisPlatform().interfaces()
    monkeypatch.setattr(solaris, "run", lambda *a, **k: ProcResult(2, "ifconfig: bad"))
    with pytest.raises(PlatformError, match="exited 2: ifconfig: bad"):
        SolarisPlatform().has_address("198.18.0.12")


def test_readable_empty_address_list_is_not_active(root: InstallRoot,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netlink, "addresses", lambda: [])
    monkeypatch.setattr(platform, "current", LinuxPlatform)
    fip, ctx = registry.get("fip"), context(root, "fip1")
    assert fip.probe(FIP, ctx) is False
    assert fip.stop(FIP, ctx).reason == "198.18.0.12 is not active on this server"
    assert fip.start(FIP, ctx).status is Status.ERROR_HARD  # no subnet: a real answer


class FakeSocket:
    def __init__(self, *args: Any, fail: str = "send") -> None:
        self.fail, self.closed = fail, False

    def bind(self, address: Any) -> None:
        if self.fail == "bind":
            raise OSError(19, "No such device")

    def send(self, frame: bytes) -> int:
        raise OSError(100, "Network is down")

    def close(self) -> None:
        self.closed = True


def test_announce_closes_its_socket_when_the_first_send_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sock = FakeSocket()
    monkeypatch.setattr(arp, "_mac", lambda iface: b"\x02" * 6)
    monkeypatch.setattr(arp, "_socket", lambda iface: sock)
    with pytest.raises(OSError, match="Network is down"):
        arp.announce("eth0", "198.18.0.12", 3)
    assert sock.closed


def test_arp_socket_closed_when_bind_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeSocket] = []

    def fake(*args: Any) -> FakeSocket:
        made.append(FakeSocket(fail="bind"))
        return made[-1]

    monkeypatch.setattr(arp.socket, "socket", fake)
    with pytest.raises(OSError, match="No such device"):
        arp._socket("nosuch0")
    assert made and made[0].closed


NETLINK_IN_NEW_NETNS = textwrap.dedent("""
    import errno, subprocess
    from clp.platform import netlink
    from clp.platform.linux import LinuxPlatform, PlatformError
    subprocess.run(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"], check=True)
    subprocess.run(["ip", "link", "set", "d0", "up"], check=True)
    subprocess.run(["ip", "addr", "add", "198.18.0.1/24", "dev", "d0"], check=True)
    host = LinuxPlatform()
    assert host.interface_for("198.18.0.12") == ("d0", 24), host.interfaces()
    assert host.has_address("198.18.0.12") is None
    host.add_address("198.18.0.12", 24, "d0", None)
    host.add_address("2001:db8::12", 64, "d0", None)
    assert ("d0", "198.18.0.12/24") in netlink.addresses()
    assert ("d0", "2001:db8::12/64") in netlink.addresses()
    shown = subprocess.run(["ip", "-o", "addr", "show", "d0"], capture_output=True, text=True)
    assert "inet 198.18.0.12/24" in shown.stdout and "2001:db8::12/64" in shown.stdout, shown
    assert host.has_address("198.18.0.12") == "d0"
    try:
        host.add_address("198.18.0.12", 24, "d0", None)
        raise SystemExit("a second add did not fail")
    except PlatformError as e:
        assert isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.EEXIST, e
    host.del_address("198.18.0.12", 24, "d0", None)
    assert host.has_address("198.18.0.12") is None
    try:
        host.del_address("198.18.0.12", 24, "d0", None)
        raise SystemExit("a second delete did not fail")
    except PlatformError as e:
        assert e.__cause__.errno == errno.EADDRNOTAVAIL, e
    try:
        host.add_address("198.18.0.13", 24, "nosuch0", None)
        raise SystemExit("an unknown interface did not fail")
    except PlatformError as e:
        assert str(e) == "no interface nosuch0", e
    print("ok")
""")


def test_netlink_adds_lists_and_removes_addresses_as_ip_does() -> None:
    """In a network namespace of its own (unshare): what netlink adds, ``ip`` shows, and the
    kernel's refusals come back as errors with their errno."""
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", NETLINK_IN_NEW_NETNS],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
