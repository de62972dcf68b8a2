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


def test_a_takeover_waits_the_device_timeout_and_three_intervals(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, userw("method: softdog")))
    waits = watchdog_waits(config)
    assert waits == dict.fromkeys(S, WatchdogWait(90.0, 9.0))  # interval 3, timeout 90
    assert waits["server1"].wait() == 99.0 and waits["server1"].wait(2.0) == 189.0
    warning, = [str(w) for w in config.warnings]
    assert "every failover from its servers waits 99 s after the server is found down, for " \
        "its watchdog (90 s) to have reset it if it hung" in warning


def test_the_device_timeout_is_in_whole_seconds_and_scales_with_the_ratio(
        tmp_path: Path) -> None:
    text = userw("method: ipmi, use_heartbeat: false, interval: 10, timeout: 120.4, "
                 "servers: [server2]")
    config = load_config(write(tmp_path, text))
    assert watchdog_waits(config) == {"server2": WatchdogWait(120.4, 9.0)}
    assert watchdog_waits(config)["server2"].wait() == 129.0  # a device of 120 s
    # clptoratio 2: userw sets the device to 241 s (240.8 in whole seconds)
    assert watchdog_waits(config)["server2"].wait(2.0) == 250.0


def test_a_watchdog_that_would_fire_between_two_feeds_is_an_error(tmp_path: Path) -> None:
    text = userw("method: softdog, use_heartbeat: false, interval: 5, timeout: 10")
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert "must be longer than 2 check intervals (10 s)" in str(e.value.issues[0])


def test_the_takeover_wait_is_the_longer_of_the_probes_and_the_watchdog() -> None:
    ping = ResolverSpec("pingnp1", "ping", frozenset(S), budget=0.4, describe="ping")
    fence = {"server2": WatchdogWait(120.0, 9.0)}
    p = Partition("server1", S, (), 3.0, fence)
    assert p.grace(("server2",)) == 129.0
    p.ratio = 2.0
    assert p.grace(("server2",)) == 249.0
    assert Partition("server2", S, (), 3.0, fence).grace(("server1",)) == 0.0  # no watchdog
    q = Partition("server1", S, (ping,), 30.0, {"server2": WatchdogWait(1.0, 0.3)})
    assert q.grace(("server2",)) == pytest.approx(0.4 + 60.0)  # the probes', longer
    v = Partition("server1", S, (), 3.0, fence).lost(10.0, ("server2",))
    assert v.kind == "down" and v.takeover_at == 139.0 and "move in 129.00 s" in v.reason


def test_won_at_the_witness_the_wait_adds_the_lost_servers_lease() -> None:
    witness = ResolverSpec("witnessnp1", "witness", frozenset(S), budget=3.0,
                           describe="witness")
    p = Partition("server1", S, (witness,), 3.0, {"server2": WatchdogWait(90.0, 9.0)})
    assert p.lease_of("server2") == 6.0
    assert p.grace(("server2",)) == 6.0 + 99.0


def test_a_hearing_window_of_exactly_an_interval_counts_despite_rounding() -> None:
    witness = ResolverSpec("witnessnp1", "witness", frozenset(S), budget=0.1,
                           describe="witness")
    p = Partition("server1", S, (witness,), 0.1, timeout=0.5)
    assert p.hear_window("server2") == pytest.approx(0.1)  # 0.5 - 0.2 - 0.2 in floats
    assert Partition("server1", S, (witness,), 0.1, timeout=0.45).hear_window("server2") is None
