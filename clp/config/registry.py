"""The one configuration schema, assembled from the cluster part and per-type fragments.

Plugins (``clp/heartbeat/<type>.py``, ``clp/np/<type>.py``, later resources and monitors) each
declare their own parameters; ``register_type`` lets them contribute that fragment, and
``build_schema`` splices every registered type into the placeholders (``x-kind``) of the cluster
part, as a discriminated union on the item's ``type``. Validation, defaults, docs and the WebUI all
read this single schema, so a parameter is described in exactly one place.

Custom keywords (ignored by jsonschema, read by us):

- ``x-apply``: how a change to this parameter is applied (one of ``APPLY_METHODS``).
- ``x-kind``: placeholder replaced by the union of the registered types of that kind.
- ``x-error``: friendlier messages, per failing validator keyword, ``{value}`` is the instance.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any

# Least to most disruptive; the order lets a later diff pick the strongest method needed.
APPLY_METHODS: tuple[str, ...] = (
    "upload_only",
    "restart_webmgr",
    "suspend_monitors",
    "suspend_cluster",
    "stop_resource",
    "stop_group",
    "stop_cluster",
    "shutdown_reboot",
)

# kind -> type name -> schema fragment
_TYPES: dict[str, dict[str, dict[str, Any]]] = {}
_KIND_LABELS: dict[str, str] = {}


def register_kind(kind: str, label: str) -> None:
    """Declare a family of typed items (``interconnect``); ``label`` names it in errors."""
    _TYPES.setdefault(kind, {})
    _KIND_LABELS[kind] = label
    build_schema.cache_clear()


def register_type(kind: str, name: str, fragment: Mapping[str, Any]) -> None:
    """Contribute the schema of one type; its ``properties`` must include ``type``."""
    if kind not in _TYPES:
        raise KeyError(f"unknown kind {kind!r}")
    if name in _TYPES[kind]:
        raise ValueError(f"{kind} type {name!r} is already registered")
    _TYPES[kind][name] = copy.deepcopy(dict(fragment))
    build_schema.cache_clear()


def typed_fragment(name: str, common: Mapping[str, Any], params: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """The schema of one type of a kind: ``type: name``, the kind's ``common`` keys and the
    type's own parameters (``params``: ``properties`` and optional ``required``), flat in one
    mapping as the product's property dialogs are one page."""
    return {
        "type": "object",
        "required": ["type", *params.get("required", [])],
        "additionalProperties": False,
        "properties": {"type": {"const": name}, **common, **params.get("properties", {})},
    }


def registered_types(kind: str) -> tuple[str, ...]:
    _ensure_builtins()
    return tuple(sorted(_TYPES[kind]))


def _ensure_builtins() -> None:
    # Imported here, not at module top, because builtin_types itself calls register_type.
    from clp.config import builtin_types  # noqa: F401


def _union(kind: str) -> dict[str, Any]:
    names = sorted(_TYPES[kind])
    label, known = _KIND_LABELS[kind], ", ".join(names)
    return {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "enum": names,
                "x-error": {"enum": f"unknown {label} type {{value!r}} (known: {known})"},
            }
        },
        "allOf": [
            {"if": {"properties": {"type": {"const": n}}}, "then": _TYPES[kind][n]} for n in names
        ],
    }


def _splice(node: Any) -> Any:
    if isinstance(node, dict):
        if "x-kind" in node:
            return {**_union(node["x-kind"]), **{k: v for k, v in node.items() if k != "x-kind"}}
        return {k: _splice(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_splice(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def build_schema() -> dict[str, Any]:
    """The full Draft 2020-12 schema. Cached; treat the result as read-only."""
    _ensure_builtins()
    from clp.config.cluster_schema import CLUSTER_SCHEMA

    return _splice(copy.deepcopy(CLUSTER_SCHEMA))


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _children(schema: Mapping[str, Any], key: str | int, item: Any) -> list[Mapping[str, Any]]:
    """Subschemas that describe ``key`` of an instance described by ``schema``."""
    found: list[Mapping[str, Any]] = []
    if isinstance(key, int):
        if isinstance(schema.get("items"), Mapping):
            found.append(schema["items"])
    elif key in schema.get("properties", {}):
        found.append(schema["properties"][key])
    elif isinstance(schema.get("additionalProperties"), Mapping):
        found.append(schema["additionalProperties"])
    for branch in schema.get("allOf", []):
        then = branch.get("then")
        if then is None:
            continue
        wanted = branch["if"]["properties"]["type"]["const"]
        if isinstance(item, Mapping) and item.get("type") not in (None, wanted):
            continue
        found.extend(_children(then, key, None))
    return found


def apply_method(path: str, config: Mapping[str, Any] | None = None) -> str:
    """How a change at ``path`` (e.g. ``cluster.heartbeat.interval``) is applied.

    The deepest ``x-apply`` on the way down wins. ``config`` (the raw configuration) picks the
    right type branch for typed items; without it, the most disruptive candidate is returned, so
    a caller never under-estimates. Unknown paths raise ``KeyError``.
    """
    level: list[tuple[Mapping[str, Any], Any]] = [(build_schema(), config)]
    method: str | None = None
    for name, index in _PATH_TOKEN.findall(path):
        key: str | int = int(index) if index else name
        nxt: list[tuple[Mapping[str, Any], Any]] = []
        for schema, inst in level:
            sub_inst = _get(inst, key)
            nxt.extend((child, sub_inst) for child in _children(schema, key, inst))
        if not nxt:
            raise KeyError(f"no configuration parameter at {path!r}")
        level = nxt
        found = [s["x-apply"] for s, _ in level if "x-apply" in s]
        if found:
            method = max(found, key=APPLY_METHODS.index)
    if method is None:
        raise KeyError(f"no apply method recorded for {path!r}")
    return method


def _get(instance: Any, key: str | int) -> Any:
    if isinstance(key, int):
        return instance[key] if isinstance(instance, list) and key < len(instance) else None
    return instance.get(key) if isinstance(instance, Mapping) else None


# The kinds the cluster part has placeholders for. Later: group resources, monitors.
register_kind("interconnect", "interconnect")
register_kind("resolver", "network partition resolver")
