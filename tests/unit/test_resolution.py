"""The service's partition probes: a probe that fails in any way counts as no answer, so a loss
is always resolved (a resolution left waiting would hold the lost servers' groups for ever)."""

from __future__ import annotations

import asyncio
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
                                    bytes(32))
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
