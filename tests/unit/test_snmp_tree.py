"""The CLP-CLUSTER-MIB tree built from a status document: the values of every table, and the
SNMP order a getnext walk follows, across the ends of columns and tables."""

from __future__ import annotations

import copy
from typing import Any

from clp.snmp import tree
from clp.snmp.tree import ROOT, from_outage, from_status, walk


def doc(**changes: Any) -> dict[str, Any]:
    paths = {"lanhb1": {"state": "Normal"}, "diskhb1": {"state": "Normal"}}
    d: dict[str, Any] = {
        "cluster": "cluster", "me": "server1", "master": "server1",
        "servers": ["server1", "server2"],
        "paths": [{"name": "lanhb1", "type": "lan"}, {"name": "diskhb1", "type": "disk"}],
        "heartbeat": {"interval": 1.0, "timeout": 10.0},
        "membership": {"servers": {"server1": {"state": "Online", "paths": copy.deepcopy(paths)},
                                   "server2": {"state": "Online", "paths": copy.deepcopy(paths)}},
                       "ratio": 2, "timeout": 20.0},
        "suspended": False, "status_age": 0.25,
        "groups": {
            "ManagementGroup": {"state": "Online", "server": "server2",
                                "resources": {"ManagementIP": {"type": "fip",
                                                               "state": "Online"}}},
            "failover1": {"state": "Offline", "server": None,
                          "resources": {"fip1": {"type": "fip", "state": "Offline"},
                                        "exec1": {"type": "exec", "state": "Online Failure"}}}},
        "monitors": {"userw": {"type": "userw", "state": "Normal", "target": None,
                               "servers": {"server1": "Normal", "server2": "Normal"}},
                     "fipw1": {"type": "fipw", "state": "Error", "target": "fip1",
                               "servers": {"server2": "Error"}}},
    }
    d.update(changes)
    return d


def at(*sub: int) -> tuple[int, ...]:
    return ROOT + sub


def values(t: tree.Tree) -> dict[tuple[int, ...], Any]:
    return {oid[len(ROOT):]: v for oid, v in t.values.items()}


def test_cluster_scalars_say_what_clpstat_says():
    v = values(from_status(doc()))
    assert v[(1, 1, 0)] == ("string", "cluster")
    assert v[(1, 2, 0)] == ("integer", 1) and v[(1, 3, 0)] == ("string", "Running")
    assert v[(1, 5, 0)] == ("gauge", 2)
    assert v[(1, 6, 0)] == ("string", "server1") and v[(1, 7, 0)] == ("string", "server1")
    assert v[(1, 8, 0)] == ("gauge", 1000)
    assert v[(1, 9, 0)] == ("gauge", 20000)  # the timeout with the ratio applied
    assert v[(1, 10, 0)] == ("gauge", 2) and v[(1, 11, 0)] == ("gauge", 2)
    assert v[(1, 12, 0)] == ("gauge", 250)
    suspended = values(from_status(doc(suspended=True)))
    assert suspended[(1, 2, 0)] == ("integer", 2) and suspended[(1, 3, 0)] == (
        "string", "Suspended")
    # and every server is then Suspension, as clpstat prints
    assert suspended[(2, 1, 4, 2)] == ("string", "Suspension")
    assert suspended[(2, 1, 3, 2)] == ("integer", 4)


def test_server_and_heartbeat_rows_use_clpstats_words():
    d = doc()
    d["membership"]["servers"]["server2"]["paths"]["diskhb1"]["state"] = "Error"
    d["membership"]["servers"]["server1"]["paths"]["diskhb1"]["state"] = "Not Used"
    v = values(from_status(d))
    assert v[(2, 1, 2, 1)] == ("string", "server1") and v[(2, 1, 2, 2)] == ("string", "server2")
    assert v[(2, 1, 4, 1)] == ("string", "Online")
    assert v[(2, 1, 4, 2)] == ("string", "Caution") and v[(2, 1, 3, 2)] == ("integer", 3)
    assert v[(2, 1, 5, 1)] == ("integer", 1) and v[(2, 1, 5, 2)] == ("integer", 2)
    # heartbeat: INDEX server, path
    assert v[(3, 1, 2, 2, 2)] == ("string", "diskhb1")
    assert v[(3, 1, 3, 2, 2)] == ("integer", 2)
    assert v[(3, 1, 4, 2, 2)] == ("string", "Disk Heartbeat")
    assert v[(3, 1, 6, 2, 2)] == ("string", "Error") and v[(3, 1, 5, 2, 2)] == ("integer", 2)
    assert v[(3, 1, 6, 1, 2)] == ("string", "Unused") and v[(3, 1, 5, 1, 2)] == ("integer", 3)
    assert v[(3, 1, 4, 1, 1)] == ("string", "LAN Heartbeat")


def test_groups_resources_and_a_group_that_runs_nowhere():
    v = values(from_status(doc()))
    assert v[(4, 1, 2, 1)] == ("string", "ManagementGroup")
    assert v[(4, 1, 5, 1)] == ("string", "server2") and v[(4, 1, 6, 1)] == ("gauge", 2)
    assert v[(4, 1, 5, 2)] == ("string", "") and v[(4, 1, 6, 2)] == ("gauge", 0)
    assert v[(4, 1, 4, 2)] == ("string", "Offline") and v[(4, 1, 3, 2)] == ("integer", 2)
    assert v[(4, 1, 7, 2)] == ("gauge", 2)
    # resources: INDEX group, resource
    assert v[(5, 1, 2, 2, 2)] == ("string", "exec1")
    assert v[(5, 1, 3, 2, 2)] == ("string", "failover1")
    assert v[(5, 1, 4, 2, 2)] == ("string", "exec")
    assert v[(5, 1, 5, 2, 2)] == ("integer", 5)
    assert v[(5, 1, 6, 2, 2)] == ("string", "Online Failure")


