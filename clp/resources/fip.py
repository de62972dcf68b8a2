"""fip resource: a floating IP address, added to the interface whose subnet contains it.

Start refuses an address that already answers on the network (another server still holds it, or
someone else uses it): bringing it up too would break both. After adding it, gratuitous ARP tells
the LAN's switches and neighbours where the address now lives. When the server's addresses cannot
be read (``PlatformError``), start and stop fail naming why and probe cannot tell: answering "not
active" then would let a failover bring the address up twice.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from clp import platform
from clp.platform.linux import PlatformError, holder_of, subnet_for
from clp.resources.base import Context, Params, ResourceType, Result, Status, done, error


class FipResource(ResourceType):
    name: ClassVar[str] = "fip"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["ip"],
        "properties": {
            "ip": {"type": "string", "format": "ip-address", "x-apply": "stop_resource"},
            # check that nobody answers for the address before adding it
            "ping_check": {"type": "boolean", "default": True, "x-apply": "stop_resource"},
            # how long to wait for an answer; a LAN answers ARP in well under a millisecond
            "check_timeout": {
                "type": "number", "exclusiveMinimum": 0, "maximum": 10, "default": 0.1,
                "x-apply": "stop_resource",
            },
            "garp_count": {
                "type": "integer", "minimum": 0, "maximum": 100, "default": 3,
                "x-apply": "stop_resource",
            },
        },
    }

    def start(self, params: Params, ctx: Context) -> Result:
        ip = params["ip"]
        host = platform.current()
        try:
            addrs = host.interfaces()
        except PlatformError as exc:
            return error(f"cannot start {ip}: cannot read the addresses of {ctx.server}: {exc}")
        if holder_of(addrs, ip):
            return done(f"{ip} is already active on this server")
        found = subnet_for(addrs, ip)
        if found is None:
            return Result(Status.ERROR_HARD, 0, f"no interface of {ctx.server} has a subnet "
                                                f"containing {ip}")
        iface, prefix = found
        if params["ping_check"] and host.answers(ip, iface, ctx.log, params["check_timeout"]):
            return error(f"{ip} already answers on the network")
        try:
            host.add_address(ip, prefix, iface, ctx.log)
        except PlatformError as exc:
            return error(f"cannot add {ip}/{prefix} to {iface}: {exc}")
        try:
            host.announce(ip, iface, params["garp_count"], ctx.log)
        except OSError as e:  # the address is up; neighbours learn it at their next ARP
            ctx.log.warning("gratuitous ARP for %s on %s failed: %s", ip, iface, e)
        return done(f"{ip}/{prefix} added to {iface}")

    def stop(self, params: Params, ctx: Context) -> Result:
        ip = params["ip"]
        host = platform.current()
        addr = ipaddress.ip_address(ip)
        try:
            held = [(name, net) for name, net, own in host.interfaces(ctx.log) if own == addr]
        except PlatformError as exc:
            return error(f"cannot stop {ip}: cannot read the addresses of {ctx.server}: {exc}")
        if not held:
            return done(f"{ip} is not active on this server")
        for iface, net in held:
            try:
                host.del_address(ip, net.prefixlen, iface, ctx.log)
            except PlatformError as exc:
                return error(f"cannot remove {ip} from {iface}: {exc}")
        return done(f"{ip} removed from {', '.join(i for i, _ in held)}")

    def probe(self, params: Params, ctx: Context) -> bool | None:
        try:
            return platform.current().has_address(params["ip"]) is not None
        except PlatformError as exc:
            ctx.log.warning("cannot tell whether %s is active: %s", params["ip"], exc)
            return None
