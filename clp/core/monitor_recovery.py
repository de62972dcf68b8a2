"""What one monitor resource on one server decides: its state, and its recovery steps.

Pure: no I/O, ``now`` passed in. The daemon's monitor manager feeds it the results of checks
(:class:`clp.monitors.base.Check`) and what it needs to know of the cluster at that moment
(:class:`Situation`); it answers with the product's alert lines and at most one recovery
:class:`Step` at a time, whose end the manager reports back (:meth:`MonitorTracker.step_done`).

States (the product's words): Online Pending (monitoring started, no result yet), Normal,
Caution (a failed check that is not an error yet, or a check that warns), Error, Offline (not
monitored here: the target is not active, the service is stopping, the server is not selected),
Suspend (clpmonctrl -s, or the cluster is suspended), Unknown (the check itself broke).

An error is declared when ``retry + 1`` checks in a row failed (one, for a timeout with "do not
retry at timeout occurrence"). Then, unless recovery is suppressed (the cluster's switch, a
timeout with "do not recover at timeout occurrence", the target not active here, the target's
group starting or stopping), the next step of the recovery chain, counted per monitor on this
server:

1. the recovery script, ``script.count`` times (``CLP_ACTION=RECOVERY``);
2. reactivation (restart of the target here), ``reactivation_threshold`` times;
3. failover of the target's group, ``failover_threshold`` times (skipped when no other server
   can take the group);
4. the final action, once (not when it is restrained because this is the last server alive).

After a step the failure count starts again from 0, so the next step needs ``retry + 1`` more
failed checks: an error that persists walks the chain at the monitor's pace, and the chain ends.
The counters go back to 0 by ``clpmonctrl -c``, when the cluster service restarts, and after the
monitor has been Normal for ``reset_after`` seconds in a row (0: never by itself). A monitor
that stays in error after its final action says once that its recovery is over (an alert).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

# Event ids of the monitor module ("rm"), the product's where it has one; 240+ are clp's own.
EV_STARTED, EV_STOPPED, EV_NOT_HERE, EV_WARN, EV_ERROR = 1, 2, 3, 4, 9
EV_STOPPED_TARGET, EV_RESTARTED, EV_FAILED_OVER = 12, 13, 14
EV_STOP_CLUSTER, EV_STOP_SYSTEM, EV_REBOOT = 15, 16, 17
EV_STOP_FAILED, EV_RESTART_FAILED, EV_FAILOVER_FAILED = 18, 19, 20
EV_ACTION_FAILED = 21  # a final action that stops the cluster or the system failed
EV_NOT_ACTIVE, EV_ERROR_TO_NORMAL, EV_TO_UNKNOWN = 25, 26, 27
EV_SUSPENDED, EV_RESUMED, EV_ALL_SUSPENDED, EV_ALL_RESUMED = 29, 30, 31, 32
EV_SYSRQ_PANIC, EV_KA_RESET, EV_KA_PANIC = 35, 37, 39
EV_BMC_RESET, EV_BMC_OFF, EV_BMC_CYCLE, EV_BMC_NMI = 41, 43, 45, 47
EV_WARN_TO_NORMAL, EV_DELAY = 49, 71
EV_SCRIPT_DONE, EV_SCRIPT_FAILED = 82, 83
EV_RECOVERY_SCRIPT, EV_RECOVERY_SCRIPT_FAILED = 170, 171
EV_PSEUDO_ON, EV_PSEUDO_OFF = 180, 181
EV_RECOVERY_DISABLED_IGNORED, EV_TIMEOUT_NO_RECOVERY = 192, 193
EV_RESTRAINED_ALONE, EV_NO_TARGET_ACTIVE = 200, 220
EV_RECOVERY_OVER, EV_COUNTERS_RESET, EV_NO_FAILOVER_SERVER, EV_RECOVERY_WAITS = 240, 241, 242, 243

# The alert of each final action as it is carried out (rm 12, 15-17, 35-47).
FINAL_ACTION_EVENTS: Mapping[str, tuple[int, str]] = {
    "stop_group": (EV_STOPPED_TARGET,
                   "Recovery target {target} has stopped because an error was detected in "
                   "monitoring {monitor}."),
    "stop_cluster_service": (EV_STOP_CLUSTER, "Stopping the cluster has been required because "
                                              "an error was detected in monitoring {monitor}."),
    "stop_cluster_service_and_shutdown": (EV_STOP_SYSTEM, "Stopping the system has been "
                                          "required because an error was detected in "
                                          "monitoring {monitor}."),
    "stop_cluster_service_and_reboot": (EV_REBOOT, "Rebooting the system has been required "
                                        "because an error was detected in monitoring "
                                        "{monitor}."),
    "panic": (EV_SYSRQ_PANIC, "System panic by sysrq has been required because an error was "
                              "detected in monitoring {monitor}."),
    "keepalive_reset": (EV_KA_RESET, "System reset by keepalive driver has been required "
                                     "because an error was detected in monitoring {monitor}."),
    "keepalive_panic": (EV_KA_PANIC, "System panic by keepalive driver has been required "
                                     "because an error was detected in monitoring {monitor}."),
    "bmc_reset": (EV_BMC_RESET, "System reset by BMC has been required because an error was "
                                "detected in monitoring {monitor}."),
    "bmc_power_off": (EV_BMC_OFF, "System power down by BMC has been required because an "
                                  "error was detected in monitoring {monitor}."),
    "bmc_power_cycle": (EV_BMC_CYCLE, "System power cycle by BMC has been required because an "
                                      "error was detected in monitoring {monitor}."),
    "bmc_nmi": (EV_BMC_NMI, "NMI send by BMC has been required because an error was detected "
                            "in monitoring {monitor}."),
}


class MonitorState(enum.Enum):
    ONLINE_PENDING = "Online Pending"
    NORMAL = "Normal"
    CAUTION = "Caution"
    ERROR = "Error"
    OFFLINE = "Offline"
    SUSPEND = "Suspend"
    UNKNOWN = "Unknown"


M = MonitorState
# where a check result counts (the others drop a late result of a check started before)
MONITORING_STATES = frozenset({M.ONLINE_PENDING, M.NORMAL, M.CAUTION, M.ERROR, M.UNKNOWN})


class Outcome(enum.Enum):
    """One check's result as the core sees it (the runner's Check, plus the check's own bug)."""

    NORMAL = "normal"
    CAUTION = "caution"
    FAILED = "failed"
    TIMEOUT = "timeout"
    BROKEN = "broken"  # the check could not tell (a bug in it): Unknown, never a recovery


