"""The network half of the cluster-wide alert log: one thread of ``clusterpro_alertsync``.

UDP on ``cluster.ports.alertsync`` (29003, as the product), one socket per LAN interconnect bound
to this server's address on it; a message to a peer goes on every interconnect both have (the
receiver keeps an alert once, whichever came first), so the log is shipped while one
interconnect is down. Every datagram is a :mod:`clp.net.frames` frame (length, JSON, HMAC-SHA256
with the cluster key) naming the cluster and the sender; one that is malformed, fails
authentication, names another cluster, an unknown server, or comes from an address that is not
the sender's is dropped and counted, the first of each kind logged. A replayed datagram does
nothing: alerts are kept once by their seq, and an old ack only causes a resend.

The thread reads the local alert.log every :data:`POLL` seconds (:mod:`clp.alert.tail`), and
acknowledges and resends every :data:`clp.alert.sync.ACK_EVERY` (:class:`clp.alert.sync.SyncNode`).
It starts when clp.conf and the cluster key load, and takes a changed clp.conf (servers,
addresses, port) and a changed key file without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from clp.alert.clusterlog import cluster_dir
from clp.alert.sync import ACK_EVERY, Out, SyncNode
from clp.alert.tail import AlertLogTail
from clp.config.model import ClusterConfig
from clp.keys import KeyFileError, load_key
from clp.net.frames import FrameError, frame_length, pack, unpack_body
from clp.paths import InstallRoot, file_stamp

POLL = 0.2  # seconds between two reads of alert.log
MAX_DATAGRAM = 65_507
log = logging.getLogger("clp.alertsync")


@dataclass(frozen=True)
class Topology:
    """Who to talk to, and where: per LAN interconnect, my address and each peer's."""

    cluster: str
    port: int
    paths: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (my address, ((peer, addr),))
    servers: tuple[str, ...]

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for _, ps in self.paths for p, _a in ps))

    def addresses_of(self, peer: str) -> set[str]:
        return {a for _, ps in self.paths for p, a in ps if p == peer}


def topology(config: ClusterConfig, me: str) -> Topology:
    paths = []
    for ic in config.interconnects:
        if ic.type != "lan" or me not in ic.addresses:
            continue
        peers = tuple((s, ic.addresses[s]) for s in ic.servers
                      if s != me and s in ic.addresses)
        paths.append((ic.addresses[me], peers))
    return Topology(config.name, config.ports.alertsync, tuple(paths), config.server_names)


