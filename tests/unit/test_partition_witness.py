"""Witness arbitration in the partition core (clp.core.partition, clp.core.liveness): the
takeover wait after a granted claim (won_wait), the hearing window in the heard bitmap, and a
server lost while a claim is out getting a claim of its own."""

from __future__ import annotations

import pytest

from clp.config.fencing import WatchdogWait
from clp.core.arbiter import Arbiter
from clp.core.liveness import Liveness
from clp.core.partition import Partition, ResolverSpec

S = ("server1", "server2", "server3")
WITNESS = ResolverSpec("witnessnp1", "witness", frozenset(S), budget=0.5, describe="witness")


def part(timeout: float = 8.0, fence: dict | None = None) -> Partition:
    # interval 1, lease 1.5: a hearing window of 8 - 1.5 - 2 = 4.5 s
    return Partition("server1", S, (WITNESS,), 1.0, fence or {}, timeout=timeout)


def test_the_hearing_window_needs_room_in_the_timeout() -> None:
    assert part().hear_window("server2") == 4.5
    assert part(timeout=4.5).hear_window("server2") == pytest.approx(1.0)
    assert part(timeout=4.4).hear_window("server2") is None  # less than an interval
    ping = ResolverSpec("pingnp1", "ping", frozenset(S), budget=0.5, describe="ping")
    assert Partition("server1", S, (ping,), 1.0, timeout=8.0).hear_window("server2") is None


def test_won_waits_for_the_later_of_the_two_proofs_then_the_release_or_the_watchdog() -> None:
    p = part()
    timers = {"server2": 100.0}  # declared down at 108; its heartbeat proof ended by 107
    assert p.won_wait(108.0, ("server2",), {}, timers) == 0.0  # a crash: no proof left
    assert p.won_wait(108.0, ("server2",), {"server2": -5.0}, timers) == 0.0
    assert p.won_wait(108.0, ("server2",), {"server2": 1.2}, timers) == pytest.approx(2.2)
    assert p.won_wait(110.0, ("server2",), {}, timers) == 0.0
    assert p.won_wait(106.5, ("server2",), {}, timers) == pytest.approx(1.5)  # its heartbeat
    fenced = part(fence={"server2": WatchdogWait(3.0, 3.0)})  # a reset 6 s after a hang
    assert fenced.won_wait(108.0, ("server2",), {}, timers) == pytest.approx(5.0)
    assert p.won_wait(108.0, ("server2",), {}, {}) is None  # no timer: the usual wait
    assert part(timeout=4.0).won_wait(108.0, ("server2",), {}, timers) is None  # no window


def test_a_granted_claim_moves_a_crashed_servers_groups_at_once() -> None:
    p = part()
    assert p.lost(108.0, ("server2",), timers={"server2": 100.0}) == ("witnessnp1",)
    v = p.resolved(108.01, {"witnessnp1": True}, left={})
    assert v.kind == "down" and v.takeover_at == 108.01
    assert v.reason == "server2 down: witness granted the claim"
    q = part()
    q.lost(108.0, ("server2",), timers={"server2": 100.0})
    w = q.resolved(108.01, {"witnessnp1": True})  # no grant details: the usual wait
    assert w.takeover_at == pytest.approx(108.01 + 0.5 + 2.0)


def test_the_heard_bit_ends_a_hearing_window_after_the_peers_newest_heartbeat() -> None:
    live = Liveness("server1", list(S), {"lanhb1": set(S)}, 8.0, 1.0, (WITNESS,), 0.0)
    for s in ("server2", "server3"):
        live.heartbeat(1.0, s, "lanhb1")
    live.heartbeat(4.0, "server3", "lanhb1")
    heard, _ = live.bitmaps(5.4)
    assert heard == 0b111  # both peers heard within the window (and itself)
    heard, _ = live.bitmaps(5.6)  # server2 silent for 4.6 s > 4.5: no longer said
    assert heard == 0b101
    assert live.bitmaps()[0] == 0b111  # without a time, the bitmap of the Online servers


def test_a_server_lost_while_a_claim_is_out_gets_a_claim_of_its_own() -> None:
    arbiter = Arbiter(started=0.0, hold=10.0)
    live = Liveness("server1", list(S), {"lanhb1": set(S)}, 3.0, 1.0, (WITNESS,), 0.0)
    for s in ("server2", "server3"):
        live.heartbeat(10.0, s, "lanhb1")
    live.heartbeat(10.8, "server3", "lanhb1")
    assert arbiter.renew("server3", [], 1.5, 13.0).granted
    step = live.tick(13.1)  # server2 lost: the claim names it
    assert step.probe == ("witnessnp1",) and live.partition.claiming == ("server2",)
    answer = arbiter.claim("server1", live.partition.claiming, 1.5, 13.2)
    step = live.tick(13.9)  # server3 lost while the claim is out: not in it
    assert step.probe == () and live.partition.pending == ("server2", "server3")
    assert live.partition.claiming == ("server2",)
    step = live.resolved(13.95, {"witnessnp1": answer.granted}, answer.left)
    assert [v.servers for v in step.verdicts] == [("server2",)]  # server3 not down yet
    assert step.probe == ("witnessnp1",) and live.partition.claiming == ("server3",)
    assert "server3" in live.group_online(13.95)  # its groups wait for their own claim
    again = arbiter.claim("server1", live.partition.claiming, 1.5, 14.0)
    assert again.granted and arbiter.claimed_by("server3", 14.0) == ["server1"]
    assert not arbiter.renew("server3", [], 1.5, 14.1).granted  # it is claimed now
    step = live.resolved(14.05, {"witnessnp1": True}, again.left)
    assert [v.servers for v in step.verdicts] == [("server3",)]
