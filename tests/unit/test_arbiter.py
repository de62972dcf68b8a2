"""Witness arbitration: the pure Arbiter (one winner, leases, claims cleared by hearing, the hold
after a restart, bounds) and its wire (sealed both ways, replays and old epochs refused)."""

from __future__ import annotations

import json

import pytest

from clp.core.arbiter import MAX_SERVERS, Arbiter
from clp.witness.arbitration import Arbitration, Request, seal, unseal
from clp.witness.wire import WireError

LEASE = 1.5


def ready() -> Arbiter:
    return Arbiter(started=0.0, hold=10.0)  # asked from t=10 on


def test_of_two_servers_that_lost_each_other_the_first_to_claim_wins() -> None:
    a = ready()
    assert a.renew("s1", ["s2"], LEASE, 10.0).granted and a.renew("s2", ["s1"], LEASE, 10.0).granted
    won = a.claim("s2", ["s1"], LEASE, 11.0)
    assert won.granted and won.reason == "s2 won the witness against s1"
    lost = a.claim("s1", ["s2"], LEASE, 11.1)
    assert not lost.granted and lost.reason == "s2 won the witness against s1"
    assert not a.renew("s1", [], LEASE, 11.2).granted  # its proof is gone: it stops
    assert a.claimed_by("s1", 11.2) == ["s2"] and a.claimed_by("s2", 11.2) == []


def test_a_grant_says_how_long_each_lost_servers_last_grant_still_proves() -> None:
    a = ready()
    a.renew("s1", [], LEASE, 10.0)
    a.renew("s3", [], LEASE, 9.0 + 1.0)
    a.renew("s3", [], LEASE, 10.2)
    won = a.claim("s2", ["s1", "s3", "s4"], LEASE, 11.0)
    # s1: granted at 10.0, 0.5 s left; s3: at 10.2, 0.7 s left; s4: never: no proof at all
    assert won.granted and won.left == pytest.approx({"s1": 0.5, "s3": 0.7})
    later = a.claim("s2", ["s1"], LEASE, 12.0)  # s1's lease ran out: forgotten, no proof
    assert later.granted and later.left == {}


def test_several_winners_against_one_server_and_none_against_the_claimer() -> None:
    a = ready()
    assert a.claim("s2", ["s1", "s2"], LEASE, 10.0).granted  # its own name is ignored
    assert a.claim("s3", ["s1"], LEASE, 10.1).granted
    assert a.claimed_by("s1", 10.2) == ["s2", "s3"]
    assert not a.claim("s2", [], LEASE, 10.3).granted  # names no lost server


def test_a_claim_lapses_with_its_claimers_lease_and_is_cleared_once_heard() -> None:
    a = ready()
    a.claim("s2", ["s1"], LEASE, 10.0)
    assert a.renew("s2", [], LEASE, 11.0).granted  # renewing keeps the claim in force
    assert a.claimed_by("s1", 12.4) == ["s2"]
    assert a.claimed_by("s1", 12.5) == []  # s2 silent for its lease: it holds nothing on it
    assert a.claim("s1", ["s2"], LEASE, 12.6).granted  # so s1 may win now
    b = ready()
    b.claim("s2", ["s1"], LEASE, 10.0)
    assert b.renew("s2", ["s1"], LEASE, 10.5).granted  # s2 hears s1 again (restarted)
    assert b.claimed_by("s1", 10.6) == [] and b.renew("s1", ["s2"], LEASE, 10.6).granted


def test_a_refused_request_renews_nothing() -> None:
    a = ready()
    a.claim("s1", ["s3"], LEASE, 10.0)
    a.claim("s2", ["s1"], LEASE, 10.1)
    for t in (10.5, 11.0, 11.4):
        assert not a.renew("s1", [], LEASE, t).granted
    # s1's claim ends with the lease of its last granted request, not of the refused ones
    assert a.claimed_by("s3", 11.4) == ["s1"] and a.claimed_by("s3", 11.5) == []


def test_a_restarted_witness_grants_nothing_for_its_hold() -> None:
    a = Arbiter(started=100.0, hold=10.0)
    refused = a.renew("s1", ["s2"], LEASE, 105.0)
    assert not refused.granted and "restarted 5.0 s ago and grants nothing for 10 s" in \
        refused.reason
    assert a.renew("s1", ["s2"], LEASE, 110.0).granted


def test_leases_outside_the_hold_and_too_many_servers_are_refused() -> None:
    a = ready()
    for lease in (0.0, -1.0, 10.5):
        answer = a.renew("s1", [], lease, 10.0)
        assert not answer.granted and "outside (0, 10] s" in answer.reason
    names = [f"s{i}" for i in range(MAX_SERVERS + 1)]
    assert "at most 32 servers" in a.renew("s0", names, LEASE, 10.0).reason
    for i in range(MAX_SERVERS):
        assert a.renew(f"s{i}", [], LEASE, 10.0).granted
    assert not a.renew("s99", [], LEASE, 10.0).granted
    assert a.renew("s99", [], LEASE, 12.0).granted  # the others' leases ran out: forgotten


