"""How long a takeover waits for the watchdog of the server it takes over from.

A server whose ``userw`` feeds a kernel watchdog (``method: softdog`` or ``ipmi``) is reset by
its kernel when its cluster service stops being scheduled: userw feeds the device only while the
service's heartbeat loop runs (clp.monitors.userw). A hung server's kernel still answers ARP for
its floating IPs and writes its dirty pages to the shared disk, so its groups may start elsewhere
only once the watchdog has reset it. Its peers declare it down a heartbeat timeout after its last
heartbeat; the watchdog fires a device timeout after its last feed, and userw feeds only while
the last heartbeat round is at most ``FEED_LAG`` heartbeat intervals old. So the takeover of its
groups waits (clp.core.partition, ``grace``)::

    device timeout - heartbeat timeout   (scaled like both by clptoratio; may be negative)
    + FEED_LAG heartbeat intervals       (the last feed after the last round)
    + 1 heartbeat interval               (the reset itself, and a heartbeat in flight)

at least 0. With the product's defaults (userw on the heartbeat's timing) that is three
intervals, paid on every failover from that server: the price of never running a group beside a
frozen owner. A server without a watchdog (``keepalive``) is fenced only when it runs again
(the service's hang fence), so nothing waits for it (docs/monitors.md).

That counts from a loss the hang caused. Witness arbitration also takes over a server lost for
another reason (cut off, or never heard), which may hang at any time until its lease runs out,
and then holds its groups until its watchdog fires, the device timeout plus the same margin
after the hang began (:meth:`WatchdogWait.after_hang`).
"""

from __future__ import annotations

from dataclasses import dataclass

from clp.config.model import ClusterConfig

WATCHDOG_METHODS = ("softdog", "ipmi")
FEED_LAG = 2  # heartbeat intervals: userw feeds only while the last round is at most this old


@dataclass(frozen=True)
class WatchdogWait:
    """What a takeover from one server waits for its watchdog (see the module)."""

    monitor_timeout: float  # userw's timeout; the device gets it in whole seconds
    heartbeat_timeout: float
    margin: float  # the feeding lag and the reset: fixed

    @classmethod
    def of(cls, monitor_timeout: float, hb_interval: float, hb_timeout: float) -> WatchdogWait:
        """The wait for a userw of ``monitor_timeout`` on a heartbeat of that timing."""
        return cls(monitor_timeout, hb_timeout, (FEED_LAG + 1) * hb_interval)

    def wait(self, ratio: float = 1.0) -> float:
        """With the ``clptoratio`` ratio in force: userw sets the device to its timeout times
        the ratio (in whole seconds), the peers time out after the heartbeat timeout times it."""
        return max(0.0, device_timeout(self.monitor_timeout * ratio)
                   - self.heartbeat_timeout * ratio + self.margin)


    def after_hang(self, ratio: float = 1.0) -> float:
        """Seconds from the start of a hang to the reset, at the latest: the last feed comes
        at most ``FEED_LAG`` intervals after the last round, then the device's timeout."""
        return device_timeout(self.monitor_timeout * ratio) + self.margin


def device_timeout(limit: float) -> int:
    """The whole seconds a watchdog device is set to for a check timeout of ``limit``."""
    return max(1, round(limit))


def watchdog_waits(config: ClusterConfig) -> dict[str, WatchdogWait]:
    """Per server, the wait for its watchdog; servers without one are not in it."""
    out: dict[str, WatchdogWait] = {}
    hb_interval, hb_timeout = config.heartbeat_interval, config.heartbeat_timeout
    for mc in config.monitors:
        if mc.type != "userw" or mc.params.get("method") not in WATCHDOG_METHODS:
            continue
        w = WatchdogWait.of(mc.timeout, hb_interval, hb_timeout)
        for server in mc.servers:
            if server not in out or w.wait() > out[server].wait():
                out[server] = w
    return out
