import time

import pytest

from clp.net import frames

KEY = b"k" * 32


def roundtrip(obj, key=KEY):
    data = frames.pack(KEY, obj)
    head, rest = data[:4], data[4:]
    assert frames.frame_length(head) + 32 == len(rest)
    return frames.unpack_body(key, head, rest)


def test_round_trip():
    req = frames.new_request("cluster", "server1", "control", {"op": "status", "args": {}})
    assert roundtrip(req) == req


def test_forged_frame_is_refused():
    with pytest.raises(frames.FrameError, match="authentication"):
        roundtrip({"a": 1}, key=b"x" * 32)


def test_oversized_declared_length_is_refused():
    with pytest.raises(frames.FrameError, match="exceeds"):
        frames.frame_length((frames.MAX_FRAME + 1).to_bytes(4, "big"))


def test_nonce_guard_refuses_replay_skew_and_foreign_cluster():
    g = frames.NonceGuard()
    req = frames.new_request("cluster", "server1", "service", {})
    now = time.time()
    g.check(req, "cluster", now)
    with pytest.raises(frames.FrameError, match="replayed"):
        g.check(req, "cluster", now)
    old = dict(frames.new_request("cluster", "server1", "service", {}), time=now - 1000)
    with pytest.raises(frames.FrameError, match="from ours"):
        g.check(old, "cluster", now)
    with pytest.raises(frames.FrameError, match="foreign"):
        g.check(frames.new_request("other", "s", "service", {}), "cluster", now)
    with pytest.raises(frames.FrameError, match="'op'"):
        g.check(dict(frames.new_request("cluster", "s", "x", {}), args=[]), "cluster", now)


def test_nonce_guard_forgets_a_nonce_only_after_twice_the_skew():
    g = frames.NonceGuard()
    now = time.time()
    first = frames.new_request("cluster", "server1", "service", {})
    g.check(first, "cluster", now)
    later = now + 2 * frames.MAX_SKEW - 1
    for i in range(3):  # newer requests meanwhile (their own time: the sender's clock)
        g.check(dict(frames.new_request("cluster", "s", "x", {}), time=later), "cluster",
                later + i * 0.1)
    with pytest.raises(frames.FrameError, match="replayed"):  # still remembered
        g.check(dict(first, time=later), "cluster", later + 0.5)
    g.check(dict(frames.new_request("cluster", "s", "x", {}), time=now + 2 * frames.MAX_SKEW),
            "cluster", now + 2 * frames.MAX_SKEW)
    assert first["nonce"] not in g._seen and len(g._seen) == 4  # the oldest one expired
