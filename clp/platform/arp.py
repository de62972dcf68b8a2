"""ARP on Linux through an AF_PACKET socket: the duplicate-address probe and gratuitous ARP of
floating IPs, without spawning ``arping``.

``arping`` counts in whole seconds (``-w 1`` at best) and stays until its last packet is sent, so
a floating IP's start took over two seconds before the next resource could begin. Here the probe
waits ``timeout`` (a fraction of a second: a LAN answers ARP in well under a millisecond) and the
announcement sends its first packet at once and the repeats from a background thread.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
import time
from pathlib import Path

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa
REQUEST, REPLY = 1, 2


def _mac(iface: str) -> bytes:
    text = Path(f"/sys/class/net/{iface}/address").read_text().strip()
    return bytes.fromhex(text.replace(":", ""))


def _frame(src_mac: bytes, sender_ip: bytes, target_ip: bytes) -> bytes:
    eth = BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
    return eth + _ARP.pack(1, 0x0800, 6, 4, REQUEST, src_mac, sender_ip, b"\0" * 6, target_ip)


def _socket(iface: str) -> socket.socket:
    """A packet socket for ARP on ``iface``. Made with protocol 0 and bound to ARP after: a
    protocol given at creation is registered twice (at creation, again at bind), and the
    kernel waits for an RCU grace period (~8 ms) each time one is unregistered."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((iface, ETH_P_ARP))
    except BaseException:  # no such interface: do not leak the socket
        s.close()
        raise
    return s


def _close_later(s: socket.socket) -> None:
    """Close ``s`` in the background: closing a packet socket waits for an RCU grace period
    (8-16 ms), which a floating IP's start need not spend."""
    threading.Thread(target=s.close, name="arp-close", daemon=True).start()


def _answers(data: bytes, target: bytes, mac: bytes) -> bool:
    """Whether the frame ``data`` is another host's ARP reply for the address ``target``."""
    if len(data) < 14 + _ARP.size:
        return False
    _, _, _, _, op, sha, spa, _, _ = _ARP.unpack_from(data, 14)
    return op == REPLY and spa == target and sha != mac


def probe(iface: str, ip: str, timeout: float = 0.2, count: int = 2) -> bool:
    """Does any other host answer ARP for ``ip`` on ``iface``? (RFC 5227 probe: sender IP 0)."""
    target = ipaddress.IPv4Address(ip).packed
    mac = _mac(iface)
    s = _socket(iface)
    try:
        deadline = time.monotonic() + timeout
        sends = [deadline - timeout + i * timeout / count for i in range(count)]
        while True:
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                s.send(_frame(mac, b"\0" * 4, target))
            if now >= deadline:
                return False
            wait = min([deadline, *sends[:1]]) - now
            if not select.select([s], [], [], max(wait, 0))[0]:
                continue
            if _answers(s.recv(2048), target, mac):
                return True
    finally:
        _close_later(s)


def announce(iface: str, ip: str, count: int = 3, spacing: float = 0.2) -> None:
    """Gratuitous ARP for ``ip``: the first packet now, the others ``spacing`` apart, behind."""
    if count <= 0:
        return
    addr = ipaddress.IPv4Address(ip).packed
    frame = _frame(_mac(iface), addr, addr)
    s = _socket(iface)
    try:
        s.send(frame)
    except BaseException:  # the caller logs the error; the socket must not leak
        s.close()
        raise
    if count == 1:
        _close_later(s)
        return

    def repeat() -> None:
        with s:
            for _ in range(count - 1):
                time.sleep(spacing)
                try:
                    s.send(frame)
                except OSError:  # the address or interface went away meanwhile
                    return

    threading.Thread(target=repeat, name=f"garp-{ip}", daemon=True).start()


