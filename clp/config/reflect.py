"""How a new configuration reaches a running cluster: the seed's reflect method, from the diff.

Every parameter of the schema records how a change to it is applied (``x-apply``, one of
:data:`clp.config.registry.APPLY_METHODS`, least to most disruptive). :func:`plan` compares two
validated, defaults-filled configurations (``ClusterConfig.raw``), lists every change with the
method it needs (secrets masked), and takes the strongest as the method of the whole upload,
with what the operator does first (the seed's table, chapter 7 "クラスタ構成情報を反映する"),
and, for the methods that stop part of the cluster, which groups or resources.

Pure: no I/O, no clock. ``clpcfctrl`` and the WebUI show its result before anything is applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from clp.config.issues import join_path
from clp.config.registry import APPLY_METHODS, apply_method
from clp.config.secrets import mask_secrets

# the seed's names of the methods, and what the operator does around the upload
LABELS = {
    "upload_only": "アップロードのみ (upload only)",
    "restart_webmgr": "アップロードしてから WebManager サーバを再起動 (upload, then restart the "
                      "WebManager)",
    "suspend_monitors": "モニタを一時停止してからアップロード (suspend the monitors, then upload)",
    "suspend_cluster": "クラスタをサスペンドしてからアップロード (suspend the cluster, then "
                       "upload)",
    "stop_resource": "リソースを停止してからアップロード (stop the resources, then upload)",
    "stop_group": "グループを停止してからアップロード (stop the groups, then upload)",
    "stop_cluster": "クラスタを停止してからアップロード (stop the cluster, then upload)",
    "shutdown_reboot": "アップロードしてからクラスタシャットダウン・再起動 (upload, then shut "
                       "down and reboot the cluster)",
}
EFFECTS = {  # the seed's "影響" column
    "upload_only": "no heartbeat, group or monitor stops",
    "restart_webmgr": "the WebManager restarts; nothing else stops",
    "suspend_monitors": "the monitors stop; the groups and applications go on",
    "suspend_cluster": "heartbeats and monitors stop while suspended; the groups and "
                       "applications go on",
    "stop_resource": "the resources stop: their applications are down until they start again",
    "stop_group": "the groups stop: their applications are down until they start again",
    "stop_cluster": "the cluster stops, groups too: the applications are down until the "
                    "cluster and its groups start again",
    "shutdown_reboot": "the servers reboot: the applications are down until the groups start",
}


@dataclass(frozen=True)
class Change:
    path: str  # clp.conf path, as clpcfchk names it
    kind: str  # changed | added | removed
    old: Any
    new: Any
    method: str

    def describe(self) -> str:
        what = {"changed": f"{_short(self.old)} -> {_short(self.new)}",
                "added": f"added ({_short(self.new)})",
                "removed": f"removed (was {_short(self.old)})"}[self.kind]
        return f"{self.path}: {what}: {self.method}"


@dataclass(frozen=True)
class Plan:
    method: str  # the strongest method of the changes; upload_only when nothing changed
    changes: tuple[Change, ...] = ()
    groups: tuple[str, ...] = ()  # stop_group: the groups to stop (every group: stop_cluster)
    resources: tuple[tuple[str, str], ...] = ()  # stop_resource: (group, resource)
    new_groups: tuple[str, ...] = ()  # of ``groups``, those the upload adds: started after it
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return LABELS[self.method]

    def steps(self) -> list[str]:
        """What the operator does, in order, for this upload."""
        before, after = {
            "upload_only": ([], []),
            "restart_webmgr": ([], ["clpcl -r --web"]),
            "suspend_monitors": (["clpmonctrl -s"], ["clpmonctrl -r"]),
            "suspend_cluster": (["clpcl --suspend"], ["clpcl --resume"]),
            "stop_resource": ([f"clprsc -t {r}" for _, r in self.resources],
                              [f"clprsc -s {r}" for _, r in self.resources]),
            "stop_group": ([f"clpgrp -t {g}" for g in self.groups if g not in self.new_groups],
                           [f"clpgrp -s {g}" for g in self.groups]),
            "stop_cluster": (["clpcl -t -a"], ["clpcl -s -a"]),
            "shutdown_reboot": ([], ["clpstdn -r"]),
        }[self.method]
        return [*before, "clpcfctrl --push -x <dir>", *after]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(item: Any) -> bool:
    return isinstance(item, Mapping)


def _walk(old: Any, new: Any, path: str) -> Iterator[tuple[str, str, Any, Any]]:
    """(path, kind, old, new) of every difference; a list of items (interconnects, resolvers,
    destinations) is compared item by item in order, a list of plain values as one value, and
    an item whose ``type`` changed as one item."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        if old.get("type") != new.get("type") and path:
            yield path, "changed", old, new
            return
        for key in [*old, *(k for k in new if k not in old)]:
            p = join_path(path, key)
            if key not in new:
                yield p, "removed", old[key], None
            elif key not in old:
                yield p, "added", None, new[key]
            else:
                yield from _walk(old[key], new[key], p)
    elif isinstance(old, list) and isinstance(new, list) and (
            any(map(_typed, old)) or any(map(_typed, new))):
        for i in range(max(len(old), len(new))):
            p = join_path(path, i)
            if i >= len(new):
                yield p, "removed", old[i], None
            elif i >= len(old):
                yield p, "added", None, new[i]
            else:
                yield from _walk(old[i], new[i], p)
    elif old != new:
        yield path, "changed", old, new


def _scope(path: str) -> tuple[str | None, str | None]:
    """(group, resource) a path belongs to, if any."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "groups":
        group = parts[1]
        if len(parts) >= 4 and parts[2] == "resources":
            return group, parts[3]
        return group, None
    return None, None


def plan(old: Mapping[str, Any], new: Mapping[str, Any]) -> Plan:
    """The reflect method of replacing ``old`` by ``new`` (both validated, defaults filled)."""
    changes = []
    for path, kind, before, after in _walk(old, new, ""):
        method = apply_method(path, old if kind == "removed" else new)
        key = path.rsplit(".", 1)[-1].split("[", 1)[0]
        changes.append(Change(path, kind, mask_secrets(before, key),
                              mask_secrets(after, key), method))
    if not changes:
        return Plan("upload_only", notes=("nothing changed",))
    method = max((c.method for c in changes), key=APPLY_METHODS.index)
    groups: dict[str, None] = {}
    resources: dict[tuple[str, str], None] = {}
    for c in changes:
        group, resource = _scope(c.path)
        if group is None or c.method not in ("stop_group", "stop_resource"):
            continue
        if c.method == "stop_group" or resource is None:
            groups[group] = None
        else:
            resources[(group, resource)] = None
    if method == "stop_group":  # a group stopped anyway needs none of its resources stopped
        for group, _resource in list(resources):
            groups.setdefault(group, None)
        resources.clear()
    old_groups = old.get("groups") or {}
    return Plan(method, tuple(changes), tuple(groups), tuple(resources),
                tuple(g for g in groups if g not in old_groups))
