"""Alert receivers on the lab's client machine (198.18.0.200): net-snmp's snmptrapd (v2c, and v3
with the servers' engine ids) and an SMTP server (aiosmtpd writing a Maildir), each run in the
client's network namespace, with their files in a private directory on the host; and the
``alert`` section of clp.conf that sends there.
"""

from __future__ import annotations

import contextlib
import mailbox
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clp.alert.trap import engine_id
from clp.lab import netns as nx

CLIENT = "198.18.0.200"
TRAP_PORT, SMTP_PORT = 162, 25
V3_USER, V3_AUTH, V3_PRIV = "clptrap", "clp-trap-auth", "clp-trap-priv"
START_WAIT = 15.0


def alert_section(servers: list[str]) -> dict:
    """Mail to the client, a v2c trap and a v3 authPriv inform there."""
    v3 = {"version": "v3", "user": V3_USER, "auth_password": V3_AUTH,
          "security_level": "authPriv", "priv_password": V3_PRIV}
    return {"mail": {"to": ["ops@client.lab"], "smtp": [{"host": CLIENT, "port": SMTP_PORT}]},
            "snmp": {"destinations": [{"host": CLIENT, "port": TRAP_PORT},
                                      {"host": CLIENT, "port": TRAP_PORT, **v3}]},
            "retry": {"initial": 0.5, "max": 2}}


class Receivers:
    def __init__(self, lab_name: str, servers: list[str], directory: Path) -> None:
        self.ns = nx.netns_name(lab_name, nx.CLIENT)
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.traps_file = self.dir / "traps.log"
        self.maildir = self.dir / "Maildir"
        users = "".join(f"createUser -e {engine_id(s)} {V3_USER} SHA {V3_AUTH} AES {V3_PRIV}\n"
                        for s in servers)
        (self.dir / "snmptrapd.conf").write_text(
            f"authCommunity log public\n{users}authUser log {V3_USER} priv\n")
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.dir / "receivers.out", "ab") as out:
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *argv], env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def start(self) -> None:
        self._start(["snmptrapd", "-f", "-C", "-c", str(self.dir / "snmptrapd.conf"), "-On",
                     "-Lf", str(self.traps_file), "-F", "TRAP %P| %v\n",
                     f"udp:{CLIENT}:{TRAP_PORT}"],
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MIBS": "",
                         "MIBDIRS": "/nonexistent",
                         # its persistent file is named snmptrapd.conf too: kept apart
                         "SNMP_PERSISTENT_DIR": str(self.dir / "persist")})
        self._start([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{CLIENT}:{SMTP_PORT}",
                     "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)])
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise AssertionError("an alert receiver exited: "
                                     + (self.dir / "receivers.out").read_text()[-2000:])
            smtp = subprocess.run(["ip", "netns", "exec", self.ns, "bash", "-c",
                                   f"exec 3<>/dev/tcp/{CLIENT}/{SMTP_PORT}"], check=False,
                                  capture_output=True)
            if self.traps_file.exists() and "NET-SNMP" in self.traps_file.read_text() \
                    and smtp.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("the alert receivers did not start")

    def traps(self) -> list[str]:
        if not self.traps_file.exists():
            return []
        return [ln for ln in self.traps_file.read_text(errors="replace").splitlines()
                if ln.startswith("TRAP ")]

    def mails(self) -> list[str]:
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(str(self.maildir), create=False)
        return [m.get_payload(decode=True).decode("utf-8", "replace") for m in box]

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


@contextmanager
def receivers_on_client(lab_name: str, servers: list[str], directory: Path) -> Iterator[Receivers]:
    r = Receivers(lab_name, servers, directory)
    try:
        r.start()
        yield r
    finally:
        r.stop()
