"""The ``alert`` section of clp.conf as data, and which channels an alert goes to (pure).

Routing (:func:`channels`): an alert record is reported by mail (by SNMP trap) when

- it asked for it (``clplogcmd --mail`` / ``--trap``), or
- its (module, event id) is in the channel's ``events`` list, by default the product's list of
  alerts reported by mail and trap (:data:`PRODUCT_REPORTED`), or
- its level is in the channel's ``levels`` (default ERROR and CRITICAL: clp raises some error
  alerts that have no product event id, and an operator must hear of them).

A channel never reports its own failures (a mail about a failed mail would fail the same way);
the other channel does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clp.evt.records import Record

# The product's messages whose default destinations include mail and SNMP trap ("asmt")
PRODUCT_REPORTED = frozenset({
    ("pm", 11), ("pm", 13), ("pm", 20), ("pm", 22), ("nm", 2), ("nm", 10), ("nm", 20),
    ("rc", 32), ("rc", 42), ("rc", 92), ("rm", 7), ("rm", 9), ("rm", 57),
})
MAIL_MODULE = "mail"  # the product's module type of mail report events
TRAP_MODULE = "trap"


@dataclass(frozen=True)
class Selection:
    events: frozenset[tuple[str, int]] = PRODUCT_REPORTED
    levels: frozenset[str] = frozenset({"ERROR", "CRITICAL"})

    def wants(self, rec: Record, flag: str) -> bool:
        if rec.get(flag):
            return True
        if not rec.get("alert"):
            return False
        return (rec["module"], rec["event_id"]) in self.events or rec["level"] in self.levels


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    security: str = "none"  # none | starttls | tls
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailSettings:
    to: tuple[str, ...]
    smtp: tuple[SmtpServer, ...]
    sender: str | None = None  # None: clusterpro@<server>
    subject: str = "CLUSTERPRO"
    select: Selection = Selection()


@dataclass(frozen=True)
class TrapDestination:
    host: str
    port: int = 162
    version: str = "v2c"
    community: str = "public"
    inform: bool = False
    timeout: float = 5.0
    retries: int = 2
    user: str | None = None
    security_level: str = "authNoPriv"
    auth_protocol: str = "SHA"
    auth_password: str | None = None
    priv_protocol: str = "AES"
    priv_password: str | None = None
    engine_id: str | None = None

    @property
    def key(self) -> str:
        """The delivery target's name in the spool: stable across reordering in clp.conf."""
        return f"trap:{self.host}:{self.port}:{self.version}:{'inform' if self.inform else 'trap'}"

    @property
    def label(self) -> str:
        kind = "inform" if self.inform else "trap"
        return f"{self.host}:{self.port} ({self.version} {kind})"


@dataclass(frozen=True)
class SnmpSettings:
    destinations: tuple[TrapDestination, ...]
    select: Selection = Selection()


@dataclass(frozen=True)
class RetrySettings:
    initial: float = 10.0
    max: float = 300.0
    give_up: float = 3600.0


@dataclass(frozen=True)
class AlertSettings:
    mail: MailSettings | None = None
    snmp: SnmpSettings | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)


def _select(data: Mapping[str, Any]) -> Selection:
    events = data.get("events")
    parsed = PRODUCT_REPORTED if events is None else frozenset(
        (m, int(i)) for m, i in (e.split(":") for e in events))
    return Selection(parsed, frozenset(data.get("levels", ("ERROR", "CRITICAL"))))


def from_raw(raw: Mapping[str, Any]) -> AlertSettings:
    """From validated, defaults-filled clp.conf data (``ClusterConfig.raw``)."""
    data = raw.get("alert") or {}
    mail = snmp = None
    if "mail" in data:
        m = data["mail"]
        mail = MailSettings(to=tuple(m["to"]), smtp=tuple(SmtpServer(**s) for s in m["smtp"]),
                            sender=m.get("from"), subject=m.get("subject", "CLUSTERPRO"),
                            select=_select(m))
    if "snmp" in data:
        s = data["snmp"]
        snmp = SnmpSettings(tuple(TrapDestination(**d) for d in s["destinations"]), _select(s))
    return AlertSettings(mail, snmp, RetrySettings(**data.get("retry", {})))


def channels(settings: AlertSettings, rec: Record) -> list[str]:
    """The delivery targets of one alert: ``mail``, and each trap destination's key."""
    out = []
    if settings.mail is not None and rec["module"] != MAIL_MODULE \
            and settings.mail.select.wants(rec, "mail"):
        out.append("mail")
    if settings.snmp is not None and rec["module"] != TRAP_MODULE \
            and settings.snmp.select.wants(rec, "trap"):
        out.extend(dict.fromkeys(d.key for d in settings.snmp.destinations))
    return out
