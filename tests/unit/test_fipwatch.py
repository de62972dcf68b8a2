"""Which floating IPs are watched ahead of a takeover (clp.clusterd.fipwatch.late_fips)."""

from __future__ import annotations

import pytest

from clp.clusterd.fipwatch import LINGER, late_fips
from clp.config.model import GroupConfig, Recovery, ResourceConfig

R = Recovery(0, 1, "none")


def fip(name: str, ip: str, check: bool = True, window: float = 0.1) -> ResourceConfig:
    return ResourceConfig(name, "fip", {"ip": ip, "ping_check": check, "check_timeout": window,
                                        "garp_count": 3}, (), R, R)


def group(name: str, servers: tuple[str, ...], *resources: ResourceConfig) -> GroupConfig:
    return GroupConfig(name, servers, "auto", "manual", "off", resources)


GROUPS = [
    group("g1", ("s1", "s2"), fip("fip1", "198.18.0.11"),
          ResourceConfig("exec1", "exec", {}, (), R, R)),
    group("g2", ("s1", "s2"), fip("fip2", "198.18.0.12", check=False)),  # no check: no watch
    group("g3", ("s2", "s3"), fip("fip3", "198.18.0.13")),  # s1 cannot run it
    group("g4", ("s1", "s2"), fip("fip4", "198.18.0.14", window=0.5)),
]
OWNERS = {"g1": "s2", "g2": "s2", "g3": "s2", "g4": "s2"}


def watched(quiet: float, interval: float = 1.0, timeout: float = 3.0,
            owners: dict[str, str | None] = OWNERS) -> dict[str, float]:
    return late_fips("s1", GROUPS, owners, {"s2": quiet}, interval, timeout)[0]


def test_nothing_is_watched_while_the_owner_is_heard_in_time_but_the_next_watch_is_due() -> None:
    assert watched(1.4) == {}  # under one and a half intervals: not even a missed heartbeat
    assert late_fips("s1", GROUPS, OWNERS, {"s2": 1.4}, 1.0, 3.0)[1] == pytest.approx(0.1)


def test_a_late_owners_checked_addresses_of_groups_this_server_may_run_are_watched() -> None:
    assert watched(1.6) == {"198.18.0.11": 0.1, "198.18.0.14": 0.5}


def test_at_a_long_timeout_the_watch_starts_shortly_before_it() -> None:
    # interval 3 s, timeout 90 s: not from the first missed heartbeat, but in time for the check
    assert watched(5.0, interval=3.0, timeout=90.0) == {}
    start = 90.0 - 0.1 - 2 * 3.0
    assert "198.18.0.11" not in watched(start - 0.01, interval=3.0, timeout=90.0)
    assert "198.18.0.11" in watched(start + 0.01, interval=3.0, timeout=90.0)
    assert "198.18.0.14" in watched(90.0 - 0.5 - 6.0 + 0.01, interval=3.0, timeout=90.0)


def test_the_watch_ends_some_time_after_the_timeout() -> None:
    assert watched(3.0 + LINGER) != {}
    assert watched(3.0 + LINGER + 0.01) == {}


def test_groups_that_run_here_or_nowhere_or_whose_owner_was_never_heard_are_not_watched() -> None:
    assert watched(2.0, owners={"g1": "s1", "g4": None}) == {}
    assert late_fips("s1", GROUPS, OWNERS, {}, 1.0, 3.0) == ({}, None)  # s2 never heard
