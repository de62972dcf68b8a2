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

from clp.config.group_schema import topological
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
    """One network partition resolver (pingnp1, httpnp1, witnessnp1)."""

    name: str
    type: str  # ping | http | witness
    targets: tuple[str, ...] = ()
    target: str | None = None
    servers: tuple[str, ...] = ()
    interval: float = 5.0  # seconds between background probes
    timeout: float = 3.0  # ping: per try; http (schema default 10), witness: the whole exchange
    retry: int = 3  # ping: tries after the first, and failed rounds that make it "failing"
    path: str = "/"  # http: the HEAD request's path


@dataclass(frozen=True)
class NetworkPartition:
    action: str = "stop_cluster_service"
    resolvers: tuple[Resolver, ...] = ()


@dataclass(frozen=True)
class Recovery:
    """What to do when activation (or deactivation) of a resource fails."""

    retry: int  # retries on this server before anything else
    failover_threshold: int  # failovers before the final action (0 for deactivation)
    final_action: str  # one of group_schema.FINAL_ACTIONS


@dataclass(frozen=True)
class ResourceConfig:
    name: str
    type: str
    params: Mapping[str, Any]  # the type's parameters, defaults applied
    depends: tuple[str, ...]  # resolved: explicit `depends`, or the default by type
    activation: Recovery
    deactivation: Recovery


@dataclass(frozen=True)
class GroupConfig:
    name: str
    servers: tuple[str, ...]  # failover policy, in priority order
    start: str  # auto | manual
    failback: str  # manual | auto
    exclusive: str  # off | normal | absolute
    resources: tuple[ResourceConfig, ...]  # definition order

    def resource(self, name: str) -> ResourceConfig:
        for rc in self.resources:
            if rc.name == name:
                return rc
        raise KeyError(f"resource {name!r} is not in group {self.name!r}")

    def activation_order(self) -> list[str]:
        """Dependencies first; resources that do not depend on each other in definition order."""
        names = [rc.name for rc in self.resources]
        return topological(names, {rc.name: list(rc.depends) for rc in self.resources})

    def deactivation_order(self) -> list[str]:
        return list(reversed(self.activation_order()))


@dataclass(frozen=True)
class RecoveryScript:
    """The script run before recovery steps (the product's preaction.sh), and how often."""

    path: Path  # resolved: absolute, or in scripts/monitor.s/<monitor>/
    timeout: float = 5.0
    count: int = 0  # the recovery script's own runs (CLP_ACTION=RECOVERY) before reactivation
    before_reactivation: bool = False
    before_failover: bool = False
    before_final_action: bool = False


@dataclass(frozen=True)
class MonitorRecovery:
    """What a monitor does on an error (the product's Recovery Action tab)."""

    target: str  # a resource, a group, LocalServer or All Groups
    kind: str  # resource | group | all_groups | local_server
    reactivation_threshold: int = 3
    failover_threshold: int = 1
    final_action: str = "none"
    reset_after: float = 600.0  # seconds of Normal before the counters go back to 0 (0: never)
    script: RecoveryScript | None = None  # None: no script is run


@dataclass(frozen=True)
class MonitorConfig:
    name: str  # userw, fipw1, ...
    type: str
    target: str | None  # the monitored resource
    params: Mapping[str, Any] = field(default_factory=_empty)  # the type's own parameters
    interval: float = 60.0
    timeout: float = 60.0
    retry: int = 1
    wait_start: float = 0.0
    timing: str = "always"  # always | active (while ``target`` is Online on this server)
    nice: int = 0
    servers: tuple[str, ...] = ()  # the servers that run it
    no_retry_on_timeout: bool = False
    no_recovery_on_timeout: bool = False
    recovery: MonitorRecovery = MonitorRecovery("LocalServer", "local_server")


@dataclass(frozen=True)
class RebootLimitSettings:
    """How many times final actions may take this server down (``cluster.reboot_limit``)."""

    max_count: int = 0  # 0: no limit
    reset_minutes: int = 0  # the counters go back to 0 after this much running (0: never)


@dataclass(frozen=True)
class MonitorSettings:
    """The cluster's properties for every monitor (``cluster.monitor``)."""

    disable_recovery: bool = False
    delay_warning: float = 80.0  # % of a check's timeout
    restrain_final_action_alone: bool = False


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
    groups: tuple[GroupConfig, ...] = ()  # definition order
    monitors: tuple[MonitorConfig, ...] = ()
    monitor_settings: MonitorSettings = MonitorSettings()
    reboot_limit: RebootLimitSettings = RebootLimitSettings()
    sync_wait: float = 300.0  # server sync wait at cluster start, seconds

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

    def group(self, name: str) -> GroupConfig:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"group {name!r} is not in cluster {self.name!r}")

    def resource(self, name: str) -> tuple[GroupConfig, ResourceConfig]:
        """The group holding resource ``name`` and the resource (names are cluster-wide)."""
        for group in self.groups:
            for rc in group.resources:
                if rc.name == name:
                    return group, rc
        raise KeyError(f"resource {name!r} is not in cluster {self.name!r}")

    def monitor(self, name: str) -> MonitorConfig:
        for mc in self.monitors:
            if mc.name == name:
                return mc
        raise KeyError(f"monitor {name!r} is not in cluster {self.name!r}")

    @property
    def scripts_dir(self) -> Path:
        return self.directory / "scripts"
