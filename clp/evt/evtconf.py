"""The syslog settings ``clusterpro_evt`` takes from clp.conf (``cluster.syslog``).

The event service must log whatever state the configuration is in: a missing, unreadable or
invalid clp.conf, or an invalid ``cluster.syslog`` section, gives the schema's defaults, and the
reason is logged once (again only when it changes). Errors elsewhere in clp.conf are the cluster
daemon's to report; a valid ``cluster.syslog`` is used even then, so those reports reach syslog
with the facility the operator asked for.

The file is checked for a change every :data:`CHECK_SECONDS` and re-read when it changed, so the
settings apply on upload (``x-apply: upload_only``) without restarting the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clp.config import ConfigError, build_schema, check_data
from clp.config.cluster_schema import SYSLOG_FACILITIES
from clp.config.validation import fill_defaults
from clp.paths import Stamp, file_stamp

CHECK_SECONDS = 2.0
log = logging.getLogger("clp.evt")


@dataclass(frozen=True)
class SyslogSettings:
    enabled: bool
    facility: str  # a name of SYSLOG_FACILITIES

    @property
    def code(self) -> int:
        return SYSLOG_FACILITIES[self.facility]

    def describe(self) -> str:
        return f"facility {self.facility}, output {'on' if self.enabled else 'off'}"


def _from_section(section: dict[str, Any]) -> SyslogSettings:
    return SyslogSettings(enabled=section["enabled"], facility=section["facility"])


def default_settings() -> SyslogSettings:
    """The schema's defaults (they live there only)."""
    section: dict[str, Any] = {}
    fill_defaults(build_schema()["properties"]["cluster"]["properties"]["syslog"], section)
    return _from_section(section)


def read_settings(conf: Path) -> tuple[SyslogSettings, str | None]:
    """The settings in ``conf``, or the defaults and why they are used."""
    try:
        text = conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default_settings(), f"{conf} does not exist"
    except (OSError, UnicodeDecodeError) as e:
        return default_settings(), f"cannot read {conf}: {e}"
    try:
        data, issues = check_data(text)
    except ConfigError as e:
        return default_settings(), f"{conf}: {e.issues[0]}"
    except Exception as e:  # noqa: BLE001 - a checker's bug must not stop the event service
        return default_settings(), f"{conf} could not be checked: {e!r}"
    bad = [i for i in issues if i.severity == "error"
           and (i.path == "cluster.syslog" or i.path.startswith("cluster.syslog."))]
    if bad:
        return default_settings(), "; ".join(str(i) for i in bad)
    cluster = data.get("cluster")
    section = cluster.get("syslog") if isinstance(cluster, dict) else None
    if not isinstance(section, dict):
        return default_settings(), f"{conf} has no usable cluster section"
    return _from_section(section), None


class SettingsWatch:
    """Holds the current settings; :meth:`poll` re-reads clp.conf when it changed."""

    def __init__(self, conf: Path, apply: Callable[[SyslogSettings], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conf = conf
        self.apply = apply
        self.clock = clock
        self.settings: SyslogSettings | None = None
        self.problem: str | None = None
        self._stamp: Stamp | None = None
        self._next = 0.0

    def poll(self) -> bool:
        """Re-read clp.conf if it is due and changed (or never read); True if re-read."""
        now = self.clock()
        if self.settings is not None and now < self._next:
            return False
        self._next = now + CHECK_SECONDS
        stamp = file_stamp(self.conf)  # before reading: a change during it is seen next time
        if self.settings is not None and stamp == self._stamp:
            return False
        self._stamp = stamp
        self.load()
        return True

    def load(self) -> None:
        settings, problem = read_settings(self.conf)
        if problem is not None and problem != self.problem:
            log.warning("syslog settings: %s: using the defaults (%s)", problem,
                        settings.describe())
        elif problem is None and (settings != self.settings or self.problem is not None):
            log.info("syslog settings from %s: %s", self.conf, settings.describe())
        self.problem = problem
        if settings != self.settings:
            self.settings = settings
            self.apply(settings)
