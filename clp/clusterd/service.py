"""The ``clusterpro`` service: heartbeats, membership, groups, the state region and the control API.

Everything runs on one asyncio loop. The loop only moves data: decisions come from the pure core
(:mod:`clp.core.liveness`: membership and partition resolution; :mod:`clp.core.coordinator`),
heartbeats travel on every path of :mod:`clp.clusterd.heartbeats`, partition probes run in
:mod:`clp.clusterd.resolution`, group reports and commands travel over :mod:`clp.clusterd.peer`,
resource actions run in threads (:mod:`clp.clusterd.groups`), and the state is published through
:mod:`clp.state`. Signal handlers only set a flag; the loop acts on it.

Stopping (``clpcl -t``, SIGTERM, ``clpdown``, a final action) deactivates this server's groups
first, while heartbeats go on, then exits; a crash or SIGKILL stops nothing, and the next start
re-adopts what still runs. If the loop itself was stopped for longer than the heartbeat timeout
(SIGSTOP, a hang, measured with ``CLOCK_BOOTTIME``), the other servers have declared this one
down and may run its groups: it panics without touching any resource (self-fence). The same holds
at start after a crash: when the last round of the previous run (:mod:`clp.clusterd.marks`) is
older than the heartbeat timeout and a resource is still active here, it panics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from typing import Any

from clp.clusterd.fipwatch import FipWatch
from clp.clusterd.group_ops import GroupOps
from clp.clusterd.groups import GroupManager
from clp.clusterd.heartbeats import HeartbeatSet
from clp.clusterd.marks import ServiceMarks, boottime
from clp.clusterd.monitor_actions import StepRunner
from clp.clusterd.monitors import MonitorManager
from clp.clusterd.peer import PeerClient, PeerServer
from clp.clusterd.publish import StatePublisher
from clp.clusterd.resolution import Resolution, resolver_specs
from clp.clusterd.toratio import TimeoutRatio
from clp.config import ClusterConfig
from clp.config.fencing import watchdog_waits
from clp.control.protocol import Reply
from clp.control.server import ControlServer, Handler
from clp.core.group_types import E_BAD_ARGS, E_STATE, E_SUSPENDED, OK
from clp.core.liveness import Liveness, Step
from clp.core.membership import Decision
from clp.core.partition import Verdict
from clp.evt import logsetup
from clp.heartbeat import packet
from clp.paths import InstallRoot
from clp.platform import power, sdnotify
from clp.resources.runner import ResourceRunner
from clp.trn.config_store import read_generation

log = logging.getLogger("clp.nm")

# Event ids of the node-manager module ("nm"), as shown in the alert log.
# a receive deadline is "strictly more than the timeout ago": wake just after it
PUBLISH_REFRESH = 1.0  # seconds: see publish_every
DEADLINE_SLACK = 0.001
# before a self-fence, how long to wait for clusterpro_evt to write the alert that explains it
FENCE_LOG_WAIT = 0.5

EVENT_SERVER_UP = 1
EVENT_SERVER_DOWN = 2
EVENT_PATH_RESTORED = 3
EVENT_PATH_LOST = 6
EVENT_SUSPENDED = 10
EVENT_RESUMED = 11
EVENT_HANG_FENCE = 20
EVENT_NP_DOWN = 30
EVENT_NP_ISOLATED = 31
EVENT_NP_PROBING = 32
POWER_ACTIONS = ("shutdown", "reboot")
# control operations a suspended cluster refuses (seed chapter 9's list of commands)
REFUSED_SUSPENDED = frozenset({"group_start", "group_stop", "group_move", "rsc_start",
                               "rsc_stop", "down", "cluster_shutdown", "toratio",
                               "monitor_control", "monitor_pseudo"})

FINAL_POWER = {"stop_cluster_service": None, "stop_cluster_service_and_shutdown": "shutdown",
               "stop_cluster_service_and_reboot": "reboot"}


def local_server_name(config: ClusterConfig) -> str:
    """This server's name in clp.conf: its short host name, as the product (or CLP_SERVER)."""
    name = os.environ.get("CLP_SERVER") or socket.gethostname().split(".")[0]
    if name not in config.server_names:
        raise SystemExit(f"this server's host name {name!r} is not a server of cluster "
                         f"{config.name!r} (servers: {', '.join(config.server_names)})")
    return name


