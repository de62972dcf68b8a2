"""The service's partition probes: a probe that fails in any way counts as no answer, so a loss
is always resolved (a resolution left waiting would hold the lost servers' groups for ever)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from clp.clusterd import resolution
from clp.config import load_config
from clp.config.lab import generate_lab_config
from clp.core.liveness import Liveness, Step
from clp.core.partition import ResolverSpec


def test_a_probe_that_raises_anything_is_no_answer_and_the_loss_is_resolved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "clp.conf").write_text(generate_lab_config(2, 1, 3, ping=True))
    config = load_config(tmp_path)
    servers = list(config.server_names)
    spec = ResolverSpec("pingnp1", "ping", frozenset(servers), 1.0, 1)
    live = Liveness("server1", servers, {"lanhb1": set(servers)}, 3.0, 1.0, (spec,), 0.0)
    live.heartbeat(0.5, "server2", "lanhb1")
    assert live.tick(4.0).probe == ("pingnp1",)
    steps: list[Step] = []

    async def broken(r: object) -> bool:
        raise RuntimeError("a bug in a probe")

    monkeypatch.setattr(resolution, "probe", broken)

    async def scenario() -> None:
        res = resolution.Resolution(config, "server1", live, steps.append, lambda: None,
                                    bytes(32), 1)
        res.probe_now(("pingnp1",))
        for _ in range(100):
            if steps:
                break
            await asyncio.sleep(0.01)
        res.close()

    asyncio.run(scenario())
    (step,) = steps
    assert [v.kind for v in step.verdicts] == ["isolated"]
    assert live.partition.pending == ()


def test_a_witness_resolver_renews_in_the_background_and_claims_the_lost_servers(
        tmp_path: Path) -> None:
    from clp.keys import arbiter_key
    from clp.witness.arbitration import Arbitration
    from clp.witness.witness_server import WitnessServer

    key = bytes(range(32))
    steps: list[Step] = []

    async def scenario() -> None:
        witness = WitnessServer(arbitration=Arbitration({"cluster": arbiter_key(key)}, 1.6,
                                                        time.monotonic))  # >= the lease, 1.5
        await witness.start("127.0.0.1", 0)
        (tmp_path / "scripts").mkdir()
        conf = generate_lab_config(2, 1, 3, arbiter=True).replace(
            "198.18.0.254:29005", f"127.0.0.1:{witness.port}")
        (tmp_path / "clp.conf").write_text(conf)
        config = load_config(tmp_path)
        servers = list(config.server_names)
        now = time.monotonic()
        live = Liveness("server1", servers, {"lanhb1": set(servers)}, 3.0, 1.0,
                        resolution.resolver_specs(config), now)
        res = resolution.Resolution(config, "server1", live, steps.append, lambda: None, key, 1)
        await asyncio.sleep(1.65)  # past the witness's hold
        res.start()
        for _ in range(100):  # a renewal granted: the resolver answers in the background
            if res.snapshot()["witnessnp1"].get("ok"):
                break
            await asyncio.sleep(0.02)
        assert res.snapshot()["witnessnp1"]["ok"] and live.partition.answering("witnessnp1")
        assert live.tick(time.monotonic() + 3.5).probe == ("witnessnp1",)  # server2 lost
        res.probe_now(("witnessnp1",))
        for _ in range(100):
            if steps:
                break
            await asyncio.sleep(0.02)
        claimed = witness.arbitration.arbiters["cluster"].claimed_by("server2",
                                                                     time.monotonic())
        res.close()
        await witness.close()
        assert claimed == ["server1"]

    asyncio.run(scenario())
    (step,) = steps
    (verdict,) = step.verdicts
    assert verdict.kind == "down" and verdict.servers == ("server2",)
    assert "witness 127.0.0.1:" in verdict.reason and "granted the claim" in verdict.reason