def test_monitors_overall_and_per_server_only_where_they_run():
    v = values(from_status(doc()))
    assert v[(6, 1, 2, 2)] == ("string", "fipw1") and v[(6, 1, 3, 2)] == ("string", "fipw")
    assert v[(6, 1, 4, 2)] == ("integer", 3) and v[(6, 1, 5, 2)] == ("string", "Error")
    assert v[(6, 1, 6, 2)] == ("string", "fip1") and v[(6, 1, 6, 1)] == ("string", "")
    # per server: INDEX monitor, server; fipw1 has no row for server1
    assert v[(7, 1, 2, 1, 1)] == ("string", "Normal") and v[(7, 1, 2, 1, 2)] == ("string",
                                                                              "Normal")
    assert (7, 1, 2, 2, 1) not in v and v[(7, 1, 1, 2, 2)] == ("integer", 3)


def test_a_word_the_mib_does_not_know_keeps_its_text_and_maps_to_unknown():
    d = doc()
    d["groups"]["failover1"]["state"] = "Half Online"
    d["monitors"]["userw"]["state"] = "Pseudo"
    d["paths"][1]["type"] = "pigeon"
    v = values(from_status(d))
    assert v[(4, 1, 4, 2)] == ("string", "Half Online") and v[(4, 1, 3, 2)] == ("integer", 7)
    assert v[(6, 1, 5, 1)] == ("string", "Pseudo") and v[(6, 1, 4, 1)] == ("integer", 7)
    assert v[(3, 1, 3, 1, 2)] == ("integer", 5) and v[(3, 1, 4, 1, 2)] == ("string", "pigeon")


def test_text_is_one_line_of_at_most_255_octets_cut_between_characters():
    assert tree.text("a\nb\r\nc") == "a b c"
    long = "あ" * 100  # 3 octets each: 255 octets hold 85 of them
    assert tree.text(long) == "あ" * 85 and len(tree.text(long).encode()) == 255
    assert len(tree.text("x" + long).encode()) == 253  # the 86th character does not fit whole
    assert tree.text(None) == ""


def test_outage_tree_has_the_scalars_and_empty_tables():
    t = from_outage("Stopped", "The cluster service is not running on this server.", "cl")
    v = values(t)
    assert len(t) == 12 and all(oid[0] == 1 and oid[-1] == 0 for oid in v)
    assert v[(1, 1, 0)] == ("string", "cl") and v[(1, 2, 0)] == ("integer", 3)
    assert v[(1, 3, 0)] == ("string", "Stopped")
    assert v[(1, 4, 0)] == ("string", "The cluster service is not running on this server.")
    assert v[(1, 5, 0)] == ("gauge", 0)
    assert from_outage("Unknown", "x").get(at(1, 2, 0)) == ("integer", 4)


def test_getnext_order_across_column_and_table_ends():
    t = from_status(doc())
    # before the subtree, and the subtree's own prefix: the first object
    assert t.next((1, 3, 6))[0] == at(1, 1, 0)
    assert t.next(ROOT)[0] == at(1, 1, 0)
    # the last scalar -> the first column of the server table
    assert t.next(at(1, 12, 0))[0] == at(2, 1, 2, 1)
    # the end of a column -> the next column's first row
    assert t.next(at(2, 1, 2, 2))[0] == at(2, 1, 3, 1)
    # an index past the last row, and an OID inside a missing row, land on the next column
    assert t.next(at(2, 1, 2, 99))[0] == at(2, 1, 3, 1)
    assert t.next(at(2, 1, 2, 2, 7))[0] == at(2, 1, 3, 1)
    # the end of the server table -> the heartbeat table, two-part index in order
    assert t.next(at(2, 1, 6, 2))[0] == at(3, 1, 2, 1, 1)
    assert t.next(at(3, 1, 2, 1, 2))[0] == at(3, 1, 2, 2, 1)
    # the end of the tree, and past the subtree
    last = t.oids[-1]
    assert last == at(7, 1, 2, 2, 2)
    assert t.next(last) is None and t.next(ROOT[:-1] + (2,)) is None
    assert t.get(at(1, 1)) is None and t.get(at(1, 1, 0)) == ("string", "cluster")


def test_walk_is_numeric_not_textual_order_with_ten_or_more_rows():
    monitors = {f"m{i}": {"type": "userw", "state": "Normal", "servers": {"server1": "Normal"}}
                for i in range(1, 13)}
    t = from_status(doc(monitors=monitors))
    names = [v[1] for oid, v in walk(t) if oid[len(ROOT):len(ROOT) + 3] == (6, 1, 2)]
    assert names == [f"m{i}" for i in range(1, 13)]
    oids = [oid for oid, _ in walk(t)]
    assert oids == sorted(oids) and len(oids) == len(set(oids)) == len(t)
    assert oids[0] == at(1, 1, 0)
