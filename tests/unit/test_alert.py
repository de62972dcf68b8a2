"""clp.alert: the alert section's checks, routing, backoff, the delivery threads, the spool, and
what the mail and trap senders build (the real SMTP and SNMP exchanges are in
tests/integration/test_alerts.py)."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

import pytest
import yaml

from clp.alert import mail, trap
from clp.alert.delivery import Backoff, DeliveryError, Outcome, Target
from clp.alert.settings import (
    PRODUCT_REPORTED,
    AlertSettings,
    MailSettings,
    Selection,
    SmtpServer,
    SnmpSettings,
    TrapDestination,
    channels,
    from_raw,
)
from clp.alert.spool import Spool, SpoolError, SpoolWriter
from clp.config.loader import check_data
from clp.evt.records import make_record
from clp.paths import InstallRoot

SAMPLE = Path(__file__).parents[2] / "clp" / "samples" / "lab2" / "clp.conf"


def with_alert(alert: object) -> tuple[dict, list[str]]:
    conf = yaml.safe_load(SAMPLE.read_text())
    conf["alert"] = alert
    data, issues = check_data(yaml.safe_dump(conf))
    return data, [f"{i.path}: {i.message}" for i in issues if i.severity == "error"]


# clp.conf

def test_alert_section_defaults_and_model() -> None:
    data, errors = with_alert({
        "mail": {"to": ["ops@example.test"], "smtp": [{"host": "mail.example.test"}]},
        "snmp": {"destinations": [{"host": "198.18.0.254"},
                                  {"host": "198.18.0.254", "version": "v3", "user": "u",
                                   "auth_password": "12345678"}]}})
    assert errors == []
    s = from_raw(data)
    assert s.mail == MailSettings(("ops@example.test",), (SmtpServer("mail.example.test"),))
    assert s.snmp is not None and s.snmp.destinations[0] == TrapDestination("198.18.0.254")
    assert s.snmp.destinations[1].auth_protocol == "SHA"
    assert s.retry.initial == 10 and s.retry.max == 300 and s.retry.give_up == 3600
    assert from_raw(with_alert({})[0]) == AlertSettings()


@pytest.mark.parametrize("alert, expected", [
    ({"mail": {"to": ["nobody"], "smtp": [{"host": "m"}]}},
     "alert.mail.to[0]: 'nobody' is not a mail address"),
    ({"mail": {"to": ["a@b"], "smtp": [{"host": "m", "user": "x"}]}},
     "alert.mail.smtp[0]: user and password go together"),
    ({"mail": {"to": ["a@b"]}}, "alert.mail: required parameter 'smtp' is missing"),
    ({"snmp": {"destinations": [{"host": "h", "version": "v3"}]}},
     "alert.snmp.destinations[0]: required parameter 'user' is missing"),
    ({"snmp": {"destinations": [{"host": "h", "version": "v3", "user": "u",
                                 "auth_password": "short"}]}},
     "alert.snmp.destinations[0].auth_password: at least 8 characters"),
    ({"snmp": {"destinations": [{"host": "h", "version": "v3", "user": "u",
                                 "auth_password": "12345678", "security_level": "authPriv"}]}},
     "alert.snmp.destinations[0]: required parameter 'priv_password' is missing"),
    ({"snmp": {"destinations": [{"host": "h", "community": "has space"}]}},
     "alert.snmp.destinations[0].community: no spaces"),
    ({"snmp": {"destinations": [{"host": "h"}, {"host": "h", "port": 162}]}},
     "alert.snmp.destinations[1]: the same destination as destinations[0]"),
    ({"snmp": {"destinations": [{"host": "h"}], "events": ["rm9"]}},
     "alert.snmp.events[0]: 'rm9' is not module:event_id"),
    ({"snmp": {"destinations": [{"host": "h", "version": "v1"}]}},
     "alert.snmp.destinations[0].version: 'v1' is not one of: v2c, v3"),
])
def test_bad_alert_settings_are_named(alert: dict, expected: str) -> None:
    _data, errors = with_alert(alert)
    assert any(e.startswith(expected) for e in errors), errors


# routing

def rec(level: str = "ERROR", module: str = "rm", event_id: int | None = 9, **kw: bool) -> dict:
    return make_record(module, level, "m", event_id=event_id, t=1000.0, server="server1",
                       alert=kw.pop("alert", True), **kw)


def test_selection_follows_flags_the_product_list_and_levels() -> None:
    sel = Selection()
    assert ("rm", 9) in PRODUCT_REPORTED
    assert sel.wants(rec("INFO", "nm", 2), "mail")  # the product's list, whatever the level
    assert sel.wants(rec("ERROR", "nm", None), "mail")  # clp error alert without an id
    assert not sel.wants(rec("INFO", "nm", 1), "mail")
    assert not sel.wants(rec("ERROR", alert=False), "mail")  # not an alert
    assert sel.wants(rec("INFO", "logcmd", 1, alert=False, mail=True), "mail")  # --mail
    assert not sel.wants(rec("INFO", "logcmd", 1, alert=False, mail=True), "trap")
    only = Selection(frozenset({("rm", 7)}), frozenset())
    assert only.wants(rec("ERROR", "rm", 7), "trap") and not only.wants(rec(), "trap")


def test_a_channel_never_reports_its_own_failure() -> None:
    s = AlertSettings(MailSettings(("a@b",), (SmtpServer("m"),)),
                      SnmpSettings((TrapDestination("h"), TrapDestination("h", 1162))))
    keys = [d.key for d in s.snmp.destinations]  # type: ignore[union-attr]
    assert channels(s, rec()) == ["mail", *keys]
    assert channels(s, rec(module="mail", event_id=5)) == keys
    assert channels(s, rec(module="trap", event_id=5)) == ["mail"]
    assert channels(AlertSettings(), rec()) == []


# delivery

def test_backoff_doubles_to_its_maximum_and_resets() -> None:
    b = Backoff(10, 35)
    assert [b.failed() for _ in range(4)] == [10, 20, 35, 35]
    assert b.succeeded() == 4 and b.failed() == 10


class Flaky:
    """A sender failing its first ``fails`` calls, recording every record it was given."""

    def __init__(self, fails: int) -> None:
        self.fails = fails
        self.calls: list[str] = []

    def __call__(self, record: dict) -> str:
        self.calls.append(record["msg"])
        if len(self.calls) <= self.fails:
            raise DeliveryError("connection refused", "m:25")
        return "m:25"


def outcomes_of(target: Target, out: queue.Queue[Outcome], n: int) -> list[Outcome]:
    got = [out.get(timeout=5) for _ in range(n)]
    target.stop()
    target.join(5)
    return got


def test_target_retries_the_oldest_first_and_keeps_the_order() -> None:
    out: queue.Queue[Outcome] = queue.Queue()
    sender = Flaky(fails=2)
    t = Target("mail", sender, Backoff(0.01, 0.02), give_up=3600, outcomes=out,
               wall=lambda: 1000.0)
    for i in range(3):
        t.add(f"a{i}", make_record("rm", "ERROR", f"m{i}", t=1000.0))
    t.add("a0", make_record("rm", "ERROR", "m0", t=1000.0))  # twice: queued once
    t.start()
    got = outcomes_of(t, out, 5)
    assert [(o.name, o.kind, o.failures) for o in got] == [
        ("a0", "failed", 1), ("a0", "failed", 2), ("a0", "delivered", 2),
        ("a1", "delivered", 0), ("a2", "delivered", 0)]
    assert sender.calls == ["m0", "m0", "m0", "m1", "m2"]
    assert got[0].reason == "connection refused" and got[0].where == "m:25"


def test_target_gives_up_every_alert_past_the_limit_at_once() -> None:
    out: queue.Queue[Outcome] = queue.Queue()
    now = [1000.0]
    t = Target("trap:h", Flaky(fails=99), Backoff(0.01, 0.01), give_up=60, outcomes=out,
               wall=lambda: now[0])
    t.add("old1", make_record("rm", "ERROR", "o1", t=900.0))
    t.add("old2", make_record("rm", "ERROR", "o2", t=930.0))
    t.add("new", make_record("rm", "ERROR", "n", t=990.0))
    t.start()
    got = outcomes_of(t, out, 4)
    assert [(o.name, o.kind) for o in got] == [("old1", "given_up"), ("old2", "given_up"),
                                               ("new", "failed"), ("new", "failed")]
    assert "new" in t.queued  # still waiting: not past the limit


def test_a_sender_bug_is_a_failed_attempt_not_a_dead_thread() -> None:
    out: queue.Queue[Outcome] = queue.Queue()
    calls = []

    def broken(record: dict) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("oops")
        return "ok"

    t = Target("mail", broken, Backoff(0.01, 0.01), 3600, out, wall=lambda: 0.0)
    t.add("a", make_record("rm", "ERROR", "x", t=0.0))
    t.start()
    got = outcomes_of(t, out, 2)
    assert got[0].kind == "failed" and "internal error" in got[0].reason
    assert got[1].kind == "delivered"


# spool

def test_spool_round_trip_bound_and_bad_files(tmp_path: Path) -> None:
    root = InstallRoot(tmp_path)
    writer = SpoolWriter(root, max_entries=2)
    assert writer.put(rec()) and writer.put(rec(level="INFO"))
    assert not writer.put(rec()) and writer.refused == 1 and writer.why.startswith("full")
    spool = Spool(root)
    spool.ensure()
    names = spool.names()
    assert len(names) == 2 and names == sorted(names)
    entry = spool.read(names[0])
    assert entry.record["level"] == "ERROR" and entry.done == set()
    entry.done.add("mail")
    spool.save(entry)
    assert spool.read(names[0]).done == {"mail"}
    assert spool.finish(entry) is None and len(spool.names()) == 1
    second = spool.read(names[1])
    second.given_up.add("trap:h:162:v2c:trap")
    kept = spool.finish(second)
    assert kept is not None and json.loads(kept.read_text())["given_up"] == [
        "trap:h:162:v2c:trap"]
    (spool.outbox / "0-bad.json").write_text("{not json")
    with pytest.raises(SpoolError, match="not a spooled alert"):
        spool.read("0-bad.json")
    assert spool.set_aside("0-bad.json").exists()
    writer.close()


def test_spool_writer_never_raises_on_an_unwritable_spool(tmp_path: Path) -> None:
    root = InstallRoot(tmp_path)
    (tmp_path / "work").write_text("a file where the directory should be")
    writer = SpoolWriter(root)
    assert not writer.put(rec()) and writer.failed == 1 and writer.why.startswith("cannot")


# what the senders build

def test_mail_names_module_event_level_server_and_message() -> None:
    settings = MailSettings(("a@example.test", "b@example.test"), (SmtpServer("m"),))
    msg = mail.compose(settings, rec(), "cluster", "server1")
    assert msg["From"] == "clusterpro@server1"
    assert msg["To"] == "a@example.test, b@example.test"
    assert msg["Subject"] == "CLUSTERPRO: ERROR server1 rm 9 m"
    body = msg.get_content()
    for line in ("Cluster:  cluster", "Server:   server1", "Module:   rm", "Event ID: 9",
                 "Level:    ERROR", "Message:  m"):
        assert line in body


def test_trap_secrets_stay_off_the_command_line() -> None:
    dest = TrapDestination("198.18.0.254", version="v3", user="clp", auth_password="secret-a1",
                           security_level="authPriv", priv_password="secret-p1")
    argv = trap.argv(dest, rec(), "server1")
    assert not any("secret" in a for a in argv)
    assert argv[argv.index("-e") + 1] == trap.engine_id("server1") == "0x80001f880473657276657231"
    assert "udp:198.18.0.254:162" in argv and "1.3.6.1.4.1.119.2.3.207.2.0.1" in argv
    conf = trap.config_text(dest)
    assert "defAuthPassphrase secret-a1" in conf and "defPrivPassphrase secret-p1" in conf
    informs = trap.argv(TrapDestination("2001:db8::1", inform=True), rec(), "server1")
    assert "-Ci" in informs and "-e" not in informs and "udp6:[2001:db8::1]:162" in informs
    assert trap.config_text(TrapDestination("h", community="c0mm")) == \
        "defVersion 2c\ndefCommunity c0mm\n"


def test_threads_do_not_outlive_stop() -> None:
    before = threading.active_count()
    out: queue.Queue[Outcome] = queue.Queue()
    t = Target("mail", Flaky(0), Backoff(1, 1), 3600, out)
    t.start()
    t.stop()
    t.join(5)
    assert not t.is_alive() and threading.active_count() == before


def test_an_smtp_password_in_clear_text_is_warned_about() -> None:
    conf = yaml.safe_load(SAMPLE.read_text())
    conf["alert"] = {"mail": {"to": ["a@b"], "smtp": [
        {"host": "m", "user": "u", "password": "p"},
        {"host": "m2", "user": "u", "password": "p", "security": "starttls"}]}}
    _data, issues = check_data(yaml.safe_dump(conf))
    warned = [i for i in issues if i.severity == "warning" and i.path.startswith("alert")]
    assert [i.path for i in warned] == ["alert.mail.smtp[0]"]
    assert "clear text" in warned[0].message
