"""clpcfctrl's two phases through real clusterpro_trn gateways on loopback: every server commits
only when all staged; a server that takes the connection but never answers (a frozen process:
the kernel accepts for it) aborts the push and the others keep no staged copy; its late stage
after the abort is refused; only the cluster key is accepted for the ``config`` operation."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clp.cli.cfpush import Transfer
from clp.keys import rexec_key
from clp.net import frames
from clp.paths import InstallRoot
from clp.trn.config_store import ConfigStore, collect, digest
from clp.trn.gateway import Gateway

KEY = bytes(range(32))
ADDRESSES = {"server1": ["127.0.0.1"], "server2": ["127.0.0.2"]}


def make_root(path: Path, conf: str) -> InstallRoot:
    root = InstallRoot(path)
    (root.config_dir / "scripts").mkdir(parents=True)
    root.config_file.write_text(conf)
    return root


@pytest.fixture
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """Real gateways on 127.0.0.x:port, served by one event loop in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gateways: list[Gateway] = []

    def serve(self, root: InstallRoot, address: str) -> Gateway:
        g = Gateway(root, "cluster", KEY)
        self.gateways.append(g)
        asyncio.run_coroutine_threadsafe(
            asyncio.start_server(g.serve, address, self.port), self.loop).result(5)
        return g

    def close(self) -> None:
        for g in self.gateways:
            g.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def servers(port: int) -> Iterator[Servers]:
    s = Servers(port)
    yield s
    s.close()


def new_files(tmp_path: Path) -> dict:
    d = tmp_path / "new"
    (d / "scripts").mkdir(parents=True)
    (d / "clp.conf").write_text("cluster: {name: new}\n")
    return collect(d)


def test_all_staged_then_all_committed(tmp_path: Path, servers: Servers, port: int) -> None:
    roots = [make_root(tmp_path / s, "cluster: {name: old}\n") for s in ADDRESSES]
    for root, addrs in zip(roots, ADDRESSES.values(), strict=True):
        servers.serve(root, addrs[0])
    t = Transfer("cluster", "server1", KEY, ADDRESSES, port, timeout=5)
    files = new_files(tmp_path)
    staged = t.stage_all(list(ADDRESSES), 1, files, digest(files))
    assert all(a.ok for a in staged.values()), staged
    assert all(r.config_file.read_text() == "cluster: {name: old}\n" for r in roots)
    done = t.commit_all(list(ADDRESSES))
    assert all(a.ok and a.data["generation"]["generation"] == 1 for a in done.values()), done
    assert all(r.config_file.read_text() == "cluster: {name: new}\n" for r in roots)


def test_a_frozen_server_aborts_the_push_everywhere(tmp_path: Path, servers: Servers,
                                                    port: int) -> None:
    root1 = make_root(tmp_path / "server1", "cluster: {name: old}\n")
    servers.serve(root1, "127.0.0.1")
    frozen = socket.socket()  # listens, never accepts or reads: a SIGSTOPped clusterpro_trn
    frozen.bind(("127.0.0.2", port))
    frozen.listen(8)
    try:
        t = Transfer("cluster", "server1", KEY, ADDRESSES, port, timeout=1)
        files = new_files(tmp_path)
        staged = t.stage_all(list(ADDRESSES), 1, files, digest(files))
        assert staged["server1"].ok
        assert not staged["server2"].ok and "no answer within 1 s" in staged["server2"].message
        assert ConfigStore(root1.config_dir).staged() == []  # aborted
        assert root1.config_file.read_text() == "cluster: {name: old}\n"
        assert ConfigStore(root1.config_dir).current().number == 0
    finally:
        frozen.close()
    # the server thaws and handles the stage it had queued: refused, it was aborted meanwhile
    late = frames.new_request("cluster", "server1", "config", {
        "action": "stage", "txn": t.txn, "generation": 1, "hash": digest(files), "files": files,
        "source": "server1", "deadline": 1e12})
    reply = frames.call("127.0.0.1", port, KEY, late, timeout=5)
    assert not reply["ok"] and "aborted" in reply["message"]
    assert ConfigStore(root1.config_dir).staged() == []


def test_only_the_cluster_key_reaches_the_configuration(tmp_path: Path, servers: Servers,
                                                        port: int) -> None:
    root = make_root(tmp_path / "server1", "cluster: {name: old}\n")
    g = servers.serve(root, "127.0.0.1")
    for key in (rexec_key(KEY), b"x" * 32):
        request = frames.new_request("cluster", "server1", "config", {"action": "pull"})
        with pytest.raises((OSError, frames.FrameError)):
            frames.call("127.0.0.1", port, key, request, timeout=5)
    assert sum(g.rejected.values()) == 2
    t = Transfer("cluster", "server1", KEY, {"server1": ["127.0.0.1"]}, port, timeout=5)
    pulled = t.call("server1", {"action": "pull"})
    assert pulled.ok and pulled.data["generation"]["generation"] == 0


def test_a_server_without_configuration_serves_only_the_push(tmp_path: Path, servers: Servers,
                                                             port: int) -> None:
    """A reinstalled server: its key is back, its clp.conf is not."""
    from clp.trn.config_transfer import waiting_gateway

    root = InstallRoot(tmp_path / "server2")
    root.config_dir.mkdir(parents=True)
    g = waiting_gateway(root, KEY)
    commits: list[bool] = []
    g.on_config_commit = lambda: commits.append(True)
    servers.gateways.append(g)
    asyncio.run_coroutine_threadsafe(
        asyncio.start_server(g.serve, "127.0.0.2", port), servers.loop).result(5)
    t = Transfer("any-name", "server1", KEY, {"server2": ["127.0.0.2"]}, port, timeout=5)
    assert t.call("server2", {"action": "generation"}).data["generation"] is None
    control = frames.new_request("any-name", "server1", "control", {"op": "status", "args": {}})
    reply = frames.call("127.0.0.2", port, KEY, control, timeout=5)
    assert not reply["ok"] and "only clpcfctrl --push" in reply["message"]
    files = new_files(tmp_path)
    assert t.stage_all(["server2"], 3, files, digest(files))["server2"].ok
    assert t.commit_all(["server2"])["server2"].ok and commits == [True]
    assert root.config_file.read_text() == "cluster: {name: new}\n"


def test_a_push_planned_before_another_committed_is_refused(tmp_path: Path, servers: Servers,
                                                            port: int) -> None:
    """Two pushes read generation 0; the first commits; the second's plan is stale: refused,
    so one generation number never names two configurations."""
    root = make_root(tmp_path / "server1", "cluster: {name: old}\n")
    servers.serve(root, "127.0.0.1")
    one = {"server1": ["127.0.0.1"]}
    first, second = (Transfer("cluster", "server1", KEY, one, port, timeout=5) for _ in "12")
    bases = {"server1": first.call("server1", {"action": "generation"}).data["generation"]}
    files = new_files(tmp_path)
    assert first.stage_all(["server1"], 1, files, digest(files), bases)["server1"].ok
    assert first.commit_all(["server1"])["server1"].ok
    answer = second.stage_all(["server1"], 1, files, digest(files), bases)["server1"]
    assert not answer.ok and answer.code == 128 and "changed since" in answer.message
    assert ConfigStore(root.config_dir).staged() == []
    assert ConfigStore(root.config_dir).current().number == 1
