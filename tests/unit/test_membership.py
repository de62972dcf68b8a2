"""Membership transitions, one test each, stepped with a fake clock (times are plain floats)."""

from __future__ import annotations

import math

import pytest

from clp.core.membership import Decision, Membership, PathState, ServerState

ON, OFF, UNK = ServerState.ONLINE, ServerState.OFFLINE, ServerState.UNKNOWN
NORMAL, ERROR, P_UNK, NOT_USED = (PathState.NORMAL, PathState.ERROR, PathState.UNKNOWN,
                                  PathState.NOT_USED)
SERVERS = ["server1", "server2", "server3"]
ALL = set(SERVERS)


def make(now: float = 100.0, timeout: float = 1.5, **paths: set[str]) -> Membership:
    return Membership("server1", SERVERS, paths or {"lanhb1": ALL, "lanhb2": ALL}, timeout, now)


def kinds(decisions: list[Decision]) -> list[tuple[str, str, str | None]]:
    return [(d.kind, d.server, d.path) for d in decisions]


def online(m: Membership, now: float, *servers: str) -> None:
    for s in servers:
        for p in m.path_names:
            m.heartbeat(now, s, p)


def one_line(d: Decision) -> str:
    assert d.reason and "\n" not in d.reason and d.alert
    return d.reason


# --- start ----------------------------------------------------------------------------------

def test_at_start_me_is_online_with_normal_paths_and_others_are_unknown():
    m = make()
    assert m.server_state("server1") == ON
    assert m.path_state("server1", "lanhb1") == NORMAL
    assert m.server_state("server2") == UNK and m.path_state("server2", "lanhb2") == P_UNK
    assert m.last_rx("server2", "lanhb1") is None
    assert m.tick(101.5) == []  # exactly the timeout is not yet a timeout


def test_a_path_without_both_ends_is_not_used():
    m = make(lanhb1=ALL, lanhb2={"server2", "server3"}, lanhb3={"server1", "server3"})
    assert m.path_state("server1", "lanhb2") == NOT_USED  # not configured for me
    assert m.path_state("server2", "lanhb2") == NOT_USED  # configured for server2, not for me
    assert m.path_state("server2", "lanhb3") == NOT_USED
    assert m.path_state("server3", "lanhb3") == P_UNK
    with pytest.raises(ValueError, match="not used between"):
        m.heartbeat(100.1, "server2", "lanhb2")


def test_first_heartbeat_brings_a_server_up_on_that_path_only():
    m = make()
    ds = m.heartbeat(100.2, "server2", "lanhb1")
    assert kinds(ds) == [("server_up", "server2", None)]
    assert one_line(ds[0]) == "server2 is up: first heartbeat on lanhb1"
    assert m.server_state("server2") == ON
    assert m.path_state("server2", "lanhb1") == NORMAL
    assert m.path_state("server2", "lanhb2") == P_UNK
    assert m.last_rx("server2", "lanhb1") == 100.2
    assert m.snapshot()["servers"]["server2"]["since"] == 100.2
    assert m.heartbeat(100.3, "server2", "lanhb1") == []
    assert m.heartbeat(100.4, "server2", "lanhb2") == []  # Unknown -> Normal is silent
    assert m.path_state("server2", "lanhb2") == NORMAL


def test_a_path_that_never_delivers_goes_error_timeout_after_start():
    m = make()
    for t in (100.5, 101.0, 101.5, 102.0):
        m.heartbeat(t, "server2", "lanhb1")
        ds = m.tick(t)
        assert ds == [] or t == 102.0
    assert kinds(ds) == [("path_lost", "server2", "lanhb2"), ("server_down", "server3", None)]
    assert one_line(ds[0]) == ("heartbeat path lanhb2 to server2 lost: nothing received for "
                               "2.00 s (timeout 1.5 s); server2 still reachable on lanhb1")
    assert m.path_state("server2", "lanhb2") == ERROR and m.server_state("server2") == ON


def test_a_server_never_heard_goes_offline_timeout_after_start():
    m = make()
    online(m, 101.0, "server2")
    assert m.tick(101.5) == []  # 1.5 s exactly: still Unknown
    ds = m.tick(101.7)
    assert kinds(ds) == [("server_down", "server3", None)]
    assert one_line(ds[0]) == "server3 is down: never heard on lanhb1, lanhb2 in 1.70 s " \
                              "(timeout 1.5 s)"
    assert m.server_state("server3") == OFF and m.path_state("server3", "lanhb1") == ERROR
    assert m.snapshot()["servers"]["server3"]["since"] == 101.7


def test_a_server_sharing_no_path_goes_offline_timeout_after_start():
    m = make(lanhb1={"server1", "server2"})
    assert m.tick(101.0) == []
    ds = m.tick(102.0)
    assert kinds(ds) == [("server_down", "server2", None), ("server_down", "server3", None)]
    assert "shares no heartbeat path with server1" in one_line(ds[1])


