"""net-snmp's snmpd inside a lab server, with clpsnmpagent as its pass_persist agent, and the
snmp tools run there against it: what docs/snmp.md tells users to configure, kept private.

snmpd must run in the server's namespaces, since the status it serves is in that server's
shared memory (its ipc namespace). It listens on the server's 127.0.0.1 only, reads only the
config written here (``-C -c``), and keeps its persistent data (the SNMPv3 user) in the
server's work directory, so the host's /etc/snmp and /var/lib/snmp are never touched.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clp.lab import Lab
from clp.paths import DEFAULT_ROOT
from clp.snmp.oids import PRODUCT

PORT = 161  # the server's own network namespace: no clash with the host's snmpd
COMMUNITY = "clplab"
V3_USER, V3_AUTH, V3_PRIV = "clpv3", "clp-auth-pass", "clp-priv-pass"
IETF_MIBS = "/usr/local/share/clp/mibs"  # tools/install-deps.sh
MIB_DIR = str(Path(__file__).resolve().parents[2] / "mib")
START_WAIT = 15.0
STOP_WAIT = 5.0

CONFIG = """\
# docs/snmp.md, as a private config: the view of the product's OID, v2c and v3 read-only
agentAddress udp:127.0.0.1:{port}
view   clpview  included  .{oid}
rocommunity {community} 127.0.0.1 -V clpview
createUser {user} SHA "{auth}" AES "{priv}"
rouser {user} authpriv -V clpview
pass_persist .{oid} {agent}
dontLogTCPWrappersConnects yes
"""

LINE = re.compile(r"^(\.[\d.]+) = (?:(\w[\w-]*): )?(.*)$")


class Snmpd:
    def __init__(self, lab: Lab, server: str) -> None:
        self.lab, self.server = lab, server
        self.host_dir = lab.root_of(server) / "work" / "snmp"
        self.dir = f"{DEFAULT_ROOT}/work/snmp"  # the same, seen from inside the server
        self.env = {"SNMP_PERSISTENT_DIR": f"{self.dir}/persist", "MIBS": "", "MIBDIRS": ""}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        (self.host_dir / "persist" / "cert_indexes").mkdir(parents=True, exist_ok=True)
        (self.host_dir / "snmpd.conf").write_text(CONFIG.format(
            port=PORT, oid=PRODUCT, community=COMMUNITY, user=V3_USER, auth=V3_AUTH,
            priv=V3_PRIV, agent=Path(self.lab.doc["bin"]) / "clpsnmpagent"))
        with open(self.host_dir / "snmpd.out", "ab") as out:
            self.proc = self.lab.popen(
                self.server, ["snmpd", "-f", "-C", "-c", f"{self.dir}/snmpd.conf", "-p",
                              f"{self.dir}/snmpd.pid", "-Lf", f"{self.dir}/snmpd.log"],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"snmpd exited ({self.proc.returncode}): {self.log()}")
            r = self.tool("snmpget", "-v2c", "-c", COMMUNITY, f".{PRODUCT}.1.1.2.0")
            if r.returncode == 0 and "INTEGER" in r.stdout:
                return
            time.sleep(0.2)
        raise AssertionError(f"snmpd did not answer within {START_WAIT} s: {self.log()}")

    def stop(self) -> None:
        """TERM snmpd (through its pid file, inside the server), KILL what is left."""
        self._signal("-TERM")
        if self.proc is not None:
            try:
                self.proc.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self._signal("-KILL")
                self.proc.kill()
                self.proc.wait(STOP_WAIT)

    def _signal(self, sig: str) -> None:
        pidfile = self.host_dir / "snmpd.pid"
        with contextlib.suppress(Exception):  # the server may be gone already
            if pidfile.exists():
                self.lab.exec(self.server, ["kill", sig, pidfile.read_text().strip()],
                              timeout=5)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace")[-2000:] for p in
                       (self.host_dir / "snmpd.out", self.host_dir / "snmpd.log") if p.exists())

    def tool(self, name: str, *args: str, mib: bool = False,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """An snmp tool inside the server, against this snmpd; ``mib``: with CLP-CLUSTER-MIB
        loaded (names, enumerations), else numeric OIDs only."""
        loaded = ["-M", f"{IETF_MIBS}:{MIB_DIR}", "-m", "CLP-CLUSTER-MIB"] if mib else ["-On"]
        argv = [name, *loaded, "-t", "2", "-r", "1", *args[:-1], f"127.0.0.1:{PORT}", args[-1]]
        env = [f"{k}={v}" for k, v in self.env.items()]
        return self.lab.exec(self.server, ["env", *env, *argv], timeout=timeout)

    def walk(self, *auth: str) -> dict[str, tuple[str, str]]:
        """snmpwalk of the product's tree: numeric OID -> (type, value as printed)."""
        r = self.tool("snmpwalk", *(auth or ("-v2c", "-c", COMMUNITY)), "-Oe", f".{PRODUCT}")
        assert r.returncode == 0, r.stdout + r.stderr
        return parse(r.stdout)


def parse(out: str) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        m = LINE.match(line)
        assert m, f"not an snmpwalk line: {line!r}"
        kind, value = m.group(2) or "STRING", m.group(3)
        if kind == "STRING" and value.startswith("No more variables left in this MIB View"):
            continue  # endOfMibView: the view ends where the product's tree does
        if kind == "STRING":
            value = value[1:-1] if value.startswith('"') else value
        found[m.group(1)] = (kind, value)
    return found


@contextmanager
def snmpd_in(lab: Lab, server: str) -> Iterator[Snmpd]:
    """snmpd running in ``server`` for the block, stopped after it even when it fails."""
    d = Snmpd(lab, server)
    try:
        d.start()
        yield d
    finally:
        d.stop()
