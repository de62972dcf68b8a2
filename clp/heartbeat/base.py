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

Every record received is checked by the context's :class:`clp.heartbeat.rxtable.RxTable`; only
news reaches ``on_heartbeat`` (see that module), the rest waits in the table for
:meth:`RxTable.pull`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clp.config.model import Interconnect
from clp.heartbeat import packet
from clp.heartbeat.packet import Drop, Heartbeat, PacketError
from clp.heartbeat.rxtable import ANY_SENDER, NEWS, QUIET, Record, RxTable

# (sender index, path index, heartbeat, when it arrived (time.monotonic(): LAN, the kernel's
# stamp), when the same heartbeat first arrived on any path)
OnHeartbeat = Callable[[int, int, Heartbeat, float, float], None]


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
    n_paths: int = 16  # interconnects in clp.conf (path indexes below it)
    cluster_id: int = field(init=False)
    table: RxTable = field(init=False)

    def __post_init__(self) -> None:
        self.cluster_id = packet.cluster_id(self.cluster_name)
        self.table = RxTable(self.key, self.cluster_id, self.my_index, len(self.servers),
                             self.n_paths)

    @property
    def me(self) -> str:
        return self.servers[self.my_index]

    def encode(self, out: Outgoing, path_index: int) -> bytes:
        return packet.pack(self.key, self.cluster_id, self.my_index, path_index,
                           self.incarnation, out.seq, out.sent, out.state, out.heard,
                           out.offline)


class Receiver:
    """Verifies received records for one path (in the context's table): authentic, this
    cluster, a member of the path other than us, newer than the last one accepted. News goes to
    the service; drops are counted by reason and logged on the first of each kind only (a flood
    must not flood the log)."""

    def __init__(self, ctx: PathContext, path_index: int, path_name: str,
                 members: frozenset[int], log: logging.Logger) -> None:
        self.ctx = ctx
        self.path_index = path_index
        self.path_name = path_name
        self.members = members
        self.log = log
        self.drops: Counter[str] = Counter()
        self.news = 0  # records handed to the service at once (the rest waited for a pull)
        ctx.table.set_members(path_index, members)

    @property
    def received(self) -> int:
        """Records accepted on this path."""
        return sum(self.ctx.table.entry(s, self.path_index)[0] for s in self.members)

    def accept(self, data: bytes, source: str, expect_sender: int | None = None,
               count_stale: bool = True, max_late: tuple[float, float] | None = None) -> bool:
        """Take the record in ``data`` (from ``source``, for messages): True when it was
        accepted (news is handed to the service now, a quiet one waits in the table).

        ``expect_sender``: the only server that may have sent it (a LAN address, a disk slot).
        ``count_stale``: whether a record that is not newer counts as a replay drop; a disk slot
        or witness answer that has not changed since the last read is simply not news.
        ``max_late``: (now, seconds) to refuse a record sent longer ago than that by its own
        signed send time (a relay that holds records back); a NaN send time counts as late.
        """
        now_wall, late = max_late if max_late is not None else (time.time(), 0.0)
        code, rec = self.ctx.table.ingest(
            self.path_index, data, ANY_SENDER if expect_sender is None else expect_sender,
            time.monotonic(), now_wall, late, count_stale)
        if rec is not None:
            self.handle(rec, source, late)
        return code in (NEWS, QUIET)

    def handle(self, rec: Record, source: str, max_late: float = 0.0) -> None:
        """A record the table handed back: news to the service, a drop counted."""
        if rec.kind == NEWS:
            self.news += 1
            self.ctx.on_heartbeat(rec.sender, self.path_index, rec.heartbeat, rec.arrived,
                                  rec.first)
            return
        drop = rec.drop
        if drop is None:
            raise ValueError(f"not a record to handle: kind {rec.kind}")
        self._drop(drop, source, self._detail(rec, drop, max_late))

    def _detail(self, rec: Record, drop: Drop, max_late: float) -> str:
        hb = rec.heartbeat
        if drop is Drop.UNKNOWN_SENDER:
            return f"server #{hb.sender} on path #{hb.path}"
        if drop is Drop.LATE:
            return (f"incarnation {hb.incarnation} seq {hb.seq} sent "
                    f"{rec.now_wall - hb.sent:.3f} s ago, more than {max_late:g} s: relayed "
                    "late, or the clocks differ")
        if drop is Drop.REPLAY:
            return (f"incarnation {hb.incarnation} seq {hb.seq} not newer than the last "
                    "accepted (a replay, or a restart with the clock set back and its work "
                    "directory lost)")
        if rec.size != packet.PACKET_SIZE:
            return f"size {rec.size} != {packet.PACKET_SIZE}"
        try:  # the checks of the packet itself: the Python decoder words them
            packet.decode(self.ctx.key, rec.data, self.ctx.cluster_id)
        except PacketError as e:
            return str(e).partition(": ")[2]
        return "refused by the native check only"  # they disagree: a bug, named as such

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
                "received": self.receiver.received, "news": self.receiver.news,
                "drops": dict(self.receiver.drops),
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
