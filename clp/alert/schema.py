"""The ``alert`` section of clp.conf: where mail reports and SNMP traps go (the product's Alert
Service tab). Defaults live here. Read by ``clusterpro_alertsync``, which re-reads clp.conf when
it changes, so every key applies on upload."""

from __future__ import annotations

from typing import Any

LEVELS = ["INFO", "WARNING", "ERROR", "CRITICAL"]
EVENT_PATTERN = r"^[a-z][a-z0-9_]{0,15}:[0-9]{1,6}$"  # module:event_id, as `rm:9`
HOST_PATTERN = r"^[A-Za-z0-9.:_-]{1,253}$"  # a name or an address; resolution is checked at send
# written into net-snmp's snmp.conf, not on a command line (where `ps` would show it)
SECRET = {"type": "string", "pattern": r"^[^\s\"'#]{8,}$",
          "x-error": {"pattern": "at least 8 characters, without spaces, quotes or '#'"}}


def _apply(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-apply": "upload_only"}


def _channel(extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """What both channels share: which alerts they report."""
    return _apply({
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {
            **extra,
            # which (module, event id) alerts are reported; absent: the product's default list
            "events": _apply({"type": "array", "items": {
                "type": "string", "pattern": EVENT_PATTERN,
                "x-error": {"pattern": "{value!r} is not module:event_id (as rm:9)"}}}),
            # every alert at these levels too (clp raises some alerts without a product id)
            "levels": _apply({"type": "array", "default": ["ERROR", "CRITICAL"],
                              "items": {"enum": LEVELS}}),
        },
    })


def _peer(port: int, extra: dict[str, Any], rules: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """An SMTP server or a trap destination: a host, a port, its own parameters and rules."""
    return _apply({
        **(rules or {}),
        "type": "object",
        "additionalProperties": False,
        "required": ["host"],
        "properties": {
            "host": _apply({"type": "string", "pattern": HOST_PATTERN,
                            "x-error": {"pattern": "{value!r} is not a host name or address"}}),
            "port": _apply({"type": "integer", "minimum": 1, "maximum": 65535,
                            "default": port}),
            **extra,
        },
    })


SMTP_SERVER = _peer(25, {
    # none: plain SMTP; starttls: upgrade on the submission port; tls: implicit TLS (465)
    "security": _apply({"enum": ["none", "starttls", "tls"], "default": "none"}),
    "user": _apply({"type": "string", "minLength": 1}),
    "password": _apply({"type": "string"}),
    "timeout": _apply({"type": "number", "exclusiveMinimum": 0, "maximum": 600,
                       "default": 30}),
    # certificates the server's is checked against (default: the system's); the host name
    # is always checked
    "ca_file": _apply({"type": "string", "minLength": 1}),
}, {"dependentRequired": {"user": ["password"], "password": ["user"]},
    "x-error": {"dependentRequired": "user and password go together (SMTP authentication)"}})

MAIL = _channel({
    "to": _apply({"type": "array", "minItems": 1, "items": {
        "type": "string", "pattern": r"^[^@\s]+@[^@\s]+$",
        "x-error": {"pattern": "{value!r} is not a mail address"}}}),
    "from": _apply({"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$",
                    "x-error": {"pattern": "{value!r} is not a mail address"}}),
    "subject": _apply({"type": "string", "default": "CLUSTERPRO", "maxLength": 200}),
    # tried in this order for every mail
    "smtp": _apply({"type": "array", "minItems": 1, "items": SMTP_SERVER}),
}, ["to", "smtp"])

TRAP_DESTINATION = _peer(162, {
    "version": _apply({"enum": ["v2c", "v3"], "default": "v2c"}),
    "community": _apply({"type": "string", "pattern": r"^[^\s\"'#]+$", "default": "public",
                         "x-error": {"pattern": "no spaces, quotes or '#' in a community"}}),
    # an inform is acknowledged: a wrong community or password, or a receiver that is down,
    # is then known and alerted; a trap is fire-and-forget
    "inform": _apply({"type": "boolean", "default": False}),
    "timeout": _apply({"type": "number", "exclusiveMinimum": 0, "maximum": 60,
                       "default": 5}),
    "retries": _apply({"type": "integer", "minimum": 0, "maximum": 10, "default": 2}),
    "user": _apply({"type": "string", "pattern": r"^[^\s\"'#]{1,32}$",
                    "x-error": {"pattern": "1 to 32 characters, without spaces, quotes or '#'"}}),
    "security_level": _apply({"enum": ["authNoPriv", "authPriv"],
                              "default": "authNoPriv"}),
    "auth_protocol": _apply({"enum": ["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384",
                                      "SHA-512"], "default": "SHA"}),
    # net-snmp refuses pass phrases shorter than 8 characters
    "auth_password": _apply(SECRET),
    "priv_protocol": _apply({"enum": ["DES", "AES"], "default": "AES"}),
    "priv_password": _apply(SECRET),
    # the sender's engine id for v3 traps (snmptrapd's createUser -e); default from the
    # server name, see clp.alert.trap.engine_id
    "engine_id": _apply({"type": "string", "pattern": r"^(0x)?([0-9A-Fa-f]{2}){5,32}$",
                         "x-error": {"pattern": "{value!r} is not 5 to 32 hex bytes"}}),
})

SNMP = _channel({
    "destinations": _apply({"type": "array", "minItems": 1, "items": TRAP_DESTINATION}),
}, ["destinations"])

ALERT_SCHEMA: dict[str, Any] = _apply({
    "type": "object",
    "default": {},
    "additionalProperties": False,
    "properties": {
        "mail": MAIL,
        "snmp": SNMP,
        # a failed delivery is tried again after `initial` s, doubling up to `max` s, and given
        # up (kept in work/alert/failed/, alerted) when `give_up` s have passed since the alert
        "retry": _apply({
            "type": "object",
            "default": {},
            "additionalProperties": False,
            "properties": {
                "initial": _apply({"type": "number", "exclusiveMinimum": 0, "default": 10}),
                "max": _apply({"type": "number", "exclusiveMinimum": 0, "default": 300}),
                "give_up": _apply({"type": "number", "minimum": 0, "default": 3600}),
            },
        }),
    },
})
