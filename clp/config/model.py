"""The validated cluster configuration as immutable values.

Built once from a clean clp.conf; daemons and commands read these snapshots and never the raw
YAML, so every default and derived name (``lanhb1``) is decided in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from clp.config.issues import ConfigIssue


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ServerConfig:
    name: str
    priority: int  # 0 = highest (the master server)


@dataclass(frozen=True)
class Ports:
    rpc: int = 29001
    transfer: int = 29002
    heartbeat: int = 29002
    webmgr: int = 29003
    alertsync: int = 29003


@dataclass(frozen=True)
class Interconnect:
    """One heartbeat path. ``servers`` are the servers using it, in server priority order."""

    name: str  # lanhb1, diskhb1, ...: <type>hb<N>, numbered per type in list order
    type: str  # lan | disk | com | witness
    priority: int  # 0 = highest (first in the list)
    addresses: Mapping[str, str] = field(default_factory=_empty)
    devices: Mapping[str, str] = field(default_factory=_empty)
    target: str | None = None
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolver:
    """One network partition resolver (pingnp1, httpnp1)."""

    name: str
    type: str  # ping | http
    targets: tuple[str, ...] = ()
    target: str | None = None
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkPartition:
    action: str = "stop_cluster_service"
    resolvers: tuple[Resolver, ...] = ()


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    servers: tuple[ServerConfig, ...]  # priority order
    heartbeat_interval: float
    heartbeat_timeout: float
    ports: Ports
    interconnects: tuple[Interconnect, ...]  # heartbeat priority order
    network_partition: NetworkPartition
    warnings: tuple[ConfigIssue, ...]
    directory: Path
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def server_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servers)

    def server_index(self, name: str) -> int:
        """Index of a server in priority order; raises ``KeyError`` for an unknown server."""
        for server in self.servers:
            if server.name == name:
                return server.priority
        raise KeyError(f"server {name!r} is not in cluster {self.name!r}")

    def paths_of(self, server: str) -> tuple[Interconnect, ...]:
        """The heartbeat paths a server uses, in priority order."""
        self.server_index(server)
        return tuple(i for i in self.interconnects if server in i.servers)

    @property
    def scripts_dir(self) -> Path:
        return self.directory / "scripts"
