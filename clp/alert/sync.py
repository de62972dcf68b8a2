"""Shipping alerts between servers: what a server sends and what it keeps (no I/O but journals).

Every server ships its own alerts, and only those, to every peer directly (no relaying: with
every server talking to every other, the origin is the one that knows what it raised). Two
messages, each one authenticated datagram (:mod:`clp.alert.syncnet`):

* ``alerts``: ``{"op": "alerts", "from": X, "epoch": E, "oldest": O, "alerts": [[seq, alert],
  ...]}``: consecutive alerts of X's epoch E; ``oldest`` is the oldest seq X still keeps.
* ``ack``: ``{"op": "ack", "from": Y, "epoch": E, "have": N}``: Y holds X's alerts of epoch E up
  to N without a gap (sent to X every :data:`ACK_EVERY` seconds, and at once for each
  ``alerts``).

The acknowledgement drives everything: X sends a peer the alerts after what it acknowledged, as
soon as it knows that (new alerts, an ack that is behind, each tick for a peer still behind:
the resend), and knows nothing of a peer it has not heard from (it has just started, or the
peer is down: no traffic to a dead server but its acks' absence). A server back after a while
acknowledges what it has, and gets what it missed, batch after batch at the pace of the acks.
What X no longer keeps (beyond :data:`clp.alert.clusterlog.HISTORY`) is lost to Y, who logs
the gap and goes on from X's oldest. A receiver keeps alerts only in order, so its journal of X
has no gaps but the ones logged, and no alert twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clp.alert.clusterlog import SUFFIX, Entry, Journal, valid_alert

ACK_EVERY = 1.0  # seconds between two acks to a peer (and resends to a peer behind)
MAX_BATCH_BYTES = 32_000  # alert bytes per datagram (alerts are at most an evt message each)
log = logging.getLogger("clp.alertsync")

Out = tuple[str, dict[str, Any]]  # (peer, message)


class SyncNode:
    """One server's side: its journals, what each peer acknowledged, what to send."""

    def __init__(self, me: str, directory: Path, peers: tuple[str, ...],
                 new_epoch: Callable[[], int] = time.time_ns) -> None:
        self.me = me
        self.dir = directory
        self.local = Journal(directory / f"{me}{SUFFIX}")
        self.epoch = self.local.last[0] or new_epoch()
        self.journals: dict[str, Journal] = {}
        self.acked: dict[str, int] = {}  # peer -> seq of my epoch it holds (absent: unheard)
        self.dropped: Counter[str] = Counter()
        self.peers: tuple[str, ...] = ()
        self.set_peers(peers)

    def set_peers(self, peers: tuple[str, ...]) -> None:
        self.peers = tuple(p for p in peers if p != self.me)
        for p in list(self.acked):
            if p not in self.peers:
                del self.acked[p]
        for p in self.peers:
            if p not in self.journals:
                self.journals[p] = Journal(self.dir / f"{p}{SUFFIX}")

    @property
    def last(self) -> int:
        return self.local.last[1] if self.local.last[0] == self.epoch else 0

    @property
    def pos(self) -> tuple[int, int] | None:
        """Where in alert.log the newest local alert ended."""
        return self.local.entries[-1].pos if self.local.entries else None

    # local alerts
    def add_local(self, items: list[tuple[dict[str, Any], int, int]]) -> list[Out]:
        """Journal the alerts read from alert.log (alert, inode, end offset); send them."""
        seq = self.last
        new = []
        for alert, ino, end in items:
            seq += 1
            new.append(Entry(self.epoch, seq, alert, (ino, end)))
        self.local.append(new)
        return [o for p in self.peers if (o := self._push(p)) is not None]

    def _push(self, peer: str) -> Out | None:
        """The next batch for ``peer``, if it is known to lack some."""
        have = self.acked.get(peer)
        if have is None or have >= self.last:
            return None
        oldest = self.local.oldest(self.epoch)
        batch: list[list[Any]] = []
        size = 0
        for e in self.local.after(self.epoch, have):
            n = len(e.line())
            if batch and size + n > MAX_BATCH_BYTES:
                break
            batch.append([e.seq, e.alert])
            size += n
        return (peer, {"op": "alerts", "from": self.me, "epoch": self.epoch, "oldest": oldest,
                       "alerts": batch})

    def tick(self) -> list[Out]:
        """Every :data:`ACK_EVERY`: an ack to every peer, the resend to every peer behind."""
        out: list[Out] = [(p, self._ack(p)) for p in self.peers]
        out += [o for p in self.peers if (o := self._push(p)) is not None]
        return out

    def _ack(self, peer: str) -> dict[str, Any]:
        epoch, have = self.journals[peer].last
        return {"op": "ack", "from": self.me, "epoch": epoch, "have": have}

    # from peers (authenticated already)
    def receive(self, msg: dict[str, Any]) -> list[Out]:
        sender = msg.get("from")
        if sender not in self.peers:
            self.dropped["unknown sender"] += 1
            return []
        op = msg.get("op")
        if op == "ack":
            return self._on_ack(sender, msg)
        if op == "alerts":
            return self._on_alerts(sender, msg)
        self.dropped["unknown op"] += 1
        return []

    def _on_ack(self, peer: str, msg: dict[str, Any]) -> list[Out]:
        epoch, have = msg.get("epoch"), msg.get("have")
        if not isinstance(epoch, int) or not isinstance(have, int) or have < 0:
            self.dropped["malformed"] += 1
            return []
        self.acked[peer] = have if epoch == self.epoch else 0
        o = self._push(peer)
        return [o] if o is not None else []

    def _on_alerts(self, origin: str, msg: dict[str, Any]) -> list[Out]:
        epoch, oldest, alerts = msg.get("epoch"), msg.get("oldest"), msg.get("alerts")
        if not (isinstance(epoch, int) and isinstance(oldest, int) and isinstance(alerts, list)
                and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], int)
                        and valid_alert(x[1]) for x in alerts)):
            self.dropped["malformed"] += 1
            return []
        journal = self.journals[origin]
        je, have = journal.last
        if epoch < je:  # a datagram from before the origin's journal was started again
            self.dropped["old epoch"] += 1
            return [(origin, self._ack(origin))]
        if epoch != je:
            have = 0
        new = []
        for seq, alert in sorted(alerts, key=lambda x: x[0]):
            if seq <= have:
                continue  # a duplicate: resent, or sent on two interconnects
            if seq != have + 1:
                if have + 1 >= oldest or seq != oldest:
                    break  # a gap the origin can still fill: wait for its resend
                log.warning("alerts %d to %d of %s are lost to this server: %s keeps only its "
                            "newest alerts", have + 1, seq - 1, origin, origin)
            new.append(Entry(epoch, seq, alert))
            have = seq
        journal.append(new)
        return [(origin, self._ack(origin))]
