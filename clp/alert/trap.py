"""SNMP traps and informs for alerts, sent with net-snmp's ``snmptrap`` (the system's SNMP stack:
the same code that snmpd and snmptrapd use for v2c communities and v3 USM).

One notification per alert and destination: :data:`clp.snmp.oids.ALERT_TRAP` with the alert's
module, event id, level, server, message and time (the MIB in ``mib/`` defines them).

Secrets never appear on a command line (where ``ps`` shows them): the community, the v3 user and
pass phrases are written to a private ``snmp.conf`` (mode 0600, ``work/snmp/<destination>/``)
that ``snmptrap`` reads through ``SNMPCONFPATH``. ``SNMP_PERSISTENT_DIR`` is private too, so
nothing here touches the system's net-snmp state.

A trap is not acknowledged: a receiver that is down, or that refuses the community or the v3
credentials, cannot tell the sender. Only name resolution and local errors are seen. An inform
(``inform: true``) is acknowledged: no answer within ``timeout`` x (``retries`` + 1) is an error
naming those causes. For a v3 trap the sender is the authoritative engine, so the receiver needs
the sender's engine id (``createUser -e <engine id> ...`` in snmptrapd.conf): ``engine_id`` in
clp.conf, by default :func:`engine_id` of the server name, which the alert service logs at start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from datetime import datetime
from pathlib import Path

from clp.alert.delivery import DeliveryError
from clp.alert.settings import TrapDestination
from clp.evt.records import Record
from clp.snmp import oids

SNMPTRAP = "snmptrap"
ENGINE_PREFIX = "80001f8804"  # net-snmp's enterprise (8072) with the "text" format (04)


def engine_id(server: str) -> str:
    """The default v3 engine id of a server's traps: net-snmp's text format of its name."""
    return "0x" + ENGINE_PREFIX + server.encode()[:27].hex()


def transport(dest: TrapDestination) -> str:
    if ":" in dest.host:  # an IPv6 address
        return f"udp6:[{dest.host}]:{dest.port}"
    return f"udp:{dest.host}:{dest.port}"


def config_text(dest: TrapDestination) -> str:
    """The private snmp.conf of one destination (its secrets)."""
    if dest.version == "v2c":
        return f"defVersion 2c\ndefCommunity {dest.community}\n"
    lines = ["defVersion 3", f"defSecurityName {dest.user}",
             f"defSecurityLevel {dest.security_level}",
             f"defAuthType {dest.auth_protocol}", f"defAuthPassphrase {dest.auth_password}"]
    if dest.security_level == "authPriv":
        lines += [f"defPrivType {dest.priv_protocol}", f"defPrivPassphrase {dest.priv_password}"]
    return "\n".join(lines) + "\n"


def _arg(text: str) -> str:
    """A command-line argument cannot carry NUL: written as ``\0``."""
    return text.replace("\0", "\\0")


def varbinds(rec: Record) -> list[str]:
    when = datetime.fromtimestamp(rec["t"]).astimezone().isoformat(timespec="milliseconds")
    return [oids.ALERT_MODULE, "s", rec["module"],
            oids.ALERT_EVENT_ID, "i", str(rec["event_id"] or 0),
            oids.ALERT_LEVEL, "i", str(oids.ALERT_LEVELS.get(rec["level"], 1)),
            oids.ALERT_SERVER, "s", _arg(rec["server"]),
            oids.ALERT_MESSAGE, "s", _arg(rec["msg"]),
            oids.ALERT_TIME, "s", when]


def argv(dest: TrapDestination, rec: Record, server: str) -> list[str]:
    args = [SNMPTRAP, "-Le", "-r", str(dest.retries), "-t", f"{dest.timeout:g}"]
    if dest.inform:
        args.append("-Ci")
    elif dest.version == "v3":
        args += ["-e", dest.engine_id or engine_id(server)]
    return [*args, transport(dest), "", oids.ALERT_TRAP, *varbinds(rec)]


class TrapSender:
    """Sends alerts to one destination; ``state_dir``: the install root's ``work/snmp``."""

    def __init__(self, dest: TrapDestination, state_dir: Path, server: str) -> None:
        self.dest = dest
        self.server = server
        # one directory per destination: each is used by one thread only
        self.dir = state_dir / dest.key.replace(":", "_")

    def _prepare(self) -> dict[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        conf = self.dir / "snmp.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config_text(self.dest))
        # net-snmp writes its persistent files (named like config files) there: kept apart
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SNMPCONFPATH": str(self.dir),
                "SNMP_PERSISTENT_DIR": str(self.dir / "persist"), "MIBS": "",
                "MIBDIRS": "/nonexistent", "LANG": "C.UTF-8"}

    def __call__(self, rec: Record) -> str:
        where = self.dest.label
        if shutil.which(SNMPTRAP) is None:
            raise DeliveryError("snmptrap is not installed (Debian package snmp)", where)
        try:
            env = self._prepare()
        except OSError as e:
            raise DeliveryError(f"cannot write {self.dir}/snmp.conf: {e.strerror}", where) from None
        try:  # snmptrap says only "snmptrap:" for a name it cannot resolve
            socket.getaddrinfo(self.dest.host, self.dest.port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as e:
            raise DeliveryError(f"cannot resolve the host name {self.dest.host!r} "
                                f"({getattr(e, 'strerror', None) or e})", where) from None
        wait = self.dest.timeout * (self.dest.retries + 1) + 10
        try:
            r = subprocess.run(argv(self.dest, rec, self.server), env=env, capture_output=True,
                               text=True, timeout=wait, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"snmptrap did not finish within {wait:g} s", where) from None
        if r.returncode != 0:
            raise DeliveryError(self._why(r.stderr), where)
        return where

    def _why(self, stderr: str) -> str:
        lines = [ln.strip() for ln in stderr.splitlines()
                 if ln.strip() and not ln.startswith("Created directory")]
        text = " ".join(lines) or "snmptrap failed"
        if self.dest.inform and "timeout" in text.lower():
            return (f"no acknowledgement within {self.dest.timeout:g} s x "
                    f"{self.dest.retries + 1} ({text}): the receiver is down, or refuses the "
                    f"{'community' if self.dest.version == 'v2c' else 'v3 user or pass phrase'}")
        return text
