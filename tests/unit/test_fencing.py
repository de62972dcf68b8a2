"""A takeover waits for the watchdog of the server it takes over from (clp.config.fencing): the
wait from clp.conf, in the partition core's takeover wait, and what clpcfchk says of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clp.config import ConfigError, load_config
from clp.config.fencing import WatchdogWait, watchdog_waits
from clp.core.partition import Partition, ResolverSpec
from tests.unit.test_config_schema import BASE, write

S = ("server1", "server2")


def userw(body: str) -> str:
    return BASE + "monitors:\n  userw: {type: userw, " + body + "}\n"


def test_no_watchdog_no_wait(tmp_path: Path) -> None:
    assert watchdog_waits(load_config(write(tmp_path, BASE))) == {}  # keepalive, the default


def test_on_the_heartbeats_timing_a_takeover_waits_three_intervals(tmp_path: Path) -> None:
    waits = watchdog_waits(load_config(write(tmp_path, userw("method: softdog"))))
    assert waits == dict.fromkeys(S, WatchdogWait(90.0, 90.0, 9.0))  # interval 3, timeout 90
    assert waits["server1"].wait() == 9.0 and waits["server1"].wait(2.0) == 9.0


def test_a_slower_watchdog_adds_its_excess_and_scales_with_the_ratio(tmp_path: Path) -> None:
    text = userw("method: ipmi, use_heartbeat: false, interval: 10, timeout: 120.4, "
                 "servers: [server2]")
    config = load_config(write(tmp_path, text))
    assert watchdog_waits(config) == {"server2": WatchdogWait(120.4, 90.0, 9.0)}
    assert watchdog_waits(config)["server2"].wait() == 39.0  # a device of 120 s
    # clptoratio 2: userw sets the device to 241 s (240.8 in whole seconds), the peers time
    # out after 180 s
    assert watchdog_waits(config)["server2"].wait(2.0) == 70.0
    warning, = [str(w) for w in config.warnings]
    assert "the watchdog (120 s) is slower than the heartbeat timeout (90 s)" in warning
    assert "every failover from its servers waits 39 s for it" in warning


def test_a_watchdog_that_would_fire_between_two_feeds_is_an_error(tmp_path: Path) -> None:
    text = userw("method: softdog, use_heartbeat: false, interval: 5, timeout: 10")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert "must be longer than 2 check intervals (10 s)" in str(e.value.issues[0])


def test_the_takeover_wait_is_the_longer_of_the_probes_and_the_watchdog() -> None:
    ping = ResolverSpec("pingnp1", "ping", frozenset(S), budget=0.4, describe="ping")
    fence = {"server2": WatchdogWait(120.0, 90.0, 9.0)}
    p = Partition("server1", S, (), 3.0, fence)
    assert p.grace(("server2",)) == 39.0
    p.ratio = 2.0
    assert p.grace(("server2",)) == 69.0
    assert Partition("server2", S, (), 3.0, fence).grace(("server1",)) == 0.0  # no watchdog
    q = Partition("server1", S, (ping,), 3.0, {"server2": WatchdogWait(10.0, 110.0, 9.0)})
    assert q.grace(("server2",)) == pytest.approx(0.4 + 6.0)  # the probes', longer
    v = Partition("server1", S, (), 3.0, fence).lost(10.0, ("server2",))
    assert v.kind == "down" and v.takeover_at == 49.0 and "move in 39.00 s" in v.reason
