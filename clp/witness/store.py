"""The witness's memory: the latest record of every (cluster, sender), with when it arrived.

Pure: the caller passes ``now`` (monotonic seconds), so tests step it. Bounded: at most
``max_clusters`` clusters of at most 32 senders each; records older than ``expiry`` are dropped
(a cluster with none left is forgotten), so a cluster that went away frees its place.

The expiry is short (a minute) because anyone can post a well-formed record for a made-up
cluster name (no key is needed): entries nobody renews must give their place back soon. Clients
ignore records older than two heartbeat intervals anyway, so a minute loses nothing for intervals
up to 30 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clp.witness.wire import encode_entries

DEFAULT_EXPIRY = 60.0
DEFAULT_MAX_CLUSTERS = 1024


class StoreFull(Exception):
    """No room for one more cluster."""


@dataclass
class _Slot:
    record: bytes
    received: float


@dataclass
class Store:
    expiry: float = DEFAULT_EXPIRY
    max_clusters: int = DEFAULT_MAX_CLUSTERS
    clusters: dict[str, dict[int, _Slot]] = field(default_factory=dict)
    stored: int = 0

    def put(self, cluster: str, sender: int, record: bytes, now: float) -> None:
        """Keep ``record`` as the latest of ``sender`` in ``cluster``; StoreFull if no room."""
        if cluster not in self.clusters and len(self.clusters) >= self.max_clusters:
            self.expire(now)
            if len(self.clusters) >= self.max_clusters:
                raise StoreFull(f"the witness already serves {self.max_clusters} clusters")
        self.clusters.setdefault(cluster, {})[sender] = _Slot(record, now)
        self.stored += 1

    def answer(self, cluster: str, now: float) -> bytes:
        """The answer body for ``cluster``: every live record, by sender index."""
        slots = self.clusters.get(cluster, {})
        return encode_entries((sender, _ms(now - slot.received), slot.record)
                              for sender, slot in sorted(slots.items())
                              if now - slot.received < self.expiry)

    def expire(self, now: float) -> int:
        """Drop records older than ``expiry`` and clusters left empty; how many records went."""
        dropped = 0
        for name in list(self.clusters):
            slots = self.clusters[name]
            for sender in [s for s, slot in slots.items() if now - slot.received >= self.expiry]:
                del slots[sender]
                dropped += 1
            if not slots:
                del self.clusters[name]
        return dropped

    def summary(self, now: float) -> dict[str, Any]:
        """For ``GET /v1/clusters``: every cluster, its senders and their ages in seconds."""
        return {
            "expiry": self.expiry,
            "max_clusters": self.max_clusters,
            "clusters": {
                name: {"servers": {str(sender): {"age": round(now - slot.received, 3)}
                                   for sender, slot in sorted(slots.items())}}
                for name, slots in sorted(self.clusters.items())
            },
        }


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