class AlertSync:
    def __init__(self, root: InstallRoot, me: str) -> None:
        self.root = root
        self.me = me
        self.dropped: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._wanted: tuple[Topology, bytes] | None = None
        self._said = ""  # the last configuration problem logged (said once)
        self._stop = threading.Event()
        self.failed = False  # the thread ended on a bug
        self.key_stamp: tuple[int, int, int] | None = None  # the key file's, when read from it
        self._thread: threading.Thread | None = None
        self.topo: Topology | None = None
        self.key = b""
        self.node: SyncNode | None = None
        self.tail: AlertLogTail | None = None
        self.sel = selectors.DefaultSelector()
        self.socks: dict[str, socket.socket] = {}  # my address -> its socket

    # configuration (from the alert service's thread)
    def configure(self, config: ClusterConfig) -> None:
        if self.me not in config.server_names:
            self._say(f"cluster-wide alert log: this server ({self.me}) is not in clp.conf")
            return
        stamp = file_stamp(self.root.key_file)
        try:
            key = load_key(self.root.key_file)
        except KeyFileError as e:
            self._say(f"cluster-wide alert log: {e}")
            return
        self._said = ""
        self.key_stamp = stamp
        self.start(topology(config, self.me), key)

    def _reload_key(self) -> None:
        """A cluster key changed on disk (a new one distributed) is used from the next tick; one
        that does not load leaves the key in force (said once)."""
        stamp = file_stamp(self.root.key_file)
        if self.key_stamp is None or stamp == self.key_stamp:
            return
        self.key_stamp = stamp
        try:
            self.key = load_key(self.root.key_file)
        except KeyFileError as e:
            log.error("cluster-wide alert log: %s; the key in force stays", e)
            return
        log.info("cluster-wide alert log: the cluster key changed; using the new one")

    def start(self, topo: Topology, key: bytes) -> None:
        """Ship and take alerts as ``topo`` says (again: a changed topology is taken at once)."""
        with self._lock:
            self._wanted = (topo, key)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alertsync-net", daemon=True)
            self._thread.start()

    def _say(self, why: str) -> None:
        if why != self._said:
            self._said = why
            log.error("%s; alerts are not shipped to or taken from the other servers", why)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for s in self.socks.values():
            s.close()
        if self.dropped or (self.node and self.node.dropped):
            log.info("cluster-wide alert log: dropped datagrams: %s",
                     dict(self.dropped + (self.node.dropped if self.node else Counter())))

    # the thread
    def _apply(self) -> None:
        with self._lock:
            wanted, self._wanted = self._wanted, None
        if wanted is None:
            return
        topo, self.key = wanted
        if self.node is None:
            self.node = SyncNode(self.me, cluster_dir(self.root), topo.peers)
            self.tail = AlertLogTail(self.root.alert_log, self.node.pos)
        else:
            self.node.set_peers(topo.peers)
        if self.topo is None or (self.topo.port, self._mine(self.topo)) != \
                (topo.port, self._mine(topo)):
            self._close_sockets()
        self.topo = topo
        self._bind()

    @staticmethod
    def _mine(topo: Topology) -> tuple[str, ...]:
        return tuple(sorted(a for a, _ in topo.paths))

    def _close_sockets(self) -> None:
        for s in self.socks.values():
            self.sel.unregister(s)
            s.close()
        self.socks.clear()

    def _bind(self) -> None:
        """A socket on each of my interconnect addresses not bound yet (again each tick: an
        address may come up after the service)."""
        assert self.topo is not None
        for addr, _ in self.topo.paths:
            if addr in self.socks:
                continue
            s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                              socket.SOCK_DGRAM)
            try:
                s.bind((addr, self.topo.port))
            except OSError as e:
                s.close()
                self._say(f"cluster-wide alert log: cannot listen on {addr} port "
                          f"{self.topo.port}: {e.strerror}")
                continue
            s.setblocking(False)
            self.socks[addr] = s
            self.sel.register(s, selectors.EVENT_READ)
            log.info("cluster-wide alert log: listening on %s port %d", addr, self.topo.port)

    def _run(self) -> None:
        last_tick = last_poll = 0.0
        try:
            while not self._stop.is_set():
                self._apply()
                for k, _ in self.sel.select(POLL):
                    self._recv(k.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                if now - last_poll >= POLL:
                    last_poll = now
                    self._poll_local()
                if now - last_tick >= ACK_EVERY and self.node is not None:
                    last_tick = now
                    self._bind()
                    self._reload_key()
                    self._send(self.node.tick())
        except Exception:  # a bug: said, and the alert service exits for its supervisor to
            log.exception("cluster-wide alert log: the shipping thread failed")  # restart it
            self.failed = True

    def _poll_local(self) -> None:
        if self.node is None or self.tail is None:
            return
        items = self.tail.read()
        if items:
            self._send(self.node.add_local(items))

    def _send(self, outs: list[Out]) -> None:
        assert self.topo is not None
        for peer, msg in outs:
            data = pack(self.key, {**msg, "cluster": self.topo.cluster, "time": time.time()})
            for mine, peers in self.topo.paths:
                sock = self.socks.get(mine)
                for p, addr in peers:
                    if p == peer and sock is not None:
                        with contextlib.suppress(OSError):  # unreachable now: resent later
                            sock.sendto(data, (addr, self.topo.port))

    def _recv(self, sock: socket.socket) -> None:
        while True:
            try:
                data, src = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error of an earlier send
                continue
            msg = self._check(data, src[0])
            if msg is not None and self.node is not None:
                self._send(self.node.receive(msg))

    def _check(self, data: bytes, src: str) -> dict[str, Any] | None:
        try:
            if len(data) < 36 or frame_length(data[:4]) != len(data) - 36:
                raise FrameError("malformed")
            msg = unpack_body(self.key, data[:4], data[4:])
        except FrameError as e:
            return self._drop(str(e), src)
        assert self.topo is not None
        if msg.get("cluster") != self.topo.cluster:
            return self._drop("another cluster", src)
        sender = msg.get("from")
        if not isinstance(sender, str) or src not in self.topo.addresses_of(sender):
            return self._drop("not from the sender's address", src)
        return msg

    def _drop(self, why: str, src: str) -> None:
        self.dropped[why] += 1
        if self.dropped[why] == 1:
            log.warning("cluster-wide alert log: dropped a datagram from %s (%s); such "
                        "datagrams are counted, this is said once", src, why)
        return None
