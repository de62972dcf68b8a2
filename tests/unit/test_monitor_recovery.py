"""The monitor core (clp.core.monitor_recovery): states, the error after retries, and the recovery
chain with its counters, decided without any I/O."""

from __future__ import annotations

import logging

from clp.core.monitor_recovery import (
    EV_COUNTERS_RESET,
    EV_ERROR,
    EV_ERROR_TO_NORMAL,
    EV_FAILED_OVER,
    EV_NO_FAILOVER_SERVER,
    EV_NOT_ACTIVE,
    EV_RECOVERY_DISABLED_IGNORED,
    EV_RECOVERY_OVER,
    EV_RESTART_FAILED,
    EV_RESTARTED,
    EV_RESTRAINED_ALONE,
    EV_TIMEOUT_NO_RECOVERY,
    EV_TO_UNKNOWN,
    EV_WARN,
    Decision,
    MonitorState,
    MonitorTracker,
    Outcome,
    Policy,
    Situation,
)

M = MonitorState
OK = Situation()


def tracker(**kw: object) -> MonitorTracker:
    policy = Policy(**{"name": "mon1", "retry": 0, "target": "failover1", "kind": "group",
                       "reactivation_threshold": 1, "failover_threshold": 1,
                       "final_action": "stop_group", **kw})  # type: ignore[arg-type]
    t = MonitorTracker(policy)
    t.start(0.0)
    return t


def events(d: Decision) -> list[int | None]:
    return [line.event_id for line in d.lines]


def fail(t: MonitorTracker, now: float = 1.0, s: Situation = OK,
         outcome: Outcome = Outcome.FAILED) -> Decision:
    return t.on_check(now, outcome, "it broke", s)


def test_an_error_needs_retry_plus_one_failures_and_says_so_once() -> None:
    t = tracker(retry=2)
    d = fail(t)
    assert t.state == M.CAUTION and events(d) == [EV_WARN] and d.step is None
    fail(t)
    d = fail(t)
    assert t.state == M.ERROR and events(d) == [EV_ERROR] and d.step is not None
    assert "it broke" in d.lines[0].text and d.lines[0].level == logging.ERROR
    t.step_done(2.0, True)
    for _ in range(2):  # still failing: Error stays, no warning line, no new detection line
        d = fail(t)
        assert t.state == M.ERROR and d.lines == [] and d.step is None


def test_a_normal_check_in_between_starts_the_count_again() -> None:
    t = tracker(retry=1)
    fail(t)
    t.on_check(2.0, Outcome.NORMAL, "", OK)
    assert t.state == M.NORMAL
    d = fail(t)
    assert t.state == M.CAUTION and d.step is None


def test_the_chain_script_reactivation_failover_final_then_over() -> None:
    t = tracker(script_count=1, reactivation_threshold=2, failover_threshold=1,
                final_action="stop_cluster_service", script_before=frozenset({"failover"}))
    actions = []
    for i in range(8):
        d = fail(t, now=float(i))
        if d.step is not None:
            actions.append((d.step.action, d.step.script))
            t.step_done(float(i), True)
    assert actions == [("script", "RECOVERY"), ("restart", None), ("restart", None),
                       ("failover", "FAILOVER"), ("stop_cluster_service", None)]
    assert t.counts == {"recovery": 1, "restart": 2, "failover": 1, "final": 1}
    d = fail(t, now=9.0)
    assert d.step is None and events(d) == []  # "over" was said once already


def test_recovery_over_is_alerted_once_when_the_final_action_was_done() -> None:
    t = tracker(reactivation_threshold=0, failover_threshold=0)
    d = fail(t)
    assert d.step is not None and d.step.action == "stop_group"
    t.step_done(1.0, True)
    d = fail(t)
    assert events(d) == [EV_RECOVERY_OVER] and d.lines[0].alert
    assert "clpmonctrl -c" in d.lines[0].text
    assert events(fail(t)) == []


def test_final_action_none_is_said_and_ends_the_chain() -> None:
    t = tracker(reactivation_threshold=0, failover_threshold=0, final_action="none")
    d = fail(t)
    assert d.step is None and events(d) == [EV_ERROR, EV_RECOVERY_OVER]


def test_local_server_target_goes_straight_to_the_final_action() -> None:
    t = tracker(target="LocalServer", kind="local_server", reactivation_threshold=3,
                failover_threshold=3, final_action="keepalive_reset")
    d = fail(t)
    assert d.step is not None and d.step.action == "keepalive_reset"


def test_no_recovery_when_disabled_timed_out_inactive_or_busy() -> None:
    t = tracker()
    d = fail(t, s=Situation(recovery_disabled=True))
    assert d.step is None and EV_RECOVERY_DISABLED_IGNORED in events(d)
    assert events(fail(t, s=Situation(recovery_disabled=True))) == []  # said once
    t = tracker(no_recovery_on_timeout=True)
    d = fail(t, outcome=Outcome.TIMEOUT)
    assert d.step is None and EV_TIMEOUT_NO_RECOVERY in events(d)
    assert "(2 :" in d.lines[0].text  # a timeout's code
    t = tracker()
    d = fail(t, s=Situation(target_active=False))
    assert d.step is None and EV_NOT_ACTIVE in events(d)
    d = fail(t, s=Situation(target_busy=True))
    assert d.step is None and t.counts["restart"] == 0
    d = fail(t)  # now it can act: nothing was counted meanwhile
    assert d.step is not None and d.step.action == "restart"


