"""Finding heartbeat records in a serial byte stream (``comhb``).

A serial line has no datagrams: bytes arrive in arbitrary chunks, a cable plugged in mid-record
delivers its tail, line noise adds garbage. The record itself is the frame: its magic ``CLPH``
marks a candidate start and its HMAC says whether the 96 bytes from there are one record. A
candidate that does not authenticate is not consumed whole: the scan resumes one byte after its
magic, so a good record starting inside it (the tail of a torn record followed by a new one) is
still found.

Pure and thread-free, so the port thread runs it and the unit tests feed it bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from clp.heartbeat import packet
from clp.heartbeat.packet import MAGIC, PACKET_SIZE, Drop, PacketError


class Candidate(NamedTuple):
    """PACKET_SIZE bytes starting with the magic; ``good`` when they authenticate."""

    frame: bytes
    good: bool


def authentic(key: bytes, cluster_id: int) -> Callable[[bytes], bool]:
    """The scanner's check: the record's MAC verifies (whatever it then says). A record from
    another cluster or server, or a replay, is still a whole record: the Receiver drops it."""

    def check(frame: bytes) -> bool:
        try:
            packet.decode(key, frame, cluster_id)
        except PacketError as e:
            return e.drop not in (Drop.MALFORMED, Drop.BAD_MAC)
        return True

    return check


class FrameScanner:
    """Feed bytes, get the candidate frames they complete, in stream order.

    Counters: ``frames`` (good), ``resyncs`` (bad candidates, each skipped by one byte),
    ``skipped`` (bytes that were not part of a good frame).
    """

    def __init__(self, check: Callable[[bytes], bool], size: int = PACKET_SIZE,
                 magic: bytes = MAGIC) -> None:
        self.check = check
        self.size = size
        self.magic = magic
        self.frames = 0
        self.resyncs = 0
        self.skipped = 0
        self._buf = bytearray()

    def reset(self) -> None:
        """Forget a partial frame (the port was reopened: its tail will never come)."""
        self.skipped += len(self._buf)
        self._buf.clear()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Candidate]:
        self._buf += data
        out: list[Candidate] = []
        while True:
            start = self._buf.find(self.magic)
            if start < 0:
                self._discard(len(self._buf) - self._magic_tail())
                break
            self._discard(start)
            if len(self._buf) < self.size:
                break
            frame = bytes(self._buf[:self.size])
            if self.check(frame):
                del self._buf[:self.size]
                self.frames += 1
                out.append(Candidate(frame, True))
            else:
                self._discard(1)  # resume inside it: a good frame may start there
                self.resyncs += 1
                out.append(Candidate(frame, False))
        return out

    def _magic_tail(self) -> int:
        """Length of the buffer's longest suffix that could be the start of the magic."""
        for n in range(min(len(self.magic) - 1, len(self._buf)), 0, -1):
            if self._buf.endswith(self.magic[:n]):
                return n
        return 0

    def _discard(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.skipped += n
