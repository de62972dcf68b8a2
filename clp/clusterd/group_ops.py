"""The group operations of the control API (``clpgrp``, ``clprsc``, ``clpdown``, ``clpstdn``).

Every operation works on any server: a group request goes to the master (directly when this server
is the master, else over cluster RPC), a resource operation goes to the server running its group.
The reply comes when the operation has finished, as seen in the group reports this server
receives, or after ``timeout`` seconds (argument, default 300). Reply codes are those of
:mod:`clp.core.group_types` (0 success, 2 bad argument, 14 wrong state, 15 server not available,
16 timeout, 17 failed, 18 master unreachable).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from clp.clusterd.groups import GroupManager, Send
from clp.control.protocol import Reply
from clp.core.group_states import GROUP_STOPPED_STATES, GroupState, ResourceState
from clp.core.group_types import E_BAD_ARGS, E_FAILED, E_NO_MASTER, E_STATE, E_TIMEOUT

G = GroupState
DEFAULT_TIMEOUT = 300.0
POLL = 0.1
POWER_ACTIONS = ("shutdown", "reboot")


class GroupOps:
    def __init__(self, mgr: GroupManager, send: Send,
                 on_down: Callable[[str], Awaitable[None]]) -> None:
        self.mgr, self.send, self.on_down = mgr, send, on_down

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
            asyncio.ensure_future(self._shutdown_cluster(str(args.get("action"))))
            return {"ok": True, "code": 0, "message": "Shutting down the cluster."}
        coord.refresh(self.mgr.reports())
        answer = coord.request(time.monotonic(), str(args.get("op")), str(args.get("group")),
                               args.get("server"))
        intent = coord.intents.get(str(args.get("group")))
        server = intent.server if intent is not None else None
        return {"ok": answer.ok, "code": answer.code, "message": answer.message,
                "data": {"server": server}}

    async def _wait(self, done: Callable[[], Reply | None], timeout: float, what: str) -> Reply:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = done()
            if reply is not None:
                return reply
            await asyncio.sleep(POLL)
        return Reply(False, E_TIMEOUT, f"{what} did not finish in {timeout:g} s.")

    def _where(self, group: str) -> dict[str, GroupState]:
        return self.mgr.coord.where(group)

    # --- clpgrp ---------------------------------------------------------------------------

    def _groups(self, args: dict[str, Any]) -> list[str] | Reply:
        name = args.get("group")
        if name is None:
            return [g.name for g in self.mgr.config.groups]
        if name not in self.mgr.coord.groups:
            return Reply(False, E_BAD_ARGS, f"Group {name} does not exist.")
        return [str(name)]

    async def group_start(self, args: dict[str, Any]) -> Reply:
        groups = self._groups(args)
        if isinstance(groups, Reply):
            return groups
        accepted = []
        for g in groups:
            r = await self.request("start", g, args.get("server"))
            if r["ok"]:
                accepted.append(g)
            elif len(groups) == 1 or r["code"] not in (E_STATE,):
                return Reply(False, r["code"], r["message"])
        seen_want = set()

        def started() -> Reply | None:
            for g in accepted:
                where, intent = self._where(g), self.mgr.coord.intents[g]
                if intent.want:
                    seen_want.add(g)
                failed = [s for s, st in where.items() if st == G.ONLINE_FAILURE]
                if failed and not intent.want:
                    return Reply(False, E_FAILED, f"Group {g} failed to start on {failed[0]}.")
                if g in seen_want and not intent.want and not failed:
                    return Reply(False, E_FAILED, f"Group {g} could not start on any server.")
                if G.ONLINE not in where.values():
                    return None
            return Reply(True, 0, "", {"groups": {g: self.mgr.coord.owner(g) for g in groups}})

        return await self._wait(started, float(args.get("timeout", DEFAULT_TIMEOUT)),
                                "Starting the group")

    async def group_stop(self, args: dict[str, Any]) -> Reply:
        groups = self._groups(args)
        if isinstance(groups, Reply):
            return groups
        for g in groups:
            r = await self.request("stop", g, None)
            if not r["ok"] and (len(groups) == 1 or r["code"] != E_STATE):
                return Reply(False, r["code"], r["message"])

        def stopped() -> Reply | None:
            for g in groups:
                states = self._where(g).values()
                if any(st not in GROUP_STOPPED_STATES for st in states):
                    return None
                if G.OFFLINE_FAILURE in states:
                    return Reply(False, E_FAILED, f"Group {g} failed to stop.")
            return Reply(True, 0, "")

        return await self._wait(stopped, float(args.get("timeout", DEFAULT_TIMEOUT)),
                                "Stopping the group")

    async def group_move(self, args: dict[str, Any]) -> Reply:
        if not args.get("group"):
            return Reply(False, E_BAD_ARGS, "group_move needs a group.")
        groups = self._groups(args)
        if isinstance(groups, Reply):
            return groups
        g = groups[0]
        r = await self.request("move", g, args.get("server"))
        if not r["ok"]:
            return Reply(False, r["code"], r["message"])
        dest = (r.get("data") or {}).get("server") or args.get("server")

        def moved() -> Reply | None:
            st = self._where(g).get(dest)
            if st == G.ONLINE:
                return Reply(True, 0, "", {"server": dest})
            if st == G.ONLINE_FAILURE:
                return Reply(False, E_FAILED, f"Group {g} failed to start on {dest}.")
            return None

        return await self._wait(moved, float(args.get("timeout", DEFAULT_TIMEOUT)),
                                "Moving the group")

    # --- clprsc ---------------------------------------------------------------------------

    async def rsc_start(self, args: dict[str, Any]) -> Reply:
        return await self._rsc("start", args)

    async def rsc_stop(self, args: dict[str, Any]) -> Reply:
        return await self._rsc("stop", args)

    async def _rsc(self, op: str, args: dict[str, Any]) -> Reply:
        name = str(args.get("resource"))
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
        if owner != self.mgr.me:
            timeout = float(args.get("timeout", DEFAULT_TIMEOUT))
            r = await self.send(owner, "rsc", {"op": op, "resource": name, "timeout": timeout},
                                timeout=timeout + 5)
            if r is None:
                return Reply(False, E_NO_MASTER, f"Server {owner} cannot be reached.")
            return Reply(bool(r["ok"]), int(r["code"]), str(r["message"]))
        return await self.local_rsc(op, name)

    async def local_rsc(self, op: str, name: str) -> Reply:
        gc, _ = self.mgr.config.resource(name)
        runner = self.mgr.runners[gc.name]
        out = runner.resource_op(op, name)
        if out.step is None:
            msg = out.lines[0] if out.lines else ""
            return Reply("already" in msg, 0 if "already" in msg else E_STATE, msg)
        self.mgr.start(gc.name, out)
        await self.mgr.wait_idle(gc.name)
        want = ResourceState.ONLINE if op == "start" else ResourceState.OFFLINE
        if runner.resource_states()[name] != want:
            return Reply(False, E_FAILED, f"Resource {name} failed to {op}.")
        return Reply(True, 0, "")

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

        await self._wait(stopped, DEFAULT_TIMEOUT, "Stopping the groups")
        for peer in self.mgr.online:
            if peer != self.mgr.me:
                await self.send(peer, "down", {"action": action})
        await self.on_down(action)
