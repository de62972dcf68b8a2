"""The registered resource types, an explicit list as keepalived's checkers.

Registering a type also contributes its parameters to the clp.conf schema (kind ``resource``),
so validation, defaults, docs and the WebUI see the same parameters as the type itself.
"""

from __future__ import annotations

from clp.config.group_schema import resource_fragment
from clp.config.registry import register_type
from clp.resources.base import ResourceType
from clp.resources.disk import DiskResource
from clp.resources.dummy import DummyResource
from clp.resources.exec import ExecResource
from clp.resources.fip import FipResource

_TYPES: dict[str, ResourceType] = {}


def register(cls: type[ResourceType]) -> None:
    _TYPES[cls.name] = cls()
    register_type("resource", cls.name, resource_fragment(cls.name, cls.schema))


for _cls in (DiskResource, DummyResource, ExecResource, FipResource):
    register(_cls)


def get(type_name: str) -> ResourceType:
    """The (stateless or self-locking) instance of a type; KeyError names the known types."""
    try:
        return _TYPES[type_name]
    except KeyError:
        raise KeyError(f"unknown resource type {type_name!r} "
                       f"(known: {', '.join(sorted(_TYPES))})") from None


def all_types() -> tuple[ResourceType, ...]:
    return tuple(_TYPES[name] for name in sorted(_TYPES))
