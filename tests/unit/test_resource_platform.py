"""fip and ARP when the host misbehaves: an unreadable address list is an error (stop) or
"cannot tell" (probe), never "not active"; a failing ARP socket is closed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from clp import platform
from clp.paths import InstallRoot
from clp.platform import arp, linux, solaris
from clp.platform.linux import LinuxPlatform, PlatformError
from clp.platform.proc import ProcResult
from clp.platform.solaris import SolarisPlatform
from clp.resources import registry
from clp.resources.base import Status
from tests.unit.test_resources import context

FIP = {"ip": "198.18.0.12", "ping_check": True, "check_timeout": 0.1, "garp_count": 3}
FAILURES = [(ProcResult(1, "RTNETLINK answers: busy"), "exited 1: RTNETLINK answers: busy"),
            (ProcResult(-9, "", timed_out=True), "timed out"),
            (ProcResult(0, "[{not json"), "cannot read the output")]


@pytest.mark.parametrize(("answer", "why"), FAILURES)
def test_unreadable_addresses_are_an_error_not_inactive(
        root: InstallRoot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        answer: ProcResult, why: str) -> None:
    monkeypatch.setattr(linux, "run", lambda *a, **k: answer)
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
    monkeypatch.setattr(linux, "run", lambda *a, **k: ProcResult(0, "[]"))
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
