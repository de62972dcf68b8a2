"""Operator requests to the coordinator (``clpgrp -s/-t/-m``): they change a group's intent,
which the next decision carries out. Mixed into :class:`clp.core.coordinator.Coordinator`; pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clp.core.group_states import GroupState
from clp.core.group_types import E_BAD_ARGS, E_SERVER, E_STATE, OK, Answer, GroupSpec, Intent
from clp.core.placement import busy_with, target_server

G = GroupState


class OperatorRequests:
    """The coordinator's state these requests read and change (see its ``__init__``)."""

    groups: dict[str, GroupSpec]
    intents: dict[str, Intent]
    pending: dict[str, Any]
    reasons: dict[str, str]
    _online: list[str]
    _leaving: set[str]
    _joined: dict[str, list[str]]
    _where: dict[str, dict[str, GroupState]]
    _restop: set[str]
    stranded: dict[str, str]

    # defined by the coordinator
    def owner(self, group: str) -> str | None: raise NotImplementedError
    def _active_map(self) -> dict[str, str]: raise NotImplementedError
    def _exclusive(self) -> Mapping[str, str]: raise NotImplementedError

    def request(self, now: float, op: str, group: str, server: str | None = None,
                force: bool = False) -> Answer:
        """``force`` (``clpgrp -s -f``): start a group stranded by a server that stopped with it
        in Offline Failure (the operator has released its resources there)."""
        spec = self.groups.get(group)
        if spec is None:
            return Answer(False, E_BAD_ARGS, f"Group {group} does not exist.")
        if server is not None and server not in spec.servers:
            return Answer(False, E_BAD_ARGS,
                          f"Server {server} is not in the failover policy of group {group}.")
        if server is not None and (server not in self._online or server in self._leaving):
            return Answer(False, E_SERVER, f"Server {server} is not online.")
        if server is not None and op in ("start", "move") and \
                self._exclusive().get(group) == "absolute":
            others = {g: s for g, s in self._active_map().items() if g != group}
            busy = busy_with(group, server, "absolute", others, self._exclusive())
            if busy:  # named or not, never two absolute-exclusive groups on one server
                return Answer(False, E_SERVER, f"Server {server} runs absolute-exclusive group "
                                               f"{'/'.join(busy)}; group {group} cannot start "
                                               f"there.")
        handler = {"start": self._req_start, "stop": self._req_stop, "move": self._req_move}
        if op not in handler:
            return Answer(False, E_BAD_ARGS, f"Unknown group operation {op!r}.")
        stranded = self.stranded.get(group)
        if op == "start" and stranded is not None and stranded not in self._online:
            if not force:
                return Answer(False, E_STATE, (
                    f"Group {group} was in Offline Failure on {stranded} when its cluster "
                    f"service stopped: a resource may still be active there. Release it, then "
                    f"start the group with -f."))
            answer = handler[op](spec, server)
            if answer.ok:  # the operator released it: the group may start again
                del self.stranded[group]
            return answer
        return handler[op](spec, server)

    def _req_start(self, spec: GroupSpec, server: str | None) -> Answer:
        owner = self.owner(spec.name)
        if owner is not None:
            state = self._where[spec.name][owner]
            if state in (G.ONLINE_FAILURE, G.OFFLINE_FAILURE):
                return Answer(False, E_STATE, f"Group {spec.name} is in {state.value} on "
                                              f"{owner}; stop it first.")
            return Answer(False, E_STATE, f"Group {spec.name} is already started on {owner}.")
        cause = f"started by the operator{f' on {server}' if server else ''}"
        self.intents[spec.name] = Intent(True, server, "START", False, set(), cause)
        self.reasons[spec.name] = cause
        return Answer(True, OK, f"Starting group {spec.name}.")

    def _req_stop(self, spec: GroupSpec, server: str | None) -> Answer:
        owner, intent = self.owner(spec.name), self.intents[spec.name]
        if owner is None and not intent.want:
            return Answer(False, E_STATE, f"Group {spec.name} is already stopped.")
        self.intents[spec.name] = Intent(False, None, "STOP", True, set())
        self.pending.pop(spec.name, None)
        if owner is not None and self._where[spec.name][owner] == G.OFFLINE_FAILURE:
            self._restop.add(spec.name)  # deactivate it once more
        self.reasons[spec.name] = "stopped by the operator"
        return Answer(True, OK, f"Stopping group {spec.name}.")

    def _req_move(self, spec: GroupSpec, server: str | None) -> Answer:
        owner = self.owner(spec.name)
        if owner is None or self._where[spec.name][owner] != G.ONLINE:
            return Answer(False, E_STATE, f"Group {spec.name} is not online.")
        if server == owner:
            return Answer(False, E_STATE, f"Group {spec.name} is already online on {server}.")
        if server is None:
            others = {g: s for g, s in self._active_map().items() if g != spec.name}
            cands = [s for s in self._online if s != owner and s not in self._leaving]
            server, _ = target_server(spec, cands, others, self._exclusive())
            if server is None:
                return Answer(False, E_SERVER, f"No server can take group {spec.name}.")
        intent = self.intents[spec.name]
        intent.want, intent.server, intent.event, intent.stopped = True, server, "MOVE", False
        intent.failed.clear()
        intent.avoid.clear()
        self._joined[spec.name] = []
        self.reasons[spec.name] = f"moved by the operator to {server}"
        return Answer(True, OK, f"Moving group {spec.name} to {server}.")
