"""The group operations of the control API (``clpgrp``, ``clprsc``, ``clpdown``, ``clpstdn``).

Every operation works on any server: a group request goes to the master (directly when this server
is the master, else over cluster RPC), a resource operation goes to the server running its group.
As the product, a group operation is about the server that handles it (this one): ``group_start``
starts on it (or on ``server``), ``group_stop`` stops what runs on it (a group running on another
server only with ``force``), ``group_move`` without a group moves every group that runs on it.
The reply comes when the operation has finished, as seen in the group reports this server
receives, or after ``timeout`` seconds (argument: 0 < timeout <= 3600; the commands send 600, a
request without one waits :data:`DEFAULT_TIMEOUT`, 300). Reply codes are those of
:mod:`clp.core.group_types` (0 success, 2 bad argument, 14 wrong state, 15 server not available,
16 timeout, 17 failed, 18 master or group server unreachable).

``group_start`` refuses (15) while a server of the group's policy has not been heard from since
the master started (the group might be active there) unless ``force`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from clp.clusterd.groups import GroupManager, Send
from clp.control.protocol import Reply
from clp.core.group_states import GROUP_STOPPED_STATES, GroupState, ResourceState
from clp.core.group_types import (
    E_BAD_ARGS,
    E_FAILED,
    E_NO_MASTER,
    E_SERVER,
    E_STATE,
    E_SUSPENDED,
    E_TIMEOUT,
    OK,
)

G = GroupState
log = logging.getLogger("clp.rc")
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 3600.0
POLL = 0.5  # a request waiting for an outcome looks after every decision round, or this often
POWER_ACTIONS = ("shutdown", "reboot")


class GroupOps:
    def __init__(self, mgr: GroupManager, send: Send,
                 on_down: Callable[[str], Awaitable[None]]) -> None:
        self.mgr, self.send, self.on_down = mgr, send, on_down
        self.suspended: Callable[[], bool] = lambda: False  # the service's flag (clpcl --suspend)

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Reply]]]:
        return {"group_start": self.group_start, "group_stop": self.group_stop,
                "group_move": self.group_move, "rsc_start": self.rsc_start,
                "rsc_stop": self.rsc_stop, "down": self.down,
                "cluster_shutdown": self.cluster_shutdown}

    # --- requests to the master -----------------------------------------------------------

    async def request(self, op: str, group: str | None, server: str | None,
                      **extra: Any) -> dict[str, Any]:
        """Ask the master (maybe this server) to start/stop/move a group; the master's answer."""
        master = self.mgr.coord.master_of(self.mgr.online)
        args = {"op": op, "group": group, "server": server, **extra}
        if master == self.mgr.me:
            return self.on_request(self.mgr.me, args)
        reply = await self.send(str(master), "request", args)
        if reply is None:
            return {"ok": False, "code": E_NO_MASTER,
                    "message": f"The master server {master} cannot be reached."}
        return reply

    def on_request(self, sender: str, args: dict[str, Any]) -> dict[str, Any]:
        """A request received by the master (cluster RPC ``request``, or from itself)."""
        coord = self.mgr.coord
        if coord.master_of(self.mgr.online) != self.mgr.me:
            return {"ok": False, "code": E_NO_MASTER,
                    "message": f"{self.mgr.me} is not the master server."}
        if args.get("op") == "cluster_shutdown":
            action = args.get("action")
            if action not in POWER_ACTIONS:
                return {"ok": False, "code": E_BAD_ARGS,
                        "message": f"Unknown power action {action!r}."}
            self.mgr._spawn(self._shutdown_cluster(str(action)))
            return {"ok": True, "code": OK, "message": "Shutting down the cluster."}
        if args.get("op") == "start" and not args.get("force"):
            refused = self._unheard(str(args.get("group")))
            if refused is not None:
                return refused
        coord.refresh(self.mgr.reports())
        answer = coord.request(time.monotonic(), str(args.get("op")), str(args.get("group")),
                               args.get("server"), force=bool(args.get("force")))
        if answer.ok:
            self.mgr.changed()  # decided now, not at the next heartbeat round
        intent = coord.intents.get(str(args.get("group")))
        server = intent.server if intent is not None else None
        return {"ok": answer.ok, "code": answer.code, "message": answer.message,
                "data": {"server": server}}

    def _unheard(self, group: str) -> dict[str, Any] | None:
        spec = self.mgr.coord.groups.get(group)
        unheard = [s for s in spec.servers if s in self.mgr.unheard] if spec else []
        if not unheard:
            return None
        return {"ok": False, "code": E_SERVER,
                "message": f"Server {unheard[0]} has not been heard from yet; group {group} may "
                           f"be active there. Use -f to start it anyway."}

    async def _wait(self, done: Callable[[], Reply | None], timeout: float, what: str) -> Reply:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = done()
            if reply is not None:
                return reply
            if self.suspended():  # nothing moves until the resume: say so now, not at the end
                return Reply(False, E_SUSPENDED, f"The cluster was suspended: {what.lower()} "
                                                 f"goes on when it is resumed.")
            await self.mgr.next_round(min(POLL, deadline - time.monotonic()))
        return Reply(False, E_TIMEOUT, f"{what} did not finish in {timeout:g} s.")

    def _where(self, group: str) -> dict[str, GroupState]:
        return self.mgr.coord.where(group)

    # --- clpgrp ---------------------------------------------------------------------------

    @staticmethod
    def _timeout(args: dict[str, Any]) -> float | Reply:
        t = args.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= MAX_TIMEOUT:
            return Reply(False, E_BAD_ARGS, f"Invalid timeout {t!r}: a number of seconds, "
                                            f"0 < timeout <= {MAX_TIMEOUT:g}.")
        return float(t)

    def _groups(self, args: dict[str, Any]) -> list[str] | Reply:
        name = args.get("group")
        if name is None:
            return [g.name for g in self.mgr.config.groups]
        if name not in self.mgr.coord.groups:
            return Reply(False, E_BAD_ARGS, f"Group {name} does not exist.")
        return [str(name)]

    def _groups_and_timeout(self, args: dict[str, Any]) -> tuple[list[str], float] | Reply:
        groups, timeout = self._groups(args), self._timeout(args)
        if isinstance(groups, Reply):
            return groups
        if isinstance(timeout, Reply):
            return timeout
        return groups, timeout

    async def group_start(self, args: dict[str, Any]) -> Reply:
        """Start on ``server``, or on this server (the one handling the request)."""
        parsed = self._groups_and_timeout(args)
        if isinstance(parsed, Reply):
            return parsed
        groups, timeout = parsed
        server = args.get("server") or self.mgr.me
        if not args.get("group"):  # every group this server may run
            groups = [g.name for g in self.mgr.config.groups if server in g.servers]
        accepted, refused = [], []
        for g in groups:  # every group is asked for; one refused does not hold the others back
            r = await self.request("start", g, server, force=bool(args.get("force")))
            if r["ok"]:
                accepted.append(g)
            elif len(groups) == 1 or r["code"] != E_STATE:  # "already started" is no failure
                refused.append(Reply(False, r["code"], r["message"]))
        if refused and not accepted:
            return refused[0]
        seen_want = set()

        def started() -> Reply | None:
            for g in accepted:
                where, intent = self._where(g), self.mgr.coord.intents[g]
                if intent.want:
                    seen_want.add(g)
                failed = [s for s, st in where.items() if st == G.ONLINE_FAILURE]
                final = [s for s in failed if g not in self._failover(s)]  # a final action
                if failed and (not intent.want or final):
                    return Reply(False, E_FAILED, f"Group {g} failed to start on "
                                                  f"{(final or failed)[0]}.")
                if g in seen_want and not intent.want and not failed:
                    return Reply(False, E_FAILED, f"Group {g} could not start on any server.")
                if G.ONLINE not in where.values():
                    return None
            return Reply(True, 0, "", {"groups": {g: self.mgr.coord.owner(g) for g in groups}})

        reply = await self._wait(started, timeout, "Starting the group")
        return refused[0] if reply.ok and refused else reply

    def _failover(self, server: str) -> frozenset[str]:
        """The groups ``server`` last reported as failing over (activation gave up there)."""
        report = self.mgr.reports().get(server)
        return report.failover if report is not None else frozenset()

    async def group_stop(self, args: dict[str, Any]) -> Reply:
        """Stop the groups that run on this server (the one handling the request), also those in
        a failure state (Offline Failure: deactivated again); with ``force``, wherever they
        run."""
        parsed = self._groups_and_timeout(args)
        if isinstance(parsed, Reply):
            return parsed
        groups, timeout = parsed
        me, force = self.mgr.me, bool(args.get("force"))
        if args.get("group") and not force:
            owner = self.mgr.coord.owner(groups[0])
            if owner not in (None, me):
                return Reply(False, E_STATE, f"Group {groups[0]} is active on {owner}, not on "
                                             f"{me}: stop it there, or use -f.")
        elif not args.get("group") and not force:
            groups = [g for g in groups if self.mgr.coord.owner(g) == me]
        before = {g: self._where(g) for g in groups}
        moved: set[str] = set()
        for g in groups:
            r = await self.request("stop", g, None)
            if not r["ok"] and (len(groups) == 1 or r["code"] != E_STATE):
                return Reply(False, r["code"], r["message"])

        def stopped() -> Reply | None:
            for g in groups:
                where = self._where(g)
                if where != before[g]:
                    moved.add(g)
                states = where.values()
                if any(st not in GROUP_STOPPED_STATES for st in states):
                    return None
                if G.OFFLINE_FAILURE in states and (
                        g in moved or G.OFFLINE_FAILURE not in before[g].values()):
                    return Reply(False, E_FAILED, f"Group {g} failed to stop.")
                if G.OFFLINE_FAILURE in states:
                    return None  # still the failure from before this request
            return Reply(True, OK, "")

        return await self._wait(stopped, timeout, "Stopping the group")

    async def group_move(self, args: dict[str, Any]) -> Reply:
        """Move a group (to ``server``, or the next server of its policy); without a group,
        every group that runs on this server."""
        if not args.get("group") and args.get("resource") is not None:  # clprexec -r
            try:
                args = {**args, "group": self.mgr.config.resource(str(args["resource"]))[0].name}
            except KeyError:
                return Reply(False, E_BAD_ARGS, f"Resource {args['resource']} does not exist.")
        parsed = self._groups_and_timeout(args)
        if isinstance(parsed, Reply):
            return parsed
        groups, timeout = parsed
        if not args.get("group"):
            mine = [g for g in groups if self.mgr.coord.owner(g) == self.mgr.me]
            replies = await asyncio.gather(*(self._move_one(g, args.get("server"), timeout)
                                             for g in mine))  # together, within one timeout
            failed = [r for r in replies if not r.ok]
            return failed[0] if failed else Reply(True, OK, "", {"moved": mine})
        return await self._move_one(groups[0], args.get("server"), timeout)

    async def _move_one(self, g: str, server: str | None, timeout: float) -> Reply:
        r = await self.request("move", g, server)
        if not r["ok"]:
            return Reply(False, r["code"], r["message"])
        dest = (r.get("data") or {}).get("server") or server

        def moved() -> Reply | None:
            st = self._where(g).get(dest)
            if st == G.ONLINE:
                return Reply(True, 0, "", {"server": dest})
            if st == G.ONLINE_FAILURE:
                return Reply(False, E_FAILED, f"Group {g} failed to start on {dest}.")
            return None

        return await self._wait(moved, timeout, "Moving the group")

    # --- clprsc ---------------------------------------------------------------------------

    async def rsc_start(self, args: dict[str, Any]) -> Reply:
        return await self._rsc("start", args)

    async def rsc_stop(self, args: dict[str, Any]) -> Reply:
        return await self._rsc("stop", args)

    async def _rsc(self, op: str, args: dict[str, Any]) -> Reply:
        name, timeout = str(args.get("resource")), self._timeout(args)
        if isinstance(timeout, Reply):
            return timeout
        try:
            gc, _ = self.mgr.config.resource(name)
        except KeyError:
            return Reply(False, E_BAD_ARGS, f"Resource {name} does not exist.")
        owner = self.mgr.coord.owner(gc.name)
        runner = self.mgr.runners.get(gc.name)
        if runner is not None and runner.state in (G.ONLINE, G.ONLINE_FAILURE):
            owner = self.mgr.me
        if owner is None:
            return Reply(False, E_STATE, f"Group {gc.name} of resource {name} is not started.")
        if owner == self.mgr.me:
            return await self.local_rsc({"op": op, "resource": name, "timeout": timeout,
                                         "force": bool(args.get("force"))})
        sent = time.monotonic()
        r = await self.send(owner, "rsc", {"op": op, "resource": name, "timeout": timeout,
                                           "force": bool(args.get("force"))},
                            timeout=timeout + 5)
        if r is None and time.monotonic() - sent >= timeout:
            return Reply(False, E_TIMEOUT, f"Server {owner} did not answer the {op} of {name} "
                                           f"in {timeout:g} s.")
        if r is None:
            return Reply(False, E_NO_MASTER, f"Server {owner} cannot be reached.")
        return Reply(bool(r.get("ok")), int(r.get("code", E_FAILED)), str(r.get("message", "")))

    async def local_rsc(self, args: dict[str, Any]) -> Reply:
        """Start or stop one resource of a group this server runs (from ``clprsc`` here, or
        cluster RPC ``rsc`` from the server the operator used)."""
        op, name, timeout = args.get("op"), str(args.get("resource")), self._timeout(args)
        if isinstance(timeout, Reply):
            return timeout
        if op not in ("start", "stop"):
            return Reply(False, E_BAD_ARGS, f"Unknown resource operation {op!r}.")
        try:
            gc, _ = self.mgr.config.resource(name)
        except KeyError:
            return Reply(False, E_BAD_ARGS, f"Resource {name} does not exist.")
        runner = self.mgr.runners.get(gc.name)
        if runner is None or runner.state not in (G.ONLINE, G.ONLINE_FAILURE):
            return Reply(False, E_BAD_ARGS, f"Group {gc.name} of resource {name} is not run "
                                            f"by {self.mgr.me}.")
        out = runner.resource_op(str(op), name, with_deps=bool(args.get("force")))
        if out.step is None:
            return Reply(out.code == OK, out.code, out.lines[0] if out.lines else "")
        self.mgr.start(gc.name, out)
        try:
            await asyncio.wait_for(asyncio.shield(self.mgr.wait_idle(gc.name)), timeout)
        except TimeoutError:
            return Reply(False, E_TIMEOUT, f"The {op} of resource {name} did not finish in "
                                           f"{timeout:g} s.")
        want = ResourceState.ONLINE if op == "start" else ResourceState.OFFLINE
        if runner.resource_states()[name] != want:
            return Reply(False, E_FAILED, f"Resource {name} failed to {op}.")
        return Reply(True, OK, "")

    # --- clpdown, clpstdn -----------------------------------------------------------------

    async def down(self, args: dict[str, Any]) -> Reply:
        action = args.get("action", "shutdown")
        if action not in POWER_ACTIONS:
            return Reply(False, E_BAD_ARGS, f"Unknown power action {action!r}.")
        await self.on_down(str(action))
        return Reply(True, 0, "")

    async def cluster_shutdown(self, args: dict[str, Any]) -> Reply:
        action = args.get("action", "shutdown")
        if action not in POWER_ACTIONS:
            return Reply(False, E_BAD_ARGS, f"Unknown power action {action!r}.")
        r = await self.request("cluster_shutdown", None, None, action=action)
        if not r.get("ok"):
            return Reply(False, int(r.get("code", E_NO_MASTER)), str(r.get("message")))
        return Reply(True, 0, str(r.get("message", "")))

    async def _shutdown_cluster(self, action: str) -> None:
        """On the master: stop every group, then every server (this one last) powers off."""
        coord = self.mgr.coord
        for g in coord.groups:
            coord.request(time.monotonic(), "stop", g)

        def stopped() -> Reply | None:
            for g in coord.groups:
                if any(st not in GROUP_STOPPED_STATES for st in self._where(g).values()):
                    return None
            return Reply(True, 0, "")

        r = await self._wait(stopped, DEFAULT_TIMEOUT, "Stopping the groups")
        if not r.ok:
            log.error("cluster shutdown: %s; shutting down the servers anyway", r.message,
                      extra={"alert": True})
        for peer in self.mgr.online:
            if peer != self.mgr.me:
                await self.send(peer, "down", {"action": action})
        await self.on_down(action)
