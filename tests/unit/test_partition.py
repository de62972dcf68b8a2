"""Network-partition resolution and liveness: the seed's rules and the safer additions."""

from __future__ import annotations

import pytest

from clp.core.liveness import Liveness
from clp.core.membership import ServerState
from clp.core.partition import Partition, ResolverSpec

S = ("server1", "server2", "server3")
PING = ResolverSpec("pingnp1", "ping", frozenset(S), budget=0.4, retry=2,
                    describe="ping 198.18.0.254")
HTTP = ResolverSpec("httpnp1", "http", frozenset(S), budget=1.0,
                    describe="HTTP HEAD http://198.18.0.254:29005/")


def part(me="server1", resolvers=(PING,)) -> Partition:
    return Partition(me, S, tuple(resolvers), interval=0.1)


def test_no_resolver_means_down_at_once_without_wait():
    p = part(resolvers=())
    v = p.lost(10.0, ("server2",))
    assert v.kind == "down" and v.servers == ("server2",) and v.takeover_at == 10.0
    assert "no network partition resolution" in v.reason


def test_ping_answered_means_down_after_the_grace_of_the_lost_servers_resolvers():
    p = part()
    assert p.lost(10.0, ("server2",)) == ("pingnp1",)
    assert p.pending == ("server2",)
    v = p.resolved(10.01, {"pingnp1": True})
    assert v.kind == "down" and v.takeover_at == pytest.approx(10.01 + 0.4 + 0.2)
    assert "ping 198.18.0.254 answered" in v.reason and p.pending == ()


def test_ping_silent_means_isolated_with_a_reason():
    p = part()
    p.lost(10.0, ("server2", "server3"))
    v = p.resolved(10.5, {"pingnp1": False})
    assert v.kind == "isolated" and "server1 is isolated" in v.reason
    assert "server2, server3" in v.reason and "did not answer" in v.reason


def test_ping_failing_before_the_loss_cannot_resolve_and_the_seed_fails_over():
    p = part()
    p.background("pingnp1", True, 1.0)
    assert p.background("pingnp1", False, 2.0) is None  # one failed round is not yet "failing"
    alert = p.background("pingnp1", False, 3.0)
    assert alert and "cannot work" in alert and "every server fails over" in alert
    # server2 heard on both paths well after the first unanswered probe (2.0 + 2 intervals)
    p.lost(10.0, ("server2",), {"server2": [9.7, 9.75]})
    v = p.resolved(10.5, {"pingnp1": False})
    assert v.kind == "down" and "already failing" in v.reason
    assert "works again" in p.background("pingnp1", True, 11.0)


@pytest.mark.parametrize("rx, why", [
    ([1.95, 9.7], "a path went quiet with the target: this server was cut off, one path lives"),
    ([2.1, 9.7], "a path went quiet within two intervals of the first unanswered probe"),
    ([], "never heard since this server started"),
    ([0.5], "lost before the target failed: the target did not fail before the loss"),
])
def test_ping_failing_with_the_loss_is_isolation_not_already_failing(rx, why):
    p = part()
    p.background("pingnp1", True, 1.9)
    p.background("pingnp1", False, 2.0)
    p.background("pingnp1", False, 2.1)
    assert p.failing("pingnp1")
    p.lost(10.0, ("server2",), {"server2": rx})
    assert p.resolved(10.5, {"pingnp1": False}).kind == "isolated", why


def test_http_down_before_the_loss_still_isolates_as_the_seed_says():
    p = part(resolvers=(HTTP,))
    p.background("httpnp1", False, 0.5)
    p.lost(1.0, ("server2",), {"server2": [0.9]})
    assert p.resolved(2.0, {"httpnp1": False}).kind == "isolated"


def test_any_resolver_saying_isolated_wins():
    p = part(resolvers=(PING, HTTP))
    assert set(p.lost(1.0, ("server2",))) == {"pingnp1", "httpnp1"}
    assert p.resolved(2.0, {"pingnp1": True, "httpnp1": False}).kind == "isolated"


