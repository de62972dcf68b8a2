"""clplogcc's archive through the real clusterpro_trn gateway on loopback: many signed chunks
make one archive, a wrong key or a silent server gives no file, and no wait is unbounded."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clp.keys import rexec_key
from clp.net import frames
from clp.paths import InstallRoot
from clp.trn import logcollect, logstream
from clp.trn.gateway import Gateway
from clp.trn.logstream import FetchError
from tests.unit.test_logcollect import members

KEY = bytes(range(32))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


@pytest.fixture
def port(root: InstallRoot) -> Iterator[int]:
    """A real gateway listening on loopback, in a thread of its own."""
    gateway = Gateway(root, "cluster", KEY)
    loop = asyncio.new_event_loop()
    ready: list[int] = []

    async def start() -> asyncio.Server:
        server = await asyncio.start_server(gateway.serve, "127.0.0.1", 0)
        ready.append(server.sockets[0].getsockname()[1])
        return server

    server = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.close()
        gateway.close()


def fetch(port: int, out: Path, key: bytes = KEY, collect_type: str = "type3",
          timeout: float = 30.0) -> tuple[Path, dict]:
    request = frames.new_request("cluster", "test", "logcc",
                                 logstream.request_args(collect_type, 2, timeout * 0.75))
    return logstream.fetch("127.0.0.1", port, key, request, out, time.monotonic() + timeout,
                           5.0, 10.0)


def test_an_archive_of_many_chunks_arrives_whole(root: InstallRoot, port: int,
                                                 out: Path) -> None:
    root.config_file.write_text("cluster: {name: cluster}\n")
    noise = os.urandom(3 * logstream.CHUNK)  # does not compress: several chunks
    (root.log_dir / "noise.log").write_bytes(noise)
    path, reply = fetch(port, out)
    assert reply["size"] > 3 * logstream.CHUNK and path.stat().st_size == reply["size"]
    assert path.parent == out and path.name.endswith(".tar.gz")
    got = {m: d for m, d in members(path).items() if m.endswith("/log/noise.log")}
    assert list(got.values()) == [noise]
    assert [p.name for p in out.iterdir()] == [path.name]  # no .part left
    assert list((root.work_dir / "logcc").iterdir()) == []  # nor the server's copy


def test_a_wrong_key_gets_no_archive(root: InstallRoot, port: int, out: Path) -> None:
    with pytest.raises(FetchError) as e:
        fetch(port, out, key=bytes(32))
    assert e.value.word == "Failed" and e.value.connected
    assert list(out.iterdir()) == []


def test_an_invalid_request_is_refused_by_the_server(root: InstallRoot, port: int,
                                                     out: Path) -> None:
    with pytest.raises(FetchError, match="Invalid request"):
        fetch(port, out, collect_type="type9")


def test_no_listener_is_a_connection_failure_at_once(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(FetchError) as e:
        fetch(free, out)
    assert not e.value.connected and time.monotonic() - t0 < 2


def test_a_silent_server_times_out_by_the_deadline(out: Path) -> None:
    """Accepts the connection, then says nothing (a hung server): the deadline ends the wait."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        t0 = time.monotonic()
        with pytest.raises(FetchError) as e:
            fetch(s.getsockname()[1], out, timeout=1.5)
    assert e.value.word == "Timeout" and 1.4 < time.monotonic() - t0 < 4
    assert list(out.iterdir()) == []


def test_a_second_collection_at_once_is_busy(root: InstallRoot, port: int, out: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(logcollect.COMMANDS, "clpstat", ["sleep", "3"])
    first: list[object] = []
    t = threading.Thread(target=lambda: first.append(fetch(port, out / "a")))
    (out / "a").mkdir()
    t.start()
    time.sleep(1)
    with pytest.raises(FetchError) as e:
        fetch(port, out)
    t.join(20)
    assert e.value.word == "Busy"
    assert first and isinstance(first[0], tuple)  # the first one still got its archive


def test_the_clprexec_key_cannot_collect(root: InstallRoot, port: int, out: Path) -> None:
    """A host outside the cluster holds the clprexec key: it must not get clp.conf and logs."""
    with pytest.raises(FetchError) as e:
        fetch(port, out, key=rexec_key(KEY))
    assert e.value.word == "Failed" and list(out.iterdir()) == []
