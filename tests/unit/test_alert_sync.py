"""The cluster-wide alert log's core: journals, the merged view, the tail of alert.log, and
servers shipping alerts to each other over an in-memory network that loses, duplicates and
holds datagrams (clp.alert.clusterlog, clp.alert.tail, clp.alert.sync)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from clp.alert import clusterlog
from clp.alert.clusterlog import Entry, Journal, merge
from clp.alert.sync import SyncNode
from clp.alert.tail import AlertLogTail


def alert(server: str, n: int, t: float | None = None, tz: str = "+00:00") -> dict[str, Any]:
    sec = 1000 + n if t is None else t
    hh, mm, ss = int(sec // 3600), int(sec % 3600 // 60), sec % 60
    return {"time": f"2026-12-08T{hh:02d}:{mm:02d}:{ss:06.3f}{tz}", "server": server,
            "module": "logcmd", "event_id": None, "level": "INFO", "message": f"{server} #{n}"}


def msgs(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["message"] for a in alerts]


# the merged view
def test_merge_orders_by_utc_time_across_time_zones() -> None:
    a = alert("server1", 1, t=3600 * 9)  # 09:00 UTC
    b = alert("server2", 1, t=3600 * 17 + 1, tz="+09:00")  # 08:00:01 UTC, written in Tokyo
    out = merge([("server1", [Entry(1, 1, a)]), ("server2", [Entry(1, 1, b)])])
    assert msgs(out) == ["server2 #1", "server1 #1"]


def test_merge_keeps_an_alert_once_by_id_and_by_content() -> None:
    a1, a2 = alert("server2", 1), alert("server2", 2)
    # the same id twice, and the same alert under a new epoch (a local journal rebuilt)
    out = merge([("server2", [Entry(5, 1, a1), Entry(5, 1, a1), Entry(5, 2, a2),
                              Entry(9, 1, a1)])])
    assert msgs(out) == ["server2 #1", "server2 #2"]


def test_journal_keeps_its_history_and_survives_a_torn_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "s.jsonl", history=10)
    j.append([Entry(1, n, alert("s", n)) for n in range(1, 17)])  # over 1.5 x history
    assert [e.seq for e in j.entries] == list(range(7, 17))
    with open(j.path, "a") as f:
        f.write('{"epoch": 1, "seq": 17, "alert": {"ti')  # a crash mid-write
    again = Journal(j.path, history=10)
    assert again.last == (1, 16) and again.oldest(1) == 7


def test_reader_merges_every_journal(tmp_path: Path) -> None:
    from clp.paths import InstallRoot
    root = InstallRoot(tmp_path)
    d = clusterlog.cluster_dir(root)
    Journal(d / "server1.jsonl").append([Entry(1, 1, alert("server1", 1, t=10)),
                                         Entry(1, 2, alert("server1", 2, t=30))])
    Journal(d / "server2.jsonl").append([Entry(2, 1, alert("server2", 1, t=20))])
    assert msgs(clusterlog.read_cluster_log(root)) == ["server1 #1", "server2 #1", "server1 #2"]


# the tail of alert.log
def write_alerts(path: Path, alerts: list[dict[str, Any]]) -> None:
    with open(path, "a") as f:
        for a in alerts:
            f.write(json.dumps(a) + "\n")


def test_tail_takes_whole_lines_and_follows_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "alert.log"
    write_alerts(log, [alert("s", 1), alert("s", 2)])
    with open(log, "a") as f:
        f.write('{"time": "half a line')
    tail = AlertLogTail(log, None)
    assert [a["message"] for a, _, _ in tail.read()] == ["s #1", "s #2"]
    with open(log, "a") as f:
        f.write('"}\n')  # the torn line completes as garbage: skipped, not an alert
    write_alerts(log, [alert("s", 3)])
    os.replace(log, tmp_path / "alert.log.1")  # clusterpro_evt rotates ...
    write_alerts(tmp_path / "alert.log.1", [])
    write_alerts(log, [alert("s", 4)])  # ... and writes on
    assert [a["message"] for a, _, _ in tail.read()] == ["s #3", "s #4"]
    assert tail.read() == []


def test_tail_resumes_where_the_journal_says(tmp_path: Path) -> None:
    log = tmp_path / "alert.log"
    write_alerts(log, [alert("s", 1), alert("s", 2)])
    taken = AlertLogTail(log, None).read()
    write_alerts(log, [alert("s", 3)])
    _, ino, end = taken[0]  # a restart after the first alert was journalled
    assert [a["message"] for a, _, _ in AlertLogTail(log, (ino, end)).read()] == ["s #2", "s #3"]


# servers shipping alerts
class Net:
    """Datagrams between SyncNodes: lost, duplicated or reordered at will; a server is down."""

    def __init__(self, nodes: dict[str, SyncNode], seed: int = 1, loss: float = 0.0) -> None:
        self.nodes = nodes
        self.down: set[str] = set()
        self.rng = random.Random(seed)
        self.loss = loss
        self.queue: list[tuple[str, dict[str, Any]]] = []

    def send(self, outs: list[tuple[str, dict[str, Any]]]) -> None:
        for peer, msg in outs:
            if self.rng.random() < self.loss:
                continue
            copies = 2 if self.rng.random() < self.loss else 1  # two interconnects
            self.queue += [(peer, json.loads(json.dumps(msg)))] * copies

    def run(self, ticks: int = 20) -> None:
        for _ in range(ticks):
            for name, node in self.nodes.items():
                if name not in self.down:
                    self.send(node.tick())
            while self.queue:
                self.rng.shuffle(self.queue)
                peer, msg = self.queue.pop()
                if peer not in self.down:
                    self.send(self.nodes[peer].receive(msg))


def node(tmp_path: Path, me: str, servers: tuple[str, ...], epoch: int = 1) -> SyncNode:
    return SyncNode(me, tmp_path / me, servers, new_epoch=lambda: epoch)


def raise_alerts(n: SyncNode, server: str, numbers: range) -> list[tuple[str, dict[str, Any]]]:
    return n.add_local([(alert(server, i), 7, 100 * i) for i in numbers])


def view(n: SyncNode) -> list[str]:
    return msgs(merge([(n.me, n.local.entries)] + [(p, j.entries) for p, j in n.journals.items()]))


SERVERS = ("server1", "server2", "server3")


def test_alerts_reach_every_server_once_in_order_over_a_lossy_network(tmp_path: Path) -> None:
    nodes = {s: node(tmp_path, s, SERVERS) for s in SERVERS}
    net = Net(nodes, loss=0.3)
    net.run(2)
    for i in range(1, 31):  # interleaved in time: server1 #1, server2 #1, ...
        s = SERVERS[i % 3]
        net.send(nodes[s].add_local([(alert(s, i), 1, i)]))
        net.run(1)
    net.run(60)
    expected = [f"{SERVERS[i % 3]} #{i}" for i in range(1, 31)]
    for n in nodes.values():
        assert view(n) == expected
        for j in n.journals.values():  # no alert twice, no gap
            assert [e.seq for e in j.entries] == list(range(1, 11))


def test_a_server_down_for_a_while_catches_up_in_order_once(tmp_path: Path) -> None:
    s1, s2 = node(tmp_path, "server1", SERVERS[:2]), node(tmp_path, "server2", SERVERS[:2])
    net = Net({"server1": s1, "server2": s2})
    net.send(raise_alerts(s2, "server2", range(1, 3)))
    net.run(2)
    net.down.add("server1")
    net.send(raise_alerts(s2, "server2", range(3, 2003)))  # many batches' worth
    net.run(3)
    # server1 restarts: its state comes back from its journals only
    s1 = node(tmp_path, "server1", SERVERS[:2])
    net.nodes["server1"] = s1
    net.down.clear()
    assert s1.journals["server2"].last == (1, 2)
    net.run(40)
    assert view(s1) == [f"server2 #{i}" for i in range(1, 2003)]
    assert [e.seq for e in s1.journals["server2"].entries] == list(range(1, 2003))


def test_a_restarted_sender_resends_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    s1, s2 = node(tmp_path, "server1", SERVERS[:2]), node(tmp_path, "server2", SERVERS[:2])
    net = Net({"server1": s1, "server2": s2})
    net.run(1)
    net.send(raise_alerts(s2, "server2", range(1, 4)))
    net.run(2)
    s2 = node(tmp_path, "server2", SERVERS[:2], epoch=99)  # same journal: same epoch, seq
    assert (s2.epoch, s2.last) == (1, 3)
    net.nodes["server2"] = s2
    assert s2.tick()[1:] == []  # nothing to send before server1 says what it has
    acks = [m for p, m in s1.tick() if p == "server2"]
    assert s2.receive(acks[0]) == []  # server1 has all


def test_beyond_the_history_the_gap_is_logged_and_shipping_goes_on(tmp_path: Path,
                                                                    caplog: Any) -> None:
    s1, s2 = node(tmp_path, "server1", SERVERS[:2]), node(tmp_path, "server2", SERVERS[:2])
    s2.local.history = 10
    net = Net({"server1": s1, "server2": s2})
    net.down.add("server1")
    net.send(raise_alerts(s2, "server2", range(1, 31)))
    net.down.clear()
    net.run(10)
    seqs = [e.seq for e in s1.journals["server2"].entries]
    assert seqs[0] > 1 and seqs == list(range(seqs[0], 31))
    assert "are lost to this server" in caplog.text


def test_a_new_epoch_of_a_peer_starts_its_count_again(tmp_path: Path) -> None:
    s1, s2 = node(tmp_path, "server1", SERVERS[:2]), node(tmp_path, "server2", SERVERS[:2])
    net = Net({"server1": s1, "server2": s2})
    net.send(raise_alerts(s2, "server2", range(1, 3)))
    net.run(3)
    (tmp_path / "server2" / "server2.jsonl").unlink()  # an operator removed the journal
    s2 = node(tmp_path, "server2", SERVERS[:2], epoch=2)
    net.nodes["server2"] = s2
    net.send(raise_alerts(s2, "server2", range(3, 5)))
    net.run(3)
    assert view(s1) == [f"server2 #{i}" for i in range(1, 5)]
    # a datagram of the old epoch, late: dropped, counted
    old = {"op": "alerts", "from": "server2", "epoch": 1, "oldest": 1,
           "alerts": [[3, alert("server2", 99)]]}
    s1.receive(old)
    assert s1.dropped["old epoch"] == 1 and "server2 #99" not in view(s1)


def test_malformed_and_foreign_messages_are_counted_and_dropped(tmp_path: Path) -> None:
    s1 = node(tmp_path, "server1", SERVERS[:2])
    bad = alert("server2", 1)
    del bad["level"]
    for msg in ({"op": "alerts", "from": "server9", "epoch": 1, "oldest": 1, "alerts": []},
                {"op": "alerts", "from": "server2", "epoch": 1, "oldest": 1,
                 "alerts": [[1, bad]]},
                {"op": "ack", "from": "server2", "epoch": "x", "have": 1},
                {"op": "shutdown", "from": "server2"}):
        assert s1.receive(msg) == []
    assert s1.dropped == {"unknown sender": 1, "malformed": 2, "unknown op": 1}
    assert s1.journals["server2"].entries == []
