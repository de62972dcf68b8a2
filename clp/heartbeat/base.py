"""What every heartbeat path plugin implements, and what the cluster service gives it.

One plugin instance serves one interconnect of clp.conf (``lanhb1``, ``diskhb1``, ``comhb1``,
``witnesshb1``). Every path carries the same 96-byte record (:mod:`clp.heartbeat.packet`): the
service builds the round's :class:`Outgoing` once per interval and each plugin sends it its own
way; whatever a plugin receives goes through one :class:`Receiver`, which verifies, drops and
counts by reason, and hands good heartbeats to the service.

Threading rule: :meth:`HeartbeatPath.send` and :meth:`HeartbeatPath.start` run on the event loop
and never block (a plugin with blocking I/O, disk or serial, does it in its own thread); the
``on_heartbeat`` callback must be called on the event loop thread (a thread posts with
``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.packet import Drop, Heartbeat, PacketError, ReplayGuard

# (sender index, path index, heartbeat[, when it arrived: time.monotonic(), if the path knows
# better than "now"])
OnHeartbeat = Callable[..., None]


@dataclass(frozen=True)
class Outgoing:
    """What this server says in one round, on every path."""

    seq: int
    state: int  # packet.SENDER_*
    sent: float  # wall clock
    heard: int = 0  # bitmap of servers this server counts Online
    offline: int = 0  # bitmap of servers this server declared Offline


@dataclass
class PathContext:
    """What the service hands every plugin."""

    key: bytes
    cluster_name: str
    servers: tuple[str, ...]  # server names by index (clp.conf priority order)
    my_index: int
    incarnation: int
    interval: float
    on_heartbeat: OnHeartbeat
    heartbeat_port: int = 29002  # lanhb's UDP port (clp.conf cluster.ports.heartbeat)
    cluster_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.cluster_id = packet.cluster_id(self.cluster_name)

    @property
    def me(self) -> str:
        return self.servers[self.my_index]

    def encode(self, out: Outgoing, path_index: int) -> bytes:
        return packet.encode(self.key, Heartbeat(
            self.cluster_id, self.my_index, path_index, self.incarnation, out.seq, out.sent,
            out.state, out.heard, out.offline))


class Receiver:
    """Verifies received records for one path: authentic, this cluster, a member of the path
    other than us, newer than the last one accepted. Drops are counted by reason and logged on
    the first of each kind only (a flood must not flood the log)."""

    def __init__(self, ctx: PathContext, path_index: int, path_name: str,
                 members: frozenset[int], log: logging.Logger) -> None:
        self.ctx = ctx
        self.path_index = path_index
        self.path_name = path_name
        self.members = members
        self.log = log
        self.received = 0
        self.drops: Counter[str] = Counter()
        self._guard = ReplayGuard()

    def accept(self, data: bytes, source: str, expect_sender: int | None = None,
               count_stale: bool = True,
               max_late: tuple[float, float] | None = None) -> Heartbeat | None:
        """The verified heartbeat in ``data`` (from ``source``, for messages), or None.

        ``expect_sender``: the only server that may have sent it (a LAN address, a disk slot).
        ``count_stale``: whether a record that is not newer counts as a replay drop; a disk slot
        or witness answer that has not changed since the last read is simply not news.
        ``max_late``: (now, seconds) to refuse a record sent longer ago than that by its own
        signed send time (a relay that holds records back); a NaN send time counts as late.
        """
        try:
            hb = packet.decode(self.ctx.key, data, self.ctx.cluster_id)
        except PacketError as e:
            self._drop(e.drop, source, str(e))
            return None
        if (hb.path != self.path_index or hb.sender == self.ctx.my_index
                or hb.sender not in self.members
                or (expect_sender is not None and hb.sender != expect_sender)):
            self._drop(Drop.UNKNOWN_SENDER, source, f"server #{hb.sender} on path #{hb.path}")
            return None
        if max_late is not None and not max_late[0] - hb.sent <= max_late[1]:
            self._drop(Drop.LATE, source, f"incarnation {hb.incarnation} seq {hb.seq} sent "
                       f"{max_late[0] - hb.sent:.3f} s ago, more than {max_late[1]:g} s: relayed "
                       "late, or the clocks differ")
            return None
        if not self._guard.accept(hb):
            if count_stale:
                self._drop(Drop.REPLAY, source, f"incarnation {hb.incarnation} seq {hb.seq} not "
                           "newer than the last accepted (a replay, or a restart with the "
                           "clock set back and its work directory lost)")
            return None
        self.received += 1
        return hb

    def deliver(self, hb: Heartbeat, arrived: float | None = None) -> None:
        """Hand ``hb`` to the service; ``arrived``: when the kernel received it (monotonic), if
        the path knows (lanhb), else it counts as received now."""
        if arrived is None:
            self.ctx.on_heartbeat(hb.sender, self.path_index, hb)
        else:
            self.ctx.on_heartbeat(hb.sender, self.path_index, hb, arrived)

    def _drop(self, drop: Drop, source: str, detail: str) -> None:
        first = self.drops[drop.value] == 0
        self.drops[drop.value] += 1
        if first:  # late ones mean clocks apart or a relay holding records: an alert
            self.log.warning("%s: dropped a heartbeat from %s (%s); further drops are only "
                             "counted", self.path_name, source, detail,
                             extra={"alert": drop is Drop.LATE})


class DeviceHealth:
    """This server's own view of a path's device or link (disk I/O, serial port, witness
    reachability). Logged with an alert on each change only, so a dead device does not flood."""

    def __init__(self, path_name: str, what: str, log: logging.Logger) -> None:
        self.path_name = path_name
        self.what = what
        self.log = log
        self.error: str | None = None
        self.errors = 0
        self._bug_logged = False

    def unexpected(self, e: Exception, where: str) -> str:
        """A bug in the path's own thread (not a device error): its traceback is logged the
        first time, from inside the ``except``; the reason to report as the device's failure."""
        if not self._bug_logged:
            self._bug_logged = True
            self.log.exception("%s: unexpected error in the %s", self.path_name, where)
        return f"unexpected error: {type(e).__name__}: {e}"

    def failed(self, reason: str) -> None:
        self.errors += 1
        if self.error is None:
            self.log.error("%s: %s failed: %s", self.path_name, self.what, reason,
                           extra={"alert": True})
        self.error = reason

    def ok(self) -> None:
        if self.error is not None:
            self.log.info("%s: %s works again", self.path_name, self.what,
                          extra={"alert": True})
        self.error = None


