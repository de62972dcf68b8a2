"""The registered monitor types, an explicit list as keepalived's checkers.

Registering a type also contributes its parameters, with the common keys and their per-type
defaults, to the clp.conf schema (kind ``monitor``), so validation, defaults, docs and the WebUI
see the same parameters as the type itself.
"""

from __future__ import annotations

from clp.config.monitor_schema import monitor_fragment
from clp.config.registry import register_type
from clp.monitors.base import MonitorType
from clp.monitors.diskw import DiskMonitor
from clp.monitors.dummy import DummyMonitor
from clp.monitors.fipw import FipMonitor
from clp.monitors.genw import CustomMonitor
from clp.monitors.ipw import IpMonitor
from clp.monitors.miiw import MiiMonitor
from clp.monitors.mrw import MessageMonitor
from clp.monitors.mtw import MultiTargetMonitor
from clp.monitors.pidw import PidMonitor
from clp.monitors.psw import ProcessNameMonitor
from clp.monitors.userw import UserSpaceMonitor

_TYPES: dict[str, type[MonitorType]] = {}


def register(cls: type[MonitorType]) -> None:
    _TYPES[cls.name] = cls
    register_type("monitor", cls.name,
                  monitor_fragment(cls.name, cls.schema, cls.defaults, cls.timings))


for _cls in (CustomMonitor, DiskMonitor, DummyMonitor, FipMonitor, IpMonitor, MessageMonitor,
             MiiMonitor, MultiTargetMonitor, PidMonitor, ProcessNameMonitor, UserSpaceMonitor):
    register(_cls)


def get(type_name: str) -> type[MonitorType]:
    """The class of a type; KeyError names the known types."""
    try:
        return _TYPES[type_name]
    except KeyError:
        raise KeyError(f"unknown monitor type {type_name!r} "
                       f"(known: {', '.join(sorted(_TYPES))})") from None


def all_types() -> tuple[type[MonitorType], ...]:
    return tuple(_TYPES[name] for name in sorted(_TYPES))