@dataclass(frozen=True)
class Policy:
    """The parts of a monitor's configuration the core reads."""

    name: str
    retry: int = 1
    no_retry_on_timeout: bool = False
    no_recovery_on_timeout: bool = False
    target: str = "LocalServer"  # the recovery target
    kind: str = "local_server"  # resource | group | all_groups | local_server
    reactivation_threshold: int = 0
    failover_threshold: int = 0
    final_action: str = "none"
    reset_after: float = 0.0
    script_count: int = 0
    script_before: frozenset[str] = frozenset()  # reactivation, failover, final_action
    polled: bool = True  # False (mrw): a reported error is an error at once


@dataclass(frozen=True)
class Situation:
    """What the cluster looks like when a recovery step is to be chosen."""

    target_active: bool = True  # the recovery target is active on this server
    target_busy: bool = False  # its group is starting, stopping or moving
    recovery_disabled: bool = False  # the cluster's switch, or the cluster service stopping
    failover_possible: bool = True  # another server of the group's policy is online
    others_alive: bool = True  # another server is online
    restrain_alone: bool = False  # the cluster property: no final action on the last server


@dataclass(frozen=True)
class Line:
    level: int
    event_id: int | None
    text: str
    alert: bool = True


@dataclass(frozen=True)
class Step:
    """A recovery step for the manager to carry out, then report with ``step_done``."""

    action: str  # script | restart | failover | one of the final actions
    target: str
    kind: str
    reason: str
    script: str | None = None  # run the recovery script first, with this CLP_ACTION
    counts: Mapping[str, int] = field(default_factory=dict)  # recovery, restart, failover
    why: str = ""  # short: "reactivation 1/3: <the error>", appended to the alert lines


