"""mtw (multi-target monitor): an error when enough of a set of other monitors are in error.

The members are other monitor resources of this cluster; each check counts those in Error on
this server. ``error_threshold`` of them make an error (default: every member, "same as the
number of members"); with ``warning_threshold`` set, that many make a Caution. A typical use:
two NICs bonded, each watched by a miiw with recovery suppressed, and an mtw over both that
fails the group over only when both links are down.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from clp.config.issues import ConfigIssue, join_path
from clp.monitors.base import Check, MonitorType, caution, failed, normal

A = "suspend_monitors"
_THRESHOLD = {"type": ["integer", "null"], "minimum": 1, "x-apply": A}


class MultiTargetMonitor(MonitorType):
    name: ClassVar[str] = "mtw"
    schema: ClassVar[dict[str, Any]] = {
        "required": ["members"],
        "properties": {
            "members": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"type": "string"}, "x-apply": A},
            "error_threshold": {**_THRESHOLD, "default": None},  # None: every member
            "warning_threshold": {**_THRESHOLD, "default": None},  # None: no Caution
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 30, "timeout": 30, "retry": 0}
    timings: ClassVar[tuple[str, ...]] = ("always",)
    default_recovery: ClassVar[str] = ""

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        monitors = data.get("monitors") if isinstance(data.get("monitors"), dict) else {}
        members = item.get("members") if isinstance(item.get("members"), list) else []
        for index, member in enumerate(members):
            here = join_path(join_path(path, "members"), index)
            if member == name:
                yield ConfigIssue(here, f"mtw {name} cannot be its own member")
            elif member not in monitors:
                yield ConfigIssue(here, f"{member!r} is not a monitor resource")
            elif _reaches(monitors, str(member), name):
                yield ConfigIssue(here, f"multi-target monitors {name} and {member} contain "
                                        "each other")
        for key in ("error_threshold", "warning_threshold"):
            value = item.get(key)
            if isinstance(value, int) and members and value > len(members):
                yield ConfigIssue(join_path(path, key), f"{value} is more than the "
                                                        f"{len(members)} member(s)")
        error, warn = item.get("error_threshold") or len(members), item.get("warning_threshold")
        if isinstance(error, int) and isinstance(warn, int) and members and warn >= error:
            yield ConfigIssue(join_path(path, "warning_threshold"),
                              f"{warn} is not below the error threshold {error}: mtw {name} "
                              "never shows Caution", severity="warning")

    def check(self) -> Check:
        members = list(self.params["members"])
        states = self.ctx.states()
        errors = [m for m in members if states.get(m) == "Error"]
        limit = self.params["error_threshold"] or len(members)
        warn = self.params["warning_threshold"]
        text = f"{len(errors)} of {len(members)} members in error" + \
            (f" ({', '.join(errors)})" if errors else "")
        if len(errors) >= limit:
            return failed(text)
        if warn and len(errors) >= warn:
            return caution(text)
        return normal(text)


def _reaches(monitors: Mapping[str, Any], start: str, goal: str) -> bool:
    """Whether mtw ``start`` contains ``goal``, directly or through other mtws."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        item = monitors.get(current)
        if current in seen or not isinstance(item, Mapping) or item.get("type") != "mtw":
            continue
        seen.add(current)
        members = item.get("members") if isinstance(item.get("members"), list) else []
        if goal in members:
            return True
        todo.extend(str(m) for m in members)
    return False