def test_all_groups_not_active_is_the_products_other_message() -> None:
    t = tracker(target="All Groups", kind="all_groups")
    d = fail(t, s=Situation(target_active=False))
    assert d.lines[-1].event_id == 220


def test_timeout_without_retry_is_an_error_at_once() -> None:
    t = tracker(retry=5, no_retry_on_timeout=True)
    d = fail(t, outcome=Outcome.TIMEOUT)
    assert t.state == M.ERROR and d.step is not None
    t = tracker(retry=5)
    fail(t, outcome=Outcome.TIMEOUT)
    assert t.state == M.CAUTION


def test_no_other_server_skips_the_failover_to_the_final_action() -> None:
    t = tracker(reactivation_threshold=0, failover_threshold=2)
    d = fail(t, s=Situation(failover_possible=False))
    assert EV_NO_FAILOVER_SERVER in events(d)
    assert d.step is not None and d.step.action == "stop_group"


def test_final_action_restrained_on_the_last_server_alive() -> None:
    t = tracker(reactivation_threshold=0, failover_threshold=0)
    d = fail(t, s=Situation(others_alive=False, restrain_alone=True))
    assert d.step is None and EV_RESTRAINED_ALONE in events(d)


def test_counters_reset_after_being_normal_long_enough_and_by_the_operator() -> None:
    t = tracker(reset_after=10.0)
    d = fail(t, now=1.0)
    t.step_done(1.0, True)
    assert t.counts["restart"] == 1
    t.on_check(2.0, Outcome.NORMAL, "", OK)
    d = t.on_check(11.0, Outcome.NORMAL, "", OK)
    assert t.counts["restart"] == 1 and d.lines == []
    d = t.on_check(12.0, Outcome.NORMAL, "", OK)
    assert t.counts["restart"] == 0 and events(d) == [EV_COUNTERS_RESET]
    fail(t, now=13.0)
    t.step_done(13.0, True)
    assert t.counts["restart"] == 1
    assert events(t.reset(14.0)) == [EV_COUNTERS_RESET] and t.counts["restart"] == 0


def test_a_short_normal_period_does_not_reset_the_counters() -> None:
    t = tracker(reset_after=10.0, failover_threshold=0, final_action="none")
    for now in (1.0, 3.0, 5.0):  # fails, recovers for a moment, fails again: no endless restarts
        d = fail(t, now=now)
        if d.step is not None:
            t.step_done(now, True)
        t.on_check(now + 1, Outcome.NORMAL, "", OK)
    assert t.counts["restart"] == 1


def test_step_results_are_the_products_messages_with_the_reason() -> None:
    t = tracker()
    d = fail(t)
    d = t.step_done(1.0, True)
    assert events(d) == [EV_RESTARTED] and "reactivation 1/1: it broke" in d.lines[0].text
    d = fail(t)
    assert d.step is not None and d.step.action == "failover"
    d = t.step_done(2.0, True)
    assert events(d) == [EV_FAILED_OVER]
    t = tracker()
    fail(t)
    d = t.step_done(1.0, False, "the stop script failed")
    assert events(d) == [EV_RESTART_FAILED] and "the stop script failed" in d.lines[0].text


def test_one_step_at_a_time() -> None:
    t = tracker(reactivation_threshold=5)
    assert fail(t).step is not None
    assert fail(t).step is None  # the first is still being carried out
    t.step_done(1.0, True)
    assert fail(t).step is not None


def test_error_to_normal_caution_unknown_and_late_results() -> None:
    t = tracker(reactivation_threshold=0, failover_threshold=0, final_action="none")
    fail(t)
    d = t.on_check(2.0, Outcome.NORMAL, "", OK)
    assert t.state == M.NORMAL and events(d) == [EV_ERROR_TO_NORMAL]
    d = t.on_check(3.0, Outcome.CAUTION, "half broken", OK)
    assert t.state == M.CAUTION and t.reason == "half broken" and events(d) == [EV_WARN]
    d = t.on_check(4.0, Outcome.BROKEN, "check raised", OK)
    assert t.state == M.UNKNOWN and events(d) == [EV_TO_UNKNOWN] and d.step is None
    t.stop(5.0, "target offline")
    assert t.state == M.OFFLINE
    assert fail(t) == Decision()  # a result after the stop is dropped
    assert t.state == M.OFFLINE


def test_a_reported_error_of_an_unpolled_monitor_needs_no_retries() -> None:
    t = tracker(retry=3, polled=False)
    d = fail(t)
    assert t.state == M.ERROR and d.step is not None


def test_stop_keeps_the_counters() -> None:
    t = tracker()
    fail(t)
    t.step_done(1.0, True)
    t.stop(2.0, "target offline")
    t.start(3.0)
    assert t.state == M.ONLINE_PENDING and t.counts["restart"] == 1
