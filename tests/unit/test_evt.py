"""clp.evt: record codec, non-blocking sender, logging routing, sinks, the daemon's loop."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import posix_ipc
import pytest

from clp.evt.logsetup import setup_logging
from clp.evt.records import TRUNCATED, RecordError, decode, encode, make_record
from clp.evt.sender import EventSender, open_queue
from clp.evt.sink import (
    SYSLOG_MAX,
    SYSLOG_RETRY,
    EventWriter,
    RotatingFile,
    SyslogSink,
    cut_utf8,
    format_line,
    rfc3164_time,
)
from clp.paths import InstallRoot
from services.clusterpro_evt import EventService


@pytest.fixture
def clp_logger():
    logger = logging.getLogger("clp")
    before = list(logger.handlers), logger.level
    yield logger
    for h in logger.handlers:
        if h not in before[0]:
            logger.removeHandler(h)
            h.close()
    logger.setLevel(before[1])


def drain(install: InstallRoot) -> list[dict]:
    q = open_queue(install, create=False)
    out = []
    try:
        for _ in range(q.max_messages + 1):
            try:
                data, _ = q.receive(timeout=0)
            except posix_ipc.BusyError:
                break
            out.append(decode(data))
    finally:
        q.close()
    return out


# record codec

def test_record_round_trip():
    rec = make_record("nm", "ERROR", "server2 down", event_id=2, alert=True, syslog=True,
                      t=1.5, server="s1", pid=7)
    assert decode(encode(rec, 8192)) == rec


def test_overlong_message_truncated_with_marker():
    rec = make_record("nm", "INFO", 'quote"and\\ünicode ' * 2000)
    data = encode(rec, 1024)
    assert len(data) <= 1024
    msg = decode(data)["msg"]
    assert msg.endswith(TRUNCATED) and msg.startswith('quote"and')


@pytest.mark.parametrize("data, why", [
    (b"\xff\xfe", "not a JSON record"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"t": 1}', "missing field"),
])
def test_decode_rejects_garbage(data: bytes, why: str):
    with pytest.raises(RecordError, match=why):
        decode(data)


@pytest.mark.parametrize("change", [
    {"event_id": True}, {"alert": "yes"}, {"module": "../etc"}, {"module": "alert"},
    {"level": "LOUD"}, {"pid": "1"}, {"msg": None},
])
def test_decode_rejects_bad_fields(change: dict):
    rec = {**make_record("nm", "INFO", "x"), **change}
    with pytest.raises(RecordError):
        decode(json.dumps(rec).encode())


def test_lone_surrogate_is_replaced_not_fatal(tmp_path: Path):
    """A record carrying "\\ud800" once made clusterpro_evt die on UnicodeEncodeError."""
    rec = make_record("nm", "INFO", "x")
    data = json.dumps({**rec, "msg": "a\ud800b", "server": "s\udfff"}).encode()
    got = decode(data)
    assert (got["msg"], got["server"]) == ("a?b", "s?")
    EventWriter(tmp_path, tmp_path / "alert.log", None).write(got)
    assert (tmp_path / "nm.log").read_text().endswith("[-] a?b\n")


# sender

def test_sender_never_blocks_on_a_full_queue(root: InstallRoot):
    sender = EventSender(root)
    rec = make_record("nm", "INFO", "fill")
    accepted = 0
    for _ in range(100_000):  # bounded: more than any queue depth the kernel allows
        if not sender.send(rec):
            break
        accepted += 1
    q = open_queue(root, create=False)
    try:
        assert accepted == q.max_messages == q.current_messages
    finally:
        q.close()
    start = time.monotonic()
    results = [sender.send(rec) for _ in range(50)]
    assert time.monotonic() - start < 5.0  # a full queue never blocks the sender
    assert not any(results)
    assert sender.dropped == 51 and sender.sent == accepted
    sender.close()


def test_sender_counts_drops_when_queue_missing(root: InstallRoot):
    sender = EventSender(root, create=False)
    assert not sender.open()
    assert not sender.send(make_record("nm", "INFO", "lost"))
    assert sender.dropped == 1
    with pytest.raises(posix_ipc.ExistentialError):
        open_queue(root, create=False)  # a sender without create never makes the queue


# setup_logging

def test_setup_logging_routes_extra_fields(root: InstallRoot, clp_logger: logging.Logger):
    setup_logging(root, "nm")
    log = logging.getLogger("clp.nm")
    log.error("server down", extra={"event_id": 2})
    log.warning("suspended", extra={"event_id": 7, "alert": True})
    log.error("unexpected")
    log.info("up", extra={"event_id": 1})
    got = [(r["module"], r["level"], r["event_id"], r["alert"], r["msg"]) for r in drain(root)]
    assert got == [("nm", "ERROR", 2, True, "server down"),
                   ("nm", "WARNING", 7, True, "suspended"),
                   ("nm", "ERROR", None, False, "unexpected"),
                   ("nm", "INFO", 1, False, "up")]


def test_setup_logging_twice_does_not_duplicate(root: InstallRoot, clp_logger: logging.Logger):
    setup_logging(root, "nm")
    setup_logging(root, "nm")
    logging.getLogger("clp.nm").info("once")
    assert [r["msg"] for r in drain(root)] == ["once"]


def test_dropped_records_are_reported(root: InstallRoot, clp_logger: logging.Logger):
    handler = setup_logging(root, "trn")
    log = logging.getLogger("clp.trn")
    for i in range(1000):  # bounded; stops once the queue refused a few
        log.info("record %d", i)
        if handler.sender.dropped >= 3:
            break
    dropped = handler.sender.dropped
    assert dropped == 3
    drain(root)
    log.info("after")
    msgs = [r["msg"] for r in drain(root)]
    assert msgs == ["after", "3 log records dropped (event queue full or missing)"]
    log.info("again")
    assert [r["msg"] for r in drain(root)] == ["again"]


# sinks

def test_rotation_keeps_generations(tmp_path: Path):
    f = RotatingFile(tmp_path / "nm.log", max_bytes=200, generations=2)
    for i in range(60):
        f.write(f"line {i:04d} " + "x" * 18 + "\n")  # 29 bytes
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["nm.log", "nm.log.1", "nm.log.2"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    assert (tmp_path / "nm.log").read_text().splitlines()[-1].startswith("line 0059")
    first_of_1 = (tmp_path / "nm.log.1").read_text().split()[1]
    last_of_2 = (tmp_path / "nm.log.2").read_text().splitlines()[-1].split()[1]
    assert int(first_of_1) == int(last_of_2) + 1


def test_rotation_with_no_generations(tmp_path: Path):
    f = RotatingFile(tmp_path / "x.log", max_bytes=50, generations=0)
    for _ in range(10):
        f.write("y" * 20 + "\n")
    assert [p.name for p in tmp_path.iterdir()] == ["x.log"]


def test_log_line_layout():
    rec = make_record("nm", "INFO", "a\nb", event_id=None, t=0.25)
    line = format_line(rec)
    assert line.endswith(" INFO [-] a\n    b\n")
    assert line[4] == "/" and line[19:23] == ".250"


def test_writer_alert_log_and_syslog(tmp_path: Path):
    sock_path = tmp_path / "syslog.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(2)
    try:
        writer = EventWriter(tmp_path, tmp_path / "alert.log", SyslogSink(str(sock_path)))
        writer.write(make_record("nm", "ERROR", "server2 down", event_id=2, alert=True,
                                 server="s1", t=T))
        writer.write(make_record("nm", "INFO", "quiet", event_id=3))
        writer.write(make_record("logcmd", "INFO", "to syslog", event_id=4, syslog=True, t=T))
        got = [server.recv(4096).decode() for _ in range(2)]
        writer.close()
    finally:
        server.close()
    stamp = rfc3164_time(T)
    assert got == [f"<27>{stamp} clusterpro: <type: nm><event: 2> server2 down",
                   f"<30>{stamp} clusterpro: <type: logcmd><event: 4> to syslog"]
    alerts = [json.loads(x) for x in (tmp_path / "alert.log").read_text().splitlines()]
    assert len(alerts) == 1
    assert {k: alerts[0][k] for k in ("server", "module", "event_id", "level", "message")} == {
        "server": "s1", "module": "nm", "event_id": 2, "level": "ERROR",
        "message": "server2 down"}
    assert len((tmp_path / "nm.log").read_text().splitlines()) == 2


T = time.mktime((2024, 3, 5, 7, 8, 9, 0, 0, -1))


def test_rfc3164_header_and_facility():
    assert rfc3164_time(T) == "Mar  5 07:08:09"
    sink = SyslogSink("/nonexistent", facility=19)  # local3
    rec = make_record("rm", "WARNING", "ディスク", event_id=None, t=T)
    assert sink.format(rec).decode() == (
        "<156>Mar  5 07:08:09 clusterpro: <type: rm><event: > ディスク")


@pytest.mark.parametrize("pad", range(3))
def test_long_syslog_message_is_cut_on_a_character_boundary(pad: int):
    sink = SyslogSink("/nonexistent")
    data = sink.format(make_record("nm", "INFO", "x" * pad + "日本語" * 1000, t=T))
    assert len(data) <= SYSLOG_MAX and len(data) > SYSLOG_MAX - 4
    text = data.decode()  # strict: raises if a character was split
    assert text.endswith("語" + TRUNCATED) or text.endswith("本" + TRUNCATED) or \
        text.endswith("日" + TRUNCATED)


def test_cut_utf8():
    data = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    assert [cut_utf8(data, n).decode() for n in range(11)] == [
        "", "a", "a", "aé", "aé", "aé", "aé€", "aé€", "aé€", "aé€", "aé€😀"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def bind(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(0)
    return server


def received(server: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(server.recv(4096).decode().split("> ", 2)[-1])
        except BlockingIOError:
            return out


def test_missing_syslog_socket_warns_once_and_sends_later(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    clock = Clock()
    path = tmp_path / "log.sock"
    sink = SyslogSink(str(path), clock=clock)
    with caplog.at_level(logging.WARNING, logger="clp.evt"):
        assert not sink.send(make_record("nm", "ERROR", "one", event_id=1, alert=True))
        assert not sink.send(make_record("nm", "ERROR", "two", event_id=1, alert=True))
        server = bind(path)
        try:
            assert not sink.flush()  # not before SYSLOG_RETRY
            clock.now += SYSLOG_RETRY
            assert sink.flush()
            assert received(server) == ["one", "two"]
        finally:
            server.close()
            sink.close()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "unusable (No such file or directory)" in said[0]
    assert "usable again: 2 waiting records sent, 0 dropped" in said[1]


def test_syslogd_restart_reconnects_at_once(tmp_path: Path):
    path = tmp_path / "log.sock"
    sink = SyslogSink(str(path), clock=Clock())
    server = bind(path)
    try:
        assert sink.send(make_record("nm", "INFO", "before", syslog=True))
        assert received(server) == ["before"]
        server.close()
        path.unlink()
        server = bind(path)  # a new syslogd on the same path; the old connection is dead
        assert sink.send(make_record("nm", "INFO", "after", syslog=True))
        assert received(server) == ["after"] and not sink.down
    finally:
        server.close()
        sink.close()


def test_full_backlog_drops_oldest_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    clock = Clock()
    path = tmp_path / "log.sock"
    sink = SyslogSink(str(path), backlog_size=3, clock=clock)
    for i in range(5):
        sink.send(make_record("nm", "INFO", f"r{i}", syslog=True))
    assert sink.lost == 2
    server = bind(path)
    clock.now += SYSLOG_RETRY
    try:
        with caplog.at_level(logging.WARNING, logger="clp.evt"):
            assert sink.flush()
        assert received(server) == ["r2", "r3", "r4"]
    finally:
        server.close()
        sink.close()
    assert "3 waiting records sent, 2 dropped from a full backlog" in caplog.text


def test_records_left_at_exit_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    writer = EventWriter(tmp_path, tmp_path / "alert.log", SyslogSink(str(tmp_path / "nope")))
    writer.write(make_record("nm", "ERROR", "x", event_id=1, alert=True))
    with caplog.at_level(logging.WARNING, logger="clp.evt"):
        writer.close()
    assert "1 records never reached syslog" in caplog.text
    assert writer.syslog is not None and writer.syslog.lost == 1


def test_syslog_output_off_sends_nothing(tmp_path: Path):
    path = tmp_path / "log.sock"
    server = bind(path)
    sink = SyslogSink(str(path))
    writer = EventWriter(tmp_path, tmp_path / "alert.log", sink)
    try:
        sink.configure(3, enabled=False)
        writer.write(make_record("nm", "ERROR", "quiet", event_id=1, alert=True))
        sink.configure(17, enabled=True)
        writer.write(make_record("nm", "ERROR", "loud", event_id=1, alert=True))
        server.settimeout(2)
        got = server.recv(4096).decode()
        assert got.startswith("<139>") and got.endswith("> loud")  # local1 (17) * 8 + err
        server.settimeout(0)
        assert received(server) == []
    finally:
        server.close()
        writer.close()


# the daemon's loop

def test_malformed_record_counted_not_fatal(root: InstallRoot, caplog: pytest.LogCaptureFixture):
    q = open_queue(root, create=True)
    try:
        q.send(b"garbage", timeout=0)
        q.send(encode(make_record("nm", "INFO", "good"), q.max_message_size), timeout=0)
        service = EventService(q, EventWriter(root.log_dir, root.alert_log, None))
        with caplog.at_level(logging.WARNING, logger="clp.evt"):
            assert service.step(0) and service.step(0)
            assert not service.step(0)
    finally:
        q.close()
    assert service.malformed == 1 and service.received == 2
    assert "malformed event record" in caplog.text
    assert (root.log_dir / "nm.log").read_text().endswith("[-] good\n")


def test_stop_drains_queue(root: InstallRoot):
    sender = EventSender(root)
    for i in range(3):
        assert sender.send(make_record("trn", "INFO", f"queued {i}"))
    sender.close()
    q = open_queue(root, create=True)
    try:
        service = EventService(q, EventWriter(root.log_dir, root.alert_log, None))
        service.stopping = True
        assert service.run() == 0
    finally:
        q.close()
    lines = (root.log_dir / "trn.log").read_text().splitlines()
    assert [x.split("] ", 1)[1] for x in lines] == ["queued 0", "queued 1", "queued 2"]


def test_drain_waits_until_the_queue_is_empty(root):
    sender = EventSender(root)
    assert sender.send(make_record("nm", "ERROR", "fenced", alert=True))
    assert not sender.drain(0.05)  # nobody reads it: times out
    queue = open_queue(root, create=False)
    queue.receive(timeout=1)
    queue.close()
    assert sender.drain(1.0)
    sender.close()
