"""Network-partition resolution as the service runs it: the probes, in the background and at a loss.

The decisions are :mod:`clp.core.partition`'s (through :class:`clp.core.liveness.Liveness`); this
module only runs the probes of :mod:`clp.np` on the event loop and feeds their results back:

- In the background, every resolver this server uses is probed every ``interval`` seconds (at
  most half a heartbeat interval apart, :meth:`Resolution.period`), so an operator is alerted
  when resolution would not work (a ping target already down), before it is needed, so the
  seed's "already failing before the loss" rule can be applied, and so a server holding groups
  keeps its proof that it is not cut off.
- At a loss (membership declared servers Offline), the resolvers named by the core are probed
  at once, all in parallel, and the results decide (:meth:`Liveness.resolved`).
- A ``witness`` resolver's probe is a question to the witness's arbiter (:mod:`clp.np.witness`):
  a renewal naming the servers this one hears in the background, a claim against the lost
  servers at a loss; granted counts as answered. Why one was not granted is logged when it
  changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from clp.config import ClusterConfig
from clp.config.model import Resolver
from clp.core.liveness import Liveness, Step
from clp.core.partition import ResolverSpec
from clp.keys import arbiter_key

log = logging.getLogger("clp.np")


def describe(r: Resolver) -> str:
    if r.type == "ping":
        return "ping " + ", ".join(r.targets)
    if r.type == "witness":
        return f"witness {r.target}"
    return f"HTTP HEAD http://{r.target}{r.path}"


def budget(r: Resolver) -> float:
    """Worst-case seconds of one probe of ``r`` at a loss."""
    if r.type == "ping":
        from clp.np import ping
        return ping.budget(r.timeout, r.retry)
    if r.type == "witness":
        from clp.np import witness
        return witness.budget(r.timeout)
    from clp.np import http
    return http.budget(r.timeout)


def resolver_specs(config: ClusterConfig) -> tuple[ResolverSpec, ...]:
    return tuple(ResolverSpec(r.name, r.type, frozenset(r.servers), budget(r),
                              r.retry if r.type == "ping" else 0, describe(r))
                 for r in config.network_partition.resolvers)


async def probe(r: Resolver) -> bool:
    """True when the resolver's target answered (ping: any of its targets). Raises OSError when
    the probe cannot even be sent (no ICMP socket at all)."""
    if r.type == "ping":
        from clp.np import ping
        return await ping.probe(list(r.targets), r.timeout, r.retry)
    from clp.np import http
    return await http.probe(r.target or "", r.timeout, r.path)


class Resolution:
    def __init__(self, config: ClusterConfig, me: str, liveness: Liveness,
                 on_step: Callable[[Step], None], catch_up: Callable[[], None],
                 key: bytes, incarnation: int) -> None:
        """``catch_up``: gives liveness the heartbeats received so far, before a result goes
        in (a resolver's state is compared with the one when each server was last heard).
        ``key``: the cluster key (a witness resolver's requests are sealed with the arbiter
        key derived from it); ``incarnation``: this start's (in a witness's requests)."""
        from clp.np.witness import WitnessArbiter

        self.me = me
        self.liveness = liveness
        self.on_step = on_step
        self.catch_up = catch_up
        self.mine = {r.name: r for r in config.network_partition.resolvers if me in r.servers}
        self.last: dict[str, dict[str, Any]] = {}  # name -> {"ok", "at"} of the last probe
        self._tasks: set[asyncio.Task[None]] = set()
        self._cannot: set[str] = set()  # resolvers whose probe could not be sent (logged once)
        self.arbiters = {r.name: WitnessArbiter(r.target or "", config.name, arbiter_key(key), me,
                                                r.timeout, incarnation)
                         for r in self.mine.values() if r.type == "witness"}
        self._refusal: dict[str, str] = {}  # witness resolver -> why last not granted

    def start(self) -> None:
        for r in self.mine.values():
            self._spawn(self._background(r))

    def probe_now(self, names: tuple[str, ...]) -> None:
        self._spawn(self._at_loss(names))

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for arbiter in self.arbiters.values():
            arbiter.close()

    def snapshot(self) -> dict[str, Any]:
        return {name: {"type": r.type, "target": describe(r),
                       "failing": self.liveness.partition.failing(name),
                       **self.last.get(name, {}),
                       **({"refused": self._refusal[name]} if name in self._refusal else {})}
                for name, r in self.mine.items()}

    async def _ask(self, r: Resolver, left: dict[str, float] | None) -> bool:
        """The witness's grant: a claim against the lost servers at a loss (``left`` given:
        what a grant says of their proofs goes into it), else a renewal naming the servers
        heard; why it was not granted is logged when that changes."""
        partition = self.liveness.partition
        arbiter = self.arbiters[r.name]
        if left is not None:
            answer = await arbiter.claim(partition.claiming, partition.lease)
            if answer.granted:
                left.update(answer.left)
            log.log(logging.INFO if answer.granted else logging.WARNING, "%s: claim %s: %s",
                    describe(r), "granted" if answer.granted else "not granted", answer.reason,
                    extra={"alert": True})
            return answer.granted
        heard = tuple(s for s in self.liveness.online() if s != self.me)
        answer = await arbiter.renew(heard, partition.lease)
        if answer.granted:
            if self._refusal.pop(r.name, None) is not None:
                log.info("%s: renewals granted again", describe(r), extra={"alert": True})
        elif self._refusal.get(r.name) != answer.reason:
            self._refusal[r.name] = answer.reason
            log.warning("%s: renewal not granted: %s", describe(r), answer.reason,
                        extra={"alert": True})
        return answer.granted

    async def _probe(self, r: Resolver, left: dict[str, float] | None = None) -> bool:
        """A probe that cannot be sent counts as no answer (this server cannot reach the
        target); logged with an alert when it starts and when it ends. Any other failure of the
        probe counts the same way: a resolution left waiting would keep the lost servers'
        groups where they are for ever."""
        try:
            ok = await (self._ask(r, left) if r.type == "witness" else probe(r))
        except Exception as e:  # noqa: BLE001 - see the docstring
            if r.name not in self._cannot:
                self._cannot.add(r.name)
                log.error("%s: cannot probe: %s", describe(r),
                          e if isinstance(e, OSError) else repr(e), extra={"alert": True},
                          exc_info=not isinstance(e, OSError))
            return False
        if r.name in self._cannot:
            self._cannot.discard(r.name)
            log.info("%s: probes can be sent again", describe(r), extra={"alert": True})
        return ok

    def period(self, r: Resolver) -> float:
        """Seconds from one background probe's send to the next: the resolver's interval, at
        most half a heartbeat interval. A server holding groups needs a proof of reach no older
        than a lease (the budget plus an interval; see "Holding needs proof" in
        clp.core.partition); dated at a probe's send and known at its answer (at most a budget
        later), it keeps while sends are less than an interval apart and the target answers.
        Not only while holding: a server that takes a group over must have a fresh one then
        (the takeover wait is longer than a lease)."""
        return min(r.interval, self.liveness.partition.interval / 2)

    async def _background(self, r: Resolver) -> None:
        while True:
            sent = time.monotonic()
            ok = await self._probe(r)
            self.last[r.name] = {"ok": ok, "at": time.time()}
            self.catch_up()
            alert = self.liveness.background(r.name, ok, sent)
            if alert is not None:
                log.log(logging.INFO if ok else logging.WARNING, alert, extra={"alert": True})
            await asyncio.sleep(max(0.0, sent + self.period(r) - time.monotonic()))

    async def _at_loss(self, names: tuple[str, ...]) -> None:
        rs = [self.mine[n] for n in names]
        left: dict[str, float] = {}
        results = await asyncio.gather(*(self._probe(r, left) for r in rs))
        for r, ok in zip(rs, results, strict=True):
            log.info("%s: %s", describe(r), "answered" if ok else "did not answer")
        self.catch_up()
        self.on_step(self.liveness.resolved(time.monotonic(), dict(zip(names, results,
                                                                      strict=True)),
                                            left if "witness" in {r.type for r in rs}
                                            else None))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            with contextlib.suppress(Exception):
                log.error("network partition resolution task failed: %r", task.exception(),
                          extra={"alert": True})
