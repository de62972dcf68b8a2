"""Every heartbeat path this server uses, as one set the service drives.

One plugin per interconnect of clp.conf that names this server (:mod:`clp.heartbeat.base`); the
set starts them, sends each round's record on all of them, and gives the publisher their counters
and local errors. A path that fails to start (a device missing, an address not configured here)
is logged with an alert and left down; the other paths carry on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from clp.config import ClusterConfig
from clp.heartbeat.base import HeartbeatPath, OnHeartbeat, Outgoing, PathContext, plugin_class
from clp.heartbeat.rxtable import Quiet

log = logging.getLogger("clp.nm")


class HeartbeatSet:
    def __init__(self, config: ClusterConfig, me: str, key: bytes, incarnation: int,
                 on_heartbeat: OnHeartbeat) -> None:
        self.ctx = PathContext(
            key=key, cluster_name=config.name, servers=config.server_names,
            my_index=config.server_index(me), incarnation=incarnation,
            interval=config.heartbeat_interval, on_heartbeat=on_heartbeat,
            heartbeat_port=config.ports.heartbeat, n_paths=max(1, len(config.interconnects)))
        self.paths: dict[int, HeartbeatPath] = {}
        for index, ic in enumerate(config.interconnects):
            if me in ic.servers:
                self.paths[index] = plugin_class(ic.type)(self.ctx, ic, index)
        self._seq = 0

    async def start(self) -> None:
        for path in self.paths.values():
            try:
                await path.start()
            except OSError as e:
                log.error("%s: cannot start the %s heartbeat: %s", path.name, path.type, e,
                          extra={"alert": True})

    def send(self, state: int, heard: int, offline: int) -> None:
        self._seq += 1
        out = Outgoing(self._seq, state, time.time(), heard, offline)
        for path in self.paths.values():
            path.send(out)

    def close(self) -> None:
        for path in self.paths.values():
            try:
                path.close()
            except Exception:  # noqa: BLE001 - one path must not keep the others open
                log.exception("%s: close failed", path.name)

    def pull(self) -> list[Quiet]:
        """The quiet records kept since the last pull (see clp.heartbeat.rxtable)."""
        return self.ctx.table.pull()

    def ack(self, sender: int) -> None:
        """The service has taken (or dropped) one news record of ``sender``."""
        self.ctx.table.ack(sender)

    def renew(self) -> None:
        """The next record of every sender is news (after records were ignored)."""
        self.ctx.table.renew()

    def set_quiet(self, sender: int, index: int, quiet: bool) -> None:
        """Whether quiet records of sender on path ``index`` may wait for a pull."""
        if index in self.paths:
            self.ctx.table.set_quiet(sender, index, quiet)

    def set_all_quiet(self, quiet: Callable[[int, int], bool]) -> None:
        """:meth:`set_quiet` for every (sender, path index) of this server's paths."""
        for index, path in self.paths.items():
            for sender in path.peers:
                self.ctx.table.set_quiet(sender, index, quiet(sender, index))

    def received(self, sender: int, index: int) -> tuple[int, int, float]:
        """(records accepted, last sequence, wall time of the last) from sender on a path."""
        if index not in self.paths:
            return 0, 0, 0.0
        return self.ctx.table.entry(sender, index)

    def drops(self, index: int) -> int:
        path = self.paths.get(index)
        return sum(path.receiver.drops.values()) if path else 0

    def local_error(self, index: int) -> str | None:
        path = self.paths.get(index)
        return path.local_error if path else None

    def counters(self) -> dict[str, dict[str, Any]]:
        return {p.name: p.counters() for p in self.paths.values()}