# --- the wire ---------------------------------------------------------------------------

KEY = bytes(range(32))


def witness(now: list[float]) -> Arbitration:
    """Started at 0, asked at ``now[0]`` (after its hold of 10 s)."""
    start = now[0]
    now[0] = 0.0
    w = Arbitration({"cluster": KEY}, hold=10.0, clock=lambda: now[0], epoch="0" * 16)
    now[0] = start
    return w


def ask(w: Arbitration, op: str, server: str, names: list[str], seq: int,
        epoch: str = "0" * 16, key: bytes = KEY, inc: int = 7) -> tuple[int, dict | bytes]:
    req = Request(op, server, tuple(names), LEASE, epoch, inc, seq)
    status, body = w.handle("cluster", seal(key, "cluster", "req", req.doc()))
    return status, unseal(KEY, "cluster", "ans", body) if status == 200 else body


def test_the_witness_answers_sealed_and_refuses_replays_and_old_epochs() -> None:
    now = [20.0]
    w = witness(now)
    assert ask(w, "renew", "server1", [], 4)[1]["granted"]  # at 20: its lease runs to 21.5
    now[0] = 21.0
    status, ans = ask(w, "claim", "server2", ["server1"], 5)
    assert status == 200 and ans == {"granted": True, "epoch": "0" * 16, "seq": 5,
                                     "reason": "server2 won the witness against server1",
                                     "left": {"server1": 0.5}}
    _, ans = ask(w, "renew", "server2", [], 5)  # a replay of seq 5
    assert not ans["granted"] and "7/5 is not above the last one of server2" in ans["reason"]
    _, ans = ask(w, "renew", "server2", [], 1, inc=6)  # an earlier start's request
    assert not ans["granted"] and "6/1 is not above" in ans["reason"]
    _, ans = ask(w, "renew", "server2", [], 1, inc=8)  # a later start counts from 1 again
    assert ans["granted"], ans
    _, ans = ask(w, "renew", "server1", [], 1, epoch="1" * 16)
    assert not ans["granted"] and ans["epoch"] == "0" * 16 and "epoch changed" in ans["reason"]
    _, ans = ask(w, "renew", "server1", [], 6)
    assert not ans["granted"] and ans["reason"] == "server2 won the witness against server1"


def test_the_witness_refuses_what_is_not_sealed_with_the_clusters_key() -> None:
    w = witness([20.0])
    status, body = ask(w, "renew", "server1", [], 1, key=bytes(32))
    assert status == 400 and b"the MAC does not match" in body
    status, body = w.handle("other", b"")
    assert status == 404 and b"arbitrates no cluster 'other'" in body
    good = seal(KEY, "cluster", "req", Request("renew", "server1", (), LEASE, "", 7, 1).doc())
    assert w.handle("cluster", good.replace(b"\n", b"\n ", 1))[0] == 400
    answer = seal(KEY, "cluster", "ans", {"granted": True})  # an answer is not a request
    assert w.handle("cluster", answer)[0] == 400


@pytest.mark.parametrize("field, value, says", [
    ("op", "steal", "op 'steal' is not one of claim, renew"),
    ("server", "bad name!", "is not a server name"),
    ("names", ["ok", 3], "a list of at most 32 server names"),
    ("lease", True, "is not a positive number"),
    ("lease", 0, "is not a positive number"),
    ("epoch", "xyz", "is not 16 hex digits"),
    ("seq", -1, "seq -1 is not a positive 63-bit integer"),
    ("inc", "x", "inc 'x' is not a positive 63-bit integer"),
])
def test_every_field_of_a_request_is_checked(field: str, value: object, says: str) -> None:
    doc = Request("renew", "server1", (), LEASE, "", 7, 1).doc() | {field: value}
    with pytest.raises(WireError, match=says.replace("(", r"\(")):
        Request.parse(doc)
    status, body = witness([20.0]).handle("cluster", seal(KEY, "cluster", "req", doc))
    assert status == 400 and says.encode() in body


def test_a_body_that_is_not_json_or_too_long_is_refused() -> None:
    with pytest.raises(WireError, match="at most 4096 bytes"):
        unseal(KEY, "c", "req", b"0" * 5000)
    with pytest.raises(WireError, match="64-digit hex MAC"):
        unseal(KEY, "c", "req", b"nope")
    data = b"[1]"
    mac = seal(KEY, "c", "req", {}).split(b"\n")[0]  # a MAC of {} is not one of [1]
    with pytest.raises(WireError, match="MAC does not match"):
        unseal(KEY, "c", "req", mac + b"\n" + data)
    sealed = seal(KEY, "c", "req", {"a": 1})
    assert json.loads(sealed.split(b"\n", 1)[1]) == {"a": 1}