# --- while online ---------------------------------------------------------------------------

def test_one_path_lost_is_a_path_error_not_a_server_down():
    m = make()
    online(m, 100.0, "server2", "server3")
    for t in (100.5, 101.0, 101.5):
        m.heartbeat(t, "server2", "lanhb1")
    assert m.tick(101.5) == []
    ds = m.tick(101.6)
    assert ("path_lost", "server2", "lanhb2") in kinds(ds)
    assert "no heartbeat for 1.60 s" in ds[0].reason
    assert m.server_state("server2") == ON


def test_all_paths_timed_out_is_one_server_down_and_its_paths_go_error_silently():
    m = make()
    online(m, 100.0, "server2", "server3")
    m.heartbeat(101.0, "server2", "lanhb1")
    m.heartbeat(101.0, "server3", "lanhb1")
    m.heartbeat(101.0, "server3", "lanhb2")
    ds = m.tick(101.52)
    assert kinds(ds) == [("path_lost", "server2", "lanhb2")]
    ds = m.tick(102.52)
    assert kinds(ds) == [("server_down", "server2", None), ("server_down", "server3", None)]
    assert one_line(ds[0]) == ("server2 is down: no heartbeat on any path (lanhb1, lanhb2) for "
                               "1.52 s (timeout 1.5 s)")
    assert m.server_state("server2") == OFF
    assert {m.path_state("server3", p) for p in m.path_names} == {ERROR}
    assert m.tick(110.0) == []  # said once
    assert m.last_rx("server2", "lanhb1") == 101.0  # kept for display


def test_an_error_path_that_delivers_again_is_restored():
    m = make()
    online(m, 100.0, "server2")
    m.heartbeat(101.0, "server2", "lanhb1")
    m.tick(101.6)
    assert m.path_state("server2", "lanhb2") == ERROR
    ds = m.heartbeat(103.6, "server2", "lanhb2")
    assert kinds(ds) == [("path_restored", "server2", "lanhb2")]
    assert one_line(ds[0]) == "heartbeat path lanhb2 to server2 restored after 2.00 s in error"
    assert m.path_state("server2", "lanhb2") == NORMAL


def test_an_offline_server_that_sends_again_comes_back_and_its_other_paths_start_over():
    m = make()
    online(m, 100.0, "server2")
    m.tick(105.0)
    assert m.server_state("server2") == OFF
    ds = m.heartbeat(107.0, "server2", "lanhb2")
    assert kinds(ds) == [("server_up", "server2", None)]
    assert one_line(ds[0]) == "server2 is up again: heartbeat on lanhb2 after 2.00 s offline"
    assert m.path_state("server2", "lanhb2") == NORMAL
    assert m.path_state("server2", "lanhb1") == P_UNK  # a fresh timeout, no restored alert
    assert m.heartbeat(107.1, "server2", "lanhb1") == []
    assert m.path_state("server2", "lanhb1") == NORMAL
    m2 = make()
    online(m2, 100.0, "server2")
    m2.tick(105.0)
    m2.heartbeat(107.0, "server2", "lanhb2")
    m2.heartbeat(108.0, "server2", "lanhb2")
    assert m2.tick(108.5) == []
    assert kinds(m2.tick(108.6)) == [("path_lost", "server2", "lanhb1")]
    assert m2.path_state("server2", "lanhb1") == ERROR


def test_heartbeat_from_myself_is_recorded_and_decides_nothing():
    m = make()
    assert m.heartbeat(100.5, "server1", "lanhb1") == []
    assert m.last_rx("server1", "lanhb1") == 100.5
    assert m.path_state("server1", "lanhb1") == NORMAL


# --- timeout ratio --------------------------------------------------------------------------

def test_timeout_ratio_stretches_the_timeout():
    m = make()
    online(m, 100.0, "server2", "server3")
    m.set_timeout_ratio(3)
    assert m.timeout == 4.5 and m.ratio == 3
    assert m.tick(104.4) == []
    ds = m.tick(104.6)
    assert [d.kind for d in ds] == ["server_down", "server_down"]
    assert "for 4.60 s (timeout 4.5 s)" in ds[0].reason
    m.set_timeout_ratio(1)
    assert m.timeout == 1.5 and m.snapshot()["ratio"] == 1


@pytest.mark.parametrize("ratio", [0.5, 0, -1, math.nan, math.inf])
def test_bad_timeout_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match="ratio"):
        make().set_timeout_ratio(ratio)


# --- suspend / resume -----------------------------------------------------------------------

def test_nothing_is_decided_while_suspended():
    m = make()
    online(m, 100.0, "server2")
    m.suspend(100.5)
    assert m.snapshot()["suspended"] is True
    assert m.tick(200.0) == []
    assert m.heartbeat(200.0, "server3", "lanhb1") == []
    assert m.server_state("server3") == UNK and m.last_rx("server3", "lanhb1") == 200.0
    assert m.server_state("server2") == ON


