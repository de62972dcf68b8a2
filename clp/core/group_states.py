"""Group and resource states, with the product's names, and their transition tables.

Two state machines, both data: an enum, named state sets, a table ``state -> allowed next states``
and one ``change_state()`` per machine that refuses an edge not in the table (a bug in the core,
not an input error) and returns the log line ``"old -> new (cause)"``.

Group edges::

    Offline          -> Online Pending        activation starts
    Offline Failure  -> Online Pending        activation after a failed deactivation (operator)
    Offline Failure  -> Offline Pending       deactivation retried
    Online Pending   -> Online                every resource started
    Online Pending   -> Online Failure        activation gave up (failover, final action)
    Online           -> Offline Pending       deactivation starts
    Online           -> Online Failure        a resource failed while running (monitors)
    Online Failure   -> Offline Pending       deactivation (stop, failover, move)
    Online Failure   -> Online                every resource Online again (clprsc -s)
    Offline Pending  -> Offline               every resource stopped
    Offline Pending  -> Offline Failure       a resource did not stop
    Offline Pending  -> Online Pending        a restart: every resource stopped, start again
    Online           -> Online Pending        a restart of some resources: they start again
    Online Failure   -> Online Pending        the same, after a resource had failed
    Unknown          -> Offline | Online | Online Failure    re-adoption after clusterpro start

Resource edges are the same, plus ``Online Failure -> Online Pending`` (activation retry).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Protocol


class GroupState(enum.Enum):
    OFFLINE = "Offline"
    ONLINE_PENDING = "Online Pending"
    ONLINE = "Online"
    OFFLINE_PENDING = "Offline Pending"
    ONLINE_FAILURE = "Online Failure"
    OFFLINE_FAILURE = "Offline Failure"
    UNKNOWN = "Unknown"


class ResourceState(enum.Enum):
    OFFLINE = "Offline"
    ONLINE_PENDING = "Online Pending"
    ONLINE = "Online"
    OFFLINE_PENDING = "Offline Pending"
    ONLINE_FAILURE = "Online Failure"
    OFFLINE_FAILURE = "Offline Failure"
    UNKNOWN = "Unknown"


G, R = GroupState, ResourceState

# A deactivation has ended in one of these states (successfully or not).
GROUP_STOPPED_STATES: frozenset[GroupState] = frozenset({G.OFFLINE, G.OFFLINE_FAILURE})
# Only in these states is nothing of the group running on a server, so that it may be activated
# elsewhere. Offline Failure is not one: a resource failed to stop (a disk still mounted), so the
# group stays where it failed, like Online Failure, until the operator stops it again
# (``clpgrp -t``) or the server leaves the cluster.
GROUP_FREE_STATES: frozenset[GroupState] = frozenset({G.OFFLINE})
GROUP_BUSY_STATES: frozenset[GroupState] = frozenset({G.ONLINE_PENDING, G.OFFLINE_PENDING})

GROUP_EDGES: Mapping[GroupState, frozenset[GroupState]] = {
    G.OFFLINE: frozenset({G.ONLINE_PENDING}),
    G.OFFLINE_FAILURE: frozenset({G.ONLINE_PENDING, G.OFFLINE_PENDING}),
    G.ONLINE_PENDING: frozenset({G.ONLINE, G.ONLINE_FAILURE}),
    G.ONLINE: frozenset({G.OFFLINE_PENDING, G.ONLINE_FAILURE, G.ONLINE_PENDING}),
    G.ONLINE_FAILURE: frozenset({G.OFFLINE_PENDING, G.ONLINE, G.ONLINE_PENDING}),
    G.OFFLINE_PENDING: frozenset({G.OFFLINE, G.OFFLINE_FAILURE, G.ONLINE_PENDING}),
    G.UNKNOWN: frozenset({G.OFFLINE, G.ONLINE, G.ONLINE_FAILURE}),
}

RESOURCE_EDGES: Mapping[ResourceState, frozenset[ResourceState]] = {
    R.OFFLINE: frozenset({R.ONLINE_PENDING}),
    R.OFFLINE_FAILURE: frozenset({R.ONLINE_PENDING, R.OFFLINE_PENDING}),
    R.ONLINE_PENDING: frozenset({R.ONLINE, R.ONLINE_FAILURE}),
    R.ONLINE: frozenset({R.OFFLINE_PENDING, R.ONLINE_FAILURE}),
    R.ONLINE_FAILURE: frozenset({R.ONLINE_PENDING, R.OFFLINE_PENDING}),
    R.OFFLINE_PENDING: frozenset({R.OFFLINE, R.OFFLINE_FAILURE}),
    R.UNKNOWN: frozenset({R.OFFLINE, R.ONLINE}),
}


class IllegalTransition(RuntimeError):
    """An edge that is not in the transition table: a bug in the caller."""


class _HasGroupState(Protocol):
    name: str
    state: GroupState


class _HasResourceState(Protocol):
    name: str
    state: ResourceState


def _change(obj: _HasGroupState | _HasResourceState, new: enum.Enum,
            table: Mapping, what: str, cause: str) -> str:
    old = obj.state
    if new not in table[old]:
        raise IllegalTransition(f"{what} {obj.name}: illegal transition {old.value} -> "
                                f"{new.value} ({cause})")
    obj.state = new  # type: ignore[assignment]
    return f"{what} {obj.name}: {old.value} -> {new.value} ({cause})"


def change_group_state(obj: _HasGroupState, new: GroupState, cause: str) -> str:
    """Move a group to ``new``; returns the log line, raises :class:`IllegalTransition`."""
    return _change(obj, new, GROUP_EDGES, "group", cause)


def change_resource_state(obj: _HasResourceState, new: ResourceState, cause: str) -> str:
    """Move a resource to ``new``; returns the log line, raises :class:`IllegalTransition`."""
    return _change(obj, new, RESOURCE_EDGES, "resource", cause)
