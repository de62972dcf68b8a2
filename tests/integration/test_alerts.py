"""The alert service end to end, with real processes and real receivers on loopback:
``clplogcmd`` -> ``clusterpro_evt`` -> spool -> ``clusterpro_alertsync`` -> an SMTP server
(aiosmtpd, with STARTTLS and AUTH) and net-snmp's ``snmptrapd`` (v2c traps, v3 traps and
informs with authentication and privacy)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosmtpd.controller as aiosmtpd  # the test extra; snmptrapd comes from install-deps.sh
import pytest
import yaml
from aiosmtpd.smtp import AuthResult

from clp.alert.trap import engine_id
from clp.paths import InstallRoot
from tests.netutil import free_port
from tests.unit.conftest import remove_ipc

SAMPLE = Path(__file__).parents[2] / "clp" / "samples" / "lab2"
BIN = Path(sys.executable).parent
V3 = {"user": "clpuser", "auth_password": "authpass123", "security_level": "authPriv",
      "priv_password": "privpass123"}


def wait_for(what: str, check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Mailbox:
    """aiosmtpd handler keeping what it received."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], str, float]] = []
        self.refuse = False  # every recipient refused, as a server that will not relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return "550 5.7.1 relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos),
                           envelope.content.decode("utf-8", "replace"), time.time()))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"clp" and auth_data.password == b"mailpass"
    return AuthResult(success=ok)


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    key, crt = tmp_path / "smtp.key", tmp_path / "smtp.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return key, crt


class Smtp:
    def __init__(self, cert: tuple[Path, Path]) -> None:
        self.port = free_port()
        self.box = Mailbox()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[1]), str(cert[0]))
        self.ctx = ctx
        self.controller = None

    def start(self) -> None:
        self.controller = aiosmtpd.Controller(
            self.box, hostname="127.0.0.1", port=self.port, tls_context=self.ctx,
            require_starttls=True, authenticator=authenticator, auth_required=True)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[Smtp]:
    server = Smtp(cert)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TrapReceiver:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "snmptrapd"
        self.dir.mkdir()
        self.port = free_port(socket.SOCK_DGRAM)
        self.out = self.dir / "traps.log"
        (self.dir / "snmptrapd.conf").write_text(
            "authCommunity log public\n"
            f"createUser -e {engine_id('server1')} clpuser SHA authpass123 AES privpass123\n"
            "createUser clpuser SHA authpass123 AES privpass123\n"
            "authUser log clpuser priv\n")
        # its persistent file is also named snmptrapd.conf: not in the config's directory
        env = {"PATH": os.environ["PATH"], "SNMP_PERSISTENT_DIR": str(self.dir / "persist"),
               "MIBS": "",
               "MIBDIRS": "/nonexistent"}
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-Lf", str(self.out), "-C", "-c", str(self.dir / "snmptrapd.conf"),
             "-On", "-F", "TRAP %v\n", f"udp:127.0.0.1:{self.port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("snmptrapd to start", lambda: self.out.exists() and "NET-SNMP version"
                 in self.out.read_text())

    def traps(self) -> list[str]:
        return [line for line in self.out.read_text(errors="replace").splitlines()
                if line.startswith("TRAP ")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def traps(tmp_path: Path) -> Iterator[TrapReceiver]:
    receiver = TrapReceiver(tmp_path)
    try:
        yield receiver
    finally:
        receiver.stop()


class Node:
    """An install root running the real clusterpro_evt and clusterpro_alertsync."""

    def __init__(self, tmp: Path) -> None:
        self.root = InstallRoot(tmp / "root")
        self.root.ensure_dirs()
        shutil.copytree(SAMPLE, self.root.config_dir, dirs_exist_ok=True)
        self.env = dict(os.environ, CLP_ROOT=str(self.root.root), CLP_SERVER="server1")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def configure(self, alert: dict) -> None:
        conf = yaml.safe_load((SAMPLE / "clp.conf").read_text())
        conf["alert"] = alert
        tmp = self.root.config_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(conf))
        tmp.replace(self.root.config_file)

    def start(self, name: str, *args: str) -> None:
        log = open(self.root.log_dir / f"{name}.console.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen([str(BIN / name), *args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if name == "clusterpro_evt":
            evt_log = self.root.log_dir / "evt.log"
            wait_for("the event service", lambda: evt_log.exists()
                     and "event service started" in evt_log.read_text())

    def start_all(self) -> None:
        self.start("clusterpro_evt", "--syslog-socket", "")
        self.start("clusterpro_alertsync")
        wait_for("the alert service", lambda: (self.root.run_dir / "alertsync.sock").exists())

    def alert(self, message: str, level: str = "ERR", *flags: str) -> None:
        subprocess.run([str(BIN / "clplogcmd"), "-m", message, "-l", level, "--alert", *flags],
                       env=self.env, check=True, capture_output=True)

    def alerts(self) -> list[dict]:
        if not self.root.alert_log.exists():
            return []
        return [json.loads(line) for line in self.root.alert_log.read_text().splitlines()]

    def alert_with(self, text: str) -> dict | None:
        return next((a for a in self.alerts() if text in a["message"]), None)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        remove_ipc(self.root)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path)
    remove_ipc(n.root)
    try:
        yield n
    finally:
        n.stop()


