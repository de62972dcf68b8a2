"""The values the coordinator exchanges: server reports, commands, answers, intents, reply codes.

Kept apart from :mod:`clp.core.coordinator` so the daemon and the peer protocol can import them
without the decision logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clp.core.group_states import GroupState

EVENTS = ("START", "FAILOVER", "MOVE", "FAILBACK", "STOP", "RECOVER")

# Reply codes of operator requests (the command's exit code).
OK = 0
E_BAD_ARGS = 2  # unknown group, server, resource or operation; server not in the policy
E_INTERNAL = 11  # the handler of a request failed (a bug): see the daemon's log
E_STATE = 14  # already started, already stopped, not online, in a failure state
E_SERVER = 15  # the server is not online, or no server can take the group
E_TIMEOUT = 16  # the operation did not finish in time (daemon)
E_FAILED = 17  # the operation ended in a failure state (daemon)
E_NO_MASTER = 18  # the master (or the server running the group) could not be reached (daemon)
E_SUSPENDED = 19  # the cluster is suspended: groups and resources cannot be operated


class GroupSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def servers(self) -> tuple[str, ...]: ...
    @property
    def start(self) -> str: ...
    @property
    def failback(self) -> str: ...
    @property
    def exclusive(self) -> str: ...


@dataclass(frozen=True)
class ServerReport:
    """What one server says about itself: the state of each group on it."""

    groups: Mapping[str, GroupState]
    # groups to move away from there: their activation gave up, or a monitor asked for it
    failover: frozenset[str] = frozenset()
    intents: Mapping[str, Any] | None = None  # sent by the master: its intent table
    leaving: bool = False  # its cluster service is stopping: place nothing there
    failover_reasons: Mapping[str, str] = field(default_factory=dict)  # group -> why


@dataclass(frozen=True)
class Command:
    kind: str  # activate | deactivate
    group: str
    server: str
    event: str  # one of EVENTS
    reason: str


@dataclass(frozen=True)
class Answer:
    ok: bool
    code: int
    message: str


@dataclass
class Intent:
    want: bool = False  # should run somewhere
    server: str | None = None  # requested destination (start on, move, failback)
    event: str | None = None  # event of the next command
    stopped: bool = False  # stopped by the operator
    failed: set[str] = field(default_factory=set)  # servers that failed it in this round
    cause: str = ""  # why it is to start (cluster start, operator), for the command's reason
    # servers a monitor moved it away from in this round: placed there again only when no
    # other server can take it (a monitor's failover must not leave the group stopped)
    avoid: set[str] = field(default_factory=set)
