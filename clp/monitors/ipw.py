"""ipw (IP monitor): the network this server serves on still reaches something that is always up.

Each check sends an ICMP echo to every address of the list (the seed: the public LAN's gateway);
it is an error only when none of them answers. The same probe as the ping network partition
resolver (:mod:`clp.np.ping`): raw ICMP, replies matched by identifier and a random token, so
other pings on the machine cannot be taken for an answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from clp.monitors.base import Check, MonitorType, failed, normal
from clp.np import ping


class IpMonitor(MonitorType):
    name: ClassVar[str] = "ipw"
    schema: ClassVar[dict[str, Any]] = {
        "required": ["addresses"],
        "properties": {
            "addresses": {
                "type": "array", "minItems": 1, "uniqueItems": True,
                "items": {"type": "string", "format": "ping-target",
                          "x-apply": "suspend_monitors"},
                "x-apply": "suspend_monitors",
            },
            # seconds to wait for an echo reply, per check
            "ping_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 1,
                             "x-apply": "suspend_monitors"},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 30, "timeout": 30, "retry": 0}
    default_recovery: ClassVar[str] = ""  # the seed's ipw1 names All Groups

    def check(self) -> Check:
        targets = list(self.params["addresses"])
        wait = min(float(self.params["ping_timeout"]), self.ctx.limit())
        try:
            answered = asyncio.run(ping.probe(targets, wait, 0))
        except OSError as e:
            return failed(f"cannot send ICMP echo: {e}")
        if answered:
            return normal()
        return failed(f"no answer from {', '.join(targets)} within {wait:g} s")
