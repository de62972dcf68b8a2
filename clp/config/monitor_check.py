"""Cross-checks of the monitors part of clp.conf (run with the others from ``crosscheck.py``).

A monitor's schema fragment sees one monitor; these rules see the cluster: its servers, its
target resource (and whether a monitor of that type may watch it), its recovery target, names
unique among monitors, and each type's own rules (``MonitorType.cross_check``). The scripts a
monitor runs are checked against the configuration directory by ``monitor_scripts_issues``.

Also here: the monitors clp.conf does not name but the product creates by itself (``userw`` with
the cluster, one ``fipw<N>`` per floating IP), and the resolution of a recovery target name to
its kind, shared by the checks and the loader.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clp.config.group_check import NAME, groups_of, resources_of
from clp.config.issues import ConfigIssue, join_path
from clp.config.monitor_schema import ALL_GROUPS, LOCAL_SERVER
from clp.config.rawdata import as_dict, as_list


def monitors_of(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(path, monitor name, monitor data) for every monitor named in clp.conf."""
    for name, item in as_dict(data.get("monitors")).items():
        yield join_path("monitors", name), name, as_dict(item)


def default_monitors(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The monitors the product creates without being asked, unless clp.conf has them: ``userw``
    (with the cluster) and a ``fipw<N>`` for every floating IP no fipw watches yet."""
    named = as_dict(data.get("monitors"))
    out: dict[str, dict[str, Any]] = {}
    if not any(as_dict(m).get("type") == "userw" for m in named.values()) \
            and "userw" not in named:
        out["userw"] = {"type": "userw"}
    watched = {as_dict(m).get("target") for m in named.values()
               if as_dict(m).get("type") == "fipw"}
    number = 0
    for _path, _group, rname, item in resources_of(data):
        if item.get("type") != "fip" or rname in watched:
            continue
        number += 1
        while f"fipw{number}" in named:
            number += 1
        out[f"fipw{number}"] = {"type": "fipw", "target": rname}
    return out


def recovery_kind(name: str, data: Mapping[str, Any], declared: str | None = None
                  ) -> tuple[str | None, str]:
    """The kind of recovery target ``name`` (resource, group, all_groups, local_server), or
    (None, why it cannot be told)."""
    if name == LOCAL_SERVER:
        kinds = ["local_server"]
    elif name == ALL_GROUPS:
        kinds = ["all_groups"]
    else:
        groups = {g for _p, g, _d in groups_of(data)}
        resources = {r for _p, _g, r, _d in resources_of(data)}
        kinds = [k for k, names in (("group", groups), ("resource", resources)) if name in names]
    if declared is not None:
        if declared in kinds:
            return declared, ""
        return None, f"{name!r} is not a {declared.replace('_', ' ')}"
    if not kinds:
        return None, (f"{name!r} is not a group resource, a group, {LOCAL_SERVER!r} or "
                      f"{ALL_GROUPS!r}")
    if len(kinds) > 1:
        return None, (f"{name!r} is both a group and a resource; say which with "
                      "recovery.target_type")
    return kinds[0], ""


def resource_types(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Resource name -> its data (with its ``type``)."""
    return {rname: item for _p, _g, rname, item in resources_of(data)}


def add_default_monitors(data: dict[str, Any]) -> None:
    """Put the default monitors into clp.conf data (before defaults and checks), as the product
    writes them into its configuration."""
    if data.get("monitors") is None:
        data["monitors"] = {}
    if isinstance(data["monitors"], dict):
        data["monitors"].update(default_monitors(data))


def check_monitor_names(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    resources = resource_types(data)
    for path, name, _item in monitors_of(data):
        if not NAME.match(name):
            yield ConfigIssue(path, f"invalid monitor name {name!r}: use up to 31 letters, "
                                    "digits, '-' or '_', not starting with '-'")
        elif name in resources:
            yield ConfigIssue(path, f"monitor name {name!r} is already a resource name; "
                                    "clpstat and clpmonctrl would be ambiguous")


def check_monitor_refs(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    from clp.monitors import registry

    servers = set(as_dict(data.get("servers")))
    resources = resource_types(data)
    for path, name, item in monitors_of(data):
        try:
            kind = registry.get(str(item.get("type")))
        except KeyError:
            continue  # the schema reports the unknown type
        for index, server in enumerate(as_list(item.get("servers"))):
            if isinstance(server, str) and server not in servers:
                yield ConfigIssue(join_path(join_path(path, "servers"), index),
                                  f"server {server!r} is not defined in servers")
        yield from _check_target(path, name, item, kind, resources)
        yield from _check_recovery(path, name, item, kind, data)
        yield from kind.cross_check(path, name, item, data)


def _check_target(path: str, name: str, item: Mapping[str, Any], kind: Any,
                  resources: Mapping[str, Mapping[str, Any]]) -> Iterator[ConfigIssue]:
    target = item.get("target")
    timing = item.get("timing", kind.defaults.get("timing", "always"))
    if target is None:
        if kind.needs_target:
            yield ConfigIssue(path, f"monitor {name} ({kind.name}) needs a target resource "
                                    "(target)")
        elif timing == "active":
            yield ConfigIssue(path, f"monitor {name} monitors while a resource is active "
                                    "(timing: active): name it with target")
        return
    if not isinstance(target, str):
        return
    here = join_path(path, "target")
    if target not in resources:
        yield ConfigIssue(here, f"{target!r} is not a group resource")
        return
    rtype = resources[target].get("type")
    if kind.target_types and rtype not in kind.target_types:
        yield ConfigIssue(here, f"a {kind.name} monitor watches a "
                                f"{' or '.join(kind.target_types)} resource; {target} is {rtype}")


def _check_recovery(path: str, name: str, item: Mapping[str, Any], kind: Any,
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    recovery = as_dict(item.get("recovery"))
    rpath = join_path(path, "recovery")
    target = recovery.get("target")
    if target is None:
        # the type's default is its target resource, or the group of it: it needs one
        unknown = not kind.default_recovery or (kind.default_recovery in ("group", "resource")
                                                and not item.get("target"))
        if unknown:
            yield ConfigIssue(rpath, f"monitor {name} ({kind.name}) needs a recovery target "
                                     f"(recovery.target: a group, a resource, {ALL_GROUPS!r} "
                                     f"or {LOCAL_SERVER!r})")
        return
    declared = recovery.get("target_type")
    if not isinstance(target, str) or (declared is not None and not isinstance(declared, str)):
        return
    found, why = recovery_kind(target, data, declared)
    if found is None:
        yield ConfigIssue(join_path(rpath, "target"), why)


def monitor_scripts_issues(data: Mapping[str, Any], directory: Path) -> Iterator[ConfigIssue]:
    """The scripts monitors run exist and are executable: genw's script and the recovery
    script, relative names under scripts/monitor.s/<monitor>/ (the product's place)."""
    from clp.monitors import registry

    for path, name, item in monitors_of(data):
        try:
            kind = registry.get(str(item.get("type")))
        except KeyError:
            continue
        for key, script in kind.scripts(item):
            yield from _script_issue(join_path(path, key), script_path(directory, name, script))
        script = as_dict(as_dict(item.get("recovery")).get("script"))
        used = script.get("count", 0) or any(script.get(f"before_{k}") for k in
                                             ("reactivation", "failover", "final_action"))
        if used and isinstance(script.get("path", "preaction.sh"), str):
            yield from _script_issue(join_path(join_path(path, "recovery"), "script"),
                                     script_path(directory, name,
                                                 script.get("path", "preaction.sh")))


def script_path(directory: Path, monitor: str, script: str) -> Path:
    """An absolute script path, or a product script in scripts/monitor.s/<monitor>/."""
    return Path(script) if os.path.isabs(script) else \
        directory / "scripts" / "monitor.s" / monitor / script


def _script_issue(path: str, script: Path) -> Iterator[ConfigIssue]:
    if not script.is_file():
        yield ConfigIssue(path, f"script {script} does not exist")
    elif not os.access(script, os.X_OK):
        yield ConfigIssue(path, f"script {script} is not executable (chmod 755)")


MONITOR_CHECKS = (check_monitor_names, check_monitor_refs)
