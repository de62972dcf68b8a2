"""userw (user-space monitor): this server's user space still gets scheduled.

Every check is a thread of ``clusterpro`` that must run once per interval. With the heartbeat's
timing (``use_heartbeat``, the product's default) the interval and timeout are the heartbeat's.

``method``:

- ``softdog`` / ``ipmi``: the kernel's watchdog device (``device``, ``/dev/watchdog`` by default:
  the softdog module or the BMC's watchdog; ``/dev/watchdog1`` picks the second of two drivers, and
  the lab's servers have theirs at ``/dev/lab/watchdog``, clp.lab.watchdog) is opened with the
  monitor's timeout (whole seconds; it follows the ``clptoratio`` ratio) and fed at every check,
  but only while the cluster service's heartbeat loop runs: its last round (the ``last_tick`` mark)
  at most ``FEED_LAG`` heartbeat intervals old. If the service stalls longer than the timeout the
  kernel resets the machine by itself, with no help from user space: the product's guarantee. The
  peers wait for that reset before they take its groups over (clp.config.fencing): a hung server's
  kernel would still answer for its addresses and write to its disks. A machine without the device
  shows the monitor in Caution with the reason (never a reset loop), and the stall is then caught
  only as with ``keepalive``.
- ``keepalive`` (the product's default, which uses NEC's own keepalive driver): clp has no such
  driver; the check measures the time since the previous check with ``CLOCK_BOOTTIME`` (a
  suspended or frozen machine counts) and reports an error when it exceeds the timeout, which
  leads to the final action (``action``: RESET -> keepalive_reset, PANIC -> keepalive_panic,
  done through the kernel's sysrq). Unlike a kernel watchdog this acts only when user space runs
  again: docs/monitors.md says so.

The product's optional stall probes run at each check when set: open and close a dummy file,
write ``write_size`` bytes to it, create a dummy thread; a probe that hangs makes the check time
out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from clp.clusterd.marks import ServiceMarks
from clp.config.fencing import FEED_LAG, WATCHDOG_METHODS, WatchdogWait, device_timeout
from clp.config.issues import ConfigIssue
from clp.monitors.base import Check, MonitorType, caution, failed, normal

A = "suspend_monitors"
WATCHDOG = "/dev/watchdog"
WDIOC_SETTIMEOUT = 0xC0045706  # _IOWR('W', 6, int)
WDIOC_GETSUPPORT = 0x80285700  # _IOR('W', 0, struct watchdog_info): 40 bytes


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class UserSpaceMonitor(MonitorType):
    name: ClassVar[str] = "userw"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            "use_heartbeat": {"type": "boolean", "default": True, "x-apply": A},
            "method": {"enum": ["keepalive", "softdog", "ipmi"], "default": "keepalive",
                       "x-apply": A},
            "action": {"enum": ["RESET", "PANIC"], "default": "RESET", "x-apply": A},
            "open_file": {"type": "boolean", "default": False, "x-apply": A},
            "write_file": {"type": "boolean", "default": False, "x-apply": A},
            "write_size": {"type": "integer", "minimum": 1, "maximum": 9999999,
                           "default": 10000, "x-apply": A},
            "create_thread": {"type": "boolean", "default": False, "x-apply": A},
            "device": {"type": "string", "pattern": "^/[^\\x00]*$", "default": WATCHDOG,
                       "x-apply": A,
                       "x-error": {"pattern": "{value!r} is not an absolute device path"}},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 3, "timeout": 90, "retry": 0}
    timings: ClassVar[tuple[str, ...]] = ("always",)
    default_recovery: ClassVar[str] = "local_server"
    pseudo_failure: ClassVar[bool] = False

    @classmethod
    def recovery_defaults_of(cls, item: Mapping[str, Any]) -> dict[str, Any]:
        action = "keepalive_panic" if item.get("action") == "PANIC" else "keepalive_reset"
        return {"final_action": action}

    @classmethod
    def timing_of(cls, item: Mapping[str, Any], heartbeat: Mapping[str, Any]
                  ) -> tuple[float, float]:
        if item.get("use_heartbeat", True):
            return float(heartbeat["interval"]), float(heartbeat["timeout"])
        return float(item["interval"]), float(item["timeout"])

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        """A watchdog must not fire between two checks; every failover from its servers waits
        for it (clp.config.fencing): said, with how long."""
        if item.get("method") not in WATCHDOG_METHODS:
            return
        heartbeat = data["cluster"]["heartbeat"]
        interval, timeout = cls.timing_of(item, heartbeat)
        dev = device_timeout(timeout)
        if dev <= interval * FEED_LAG:
            yield ConfigIssue(path, f"{name}: the watchdog ({dev} s, the timeout in whole "
                                    f"seconds) must be longer than {FEED_LAG} check intervals "
                                    f"({interval * FEED_LAG:g} s), or it resets a healthy "
                                    f"server")
        else:
            w = WatchdogWait.of(timeout, float(heartbeat["interval"]))
            yield ConfigIssue(path, f"{name}: every failover from its servers waits "
                                    f"{w.wait():g} s after the server is found down, for its "
                                    f"watchdog ({dev} s) to have reset it if it hung "
                                    f"(docs/monitors.md, userw); a shorter userw timeout "
                                    f"shortens it", severity="warning")

    def __init__(self, params: Any, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.last: float | None = None
        self.watchdog: int | None = None
        self.asked = 0  # the device timeout last asked for
        self.device_timeout = 0  # what the device answered it runs with (0: unknown)
        self.wrong = ""  # why that is not what was asked
        self.missing = ""

    def begin(self) -> None:
        self.last = boottime()
        if self.params["method"] in ("softdog", "ipmi"):
            device = self.params["device"]
            try:
                fd = os.open(device, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as e:
                self.missing = f"{device} cannot be opened ({e.strerror})"
                self.ctx.log.error("userw %s: %s: user-space stalls are detected only when "
                                   "user space runs again", self.ctx.monitor, self.missing)
                return
            try:  # a watchdog answers its info request (the lab covers it with /dev/null)
                fcntl.ioctl(fd, WDIOC_GETSUPPORT, bytearray(40))
            except OSError as e:
                os.close(fd)
                self.missing = f"{device} is not a watchdog device ({e.strerror})"
                self.ctx.log.error("userw %s: %s", self.ctx.monitor, self.missing)
                return
            self.watchdog = fd
            self._set_timeout()

    def inline(self) -> bool:
        """Without the stall probes and without a watchdog device (keepalive, or the device
        missing) a check only reads a clock: it runs on the event loop, which is the user
        space it watches. Feeding a watchdog stays in a thread: an IPMI watchdog's write waits
        for the BMC."""
        return self.watchdog is None and not (
            self.params["open_file"] or self.params["write_file"]
            or self.params["create_thread"])

    def _set_timeout(self) -> None:
        """The device's timeout: the check's, in whole seconds (it follows clptoratio). The
        driver answers with the timeout it took (some round it, some have a fixed one): when
        that is not the one asked, the peers' takeover wait (clp.config.fencing) does not cover
        it, and the monitor says so (Caution)."""
        want = device_timeout(self.ctx.limit())
        if self.watchdog is None or want == self.asked:
            return
        self.asked = want
        buf = bytearray(struct.pack("i", want))
        try:
            fcntl.ioctl(self.watchdog, WDIOC_SETTIMEOUT, buf)
            self.device_timeout = struct.unpack("i", buf)[0]
        except OSError as e:
            self.device_timeout = 0
            self.wrong = (f"the device refused the timeout of {want} s ({e.strerror}): the "
                          f"peers' takeover wait may not cover it")
            return
        self.wrong = "" if self.device_timeout == want else (
            f"the device runs with a timeout of {self.device_timeout} s, not {want} s: the "
            f"peers' takeover wait may not cover it")

    def loop_stalled(self, now: float) -> float | None:
        """How long the cluster service's heartbeat loop has not run, when that is longer than
        ``FEED_LAG`` intervals (then the watchdog is not fed); None when it runs, or has not
        started or has stopped cleanly (no ``last_tick`` mark)."""
        tick = ServiceMarks(self.ctx.root.volatile_dir).last_tick()
        if tick is None or now - tick <= FEED_LAG * self.ctx.config.heartbeat_interval:
            return None
        return now - tick

    def check(self) -> Check:
        now = boottime()
        gap, self.last = (now - self.last if self.last is not None else 0.0), now
        stalled = None
        if self.watchdog is not None:
            stalled = self.loop_stalled(now)
            if stalled is None:
                self._set_timeout()
                os.write(self.watchdog, b"\0")
        self._probes()
        if gap > self.ctx.limit():
            return failed(f"user space was not scheduled for {gap:.1f} s (timeout "
                          f"{self.ctx.limit():g} s)")
        if stalled is not None:
            return caution(f"the cluster service's heartbeat loop has not run for "
                           f"{stalled:.1f} s: the watchdog is not fed (it resets this server "
                           f"{self.device_timeout} s after the last feed)")
        if self.missing or self.wrong:
            return caution(f"{self.params['method']}: {self.missing or self.wrong}")
        return normal()

    def _probes(self) -> None:
        if self.params["open_file"] or self.params["write_file"]:
            with open(self.ctx.root.work_dir / f"userw.{self.ctx.monitor}", "wb") as f:
                if self.params["write_file"]:
                    f.write(b"\0" * self.params["write_size"])
                    f.flush()
                    os.fsync(f.fileno())
        if self.params["create_thread"]:
            t = threading.Thread(target=lambda: None, name="clp-userw-probe")
            t.start()
            t.join()

    def end(self) -> None:
        fd, self.watchdog = self.watchdog, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, b"V")  # magic close: the watchdog stops instead of firing
            os.close(fd)
