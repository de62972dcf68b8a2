"""Pacemaker + Corosync on lab servers, for the benchmarks' side-by-side rows.

Debian's packages (``tools/install-deps.sh --bench``), run inside the lab's servers as a user
would run them on two machines: Corosync 3 (knet, unicast between the servers' ``pub``
addresses, ``two_node``), Pacemaker with fencing off (the lab has no fence device) and one
``ocf:heartbeat:IPaddr2`` resource, the floating IP. As in keepalived's rows, the service itself
runs on both servers and only the address moves.

The servers share the host's ``/etc``, ``/var`` and ``/run``; every directory Corosync and
Pacemaker write is bound, inside the server's own mount namespace, over a directory of its
install root (``/run`` over a fresh tmpfs), so two of them never see each other's files.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clp.lab import Lab

PACKAGES = ("corosync", "pacemakerd", "crm_mon", "cibadmin", "crm_attribute")

COROSYNC_CONF = """totem {{
    version: 2
    cluster_name: bench
    transport: knet
    token: {token}
    crypto_cipher: none
    crypto_hash: none
}}
nodelist {{
{nodes}
}}
quorum {{
    provider: corosync_votequorum
    two_node: 1
}}
logging {{
    to_logfile: yes
    logfile: /opt/nec/clusterpro/work/pcmk/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: hires
}}
"""
NODE = """    node {{
        ring0_addr: 198.18.0.{i}
        name: server{i}
        nodeid: {i}
    }}"""

# Run inside the server: private directories, then corosync (it daemonizes) and pacemakerd.
START_SH = """set -e
R=/opt/nec/clusterpro/work/pcmk
rm -rf "$R"
mkdir -p "$R/etc" "$R/lib-corosync" "$R/log" "$R/run"
for d in cib pengine blackbox cores; do mkdir -p "$R/lib-pacemaker/$d"; done
cp /opt/nec/clusterpro/work/corosync.conf "$R/etc/corosync.conf"
chown -R hacluster:haclient "$R/lib-pacemaker" "$R/log"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock
mount --bind "$R/etc" /etc/corosync
mount --bind "$R/lib-corosync" /var/lib/corosync
mount --bind "$R/lib-pacemaker" /var/lib/pacemaker
mount --bind "$R/log" /var/log/pacemaker
corosync
PCMK_logfile=/var/log/pacemaker/pacemaker.log setsid nohup pacemakerd >"$R/pacemakerd.out" 2>&1 &
"""

VIP_XML = ('<primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">'
           '<instance_attributes id="vip-ia">'
           '<nvpair id="vip-ip" name="ip" value="{vip}"/>'
           '<nvpair id="vip-cidr" name="cidr_netmask" value="24"/>'
           '<nvpair id="vip-nic" name="nic" value="eth0"/>'
           '</instance_attributes>'
           '<operations><op id="vip-monitor" name="monitor" interval="10s"/></operations>'
           '</primitive>')
PROPERTIES = [("crm_config", "stonith-enabled", "false"),  # no fence device in the lab
              ("crm_config", "no-quorum-policy", "ignore"),
              ("rsc_defaults", "resource-stickiness", "100")]  # no failback after a restart


def check_installed() -> None:
    missing = [p for p in PACKAGES if not shutil.which(p)]
    if missing:
        raise SystemExit(f"Pacemaker rows need {', '.join(missing)} "
                         "(tools/install-deps.sh --bench)")


def _run(lab: Lab, server: str, argv: list[str], what: str) -> str:
    r = lab.exec(server, argv, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{what} on {server} failed ({r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()}")
    return r.stdout


def start(lab: Lab, server: str, token_ms: int) -> None:
    """Corosync and Pacemaker on ``server`` (after a boot: a restart brings neither back)."""
    nodes = "\n".join(NODE.format(i=i + 1) for i in range(len(lab.servers)))
    (lab.root_of(server) / "work" / "corosync.conf").write_text(
        COROSYNC_CONF.format(token=token_ms, nodes=nodes))
    _run(lab, server, ["sh", "-c", START_SH], "starting corosync and pacemaker")


def status(lab: Lab, server: str) -> str:
    r = lab.exec(server, ["crm_mon", "-1"], timeout=30)
    return r.stdout if r.returncode == 0 else f"crm_mon failed ({r.returncode}): {r.stderr}"


def wait_members(lab: Lab, server: str, want: set[str], timeout: float = 120) -> None:
    """Until Pacemaker on ``server`` shows every server of ``want`` Online and a DC elected:
    a node that corosync counts but whose controller has not joined yet would, if the other
    crashed then, wait for the DC election's dead time first."""
    online = "Online: [ " + " ".join(sorted(want)) + " ]"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = status(lab, server)
        if online in text and "Current DC: NONE" not in text and "Current DC:" in text:
            return
        time.sleep(0.5)
    raise RuntimeError(f"Pacemaker on {server} never showed {online} with a DC:\n"
                       f"{status(lab, server)}")


def configure(lab: Lab, server: str, vip: str) -> None:
    """Fencing off, stickiness, and the floating IP (once, on one server: the CIB is shared)."""
    for section, name, value in PROPERTIES:
        _run(lab, server, ["crm_attribute", "--type", section, "--name", name,
                           "--update", value], f"crm_attribute {name}")
    _run(lab, server, ["cibadmin", "--create", "-o", "resources", "--xml-text",
                       VIP_XML.format(vip=vip)], "cibadmin (the IPaddr2 resource)")
