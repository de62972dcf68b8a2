"""clpsnmpagent's side of net-snmp's pass_persist protocol: answers, bad input without desync,
the once-a-second re-read, and the status read from a real state region (or its absence)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

from clp.paths import InstallRoot
from clp.snmp import passpersist as pp
from clp.snmp import tree
from clp.snmp.oids import PRODUCT
from clp.state import StateWriter
from tests.unit.test_snmp_tree import doc

CLUSTER_NAME = f".{PRODUCT}.1.1.1.0"
CLUSTER_STATUS = f".{PRODUCT}.1.1.2.0"


def run(requests: bytes, doc_tree: tree.Tree | None = None) -> bytes:
    t = doc_tree or tree.from_status(doc())
    out = io.BytesIO()
    pp.serve(pp.Agent(lambda: t), io.BytesIO(requests), out)
    return out.getvalue()


def test_ping_get_getnext():
    out = run(b"PING\nget\n" + CLUSTER_NAME.encode() + b"\ngetnext\n" + CLUSTER_NAME.encode()
              + b"\n")
    assert out == (b"PONG\n" + CLUSTER_NAME.encode() + b"\nstring\ncluster\n"
                   + CLUSTER_STATUS.encode() + b"\ninteger\n1\n")


def test_get_of_a_missing_object_or_a_table_and_getnext_past_the_end_are_none():
    out = run(f"get\n.{PRODUCT}.1.1.99.0\nget\n.{PRODUCT}.1.2\ngetnext\n.{PRODUCT}.1.8\n"
              f"getnext\n.{PRODUCT}.1.1\n".encode())
    assert out.split(b"\n")[:3] == [b"NONE", b"NONE", b"NONE"]
    assert out.split(b"\n")[3] == CLUSTER_NAME.encode()


def test_gauge_and_oid_without_leading_dot():
    out = run(f"get\n{PRODUCT}.1.1.5.0\n".encode())
    assert out == f".{PRODUCT}.1.1.5.0\ngauge\n2\n".encode()


def test_set_is_not_writable_and_the_next_request_is_still_in_step():
    out = run(b"set\n" + CLUSTER_NAME.encode() + b"\nstring other\nget\n"
              + CLUSTER_STATUS.encode() + b"\n")
    assert out == b"not-writable\n" + CLUSTER_STATUS.encode() + b"\ninteger\n1\n"


def test_bad_lines_get_none_without_desync():
    lines = [b"hello", b"", b"get", b".1.3.x.6", b"getnext", b"1..3", b"get",
             b"." + b".".join([b"1"] * 129),  # 129 sub-identifiers
             b"get", f".{PRODUCT}.1.1.1.4294967296".encode(),  # a sub-identifier > 2^32-1
             b"get", b"\xff\xfe\x00", b"PING"]
    out = run(b"\n".join(lines) + b"\n")
    assert out == b"NONE\n" * 7 + b"PONG\n"


def test_an_overlong_line_is_skipped_whole_and_refused():
    long_oid = CLUSTER_NAME.encode() + b" " * (3 * pp.MAX_LINE)
    out = run(b"get\n" + long_oid + b"\n" + b"x" * (5 * pp.MAX_LINE) + b"\nPING\n")
    assert out == b"NONE\nNONE\nPONG\n"


def test_end_of_input_inside_a_request_ends_quietly():
    assert run(b"PING\nget\n") == b"PONG\n"
    assert run(b"set\n" + CLUSTER_NAME.encode() + b"\n") == b""


def test_strings_are_utf8():
    t = tree.from_status(doc(cluster="クラスタ"))
    out = run(b"get\n" + CLUSTER_NAME.encode() + b"\n", t)
    assert out.split(b"\n")[2] == "クラスタ".encode()


def test_state_is_read_at_most_once_per_ttl():
    now = [100.0]
    loads = []

    def load() -> tree.Tree:
        loads.append(now[0])
        return tree.from_status(doc(cluster=f"c{len(loads)}"))

    agent = pp.Agent(load, ttl=1.0, clock=lambda: now[0])
    for step in (0.0, 0.3, 0.6, 0.99):
        now[0] = 100.0 + step
        assert b"\nc1\n" in agent.get(CLUSTER_NAME.encode())
    now[0] = 101.0
    assert b"\nc2\n" in agent.get(CLUSTER_NAME.encode())
    assert loads == [100.0, 101.0]


def test_loader_reads_the_state_region_and_says_stopped_without_it(root: InstallRoot):
    (root.config_dir / "clp.conf").write_text("cluster: {name: mycluster}\n")
    load = pp.loader(root.root)
    stopped = load()
    assert stopped.get(tree.at_name("clpClusterStatusText")) == ("string", "Stopped")
    assert stopped.get(tree.at_name("clpClusterName")) == ("string", "mycluster")
    d = doc()
    del d["status_age"]
    with StateWriter.create(root, 2, 2) as w:
        w.publish(d)
        running = load()
    assert running.get(tree.at_name("clpClusterStatusText")) == ("string", "Running")
    assert running.get(tree.at_name("clpServerName", 2)) == ("string", "server2")
    # the live per-path table is what clpstat shows too: nothing written there yet -> Unknown
    assert running.get(tree.at_name("clpHeartbeatStatusText", 1, 2)) == ("string", "Unknown")


def test_loader_says_unknown_for_a_document_it_cannot_read(root: InstallRoot):
    with StateWriter.create(root, 1, 1) as w:
        w.publish({"cluster": "c"})  # no servers, no paths
        t = pp.loader(root.root)()
    assert t.get(tree.at_name("clpClusterStatusText")) == ("string", "Unknown")
    assert "cannot be read" in t.get(tree.at_name("clpClusterStatusDetail"))[1]


def test_the_command_answers_snmpd_over_pipes(tmp_path: Path):
    """The console script's module as snmpd runs it: a private root with no cluster running."""
    proc = subprocess.Popen([sys.executable, "-m", "clp.snmp.passpersist", "--root",
                             str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        started = time.monotonic()
        out, err = proc.communicate(b"PING\ngetnext\n.1.3.6.1.4.1.119\nget\n"
                                    + CLUSTER_STATUS.encode() + b"\n", timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out == (b"PONG\n" + CLUSTER_NAME.encode() + b"\nstring\n\n" + CLUSTER_STATUS.encode()
                   + b"\ninteger\n3\n")
    assert time.monotonic() - started < 20
