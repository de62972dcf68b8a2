"""clp.conf rules of the ``alert`` section that the schema cannot say (schema:
:mod:`clp.alert.schema`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from clp.config.issues import ConfigIssue, join_path


def check_alert(data: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """clp.conf rules the schema does not say: an SMTP password only over TLS (a warning); each
    trap destination once; a v3 destination has a user and an authentication pass phrase,
    authPriv also a privacy one."""
    alert = data.get("alert")
    mail = alert.get("mail") if isinstance(alert, dict) else None
    servers = mail.get("smtp") if isinstance(mail, dict) else None
    for index, smtp in enumerate(servers if isinstance(servers, list) else []):
        if isinstance(smtp, dict) and "user" in smtp and smtp.get("security", "none") == "none":
            yield ConfigIssue(join_path("alert.mail.smtp", index),
                              "the SMTP password would cross the network in clear text: "
                              "set security: starttls or tls", severity="warning")
    snmp = alert.get("snmp") if isinstance(alert, dict) else None
    dests = snmp.get("destinations") if isinstance(snmp, dict) else None
    seen: dict[tuple[Any, ...], int] = {}
    for index, d in enumerate(dests if isinstance(dests, list) else []):
        if not isinstance(d, dict):
            continue
        path = join_path("alert.snmp.destinations", index)
        needed = ["user", "auth_password"] if d.get("version") == "v3" else []
        if d.get("version") == "v3" and d.get("security_level") == "authPriv":
            needed.append("priv_password")
        for key in needed:
            if key not in d:
                yield ConfigIssue(path, f"required parameter '{key}' is missing (SNMPv3 "
                                        f"{d.get('security_level', 'authNoPriv')})")
        key = (d.get("host"), d.get("port", 162), d.get("version", "v2c"), d.get("inform", False))
        if key in seen:
            yield ConfigIssue(path,
                              f"the same destination as destinations[{seen[key]}] "
                              f"({key[0]}:{key[1]} {key[2]}): each alert would be sent twice")
        else:
            seen[key] = index
