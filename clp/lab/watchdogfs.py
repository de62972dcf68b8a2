"""The lab's watchdog devices: one per lab server, kept by the lab outside the server, which
powers the server off when it is not fed in time (what softdog or a BMC does on a real server).

``python -m clp.lab.watchdogfs --mount DIR --control SOCKET --server NAME ... --fire ARGV``
mounts DIR (:mod:`clp.lab.fusefs`) with one file per server, ``DIR/<server>``, which behaves as
the kernel's watchdog API says (``Documentation/watchdog/watchdog-api.rst``) as far as clp's
userw uses it:

- opening arms it (one opener at a time: a second open gets EBUSY), with the last timeout set
  (60 s at first, softdog's default);
- every write feeds it; a write containing ``V`` (the magic character) lets the next close
  disarm it; a close without it leaves it armed ("watchdog did not stop!");
- ioctls: ``WDIOC_GETSUPPORT`` (SETTIMEOUT, MAGICCLOSE, KEEPALIVEPING), ``WDIOC_SETTIMEOUT``
  (1 to 65535 s; feeds and answers the timeout taken), ``WDIOC_GETTIMEOUT``,
  ``WDIOC_KEEPALIVE``, ``WDIOC_GETTIMELEFT``; any other is ENOTTY; reads are EINVAL.

A device armed and not fed for its timeout *fires*: it disarms and runs ``ARGV SERVER`` (the
lab's power-off, ``clplab --name LAB crash``), logged with how late the last feed was. The lab
disarms a server's device when it powers the server off, and the server's init when it boots
(a reset machine has no running watchdog).

Control (one JSON request per connection): ``{"op": "state"}`` every device's state,
``{"op": "disarm", "server": NAME}``, ``{"op": "stop"}``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from clp.lab import fusefs
from clp.lab.fusefs import FSYNC, IN_HEADER, RW_IN, WRITE, WRITE_OUT, FlatFS, Refused

WDIOC_GETSUPPORT = 0x80285700  # _IOR('W', 0, struct watchdog_info): 40 bytes
WDIOC_KEEPALIVE = 0x80045705
WDIOC_SETTIMEOUT = 0xC0045706
WDIOC_GETTIMEOUT = 0x80045707
WDIOC_GETTIMELEFT = 0x8004570A
WDIOF_SETTIMEOUT, WDIOF_MAGICCLOSE, WDIOF_KEEPALIVEPING = 0x0080, 0x0100, 0x8000
INFO = struct.Struct("<II32s")  # options, firmware_version, identity
INT = struct.Struct("<i")
DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 65535
TICK = 0.02  # seconds between two looks at the deadlines
FIRE_TIMEOUT = 120.0  # seconds the power-off command may take


@dataclass
class Device:
    server: str
    timeout: int = DEFAULT_TIMEOUT
    holder: int = 0  # the handle of the open holding it (0: closed)
    armed: bool = False
    deadline: float = 0.0  # monotonic
    fed: float = 0.0  # monotonic, the last feed
    magic: bool = False  # the last write had a V: the next close disarms
    fired: int = 0

    def feed(self, now: float) -> None:
        self.fed, self.deadline = now, now + self.timeout

    def state(self, now: float) -> dict[str, Any]:
        return {"open": bool(self.holder), "armed": self.armed, "timeout": self.timeout,
                "left": round(self.deadline - now, 3) if self.armed else None,
                "fired": self.fired}


class WatchdogFS(FlatFS):
    name = "clp.lab.watchdogfs"

    def __init__(self, mountpoint: str, servers: list[str], fire: list[str],
                 clock: Any = time.monotonic) -> None:
        super().__init__(mountpoint, servers)
        self.devices = {node: Device(name) for node, name in self.files.items()}
        self.fire_argv = fire
        self.clock = clock
        self.lock = threading.Lock()
        self._handles = 0

    def _device(self, server: str) -> Device:
        for dev in self.devices.values():
            if dev.server == server:
                return dev
        raise ValueError(f"no watchdog of {server!r}")

    # the device
    def opened(self, node: int) -> tuple[int, int]:
        dev = self.devices[node]
        with self.lock:
            if dev.holder:
                raise Refused(errno.EBUSY)
            self._handles += 1
            dev.holder, dev.armed, dev.magic = self._handles, True, False
            dev.feed(self.clock())
            return dev.holder, fusefs.FOPEN_DIRECT_IO

    def released(self, node: int, fh: int) -> None:
        dev = self.devices[node]
        with self.lock:
            if fh != dev.holder:
                return  # an open from before a power-off (disarm): not its device any more
            dev.holder = 0
            if dev.magic:
                dev.armed = False
            elif dev.armed:
                self.log(f"{dev.server}: closed without the magic character: still armed, "
                         f"fires in {dev.deadline - self.clock():.1f} s unless fed")

    def data(self, node: int, unique: int, opcode: int, req: memoryview) -> None:
        dev = self.devices[node]
        if opcode == WRITE:
            _, _, size, *_ = RW_IN.unpack_from(req, IN_HEADER.size)
            data = bytes(req[IN_HEADER.size + RW_IN.size:IN_HEADER.size + RW_IN.size + size])
            with self.lock:
                dev.feed(self.clock())
                dev.magic = b"V" in data
            return self.reply(unique, 0, WRITE_OUT.pack(size, 0))
        if opcode == FSYNC:
            return self.reply(unique, 0)
        return self.reply(unique, -errno.EINVAL)

    def ioctl(self, node: int, cmd: int, data: bytes, out_size: int) -> tuple[int, bytes]:
        dev = self.devices[node]
        with self.lock:
            now = self.clock()
            if cmd == WDIOC_GETSUPPORT:
                return 0, INFO.pack(WDIOF_SETTIMEOUT | WDIOF_MAGICCLOSE | WDIOF_KEEPALIVEPING, 0,
                                    b"clplab watchdog")
            if cmd == WDIOC_SETTIMEOUT:
                if len(data) < INT.size:
                    raise Refused(errno.EINVAL)
                (want,) = INT.unpack(data[:INT.size])
                if not 1 <= want <= MAX_TIMEOUT:
                    raise Refused(errno.EINVAL)
                dev.timeout = want
                dev.feed(now)
                return 0, INT.pack(want)
            if cmd == WDIOC_GETTIMEOUT:
                return 0, INT.pack(dev.timeout)
            if cmd == WDIOC_KEEPALIVE:
                dev.feed(now)
                return 0, INT.pack(0)
            if cmd == WDIOC_GETTIMELEFT:
                return 0, INT.pack(max(0, int(dev.deadline - now)) if dev.armed else 0)
        raise Refused(errno.ENOTTY)

    # the lab's side
    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "disarm":  # a power-off or a boot: the device is fresh, whoever had it open
            dev = self._device(str(req.get("server")))
            with self.lock:
                dev.armed, dev.magic, dev.holder = False, False, 0
        elif op != "state":
            raise ValueError(f"unknown op {op!r}")
        now = self.clock()
        with self.lock:
            return {"ok": True, "pid": os.getpid(),
                    "devices": {d.server: d.state(now) for d in self.devices.values()}}

    def expired(self) -> list[Device]:
        """The devices whose deadline passed, disarmed and counted (then fire them)."""
        now = self.clock()
        out = []
        with self.lock:
            for dev in self.devices.values():
                if dev.armed and now >= dev.deadline:
                    dev.armed = False
                    dev.fired += 1
                    out.append(dev)
        return out

    def watch(self, stop: threading.Event) -> None:
        """Fire every device not fed in time, until ``stop``."""
        while not stop.wait(TICK):
            for dev in self.expired():
                late = self.clock() - dev.fed
                self.log(f"{dev.server}: not fed for {late:.2f} s (timeout {dev.timeout} s): "
                         f"powering it off")
                threading.Thread(target=self._fire, args=(dev.server,), daemon=True).start()

    def _fire(self, server: str) -> None:
        argv = [*self.fire_argv, server]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=FIRE_TIMEOUT,
                               check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.log(f"{server}: the power-off {argv} failed: {e}")
            return
        text = (r.stdout + r.stderr).strip().replace("\n", " | ")
        self.log(f"{server}: power-off exited {r.returncode}" + (f": {text}" if text else ""))


def parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clp.lab.watchdogfs")
    p.add_argument("--mount", required=True, metavar="DIR")
    p.add_argument("--control", required=True, metavar="SOCKET")
    p.add_argument("--server", action="append", default=[], metavar="NAME")
    p.add_argument("--fire", required=True, metavar="JSON",
                   help="The power-off command as a JSON list; the server's name is appended.")
    return p.parse_args(args)


def main(args: list[str]) -> int:
    opts = parse(args)
    fire = json.loads(opts.fire)
    if not isinstance(fire, list) or not fire or not all(isinstance(a, str) for a in fire):
        print("--fire: a JSON list of strings", file=sys.stderr)
        return 2
    return fusefs.serve(lambda: WatchdogFS(opts.mount, opts.server, fire), opts.control,
                        lambda fs, stop: fs.watch(stop))  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