def _done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ClusterService:
    def __init__(self, root: InstallRoot, config: ClusterConfig, key: bytes) -> None:
        self.root = root
        self.config = config
        self.me = local_server_name(config)
        self.my_index = config.server_index(self.me)
        self.interval = config.heartbeat_interval
        self.suspended = False
        self.started = time.time()
        self.config_generation = read_generation(root.config_dir)  # what it runs, for clpstat
        self.marks = ServiceMarks(root.volatile_dir, root.work_dir / "incarnation")
        self._previous_tick = self.marks.last_tick()  # before this run writes its own
        self.incarnation = self.marks.next_incarnation()
        self._stop = asyncio.Event()
        self._exit = asyncio.Event()
        self._exit_code = 0
        self._stop_groups = True  # False when fencing: a fenced server touches no resource
        self._fenced = False
        self._taking = False  # in _take_quiet
        self._waiter: asyncio.Future[None] | None = None  # the heartbeat loop's sleep
        self._last_round: float | None = None  # CLOCK_BOOTTIME of the heartbeat loop's last round
        self._power_action: str | None = None
        self.path_names = [ic.name for ic in config.interconnects]
        self._server_names = list(config.server_names)
        self.liveness = Liveness(
            self.me, list(config.server_names),
            {ic.name: set(ic.servers) for ic in config.interconnects},
            config.heartbeat_timeout, self.interval, resolver_specs(config), time.monotonic(),
            watchdog_waits(config))
        self.membership = self.liveness.membership
        self.toratio = TimeoutRatio(root, self.membership)
        self.sender_state = packet.SENDER_RUNNING
        self.heartbeats = HeartbeatSet(config, self.me, key, self.incarnation,
                                       self._on_heartbeat)
        self.resolution = Resolution(config, self.me, self.liveness, self._on_step,
                                     self._take_quiet, key, self.incarnation)
        self._group_view: list[str] = []
        self.runner = ResourceRunner(gate=self._resource_gate)
        self.peer_client = PeerClient(config, self.me, key)
        self.groups = GroupManager(config, self.me, root, self.runner, self.peer_client.send,
                                   incarnation=self.incarnation, settle=2 * self.interval,
                                   on_stop=self._final_action_stop)
        self.groups.on_change = self._groups_changed
        self.groups.on_event = self._group_event
        self.fip_watch = FipWatch(self.me, config.groups, self.interval)
        self.group_ops = GroupOps(self.groups, self.peer_client.send, self._down)
        self.group_ops.suspended = lambda: self.suspended
        self.monitors = MonitorManager(
            config, self.me, root, self.groups,
            StepRunner(self.groups, self.group_ops, self._final_action_stop, config.name),
            lambda: self.membership.ratio, self._monitors_changed, self._resource_gate)
        self.groups.monitor_states = self.monitors.local_states
        self.peer = PeerServer(config, self.me, key, self._on_peer)
        self.publisher = StatePublisher(root, self)
        # the status snapshot is published on every change, and with nothing new this often
        # (clpstat warns when it is older than 5 intervals and 3 s; the per-path table is
        # written in place on every heartbeat)
        self.publish_every = max(self.interval, PUBLISH_REFRESH)
        handlers = {"toratio": self._op_toratio, **self.group_ops.handlers(),
                    **self.monitors.handlers()}
        self.control = ControlServer(root.control_socket, {
            "status": self._op_status, "stop": self._op_stop,
            "suspend": self._op_suspend, "resume": self._op_resume,
            **{op: self._unless_suspended(op, h) if op in REFUSED_SUSPENDED else h
               for op, h in handlers.items()},
        })

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, 0)
        self.publisher.open()
        try:
            await self.heartbeats.start()
            self.resolution.start()
            await self.peer.start()
            await self.control.start()
            adopt = asyncio.ensure_future(self.groups.adopt(
                self._fence_stale if self._stale_at_start() else None))
            adopt.add_done_callback(self._adopted)
            if self.config.reboot_limit.reset_minutes:  # the reboots counted are old news
                loop.call_later(60.0 * self.config.reboot_limit.reset_minutes,
                                self.groups.reboot_limit.reset)
            stopper = asyncio.ensure_future(self._stop_sequence(adopt))
            log.info("Cluster service started on %s (cluster %s, %d servers, heartbeat %g s / "
                     "%g s)", self.me, self.config.name, len(self.config.servers), self.interval,
                     self.config.heartbeat_timeout, extra={"event_id": EVENT_SERVER_UP})
            # the control API answers and the state region holds a first snapshot (published by
            # publisher.open()): clpstat works, so the services ordered after this one may start
            sdnotify.ready(f"cluster {self.config.name}: {self.me} running")
            await self._heartbeat_loop()
            await stopper
        finally:
            await self._shutdown()
        self._power()
        return self._exit_code

    def _adopted(self, adopt: asyncio.Future[None]) -> None:
        """This server's groups are known: monitoring starts (not after a fence)."""
        if not adopt.cancelled() and adopt.exception() is None and self.groups.adopted \
                and not self._fenced:
            self.monitors.start()

    def request_stop(self, code: int = 0) -> None:
        self._exit_code = code
        self.sender_state = packet.SENDER_STOPPING  # heartbeats go on while the groups stop
        self._stop.set()

    async def _stop_sequence(self, adopt: asyncio.Future[None]) -> None:
        """On a stop request: deactivate this server's groups (heartbeats go on), then exit."""
        await self._stop.wait()
        sdnotify.stopping()
        self.monitors.stop_all("the cluster service is stopping")
        if self._stop_groups:
            with contextlib.suppress(Exception):
                await adopt
            log.info("Stopping the groups of %s", self.me)
            await self.groups.stop_all()
            await asyncio.sleep(self.interval)  # the last report reaches the peers
            self.marks.clear_tick()
        self._exit.set()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)  # the heartbeat loop ends now, not at its next wake

    def _power(self) -> None:
        if self._power_action is None:
            return
        try:
            {"shutdown": power.shutdown, "reboot": power.reboot}[self._power_action]()
        except power.PowerRefused as e:
            log.error("%s", e, extra={"alert": True})

    def _hung(self) -> bool:
        """Whether this server must not act on anything any more: it has fenced itself, or its
        heartbeat loop has not run for longer than the heartbeat timeout, so the peers heard
        nothing from it for that long and may have declared it down (see the module); then it
        fences now. Checked by the loop each round and by every event handler first: after a
        hang, datagrams and requests queued meanwhile may be handled before the loop's round,
        and one of them (a peer's Offline mark, a command) must not make it touch a resource."""
        if self._fenced:
            return True
        if self._last_round is None or self.suspended:
            return False  # the loop has not started; or suspended: nobody times anyone out
        gap = boottime() - self._last_round
        if gap <= self.config.heartbeat_timeout:  # within even the timeout without a ratio
            return False
        self.toratio.expire(time.time())  # a ratio that ended during the hang ended for peers too
        if gap <= self.membership.timeout:
            return False
        self._fence(f"the cluster service was stopped for {gap:.1f} s: no heartbeat sent for "
                    f"longer than the heartbeat timeout ({self.membership.timeout:g} s)")
        return True

    def _resource_gate(self) -> str | None:
        """Asked before every resource operation (see ResourceRunner)."""
        return f"{self.me} has fenced itself" if self._hung() else None

    def _stale_at_start(self) -> bool:
        """Whether the previous run of this service ended longer than the heartbeat timeout ago
        without a clean stop (peers have declared this server down meanwhile). The timeout
        without the ``clptoratio`` ratio: a reset run cluster-wide while this service was down
        never reached the ratio kept here, and panicking once too often is the safe mistake."""
        last = self._previous_tick
        return last is not None and boottime() - last > self.config.heartbeat_timeout

    def _fence_stale(self, active: list[str]) -> None:
        down = boottime() - (self._previous_tick or 0.0)
        self._fence(f"the cluster service was down for {down:.1f} s (heartbeat timeout "
                    f"{self.config.heartbeat_timeout:g} s) and {', '.join(active)} still "
                    f"active here")

    def _fence(self, why: str) -> None:
        """Self-fence: panic, or if refused leave the cluster; never touch a resource."""
        self._fenced = True
        log.critical("%s: the other servers may have taken over its groups; panic to protect "
                     "the data", why, extra={"event_id": EVENT_HANG_FENCE, "alert": True})
        self._stop_groups = False
        logsetup.drain(FENCE_LOG_WAIT)  # the alert above must reach the alert log first
        try:
            power.panic()
        except power.PowerRefused as e:
            log.error("%s; leaving the cluster without touching any resource", e,
                      extra={"alert": True})
        self.request_stop(1)

    async def _heartbeat_loop(self) -> None:
        """Send and decide every interval; in between, wake exactly at the next receive deadline
        so that a silent server is declared down at the timeout, not up to an interval later."""
        next_tick = time.monotonic()
        self._last_round = boottime()
        while not self._exit.is_set():
            self._take_quiet()
            now = time.monotonic()
            if now >= next_tick:
                if self._hung():
                    self._exit.set()
                    break
                self._last_round = boottime()
                self.marks.write_tick(self._last_round)
                self.peer.retry()
                self.toratio.expire(time.time())
                if not self.suspended:
                    self.heartbeats.send(self.sender_state, *self.liveness.bitmaps(now))
                    self._decide(now, always=True)
                if self.publisher.age() >= self.publish_every:  # else: published on a change
                    self.publisher.publish()
                next_tick += self.interval
                if next_tick < time.monotonic():  # late (busy machine, stopped): do not burst
                    log.warning("heartbeat loop late by %.3f s", time.monotonic() - next_tick)
                    next_tick = time.monotonic()
            elif not self.suspended and self._decide(now, always=False):
                self.publisher.publish()
            wake = next_tick
            deadline = None if self.suspended else self.liveness.next_deadline(now)
            if deadline is not None:
                wake = min(wake, deadline + DEADLINE_SLACK)
            due = None if self.suspended else self.fip_watch.update(
                self.groups.coord.last_owner, self.membership.silence(now),
                self.membership.timeout)
            if due is not None:
                wake = min(wake, now + due + DEADLINE_SLACK)
            await self._sleep_until(wake)

    async def _sleep_until(self, wake: float) -> None:
        """Until ``wake`` (time.monotonic()) or the end of the service: a future and a timer
        (``wait_for`` on the exit event made a task, a timeout and a cancel every round: it
        showed in the profile at interval 0.1 s)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(max(0.0, wake - time.monotonic()), _done, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _decide(self, now: float, always: bool) -> bool:
        """Liveness, then groups; at a deadline wake the groups only if what they may count
        on changed (a server lost, resolved down, or past its takeover wait)."""
        self._take_quiet()
        self.liveness.holding = self.groups.holding()
        step = self.liveness.tick(now)
        self._on_step(step, decide=False)
        view = self.liveness.group_online(now)
        changed = view != self._group_view
        if always or changed:
            self._group_view = view
            self.groups.set_online(view, self.liveness.unheard())
            try:
                self.groups.tick(now)
            except Exception:  # noqa: BLE001 - a bug in one round must not stop the heartbeats
                log.exception("group decision round failed", extra={"alert": True})
        return bool(step.decisions or step.verdicts or changed)

    async def _shutdown(self) -> None:
        self.resolution.close()
        self.fip_watch.close()
        self.heartbeats.close()
        await self.peer.close()
        self.peer_client.close()
        await self.control.close()
        self.monitors.close()
        self.runner.shutdown()
        self.publisher.close()
        log.info("Cluster service stopped on %s", self.me)

    # --- events ---------------------------------------------------------------------------

    def _on_heartbeat(self, sender: int, path: int, hb: packet.Heartbeat, arrived: float,
                      first: float) -> None:
        """News from the heartbeat table (see clp.heartbeat.rxtable). ``arrived``: when it was
        received (LAN: the kernel's stamp); ``first``: when the same heartbeat first arrived on
        any path."""
        try:
            if self.suspended or self._hung():
                return  # ignored (resume renews the table: every sender's next one is news)
            self._take_quiet()  # the quiet ones that came before it first
            server, path_name = self._server_names[sender], self.path_names[path]
            self._on_step(self.liveness.heartbeat(
                min(time.monotonic(), arrived), server, path_name, hb.heard, hb.offline,
                (hb.incarnation, hb.seq), first))
            # a path's first heartbeat makes it Normal without a decision: its row and its
            # entry in the table follow here
            self.publisher.path_changed(sender, path)
            self.heartbeats.set_quiet(sender, path, self.liveness.quiet(server, path_name))
        finally:
            self.heartbeats.ack(sender)

    def _take_quiet(self) -> None:
        """The quiet heartbeats the table kept since the last call: each moves its path's timer
        (Liveness.alive); one whose server or path changed state meanwhile is taken in full.
        Called before anything reads or times liveness: each round and deadline, each
        decision, each news heartbeat, each resolver result."""
        if self._taking:
            return  # a full heartbeat below decided, and its decision round called us
        self._taking = True
        try:
            records = self.heartbeats.pull()
            if not records or self.suspended or self._hung():
                return
            now = time.monotonic()
            alive, names, paths = self.liveness.alive, self._server_names, self.path_names
            for arrived, sender, index, first, incarnation, seq, heard, offline in records:
                server, path, at = names[sender], paths[index], min(now, arrived)
                if not alive(at, server, path, first, (incarnation, seq)):
                    self._on_step(self.liveness.heartbeat(
                        at, server, path, heard, offline, (incarnation, seq), first))
        finally:
            self._taking = False

    def _sync_quiet(self) -> None:
        """Tell the heartbeat table which (sender, path) may wait for a pull: see
        Liveness.quiet. After every change of a server's or path's state."""
        servers, paths, quiet = self._server_names, self.path_names, self.liveness.quiet
        self.heartbeats.set_all_quiet(lambda s, p: quiet(servers[s], paths[p]))

    def _on_step(self, step: Step, decide: bool = True) -> None:
        """Log and act on what liveness decided; ``decide``: run a group round if it matters
        (the heartbeat loop's own rounds pass False: they decide right after)."""
        if self._hung():
            return
        if step.decisions or step.verdicts:
            self._sync_quiet()
        self._apply(step.decisions)
        for v in step.verdicts:
            self._verdict(v)
        if step.probe:
            log.warning("every heartbeat to %s lost; network partition resolution: probing %s",
                        ", ".join(self.liveness.partition.pending), ", ".join(step.probe),
                        extra={"event_id": EVENT_NP_PROBING})
            self.resolution.probe_now(step.probe)
        if decide and (step.verdicts or step.decisions) and not self.suspended:
            self._decide(time.monotonic(), always=False)
        if step.verdicts or step.decisions:
            self.publisher.publish()

    def _verdict(self, v: Verdict) -> None:
        if v.kind == "down":
            log.error(v.reason, extra={"event_id": EVENT_NP_DOWN, "alert": True})
            return
        action = self.config.network_partition.action
        log.critical("%s; network partition action: %s", v.reason, action.replace("_", " "),
                     extra={"event_id": EVENT_NP_ISOLATED, "alert": True})
        self._final_action_stop(action)

    def _apply(self, decisions: list[Decision]) -> None:
        for d in decisions:
            level, event = {
                "server_up": (logging.INFO, EVENT_SERVER_UP),
                "server_down": (logging.ERROR, EVENT_SERVER_DOWN),
                "path_lost": (logging.WARNING, EVENT_PATH_LOST),
                "path_restored": (logging.INFO, EVENT_PATH_RESTORED),
            }[d.kind]
            log.log(level, d.reason, extra={"event_id": event, "alert": d.alert})
        if decisions:
            self.publisher.refresh_paths()

    # --- groups ---------------------------------------------------------------------------

    def _group_event(self) -> None:
        """A decision input changed (see GroupManager.changed): a round now, with the guards of
        the heartbeat loop's own rounds; then the status is published, since a group here or a
        peer's report changed (clpstat shows it)."""
        if not (self.suspended or self._exit.is_set() or self._hung()):
            try:
                self.groups.tick_event()
            except Exception:  # noqa: BLE001 - as in _decide
                log.exception("group decision round failed", extra={"alert": True})
        self.publisher.publish()

    def _groups_changed(self) -> None:
        self.monitors.reconcile()
        self.groups.report_now()  # published by the decision round that follows: _group_event
        holding = self.groups.holding()
        if holding and not self.liveness.holding and self._waiter is not None \
                and not self._waiter.done():
            self._waiter.set_result(None)  # the loop learns the lease's deadline now
        self.liveness.holding = holding

    def _monitors_changed(self) -> None:
        self.groups.report_now()
        self.publisher.publish()

    def _final_action_stop(self, action: str) -> None:
        self._power_action = FINAL_POWER.get(action)
        self.request_stop(0)

    async def _down(self, action: str) -> None:
        """``clpdown``: stop this server's groups (they fail over), the service, then power."""
        if action not in POWER_ACTIONS:
            raise ValueError(f"unknown power action {action!r}")
        log.info("Server %s goes down (%s)", self.me, action)
        self._power_action = action
        self.request_stop(0)

    async def _on_peer(self, op: str, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        refused = self._resource_gate()
        if refused:
            return {"ok": False, "code": E_STATE, "message": refused}
        if op == "report":
            return self.groups.on_report(sender, args)
        if op == "command":
            return self.groups.on_command(sender, args)
        if op == "request":
            return self.group_ops.on_request(sender, args)
        if op == "rsc":
            r = await self.group_ops.local_rsc(args)
            return {"ok": r.ok, "code": r.code, "message": r.message}
        if op == "down":
            action = args.get("action", "shutdown")
            if action not in POWER_ACTIONS:
                return {"ok": False, "code": E_BAD_ARGS,
                        "message": f"unknown power action {action!r}"}
            await self._down(str(action))
            return {"ok": True, "code": OK, "message": ""}
        return {"ok": False, "code": E_BAD_ARGS, "message": f"unknown operation {op!r}"}

    # --- control API ----------------------------------------------------------------------

    def _unless_suspended(self, op: str, handler: Handler) -> Handler:
        """The seed (chapter 9): while the cluster is suspended groups, resources, monitors and
        the timeout ratio cannot be operated; such a request is refused at once, never kept for
        the resume. (``clptoratio -s`` and ``clpmonctrl -v``/``-c`` still answer.)"""
        async def guarded(args: dict[str, Any]) -> Reply:
            if self.suspended and not (op == "toratio" and args.get("show")):
                return Reply(False, E_SUSPENDED, "The cluster is suspended: resume it first "
                                                 "(clpcl --resume).")
            return await handler(args)
        return guarded

    async def _op_status(self, args: dict[str, Any]) -> Reply:
        return Reply(True, 0, "", self.publisher.snapshot())

    async def _op_stop(self, args: dict[str, Any]) -> Reply:
        asyncio.get_running_loop().call_soon(self.request_stop, 0)
        return Reply(True, 0, f"Cluster service on {self.me} is stopping.")

    async def _op_toratio(self, args: dict[str, Any]) -> Reply:
        reply = await self.toratio.op(args)
        self.publisher.publish()
        return reply

    async def _op_suspend(self, args: dict[str, Any]) -> Reply:
        if self.suspended:
            return Reply(False, 12, "The cluster is already suspended.")
        self._take_quiet()
        self.suspended = True
        self.membership.suspend(time.monotonic())
        self._sync_quiet()
        self.monitors.suspend_cluster(True)
        log.info("Cluster suspended on %s", self.me,
                 extra={"event_id": EVENT_SUSPENDED, "alert": True})
        self.publisher.publish()
        return Reply(True, 0, "")

    async def _op_resume(self, args: dict[str, Any]) -> Reply:
        if not self.suspended:
            return Reply(False, 13, "The cluster is not suspended.")
        self.membership.resume(time.monotonic())
        self.suspended = False
        self.heartbeats.renew()  # what came while suspended was ignored: bitmaps read afresh
        self._sync_quiet()
        self.monitors.suspend_cluster(False)
        log.info("Cluster resumed on %s", self.me,
                 extra={"event_id": EVENT_RESUMED, "alert": True})
        self.publisher.refresh_paths()
        self.publisher.publish()
        return Reply(True, 0, "")
