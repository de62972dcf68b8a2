"""clp.evt.evtconf: syslog settings from clp.conf, the defaults when unusable, re-read on change."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from clp.evt.evtconf import (
    CHECK_SECONDS,
    SettingsWatch,
    SyslogSettings,
    default_settings,
    read_settings,
)

BASE = """\
cluster:
  name: cluster
{extra}servers:
  server1: {{}}
  server2: {{}}
interconnects:
  - type: lan
    addresses: {{server1: 198.18.1.1, server2: 198.18.1.2}}
"""


def conf(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "clp.conf"
    path.write_text(BASE.format(extra=extra))
    return path


def test_defaults_come_from_the_schema():
    assert default_settings() == SyslogSettings(enabled=True, facility="daemon")
    assert default_settings().code == 3


def test_settings_read_from_clp_conf(tmp_path: Path):
    got = read_settings(conf(tmp_path, "  syslog: {facility: local3, enabled: false}\n"))
    assert got == (SyslogSettings(enabled=False, facility="local3"), None)
    assert got[0].code == 19
    assert read_settings(conf(tmp_path)) == (default_settings(), None)  # no section: defaults


def test_valid_syslog_section_used_despite_other_errors(tmp_path: Path):
    path = conf(tmp_path, "  syslog: {facility: local5}\n  heartbeat: {interval: -1}\n")
    assert read_settings(path) == (SyslogSettings(True, "local5"), None)


@pytest.mark.parametrize("text, why", [
    (None, "does not exist"),
    ("cluster: [unclosed\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
    ("servers: {}\n", "no usable cluster section"),
    (BASE.format(extra="  syslog: {facility: local9}\n"), "cluster.syslog.facility: 'local9'"),
    (BASE.format(extra="  syslog: loud\n"), "cluster.syslog: 'loud' is not a mapping"),
    ("cluster: \xff\n", None),
])
def test_unusable_configuration_gives_defaults_and_says_why(tmp_path: Path, text: str | None,
                                                             why: str | None):
    path = tmp_path / "clp.conf"
    if text is not None:
        path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    settings, problem = read_settings(path)
    assert settings == default_settings()
    assert problem is not None and (why is None or why in problem), problem


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watch_applies_changes_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "clp.conf"
    clock = Clock()
    applied: list[SyslogSettings] = []
    watch = SettingsWatch(path, applied.append, clock)
    with caplog.at_level(logging.INFO, logger="clp.evt"):
        assert watch.poll()  # missing: defaults
        clock.now += CHECK_SECONDS
        assert not watch.poll()  # unchanged (still missing)
        conf(tmp_path, "  syslog: {facility: local3}\n")
        assert not watch.poll()  # not due yet
        clock.now += CHECK_SECONDS
        assert watch.poll()
        path.write_text(path.read_text().replace("local3", "local99"))
        os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
        clock.now += CHECK_SECONDS
        assert watch.poll()
        os.utime(path, ns=(2, 2))  # touched, still the same problem: not said again
        clock.now += CHECK_SECONDS
        assert watch.poll()
    assert applied == [default_settings(), SyslogSettings(True, "local3"), default_settings()]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3, said
    assert "does not exist: using the defaults (facility daemon, output on)" in said[0]
    assert said[1] == f"syslog settings from {path}: facility local3, output on"
    assert "'local99' is not one of" in said[2] and "using the defaults" in said[2]
