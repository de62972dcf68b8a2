"""Namespace plumbing of the lab: bridges, veth pairs, named netns, nft partitions, processes.

Every helper runs one iproute2/nft command or reads ``/proc``; nothing here knows about lab.json.
Names are kept within the kernel's 15-character interface limit: a lab name has at most 8
characters, bridges are ``<lab>-pub`` / ``<lab>-ic1`` and the host ends of server i's cables are
``<lab>-<i>p`` / ``<lab>-<i>i`` (``<lab>-cp`` / ``<lab>-ci`` for the client namespace
``<lab>-client``, host number 200 on both LANs; ``<lab>-rp`` / ``<lab>-ri`` for the router
``<lab>-router``, host number 254). All addresses are in 198.18.0.0/15 and exist
only inside the lab's network namespaces; the bridges have none, so nothing is routed to or from
the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class LabError(Exception):
    """A lab operation that cannot be done; the message is meant for the operator."""


RUN_DIR = Path("/run/clplab")
VAR_DIR = Path("/var/lib/clplab")
CREATED_DIRS = RUN_DIR / "created-dirs.json"  # mount point dirs the lab made on the host
LINKS = {"pub": ("p", "eth0", 0), "ic1": ("i", "eth1", 1)}  # link -> (suffix, in-ns name, net)
CLIENT = "client"  # the client machine / ping target: netns <lab>-client, host number 200
CLIENT_HOST = 200
ROUTER = "router"  # the ping target, witness and HTTP target: netns <lab>-router (clp.lab.router)
CMD_TIMEOUT = 20.0


def poll(what: str, probe: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """``probe()`` until it answers something truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(step)
    raise LabError(f"timed out after {timeout:g} s waiting for {what}")


def run(argv: list[str], check: bool = True, input: str | None = None) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, input=input,
                           timeout=CMD_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{' '.join(argv)}: {e}") from None
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def bridge_name(lab: str, link: str) -> str:
    return f"{lab}-{link}"


def host_port(lab: str, index: int | str, link: str) -> str:
    """Host end of a cable: ``<lab>-<i>p`` for server i, ``<lab>-cp`` for the client."""
    return f"{lab}-{index}{LINKS[link][0]}"


def address(index: int, link: str) -> str:
    return f"198.18.{LINKS[link][2]}.{index}"


def base_addresses(index: int) -> dict[str, str]:
    """In-namespace interface -> the address/prefix it boots with (``eth0`` -> 198.18.0.i/24)."""
    return {inner: f"{address(index, link)}/24" for link, (_, inner, _) in LINKS.items()}


def netns_name(lab: str, server: str) -> str:
    return f"{lab}-{server}"


def _quiet_ipv6(ifname: str) -> None:
    """No link-local address or router solicitation from the host side of the lab."""
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")


def add_bridge(lab: str, link: str) -> None:
    br = bridge_name(lab, link)
    run(["ip", "link", "add", br, "type", "bridge", "nf_call_iptables", "0",
         "nf_call_ip6tables", "0", "nf_call_arptables", "0"])
    _quiet_ipv6(br)
    run(["ip", "link", "set", br, "up"])


def add_netns(lab: str, server: str) -> None:
    ns = netns_name(lab, server)
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def add_cable(lab: str, server: str, index: int, link: str) -> None:
    """A veth pair: host end on the link's bridge, other end ``eth0``/``eth1`` in the netns."""
    _cable(lab, netns_name(lab, server), host_port(lab, index, link), link, address(index, link))


def add_client(lab: str) -> None:
    """The client machine: its own netns on both LANs, host number 200."""
    add_host(lab, CLIENT, "c", CLIENT_HOST)


def add_host(lab: str, name: str, port_index: str, host: int) -> None:
    """A plain machine on both LANs (the client, the router): netns ``<lab>-<name>``, host
    number ``host``, host ends of its cables ``<lab>-<port_index>p`` / ``...i``."""
    add_netns(lab, name)
    for link in LINKS:
        _cable(lab, netns_name(lab, name), host_port(lab, port_index, link), link,
               address(host, link))


def _cable(lab: str, ns: str, port: str, link: str, addr: str) -> None:
    inner = LINKS[link][1]
    run(["ip", "link", "add", port, "type", "veth", "peer", "name", inner, "netns", ns])
    _quiet_ipv6(port)
    run(["ip", "link", "set", port, "master", bridge_name(lab, link)])
    run(["ip", "link", "set", port, "up"])
    run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", inner])
    run(["ip", "-n", ns, "link", "set", inner, "up"])


def set_port(lab: str, index: int | str, link: str, up: bool) -> None:
    set_ports(lab, index, [link], up)


