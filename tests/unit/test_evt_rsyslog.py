"""clusterpro_evt against a real syslog receiver: a private rsyslogd on its own socket.

What rsyslog parsed (facility, severity, tag, reported time, message) is checked, not the bytes we
sent: a receiver that misreads our header would show here. Also a receiver restarted under a
running clusterpro_evt, and one that is not running at all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clp.evt.records import TRUNCATED, make_record
from clp.evt.sender import EventSender
from clp.evt.sink import SYSLOG_MAX
from clp.paths import InstallRoot

REPO = Path(__file__).resolve().parents[2]
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
# rsyslog comes from tools/install-deps.sh: a missing rsyslogd fails here, it is not skipped

# tab-separated: rsyslog escapes control characters inside %msg% (#011), so a tab never occurs
TEMPLATE = ("%syslogfacility-text%\\t%syslogseverity-text%\\t%syslogtag%\\t"
            "%timereported:::date-rfc3339%\\t%msg%\\n")
CONF = """\
global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" CreatePath="on" IgnoreTimestamp="off"
      UseSysTimeStamp="off")
template(name="fields" type="string" string="{template}")
*.* action(type="omfile" file="{d}/out.log" template="fields")
"""


def wait_for(check: Callable[[], object], timeout: float = 5.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.02)
    return check()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class Rsyslog:
    """One private rsyslogd: ``log.sock`` in, ``out.log`` (one tab-separated line a message)."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.socket = d / "log.sock"
        self.out = d / "out.log"
        self.proc: subprocess.Popen | None = None
        (d / "rsyslog.conf").write_text(CONF.format(d=d, template=TEMPLATE))

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        with open(self.d / "rsyslogd.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.d / "rsyslog.conf"), "-i", str(self.d / "pid")],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        assert wait_for(self.socket.exists), (self.d / "rsyslogd.stderr").read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def messages(self) -> list[tuple[str, ...]]:
        return [tuple(x.split("\t", 4)) for x in lines(self.out)]


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    d = tmp_path / "rsyslog"
    d.mkdir()
    r = Rsyslog(d)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def evt(root: InstallRoot, tmp_path: Path, rsyslog: Rsyslog) -> Iterator[Callable[[], None]]:
    """Start the real clusterpro_evt on this root, syslog to the private socket."""
    procs: list[subprocess.Popen] = []

    def start() -> None:
        env = {**os.environ, "CLP_ROOT": str(root.root)}
        with open(tmp_path / "evt.stderr", "ab") as err:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services.clusterpro_evt", "--syslog-socket",
                 str(rsyslog.socket)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err))
        assert wait_for(lambda: any("event service started" in x for x in evt_log(root))), \
            (tmp_path / "evt.stderr").read_text()

    try:
        yield start
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)


def evt_log(root: InstallRoot) -> list[str]:
    return lines(root.log_dir / "evt.log")


def write_conf(root: InstallRoot, syslog: str) -> None:
    root.config_file.write_text(
        "cluster:\n  name: c\n" + syslog + "servers:\n  s1: {}\n  s2: {}\ninterconnects:\n"
        "  - type: lan\n    addresses: {s1: 198.18.1.1, s2: 198.18.1.2}\n")


def send(root: InstallRoot, *records: dict) -> None:
    sender = EventSender(root)
    try:
        for rec in records:
            assert sender.send(rec, timeout=1)
    finally:
        sender.close()


def test_format_facility_and_severities_as_rsyslog_reads_them(root: InstallRoot, rsyslog, evt):
    write_conf(root, "  syslog: {facility: local3}\n")
    rsyslog.start()
    evt()
    assert "syslog settings from" in "".join(evt_log(root))
    an_hour_ago = time.time() - 3600  # the header's time stamp, not the time of arrival
    long = "障害" * 1000  # 6000 bytes
    send(root,
         make_record("pm", "CRITICAL", "critical", event_id=11, alert=True),
         make_record("nm", "ERROR", "サーバ server2 が停止しました", event_id=2, alert=True,
                     t=an_hour_ago),
         make_record("rm", "WARNING", "warned", event_id=9, alert=True),
         make_record("nm", "INFO", "not for syslog", event_id=1),
         make_record("logcmd", "INFO", "asked for syslog", event_id=1, syslog=True),
         make_record("trn", "DEBUG", "debug to syslog", syslog=True),
         make_record("nm", "ERROR", long, event_id=3, alert=True))
    got = wait_for(lambda: len(m := rsyslog.messages()) >= 6 and m)
    assert got and len(got) == 6, rsyslog.messages()
    assert [m[:3] for m in got] == [("local3", severity, "clusterpro:") for severity in
                                    ("crit", "err", "warning", "info", "debug", "err")]
    # %msg% of an RFC 3164 message keeps the space after the tag
    assert [m[4] for m in got[:5]] == [
        " <type: pm><event: 11> critical",
        " <type: nm><event: 2> サーバ server2 が停止しました",
        " <type: rm><event: 9> warned",
        " <type: logcmd><event: 1> asked for syslog",
        " <type: trn><event: > debug to syslog"]
    assert got[1][3][5:19] == time.strftime("%m-%dT%H:%M:%S", time.localtime(an_hour_ago))
    cut = got[5][4]
    assert cut.startswith(" <type: nm><event: 3> 障害")
    assert cut.endswith(("障" + TRUNCATED, "害" + TRUNCATED))  # whole characters only
    assert SYSLOG_MAX - 40 < len(cut.encode()) < SYSLOG_MAX  # the header took the rest
    assert len(lines(root.log_dir / "nm.log")) == 3  # the log files have everything


def test_receiver_restarted_while_evt_runs(root: InstallRoot, rsyslog, evt):
    rsyslog.start()
    evt()  # no clp.conf: the defaults, said once
    said = [x for x in evt_log(root) if "syslog settings" in x]
    assert len(said) == 1 and "does not exist: using the defaults (facility daemon" in said[0]
    send(root, make_record("nm", "ERROR", "before", event_id=1, alert=True))
    assert wait_for(lambda: len(rsyslog.messages()) == 1)
    rsyslog.stop()
    send(root, make_record("nm", "ERROR", "while down", event_id=1, alert=True))
    assert wait_for(lambda: any("unusable" in x for x in evt_log(root)))
    rsyslog.start()
    assert wait_for(lambda: len(rsyslog.messages()) == 2)  # the waiting one, within a retry
    send(root, make_record("nm", "ERROR", "after", event_id=1, alert=True))
    got = wait_for(lambda: len(m := rsyslog.messages()) >= 3 and m)
    assert got and [(m[0], m[4]) for m in got] == [
        ("daemon", " <type: nm><event: 1> before"),
        ("daemon", " <type: nm><event: 1> while down"),
        ("daemon", " <type: nm><event: 1> after")]
    assert wait_for(lambda: any("usable again: 1 waiting records sent, 0 dropped" in x
                                for x in evt_log(root)))


def test_receiver_absent_one_warning_and_log_files_still_written(root: InstallRoot, evt):
    write_conf(root, "  syslog: {facility: local9}\n")  # invalid too: defaults, said once
    evt()
    send(root, *(make_record("nm", "ERROR", f"down {i}", event_id=2, alert=True)
                 for i in range(5)))
    assert wait_for(lambda: len(lines(root.log_dir / "nm.log")) == 5)
    assert len(lines(root.alert_log)) == 5
    text = evt_log(root)
    assert len([x for x in text if "syslog socket" in x and "unusable" in x]) == 1, text
    assert len([x for x in text if "'local9' is not one of" in x]) == 1, text
