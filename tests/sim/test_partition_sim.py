"""Network-partition safety: a shared-disk group is never active on two servers, except where the
product's own rules allow it.

The model is :mod:`tests.sim.partitionsim`: 2-4 servers each running the real
:class:`~clp.core.liveness.Liveness`, LAN, disk, com and witness heartbeat paths, ping and http
resolvers, one group G on s1; hypothesis draws the configuration and the faults (path cuts,
one-way loss, isolated servers, network splits, unreachable targets, random loss, hangs, crashes
and restarts). The simulation raises :class:`Unsafe` with the timeline on any double activation
that is not (a) a down verdict made with no resolver, (b) a resolver answering on both sides of a
partition no heartbeat crossed, (c) a ping resolver ignored because it was failing before the
loss, or (d) the other server uses no resolver (so it does not stop when cut off). Derandomized
with fixed example counts (480 in all), so CI always runs the same cases;
``--hypothesis-show-statistics`` shows how often each class came up.

Below them: targeted scenarios, regressions for the unsafe cases the simulation found in the core
(fixed), the two schedules that were pinned as known limits until "Holding needs proof" closed
them (a lossy last path; a server alone, then cut off), with generators of schedules around
both (every loss rate on the last path; restarts in any order), and what that rule costs
(docs/network-partition.md)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from tests.sim.partitionsim import INTERVAL, Config, Fault, PartitionSim, Scenario

HORIZON = 32.0
STEP = INTERVAL / 4
KINDS = ("cut", "oneway", "isolate", "split", "target", "loss", "hang", "crash")
LOSS_RATES = (0.1, 0.3, 0.5, 0.7, 0.9)
SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@st.composite
def configs(draw: st.DrawFn) -> Config:
    n = draw(st.integers(2, 4))
    resolvers = draw(st.sampled_from([(), ("ping",), ("http",), ("ping", "http")]))
    nonuser = draw(st.sampled_from([None, None, None, *[f"s{i}" for i in range(1, n + 1)]]))
    return Config(n=n, timeout=draw(st.sampled_from([2.0, 3.0, 5.0])),
                  disk=draw(st.sampled_from([False, False, True])),
                  com=draw(st.booleans()), witness=draw(st.booleans()), resolvers=resolvers,
                  retry=draw(st.integers(0, 2)), nonuser=nonuser if resolvers else None,
                  max_delay=draw(st.sampled_from([0.0, 0.0, 0.05])))


def at(draw: st.DrawFn, lo: float, hi: float) -> float:
    return draw(st.integers(int(lo / STEP), int(hi / STEP))) * STEP


@st.composite
def fault(draw: st.DrawFn, cfg: Config, kinds: tuple[str, ...] = KINDS) -> Fault:
    servers, paths = cfg.servers, sorted(cfg.paths())
    paths += ["*"] * len(paths)  # every path as often as one of them
    kind = draw(st.sampled_from(kinds))
    start = at(draw, 0, HORIZON * 0.6)
    end = start + at(draw, STEP, 20) if draw(st.integers(0, 3)) else float("inf")
    who = draw(st.sampled_from(servers))
    if kind == "hang":
        return Fault(kind, start, start + at(draw, STEP, 2 * cfg.timeout + 3), who=who)
    if kind in ("cut", "loss"):
        return Fault(kind, start, end, path=draw(st.sampled_from(paths)),
                     loss=draw(st.sampled_from(LOSS_RATES)))
    if kind == "oneway":
        path = draw(st.sampled_from(paths))
        a, b = draw(st.permutations(sorted(cfg.paths().get(path, servers))))[:2]
        return Fault(kind, start, end, who=a, to=b, path=path)
    if kind == "split":
        side = frozenset(draw(st.permutations(servers))[:draw(st.integers(1, cfg.n - 1))])
        return Fault(kind, start, end, side=side, reach=(draw(st.booleans()), draw(st.booleans())))
    targets = [*cfg.resolvers, *(["witness"] if cfg.witness else [])]
    if kind == "target" and targets:
        return Fault(kind, start, end, who=draw(st.sampled_from(targets)))
    if kind == "isolate":
        return Fault(kind, start, end, who=who, disk=draw(st.sampled_from([False, True, True])))
    return Fault("crash", start, end, who=who)


@st.composite
def scenarios(draw: st.DrawFn, kinds: tuple[str, ...] = KINDS, most: int = 4) -> Scenario:
    cfg = draw(configs())
    faults = tuple(draw(st.lists(fault(cfg, kinds), min_size=1, max_size=most)))
    return Scenario(cfg, faults, HORIZON, draw(st.integers(0, 2**32 - 1)))


def run(sc: Scenario) -> PartitionSim:
    sim = PartitionSim(sc).run()  # raises Unsafe on a double activation no rule allows
    if currently_in_test_context():
        for cls in sorted({c for c, *_ in sim.allowed}):
            event(f"allowed double activation ({cls})")
        for kind in sorted({v.kind for _, _, v in sim.verdicts}):
            event(f"verdict {kind}")
        event("G moved" if len(sim.holdings) > 1 else "G stayed")
    return sim


@settings(max_examples=160, **SETTINGS)
@given(scenarios())
def test_no_double_activation_beyond_the_rules_under_any_faults(sc: Scenario):
    run(sc)


@settings(max_examples=80, **SETTINGS)
@given(scenarios(("cut", "oneway", "isolate", "split", "target"), most=3))
def test_no_double_activation_beyond_the_rules_under_partitions(sc: Scenario):
    run(sc)


@settings(max_examples=60, **SETTINGS)
@given(configs(), st.one_of(st.none(), st.integers(2, 16)), st.integers(0, 2**32 - 1))
def test_a_crash_of_the_owner_fails_over_and_nothing_moves_when_nothing_is_wrong(
        cfg: Config, crash: int | None, seed: int):
    faults = () if crash is None else (Fault("crash", float(crash), who="s1"),)
    sim = run(Scenario(cfg, faults, HORIZON, seed))
    if crash is None:
        assert sim.verdicts == [] and sim.holdings == [(0.0, "s1", True)], sim.story()
        return
    survivor = sim.nodes["s2"]
    due = crash + cfg.timeout + survivor.live.partition.grace(("s1",)) + 3 * INTERVAL
    assert sim.holders(due) == ["s2"], f"due {due}\n{sim.story()}"
    assert sim.allowed == []


@st.composite
def lossy_last_paths(draw: st.DrawFn) -> Scenario:
    """A server cut off from the network (no target either) whose disk or serial path to the
    others still carries some heartbeats, at any loss rate: the lost server hears the others now
    and then, and they hear it now and then."""
    cfg = draw(configs())
    cfg = Config(**{**cfg.__dict__, "disk": True}) if not (cfg.disk or cfg.com) else cfg
    paths = cfg.paths()
    who = draw(st.sampled_from([s for s in cfg.servers
                                if any(s in paths.get(p, ()) for p in ("disk", "com"))]))
    start = at(draw, 0, HORIZON * 0.4)
    lossy = [p for p in ("disk", "com") if who in paths.get(p, ())]
    faults = [Fault("isolate", start, who=who, disk=False)]
    for path in draw(st.lists(st.sampled_from(lossy), min_size=1, unique=True)):
        faults.append(Fault("loss", start + at(draw, -2, 2), path=path,
                            loss=draw(st.sampled_from(LOSS_RATES))))
    faults += draw(st.lists(fault(cfg), max_size=1))
    return Scenario(cfg, tuple(faults), HORIZON, draw(st.integers(0, 2**32 - 1)))


@st.composite
def restarts_in_any_order(draw: st.DrawFn) -> Scenario:
    """Servers stopped and started again one after the other in any order (maintenance), and
    one of them cut off, or a target lost, at any point of it."""
    cfg = draw(configs())
    order = draw(st.permutations(cfg.servers))[:draw(st.integers(1, cfg.n))]
    faults, t = [], at(draw, 0, 4)
    for s in order:
        down = at(draw, STEP, 8)
        faults.append(Fault("crash", t, t + down, who=s))
        t += at(draw, 0, down + 4)
    cut = draw(st.sampled_from(["isolate", "target", "split"]))
    when = at(draw, 0, HORIZON * 0.7)
    if cut == "isolate":
        faults.append(Fault("isolate", when, who=draw(st.sampled_from(cfg.servers)),
                            disk=draw(st.booleans())))
    else:
        faults.append(draw(fault(cfg, (cut,))))
    return Scenario(cfg, tuple(faults), HORIZON, draw(st.integers(0, 2**32 - 1)))


@st.composite
def watchdog_scenarios(draw: st.DrawFn) -> Scenario:
    """Every fault kind, hangs always among them, userw feeding a kernel watchdog: a hung holder
    counts as active (its kernel still answers for the address), so the takeover must wait for
    its reset."""
    cfg = Config(**{**draw(configs()).__dict__, "watchdog": True})
    faults = [draw(fault(cfg, ("hang",)))]
    faults += draw(st.lists(fault(cfg), max_size=3))
    return Scenario(cfg, tuple(faults), HORIZON, draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=60, **SETTINGS)
@given(watchdog_scenarios())
def test_no_double_activation_with_a_watchdog_even_while_the_owner_hangs(sc: Scenario):
    run(sc)


@settings(max_examples=60, **SETTINGS)
@given(lossy_last_paths())
def test_no_double_activation_when_the_last_path_is_lossy(sc: Scenario):
    run(sc)


@settings(max_examples=60, **SETTINGS)
@given(restarts_in_any_order())
def test_no_double_activation_when_servers_restart_in_any_order(sc: Scenario):
    run(sc)


# --- targeted scenarios ---------------------------------------------------------------------

def sim_of(faults: list[Fault], seed: int = 1, horizon: float = 30.0, **cfg) -> PartitionSim:
    return run(Scenario(Config(**cfg), tuple(faults), horizon, seed))


def test_every_lan_cut_while_the_disk_lives_moves_nothing():
    for n in (2, 3, 4):
        for resolvers in ((), ("ping",), ("http",)):
            cuts = [Fault("cut", 5.0, path=p) for p in ("lan1", "lan2", "witness")]
            sim = sim_of(cuts, n=n, disk=True, witness=True, resolvers=resolvers)
            assert sim.verdicts == [] and sim.holdings == [(0.0, "s1", True)], sim.story()


def test_an_isolated_owner_stops_and_is_taken_over_only_after_the_grace_and_its_release():
    sim = sim_of([Fault("isolate", 5.0, who="s1", disk=True)], n=3, disk=True)
    (t_iso, iso), = sim.verdicts_of("s1")
    # its proofs run out (a lease of 0.3 + 1.0 s) before its own timeout: it stops sooner
    assert iso.kind == "isolated" and "ping target has not answered" in iso.reason
    assert t_iso <= 5.0 + 1.3 + INTERVAL
    (t_down, down), = sim.verdicts_of("s2", "down")
    assert down.servers == ("s1",) and down.takeover_at == t_down + 0.6 + 2 * INTERVAL
    released, = sim.changes("s1", False)
    activated, = sim.changes("s2", True)
    assert released < activated and activated >= down.takeover_at
    assert sim.allowed == [] and sim.holders(29.0) == ["s2"]


def test_one_way_loss_makes_the_deaf_side_keep_the_group_and_the_heard_side_yield():
    cuts = [Fault("oneway", 5.0, who="s2", to="s1", path=p) for p in ("lan1", "lan2", "disk")]
    sim = sim_of(cuts, n=2, disk=True)
    (_, y), = sim.verdicts_of("s2")
    assert y.kind == "yield" and y.servers == ("s1",) and "s1 no longer hears s2" in y.reason
    assert all(len(sim.holders(k * 0.25)) == 1 for k in range(120)), sim.story()
    assert sim.allowed == [] and sim.holders(29.0) == ["s1"]


def test_a_partition_without_resolver_activates_both_sides_as_the_seed_allows():
    sim = sim_of([Fault("split", 5.0, side=frozenset({"s1"}))], n=2, resolvers=())
    assert {c for c, *_ in sim.allowed} == {"a"}
    assert sim.holders(29.0) == ["s1", "s2"]


def test_a_partition_where_both_sides_ping_the_target_activates_both_as_the_seed_allows():
    sim = sim_of([Fault("split", 5.0, side=frozenset({"s1"}))], n=2, resolvers=("ping",))
    assert {c for c, *_ in sim.allowed} == {"b"}
    assert sim.holders(29.0) == ["s1", "s2"]


def test_a_ping_target_failing_before_the_loss_is_ignored_and_both_sides_go_on():
    faults = [Fault("target", 2.0, who="ping"), Fault("split", 8.0, side=frozenset({"s1"}))]
    sim = sim_of(faults, n=2, resolvers=("ping",))
    assert {c for c, *_ in sim.allowed} == {"c"}


def test_a_server_hung_longer_than_the_timeout_never_becomes_active_again():
    for hang in (3.5, 4.5, 8.0):
        sim = sim_of([Fault("hang", 5.0, 5.0 + hang, who="s1")], n=2, disk=True, timeout=3.0)
        assert sim.changes("s1", True) == [0.0]
        assert sim.nodes["s1"].state in ("fenced", "stopped"), sim.story()
        assert sim.holders(29.0) == ["s2"] and sim.allowed == []


# --- regressions: unsafe cases the simulation found in the core, fixed ------------------------

def test_a_ping_that_fails_during_the_timeout_is_isolation_not_failing_before_the_loss():
    # the background probe of an isolated server failed before its heartbeat timeout ran out;
    # counted as "already failing", s1 went on and G ran on s1 and s2
    for retry in (0, 1):
        sim = sim_of([Fault("isolate", 5.0, who="s1", disk=True)], n=3, disk=True, retry=retry)
        assert [v.kind for _, v in sim.verdicts_of("s1")] == ["isolated"], sim.story()
        assert sim.allowed == []


def test_a_server_never_heard_is_not_lost_with_a_ping_already_failing():
    # isolated from the start, s1 never heard s2; its ping failed before the timeout, and with
    # nothing heard that counted as failing before the loss: s1 went on beside s2
    sim = sim_of([Fault("isolate", 0.0, who="s1")], n=2, retry=0)
    assert [v.kind for _, v in sim.verdicts_of("s1")] == ["isolated"], sim.story()
    assert sim.allowed == [] and sim.holders(29.0) == ["s2"]


def test_one_way_loss_since_a_peer_restarted_still_makes_the_owner_yield():
    # s2 restarted and never heard s1, so s1 never saw "s2 hears s1" and ignored s2's Offline
    # mark for ever: both ran G
    sim = sim_of([Fault("crash", 5.0, 8.0, who="s2"),
                  Fault("oneway", 6.0, who="s1", to="s2", path="*")], n=2)
    (_, y), = sim.verdicts_of("s1", "yield")
    assert y.servers == ("s2",) and "s2 no longer hears s1" in y.reason, sim.story()
    assert sim.allowed == [] and sim.holders(29.0) == ["s2"]


def test_a_restarted_server_marked_down_by_a_peer_takes_no_group_before_it_settles():
    # s1 restarted while s2 (which cannot hear it) was in its takeover wait; s1 ignored s2's
    # Offline mark as possibly stale and, first in its view, activated G as s2 did
    sim = sim_of([Fault("oneway", 12.0, who="s1", to="s2", path="*"),
                  Fault("crash", 14.0, 14.25, who="s1")], n=2, resolvers=("http",))
    assert sim.changes("s1", True) == [0.0] and sim.allowed == [], sim.story()
    assert [v.kind for _, v in sim.verdicts_of("s1")] == ["yield"]
    assert sim.holders(29.0) == ["s2"]


def test_a_hang_just_over_the_timeout_is_fenced_with_no_resolver():
    # the fence compared the rounds' gap less an interval with the timeout: a hang of 3.1 s
    # (timeout 3) was not fenced although s2 had declared s1 down and taken G
    for resolvers in ((), ("ping",)):
        sim = sim_of([Fault("hang", 5.0, 8.1, who="s1")], n=2, disk=True, timeout=3.0,
                     resolvers=resolvers)
        assert sim.nodes["s1"].state in ("fenced", "stopped"), sim.story()
        assert sim.holders(29.0) == ["s2"] and sim.allowed == []


def test_a_healed_partition_makes_the_lower_priority_server_yield_on_any_path_count():
    # after the heal, the first copy of s2's heartbeat cleared s1's Offline mark of s2: with two
    # paths s1 then yielded on the second copy; with one path neither yielded
    for lans in (("lan1", "lan2"), ("lan1",)):
        heal = [Fault("cut", 5.0, 15.3, path=p) for p in lans]
        if lans == ("lan1",):
            heal.append(Fault("cut", 0.0, path="lan2"))
        sim = sim_of(heal, n=2, resolvers=())
        yields = [(w, v.kind) for _, w, v in sim.verdicts if v.kind == "yield"]
        assert yields == [("s2", "yield")], sim.story()
        assert sim.holders(29.0) == ["s1"]


# --- the two schedules that were known gaps (closed by "Holding needs proof") ---------------

def test_a_lossy_last_path_no_longer_lets_the_peer_take_over_before_the_isolated_server_stops():
    # s1 cut off from the network still heard s2 on the disk now and then, so it timed out up
    # to a timeout later than s2 did, and s2 took over while s1 still held G
    sim = sim_of([Fault("isolate", 3.0, who="s1"), Fault("loss", 3.0, path="disk", loss=0.5)],
                 seed=23, n=2, timeout=2.0, disk=True)
    (t, v), = sim.verdicts_of("s1")
    assert v.kind == "isolated" and "has not answered" in v.reason, sim.story()
    released, = sim.changes("s1", False)
    assert released < min(sim.changes("s2", True)) and sim.holders(29.0) == ["s2"]


def test_a_server_alone_then_isolated_stops_before_a_peer_that_starts_takes_over():
    # s1 ran alone after s2's crash; cut off later it probed nothing, and s2, restarted, found
    # it down and took over
    sim = sim_of([Fault("crash", 5.0, 15.0, who="s2"), Fault("isolate", 10.0, who="s1")],
                 n=2, resolvers=("http",))
    (t, v), = sim.verdicts_of("s1", "isolated")
    assert 10.0 < t <= 10.0 + 0.5 + INTERVAL + 0.75 and "http target" in v.reason, sim.story()
    assert sim.holders(29.0) == ["s2"] and sim.allowed == []


# --- a hung owner and its watchdog ---------------------------------------------------------

def test_a_hung_owner_is_reset_by_its_watchdog_before_its_group_starts_elsewhere():
    for resolvers in ((), ("ping",)):
        sim = sim_of([Fault("hang", 5.0, 20.0, who="s1")], n=2, timeout=3.0, watchdog=True,
                     resolvers=resolvers)
        # the latest it fires: fed up to 2 intervals after its last round (in (4, 5]), then
        # the device's 3 s
        reset = [t for t, who, text in sim.timeline if who == "s1" and "watchdog" in text]
        assert len(reset) == 1 and 9.0 < reset[0] <= 10.0, sim.story()
        released, = sim.changes("s1", False)
        activated, = sim.changes("s2", True)
        assert released == reset[0] < activated, sim.story()
        assert sim.allowed == [] and sim.holders(29.0) == ["s2"]


def test_a_one_way_loss_then_a_hang_just_before_the_verdict_is_waited_for():
    # s2 stopped hearing s1 (one-way: s1 still heard s2, so it held G legitimately) and s1
    # hung just before s2 declared it down: the takeover counted the watchdog's reset from
    # s1's last heartbeat, as if the hang had caused the loss, and G ran on s2 while s1's
    # kernel still held it
    for resolvers, hang in (((), 7.0), (("ping",), 8.0), (("http",), 7.75)):
        sim = sim_of([Fault("oneway", 5.0, who="s1", to="s2", path="*"),
                      Fault("hang", hang, hang + 12.0, who="s1")], n=2, timeout=3.0,
                     watchdog=True, resolvers=resolvers)
        reset, = [t for t, who, text in sim.timeline if who == "s1" and "watchdog" in text]
        activated, = sim.changes("s2", True)
        assert reset < activated and sim.allowed == [], sim.story()


def test_without_a_watchdog_a_hung_owner_keeps_its_group_while_another_runs_it():
    """The keepalive method's limit (docs/monitors.md): the hung server is fenced only when it
    runs again; meanwhile its kernel still holds G, and the other server runs G too."""
    sim = sim_of([Fault("hang", 5.0, 20.0, who="s1")], n=2, timeout=3.0, resolvers=())
    activated, = sim.changes("s2", True)
    released, = sim.changes("s1", False)
    assert activated < 20.0 <= released, sim.story()  # both held G from `activated` to 20


# --- what holding on proof costs, and what it does not ---------------------------------------

def test_a_lost_target_moves_nothing_while_every_server_hears_the_others():
    for resolvers in (("ping",), ("http",)):
        sim = sim_of([Fault("target", 5.0, 20.0, who=resolvers[0])], n=3, resolvers=resolvers)
        assert sim.verdicts == [] and sim.holdings == [(0.0, "s1", True)], sim.story()


def test_a_target_lost_while_a_peer_is_down_stops_the_server_alone_the_price():
    # alone, s1 cannot tell a lost target from being cut off, and s2 starting would take over:
    # it stops; s2 starts later and takes G (the seed would keep s1 running, and let s2 start
    # G too if s1 had been cut off)
    sim = sim_of([Fault("crash", 3.0, 20.0, who="s2"), Fault("target", 12.0, 14.0, who="ping")],
                 n=2, resolvers=("ping",))
    (t, v), = sim.verdicts_of("s1", "isolated")
    assert 12.0 < t < 14.0 and "s2 has not shown" in v.reason, sim.story()
    assert sim.holders(29.0) == ["s2"]


def test_a_server_without_proofs_takes_no_group_until_its_target_answers_again():
    # s2 resolved the crashed s1 down, then its target stopped answering before the takeover:
    # holding G it would stop at once (no proof of reach, none from s1), so it waits instead
    sim = sim_of([Fault("crash", 3.0, who="s1"), Fault("target", 6.0, 12.0, who="ping")],
                 n=2, timeout=2.0, resolvers=("ping",), retry=1)
    activated, = sim.changes("s2", True)
    assert 12.0 <= activated < 13.0, sim.story()
    assert sim.verdicts_of("s2", "isolated") == [] and sim.holders(29.0) == ["s2"]


def test_a_ping_target_failing_before_the_peer_was_lost_stops_nothing():
    # the seed's "already failing": resolution is impossible, every server goes on
    sim = sim_of([Fault("target", 2.0, who="ping"), Fault("crash", 8.0, who="s2")], n=2,
                 resolvers=("ping",), retry=1)
    assert sim.verdicts_of("s1", "isolated") == [] and sim.holders(29.0) == ["s1"], sim.story()


# --- witness arbitration: a resolution that allows nothing ----------------------------------

@st.composite
def arbitration_configs(draw: st.DrawFn) -> Config:
    """Every server uses the witness arbiter (maybe a ping or http resolver besides), with
    timeouts long enough for the hearing window of a fast takeover or not, and mostly userw
    feeding a kernel watchdog: a hung holder then counts as active."""
    cfg = draw(configs())
    extra = draw(st.sampled_from([(), (), ("ping",), ("http",)]))
    timeout = draw(st.sampled_from([cfg.timeout, 5.0, 8.0]))  # room for a hearing window
    return Config(**{**cfg.__dict__, "resolvers": ("witness", *extra), "nonuser": None,
                     "watchdog": draw(st.sampled_from([True, True, False])),
                     "timeout": timeout})


@st.composite
def arbitration_scenarios(draw: st.DrawFn, kinds: tuple[str, ...] = KINDS,
                          most: int = 4) -> Scenario:
    cfg = draw(arbitration_configs())
    faults = tuple(draw(st.lists(fault(cfg, kinds), min_size=1, max_size=most)))
    return Scenario(cfg, faults, HORIZON, draw(st.integers(0, 2**32 - 1)))


@st.composite
def arbitration_schedules(draw: st.DrawFn) -> Scenario:
    """The schedules of the generators above (lossy last paths, restarts in any order, hangs),
    with witness arbitration."""
    sc = draw(st.one_of(lossy_last_paths(), restarts_in_any_order(), watchdog_scenarios()))
    cfg = draw(arbitration_configs())
    cfg = Config(**{**sc.cfg.__dict__, "resolvers": cfg.resolvers, "nonuser": None,
                    "watchdog": cfg.watchdog, "timeout": cfg.timeout})
    return Scenario(cfg, sc.faults, sc.horizon, sc.seed)


def no_double_activation(sc: Scenario) -> PartitionSim:
    sim = run(sc)
    assert sim.allowed == [], sim.story()
    return sim


@settings(max_examples=160, **SETTINGS)
@given(arbitration_scenarios())
def test_witness_arbitration_allows_no_double_activation_under_any_faults(sc: Scenario):
    no_double_activation(sc)


@settings(max_examples=80, **SETTINGS)
@given(arbitration_scenarios(("split", "isolate", "target", "oneway", "cut"), most=3))
def test_witness_arbitration_allows_no_double_activation_under_partitions(sc: Scenario):
    no_double_activation(sc)


@settings(max_examples=80, **SETTINGS)
@given(arbitration_schedules())
def test_witness_arbitration_allows_no_double_activation_in_the_hard_schedules(sc: Scenario):
    no_double_activation(sc)


def test_with_a_witness_a_partition_where_both_sides_reach_it_has_one_winner():
    # class (b) with ping: both sides reach the target; the witness grants one claim only
    for n in (2, 3):
        sim = sim_of([Fault("split", 5.0, side=frozenset({"s1"}))], n=n,
                     resolvers=("witness",), watchdog=True)
        assert sim.allowed == [], sim.story()
        assert len(sim.holders(29.0)) == 1, sim.story()
        losers = [w for _, w, v in sim.verdicts if v.kind == "isolated"]
        assert losers and all("won the witness" not in w for w in losers)


def test_with_a_witness_and_a_ping_target_failing_before_the_loss_one_side_still_wins():
    # class (c): the ping target is ignored as "already failing"; the witness still decides
    faults = [Fault("target", 2.0, who="ping"), Fault("split", 8.0, side=frozenset({"s1"}))]
    sim = sim_of(faults, n=2, resolvers=("witness", "ping"), watchdog=True)
    assert sim.allowed == [] and len(sim.holders(29.0)) == 1, sim.story()


def test_with_a_witness_down_a_crash_moves_nothing_and_a_partition_stops_the_holder():
    # the price: with no witness to win, nobody takes over a crashed server; the holder whose
    # peer is unheard stops a lease after the witness went (safe, not available)
    sim = sim_of([Fault("target", 2.0, who="witness"), Fault("crash", 6.0, who="s1")], n=2,
                 resolvers=("witness",), watchdog=True)
    assert sim.holders(29.0) == [] and sim.allowed == [], sim.story()
    assert [v.kind for _, v in sim.verdicts_of("s2")] == ["isolated"]


def test_with_a_witness_a_crash_fails_over_after_the_same_wait_as_ping():
    # a timeout of 3 s leaves no hearing window (lease 1.5 + 2 intervals): the usual wait
    sims = {r: sim_of([Fault("crash", 6.0, who="s1")], n=2, resolvers=(r,), watchdog=False)
            for r in ("witness", "http")}
    moved = {r: sim.changes("s2", True) for r, sim in sims.items()}
    assert moved["witness"] == moved["http"] and len(moved["witness"]) == 1, moved


def test_won_at_the_witness_a_crash_fails_over_without_the_takeover_wait():
    # timeout 8 s: s2 stops saying it hears s1 4.5 s after its last heartbeat, so by the
    # verdict s1's proofs (the witness's, and s2's heartbeats) have run out long ago
    for watchdog in (False, True):
        sims = {r: sim_of([Fault("crash", 6.0, who="s1")], n=2, resolvers=(r,), timeout=8.0,
                          watchdog=watchdog) for r in ("witness", "http")}
        (t, down), = sims["witness"].verdicts_of("s2", "down")
        activated, = sims["witness"].changes("s2", True)
        ping_activated, = sims["http"].changes("s2", True)
        if watchdog:  # the reset after a hang as late as s1's last proof, which ended an
            # interval before the verdict: a little sooner than ping's wait for the reset
            assert "move in" in down.reason and activated < ping_activated
        else:
            assert down.takeover_at == t and "move in" not in down.reason, down
            assert activated == pytest.approx(t + 0.1)  # at once (the activation's 0.1 s)
            assert ping_activated == pytest.approx(activated + 2.5, abs=0.02)


def test_won_at_the_witness_a_holder_that_hears_but_is_not_heard_has_stopped_by_the_verdict():
    # s1 still hears s2 on the disk but s2 hears nothing of s1, and s1 cannot reach the
    # witness: s2 stops saying it hears s1 a hearing window after its last heartbeat, so s1's
    # proof runs out and it stops before s2's verdict, and s2 takes over at once
    sim = sim_of([Fault("split", 5.0, side=frozenset({"s1"}), reach=(False, True)),
                  Fault("oneway", 5.0, who="s1", to="s2", path="disk")], n=2, timeout=8.0,
                 disk=True, resolvers=("witness",))
    (t_iso, iso), = sim.verdicts_of("s1", "isolated")
    (t_down, down), = sim.verdicts_of("s2", "down")
    assert "s2 has not shown" in iso.reason and down.takeover_at == t_down, sim.story()
    released, = sim.changes("s1", False)
    activated, = sim.changes("s2", True)
    assert released < t_down < activated and sim.allowed == []


def test_a_server_restarted_after_losing_the_witness_is_freed_once_the_winner_hears_it():
    # s2 wins against s1 (cut off), runs G; s1 restarts healed: s2 hears it and renews with s1
    # among the servers it hears, which ends its claim; then s2 crashes and s1 takes over
    sim = sim_of([Fault("isolate", 3.0, 8.0, who="s1"), Fault("crash", 14.0, who="s2"),
                  Fault("crash", 9.0, 9.5, who="s1")], n=2, resolvers=("witness",),
                 watchdog=True, horizon=40.0)
    assert sim.allowed == [] and sim.holders(39.0) == ["s1"], sim.story()
