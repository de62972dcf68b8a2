"""The cluster/server part of the clp.conf schema (format fixed in docs/design-notes.md).

Typed lists (interconnects, partition resolvers) are ``x-kind`` placeholders filled by the types
registered in ``clp.config.registry``. Defaults are the product's (seed: heartbeat interval 3 s,
timeout 90 s; ports 29001-29003); they live here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from clp.alert.schema import ALERT_SCHEMA
from clp.config.group_schema import GROUPS_SCHEMA
from clp.config.monitor_schema import CLUSTER_MONITOR_SCHEMA, MONITORS_SCHEMA

# RFC 5424 facility codes by the names syslog.conf uses (12-15 have no common names: left out)
SYSLOG_FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}


def _port(default: int, apply: str = "stop_cluster") -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "default": default,
        "x-apply": apply,
    }


CLUSTER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "clp cluster configuration (clp.conf)",
    "type": "object",
    "required": ["cluster", "servers", "interconnects"],
    "additionalProperties": False,
    "x-apply": "stop_cluster",
    "properties": {
        "cluster": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                # letters, digits, '-', '_', up to 31 characters: checked in crosscheck.py
                "name": {"type": "string", "x-apply": "stop_cluster"},
                # server sync wait at cluster start (product default 5 minutes)
                "sync_wait": {
                    "type": "number",
                    "minimum": 0,
                    "default": 300,
                    "x-apply": "upload_only",
                },
                "heartbeat": {
                    "type": "object",
                    "default": {},
                    "additionalProperties": False,
                    "properties": {
                        # small values are allowed for tests and the lab (0.1 / 0.5)
                        "interval": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "default": 3,
                            "x-apply": "suspend_cluster",
                        },
                        "timeout": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "default": 90,
                            "x-apply": "suspend_cluster",
                        },
                    },
                },
                "monitor": CLUSTER_MONITOR_SCHEMA,
                # the product's max reboot count (0: no limit) and its reset time (0: never)
                "reboot_limit": {
                    "type": "object",
                    "default": {},
                    "additionalProperties": False,
                    "x-apply": "upload_only",
                    "properties": {
                        "max_count": {"type": "integer", "minimum": 0, "maximum": 99,
                                      "default": 0, "x-apply": "upload_only"},
                        "reset_minutes": {"type": "integer", "minimum": 0, "maximum": 999,
                                          "default": 0, "x-apply": "upload_only"},
                    },
                },
                # what clusterpro_evt sends to the local syslog (docs/syslog.md); evt re-reads
                # clp.conf when it changes, so an upload is enough
                "syslog": {
                    "type": "object",
                    "default": {},
                    "additionalProperties": False,
                    "x-apply": "upload_only",
                    "properties": {
                        "enabled": {"type": "boolean", "default": True,
                                    "x-apply": "upload_only"},
                        "facility": {"enum": list(SYSLOG_FACILITIES), "default": "daemon",
                                     "x-apply": "upload_only"},
                    },
                },
                "ports": {
                    "type": "object",
                    "default": {},
                    "additionalProperties": False,
                    "properties": {
                        "rpc": _port(29001),
                        "transfer": _port(29002),
                        "heartbeat": _port(29002),
                        # only clusterpro_webmgr listens there: restarting it is enough
                        "webmgr": _port(29003, "restart_webmgr"),
                        "alertsync": _port(29003),
                    },
                },
            },
        },
        "servers": {
            # a mapping in priority order: the first server is the master
            "type": "object",
            "minProperties": 2,
            "maxProperties": 32,
            "x-apply": "stop_cluster",
            "x-error": {
                "minProperties": "a cluster needs 2 to 32 servers",
                "maxProperties": "a cluster needs 2 to 32 servers",
            },
            "additionalProperties": {
                # no per-server parameters yet; `server1:` (null) and `server1: {}` both work
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {},
                "x-apply": "stop_cluster",
            },
        },
        "interconnects": {
            # in heartbeat priority order
            "type": "array",
            "minItems": 1,
            "x-apply": "stop_cluster",
            "x-error": {"minItems": "at least one LAN interconnect is required"},
            "items": {"x-kind": "interconnect", "x-apply": "stop_cluster"},
        },
        "alert": ALERT_SCHEMA,
        "groups": GROUPS_SCHEMA,
        "monitors": MONITORS_SCHEMA,
        "network_partition": {
            "type": "object",
            "default": {},
            "additionalProperties": False,
            "x-apply": "suspend_cluster",
            "properties": {
                "action": {
                    "enum": ["stop_cluster_service", "stop_cluster_service_and_shutdown"],
                    "default": "stop_cluster_service",
                    "x-apply": "suspend_cluster",
                },
                "resolvers": {
                    "type": "array",
                    "default": [],
                    "x-apply": "suspend_cluster",
                    "items": {"x-kind": "resolver", "x-apply": "suspend_cluster"},
                },
            },
        },
    },
}
