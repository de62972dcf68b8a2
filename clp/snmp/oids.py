"""Object identifiers under the product's enterprise subtree (seed: ``.1.3.6.1.4.1.119.2.3.207``,
registered by the product with snmpd). The MIB file in ``mib/`` defines the same tree.

``.1`` objects (cluster, server, heartbeat, group, resource and monitor tables), ``.2.0.1`` the
alert notification, ``.3`` the alert's objects (accessible-for-notify scalars, instance ``.0``),
``.4`` conformance.
"""

from __future__ import annotations

PRODUCT = "1.3.6.1.4.1.119.2.3.207"
OBJECTS = f"{PRODUCT}.1"
ALERT_TRAP = f"{PRODUCT}.2.0.1"
ALERT_OBJECTS = f"{PRODUCT}.3"
# the alert trap's variable bindings, in this order (scalar instances)
ALERT_MODULE = f"{ALERT_OBJECTS}.1.0"  # OCTET STRING: module type (nm, rm, logcmd, ...)
ALERT_EVENT_ID = f"{ALERT_OBJECTS}.2.0"  # Integer32: event id, 0 when the alert has none
ALERT_LEVEL = f"{ALERT_OBJECTS}.3.0"  # INTEGER: info(1), warning(2), error(3), critical(4)
ALERT_SERVER = f"{ALERT_OBJECTS}.4.0"  # OCTET STRING: server that raised it
ALERT_MESSAGE = f"{ALERT_OBJECTS}.5.0"  # OCTET STRING (UTF-8): the message
ALERT_TIME = f"{ALERT_OBJECTS}.6.0"  # OCTET STRING: ISO 8601 with UTC offset
ALERT_LEVELS = {"DEBUG": 1, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}