def set_ports(lab: str, index: int | str, links: Iterable[str], up: bool) -> None:
    """Every cable of ``links`` up or down in one ``ip`` process (one batch: the cables go
    within a millisecond of each other, not an ``ip`` start apart)."""
    state, links = "up" if up else "down", list(links)
    if links:
        run(["ip", "-batch", "-"],
            input="".join(f"link set {host_port(lab, index, link)} {state}\n" for link in links))


# addresses inside a namespace (ns None: the caller's own, as in the lab init)
def _ip(ns: str | None) -> list[str]:
    return ["ip", "-n", ns] if ns else ["ip"]


def ip_addresses(ns: str | None) -> list[tuple[str, str]]:
    """(interface, address/prefix) of every IPv4 and global IPv6 address, lo excluded."""
    try:
        links = json.loads(run([*_ip(ns), "-j", "addr", "show"]) or "[]")
    except ValueError as e:
        raise LabError(f"ip -j addr show: unreadable output ({e})") from None
    found = []
    for link in links:
        for a in link.get("addr_info", []):
            v4, v6 = a.get("family") == "inet", a.get("family") == "inet6"
            if link.get("ifname") != "lo" and (v4 or (v6 and a.get("scope") == "global")):
                found.append((link["ifname"], f"{a['local']}/{a['prefixlen']}"))
    return found


def reset_addresses(base: dict[str, str], ns: str | None = None) -> None:
    """Leave only the boot address on each interface of ``base``, as after a power cycle: the
    floating IPs a cluster added must not outlive the server that added them."""
    have = ip_addresses(ns)
    for ifname, cidr in have:
        if ifname in base and cidr != base[ifname]:
            run([*_ip(ns), "addr", "del", cidr, "dev", ifname], check=False)
    for ifname, cidr in base.items():
        if (ifname, cidr) not in have:
            run([*_ip(ns), "addr", "add", cidr, "dev", ifname], check=False)


def nft_table(lab: str) -> str:
    return f"clplab_{lab}"


def partition_rules(lab: str, groups: list[list[int | str]]) -> str:
    """nft script for a bridge-family table dropping frames between any two groups."""
    def ports(group: list[int | str]) -> str:
        names = [host_port(lab, i, link) for i in group for link in LINKS]
        return "{ " + ", ".join(f'"{n}"' for n in names) + " }"

    rules = [f"    iifname {ports(a)} oifname {ports(b)} drop"
             for ai, a in enumerate(groups) for bi, b in enumerate(groups) if ai != bi]
    table = nft_table(lab)
    return (f"table bridge {table} {{}}\ndelete table bridge {table}\n"
            f"table bridge {table} {{\n  chain filter {{\n"
            "    type filter hook forward priority 0; policy accept;\n"
            + "\n".join(rules) + "\n  }\n}\n")


def apply_partition(lab: str, groups: list[list[int | str]]) -> None:
    run(["nft", "-f", "-"], input=partition_rules(lab, groups))


def delete_partition(lab: str) -> None:
    if nft_table(lab) in nft_tables():
        run(["nft", "delete", "table", "bridge", nft_table(lab)])


def nft_tables() -> list[str]:
    out = run(["nft", "list", "tables", "bridge"], check=False)
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table bridge ")]


def netns_list() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]


def link_list() -> list[str]:
    names = []
    for line in run(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(":", 2)
        if len(parts) > 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def lab_link_re(lab: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(lab)}-(pub|ic1|\d+[pi]|[cr][pi])$")


def delete_link(name: str) -> None:
    run(["ip", "link", "del", name], check=False)


def delete_netns(ns: str) -> None:
    run(["ip", "netns", "del", ns], check=False)


def netns_pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


# processes
def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def lab_pids(lab: str | None, server: str | None = None) -> list[int]:
    """Processes started for a lab (its env has ``CLPLAB``), except this one."""
    found = []
    for pid in all_pids():
        env = environ_of(pid)
        if "CLPLAB" not in env or pid == os.getpid():
            continue
        if lab is not None and env["CLPLAB"] != lab:
            continue
        if server is not None and env.get("CLPLAB_SERVER") != server:
            continue
        found.append(pid)
    return found


def proc_state(pid: int) -> str | None:
    """One-letter state from /proc (R, S, T, Z, ...), None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def pidns_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pids_in_pidns(ns: str) -> list[int]:
    return [pid for pid in all_pids() if pidns_of(pid) == ns]


def first_child(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return None
    kids = [int(p) for p in text.split()]
    return kids[0] if kids else None


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_all(pids: Iterable[int]) -> None:
    pids = list(pids)
    signal_all(pids, signal.SIGKILL)
    signal_all(pids, signal.SIGCONT)


def host_mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below ``prefix`` in this mount namespace, deepest first."""
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == str(prefix) or point.startswith(str(prefix) + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)
