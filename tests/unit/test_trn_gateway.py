"""The clusterpro_trn gateway on loopback: which key may ask for what, clprexec's scripts, the
limits that keep one client from starving the servers' own requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clp.keys import load_key, load_rexec_key, rexec_key, write_new_key, write_rexec_key
from clp.net import frames
from clp.paths import InstallRoot
from clp.trn.gateway import REXEC_WORKERS, Gateway

KEY = bytes(range(32))


@pytest.fixture
def gateway(root: InstallRoot) -> Iterator[Gateway]:
    g = Gateway(root, "cluster", KEY)
    yield g
    g.close()


def ask(g: Gateway, key: bytes, op: str, args: dict[str, Any]) -> dict[str, Any] | str:
    """One request through a real TCP connection; the reply, or why there was none."""

    async def go() -> dict[str, Any] | str:
        server = await asyncio.start_server(g.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            request = frames.new_request("cluster", "test", op, args)
            return await asyncio.to_thread(call, port, key, request)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(go())


def call(port: int, key: bytes, request: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return frames.call("127.0.0.1", port, key, request, timeout=10)
    except (OSError, frames.FrameError) as e:
        return f"refused: {e}"


def test_the_clprexec_key_asks_for_rexec_and_nothing_else(gateway: Gateway) -> None:
    rk = rexec_key(KEY)
    assert rk != KEY and len(rk) == 32
    r = ask(gateway, rk, "rexec", {"action": "script", "script": "none.sh"})
    assert isinstance(r, dict) and r["code"] == 2 and "does not exist" in r["message"]
    for op, args in (("control", {"op": "group_move", "args": {}}),
                     ("service", {"action": "stop", "service": "clusterpro"})):
        assert isinstance(ask(gateway, rk, op, args), str)
    assert gateway.rejected["rexec_key"] == 2
    r = ask(gateway, KEY, "service", {"action": "stop", "service": "sshd"})  # the cluster key
    assert isinstance(r, dict) and r["code"] == 2  # answered (and refused for its argument)
    assert isinstance(ask(gateway, bytes(32), "rexec", {"action": "script"}), str)
    assert gateway.rejected["FrameError"] == 1


def test_scripts_only_from_trnreq_and_their_output_comes_back(gateway: Gateway,
                                                              root: InstallRoot) -> None:
    trnreq = root.work_dir / "trnreq"
    trnreq.mkdir(parents=True)
    (trnreq / "ok.sh").write_text("#!/bin/sh\necho fine\n")
    (trnreq / "ok.sh").chmod(0o755)
    (trnreq / "bad.sh").write_text("#!/bin/sh\necho broken; exit 3\n")
    (trnreq / "bad.sh").chmod(0o755)
    (trnreq / "plain.sh").write_text("#!/bin/sh\n")  # not executable
    rk = rexec_key(KEY)
    r = ask(gateway, rk, "rexec", {"action": "script", "script": "ok.sh"})
    assert isinstance(r, dict) and r["ok"] and r["data"]["output"].strip() == "fine"
    r = ask(gateway, rk, "rexec", {"action": "script", "script": "bad.sh"})
    assert isinstance(r, dict) and r["code"] == 17 and "code 3" in r["message"]
    assert "broken" in r["data"]["output"]
    for name in ("plain.sh", "../ok.sh", "trnreq/ok.sh", "ok.sh\n", ".hidden", "", 7):
        r = ask(gateway, rk, "rexec", {"action": "script", "script": name})
        assert isinstance(r, dict) and r["code"] == 2, name


def test_clprexec_requests_beyond_the_workers_are_refused_not_queued(gateway: Gateway) -> None:
    for _ in range(REXEC_WORKERS):
        assert gateway._rexec_slots.acquire(blocking=False)
    r = ask(gateway, rexec_key(KEY), "rexec", {"action": "script", "script": "x.sh"})
    assert isinstance(r, dict) and r["code"] == 11 and "try later" in r["message"]
    for _ in range(REXEC_WORKERS):
        gateway._rexec_slots.release()


def test_denied_alerts_once_a_minute_per_address(gateway: Gateway,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clp.trn"):
        for address in ("198.18.0.9", "198.18.0.9", "198.18.0.10"):
            gateway._refused(address, "test")
    assert [r.alert for r in caplog.records] == [True, False, True]  # type: ignore[attr-defined]


def test_key_files(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.key"
    key = write_new_key(cluster)
    assert load_rexec_key(cluster) == rexec_key(key)  # on a server: derived from the cluster's
    made = tmp_path / "rexec.key"
    write_rexec_key(made, key)
    assert made.stat().st_mode & 0o777 == 0o600
    assert made.read_text().startswith("rexec:")
    assert load_rexec_key(made) == rexec_key(key)
    with pytest.raises(Exception, match="clprexec key, not the cluster key"):
        load_key(made)  # a host given the clprexec key cannot run the cluster with it
    with pytest.raises(FileExistsError):
        write_rexec_key(made, key)
