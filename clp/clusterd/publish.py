"""Writes what ``clusterpro`` knows into the ``state`` shared-memory region.

The per-server x per-path table (fixed size, written in place: state, last receipt, sequence and
counts, the last three from the heartbeat table) and the snapshot of the slow-changing rest are
published on every change the service sees, and at least every second (or interval).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

from clp.state import PATH_ERROR, PATH_NORMAL, PATH_STATE_NAMES, StateWriter

if TYPE_CHECKING:
    from clp.clusterd.service import ClusterService
    from clp.paths import InstallRoot

PATH_CODES = {name: code for code, name in PATH_STATE_NAMES.items()}


class StatePublisher:
    def __init__(self, root: InstallRoot, service: ClusterService) -> None:
        self.root = root
        self.svc = service
        self._writer: StateWriter | None = None
        self._published = -math.inf  # monotonic time of the last snapshot published

    def open(self) -> None:
        cfg = self.svc.config
        self._writer = StateWriter.create(self.root, len(cfg.servers), len(self.svc.path_names))
        self.refresh_paths()
        self.publish()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close(unlink=True)
            self._writer = None

    def refresh_paths(self) -> None:
        for s in range(len(self.svc.config.servers)):
            for p in range(len(self.svc.path_names)):
                self._write_record(s, p)

    def path_changed(self, server: int, path: int) -> None:
        """A news heartbeat came from ``server`` on ``path``: its row, now (a path that
        delivers its first heartbeat goes Normal without a decision)."""
        self._write_record(server, path)

    def _write_record(self, server: int, path: int) -> None:
        if self._writer is None:
            return
        svc = self.svc
        name = svc.config.servers[server].name
        state = PATH_CODES[svc.membership.path_state(name, svc.path_names[path]).value]
        drops = 0
        if server == svc.my_index:  # drops and local device errors: on this server's own row
            drops = svc.heartbeats.drops(path)
            if state == PATH_NORMAL and svc.heartbeats.local_error(path):
                state = PATH_ERROR
        received, seq, last_rx = svc.heartbeats.received(server, path)
        self._writer.set_path(server, path, last_rx=last_rx, seq=seq, state=state,
                              rx_count=received, drops=drops)

    def snapshot(self) -> dict[str, Any]:
        svc = self.svc
        cfg = svc.config
        wall = time.time() - time.monotonic()
        return {
            "cluster": cfg.name,
            "me": svc.me,
            "servers": list(cfg.server_names),
            "paths": [{"name": ic.name, "type": ic.type, "servers": list(ic.servers)}
                      for ic in cfg.interconnects],
            "resolvers": [{"name": r.name, "type": r.type, "servers": list(r.servers)}
                          for r in cfg.network_partition.resolvers],
            "heartbeat": {"interval": cfg.heartbeat_interval, "timeout": cfg.heartbeat_timeout},
            "membership": svc.membership.snapshot(wall_offset=wall),
            "partition": self._partition(wall),
            "suspended": svc.suspended,
            "started": svc.started,
            "config": svc.config_generation,
            "incarnation": svc.incarnation,
            "pid": os.getpid(),
            # rpc_rejected: refused frames by error, and dropped parts of group reports
            # ("report.groups", "report.stale", ...)
            "counters": {"paths": svc.heartbeats.counters(),
                         "rpc_rejected": dict(svc.peer.rejected + svc.groups.rejected)},
            "master": svc.groups.coord.master,
            "groups": svc.groups.group_snapshot(),
            "monitors": svc.monitors.snapshot(svc.groups.peer_monitors()),
            "updated": time.time(),
        }

    def _partition(self, wall: float) -> dict[str, Any]:
        live = self.svc.liveness
        verdict = live.verdict
        lease = live.lease(time.monotonic())
        return {
            "action": self.svc.config.network_partition.action,
            "resolvers": self.svc.resolution.snapshot(),
            "pending": list(live.partition.pending),
            "down": {s: {"takeover_at": at + wall} for s, at in live.down.items()},
            # holding groups: until when the proofs this server has let it (clp.core.partition)
            "lease": None if lease is None or lease[0] == float("inf") else {
                "until": lease[0] + wall, "peer": lease[1], "resolver": lease[2]},
            "verdict": None if verdict is None else {"kind": verdict.kind,
                                                     "reason": verdict.reason},
        }

    def age(self) -> float:
        """Seconds since the last snapshot was published."""
        return time.monotonic() - self._published

    def publish(self) -> None:
        if self._writer is not None:
            self.refresh_paths()  # local device errors change without a decision
            self._writer.publish(self.snapshot())
            self._published = time.monotonic()
