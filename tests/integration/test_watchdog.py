"""The lab's watchdog devices with the real services: userw (method softdog) feeds the lab's
device through the kernel's FUSE ioctls, and a server whose user space hangs while its cables
stay live (its kernel still answers ARP for the floating IP and holds the shared disk) is
powered off by its watchdog before its group starts elsewhere. Without a watchdog the same hang
leaves the shared disk mounted on both servers until the hung one runs again (a group with a
floating IP does not start at all: the address still answers): the keepalive method's limit,
which the watcher reports as allowed, not as a pass."""

from __future__ import annotations

import time

import pytest

from clp.config.fencing import device_timeout
from clp.lab.chaos import Watcher
from clp.lab.netns import VAR_DIR
from tests.integration.grouputil import (
    ExclusivityWatch,
    lab_softdog,
    sample_cluster,
    wait_group,
)
from tests.integration.labutil import TIMEOUT, needs_root, wait_for

pytestmark = [pytest.mark.lab, needs_root]


def devices(lab) -> dict:
    return lab.status()["watchdogs"]


def test_a_live_hung_owner_is_powered_off_by_its_watchdog_before_its_group_moves(tmp_path):
    with sample_cluster(tmp_path, edit=lab_softdog) as lab, ExclusivityWatch(lab) as watch:
        wait_group(lab, "failover1", "Online", "server1")
        want = device_timeout(TIMEOUT)
        wait_for("userw to open and set both watchdogs", lambda: all(
            d["open"] and d["armed"] and d["timeout"] == want for d in devices(lab).values()),
            timeout=20)
        time.sleep(3 * want)  # fed: nothing fires while user space runs
        assert all(d["fired"] == 0 for d in devices(lab).values())
        hung = time.monotonic()
        lab.hang("server1", live=True)
        wait_for("server1's watchdog to power it off",
                 lambda: lab.state_of("server1") == "crashed", timeout=want + 10)
        fired = time.monotonic() - hung
        assert devices(lab)["server1"]["fired"] == 1
        wait_group(lab, "failover1", "Online", "server2", observer="server2", timeout=30)
        log = (VAR_DIR / lab.name / "watchdog.log").read_text()
        assert "server1: not fed for" in log and "powering it off" in log
        assert fired <= want + 2 * 0.2 + 1.0, fired  # the last feed, then the device's timeout
        lab.restart("server1")
        wait_for("server1's new userw to open its watchdog", lambda: devices(lab)["server1"][
            "open"] and devices(lab)["server1"]["armed"], timeout=20)
        assert devices(lab)["server1"]["fired"] == 1
    assert watch.allowed == []  # with a watchdog nothing is allowed, hung or not


def disk_only(conf: dict, conf_dir) -> None:
    """failover1 without its floating IP (whose duplicate-address check would refuse to start
    it beside a hung owner that still answers for it), so only the disk shows the danger."""
    del conf["groups"]["failover1"]["resources"]["fip1"]
    del conf["monitors"]["fipw2"]


def test_without_a_watchdog_a_live_hung_owner_keeps_its_disk_beside_the_new_owner(tmp_path):
    """The keepalive limit (docs/monitors.md), seen as the chaos watcher sees it: while server1
    is frozen its mount stays (its kernel would write its dirty pages), and server2 mounts the
    disk too; reported as allowed by that limit, not as a pass. (With its floating IP the group
    would not start on server2 at all: the address still answers.)"""
    with sample_cluster(tmp_path, edit=disk_only) as lab, Watcher(lab) as watch:
        wait_group(lab, "failover1", "Online", "server1")
        lab.hang("server1", live=True)
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 30)
        wait_for("the watcher to report the hung holder", lambda: watch.allowed, timeout=10)
        lab.resume("server1")  # its hang fence: rounds further apart than the timeout
        wait_for("server1 to fence itself", lambda: lab.state_of("server1") != "running",
                 timeout=30)
    assert watch.violations == [], watch.violations
    assert "failover1/disk1 on server1, server2, server1 hung on a hung server without a " \
        "kernel watchdog" in "\n".join(watch.allowed), watch.allowed
