"""Cluster configuration: load, validate (one schema, every error at once) and model clp.conf."""

from clp.config.issues import ConfigError, ConfigIssue
from clp.config.loader import build_model, check_data, load_config
from clp.config.model import (
    ClusterConfig,
    GroupConfig,
    Interconnect,
    MonitorConfig,
    NetworkPartition,
    Ports,
    Recovery,
    Resolver,
    ResourceConfig,
    ServerConfig,
)
from clp.config.registry import (
    APPLY_METHODS,
    apply_method,
    build_schema,
    register_kind,
    register_type,
    registered_types,
)

__all__ = [
    "APPLY_METHODS",
    "ClusterConfig",
    "ConfigError",
    "ConfigIssue",
    "GroupConfig",
    "Interconnect",
    "MonitorConfig",
    "NetworkPartition",
    "Ports",
    "Recovery",
    "Resolver",
    "ResourceConfig",
    "ServerConfig",
    "apply_method",
    "build_model",
    "build_schema",
    "check_data",
    "load_config",
    "register_kind",
    "register_type",
    "registered_types",
]
