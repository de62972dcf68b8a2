"""The monitors part of clp.conf: the keys every monitor resource has, with its recovery action.

A monitor type contributes only its own parameters and its defaults (``clp/monitors/<type>.py``);
``monitor_fragment`` adds the common keys (the product's "Monitor (common)" and "Recovery
Action" tabs), so that a monitor is one flat mapping in clp.conf:

```yaml
monitors:
  ipw1:
    type: ipw
    addresses: [198.18.1.254]        # the type's own parameters
    interval: 30                     # common: Monitor (common) tab
    recovery: {target: All Groups, reactivation_threshold: 0, final_action: none}
```

A change to a monitor is applied by suspending the monitors (the seed's reflect table), except
that a new recovery target or final action needs nothing more either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clp.config.registry import register_kind, typed_fragment

APPLY = "suspend_monitors"

# Recovery targets that are not a resource or group name (the product's tree: LocalServer is the
# relation type "cls", All Groups every group of this server).
LOCAL_SERVER = "LocalServer"
ALL_GROUPS = "All Groups"
TARGET_KINDS = ("resource", "group", "all_groups", "local_server")

# The product's final actions of a monitor resource (emergency/action codes 1-14), from least to
# most drastic. keepalive_* are carried out with the kernel's sysrq trigger, bmc_* with ipmitool
# (docs/monitors.md).
FINAL_ACTIONS: tuple[str, ...] = (
    "none",
    "stop_group",
    "stop_cluster_service",
    "stop_cluster_service_and_shutdown",
    "stop_cluster_service_and_reboot",
    "panic",  # sysrq panic
    "keepalive_reset",
    "keepalive_panic",
    "bmc_reset",
    "bmc_power_off",
    "bmc_power_cycle",
    "bmc_nmi",
)
TIMINGS = ("always", "active")

# Defaults of the common keys when a type says nothing (the product's most common values).
COMMON_DEFAULTS: dict[str, Any] = {"interval": 60, "timeout": 60, "retry": 1, "timing": "always"}


def _number(default: float | None = None, minimum: float = 0, exclusive: bool = True
            ) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "x-apply": APPLY}
    schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if default is not None:
        schema["default"] = default
    return schema


def _count(default: int, maximum: int = 99) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": maximum, "default": default,
            "x-apply": APPLY}


def _flag(default: bool = False) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "x-apply": APPLY}


SCRIPT_SCHEMA: dict[str, Any] = {
    # the product's "script before reactivation / failover / final action" and its "recovery
    # script" (run `count` times as the first recovery steps), one script for all of them
    "type": "object",
    "default": {},
    "additionalProperties": False,
    "x-apply": APPLY,
    "properties": {
        # scripts/monitor.s/<monitor>/preaction.sh (the product's script), or an absolute path
        "path": {"type": "string", "minLength": 1, "default": "preaction.sh", "x-apply": APPLY},
        "timeout": _number(5),
        "count": _count(0),
        "before_reactivation": _flag(),
        "before_failover": _flag(),
        "before_final_action": _flag(),
    },
}

RECOVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "default": {},
    "additionalProperties": False,
    "x-apply": APPLY,
    "properties": {
        # a group resource, a group, LocalServer or All Groups; the type's default when left out
        "target": {"type": "string", "minLength": 1, "x-apply": APPLY},
        # when a resource and a group have the same name
        "target_type": {"enum": list(TARGET_KINDS), "x-apply": APPLY},
        # defaults depend on the target (LocalServer: 0): filled in by the loader
        "reactivation_threshold": {"type": "integer", "minimum": 0, "maximum": 99,
                                   "x-apply": APPLY},
        # a number, or "servers": as many failovers as the target's group has servers
        "failover_threshold": {
            "anyOf": [{"type": "integer", "minimum": 0, "maximum": 99}, {"const": "servers"}],
            "x-apply": APPLY,
            "x-error": {"anyOf": "{value!r} is not an integer from 0 to 99 or 'servers'"},
        },
        "final_action": {"enum": list(FINAL_ACTIONS), "x-apply": APPLY},
        # seconds of Normal after which the counters go back to 0 (0: only clpmonctrl -c and a
        # restart of the cluster service reset them); default 10 intervals
        "reset_after": _number(minimum=0, exclusive=False),
        "script": SCRIPT_SCHEMA,
    },
}


def common_properties(defaults: Mapping[str, Any], timings: tuple[str, ...]) -> dict[str, Any]:
    """The common keys of a monitor, with one type's defaults and allowed timings."""
    d = {**COMMON_DEFAULTS, **defaults}
    return {
        "interval": _number(d["interval"]),
        "timeout": _number(d["timeout"]),
        "retry": _count(d["retry"], maximum=999),
        "wait_start": _number(d.get("wait_start", 0), exclusive=False),  # firstmonwait
        "timing": {"enum": list(timings), "default": d["timing"], "x-apply": APPLY,
                   "x-error": {"enum": f"{{value!r}}: this monitor type can monitor only "
                                       f"{' or '.join(timings)}"}},
        "target": {"type": "string", "minLength": 1, "x-apply": APPLY},  # the monitored resource
        "nice": {"type": "integer", "minimum": -20, "maximum": 19, "default": 0,
                 "x-apply": APPLY},
        "servers": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string"}, "x-apply": APPLY},
        "no_retry_on_timeout": _flag(),
        "no_recovery_on_timeout": _flag(),
        "recovery": RECOVERY_SCHEMA,
    }


def monitor_fragment(name: str, params: Mapping[str, Any], defaults: Mapping[str, Any],
                     timings: tuple[str, ...]) -> dict[str, Any]:
    """The config schema of one monitor type: its parameters plus the common keys."""
    return typed_fragment(name, common_properties(defaults, timings), params)


MONITORS_SCHEMA: dict[str, Any] = {
    # a mapping in definition order; names and references are checked in monitor_check.py
    "type": "object",
    "default": {},
    "x-apply": APPLY,
    "additionalProperties": {"x-kind": "monitor", "x-apply": APPLY},
}

# cluster.monitor: the cluster's properties for every monitor (the product's Recovery and
# Monitor tabs of the cluster properties)
CLUSTER_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "default": {},
    "additionalProperties": False,
    "x-apply": APPLY,
    "properties": {
        # seed: モニタリソース異常時の回復動作を抑制する (errors are shown, nothing is recovered)
        "disable_recovery": _flag(),
        # a check that takes longer than this % of its timeout is a monitor delay warning
        "delay_warning": {"type": "number", "minimum": 1, "maximum": 100, "default": 80,
                          "x-apply": APPLY},
        # no final action when no other server is alive (the product's "restrain the final
        # action when only one server is running")
        "restrain_final_action_alone": _flag(),
    },
}

register_kind("monitor", "monitor resource")
