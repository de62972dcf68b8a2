"""Reading the raw clp.conf data defensively, for the cross-checks.

The cross-checks run even when the schema found errors (so every problem is reported at once), so
they cannot trust a value's type: these helpers give an empty mapping or list instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def interconnect_servers(item: Mapping[str, Any]) -> list[str]:
    """Servers that use one interconnect (or resolver) item, whatever its type."""
    for key in ("addresses", "devices"):
        if isinstance(item.get(key), Mapping):
            return [str(s) for s in item[key]]
    return [s for s in as_list(item.get("servers")) if isinstance(s, str)]
