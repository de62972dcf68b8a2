"""miiw (NIC Link Up/Down monitor): the network card has link.

Linux reads the kernel's carrier and operational state of the interface (what ethtool's link
detection reports, for any driver, without the MII ioctl); Solaris asks ``dladm``. A NIC whose
cable is pulled, whose switch port died or that was set down is an error; so is a NIC that does
not exist (a renamed interface would otherwise never be monitored).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from clp import platform
from clp.config.issues import ConfigIssue, join_path
from clp.monitors.base import Check, MonitorType, failed, normal
from clp.platform.linux import PlatformError

_NIC = {"type": "string", "pattern": "^[^/\\s]{1,15}$", "x-apply": "suspend_monitors",
        "x-error": {"pattern": "{value!r} is not a network interface name"}}


class MiiMonitor(MonitorType):
    name: ClassVar[str] = "miiw"
    schema: ClassVar[dict[str, Any]] = {
        "properties": {
            # the NIC, e.g. eth0 (None: each server's is in devices)
            "device": {**_NIC, "type": ["string", "null"], "default": None},
            # a server whose NIC has another name: {server2: eth1}
            "devices": {"type": "object", "additionalProperties": _NIC, "default": {},
                        "x-apply": "suspend_monitors"},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 10, "timeout": 60, "retry": 3}
    default_recovery: ClassVar[str] = ""

    @classmethod
    def cross_check(cls, path: str, name: str, item: Mapping[str, Any],
                    data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
        per_server = item.get("devices") if isinstance(item.get("devices"), dict) else {}
        servers = data.get("servers") if isinstance(data.get("servers"), dict) else {}
        for server in per_server:
            if server not in servers:
                yield ConfigIssue(join_path(join_path(path, "devices"), server),
                                  f"server {server!r} is not defined in servers")
        if not item.get("device"):
            missing = [s for s in servers if s not in per_server]
            if missing:
                yield ConfigIssue(path, f"miiw needs the NIC to monitor (device), or one per "
                                        f"server in devices (missing: {', '.join(missing)})")

    def device(self) -> str:
        return str((self.params.get("devices") or {}).get(self.ctx.server)
                   or self.params.get("device"))

    def check(self) -> Check:
        nic = self.device()
        try:
            up = platform.current().link_up(nic)
        except PlatformError as e:
            return failed(str(e))
        return normal() if up else failed(f"{nic}: link down")
