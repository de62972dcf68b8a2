"""The faults a lab can inject into its servers and links (DESIGN section 9).

A mixin of :class:`clp.lab.Lab`: it works on the lab's record (``self.doc``) and its lookups.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clp.lab import com_cable, hb_disk, shared_disk, watchdog
from clp.lab import netns as nx
from clp.lab import router as lab_router
from clp.lab.netns import LINKS, LabError

if TYPE_CHECKING:
    from collections.abc import Callable

STOP_WAIT = 5.0
CRASH_GRACE = 1.0  # SIGKILLed processes end at once, or are blocked (D state) on a hung path
DISK_LINK = re.compile(r"^disk\d+$")  # clplab unplug/plug SERVER disk1: its path to disk1


class Faults:
    name: str
    doc: dict[str, Any]
    servers: list[str]

    if TYPE_CHECKING:
        index: Callable[[str], int]
        _live_init: Callable[[str], int]
        _init_pid: Callable[[str], int | None]
        _save: Callable[[], None]
        _boot: Callable[[str], None]
        _wait_ready: Callable[[str], None]
        disk_path: Callable[[str, str | int, str], None]

    def _server_pids(self, server: str) -> list[int]:
        ns = nx.pidns_of(self._live_init(server))
        return nx.pids_in_pidns(ns) if ns else []

    def _reset_addresses(self, server: str) -> None:
        nx.reset_addresses(nx.base_addresses(self.index(server)),
                           nx.netns_name(self.name, server))

    def crash(self, server: str) -> None:
        """Power-off: SIGKILL to the pid namespace's init takes every process with it, and with
        the last of them the mount namespace and its mounts; the addresses the cluster added go
        too. A hung server's cables come back: a crashed server is not frozen any more.

        The server's hung disk paths fail (``eio``) and stay so: a powered-off server's held I/O
        is lost, never written later (its processes blocked on the path, and the kernel's
        unmount of its dying mount namespace, unwind with EIO).

        Its working disk paths are cut at the same instant (``eio`` until :meth:`restart`): what
        it had not written by then is lost, as on a real power-off. Without the cut, the
        kernel's unmount of its dying mount namespace would write the journal and close the
        file system cleanly, and the survivor would never replay a journal; with it, the
        survivor mounts a file system whose journal needs recovery, and what was acknowledged
        by ``fsync`` before the crash must be there after it.

        The power goes at one instant for the network too: every process is stopped, then
        every cable cut at once, and only then is the server killed. Killing the processes and
        removing the addresses takes tens of milliseconds, during which its kernel would still
        answer ARP for a floating IP (a failover at a 10 ms heartbeat is over by then), and a
        process that outlived its cables could react to them going dark (keepalived does, and
        its failover looked 1.6 s faster than a crash). Its cables are plugged back once its
        addresses are reset. An ``nsenter`` that started a command inside stopped itself with
        it (it passes job control on): it is continued, to reap its child."""
        pid = self._live_init(server)
        ns = nx.pidns_of(pid)
        nx.signal_all(self._server_pids(server), signal.SIGSTOP)
        watchdog.disarm(self.doc, server)  # powered off: its watchdog stops with it
        nx.set_ports(self.name, self.index(server), LINKS, up=False)
        try:
            self._cut_disk_paths(server)
        finally:  # the power goes whatever the path daemon says
            nx.kill_all([pid])
        nx.signal_all(nx.lab_pids(self.name, server), signal.SIGCONT)

        def only_blocked_left() -> bool:  # so no live process of it ever sees the EIO
            return all(nx.proc_state(p) in (None, "D", "Z", "X")
                       for p in (nx.pids_in_pidns(ns) if ns else []) if p != pid)

        with contextlib.suppress(LabError):
            nx.poll(f"the processes of {server} to die or block", only_blocked_left, CRASH_GRACE)
        self._release_hung_paths(server)
        nx.poll(f"every process of {server} to die",
                lambda: not (ns and nx.pids_in_pidns(ns)) and not nx.alive(pid), STOP_WAIT)
        self._reset_addresses(server)
        self._thaw_ports(server)

    def _cut_disk_paths(self, server: str) -> None:
        """The server's working disk paths fail from now on (its writes stop with its power);
        :meth:`restart` gives them back (the daemon keeps them as ``cut``)."""
        prefix = f"{server}-"
        working = [n for n, m in shared_disk.modes(self.name).items()
                   if n.startswith(prefix) and m == "ok"]
        if working:
            shared_disk.set_mode(self.name, working, shared_disk.CUT)

    def _release_hung_paths(self, server: str) -> None:
        prefix = f"{server}-"
        hung = [n for n, m in shared_disk.modes(self.name).items()
                if n.startswith(prefix) and m == "hang"]
        if hung:
            shared_disk.set_mode(self.name, hung, "eio")

    def hang(self, server: str, live: bool = False) -> None:
        """A frozen machine: every process gets SIGSTOP. Its cables go dark too, so it answers
        neither ARP nor ping; ``live``: they stay up, as when only user space hangs, and its
        kernel goes on answering ARP for its addresses and writing to its disks (the danger a
        watchdog is for)."""
        pids = self._server_pids(server)
        if not live:
            nx.set_ports(self.name, self.index(server), LINKS, up=False)
        if server not in self.doc.setdefault("hung", []):
            self.doc["hung"].append(server)
        self._save()
        nx.signal_all(pids, signal.SIGSTOP)

    def resume(self, server: str) -> None:
        """SIGCONT to every process (and to an ``nsenter`` that stopped with the command it
        started inside), then its cables up again (except those unplugged)."""
        nx.signal_all([*self._server_pids(server), *nx.lab_pids(self.name, server)],
                      signal.SIGCONT)
        self._thaw_ports(server)

    def _thaw_ports(self, server: str) -> None:
        nx.set_ports(self.name, self.index(server),
                     [link for link in LINKS if [server, link] not in self.doc["unplugged"]],
                     up=True)
        self.doc["hung"] = [s for s in self.doc.get("hung", []) if s != server]
        self._save()

    def restart(self, server: str) -> None:
        """Boot a crashed (or shut down) server again, with only its boot addresses."""
        self.index(server)
        if self._init_pid(server) is not None:
            raise LabError(f"{server} is running; crash it first")
        self._reset_addresses(server)
        self._thaw_ports(server)
        prefix = f"{server}-"
        cut = [n for n, m in shared_disk.modes(self.name).items()
               if n.startswith(prefix) and m == shared_disk.CUT]
        if cut:  # powered on again: its disk paths work again (not those hung or unplugged)
            shared_disk.set_mode(self.name, cut, "ok")
        self._boot(server)
        self._wait_ready(server)

    def _check_link(self, link: str) -> None:
        if link not in LINKS:
            raise LabError(f"unknown link {link!r} (links: {', '.join(LINKS)})")

    def unplug(self, server: str, link: str) -> None:
        """Pull a cable: ``pub``/``ic1``, ``diskhb`` (its heartbeat disk path), ``comhb`` (the
        serial cable) or ``disk<n>`` (its path to shared disk n fails: :meth:`disk_path` eio)."""
        if DISK_LINK.match(link):
            return self.disk_path(server, link, "eio")
        if link == hb_disk.LINK:
            return self._set_diskhb(server, plugged=False)
        if link == com_cable.LINK:  # the serial cable: socat stops, both ends lose it
            return com_cable.unplug(self, server)
        self._check_link(link)
        nx.set_port(self.name, self._port_index(server), link, up=False)
        if [server, link] not in self.doc["unplugged"]:
            self.doc["unplugged"].append([server, link])
        self._save()

    def plug(self, server: str, link: str) -> None:
        """Plug the cable back; a hung server's cable stays dark until it is resumed.
        ``disk<n>``: its path to shared disk n works again (:meth:`disk_path` ok)."""
        if DISK_LINK.match(link):
            return self.disk_path(server, link, "ok")
        if link == hb_disk.LINK:
            return self._set_diskhb(server, plugged=True)
        if link == com_cable.LINK:
            return com_cable.plug(self, server)
        self._check_link(link)
        if server not in self.doc.get("hung", []):
            nx.set_port(self.name, self._port_index(server), link, up=True)
        self.doc["unplugged"] = [u for u in self.doc["unplugged"] if u != [server, link]]
        self._save()

    def _set_diskhb(self, server: str, plugged: bool) -> None:
        """``server``'s path to the heartbeat disk dies or comes back (see clp.lab.hb_disk)."""
        self.index(server)
        loop = hb_disk.loop_of(self.doc, server)
        if plugged:
            hb_disk.repair(loop)
        else:
            hb_disk.fail(loop)
        self.doc["unplugged"] = [u for u in self.doc["unplugged"] if u != [server, hb_disk.LINK]]
        if not plugged:
            self.doc["unplugged"].append([server, hb_disk.LINK])
        self._save()

    def partition(self, groups: list[list[str]]) -> None:
        """No frame crosses between two groups, on either LAN; servers in no group see all.
        The lab's router may be put in a group too (``router``)."""
        flat = [s for g in groups for s in g]
        if len(groups) < 2 or any(not g for g in groups):
            raise LabError("a partition needs at least two non-empty groups")
        if len(set(flat)) != len(flat):
            raise LabError("a server can be in only one group of a partition")
        nx.apply_partition(self.name, [[self._port_index(s) for s in g] for g in groups])
        self.doc["partition"] = groups
        self._save()

    def heal(self) -> None:
        nx.delete_partition(self.name)
        self.doc["partition"] = None
        self._save()

    # the router (clp.lab.router): its cables are unplugged as "router", its witness stops
    def _port_index(self, server: str) -> int | str:
        """What names ``server``'s cables on the host (clp.lab.netns.host_port)."""
        if server == lab_router.ROUTER and self.doc.get("router"):
            return lab_router.PORT_INDEX
        return self.index(server)

    # monitor faults: a process dies, an address is taken by another host
    def pids(self, server: str, pattern: str) -> list[int]:
        """Host pids of the server's processes whose command line contains ``pattern``."""
        found = []
        for pid in self._server_pids(server):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if pattern.encode() in argv and nx.proc_state(pid) not in ("Z", "X", None):
                    found.append(pid)
        return sorted(found)

    def kill(self, server: str, pattern: str, sig: int = signal.SIGKILL) -> list[int]:
        """A process of the server dies (SIGKILL by default): every process whose command line
        contains ``pattern``; the pids killed (LabError when none matches)."""
        pids = self.pids(server, pattern)
        if not pids:
            raise LabError(f"no process of {server} matches {pattern!r}")
        nx.signal_all(pids, sig)
        return pids

    def duplicate_address(self, address: str) -> None:
        """Another host on the public LAN takes ``address`` (the client machine adds it), as
        the seed's row "floating IP already used" needs: it answers ARP and ping for it."""
        self._client_address("add", address)

    def remove_duplicate_address(self, address: str) -> None:
        self._client_address("del", address)

    def _client_address(self, action: str, address: str) -> None:
        net = ipaddress.ip_network(f"{address}/24", strict=False)
        if not ipaddress.ip_network("198.18.0.0/15").supernet_of(net):
            raise LabError(f"{address} is not in the lab's range 198.18.0.0/15")
        ns = nx.netns_name(self.name, nx.CLIENT)
        nx.run(["ip", "netns", "exec", ns, "ip", "addr", action, f"{address}/24",
                "dev", "eth0"], check=action == "add")

    def witness_stop(self) -> None:
        """The witness server dies (SIGTERM); the router still answers pings."""
        lab_router.stop_witness(self)

    def witness_start(self) -> None:
        """Start the witness again (nothing if it runs); returns once it listens."""
        lab_router.start_witness(self)
