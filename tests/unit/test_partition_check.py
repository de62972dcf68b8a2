"""clpcfchk warns where the product's own partition rules let a group run on two servers."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_config_schema import BASE, load

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
    return [i.message for i in load(tmp_path, text).warnings]


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
