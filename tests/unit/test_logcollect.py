"""clplogcc's collection on one server: the plan of each type, the masking of clp.conf, what
never enters an archive (the cluster key, what a symlink points at, names that climb out), and
items that fail or hang without spoiling the rest."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from clp.config.secrets import MASK
from clp.paths import InstallRoot
from clp.trn import logcollect
from clp.trn.logcollect import CollectError, check_archive, mask_config, plan, safe_name

CONF = """\
cluster:
  name: c1
alert:
  mail:
    to: [ops@example.com]
    smtp:
      - host: mail.example.com
        user: clp
        password: "smtp-s3cret"
  snmp:
    destinations:
      - host: 198.18.0.9
        community: "c0mmunity"
      - host: 198.18.0.10
        version: v3
        user: trapper
        auth_password: "auth-s3cret"
        priv_password: "priv-s3cret"
servers:
  server1: {priority: 0}
monitors:
  - {name: db1, type: custom, db_passwords: ["list-s3cret"], credentials: {user: u}}
"""
SECRETS = ("list-s3cret", "smtp-s3cret", "c0mmunity", "auth-s3cret", "priv-s3cret",
           "KEY-BYTES-NEVER")


def names(items: list[logcollect.Item]) -> set[str]:
    return {i.name for i in items}


def test_type3_is_within_type1_within_type2() -> None:
    t1, t2, t3 = (names(plan(t)) for t in ("type1", "type2", "type3"))
    assert t3 < t1 < t2
    assert {"logs", "clp.conf", "clpstat"} <= t3
    assert {"rotated logs", "scripts", "clpshm dump", "clpsupervise status", "syslog"} <= t1 - t3
    assert {"work", "dmesg"} <= t2 - t1


def test_an_unknown_type_gets_the_products_message() -> None:
    with pytest.raises(CollectError, match="Collect type must be specified 'type1'"):
        plan("type4")


def test_nothing_of_etc_but_clp_conf_and_scripts_is_copied() -> None:
    copied = {i.source for i in logcollect.PLAN if i.kind in ("files", "conf")}
    assert {s for s in copied if s.startswith("etc")} == {"etc/clp.conf", "etc/scripts"}


def test_every_secret_of_clp_conf_is_masked_and_named() -> None:
    text, masked = mask_config(CONF)
    for secret in SECRETS:
        assert secret not in text
    assert masked == ["alert.mail.smtp[0].password", "alert.snmp.destinations[0].community",
                      "alert.snmp.destinations[1].auth_password",
                      "alert.snmp.destinations[1].priv_password",
                      "monitors[0].db_passwords"]
    assert text.startswith("# clp.conf as collected by clplogcc: secrets replaced by ********")
    import yaml

    doc = yaml.safe_load(text)
    assert doc["alert"]["mail"]["smtp"][0] == {"host": "mail.example.com", "user": "clp",
                                               "password": MASK}
    assert doc["alert"]["snmp"]["destinations"][1]["user"] == "trapper"
    assert doc["servers"] == {"server1": {"priority": 0}}
    assert doc["monitors"][0]["credentials"] == {"user": "u"}  # a section: its secrets inside


def test_a_clp_conf_that_is_not_yaml_is_not_copied() -> None:
    with pytest.raises(CollectError, match="not valid YAML, not copied"):
        mask_config("alert: {password: [unclosed\n")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "", "a\\b"])
def test_unsafe_archive_names_are_refused(bad: str) -> None:
    with pytest.raises(CollectError):
        safe_name(bad)


def test_syslog_generations_newest_first(tmp_path: Path) -> None:
    for n in ("syslog", "syslog.1", "syslog.2.gz", "syslog.3.gz", "messages", "syslog-x",
              "messages.1"):
        (tmp_path / n).write_text(n)
    got = [p.name for p in logcollect.syslog_files(3, tmp_path)]
    assert got == ["syslog", "syslog.1", "syslog.2.gz", "messages", "messages.1"]
    assert [p.name for p in logcollect.syslog_files(1, tmp_path)] == ["syslog", "messages"]


def populate(root: InstallRoot) -> None:
    root.config_file.write_text(CONF)
    root.key_file.write_text("KEY-BYTES-NEVER\n")
    (root.config_dir / "rexec.key").write_text("KEY-BYTES-NEVER\n")
    (root.config_dir / "scripts" / "failover1").mkdir(parents=True)
    (root.config_dir / "scripts" / "failover1" / "start.sh").write_text("#!/bin/sh\n")
    (root.log_dir / "nm.log").write_text("nm current\n")
    (root.log_dir / "nm.log.1").write_text("nm older\n")
    (root.log_dir / "alert.log").write_text("alert\n")
    (root.log_dir / "key.log").symlink_to(root.key_file)


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def run(root: InstallRoot, tmp_path: Path, collect_type: str = "type1",
        budget: float = 60.0) -> tuple[dict[str, Any], dict[str, bytes]]:
    out = tmp_path / "server1-20260101000000.tar.gz"
    index = logcollect.collect(root, "server1", collect_type, 2, out, budget)
    assert check_archive(out) > 0
    return index, members(out)


def test_an_archive_holds_logs_masked_conf_and_state_and_never_the_key(
        root: InstallRoot, tmp_path: Path) -> None:
    populate(root)
    index, got = run(root, tmp_path)
    p = "server1-20260101000000/"
    assert got[p + "log/nm.log"] == b"nm current\n" and got[p + "log/nm.log.1"] == b"nm older\n"
    assert got[p + "etc/scripts/failover1/start.sh"] == b"#!/bin/sh\n"
    assert b"password: '********'" in got[p + "etc/clp.conf"]
    assert p + "state/clpstat.json" in got  # the command's output, even when it failed
    listing = got[p + "etc/listing.txt"].decode()
    assert "cluster.key" in listing and "rexec.key" in listing  # named, not copied
    assert all(not n.endswith(".key") for n in got) and p + "log/key.log" not in got
    for data in got.values():
        for secret in SECRETS:
            assert secret.encode() not in data
    logs = next(e for e in index["items"] if e["item"] == "logs")
    assert logs["skipped"] == ["key.log: a symbolic link, not followed"]
    assert json.loads(got[p + "index.json"]) == index
    assert all(n.startswith(p) for n in got)


def test_type3_leaves_out_rotated_logs_and_os_information(root: InstallRoot,
                                                          tmp_path: Path) -> None:
    populate(root)
    _, got = run(root, tmp_path, "type3")
    p = "server1-20260101000000/"
    assert p + "log/nm.log" in got and p + "log/nm.log.1" not in got
    assert not any("/os/" in n or "/syslog/" in n for n in got)


def test_a_failing_and_a_hanging_command_are_recorded_not_fatal(
        root: InstallRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    populate(root)
    monkeypatch.setattr(logcollect, "ITEM_TIMEOUT", 0.5)
    monkeypatch.setitem(logcollect.COMMANDS, "uname", ["/nonexistent/uname"])
    monkeypatch.setitem(logcollect.COMMANDS, "df", ["sh", "-c", "echo partial; sleep 30"])
    t0 = time.monotonic()
    index, got = run(root, tmp_path)
    assert time.monotonic() - t0 < 15
    by = {e["item"]: e for e in index["items"]}
    assert not by["uname"]["ok"] and "/nonexistent/uname" in by["uname"]["error"]
    assert not by["df"]["ok"] and "timed out" in by["df"]["error"]
    assert got["server1-20260101000000/os/df.txt"] == b"partial\n"
    assert by["ip addr"]["ok"] and by["logs"]["ok"]  # the items after them still ran


def test_items_past_the_deadline_are_skipped_and_said_so(root: InstallRoot,
                                                         tmp_path: Path) -> None:
    populate(root)
    index, _ = run(root, tmp_path, budget=0.000001)
    assert all("time ran out" in e["error"] for e in index["items"])


def test_a_big_log_keeps_its_tail(root: InstallRoot, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    populate(root)
    monkeypatch.setattr(logcollect, "MAX_FILE", 10)
    (root.log_dir / "big.log").write_text("0123456789abcdefghij")
    index, got = run(root, tmp_path, "type3")
    assert got["server1-20260101000000/log/big.log"] == b"abcdefghij"
    logs = next(e for e in index["items"] if e["item"] == "logs")
    assert "big.log: only its last 10 bytes" in logs["skipped"]


def tar_with(name: str, symlink: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        if symlink:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return buf


@pytest.mark.parametrize(("name", "symlink"), [("../x", False), ("/etc/x", False),
                                               ("a/link", True)])
def test_a_received_archive_that_climbs_out_is_refused(tmp_path: Path, name: str,
                                                       symlink: bool) -> None:
    path = tmp_path / "x.tar.gz"
    path.write_bytes(tar_with(name, symlink).getvalue())
    with pytest.raises(CollectError):
        check_archive(path)


def test_syslog_files_are_copied_and_without_them_the_journal(
        root: InstallRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    populate(root)
    logs = tmp_path / "varlog"
    logs.mkdir()
    monkeypatch.setattr(logcollect, "SYSLOG_DIR", logs)
    monkeypatch.setattr(logcollect, "JOURNAL", ["echo", "the journal"])
    index, got = run(root, tmp_path)
    entry = next(e for e in index["items"] if e["item"] == "syslog")
    assert "journal instead" in entry["note"]
    assert got["server1-20260101000000/syslog/journal.txt"] == b"the journal\n"
    for n in ("syslog", "syslog.1", "syslog.2.gz"):
        (logs / n).write_text(n)
    (tmp_path / "server1-20260101000000.tar.gz").unlink()
    _, got = run(root, tmp_path)  # -r 2: the current file and one rotated
    assert sorted(n for n in got if "/syslog/" in n) == [
        "server1-20260101000000/syslog/syslog", "server1-20260101000000/syslog/syslog.1"]
