"""Delivering spooled alerts to one target (the mail, or one trap destination), in order.

Each target has its own thread and FIFO, so a mail server that hangs for its whole timeout never
delays a trap. A failed attempt is repeated after a backoff (:class:`Backoff`: ``initial``
doubling to ``max``), always for the oldest alert first: the target gets them in the order they
were raised, and a dead server is asked once per backoff, not once per waiting alert. An alert
older than ``give_up`` at a failed attempt is given up (the caller keeps it in ``failed/`` and
says so in the alert log).

Outcomes go back to the service's thread as :class:`Outcome` on one queue: the spool files are
only written there.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clp.evt.records import Record

log = logging.getLogger("clp.alertsync")


class DeliveryError(Exception):
    """A delivery that did not happen; the text says why, for the alert log."""

    def __init__(self, reason: str, where: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where = where  # the server or destination it was tried on
        # this alert can never be delivered there (the server refused its content): given up at
        # once, so it does not hold back the alerts after it
        self.permanent = permanent


@dataclass
class Backoff:
    initial: float
    maximum: float
    delay: float = 0.0
    failures: int = 0  # attempts failed in a row

    def failed(self) -> float:
        """The wait before the next attempt after one more failure."""
        self.failures += 1
        self.delay = self.initial if self.failures == 1 else min(self.delay * 2, self.maximum)
        return self.delay

    def succeeded(self) -> int:
        """Reset; returns how many attempts had failed in a row before this success."""
        failures, self.failures, self.delay = self.failures, 0, 0.0
        return failures


@dataclass(frozen=True)
class Outcome:
    target: str
    name: str  # spool file name
    kind: str  # delivered | failed (will retry) | given_up
    where: str = ""  # server / destination used or tried
    reason: str = ""
    retry_in: float = 0.0  # the target failed: its next attempt waits this long
    failures: int = 0  # delivered: attempts that had failed before; failed: in a row so far


Sender = Callable[[Record], str]  # returns where it went; raises DeliveryError


class Target(threading.Thread):
    def __init__(self, key: str, send: Sender, backoff: Backoff, give_up: float,
                 outcomes: queue.Queue[Outcome], wall: Callable[[], float] = time.time) -> None:
        super().__init__(name=f"alert {key}", daemon=True)
        self.key = key
        self.send = send
        self.backoff = backoff
        self.give_up = give_up
        self.outcomes = outcomes
        self.wall = wall
        self.pending: collections.deque[tuple[str, Record]] = collections.deque()
        self.queued: set[str] = set()
        self.cond = threading.Condition()
        self.stopping = False

    def add(self, name: str, rec: Record) -> None:
        with self.cond:
            if name not in self.queued:
                self.queued.add(name)
                self.pending.append((name, rec))
                self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()

    def run(self) -> None:
        while True:
            with self.cond:
                while not self.pending and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                name, rec = self.pending[0]
            outcome = self._attempt(name, rec)
            with self.cond:
                if outcome.kind != "failed":
                    self.pending.popleft()
                    self.queued.discard(name)
                if outcome.retry_in:  # the target failed: ask it again later
                    self._give_up_old(outcome)
                    self.cond.wait_for(lambda: self.stopping, timeout=outcome.retry_in)

    def _attempt(self, name: str, rec: Record) -> Outcome:
        try:
            where = self.send(rec)
        except DeliveryError as e:
            if e.permanent:  # this alert only: the target is fine, the next goes at once
                outcome = Outcome(self.key, name, "given_up", e.where, e.reason, 0.0, 1)
            else:
                retry_in = self.backoff.failed()
                kind = "given_up" if self.wall() - rec["t"] >= self.give_up else "failed"
                outcome = Outcome(self.key, name, kind, e.where, e.reason, retry_in,
                                  self.backoff.failures)
        except Exception as e:  # a bug in a sender must not end the thread silently
            log.exception("alert %s: delivery to %s raised", name, self.key)
            retry_in = self.backoff.failed()
            outcome = Outcome(self.key, name, "failed", self.key, f"internal error: {e!r}",
                              retry_in, self.backoff.failures)
        else:
            outcome = Outcome(self.key, name, "delivered", where,
                              failures=self.backoff.succeeded())
        self.outcomes.put(outcome)
        return outcome

    def _give_up_old(self, failed: Outcome) -> None:
        """After a failed attempt, every waiting alert past ``give_up`` is given up at once
        (called with the lock held)."""
        now = self.wall()
        keep: collections.deque[tuple[str, Record]] = collections.deque()
        for name, rec in self.pending:
            if now - rec["t"] >= self.give_up:
                self.queued.discard(name)
                self.outcomes.put(Outcome(self.key, name, "given_up", failed.where,
                                          failed.reason, 0.0, self.backoff.failures))
            else:
                keep.append((name, rec))
        self.pending = keep
