"""The lab's watchdog device semantics (clp.lab.watchdogfs), driven without a mount: open arms,
writes and the keepalive ioctl feed, the magic character lets a close disarm, a close without
it leaves it armed, an expired device fires once, a disarm (power-off, boot) stops it, and a
stale close from before a power-off does not touch the next opener's device."""

from __future__ import annotations

import errno
import struct

import pytest

from clp.lab import watchdogfs as w
from clp.lab.fusefs import IN_HEADER, RW_IN, WRITE, Refused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fs() -> tuple[w.WatchdogFS, Clock, dict[int, int]]:
    clock = Clock()
    f = w.WatchdogFS("/nowhere", ["server1", "server2"], ["true"], clock)
    replies: dict[int, int] = {}
    f.reply = lambda unique, error, *payload: replies.__setitem__(unique, error)  # type: ignore
    return f, clock, replies


def write(f: w.WatchdogFS, node: int, data: bytes, unique: int = 7) -> None:
    req = IN_HEADER.pack(0, WRITE, unique, node, 0, 0, 0, 0, 0) + \
        RW_IN.pack(0, 0, len(data), 0, 0, 0, 0) + data
    f.data(node, unique, WRITE, memoryview(req))


def test_open_arms_feeding_delays_and_a_magic_close_disarms() -> None:
    f, clock, replies = fs()
    node = f.node_of["server1"]
    fh, _ = f.opened(node)
    with pytest.raises(Refused) as busy:
        f.opened(node)
    assert busy.value.err == errno.EBUSY
    assert f.ioctl(node, w.WDIOC_SETTIMEOUT, struct.pack("<i", 3), 4) == (0, struct.pack("<i", 3))
    clock.now += 2.9
    write(f, node, b"\0")
    assert replies == {7: 0}
    clock.now += 2.9
    assert f.ioctl(node, w.WDIOC_KEEPALIVE, b"", 4)[0] == 0
    clock.now += 2.9
    assert f.expired() == []
    write(f, node, b"V")
    f.released(node, fh)
    clock.now += 100
    assert f.expired() == [] and not f.devices[node].armed


def test_a_close_without_the_magic_character_leaves_it_armed_and_it_fires_once() -> None:
    f, clock, _ = fs()
    node = f.node_of["server2"]
    fh, _ = f.opened(node)
    f.ioctl(node, w.WDIOC_SETTIMEOUT, struct.pack("<i", 2), 4)
    write(f, node, b"\0")
    f.released(node, fh)
    clock.now += 1.9
    assert f.expired() == []
    clock.now += 0.2
    (dev,) = f.expired()
    assert dev.server == "server2" and dev.fired == 1
    assert f.expired() == []  # once


def test_a_disarm_stops_it_and_a_stale_close_is_ignored() -> None:
    f, clock, _ = fs()
    node = f.node_of["server1"]
    old, _ = f.opened(node)
    f.command({"op": "disarm", "server": "server1"})  # powered off
    assert not f.devices[node].armed and not f.devices[node].holder
    new, _ = f.opened(node)  # booted again before the old close came: no EBUSY
    write(f, node, b"V")
    f.released(node, old)  # the late close of the old open changes nothing
    assert f.devices[node].holder == new and f.devices[node].armed
    state = f.command({"op": "state"})["devices"]["server1"]
    assert state["open"] and state["armed"] and state["timeout"] == w.DEFAULT_TIMEOUT
    with pytest.raises(ValueError, match="no watchdog of 'server9'"):
        f.command({"op": "disarm", "server": "server9"})


def test_the_ioctls_say_what_it_supports_and_refuse_the_rest() -> None:
    f, clock, _ = fs()
    node = f.node_of["server1"]
    f.opened(node)
    result, info = f.ioctl(node, w.WDIOC_GETSUPPORT, b"", 40)
    options, _, identity = w.INFO.unpack(info)
    assert result == 0 and options & w.WDIOF_SETTIMEOUT and options & w.WDIOF_MAGICCLOSE
    assert identity.rstrip(b"\0") == b"clplab watchdog"
    for bad in (0, w.MAX_TIMEOUT + 1):
        with pytest.raises(Refused):
            f.ioctl(node, w.WDIOC_SETTIMEOUT, struct.pack("<i", bad), 4)
    f.ioctl(node, w.WDIOC_SETTIMEOUT, struct.pack("<i", 10), 4)
    clock.now += 4
    assert f.ioctl(node, w.WDIOC_GETTIMELEFT, b"", 4) == (0, struct.pack("<i", 6))
    assert f.ioctl(node, w.WDIOC_GETTIMEOUT, b"", 4) == (0, struct.pack("<i", 10))
    with pytest.raises(Refused) as other:
        f.ioctl(node, 0x5401, b"", 0)  # TCGETS
    assert other.value.err == errno.ENOTTY
