"""clp.config.reflect: the reflect method of a configuration change, one case per row of the
seed's table (chapter 7, クラスタ構成情報を反映する) and the rules of a whole diff."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from clp.config.loader import check_data
from clp.config.reflect import LABELS, plan
from clp.config.registry import APPLY_METHODS

SAMPLE = Path(__file__).parents[2] / "clp" / "samples" / "lab2" / "clp.conf"


def raw(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The sample, edited, validated and defaults-filled as the daemon holds it."""
    doc = yaml.safe_load(SAMPLE.read_text())
    if edit is not None:
        edit(doc)
    data, issues = check_data(yaml.safe_dump(doc))
    assert [i for i in issues if i.severity == "error"] == []
    return data


def set_path(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for k in keys[:-1]:
            node = node.setdefault(k, {}) if isinstance(node, dict) else node[k]
        node[keys[-1]] = value
    return edit


def add_server(doc: dict[str, Any]) -> None:
    doc["servers"]["server3"] = {}
    for ic in doc["interconnects"]:
        if ic["type"] == "lan":
            ic["addresses"]["server3"] = ic["addresses"]["server2"][:-1] + "3"
        elif ic["type"] == "disk":  # a COM cable joins two servers only
            ic["devices"]["server3"] = ic["devices"]["server2"]


# one row of the seed's table each (shutdown_reboot: no parameter of clp needs it yet)
ROWS = [
    ("upload_only", set_path("groups", "failover1", "start", value="manual"),
     "groups.failover1.start"),
    ("upload_only", set_path("alert", value={"snmp": {"destinations": [{"host": "198.18.0.9"}]}}),
     "alert.snmp"),
    ("restart_webmgr", set_path("cluster", "ports", "webmgr", value=30003),
     "cluster.ports.webmgr"),
    ("suspend_monitors", set_path("monitors", "fipw2", "interval", value=2),
     "monitors.fipw2.interval"),
    ("suspend_cluster", set_path("cluster", "heartbeat", "timeout", value=20),
     "cluster.heartbeat.timeout"),
    ("stop_resource", set_path("groups", "failover1", "resources", "fip1", "ip",
                               value="198.18.0.13"), "groups.failover1.resources.fip1.ip"),
    ("stop_group", set_path("groups", "failover1", "failback", value="auto"),
     "groups.failover1.failback"),
    ("stop_cluster", add_server, "servers.server3"),
]


@pytest.mark.parametrize(("method", "edit", "path"), ROWS, ids=[f"{m}:{p}" for m, _, p in ROWS])
def test_each_kind_of_change_needs_its_method(method: str, edit: Callable, path: str) -> None:
    p = plan(raw(), raw(edit))
    assert p.method == method, [c.describe() for c in p.changes]
    assert path in [c.path for c in p.changes]
    assert p.label == LABELS[method] and p.steps()[-1 if method == "upload_only" else 0]


def test_nothing_changed_is_upload_only() -> None:
    p = plan(raw(), raw())
    assert p.method == "upload_only" and p.changes == () and p.notes == ("nothing changed",)


def test_the_strongest_method_of_a_diff_wins_and_every_change_is_listed() -> None:
    def both(doc: dict[str, Any]) -> None:
        set_path("monitors", "fipw2", "interval", value=2)(doc)
        set_path("cluster", "heartbeat", "timeout", value=20)(doc)
        set_path("groups", "failover1", "start", value="manual")(doc)

    p = plan(raw(), raw(both))
    assert p.method == "suspend_cluster"
    assert sorted((c.path, c.method) for c in p.changes) == [
        ("cluster.heartbeat.timeout", "suspend_cluster"),
        ("groups.failover1.start", "upload_only"),
        ("monitors.fipw2.interval", "suspend_monitors")]
    assert p.steps() == ["clpcl --suspend", "clpcfctrl --push -x <dir>", "clpcl --resume"]


def test_resources_and_groups_to_stop_are_named() -> None:
    p = plan(raw(), raw(set_path("groups", "failover1", "resources", "fip1", "ip",
                                 value="198.18.0.13")))
    assert p.resources == (("failover1", "fip1"),) and p.groups == ()
    assert p.steps() == ["clprsc -t fip1", "clpcfctrl --push -x <dir>", "clprsc -s fip1"]

    def resource_and_group(doc: dict[str, Any]) -> None:
        set_path("groups", "failover1", "resources", "fip1", "ip", value="198.18.0.13")(doc)
        set_path("groups", "ManagementGroup", "failback", value="auto")(doc)

    p = plan(raw(), raw(resource_and_group))
    assert p.method == "stop_group"
    assert set(p.groups) == {"failover1", "ManagementGroup"} and p.resources == ()


def test_added_and_removed_items_are_changes_of_their_own() -> None:
    def new_group(doc: dict[str, Any]) -> None:
        doc["groups"]["failover2"] = {"resources": {"fip3": {"type": "fip",
                                                             "ip": "198.18.0.14"}}}

    p = plan(raw(), raw(new_group))
    # the product creates a fipw with every floating IP: it comes (and goes) with the group
    assert [(c.path, c.kind, c.method) for c in p.changes] == [
        ("groups.failover2", "added", "stop_group"),
        ("monitors.fipw3", "added", "suspend_monitors")]
    assert p.method == "stop_group" and p.groups == ("failover2",)
    assert p.steps() == ["clpcfctrl --push -x <dir>", "clpgrp -s failover2"]  # nothing to stop
    back = plan(raw(new_group), raw())
    assert [(c.path, c.kind) for c in back.changes] == [("groups.failover2", "removed"),
                                                        ("monitors.fipw3", "removed")]

    def drop_resolver(doc: dict[str, Any]) -> None:
        doc["network_partition"]["resolvers"] = []

    p = plan(raw(), raw(drop_resolver))
    assert [(c.path, c.kind, c.method) for c in p.changes] == [
        ("network_partition.resolvers[0]", "removed", "suspend_cluster")]


def test_a_list_of_values_is_one_change_and_a_changed_type_one_item() -> None:
    p = plan(raw(), raw(set_path("monitors", "ipw1", "addresses",
                                 value=["198.18.0.254", "198.18.1.254"])))
    assert [c.path for c in p.changes] == ["monitors.ipw1.addresses"]

    def http_resolver(doc: dict[str, Any]) -> None:
        doc["network_partition"]["resolvers"][0] = {
            "type": "http", "target": "198.18.1.254:80", "servers": ["server1", "server2"]}

    p = plan(raw(), raw(http_resolver))
    assert [(c.path, c.kind) for c in p.changes] == [("network_partition.resolvers[0]",
                                                      "changed")]


def test_methods_are_ordered_as_the_seed_lists_them() -> None:
    assert list(LABELS) == list(APPLY_METHODS)
    assert copy.deepcopy(APPLY_METHODS)[0] == "upload_only"


def test_a_plan_never_shows_a_secret() -> None:
    def mail(password: str) -> Callable[[dict[str, Any]], None]:
        return set_path("alert", value={"mail": {"to": ["a@b"], "smtp": [
            {"host": "m", "port": 587, "security": "starttls", "user": "u",
             "password": password}]}})

    added = plan(raw(), raw(mail("first-secret")))
    changed = plan(raw(mail("first-secret")), raw(mail("second-secret")))
    shown = " ".join(c.describe() for p in (added, changed) for c in p.changes)
    assert "secret" not in shown and "********" in shown
    assert [c.path for c in changed.changes] == ["alert.mail.smtp[0].password"]