def test_resume_restarts_every_timer_so_a_long_suspend_is_no_down():
    m = make()
    online(m, 100.0, "server2")
    m.suspend(100.5)
    m.resume(1000.0)
    assert m.suspended is False
    assert m.tick(1001.0) == []
    assert m.server_state("server2") == ON and m.server_state("server3") == UNK
    ds = m.tick(1001.6)
    assert kinds(ds) == [("server_down", "server2", None), ("server_down", "server3", None)]


def test_suspend_and_resume_are_idempotent():
    m = make()
    m.resume(100.0)  # not suspended: nothing happens
    m.suspend(100.0)
    m.suspend(100.1)
    m.resume(100.2)
    assert not m.suspended


# --- bad input ------------------------------------------------------------------------------

def test_unknown_server_or_path_is_a_value_error():
    m = make()
    with pytest.raises(ValueError, match="unknown server 'server9'"):
        m.heartbeat(100.1, "server9", "lanhb1")
    with pytest.raises(ValueError, match="unknown heartbeat path 'lanhb9'"):
        m.heartbeat(100.1, "server2", "lanhb9")
    with pytest.raises(ValueError, match="unknown server"):
        m.server_state("nope")
    with pytest.raises(ValueError, match="unknown heartbeat path"):
        m.path_state("server2", "nope")
    with pytest.raises(ValueError, match="unknown server"):
        m.last_rx("nope", "lanhb1")


@pytest.mark.parametrize(("args", "match"), [
    (("server9", SERVERS, {}, 1.0), "local server"),
    (("server1", ["server1", "server1"], {}, 1.0), "duplicate"),
    (("server1", SERVERS, {"lanhb1": {"server1", "x"}}, 1.0), "unknown servers"),
    (("server1", SERVERS, {}, 0.0), "timeout"),
    (("server1", SERVERS, {}, math.nan), "timeout"),
])
def test_bad_construction_is_a_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        Membership(*args, now=0.0)


# --- snapshot -------------------------------------------------------------------------------

def test_snapshot_shape():
    m = make(lanhb1=ALL, lanhb2={"server1", "server2"})
    m.heartbeat(100.25, "server2", "lanhb1")
    snap = m.snapshot(wall_offset=1000.0)
    assert snap["timeout"] == 1.5 and snap["ratio"] == 1.0 and snap["suspended"] is False
    assert snap["servers"]["server1"] == {
        "state": "Online", "since": 100.0, "since_wall": 1100.0,
        "paths": {"lanhb1": {"state": "Normal", "last_rx": None},
                  "lanhb2": {"state": "Normal", "last_rx": None}}}
    assert snap["servers"]["server2"]["state"] == "Online"
    assert snap["servers"]["server2"]["paths"]["lanhb1"] == {"state": "Normal",
                                                             "last_rx": 100.25}
    assert snap["servers"]["server3"]["paths"]["lanhb2"] == {"state": "Not Used",
                                                             "last_rx": None}
    assert "since_wall" not in m.snapshot()["servers"]["server1"]


def test_resume_restarts_the_timer_of_a_server_sharing_no_path_too():
    m = make(lanhb1={"server1", "server2"})
    m.suspend(100.5)
    m.resume(110.0)
    assert m.tick(111.5) == []
    assert kinds(m.tick(111.6)) == [("server_down", "server2", None),
                                    ("server_down", "server3", None)]


def test_next_deadline_is_when_tick_would_decide_something():
    m = Membership("server1", ["server1", "server2"], {"lan1": {"server1", "server2"},
                                                      "lan2": {"server1", "server2"}}, 1.0, 0.0)
    assert m.next_deadline() == 1.0  # nothing heard yet: both paths time out a timeout after start
    m.heartbeat(0.5, "server2", "lan1")
    m.heartbeat(0.7, "server2", "lan2")
    assert m.next_deadline() == 1.5
    assert m.tick(1.5) == []  # strictly more than the timeout: not yet
    assert [d.kind for d in m.tick(1.5001)] == ["path_lost"]
    assert m.next_deadline() == 1.7
    assert [d.kind for d in m.tick(1.7001)] == ["server_down"]
    assert m.next_deadline() is None  # nothing left to time out
    m.suspend(2.0)
    assert m.next_deadline() is None


def test_silence_is_the_time_since_the_newest_heartbeat_of_each_server_ever_heard():
    m = make()
    m.heartbeat(100.2, "server2", "lanhb1")
    m.heartbeat(100.5, "server2", "lanhb2")
    assert m.silence(101.0) == {"server2": pytest.approx(0.5)}  # server3 never heard
    m.tick(103.0)  # server2 down: its silence goes on growing
    assert m.silence(104.0) == {"server2": pytest.approx(3.5)}
    m.suspend(104.0)
    assert m.silence(105.0) == {}  # suspended: nobody is late
