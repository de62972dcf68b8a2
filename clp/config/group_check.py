"""Cross-checks of the groups part of clp.conf (run with the others from ``crosscheck.py``).

A resource's schema fragment sees one resource; these rules see the cluster: policy servers,
names unique cluster-wide (the product addresses a resource by name alone), dependencies inside
the group and without cycles, floating IPs and mount points used once. The exec scripts are
checked against the configuration directory by ``scripts_issues``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clp.config.group_schema import resolve_depends
from clp.config.issues import ConfigIssue, join_path
from clp.config.rawdata import as_dict

# Group and resource names: as cluster names (they become directory names under scripts/).
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,30}$")
_TEMPLATE_HINT = "run `clpcfchk DIR --scripts` to create the default scripts"



def groups_of(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(path, group name, group data) for every group."""
    for name, group in as_dict(data.get("groups")).items():
        yield join_path("groups", name), name, as_dict(group)


def resources_of(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(path, group name, resource name, resource data) for every resource."""
    for gpath, gname, group in groups_of(data):
        for rname, item in as_dict(group.get("resources")).items():
            yield join_path(join_path(gpath, "resources"), rname), gname, rname, as_dict(item)


def check_policy(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    servers = set(as_dict(data.get("servers")))
    for gpath, _name, group in groups_of(data):
        policy = group.get("servers")
        if not isinstance(policy, list):
            continue
        seen: set[str] = set()
        for index, server in enumerate(policy):
            path = join_path(join_path(gpath, "servers"), index)
            if not isinstance(server, str):
                continue
            if server not in servers:
                yield ConfigIssue(path, f"server {server!r} is not defined in servers")
            if server in seen:
                yield ConfigIssue(path, f"server {server!r} appears twice in the failover policy")
            seen.add(server)


def check_resource_names(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    for gpath, gname, _group in groups_of(data):
        if not NAME.match(gname):
            yield ConfigIssue(gpath, f"invalid group name {gname!r}: use up to 31 letters, "
                                     "digits, '-' or '_', not starting with '-'")
    first: dict[str, str] = {}
    for path, gname, rname, _item in resources_of(data):
        if not NAME.match(rname):
            yield ConfigIssue(path, f"invalid resource name {rname!r}: use up to 31 letters, "
                                    "digits, '-' or '_', not starting with '-'")
        if rname in first:
            yield ConfigIssue(path, f"resource name {rname!r} is already used in group "
                                    f"{first[rname]!r}; resource names are unique in a cluster")
        else:
            first[rname] = gname


def check_depends(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    for gpath, gname, group in groups_of(data):
        resources = as_dict(group.get("resources"))
        graph = resolve_depends(resources)
        for rname, item in resources.items():
            rpath = join_path(join_path(gpath, "resources"), rname)
            for index, dep in enumerate(as_dict(item).get("depends") or []):
                if isinstance(dep, str) and dep not in resources:
                    yield ConfigIssue(join_path(join_path(rpath, "depends"), index),
                                      f"{dep!r} is not a resource of group {gname!r}")
                elif dep == rname:
                    yield ConfigIssue(join_path(join_path(rpath, "depends"), index),
                                      f"resource {rname!r} depends on itself")
        cycle = find_cycle(graph)
        if cycle:
            yield ConfigIssue(join_path(join_path(gpath, "resources"), cycle[0]),
                              "dependency cycle: " + " -> ".join(cycle))


def find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """One cycle of the dependency graph as [a, b, ..., a] (self-loops excluded), or []."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep == node or dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _interconnect_addresses(data: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for index, item in enumerate(data.get("interconnects") or []):
        for server, text in as_dict(as_dict(item).get("addresses")).items():
            with_path = join_path(join_path(join_path("interconnects", index), "addresses"),
                                  server)
            try:
                found.setdefault(str(ipaddress.ip_address(text)), with_path)
            except ValueError:
                continue
    return found


def check_fip_and_mounts(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    servers = _interconnect_addresses(data)
    fips: dict[str, str] = {}
    mounts: dict[str, str] = {}
    for path, _gname, _rname, item in resources_of(data):
        if item.get("type") == "fip" and isinstance(item.get("ip"), str):
            try:
                ip = str(ipaddress.ip_address(item["ip"]))
            except ValueError:
                continue  # the schema reports it
            here = join_path(path, "ip")
            if ip in servers:
                yield ConfigIssue(here, f"floating IP {ip} is a server address ({servers[ip]})")
            elif ip in fips:
                yield ConfigIssue(here, f"floating IP {ip} is already used at {fips[ip]}")
            fips.setdefault(ip, here)
        if item.get("type") == "disk" and isinstance(item.get("mount_point"), str):
            mp = os.path.normpath(item["mount_point"])
            here = join_path(path, "mount_point")
            if mp in mounts:
                yield ConfigIssue(here, f"mount point {mp} is already used at {mounts[mp]}")
            mounts.setdefault(mp, here)


GROUP_CHECKS = (check_policy, check_resource_names, check_depends, check_fip_and_mounts)


def exec_scripts(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(path, group, resource, resource data) of every exec resource."""
    for path, gname, rname, item in resources_of(data):
        if item.get("type") == "exec":
            yield path, gname, rname, item


def scripts_issues(data: Mapping[str, Any], directory: Path) -> Iterator[ConfigIssue]:
    """Every exec resource's start and stop scripts exist in scripts/<group>/<resource>/."""
    for path, gname, rname, item in exec_scripts(data):
        for key, default in (("script_start", "start.sh"), ("script_stop", "stop.sh")):
            name = item.get(key, default)
            if not isinstance(name, str):
                continue
            script = directory / "scripts" / gname / rname / name
            if not script.is_file():
                yield ConfigIssue(path, f"script {script} does not exist; {_TEMPLATE_HINT}")
            elif not os.access(script, os.X_OK):
                yield ConfigIssue(path, f"script {script} is not executable (chmod 755)")
