"""Carries out the recovery steps the monitor core chose (:class:`clp.core.monitor_recovery.Step`).

Every step works through the same paths as an operator: a reactivation is a restart of the
group (or of the resource and what depends on it) by this server's group runner; a failover asks
the master to move the group away, exactly as a failed activation does; ``stop_group`` asks the
master to stop it (it then stays stopped, as after ``clpgrp -t``); the final actions that stop
the cluster service or the machine go through the service's own stop, or the power module.
Before a step, the monitor's recovery script runs when the configuration says so, with the
product's environment (``CLP_ACTION`` RECOVERY / RESTART / FAILOVER / FINALACTION and the
counts). Each function answers (done, why) for :meth:`MonitorTracker.step_done`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform as host
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import TYPE_CHECKING

from clp.config.model import MonitorConfig
from clp.core.group_states import GroupState
from clp.core.monitor_recovery import FINAL_ACTION_EVENTS, Step
from clp.evt import logsetup
from clp.platform import power, proc

if TYPE_CHECKING:
    from clp.clusterd.group_ops import GroupOps
    from clp.clusterd.groups import GroupManager

log = logging.getLogger("clp.rm")
RM = {"evt_module": "rm"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICE_STOPS = ("stop_cluster_service", "stop_cluster_service_and_shutdown",
                 "stop_cluster_service_and_reboot")
FAILOVER_WAIT = 1800.0  # the longest a group may take to stop here for a failover


class StepRunner:
    def __init__(self, groups: GroupManager, group_ops: GroupOps,
                 on_stop: Callable[[str], None], cluster: str) -> None:
        self.groups, self.group_ops, self.on_stop = groups, group_ops, on_stop
        self.cluster = cluster

    def active_groups(self) -> list[str]:
        return [g for g, r in self.groups.runners.items()
                if r.state in (GroupState.ONLINE, GroupState.ONLINE_FAILURE)]

    def groups_of(self, kind: str, target: str) -> list[str]:
        """The groups a recovery target means here: its group (a resource), itself (a group),
        or every group active on this server (All Groups, LocalServer)."""
        if kind == "resource":
            return [self.groups.config.resource(target)[0].name]
        if kind == "group":
            return [target]
        return self.active_groups()

    async def run(self, mc: MonitorConfig, step: Step) -> tuple[bool, str]:
        if step.script is not None:
            ok, why = await self.script(mc, step)
            if step.action == "script":
                return ok, why
        if step.action == "restart":
            return await self._restart(step)
        if step.action == "failover":
            return await self._failover(step)
        return await self._final(mc, step)

    async def script(self, mc: MonitorConfig, step: Step) -> tuple[bool, str]:
        """The recovery script (the product's preaction.sh), bounded by its timeout. A failed
        script is an alert; the step it comes before is carried out all the same."""
        spec = mc.recovery.script
        if spec is None:
            return True, ""
        what = {"RECOVERY": "recovery", "RESTART": "reactivation", "FAILOVER": "failover",
                "FINALACTION": "final action"}[str(step.script)]
        env = {"PATH": os.environ.get("PATH", PATH), "CLP_MONITORNAME": mc.name,
               "CLP_ACTION": str(step.script), "CLP_SERVERNAME": self.groups.me,
               "CLP_CLUSTERNAME": self.cluster, "CLP_OSNAME": host.system(),
               "CLP_PATH": str(self.groups.root.root), "CLP_VERSION_FULL": _version(),
               "CLP_RECOVERYCOUNT": str(step.counts.get("recovery", 0)),
               "CLP_RESTARTCOUNT": str(step.counts.get("restart", 0)),
               "CLP_FAILOVERCOUNT": str(step.counts.get("failover", 0))}
        result = await asyncio.to_thread(proc.run, [str(spec.path)], timeout=spec.timeout,
                                         env=env, cwd=spec.path.parent, log=log)
        ok = result.ok
        if step.script != "RECOVERY":  # the recovery script's own lines are the tracker's
            if ok:
                log.info("Script before %s upon failure in monitor resource %s completed.",
                         what, mc.name, extra={"event_id": 82, "alert": True, **RM})
            else:
                log.error("Script before %s upon failure in monitor resource %s failed. (%s)",
                          what, mc.name, _why(result), extra={"event_id": 83, "alert": True,
                                                              **RM})
        return ok, "" if ok else _why(result)

    async def _restart(self, step: Step) -> tuple[bool, str]:
        if step.kind == "resource":
            return await self.groups.restart_resource(step.target)
        groups = self.groups_of(step.kind, step.target)
        results = [await self.groups.restart_group(g) for g in groups]
        return _all(results)

    async def _failover(self, step: Step) -> tuple[bool, str]:
        groups = [g for g in self.groups_of(step.kind, step.target)
                  if await self.groups.reachable(self.groups.others_for(g))]
        if not groups:
            return False, ("no other server of the group's policy answers on the cluster RPC "
                           "(the LANs to it are down?); nothing was moved")
        results = await asyncio.gather(*(self.groups.fail_over(g, step.reason, FAILOVER_WAIT)
                                         for g in groups))
        return _all(list(results))

    async def _final(self, mc: MonitorConfig, step: Step) -> tuple[bool, str]:
        allowed, count = self.groups.reboot_limit.allow("rm", step.action)
        if not allowed:
            log.warning("Restart count exceeded the maximum of %d. Final action of monitoring "
                        "%s will not be executed.", count, mc.name,
                        extra={"event_id": 100, "alert": True, **RM})
            return True, ""
        event, text = FINAL_ACTION_EVENTS[step.action]
        log.error(text.format(target=step.target, monitor=mc.name) + f" ({step.why})",
                  extra={"event_id": event, "alert": True, **RM})
        if step.action == "stop_group":
            return await self._stop_groups(step)
        logsetup.drain(0.5)  # the alert above must reach the alert log before the machine goes
        if step.action in SERVICE_STOPS:
            self.on_stop(step.action)
            return True, ""
        act: dict[str, Callable[[], None]] = {
            "panic": power.panic, "keepalive_panic": power.panic, "keepalive_reset": power.reset}
        try:
            if step.action in act:
                act[step.action]()
            else:
                power.bmc(step.action)
        except power.PowerRefused as e:
            return False, str(e)
        return True, ""

    async def _stop_groups(self, step: Step) -> tuple[bool, str]:
        waits: list[Awaitable[dict[str, object]]] = [
            self.group_ops.request("stop", g, None) for g in self.groups_of(step.kind, step.target)]
        answers = await asyncio.gather(*waits)
        refused = [str(a.get("message")) for a in answers if not a.get("ok")]
        return (not refused), "; ".join(refused)


def _version() -> str:
    try:
        return metadata.version("clp")
    except metadata.PackageNotFoundError:
        return "unknown"


def _all(results: list[tuple[bool, str]]) -> tuple[bool, str]:
    failed = [why for ok, why in results if not ok]
    return not failed, "; ".join(failed) if failed else "; ".join(w for _, w in results)


def _why(result: proc.ProcResult) -> str:
    if result.timed_out:
        return "timed out"
    last = result.output.strip().splitlines()[-1:] or [""]
    return f"exit code {result.returncode}" + (f": {last[0][:200]}" if last[0] else "")
