"""Schema fragments of the built-in interconnect and partition-resolver types.

They live here only until their plugin files exist: each moves into ``clp/heartbeat/<type>.py``
or ``clp/np/<type>.py`` (the plugin then calls ``register_type`` itself), so that adding a type
touches one file. Cross-type rules (server names exist, one LAN reaches everyone, unique
addresses) are in ``crosscheck.py`` because a fragment sees only its own item.
"""

from __future__ import annotations

from typing import Any

from clp.config.registry import register_type, typed_fragment


def _server_map(
    value: dict[str, Any], at_least: int, at_most: int | None = None, what: str = ""
) -> dict[str, Any]:
    """A mapping server name -> value; a server left out does not use this path."""
    schema: dict[str, Any] = {
        "type": "object",
        "minProperties": at_least,
        "additionalProperties": value,
        "x-apply": "stop_cluster",
        "x-error": {"minProperties": f"{what} needs at least {at_least} servers"},
    }
    if at_most is not None:
        schema["maxProperties"] = at_most
        schema["x-error"] = {
            "minProperties": f"{what} connects exactly {at_least} servers",
            "maxProperties": f"{what} connects exactly {at_most} servers",
        }
    return schema


_DEVICE = {
    "type": "string",
    "pattern": "^/",
    "x-apply": "stop_cluster",
    "x-error": {"pattern": "{value!r} is not an absolute device path"},
}
_ADDRESS = {"type": "string", "format": "ip-address", "x-apply": "stop_cluster"}
_HOST_PORT = {"type": "string", "format": "host-port", "x-apply": "stop_cluster"}
_SERVER_LIST = {
    "type": "array",
    "minItems": 1,
    "uniqueItems": True,
    "items": {"type": "string"},
    "x-apply": "stop_cluster",
}


def _typed(name: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return typed_fragment(name, {}, {"required": required, "properties": properties})


# clp/heartbeat/lan.py: lanhb, unicast UDP on the heartbeat port to each address.
LAN = _typed(
    "lan", ["addresses"], {"addresses": _server_map(_ADDRESS, 2, what="a LAN interconnect")}
)
# clp/heartbeat/disk.py: diskhb on a shared partition (seed: /dev/rdsk/c3t0d0s0).
DISK = _typed("disk", ["devices"], {"devices": _server_map(_DEVICE, 2, what="a disk heartbeat")})
# clp/heartbeat/com.py: comhb over a serial cable between exactly two servers.
COM = _typed("com", ["devices"], {"devices": _server_map(_DEVICE, 2, 2, what="a COM heartbeat")})
# clp/heartbeat/witness.py: witnesshb through a witness server (host:port).
WITNESS = _typed("witness", ["target", "servers"], {"target": _HOST_PORT, "servers": _SERVER_LIST})

_NP = {**_SERVER_LIST, "x-apply": "suspend_cluster"}


def _seconds(default: float) -> dict[str, Any]:
    return {"type": "number", "exclusiveMinimum": 0, "default": default,
            "x-apply": "suspend_cluster"}


# clp/np/ping.py: isolated when none of the targets answers a ping.
PING = _typed(
    "ping",
    ["targets", "servers"],
    {
        "targets": {
            "type": "array",
            "minItems": 1,
            "items": {**_ADDRESS, "format": "ping-target", "x-apply": "suspend_cluster"},
            "x-apply": "suspend_cluster",
        },
        "servers": _NP,
        # the product's Ping NP defaults: a probe every 5 s, 3 s per try, 3 retries
        "interval": _seconds(5),
        "timeout": _seconds(3),
        "retry": {"type": "integer", "minimum": 0, "maximum": 100, "default": 3,
                  "x-apply": "suspend_cluster"},
    },
)
# clp/np/http.py: isolated when the web server does not answer a HEAD request.
HTTP = _typed(
    "http",
    ["target", "servers"],
    {
        "target": {**_HOST_PORT, "x-apply": "suspend_cluster"},
        "servers": _NP,
        # a probe every 5 s (as ping), 10 s for the whole HEAD exchange (a web server is slower
        # to answer than a router's ICMP), at the site's root
        "interval": _seconds(5),
        "timeout": _seconds(10),
        "path": {"type": "string", "pattern": "^/[\\x21-\\x7e]*$", "default": "/",
                 "x-apply": "suspend_cluster",
                 "x-error": {"pattern": "{value!r} is not a URL path (/..., no spaces)"}},
    },
)

# clp/np/witness.py: arbitration by the witness server: of two sides that lost each other, the
# first to claim the other wins, the other is isolated (docs/network-partition.md).
WITNESS_NP = _typed(
    "witness",
    ["target", "servers"],
    {
        "target": {**_HOST_PORT, "x-apply": "suspend_cluster"},
        "servers": _NP,
        # renewals every half heartbeat interval at least (clp.clusterd.resolution.period);
        # 3 s for a claim's whole exchange, as a ping try
        "interval": _seconds(5),
        "timeout": _seconds(3),
    },
)

register_type("interconnect", "lan", LAN)
register_type("interconnect", "disk", DISK)
register_type("interconnect", "com", COM)
register_type("interconnect", "witness", WITNESS)
register_type("resolver", "ping", PING)
register_type("resolver", "http", HTTP)
register_type("resolver", "witness", WITNESS_NP)

# Group resources register themselves from clp/resources/<type>.py (one file per type).
# Monitor types register themselves from clp/monitors/<type>.py (one file per type).
import clp.monitors.registry  # noqa: E402, F401
import clp.resources.registry  # noqa: E402, F401
