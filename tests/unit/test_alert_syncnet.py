"""clusterpro_alertsync's shipping thread with real UDP sockets on loopback: alerts appended to
one server's alert.log reach the other's cluster-wide log; datagrams that are forged, garbled,
of another cluster or from an address that is not the sender's are dropped and counted."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clp.alert.clusterlog import read_cluster_log
from clp.alert.syncnet import AlertSync, Topology
from clp.net.frames import pack
from clp.paths import InstallRoot
from tests.netutil import free_port

KEY = bytes(range(32))
A1, A2 = "127.0.0.1", "127.0.0.2"


def wait(what: str, probe: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def append_alert(root: InstallRoot, server: str, message: str) -> None:
    a = {"time": "2026-12-08T01:00:00.000+00:00", "server": server, "module": "logcmd",
         "event_id": 1, "level": "INFO", "message": message}
    with open(root.alert_log, "a") as f:
        f.write(json.dumps(a) + "\n")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[InstallRoot, InstallRoot, AlertSync, int]]:
    port = free_port(socket.SOCK_DGRAM, A1)
    roots = InstallRoot(tmp_path / "s1"), InstallRoot(tmp_path / "s2")
    for r in roots:
        r.ensure_dirs()
    s1, s2 = AlertSync(roots[0], "server1"), AlertSync(roots[1], "server2")
    servers = ("server1", "server2")
    s1.start(Topology("c1", port, ((A1, (("server2", A2),)),), servers), KEY)
    s2.start(Topology("c1", port, ((A2, (("server1", A1),)),), servers), KEY)
    try:
        yield roots[0], roots[1], s1, port
    finally:
        s1.stop()
        s2.stop()


def messages(root: InstallRoot) -> list[str]:
    return [a["message"] for a in read_cluster_log(root)]


def test_an_alert_reaches_the_peer_and_forged_datagrams_do_not(pair: tuple) -> None:
    root1, root2, s1, port = pair
    append_alert(root2, "server2", "real")
    wait("server2's alert on server1", lambda: messages(root1) == ["real"])
    a = {"time": "2026-12-08T01:00:01.000+00:00", "server": "server2", "module": "logcmd",
         "event_id": 1, "level": "INFO", "message": "forged"}
    msg = {"op": "alerts", "from": "server2", "epoch": 1 << 62, "oldest": 1,
           "alerts": [[1, a]], "cluster": "c1", "time": time.time()}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.bind((A2, 0))  # the sender's address, but not its key
        out.sendto(pack(bytes(32), msg), (A1, port))
        out.sendto(b"\x00\x00\x00\x05garbage", (A1, port))
        out.sendto(pack(KEY, {**msg, "cluster": "c2"}), (A1, port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.bind(("127.0.0.3", 0))  # the key, from elsewhere
        out.sendto(pack(KEY, msg), (A1, port))
    wait("four drops", lambda: sum(s1.dropped.values()) == 4)
    assert s1.dropped == {"authentication failed": 1, "malformed": 1, "another cluster": 1,
                          "not from the sender's address": 1}
    append_alert(root2, "server2", "after")
    wait("the next alert", lambda: messages(root1) == ["real", "after"])
    assert messages(root2) == ["real", "after"]


def test_a_bug_in_the_shipping_thread_ends_the_service_for_its_supervisor(
        tmp_path: Path) -> None:
    from clp.alert.service import AlertService

    root = InstallRoot(tmp_path)
    root.ensure_dirs()
    svc = AlertService(root, "server1", sync=True)
    assert svc.sync is not None
    svc.spool.ensure()
    svc._listen()
    root.alert_log.write_text("")
    port = free_port(socket.SOCK_DGRAM, A1)
    # a journal directory where a file must be: journalling the first alert fails
    (root.work_dir / "alert").mkdir(parents=True, exist_ok=True)
    (root.work_dir / "alert" / "cluster").write_text("not a directory")
    svc.sync.start(Topology("c1", port, ((A1, ()),), ("server1",)), KEY)
    append_alert(root, "server1", "x")
    started = time.monotonic()
    assert svc.run() == 1
    assert time.monotonic() - started < 5


def test_from_clp_conf_and_a_new_cluster_key_taken_without_a_restart(tmp_path: Path) -> None:
    from clp.config import load_config
    from clp.keys import write_new_key

    port = free_port(socket.SOCK_DGRAM, A1)
    roots = InstallRoot(tmp_path / "s1"), InstallRoot(tmp_path / "s2")
    syncs = AlertSync(roots[0], "server1"), AlertSync(roots[1], "server2")
    for r in roots:
        r.ensure_dirs()
        r.config_file.write_text(
            f"cluster: {{name: c1, ports: {{alertsync: {port}}}}}\n"
            "servers: {server1: {}, server2: {}}\n"
            f"interconnects:\n- type: lan\n  addresses: {{server1: {A1}, server2: {A2}}}\n")
        r.key_file.write_bytes(KEY.hex().encode() + b"\n")
        r.key_file.chmod(0o600)
    try:
        for r, s in zip(roots, syncs, strict=True):
            s.configure(load_config(r.config_dir))
        append_alert(roots[1], "server2", "one")
        wait("the first alert", lambda: messages(roots[0]) == ["one"])
        write_new_key(roots[1].key_file)  # server2 has a new key, server1 not yet
        wait("refused acks", lambda: syncs[0].dropped["authentication failed"] > 0)
        append_alert(roots[1], "server2", "two")
        wait("server2 to journal it", lambda: messages(roots[1]) == ["one", "two"])
        time.sleep(1.5)  # its send, and a resend
        assert messages(roots[0]) == ["one"]
        roots[0].key_file.write_bytes(roots[1].key_file.read_bytes())
        wait("the second alert", lambda: messages(roots[0]) == ["one", "two"])
    finally:
        for s in syncs:
            s.stop()