class Watch:
    """ARP probes for ``ip`` on ``iface`` every ``period`` seconds from a thread, for at most
    ``lifetime`` seconds, remembering when it began and when an answer last came.

    The cluster service watches a floating IP while the server that holds it is late (see
    :mod:`clp.clusterd.fipwatch`), so that when the server is declared down and the address
    is to start here, the duplicate-address check has already been running (:func:`answers`).
    """

    def __init__(self, iface: str, ip: str, period: float, lifetime: float) -> None:
        self.iface, self.ip, self.period = iface, ip, period
        self._target = ipaddress.IPv4Address(ip).packed
        self._mac = _mac(iface)
        self._frame = _frame(self._mac, b"\0" * 4, self._target)
        self._sock = _socket(iface)
        self._stop = threading.Event()
        self._answer = threading.Condition()
        self.started = time.monotonic()
        self._until = self.started + lifetime
        self.answered: float | None = None  # monotonic time of the last answer
        self._thread = threading.Thread(target=self._run, name=f"arpwatch-{ip}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = self._frame
        next_send = time.monotonic()
        with self._sock as s:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= self._until:
                    return
                if now >= next_send:
                    try:
                        s.send(frame)
                    except OSError:  # the interface went away: no coverage any more
                        return
                    next_send = max(next_send + self.period, now)
                if not select.select([s], [], [], max(0.0, next_send - now))[0]:
                    continue
                if _answers(s.recv(2048), self._target, self._mac):
                    with self._answer:
                        self.answered = time.monotonic()
                        self._answer.notify_all()

    def confirm(self, wait: float) -> bool:
        """One more probe now, from the watch's own socket: answered within ``wait`` seconds?
        Raises OSError when the watch has ended meanwhile (its socket is closed)."""
        sent = time.monotonic()
        self._sock.send(self._frame)
        with self._answer:
            return self._answer.wait_for(
                lambda: self.answered is not None and self.answered >= sent, timeout=wait)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()


_watches: dict[str, Watch] = {}
_watch_lock = threading.Lock()
FINAL_PROBE = 0.01  # the most the one probe after a watch that saw nothing waits (a LAN
#                    answers in < 1 ms); less when the watch's own probes are closer together


def keep_watching(wanted: dict[str, str], period: float, lifetime: float) -> list[str]:
    """Watch exactly the addresses of ``wanted`` (ip -> interface): start the missing watches,
    stop the others. Returns the addresses whose watch could not start (why: logged by the
    caller; their check is then the plain probe)."""
    failed = []
    with _watch_lock:
        for ip in [ip for ip, w in _watches.items() if ip not in wanted or not w.alive]:
            _watches.pop(ip).stop()
        for ip, iface in wanted.items():
            if ip not in _watches:
                try:
                    _watches[ip] = Watch(iface, ip, period, lifetime)
                except OSError:
                    failed.append(ip)
    return failed


def answers(iface: str, ip: str, timeout: float) -> tuple[bool, str]:
    """Does another host answer ARP for ``ip``, and how it was found out.

    With a watch of ``ip`` running (:func:`keep_watching`): once it has run for ``timeout``
    seconds (waiting for the rest if it began less than that ago) with no answer in the last
    ``timeout`` seconds, one short probe confirms: each of the watch's probes in that time had as
    long to be answered as a single probe waiting ``timeout`` now. The last probe waits one
    period of the watch (``FINAL_PROBE`` at most): no longer than the gap its own probes leave.
    If the watch heard an answer lately, or there is none, the full probe decides."""
    with _watch_lock:
        w = _watches.get(ip)
    if w is not None and w.iface == iface and w.alive:
        time.sleep(max(0.0, w.started + timeout - time.monotonic()))
        now = time.monotonic()
        if w.alive and (w.answered is None or w.answered < now - timeout):
            watched = now - w.started
            try:
                if w.confirm(min(FINAL_PROBE, w.period)):
                    return True, f"answered the last probe after a watch of {watched:.2f} s"
                return False, f"no answer in a watch of {watched:.2f} s and a last probe"
            except OSError:  # the watch ended just now: the full probe decides
                pass
    return probe(iface, ip, timeout), f"probed for {timeout:g} s"
