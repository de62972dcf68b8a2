"""How long a takeover waits for the watchdog of the server it takes over from.

A server whose ``userw`` feeds a kernel watchdog (``method: softdog`` or ``ipmi``) is reset by
its kernel when its cluster service stops being scheduled: userw feeds the device only while the
service's heartbeat loop runs (clp.monitors.userw). A hung server's kernel still answers ARP for
its floating IPs and writes its dirty pages to the shared disk, so its groups may start elsewhere
only once the watchdog has reset it. The watchdog fires a device timeout after the last feed,
and userw feeds only while the last heartbeat round is at most ``FEED_LAG`` heartbeat
intervals old, so a hang that begins at ``h`` ends in a reset by::

    h + device timeout                   (scaled by clptoratio, in whole seconds)
      + FEED_LAG heartbeat intervals     (the last feed after the last round)
      + 1 heartbeat interval             (the reset itself, and a heartbeat in flight)

When may the hang have begun? Not only when the heartbeats stopped: with a one-way loss (the
peers no longer hear the server, it still hears them) the server holds its groups legitimately
until it sees a peer declare it down, and it may hang at any moment until then, just before the
peers' verdict. So the takeover of its groups waits that whole span after the verdict
(clp.core.partition, ``grace``): the device timeout plus three intervals, paid on every failover
from that server, the price of never running a group beside a frozen owner. (An earlier rule
counted from the last heartbeat, device timeout - heartbeat timeout + 3 intervals; the partition
simulation found the one-way loss followed by a hang that it let through.) Won at the witness,
the lost server may also hold on its renewals until its lease runs out, and hang then: a lease
more. A server without a watchdog (``keepalive``) is fenced only when it runs again (the
service's hang fence), so nothing waits for it (docs/monitors.md).
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
    margin: float  # the feeding lag and the reset: fixed

    @classmethod
    def of(cls, monitor_timeout: float, hb_interval: float) -> WatchdogWait:
        """The wait for a userw of ``monitor_timeout`` on a heartbeat of that interval."""
        return cls(monitor_timeout, (FEED_LAG + 1) * hb_interval)

    def wait(self, ratio: float = 1.0) -> float:
        """Seconds from the start of a hang to the reset, at the latest, with the
        ``clptoratio`` ratio in force (userw sets the device to its timeout times the ratio,
        in whole seconds)."""
        return device_timeout(self.monitor_timeout * ratio) + self.margin


def device_timeout(limit: float) -> int:
    """The whole seconds a watchdog device is set to for a check timeout of ``limit``."""
    return max(1, round(limit))


def watchdog_waits(config: ClusterConfig) -> dict[str, WatchdogWait]:
    """Per server, the wait for its watchdog; servers without one are not in it."""
    out: dict[str, WatchdogWait] = {}
    hb_interval = config.heartbeat_interval
    for mc in config.monitors:
        if mc.type != "userw" or mc.params.get("method") not in WATCHDOG_METHODS:
            continue
        w = WatchdogWait.of(mc.timeout, hb_interval)
        for server in mc.servers:
            if server not in out or w.wait() > out[server].wait():
                out[server] = w
    return out