@dataclass
class Decision:
    lines: list[Line] = field(default_factory=list)
    step: Step | None = None
    changed: bool = False  # the state or the reason changed (publish it)


SCRIPT_ACTION = {"restart": "RESTART", "failover": "FAILOVER"}
STEP_DONE = {"restart": (EV_RESTARTED, "Recovery target {target} has restarted because an "
                                       "error was detected in monitoring {monitor}."),
             "failover": (EV_FAILED_OVER, "Recovery target {target} failed over because an "
                                          "error was detected in monitoring {monitor}.")}
STEP_FAILED = {"restart": (EV_RESTART_FAILED, "Attempted to restart the recovery target "
                                              "{target} due to the error detected in monitoring "
                                              "{monitor}, but failed."),
               "failover": (EV_FAILOVER_FAILED, "Attempted to fail over {target} due to the "
                                                "error detected in monitoring {monitor}, but "
                                                "failed."),
               "stop_group": (EV_STOP_FAILED, "Attempted to stop the recovery target {target} "
                                              "due to the error detected in monitoring "
                                              "{monitor}, but failed.")}


class MonitorTracker:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.state = M.OFFLINE
        self.reason = ""
        self.failures = 0  # failed checks in a row since the last error or step
        self.counts = {"recovery": 0, "restart": 0, "failover": 0, "final": 0}
        self.step: Step | None = None  # the step being carried out
        self.normal_since: float | None = None
        self.last_check: float | None = None
        self.last_error: str = ""
        self._said: set[str] = set()  # one-per-episode messages already said

    @property
    def name(self) -> str:
        return self.policy.name

    def snapshot(self) -> dict[str, object]:
        return {"state": self.state.value, "reason": self.reason, "failures": self.failures,
                "counts": dict(self.counts), "recovering": self.step is not None,
                "last_error": self.last_error}

    # --- monitoring starts and stops ------------------------------------------------------

    def start(self, now: float) -> Decision:
        if self.state in MONITORING_STATES:
            return Decision()
        self._set(M.ONLINE_PENDING, "monitoring started; no result yet")
        self.failures = 0
        return Decision([Line(logging.INFO, EV_STARTED, f"Monitoring {self.name} has started.",
                              alert=False)], changed=True)

    def stop(self, now: float, why: str, state: MonitorState = M.OFFLINE) -> Decision:
        """Monitoring stops (target going offline, service stopping, suspend): nothing that was
        counted is lost, a result arriving later is dropped."""
        if self.state == state and self.reason == why:
            return Decision()
        was = self.state in MONITORING_STATES
        self._set(state, why)
        self.failures, self.normal_since = 0, None
        self._said.clear()
        lines = [Line(logging.INFO, EV_STOPPED, f"Monitoring {self.name} has stopped.",
                      alert=False)] if was else []
        return Decision(lines, changed=True)

    def reset(self, now: float) -> Decision:
        """clpmonctrl -c: the recovery counters back to 0."""
        self.counts = dict.fromkeys(self.counts, 0)
        self._said.discard("over")
        return Decision([Line(logging.INFO, EV_COUNTERS_RESET,
                              f"The recovery counters of monitor {self.name} were reset.",
                              alert=False)], changed=True)

    # --- results --------------------------------------------------------------------------

    def on_check(self, now: float, outcome: Outcome, reason: str, situation: Situation
                 ) -> Decision:
        if self.state not in MONITORING_STATES:
            return Decision()  # a late result of a check started before monitoring stopped
        self.last_check = now
        if outcome is Outcome.NORMAL:
            return self._normal(now)
        self.normal_since = None
        if outcome is Outcome.BROKEN:
            d = Decision(changed=True)
            if self.state != M.UNKNOWN:
                d.lines.append(Line(logging.ERROR, EV_TO_UNKNOWN,
                                    f"{self.name} status changed from error or normal to "
                                    f"unknown. ({reason})"))
            self._set(M.UNKNOWN, reason)
            return d
        if outcome is Outcome.CAUTION:
            d = Decision(changed=self.state != M.CAUTION or self.reason != reason)
            if self.state != M.CAUTION:
                d.lines.append(Line(logging.WARNING, EV_WARN,
                                    f"Warn monitoring {self.name}. ({reason})"))
            self.failures = 0
            self._set(M.CAUTION, reason)
            return d
        return self._failed(now, outcome, reason, situation)

    def _normal(self, now: float) -> Decision:
        d = Decision(changed=self.state != M.NORMAL)
        if self.state == M.ERROR:
            d.lines.append(Line(logging.INFO, EV_ERROR_TO_NORMAL,
                                f"{self.name} status changed from error to normal."))
        elif self.state == M.CAUTION:
            d.lines.append(Line(logging.INFO, EV_WARN_TO_NORMAL,
                                f"{self.name} status changed from warning to normal."))
        self._set(M.NORMAL, "")
        self.failures = 0
        self._said.clear()
        if self.normal_since is None:
            self.normal_since = now
        reset = self.policy.reset_after
        if reset > 0 and any(self.counts.values()) and now - self.normal_since >= reset:
            self.counts = dict.fromkeys(self.counts, 0)
            d.lines.append(Line(logging.INFO, EV_COUNTERS_RESET,
                                f"The recovery counters of monitor {self.name} were reset: "
                                f"Normal for {reset:g} s.", alert=False))
            d.changed = True
        return d

    def _failed(self, now: float, outcome: Outcome, reason: str, situation: Situation
                ) -> Decision:
        timeout = outcome is Outcome.TIMEOUT
        code = 2 if timeout else 1
        self.failures += 1
        limit = 1 if (timeout and self.policy.no_retry_on_timeout) or not self.policy.polled \
            else self.policy.retry + 1
        if self.failures < limit:
            if self.state == M.ERROR:  # still failing: Error until a check passes
                self.reason = reason
                return Decision()
            why = f"check failed {self.failures}/{limit}: {reason}"
            self._set(M.CAUTION, why)
            return Decision([Line(logging.WARNING, EV_WARN,
                                  f"Warn monitoring {self.name}. ({code} : {reason})")],
                            changed=True)
        self.failures = 0
        d = Decision(changed=True)
        if self.state != M.ERROR:
            d.lines.append(Line(logging.ERROR, EV_ERROR, f"Detected an error in monitoring "
                                                         f"{self.name}. ({code} : {reason})"))
        self._set(M.ERROR, reason)
        self.last_error = reason
        self._recover(d, timeout, situation)
        return d

    # --- the recovery chain ---------------------------------------------------------------

    def _once(self, d: Decision, key: str, line: Line) -> None:
        if key not in self._said:
            self._said.add(key)
            d.lines.append(line)

    def _recover(self, d: Decision, timeout: bool, s: Situation) -> None:
        p = self.policy
        if self.step is not None:
            return  # a step is being carried out
        if timeout and p.no_recovery_on_timeout:
            return self._once(d, "timeout", Line(
                logging.WARNING, EV_TIMEOUT_NO_RECOVERY,
                f"Recovery action at timeout occurrence was disabled, so the recovery action "
                f"of monitor {self.name} was not executed."))
        if s.recovery_disabled:
            return self._once(d, "disabled", Line(
                logging.WARNING, EV_RECOVERY_DISABLED_IGNORED,
                f"Ignored the recovery action in monitoring {self.name} because recovery action "
                f"caused by monitor resource error is disabled."))
        if not s.target_active:
            text = ("Recovery will not be executed since any recovery target is not active."
                    if p.kind == "all_groups" else
                    f"Recovery will not be executed since the recovery target {p.target} is not "
                    f"active.")
            return self._once(d, "inactive", Line(logging.WARNING, (
                EV_NO_TARGET_ACTIVE if p.kind == "all_groups" else EV_NOT_ACTIVE), text))
        self._said.discard("inactive")
        if s.target_busy:
            return self._once(d, "busy", Line(
                logging.INFO, EV_RECOVERY_WAITS,
                f"Recovery of monitor {self.name} waits: the group of {p.target} is starting, "
                f"stopping or moving.", alert=False))
        self._said.discard("busy")
        d.step = self._next_step(d, s)
        self.step = d.step

    def _next_step(self, d: Decision, s: Situation) -> Step | None:
        p, c = self.policy, self.counts
        local = p.kind == "local_server"
        if c["recovery"] < p.script_count:
            c["recovery"] += 1
            return self._make("script", "RECOVERY",
                              f"recovery script {c['recovery']}/{p.script_count}")
        if not local and c["restart"] < p.reactivation_threshold:
            c["restart"] += 1
            return self._make("restart", "RESTART" if "reactivation" in p.script_before else None,
                              f"reactivation {c['restart']}/{p.reactivation_threshold}")
        if not local and c["failover"] < p.failover_threshold:
            if s.failover_possible:
                c["failover"] += 1
                return self._make("failover",
                                  "FAILOVER" if "failover" in p.script_before else None,
                                  f"failover {c['failover']}/{p.failover_threshold}")
            d.lines.append(Line(logging.WARNING, EV_NO_FAILOVER_SERVER,
                                f"No other server can take {p.target}: monitor {self.name} "
                                f"goes on to its final action ({p.final_action})."))
            c["failover"] = p.failover_threshold
        if c["final"] == 0:
            c["final"] = 1
            if p.final_action == "none":
                d.lines.append(Line(logging.WARNING, EV_RECOVERY_OVER,
                                    f"Monitor {self.name}: final action is no operation; the "
                                    f"error stays."))
                self._said.add("over")
                return None
            if s.restrain_alone and not s.others_alive:
                d.lines.append(Line(logging.WARNING, EV_RESTRAINED_ALONE,
                                    f"Since there is no other normally running server, the final "
                                    f"action({p.final_action}) for the error detection of monitor "
                                    f"resource {self.name} was suppressed."))
                return None
            return self._make(p.final_action,
                              "FINALACTION" if "final_action" in p.script_before else None,
                              f"final action {p.final_action}")
        self._once(d, "over", Line(
            logging.ERROR, EV_RECOVERY_OVER,
            f"Recovery of monitor {self.name} is over: {p.script_count} recovery scripts, "
            f"{p.reactivation_threshold} reactivations, {p.failover_threshold} failovers and "
            f"the final action ({p.final_action}) were done; the error stays until an operator "
            f"acts (clpmonctrl -c resets the counters)."))
        return None

    def _make(self, action: str, script: str | None, why: str) -> Step:
        p = self.policy
        return Step(action, p.target, p.kind,
                    f"monitor {self.name} detected an error ({self.last_error}): {why} of "
                    f"{p.target}", script,
                    {"recovery": self.counts["recovery"], "restart": self.counts["restart"],
                     "failover": self.counts["failover"]}, f"{why}: {self.last_error}")

    def step_done(self, now: float, ok: bool, detail: str = "") -> Decision:
        """The step in progress ended (``ok``: it did what it had to). The failure count starts
        again, so the next step needs ``retry + 1`` more failed checks."""
        step, self.step = self.step, None
        self.failures = 0
        if step is None:
            return Decision()
        fmt = {"target": step.target, "monitor": self.name}
        if step.action == "script":
            line = Line(logging.INFO, EV_RECOVERY_SCRIPT,
                        f"Recovery script has been executed since an error was detected in "
                        f"monitoring {self.name}. ({step.why})") if ok else \
                Line(logging.ERROR, EV_RECOVERY_SCRIPT_FAILED,
                     f"An attempt was made to execute the recovery script due to a {self.name} "
                     f"monitoring failure, but failed. ({step.why}; {detail})")
            return Decision([line])
        if ok and step.action in STEP_DONE:
            event, text = STEP_DONE[step.action]
            return Decision([Line(logging.INFO, event, f"{text.format(**fmt)} ({step.why})")])
        if not ok:
            event, text = STEP_FAILED.get(step.action, (
                EV_ACTION_FAILED, "Attempted the final action {action} due to the error detected "
                                  "in monitoring {monitor}, but failed."))
            return Decision([Line(logging.ERROR, event, text.format(action=step.action, **fmt)
                                  + f" ({step.why}; {detail})")])
        return Decision()

    def _set(self, state: MonitorState, reason: str) -> None:
        self.state, self.reason = state, reason