def test_per_server_use_of_a_resolver():
    only12 = ResolverSpec("pingnp1", "ping", frozenset(S[:2]), budget=3.0, retry=1, describe="x")
    p = part(me="server3", resolvers=(only12,))
    v = p.lost(1.0, ("server1",))  # server3 uses none: down at once, but waits for server1's
    assert v.kind == "down" and v.takeover_at == pytest.approx(1.0 + 3.0 + 0.2)


def test_more_losses_while_probing_join_the_pending_decision():
    p = part()
    p.lost(1.0, ("server2",))
    assert p.lost(1.1, ("server3",)) == ()
    assert p.resolved(1.2, {"pingnp1": True}).servers == ("server2", "server3")


def test_resolved_without_results_or_pending_is_a_caller_bug():
    p = part()
    with pytest.raises(ValueError, match="without a pending loss"):
        p.resolved(1.0, {})
    p.lost(1.0, ("server2",))
    with pytest.raises(ValueError, match="no probe result for pingnp1"):
        p.resolved(1.0, {})


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unknown servers"):
        Partition("server1", S, (ResolverSpec("p", "ping", frozenset({"x"}), 1.0),), 1.0)
    with pytest.raises(ValueError, match="duplicate"):
        Partition("server1", S, (PING, PING), 1.0)


def test_declared_down_by_a_peer_that_heard_us_means_yield():
    p = part(me="server2")
    me_bit = 1 << 1
    assert p.heartbeat("server1", heard=me_bit, offline=0, was_offline=False) is None
    v = p.heartbeat("server1", heard=0, offline=me_bit, was_offline=False)
    assert v.kind == "yield" and "server1 no longer hears server2" in v.reason


def test_a_restarted_server_is_not_confused_by_the_old_offline_mark():
    p = part(me="server2")  # fresh: never heard "server1 hears server2"
    assert p.heartbeat("server1", heard=0, offline=1 << 1, was_offline=False) is None


def test_mutual_down_after_a_healed_partition_the_lower_priority_yields():
    hi, lo = part(me="server1"), part(me="server2")
    hi.heartbeat("server2", heard=1 << 0, offline=0, was_offline=False)
    lo.heartbeat("server1", heard=1 << 1, offline=0, was_offline=False)
    assert hi.heartbeat("server2", heard=0, offline=1 << 0, was_offline=True) is None
    v = lo.heartbeat("server1", heard=0, offline=1 << 1, was_offline=True)
    assert v.kind == "yield" and "lower priority" in v.reason


def test_after_a_heal_the_higher_priority_keeps_its_mark_until_the_peer_gives_way():
    hi = part(me="server1")
    hi.heartbeat("server2", heard=1 << 0, offline=0, was_offline=False)
    for was_offline in (True, False):  # a second copy on another path: no longer "was offline"
        assert hi.heartbeat("server2", heard=0, offline=1 << 0, was_offline=was_offline) is None
        assert hi.keeping == {"server2"}
    assert hi.heartbeat("server2", heard=1 << 0, offline=0, was_offline=False) is None
    assert hi.keeping == frozenset()


# --- liveness: membership + partition as the service drives it -------------------------------

def live(me="server1", resolvers=(PING,)) -> Liveness:
    lv = Liveness(me, list(S), {"lanhb1": set(S), "diskhb1": set(S)}, timeout=0.5, interval=0.1,
                  resolvers=tuple(resolvers), now=0.0)
    for s in S[1:] if me == "server1" else [x for x in S if x != me]:
        for path in ("lanhb1", "diskhb1"):
            lv.heartbeat(0.05, s, path, heard=0b111)
    return lv


def test_a_lost_server_stays_in_the_group_view_until_resolved_and_past_the_grace():
    lv = live()
    for path in ("lanhb1", "diskhb1"):
        lv.heartbeat(0.3, "server3", path, heard=0b111)
    step = lv.tick(0.6)
    assert [d.kind for d in step.decisions] == ["server_down"] and step.probe == ("pingnp1",)
    assert "server2" in lv.group_online(0.6)
    step = lv.resolved(0.61, {"pingnp1": True})
    assert step.verdicts[0].kind == "down"
    assert lv.bitmaps()[1] == 1 << 1  # server2 resolved down: in the offline bitmap
    assert "server2" in lv.group_online(0.61 + 0.5)  # grace 0.4 + 0.2
    assert "server2" not in lv.group_online(0.61 + 0.61)
    for path in ("lanhb1", "diskhb1"):
        lv.heartbeat(0.75, "server3", path, heard=0b111)
    assert lv.next_deadline(0.8) == pytest.approx(0.61 + 0.6)  # the takeover wakes the loop


