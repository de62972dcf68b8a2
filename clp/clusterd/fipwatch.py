"""The floating IPs of a late server are watched before it is declared down.

A floating IP's start first checks that nobody answers for the address (``ping_check``; the
product's behaviour): a probe that waits ``check_timeout`` (0.1 s) for an answer. On a crash
failover that wait came after the detection. Here, once the server that last ran a group has
been silent for a while (:func:`late_fips`: long enough that a heartbeat was missed, late enough
that the watch has ``check_timeout`` to run before the timeout), this server probes the
group's floating IPs in the background (:class:`clp.platform.arp.Watch`); when the group then
starts here, the check needs only a last short probe, and the full probe is still made when the
watch heard an answer lately or did not run long enough. A half-dead server that still answers
ARP is caught by the watch or the last probe, as by the single probe.

The watches stop when the server is heard again, when the group runs elsewhere, and at the
latest ``LINGER`` seconds after the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from clp import platform
from clp.config.model import GroupConfig
from clp.platform.linux import PlatformError

log = logging.getLogger("clp.rc")

LINGER = 10.0  # seconds after the timeout a watch may still be needed (resolution, sync)
PROBES_PER_WINDOW = 4  # probes sent per check_timeout while watching


def late_fips(me: str, groups: Sequence[GroupConfig], last_owner: Mapping[str, str | None],
              silence: Mapping[str, float], interval: float, timeout: float
              ) -> tuple[dict[str, float], float | None]:
    """The floating IPs (ip -> check_timeout) to watch now: those of the groups this server
    may run whose last owner is another server silent for longer than ``start`` (a missed
    heartbeat, and at least the check's time plus two rounds before the timeout) and for less
    than the timeout plus LINGER; and in how many seconds the next one is due if its owner
    stays silent (None: none is)."""
    out: dict[str, float] = {}
    due: list[float] = []
    for g in groups:
        owner = last_owner.get(g.name)
        if me not in g.servers or owner in (None, me) or owner not in silence:
            continue
        quiet = silence[owner]
        for rc in g.resources:
            if rc.type != "fip" or not rc.params["ping_check"]:
                continue
            window = float(rc.params["check_timeout"])
            start = max(1.5 * interval, timeout - window - 2 * interval)
            if start < quiet <= timeout + LINGER:
                out[str(rc.params["ip"])] = window
            elif quiet <= start:
                due.append(start - quiet)
    return out, min(due, default=None)


class FipWatch:
    """Keeps the platform's address watches equal to :func:`late_fips` (called each round)."""

    def __init__(self, me: str, groups: Sequence[GroupConfig], interval: float) -> None:
        self.me, self.groups, self.interval = me, list(groups), interval
        self._current: dict[str, float] = {}
        self._ifaces: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.enabled = any(rc.type == "fip" and rc.params["ping_check"]
                           for g in self.groups if me in g.servers for rc in g.resources)

    def update(self, last_owner: Mapping[str, str | None], silence: Mapping[str, float],
               timeout: float) -> float | None:
        """Start and stop watches as :func:`late_fips` says; in how many seconds to ask again
        (None: at the next heartbeat round is soon enough)."""
        if not self.enabled:
            return None
        wanted, due = late_fips(self.me, self.groups, last_owner, silence, self.interval,
                                timeout)
        if wanted != self._current and (self._task is None or self._task.done()):
            self._current = wanted  # (a change still being made: the next call retries)
            self._task = asyncio.ensure_future(
                asyncio.to_thread(self._apply, dict(wanted), timeout))
        return due

    def _apply(self, wanted: dict[str, float], timeout: float) -> None:
        """In a thread: the interface of each address (``ip addr``), then the watches."""
        host = platform.current()
        ifaces = {}
        for ip in wanted:
            iface = self._ifaces.get(ip)
            if iface is None:
                try:
                    found = host.interface_for(ip)
                except PlatformError as e:
                    log.warning("cannot watch %s ahead of its start: %s", ip, e)
                    continue
                if found is None:
                    continue  # no subnet here: its start will say so
                iface = self._ifaces[ip] = found[0]
            ifaces[ip] = iface
        period = min(wanted.values(), default=0.1) / PROBES_PER_WINDOW
        failed = host.watch_addresses(ifaces, period, timeout + LINGER)
        for ip in failed:
            log.warning("cannot watch %s on %s ahead of its start: its check will wait the "
                        "full time", ip, ifaces[ip])
        if wanted:
            log.info("a server is late: watching %s ahead of a takeover", ", ".join(sorted(ifaces)))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.enabled:
            with contextlib.suppress(Exception):
                platform.current().watch_addresses({}, 1.0, 0.0)
