"""What every monitor resource type implements, and what one check of it returns.

A monitor type is one class in ``clp/monitors/<type>.py``: its name, its own parameters (the
schema fragment, with defaults), the defaults of the common keys it differs in (interval,
timeout, retry, timing), the timings the seed allows for it, and ``check()``: one probe of the
monitored object, run in a worker thread by :mod:`clp.monitors.runner`, which bounds it by the
monitor's timeout and ends the processes it started when that passes.

Retries, intervals, the timeout ratio, Caution and Error, counting and logging on edges, and the
whole recovery chain are not a type's business: the runner, the pure core
(:mod:`clp.core.monitor_recovery`) and the daemon's monitor manager own them.

One instance per configured monitor on this server, so a type may keep what it learns between
checks (psw's process ids, genw's asynchronous script). ``begin``/``end`` run when monitoring of
it starts and stops (also in a worker thread).
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from clp.config.issues import ConfigIssue
from clp.paths import InstallRoot

if TYPE_CHECKING:
    from clp.config.model import ClusterConfig


class Health(enum.Enum):
    """What one check found (the runner adds timeouts; the core makes states of them)."""

    NORMAL = "Normal"
    CAUTION = "Caution"  # something is wrong, but not what the monitor recovers from
    ERROR = "Error"
    UNKNOWN = "Unknown"  # the check itself broke (a bug): nothing is known, nothing recovered


@dataclass(frozen=True)
class Check:
    health: Health
    reason: str = ""
    # the check did not finish in its timeout: set by the runner, or by a type whose own
    # bound on what it waits for passed (genw's script)
    timed_out: bool = False
    elapsed: float = 0.0  # set by the runner: seconds the check took

    @property
    def ok(self) -> bool:
        return self.health is Health.NORMAL


def normal(reason: str = "") -> Check:
    return Check(Health.NORMAL, reason)


def caution(reason: str) -> Check:
    return Check(Health.CAUTION, reason)


def failed(reason: str) -> Check:
    return Check(Health.ERROR, reason)


Params = Mapping[str, Any]


@dataclass(frozen=True)
class MonitorContext:
    """Where a monitor runs; built once per monitor by the monitor manager."""

    cluster: str
    server: str  # this server
    monitor: str
    target: str | None  # the monitored resource (active timing, and fipw / pidw)
    root: InstallRoot
    config: ClusterConfig
    log: logging.Logger
    interval: float
    timeout: float  # as configured; what a check may take now is ``limit()``
    # monitor name -> its state on this server (the product's words), for mtw
    states: Callable[[], Mapping[str, str]] = field(default=lambda: {})
    ratio: Callable[[], float] = field(default=lambda: 1.0)  # the clptoratio ratio now

    def limit(self) -> float:
        """The timeout times the ``clptoratio`` ratio: what the runner allows a check now, and
        so what a type may wait for inside it."""
        return self.timeout * max(1.0, float(self.ratio()))

    @property
    def scripts_dir(self) -> Path:
        """scripts/monitor.s/<monitor>/ next to clp.conf, as the product keeps genw.sh."""
        return self.root.config_dir / "scripts" / "monitor.s" / self.monitor


class MonitorType(ABC):
    """One monitor type. Class attributes describe it; an instance monitors one object."""

    name: ClassVar[str]
    # the type's own parameters: {"properties": {...}, "required": [...]}, with defaults
    schema: ClassVar[dict[str, Any]] = {"properties": {}}
    # defaults of the common keys where this type differs (interval, timeout, retry, timing)
    defaults: ClassVar[dict[str, Any]] = {}
    # the monitor timings the seed allows ("monitorable range": always, active)
    timings: ClassVar[tuple[str, ...]] = ("always", "active")
    # resource types its target may have (empty: any); a type that needs a target says so
    target_types: ClassVar[tuple[str, ...]] = ()
    needs_target: ClassVar[bool] = False
    # the recovery target when clp.conf names none: "group" (of the target resource),
    # "resource" (the target itself), "local_server", or "" (clp.conf must name it)
    default_recovery: ClassVar[str] = "group"
    # recovery thresholds and final action where this type differs from the common defaults
    recovery_defaults: ClassVar[dict[str, Any]] = {}
    # False: not checked every interval; errors are reported to it (mrw)
    polled: ClassVar[bool] = True
    # clpmonctrl -e (pseudo failure) may be used on it
    pseudo_failure: ClassVar[bool] = True

    def inline(self) -> bool:
        """Whether this monitor's check never blocks (no I/O that can hang, no process, no
        lock): it then runs on the event loop, without the hop to a worker thread and back
        (userw checks at the heartbeat's interval: ten hops a second at 0.1 s)."""
        return False

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        """This type's rules that need more of clp.conf than the monitor itself."""
        return iter(())

    @classmethod
    def recovery_defaults_of(cls, item: Mapping[str, Any]) -> dict[str, Any]:
        """The recovery defaults for one configured monitor of this type."""
        return dict(cls.recovery_defaults)

    @classmethod
    def timing_of(cls, item: Mapping[str, Any], heartbeat: Mapping[str, Any]
                  ) -> tuple[float, float]:
        """(interval, timeout) of one configured monitor (userw may take the heartbeat's)."""
        return float(item["interval"]), float(item["timeout"])

    @classmethod
    def scripts(cls, item: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(parameter, script) of the scripts it runs, checked by clpcfchk: a relative name is
        in scripts/monitor.s/<monitor>/."""
        return []

    def __init__(self, params: Params, ctx: MonitorContext) -> None:
        self.params = params
        self.ctx = ctx

    def begin(self) -> None:  # noqa: B027 - optional: most types keep nothing between checks
        """Monitoring of this object starts (worker thread, bounded by the timeout)."""

    def end(self) -> None:  # noqa: B027
        """Monitoring stops (worker thread, bounded by the timeout)."""

    @abstractmethod
    def check(self) -> Check:
        """One probe (worker thread, bounded by the timeout; never called concurrently)."""
