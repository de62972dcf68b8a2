"""clptoratio: the time syntax, and the ratio a server holds (set, show, expire, reset, kept
across a restart of the service)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from clp.cli.clptoratio import parse_time
from clp.clusterd.toratio import TimeoutRatio
from clp.core.membership import Membership
from clp.paths import InstallRoot


@pytest.mark.parametrize(("text", "seconds"), [("2m", 120), ("30m", 1800), ("12h", 43200),
                                               ("2d", 172800)])
def test_time_syntax(text: str, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "0m", "-1h", "1w", "1.5h", "h", "123456789d",
                                  "90s"])
def test_bad_times_are_refused_with_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="minutes, hours or days"):
        parse_time(text)


def test_more_than_30_days_is_refused_before_asking_any_server() -> None:
    assert parse_time("30d") == 30 * 86400 and parse_time("2m") == 120
    with pytest.raises(ValueError, match="at most 30 days"):
        parse_time("31d")


def ratio_of(tmp_path: Path) -> tuple[TimeoutRatio, Membership]:
    root = InstallRoot(tmp_path / "root")
    root.work_dir.mkdir(parents=True, exist_ok=True)
    m = Membership("s1", ["s1", "s2"], {"lanhb1": {"s1", "s2"}}, 2.0, 0.0)
    return TimeoutRatio(root, m), m


def op(r: TimeoutRatio, **args):
    return asyncio.run(r.op(args))


def test_set_multiplies_the_timeout_and_expires_by_itself(tmp_path: Path) -> None:
    r, m = ratio_of(tmp_path)
    reply = op(r, ratio=3, period=60)
    assert reply.ok and m.timeout == 6.0 and reply.data["until"] == pytest.approx(
        time.time() + 60, abs=2)
    r.expire(time.time() + 30)
    assert m.timeout == 6.0
    r.expire(time.time() + 61)
    assert m.timeout == 2.0 and r.until is None and not r.file.exists()


def test_kept_across_a_restart_until_its_end(tmp_path: Path) -> None:
    r, _ = ratio_of(tmp_path)
    op(r, ratio=5, period=3600)
    again, m = ratio_of(tmp_path)
    assert m.ratio == 5 and again.until == pytest.approx(r.until)
    r.file.write_text(json.dumps({"ratio": 5, "until": time.time() - 1}))
    _, m = ratio_of(tmp_path)
    assert m.ratio == 1


def test_reset_and_bad_arguments(tmp_path: Path) -> None:
    r, m = ratio_of(tmp_path)
    op(r, ratio=2, period=10)
    assert op(r, reset=True).ok and m.ratio == 1
    for bad in ({"ratio": 0, "period": 10}, {"ratio": 2.5, "period": 10},
                {"ratio": True, "period": 10}, {"ratio": 2, "period": 0},
                {"ratio": 2, "period": "1d"}, {}):
        reply = op(r, **bad)
        assert not reply.ok and reply.code == 2, bad
    assert m.ratio == 1
    assert op(r, show=True).data == {"ratio": 1.0, "until": None, "timeout": 2.0}


def test_a_ratio_that_cannot_be_kept_is_not_applied_and_expiry_never_raises(
        tmp_path: Path) -> None:
    r, m = ratio_of(tmp_path)
    assert op(r, ratio=4, period=60).ok
    r.file.unlink()
    r.file.mkdir()  # neither replaceable nor removable now
    (r.file / "x").touch()
    reply = op(r, ratio=8, period=60)
    assert not reply.ok and reply.code == 9 and "not changed" in reply.message
    assert m.ratio == 4
    reply = op(r, reset=True)
    assert not reply.ok and "not reset" in reply.message and m.ratio == 4
    r.expire(time.time() + 61)  # in the heartbeat loop: must not raise
    assert m.ratio == 1 and r.until is None
