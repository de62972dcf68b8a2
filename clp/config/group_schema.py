"""The groups part of clp.conf: failover groups, their policy and attributes, and the parts common
to every group resource (dependencies, recovery on activation and deactivation failure).

A resource type contributes only its own parameters (``clp/resources/<type>.py``);
``resource_fragment`` adds the common keys so that a resource is one flat mapping in clp.conf,
as the product's resource properties are one dialog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clp.config.registry import register_kind, typed_fragment

# The product's final actions, from least to most drastic.
FINAL_ACTIONS: tuple[str, ...] = (
    "none_continue",  # no operation, activate the next resource
    "none",  # no operation, do not activate the next resource (activation default)
    "stop_group",
    "stop_cluster_service",
    "stop_cluster_service_and_shutdown",  # deactivation default
    "stop_cluster_service_and_reboot",
    "panic",
)

# The product's default dependency order: a resource depends on every resource of its group whose
# type is listed here, unless it names its own `depends`.
DEFAULT_DEPENDS: dict[str, tuple[str, ...]] = {
    "fip": (),
    "vip": (),
    "ddns": ("fip", "vip"),
    "volmgr": ("fip", "vip"),
    "disk": ("fip", "vip", "volmgr"),
    "nas": ("fip", "vip"),
    "vm": ("fip", "vip", "volmgr", "disk", "nas"),
    "exec": ("fip", "vip", "ddns", "volmgr", "disk", "nas", "vm"),
}


def _count(default: int, apply: str = "stop_resource") -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": 99, "default": default, "x-apply": apply}


def _final(default: str) -> dict[str, Any]:
    return {"enum": list(FINAL_ACTIONS), "default": default, "x-apply": "stop_resource"}


COMMON_PROPERTIES: dict[str, Any] = {
    "depends": {
        "type": "array",
        "uniqueItems": True,
        "items": {"type": "string"},
        "x-apply": "stop_group",
    },
    "activation": {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "x-apply": "stop_resource",
        "properties": {
            "retry": _count(0),
            "failover_threshold": _count(1),
            "final_action": _final("none"),
        },
    },
    "deactivation": {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "x-apply": "stop_resource",
        "properties": {
            "retry": _count(0),
            "final_action": _final("stop_cluster_service_and_shutdown"),
        },
    },
}


def resource_fragment(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The config schema of one resource type: its parameters plus the common keys.

    ``params`` is the type's own object schema (``properties``, optional ``required``).
    """
    return typed_fragment(name, COMMON_PROPERTIES, params)


GROUPS_SCHEMA: dict[str, Any] = {
    # a mapping in definition order; group names are checked in group_check.py
    "type": "object",
    "default": {},
    "x-apply": "stop_group",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "x-apply": "stop_group",
        "properties": {
            # failover policy in priority order; omitted: every server in server priority order
            "servers": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "x-apply": "stop_group",
            },
            "start": {"enum": ["auto", "manual"], "default": "auto", "x-apply": "upload_only"},
            "failback": {"enum": ["manual", "auto"], "default": "manual", "x-apply": "stop_group"},
            "exclusive": {
                "enum": ["off", "normal", "absolute"],
                "default": "off",
                "x-apply": "stop_group",
            },
            "resources": {
                "type": "object",
                "default": {},
                "x-apply": "stop_group",
                "additionalProperties": {"x-kind": "resource", "x-apply": "stop_resource"},
            },
        },
    },
}


def resolve_depends(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Dependencies of every resource of one group: its own ``depends`` or the default by type."""
    result: dict[str, list[str]] = {}
    for name, item in resources.items():
        explicit = item.get("depends") if isinstance(item, Mapping) else None
        if isinstance(explicit, list):
            result[name] = [d for d in explicit if isinstance(d, str)]
            continue
        kinds = DEFAULT_DEPENDS.get(str(item.get("type")) if isinstance(item, Mapping) else "", ())
        result[name] = [
            other for other, o in resources.items()
            if other != name and isinstance(o, Mapping) and o.get("type") in kinds
        ]
    return result


def topological(order: list[str], depends: Mapping[str, list[str]]) -> list[str]:
    """Activation order: dependencies first, ties in definition order. Cycles are left out
    (the cross-checks refuse them before a model exists)."""
    done: list[str] = []
    pending = list(order)
    while pending:
        ready = next(
            (n for n in pending if all(d in done or d not in order for d in depends.get(n, ()))),
            None,
        )
        if ready is None:
            break
        done.append(ready)
        pending.remove(ready)
    return done


register_kind("resource", "group resource")
