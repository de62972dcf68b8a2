"""What every group resource type implements, and what its operations return.

Results are data, never exceptions (Pacemaker's three parts): did it run (``Status``), what it
answered (``code``), and why (``reason``, a sentence for the log and clpstat). Timeouts, retries
and the final action are not a type's business: the runner and the group logic own them.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from clp.paths import InstallRoot

# The values an exec script sees in CLP_EVENT (the product's): START, FAILOVER, RECOVER. The
# group logic's own events (clp.core.group_types: MOVE, FAILBACK, STOP...) reach a script mapped
# onto these by ``script_event``.
SCRIPT_EVENTS = ("START", "FAILOVER", "RECOVER")


def script_event(event: str, stopping: bool) -> str:
    """The CLP_EVENT a script sees for the group event ``event`` (see docs/resources.md).

    A start script: FAILOVER and RECOVER as they are, every other start (a plain start, a move, a
    failback) is START. A stop script: FAILOVER when the group stops for a failover, else START.
    """
    if stopping:
        return "FAILOVER" if event == "FAILOVER" else "START"
    return event if event in SCRIPT_EVENTS else "START"


class Status(enum.Enum):
    DONE = "done"
    TIMEOUT = "timeout"
    ERROR = "error"
    ERROR_HARD = "error_hard"  # retrying cannot help (bad configuration, missing device)
    NOT_INSTALLED = "not_installed"


@dataclass(frozen=True)
class Result:
    status: Status
    code: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.DONE


def done(reason: str = "") -> Result:
    return Result(Status.DONE, 0, reason)


def error(reason: str, code: int = 1, hard: bool = False) -> Result:
    return Result(Status.ERROR_HARD if hard else Status.ERROR, code, reason)


@dataclass(frozen=True)
class Context:
    """Where and why an operation runs; built by the caller (the group logic) per operation."""

    cluster: str
    server: str  # this server
    group: str
    resource: str
    event: str  # the group event (clp.core.group_types.EVENTS); scripts see script_event()
    home: bool  # this server is first in the group's failover policy
    priority: int  # 1-based position of this server in the policy
    failover_servers: tuple[str, ...]
    root: InstallRoot
    scripts_dir: Path  # root.config_dir / "scripts" / group / resource
    log: logging.Logger

    @classmethod
    def for_group(
        cls, *, cluster: str, server: str, group: str, resource: str, event: str,
        servers: tuple[str, ...], root: InstallRoot, log: logging.Logger,
    ) -> Context:
        """Derive ``home``/``priority``/``scripts_dir`` from the group's policy."""
        priority = servers.index(server) + 1 if server in servers else len(servers) + 1
        return cls(cluster, server, group, resource, event, priority == 1, priority, servers,
                   root, root.config_dir / "scripts" / group / resource, log)


Params = Mapping[str, Any]


class ResourceType(ABC):
    """One resource type. ``schema`` is the object schema of its parameters, with defaults."""

    name: ClassVar[str]
    schema: ClassVar[dict[str, Any]]

    @abstractmethod
    def start(self, params: Params, ctx: Context) -> Result: ...

    @abstractmethod
    def stop(self, params: Params, ctx: Context) -> Result: ...

    @abstractmethod
    def probe(self, params: Params, ctx: Context) -> bool | None:
        """Is the resource active on this server now? (re-adopts it after a clusterpro restart);
        ``None`` when the type cannot tell."""
