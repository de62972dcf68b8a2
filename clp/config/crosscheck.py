"""Rules that span several parts of clp.conf, checked after the schema.

A schema fragment sees one item; these rules need the whole cluster (is this server defined, does
one LAN reach everyone, is an address used twice). They read the data defensively, skipping parts
the schema already rejected, so that every error is still reported in the same run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from clp.config.alert_check import check_alert
from clp.config.group_check import GROUP_CHECKS
from clp.config.issues import ConfigIssue, join_path
from clp.config.monitor_check import MONITOR_CHECKS
from clp.config.partition_check import check_partition
from clp.config.rawdata import as_dict, as_list, interconnect_servers

# Product: letters, digits, '-', '_' and up to 31 characters. Not starting with '-', so a name
# can never be mistaken for a command option.
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,30}$")
# Server names are short host names (seed: FQDN without the domain): RFC 1123 label, 31 max.
SERVER_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,29}[A-Za-z0-9])?$")





def _member_fields(item: Mapping[str, Any], base: str) -> Iterator[tuple[str, str]]:
    """(path, server name) for every server an item names."""
    for key in ("addresses", "devices"):
        for name in as_dict(item.get(key)):
            yield join_path(join_path(base, key), name), name
    for index, name in enumerate(as_list(item.get("servers"))):
        if isinstance(name, str):
            yield join_path(join_path(base, "servers"), index), name


def check_names(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    name = as_dict(data.get("cluster")).get("name")
    if isinstance(name, str) and not CLUSTER_NAME.match(name):
        yield ConfigIssue(
            "cluster.name",
            f"invalid cluster name {name!r}: use up to 31 letters, "
            "digits, '-' or '_', not starting with '-'",
        )
    seen: dict[str, str] = {}
    for server in as_dict(data.get("servers")):
        path = join_path("servers", server)
        if not SERVER_NAME.match(server):
            yield ConfigIssue(
                path,
                f"invalid server name {server!r}: a server name is its host "
                "name (up to 31 letters, digits or '-', not at either end)",
            )
        folded = server.lower()  # host names are case-insensitive
        if folded in seen:
            yield ConfigIssue(path, f"server name {server!r} is the same host as {seen[folded]!r}")
        seen.setdefault(folded, server)


def check_members(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    servers = set(as_dict(data.get("servers")))
    sections = [
        ("interconnects", as_list(data.get("interconnects"))),
        (
            "network_partition.resolvers",
            as_list(as_dict(data.get("network_partition")).get("resolvers")),
        ),
    ]
    for section, items in sections:
        for index, item in enumerate(items):
            for path, name in _member_fields(as_dict(item), join_path(section, index)):
                if name not in servers:
                    yield ConfigIssue(path, f"server {name!r} is not defined in servers")


def check_lan_reach(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """Seed: at least one LAN heartbeat must connect all servers; two or more are recommended."""
    items = as_list(data.get("interconnects"))
    servers = set(as_dict(data.get("servers")))
    if not items or not servers:
        return  # the schema already says what is missing
    lans = [as_dict(i) for i in items if as_dict(i).get("type") == "lan"]
    if not any(servers <= set(as_dict(lan.get("addresses"))) for lan in lans):
        yield ConfigIssue(
            "interconnects", "no LAN interconnect reaches every server; at least one is required"
        )
    if len(lans) == 1:
        yield ConfigIssue(
            "interconnects",
            "only one LAN interconnect is set; 2 or more are recommended",
            severity="warning",
        )


def check_second_path(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """A server on one path only loses every heartbeat with one cable: warn (not when the whole
    cluster has one path; check_lan_reach already says so once)."""
    items = [as_dict(i) for i in as_list(data.get("interconnects"))]
    if len(items) < 2:
        return
    for server in as_dict(data.get("servers")):
        count = sum(server in interconnect_servers(i) for i in items)
        if count == 1:  # none at all is an error from check_lan_reach
            yield ConfigIssue(
                join_path("servers", server),
                f"server {server!r} has only one heartbeat path; a second path is recommended",
                severity="warning",
            )


def check_heartbeat(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    hb = as_dict(as_dict(data.get("cluster")).get("heartbeat"))
    interval, timeout = hb.get("interval"), hb.get("timeout")
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (interval, timeout)
    )
    if numbers and interval >= timeout:
        yield ConfigIssue(
            "cluster.heartbeat.interval",
            f"heartbeat interval ({interval} s) must be shorter than the timeout ({timeout} s)",
        )


def check_addresses(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """An address used twice would make two paths (or two servers) indistinguishable."""
    first: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for index, item in enumerate(as_list(data.get("interconnects"))):
        item = as_dict(item)
        if item.get("type") != "lan":
            continue
        base = join_path(join_path("interconnects", index), "addresses")
        for server, text in as_dict(item.get("addresses")).items():
            try:
                address = ipaddress.ip_address(text)
            except (ValueError, TypeError):
                continue  # reported by the schema
            path = join_path(base, server)
            if address in first:
                yield ConfigIssue(path, f"address {text!r} is already used at {first[address]}")
            else:
                first[address] = path


CHECKS = (
    check_names,
    check_members,
    check_lan_reach,
    check_second_path,
    check_heartbeat,
    check_addresses,
    check_partition,
    *GROUP_CHECKS,
    *MONITOR_CHECKS,
    check_alert,
)


def cross_issues(data: Any) -> list[ConfigIssue]:
    if not isinstance(data, Mapping):
        return []
    return [issue for check in CHECKS for issue in check(data)]
