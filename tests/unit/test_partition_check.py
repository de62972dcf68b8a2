"""clpcfchk warns where the product's own partition rules let a group run on two servers."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_config_schema import BASE, errors, load

DISK_GROUP = """groups:
  failover1:
    resources:
      disk1: {type: disk, device: /dev/sdb1, mount_point: /mnt/disk1, fs: ext4}
"""
DISKHB = "  - type: disk\n    devices: {server1: /dev/sdc1, server2: /dev/sdc1}\n"
COMHB = "  - type: com\n    devices: {server1: /dev/ttyS0, server2: /dev/ttyS0}\n"
HTTP = ("network_partition:\n  resolvers:\n    - {type: http, target: '198.18.0.254:80', "
        "servers: [server1, server2]}\n")
PING = ("network_partition:\n  resolvers:\n"
        "    - {type: ping, targets: [198.18.0.254], servers: [server1, server2]}\n")


def warnings(tmp_path: Path, text: str) -> list[str]:
    """The partition warnings (not those of the monitors, as userw's about its wait)."""
    return [i.message for i in load(tmp_path, text).warnings
            if i.path.startswith("network_partition")]


def test_shared_disk_without_resolution_or_disk_heartbeat_warns(tmp_path: Path) -> None:
    (w,) = warnings(tmp_path, BASE + DISK_GROUP)
    assert "no network partition resolution and no disk or COM heartbeat" in w and "failover1" in w


def test_a_disk_or_com_heartbeat_silences_it(tmp_path: Path) -> None:
    assert warnings(tmp_path, BASE + DISKHB + DISK_GROUP) == []
    assert warnings(tmp_path, BASE + COMHB + DISK_GROUP) == []


def test_http_without_disk_heartbeat_warns_like_ping(tmp_path: Path) -> None:
    # both sides still reach the web server: each finds the other down, as with ping
    (w,) = warnings(tmp_path, BASE + HTTP + DISK_GROUP)
    assert "http resolution without a disk or COM heartbeat between server1/server2" in w
    assert "web server" in w and "already fails" not in w
    assert warnings(tmp_path, BASE + DISKHB + HTTP + DISK_GROUP) == []


def test_ping_without_disk_heartbeat_warns_about_both_reaching_the_target(tmp_path: Path) -> None:
    (w,) = warnings(tmp_path, BASE + PING)
    assert "ping resolution without a disk or COM heartbeat between server1/server2" in w
    assert warnings(tmp_path, BASE + DISKHB + PING) == []


def test_a_server_without_a_resolver_while_others_have_one_warns(tmp_path: Path) -> None:
    text = BASE + DISKHB + PING.replace("[server1, server2]", "[server1]")
    (w,) = warnings(tmp_path, text)
    assert w.startswith("server2 uses no network partition resolution")


# --- witness arbitration -----------------------------------------------------------------

WITNESS = ("network_partition:\n  resolvers:\n"
           "    - {type: witness, target: '198.18.0.254:29005', servers: [server1, server2]}\n")
SOFTDOG = "monitors:\n  userw: {type: userw, method: softdog}\n"


def test_witness_arbitration_with_a_watchdog_needs_no_warning(tmp_path: Path) -> None:
    # neither the ping/http warning (one side wins) nor the shared-disk one
    assert warnings(tmp_path, BASE + WITNESS + SOFTDOG + DISK_GROUP) == []
    both = WITNESS + "    - {type: ping, targets: [198.18.0.254], servers: [server1, server2]}\n"
    assert warnings(tmp_path, BASE + both + SOFTDOG) == []


def test_witness_arbitration_without_a_watchdog_warns_about_hung_servers(tmp_path: Path) -> None:
    (w,) = warnings(tmp_path, BASE + WITNESS)
    assert w.startswith("server1, server2 run no userw monitor with a kernel watchdog")
    half = SOFTDOG.replace("softdog}", "softdog, servers: [server1]}")
    (w,) = warnings(tmp_path, BASE + WITNESS + half)
    assert w.startswith("server2 runs no userw monitor")


def test_witness_arbitration_needs_every_server_and_one_witness(tmp_path: Path) -> None:
    (e,) = errors(tmp_path, BASE + WITNESS.replace("[server1, server2]", "[server1]") + SOFTDOG)
    assert e.path == "network_partition.resolvers.0.servers"
    assert "needs every server: server2 would go on" in e.message
    two = WITNESS + "    - {type: witness, target: '198.18.1.254:29005', servers: [server1, " \
                    "server2]}\n"
    (e,) = errors(tmp_path, BASE + two + SOFTDOG)
    assert e.path == "network_partition.resolvers.1" and "one witness resolver" in e.message
