"""clp.conf cross-checks: names, members, LAN reach, addresses, devices, targets, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config_schema import BASE, errors, load, messages, with_interconnects

# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["c" * 32, "my cluster", "-c", "a.b", "日本"])
def test_invalid_cluster_names(tmp_path: Path, name: str) -> None:
    found = errors(tmp_path, BASE.replace("name: cluster", f"name: '{name}'"))
    assert [i.path for i in found] == ["cluster.name"]


@pytest.mark.parametrize("name", ["c" * 31, "my_cluster-2", "_x"])
def test_valid_cluster_names(tmp_path: Path, name: str) -> None:
    assert load(tmp_path, BASE.replace("name: cluster", f"name: '{name}'")).name == name


@pytest.mark.parametrize("name", ["s" * 32, "srv_1", "-srv", "srv-", "srv.example.com"])
def test_invalid_server_names(tmp_path: Path, name: str) -> None:
    found = errors(tmp_path, BASE.replace("server2", name))
    assert f"servers.{name}" in [i.path for i in found]


def test_server_names_are_case_insensitive_host_names(tmp_path: Path) -> None:
    text = BASE.replace("  server2: {}\n", "  server2: {}\n  SERVER1: {}\n")
    found = errors(tmp_path, text)
    assert any(i.path == "servers.SERVER1" and "same host" in i.message for i in found)


def test_undefined_servers_in_interconnects_and_resolvers(tmp_path: Path) -> None:
    text = BASE + (
        "  - type: witness\n    target: w:80\n    servers: [server1, ghost]\n"
        "network_partition:\n  resolvers:\n"
        "    - {type: ping, targets: [198.18.0.254], servers: [phantom]}\n"
    )
    found = errors(tmp_path, text)
    assert [(i.path, i.line) for i in found] == [
        ("interconnects[2].servers[1]", 13),
        ("network_partition.resolvers[0].servers[0]", 16),
    ]


def test_one_lan_must_reach_every_server(tmp_path: Path) -> None:
    text = with_interconnects(
        "  - type: lan\n    addresses: {server1: 198.18.1.1, server2: 198.18.1.2}\n"
        "  - type: lan\n    addresses: {server2: 198.18.0.2, server3: 198.18.0.3}\n",
        servers="  server1: {}\n  server2: {}\n  server3: {}\n",
    )
    found = errors(tmp_path, text)
    assert [(i.path, i.line) for i in found] == [("interconnects", 7)]
    assert "no LAN interconnect reaches every server" in found[0].message


def test_no_lan_at_all(tmp_path: Path) -> None:
    text = with_interconnects(
        "  - type: disk\n    devices: {server1: /dev/sdb, server2: /dev/sdb}\n"
    )
    assert [i.path for i in errors(tmp_path, text)] == ["interconnects"]


def test_empty_interconnect_list(tmp_path: Path) -> None:
    found = errors(
        tmp_path, with_interconnects("  []\n").replace("interconnects:\n  []", "interconnects: []")
    )
    assert messages(found) == [
        "interconnects: at least one LAN interconnect is required (clp.conf:6)"
    ]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("198.18.1.300", "'198.18.1.300' is not an IPv4 address"),
        ("fe80::zz", "'fe80::zz' is not an IPv6 address"),
        ("server1.example", "is not an IPv4 address"),
        ("10", "10 is not a string"),
    ],
)
def test_invalid_lan_addresses(tmp_path: Path, address: str, message: str) -> None:
    (found,) = errors(tmp_path, BASE.replace("server2: 198.18.1.2", f"server2: {address}"))
    assert found.path == "interconnects[0].addresses.server2"
    assert message in found.message and found.line == 8


def test_ipv6_lan_addresses_are_valid(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, BASE.replace("198.18.0.1, server2: 198.18.0.2", "'fd00::1', server2: 'fd00::2'")
    )
    assert cfg.interconnects[1].addresses["server2"] == "fd00::2"


def test_addresses_are_unique_across_the_cluster(tmp_path: Path) -> None:
    found = errors(tmp_path, BASE.replace("198.18.0.2", "198.18.1.1"))
    assert messages(found) == [
        "interconnects[1].addresses.server2: address '198.18.1.1' is already used at "
        "interconnects[0].addresses.server1 (clp.conf:10)"
    ]


def test_device_paths_must_be_absolute(tmp_path: Path) -> None:
    found = errors(
        tmp_path, BASE + "  - type: com\n    devices: {server1: ttyS0, server2: /dev/ttyS0}\n"
    )
    assert [i.path for i in found] == ["interconnects[2].devices.server1"]


def test_com_connects_exactly_two_servers(tmp_path: Path) -> None:
    text = with_interconnects(
        "  - type: lan\n    addresses: {server1: 198.18.1.1, server2: 198.18.1.2, "
        "server3: 198.18.1.3}\n"
        "  - type: com\n    devices: {server1: /dev/ttyS0, server2: /dev/ttyS0, "
        "server3: /dev/ttyS0}\n",
        servers="  server1: {}\n  server2: {}\n  server3: {}\n",
    )
    found = errors(tmp_path, text)
    assert messages(found) == [
        "interconnects[1].devices: a COM heartbeat connects exactly 2 servers (clp.conf:11)"
    ]


@pytest.mark.parametrize("target", ["198.18.0.250", "host:", "host:99999", "a b:80", "[::1:80"])
def test_witness_target_is_host_port(tmp_path: Path, target: str) -> None:
    text = BASE + f"  - type: witness\n    target: '{target}'\n    servers: [server1, server2]\n"
    (found,) = errors(tmp_path, text)
    assert found.path == "interconnects[2].target" and "host:port" in found.message


@pytest.mark.parametrize("count", [1, 33])
def test_server_count(tmp_path: Path, count: int) -> None:
    servers = "".join(f"  s{i}: {{}}\n" for i in range(1, count + 1))
    addresses = ", ".join(f"s{i}: 198.18.1.{i}" for i in range(1, count + 1))
    text = with_interconnects(f"  - type: lan\n    addresses: {{{addresses}}}\n", servers)
    found = errors(tmp_path, text)
    assert "servers: a cluster needs 2 to 32 servers (clp.conf:3)" in messages(found)


def test_warnings_single_lan_and_second_path(tmp_path: Path) -> None:
    one_lan = with_interconnects(
        "  - type: lan\n    addresses: {server1: 198.18.1.1, server2: 198.18.1.2}\n"
    )
    assert messages(list(load(tmp_path, one_lan).warnings)) == [
        "interconnects: only one LAN interconnect is set; 2 or more are recommended (clp.conf:6)"
    ]
    # a second path that leaves server2 out: server2 still has a single path
    one_lan_witness = one_lan + "  - type: witness\n    target: w:80\n    servers: [server1]\n"
    warnings = load(tmp_path, one_lan_witness).warnings
    assert [(w.path, w.severity) for w in warnings] == [
        ("servers.server2", "warning"),
        ("interconnects", "warning"),
    ]
    assert "second path is recommended" in warnings[0].message


