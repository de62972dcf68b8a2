"""Every heartbeat path this server uses, as one set the service drives.

One plugin per interconnect of clp.conf that names this server (:mod:`clp.heartbeat.base`); the
set starts them, sends each round's record on all of them, and gives the publisher their counters
and local errors. A path that fails to start (a device missing, an address not configured here)
is logged with an alert and left down; the other paths carry on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from clp.config import ClusterConfig
from clp.heartbeat.base import HeartbeatPath, OnHeartbeat, Outgoing, PathContext, plugin_class

log = logging.getLogger("clp.nm")


class HeartbeatSet:
    def __init__(self, config: ClusterConfig, me: str, key: bytes, incarnation: int,
                 on_heartbeat: OnHeartbeat) -> None:
        self.ctx = PathContext(
            key=key, cluster_name=config.name, servers=config.server_names,
            my_index=config.server_index(me), incarnation=incarnation,
            interval=config.heartbeat_interval, on_heartbeat=on_heartbeat,
            heartbeat_port=config.ports.heartbeat)
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

    def drops(self, index: int) -> int:
        path = self.paths.get(index)
        return sum(path.receiver.drops.values()) if path else 0

    def local_error(self, index: int) -> str | None:
        path = self.paths.get(index)
        return path.local_error if path else None

    def counters(self) -> dict[str, dict[str, Any]]:
        return {p.name: p.counters() for p in self.paths.values()}
