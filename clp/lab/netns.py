"""Namespace plumbing of the lab: bridges, veth pairs, named netns, nft partitions, processes.

Every helper runs one iproute2/nft command or reads ``/proc``; nothing here knows about lab.json.
Names are kept within the kernel's 15-character interface limit: a lab name has at most 8
characters, bridges are ``<lab>-pub`` / ``<lab>-ic1`` and the host ends of server i's cables are
``<lab>-<i>p`` / ``<lab>-<i>i``. All addresses are in 198.18.0.0/15 and exist only inside the
servers' network namespaces; the bridges have none, so nothing is routed to or from the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


class LabError(Exception):
    """A lab operation that cannot be done; the message is meant for the operator."""


RUN_DIR = Path("/run/clplab")
VAR_DIR = Path("/var/lib/clplab")
CREATED_DIRS = RUN_DIR / "created-dirs.json"  # mount point dirs the lab made on the host
LINKS = {"pub": ("p", "eth0", 0), "ic1": ("i", "eth1", 1)}  # link -> (suffix, in-ns name, net)
CMD_TIMEOUT = 20.0


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


def host_port(lab: str, index: int, link: str) -> str:
    return f"{lab}-{index}{LINKS[link][0]}"


def address(index: int, link: str) -> str:
    return f"198.18.{LINKS[link][2]}.{index}"


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
    port, (_, inner, _) = host_port(lab, index, link), LINKS[link]
    ns = netns_name(lab, server)
    run(["ip", "link", "add", port, "type", "veth", "peer", "name", inner, "netns", ns])
    _quiet_ipv6(port)
    run(["ip", "link", "set", port, "master", bridge_name(lab, link)])
    run(["ip", "link", "set", port, "up"])
    run(["ip", "-n", ns, "addr", "add", f"{address(index, link)}/24", "dev", inner])
    run(["ip", "-n", ns, "link", "set", inner, "up"])


def set_port(lab: str, index: int, link: str, up: bool) -> None:
    run(["ip", "link", "set", host_port(lab, index, link), "up" if up else "down"])


def nft_table(lab: str) -> str:
    return f"clplab_{lab}"


def partition_rules(lab: str, groups: list[list[int]]) -> str:
    """nft script for a bridge-family table dropping frames between any two groups."""
    def ports(group: list[int]) -> str:
        names = [host_port(lab, i, link) for i in group for link in LINKS]
        return "{ " + ", ".join(f'"{n}"' for n in names) + " }"

    rules = [f"    iifname {ports(a)} oifname {ports(b)} drop"
             for ai, a in enumerate(groups) for bi, b in enumerate(groups) if ai != bi]
    table = nft_table(lab)
    return (f"table bridge {table} {{}}\ndelete table bridge {table}\n"
            f"table bridge {table} {{\n  chain filter {{\n"
            "    type filter hook forward priority 0; policy accept;\n"
            + "\n".join(rules) + "\n  }\n}\n")


def apply_partition(lab: str, groups: list[list[int]]) -> None:
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
    return re.compile(rf"^{re.escape(lab)}-(pub|ic1|\d+[pi])$")


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


# cleanup: everything of a lab, found again from the system itself
def known_labs() -> list[str]:
    """Every lab name with something left: state dirs, netns, links, nft tables, processes."""
    names: set[str] = set()
    for d in (RUN_DIR, VAR_DIR):
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.is_dir())
    names.update(t.removeprefix("clplab_") for t in nft_tables() if t.startswith("clplab_"))
    pattern = re.compile(r"^([a-z0-9]{1,8})-(server\d+|pub|ic1)$")
    for item in (*netns_list(), *link_list()):
        if m := pattern.match(item):
            names.add(m.group(1))
    names.update(environ_of(pid)["CLPLAB"] for pid in lab_pids(None))
    return sorted(n for n in names if re.match(r"^[a-z0-9]{1,8}$", n))


def cleanup_lab(lab: str) -> None:
    namespaces = [ns for ns in netns_list() if ns.startswith(f"{lab}-")]
    victims = set(lab_pids(lab))
    for ns in namespaces:
        victims.update(netns_pids(ns))
    victims.discard(os.getpid())
    kill_all(victims)
    deadline = time.monotonic() + 5.0
    while any(alive(p) for p in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    if nft_table(lab) in nft_tables():
        run(["nft", "delete", "table", "bridge", nft_table(lab)], check=False)
    for ns in namespaces:
        delete_netns(ns)
    pattern = lab_link_re(lab)
    for link in link_list():
        if pattern.match(link):
            delete_link(link)
    for base in (VAR_DIR / lab, RUN_DIR / lab):
        for point in host_mounts_under(base):
            run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)


def remove_shared_dirs() -> None:
    """Once no lab is left: the lab's top directories and the mount point dirs it created."""
    labs = [p for d in (RUN_DIR, VAR_DIR) if d.is_dir() for p in d.iterdir() if p.is_dir()]
    if labs:
        return
    created: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        created = json.loads(CREATED_DIRS.read_text())
    for d in sorted(created, key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)  # only if empty: never anything a real installation put there
    with contextlib.suppress(OSError):
        CREATED_DIRS.unlink()
    for d in (RUN_DIR, VAR_DIR):
        with contextlib.suppress(OSError):
            d.rmdir()