def mail_to(smtp: Smtp, cert: tuple[Path, Path], **extra: object) -> dict:
    return {"to": ["ops@example.test", "dba@example.test"],
            "smtp": [{"host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                      "user": "clp", "password": "mailpass", "ca_file": str(cert[1]), **extra}]}


def test_alert_reaches_mail_and_every_kind_of_trap(node: Node, smtp: Smtp, traps: TrapReceiver,
                                                   cert: tuple[Path, Path]) -> None:
    dest = {"host": "127.0.0.1", "port": traps.port}
    node.configure({"mail": mail_to(smtp, cert), "snmp": {"destinations": [
        dest, {**dest, "version": "v3", **V3}, {**dest, "version": "v3", "inform": True, **V3}]}})
    node.start_all()
    sent = time.time()
    node.alert("監視 fipw1 で異常を検出しました")
    node.alert("only an information", "INFO")  # not reported: INFO is not in the levels
    node.alert("asked for by hand", "INFO", "--mail")  # mail only

    wait_for("two mails", lambda: len(smtp.box.mails) >= 2)
    wait_for("three traps", lambda: len(traps.traps()) >= 3)
    time.sleep(0.5)  # nothing more comes
    assert len(smtp.box.mails) == 2 and len(traps.traps()) == 3
    sender, rcpts, body, received = smtp.box.mails[0]
    assert sender == "clusterpro@server1"
    assert rcpts == ["ops@example.test", "dba@example.test"]
    assert "Module:   logcmd" in body and "Level:    ERROR" in body and "Event ID: 1" in body
    assert "監視 fipw1 で異常を検出しました" in body and "Cluster:  cluster" in body
    assert received - sent < 5
    assert "asked for by hand" in smtp.box.mails[1][2]
    for line in traps.traps():
        assert ".1.3.6.1.4.1.119.2.3.207.2.0.1" in line
        assert '.1.3.6.1.4.1.119.2.3.207.3.1.0 = STRING: "logcmd"' in line
        assert ".1.3.6.1.4.1.119.2.3.207.3.3.0 = INTEGER: 3" in line  # error(3)
    wait_for("the spool to empty", lambda: not list(
        (node.root.work_dir / "alert" / "outbox").glob("*.json")))


def test_mail_server_down_is_retried_alerted_and_recovered(node: Node, smtp: Smtp,
                                                           traps: TrapReceiver,
                                                           cert: tuple[Path, Path]) -> None:
    node.configure({"mail": mail_to(smtp, cert), "retry": {"initial": 0.3, "max": 1},
                    "snmp": {"destinations": [{"host": "127.0.0.1", "port": traps.port}]}})
    smtp.stop()
    node.start_all()
    node.alert("first while the mail server is down")
    failed = wait_for("the mail failure alert", lambda: node.alert_with("mail failed("))
    assert failed["module"] == "mail" and failed["event_id"] == 5 and failed["level"] == "ERROR"
    assert f"127.0.0.1:{smtp.port}" in failed["message"]
    # the trap is not held back by the mail, and the mail failure itself is trapped
    wait_for("the alert's trap and the failure's trap", lambda: len(traps.traps()) >= 2)
    assert any('"mail"' in t for t in traps.traps())
    node.alert("second while the mail server is down")
    smtp.start()
    wait_for("both mails, in order", lambda: len(smtp.box.mails) >= 2, timeout=15)
    assert "first while" in smtp.box.mails[0][2] and "second while" in smtp.box.mails[1][2]
    back = wait_for("the recovery alert", lambda: node.alert_with("mail successed."))
    assert back["event_id"] == 6
    assert len([a for a in node.alerts() if a["event_id"] == 5 and a["module"] == "mail"]) == 1


def test_bad_destinations_are_alerted_and_nothing_is_lost(node: Node, traps: TrapReceiver,
                                                          smtp: Smtp,
                                                          cert: tuple[Path, Path]) -> None:
    dest = {"host": "127.0.0.1", "port": traps.port, "inform": True, "timeout": 0.5,
            "retries": 0}
    node.configure({
        "snmp": {"destinations": [
            {**dest, "community": "wrong"},
            {**dest, "version": "v3", **V3, "auth_password": "wrongpass1"},
            {"host": "no-such-host.invalid"}]},
        "mail": mail_to(smtp, cert),
        "retry": {"initial": 0.3, "max": 0.6, "give_up": 2}})
    smtp.box.refuse = True
    node.start_all()
    node.alert("nobody will get this")
    wait_for("three trap failures", lambda: len(
        [a for a in node.alerts() if a["module"] == "trap" and a["event_id"] == 5]) >= 3)
    trap_errors = " ".join(a["message"] for a in node.alerts() if a["module"] == "trap")
    assert "refuses the community" in trap_errors
    assert "Authentication failure" in trap_errors
    assert "cannot resolve the host name 'no-such-host.invalid'" in trap_errors
    mail_error = wait_for("the mail failure", lambda: node.alert_with("mail failed("))
    assert "550 5.7.1 relaying denied" in mail_error["message"]
    # given up after 2 s: kept, and said, for every target
    def kept_alert() -> dict | None:
        for path in (node.root.work_dir / "alert" / "failed").glob("*.json"):
            doc = json.loads(path.read_text())
            if doc["record"]["msg"] == "nobody will get this":
                return doc
        return None

    kept = wait_for("the alert kept in failed/", kept_alert, timeout=15)
    assert len(kept["given_up"]) == 4 and kept["done"] == []
    assert node.alert_with("given up after")
    assert all(p.poll() is None for p in node.procs.values())  # both services still run


def test_alerts_wait_in_the_spool_while_the_alert_service_is_down(node: Node, smtp: Smtp,
                                                                   cert: tuple[Path, Path]
                                                                   ) -> None:
    node.configure({"mail": mail_to(smtp, cert)})
    node.start("clusterpro_evt", "--syslog-socket", "")
    for i in range(3):
        node.alert(f"spooled {i}")
    wait_for("three spooled alerts", lambda: len(list(
        (node.root.work_dir / "alert" / "outbox").glob("*.json"))) == 3)
    node.start("clusterpro_alertsync")
    wait_for("three mails", lambda: len(smtp.box.mails) == 3)
    # in the order they were raised
    assert [f"spooled {i}" in m[2] for i, m in enumerate(smtp.box.mails)] == [True] * 3


def test_clp_conf_change_applies_without_restart(node: Node, smtp: Smtp, traps: TrapReceiver,
                                                 cert: tuple[Path, Path]) -> None:
    node.configure({"mail": mail_to(smtp, cert)})
    node.start_all()
    node.alert("before")
    wait_for("the mail", lambda: smtp.box.mails)
    node.configure({"snmp": {"destinations": [{"host": "127.0.0.1", "port": traps.port}]}})
    wait_for("the reload", lambda: "SNMP 127.0.0.1" in (node.root.log_dir /
                                                          "alertsync.log").read_text())
    node.alert("after")
    wait_for("the trap", lambda: traps.traps())
    time.sleep(0.3)
    assert len(smtp.box.mails) == 1


def test_mail_tls_modes_and_their_refusals(cert: tuple[Path, Path]) -> None:
    """Implicit TLS is sent; an untrusted certificate and a server without STARTTLS are errors
    that say so, never a plain send."""
    from clp.alert import mail
    from clp.alert.delivery import DeliveryError
    from clp.alert.settings import MailSettings, SmtpServer
    from clp.evt.records import make_record

    box = Mailbox()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[1]), str(cert[0]))
    tls_port, plain_port = free_port(), free_port()
    implicit = aiosmtpd.Controller(box, hostname="127.0.0.1", port=tls_port, ssl_context=ctx)
    plain = aiosmtpd.Controller(box, hostname="127.0.0.1", port=plain_port)
    implicit.start()
    plain.start()
    try:
        rec = make_record("rm", "ERROR", "over TLS", event_id=9, alert=True, server="server1")

        def send(server: SmtpServer) -> str:
            return mail.send(MailSettings(("ops@example.test",), (server,)), rec, "c", "server1")

        assert send(SmtpServer("127.0.0.1", tls_port, "tls", ca_file=str(cert[1]),
                               timeout=5)) == f"127.0.0.1:{tls_port}"
        assert "over TLS" in box.mails[0][2]
        with pytest.raises(DeliveryError, match="certificate not trusted"):
            send(SmtpServer("127.0.0.1", tls_port, "tls", timeout=5))
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            send(SmtpServer("127.0.0.1", plain_port, "starttls", timeout=5))
        assert len(box.mails) == 1
    finally:
        implicit.stop()
        plain.stop()