class HeartbeatPath(ABC):
    """One interconnect of clp.conf as this server uses it."""

    type: ClassVar[str]  # lan | disk | com | witness

    def __init__(self, ctx: PathContext, ic: Interconnect, index: int,
                 log: logging.Logger) -> None:
        if ctx.me not in ic.servers:
            raise ValueError(f"{ic.name} is not used by {ctx.me}")
        self.ctx = ctx
        self.ic = ic
        self.name = ic.name
        self.index = index
        self.peers = {ctx.servers.index(s): s for s in ic.servers if s != ctx.me}
        members = frozenset(ctx.servers.index(s) for s in ic.servers)
        self.receiver = Receiver(ctx, index, ic.name, members, log)
        self.sent = 0
        self.send_errors = 0

    @abstractmethod
    async def start(self) -> None:
        """Open sockets/devices; a device that is not there yet is a DeviceHealth error, not an
        exception (the path is then simply down until it works)."""

    @abstractmethod
    def send(self, out: Outgoing) -> None:
        """Send this round's heartbeat. On the event loop; must not block."""

    @abstractmethod
    def close(self) -> None:
        """Stop threads, close devices. Idempotent."""

    @property
    def local_error(self) -> str | None:
        """This server's own problem with the path (device failing), or None."""
        return None

    def counters(self) -> dict[str, Any]:
        return {"type": self.type, "sent": self.sent, "send_errors": self.send_errors,
                "received": self.receiver.received, "drops": dict(self.receiver.drops),
                "local_error": self.local_error}


def percentiles(values: Collection[float]) -> dict[str, float] | None:
    """p50/p99/max of a path's recent measurements (delays, I/O cycles, round trips) for
    ``clpstat --json``; None before the first one."""
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}


# type -> "module:Class", imported only when a configuration uses the type
PLUGINS: dict[str, str] = {
    "lan": "clp.heartbeat.lanhb:LanHeartbeat",
    "disk": "clp.heartbeat.diskhb:DiskHeartbeat",
    "com": "clp.heartbeat.comhb:ComHeartbeat",
    "witness": "clp.heartbeat.witnesshb:WitnessHeartbeat",
}


def plugin_class(type_name: str) -> type[HeartbeatPath]:
    import importlib

    try:
        module, cls = PLUGINS[type_name].split(":")
    except KeyError:
        raise ValueError(f"unknown heartbeat type {type_name!r}") from None
    return getattr(importlib.import_module(module), cls)
