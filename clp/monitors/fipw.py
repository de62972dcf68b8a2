"""fipw (floating IP monitor): the floating IP of a running fip resource is still on this server.

Active while its fip resource is Online here. An error when the address is gone from every
interface (removed by hand, lost with a NIC) or, with ``monitor_link``, when the NIC carrying it
has no link. The product creates one fipw per floating IP, recovering by a failover of the fip's
group (the seed's fipw1 / fipw2), and so does clp when clp.conf does not name one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clp import platform
from clp.monitors.base import Check, MonitorType, failed, normal
from clp.platform.linux import PlatformError


class FipMonitor(MonitorType):
    name: ClassVar[str] = "fipw"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            # the product's "Monitor NIC Link Up/Down" (parameters/monmii)
            "monitor_link": {"type": "boolean", "default": False,
                             "x-apply": "suspend_monitors"},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 60, "timeout": 60, "retry": 1,
                                          "timing": "active"}
    timings: ClassVar[tuple[str, ...]] = ("active",)
    target_types: ClassVar[tuple[str, ...]] = ("fip",)
    needs_target: ClassVar[bool] = True
    recovery_defaults: ClassVar[dict[str, Any]] = {"reactivation_threshold": 0}

    def check(self) -> Check:
        _group, rc = self.ctx.config.resource(str(self.ctx.target))
        ip = rc.params["ip"]
        host = platform.current()
        try:
            nic = host.has_address(ip)
            if nic is None:
                return failed(f"{ip} is not on any interface of {self.ctx.server}")
            if self.params["monitor_link"] and not host.link_up(nic):
                return failed(f"{ip}: {nic} has no link")
        except PlatformError as e:
            return failed(f"cannot read the addresses of {self.ctx.server}: {e}")
        return normal()