def test_lan_lost_while_disk_lives_decides_nothing():
    lv = live()
    for t in (0.3, 0.6, 0.9, 1.2):
        for s in ("server2", "server3"):
            lv.heartbeat(t, s, "diskhb1", heard=0b111)
        step = lv.tick(t + 0.01)
        assert not step.probe and not step.verdicts
    assert lv.group_online(1.3) == list(S)


def test_isolated_freezes_the_group_view_so_nothing_is_taken_over():
    lv = live()
    lv.tick(0.6)
    step = lv.resolved(0.7, {"pingnp1": False})
    assert step.verdicts[0].kind == "isolated" and lv.verdict is not None
    assert lv.group_online(100.0) == list(S)
    assert lv.tick(101.0).decisions == []


def test_a_server_back_before_resolution_is_not_declared_down():
    lv = live()
    lv.tick(0.6)
    lv.heartbeat(0.65, "server2", "lanhb1", heard=0b111)
    lv.heartbeat(0.65, "server3", "lanhb1", heard=0b111)
    step = lv.resolved(0.7, {"pingnp1": True})
    assert step.verdicts == [] and lv.down == {}


def test_an_older_copy_of_a_heartbeat_keeps_the_server_alive_but_its_marks_are_old_news():
    lv = live(me="server2")
    me_bit = 1 << 1
    lv.heartbeat(0.2, "server1", "lanhb1", heard=me_bit, order=(1, 5))
    assert lv.heartbeat(0.3, "server1", "diskhb1", heard=0, offline=me_bit,
                        order=(1, 4)).verdicts == []  # relayed late: server1 marked us before
    assert lv.verdict is None and lv.partition.marked_by == ()
    step = lv.heartbeat(0.3, "server1", "lanhb1", heard=0, offline=me_bit, order=(1, 6))
    assert [v.kind for v in step.verdicts] == ["yield"]


def test_a_slow_path_is_timed_from_when_its_heartbeat_first_came_so_a_crash_is_not_held_back():
    lv = live(resolvers=())
    for s in ("server2", "server3"):
        lv.heartbeat(1.0, s, "lanhb1", order=(1, 10))
        lv.heartbeat(1.09, s, "diskhb1", order=(1, 10))  # the disk read one interval later
    lv.heartbeat(1.45, "server3", "lanhb1", order=(1, 14))  # server3 lives on
    step = lv.tick(1.51)  # server2 crashed after sending 10: its timeout (0.5 s) from 1.0
    assert [d.server for d in step.decisions if d.kind == "server_down"] == ["server2"]


def test_a_heartbeat_heard_on_one_path_only_counts_from_when_it_came():
    lv = live(resolvers=())
    for s in ("server2", "server3"):  # the LAN is cut: the disk alone carries 11
        lv.heartbeat(1.09, s, "diskhb1", order=(1, 11))
    assert not [d for d in lv.tick(1.55).decisions if d.kind == "server_down"]  # 1.59 is
    assert {d.server for d in lv.tick(1.6).decisions if d.kind == "server_down"} == {
        "server2", "server3"}


def test_a_copy_of_a_heartbeat_older_than_the_timeout_does_not_bring_a_server_back():
    lv = live(resolvers=())
    lv.heartbeat(1.0, "server2", "lanhb1", order=(1, 10))
    lv.tick(1.6)
    assert lv.membership.server_state("server2") == ServerState.OFFLINE
    lv.heartbeat(1.65, "server2", "diskhb1", order=(1, 10))  # a late read of the last record
    assert lv.membership.server_state("server2") == ServerState.OFFLINE
    lv.heartbeat(1.7, "server2", "lanhb1", order=(2, 1))  # rebooted: a new heartbeat
    assert lv.membership.server_state("server2") == ServerState.ONLINE
