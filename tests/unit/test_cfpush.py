"""clp.cli.cfpush: whether the cluster is in the state a reflect method needs, and the number of
a new generation (the pure parts of clpcfctrl --push)."""

from __future__ import annotations

from typing import Any

from clp.cli.cfpush import next_generation, refusal
from clp.config.reflect import Plan


def doc(suspended: bool = False, groups: dict[str, str] | None = None,
        resources: dict[str, str] | None = None, monitors: dict[str, bool] | None = None
        ) -> dict[str, Any]:
    gs = {g: {"state": s, "resources": {r: {"state": rs} for r, rs in (resources or {}).items()}}
          for g, s in (groups or {}).items()}
    ms = {m: {"local": {"suspended": s}} for m, s in (monitors or {}).items()}
    return {"suspended": suspended, "groups": gs, "monitors": ms}


def test_a_stopped_cluster_takes_every_method() -> None:
    for method in ("stop_cluster", "suspend_cluster", "stop_group", "shutdown_reboot"):
        assert refusal(Plan(method, groups=("g1",)), {"server1": None, "server2": None}) is None


def test_upload_only_never_waits_for_anything() -> None:
    assert refusal(Plan("upload_only"), {"server1": doc(groups={"g1": "Online"})}) is None


def test_stop_cluster_is_refused_while_one_server_runs_it() -> None:
    why = refusal(Plan("stop_cluster"), {"server1": None, "server2": doc()})
    assert why is not None and "server2" in why and "clpcl -t -a" in why


def test_suspend_cluster_needs_every_running_server_suspended() -> None:
    p = Plan("suspend_cluster")
    assert refusal(p, {"server1": doc(suspended=True), "server2": doc(suspended=True)}) is None
    why = refusal(p, {"server1": doc(suspended=True), "server2": doc()})
    assert why is not None and "not suspended on server2" in why and "clpcl --suspend" in why


def test_suspend_monitors_takes_suspended_monitors_or_a_suspended_cluster() -> None:
    p = Plan("suspend_monitors")
    assert refusal(p, {"server1": doc(monitors={"m1": True}), "server2": doc(suspended=True)}) \
        is None
    why = refusal(p, {"server1": doc(monitors={"m1": True, "m2": False})})
    assert why is not None and "m2 on server1" in why and "m1" not in why


def test_stop_group_names_the_groups_still_running_and_ignores_new_ones() -> None:
    p = Plan("stop_group", groups=("g1", "g2", "new"), new_groups=("new",))
    running = {"server1": doc(groups={"g1": "Online", "g2": "Offline"})}
    why = refusal(p, running)
    assert why is not None and "clpgrp -t g1" in why and "g2" not in why and "new" not in why
    assert refusal(p, {"server1": doc(groups={"g1": "Offline Failure", "g2": "Offline"})}) is None


def test_stop_resource_needs_the_resource_offline_or_its_group_stopped() -> None:
    p = Plan("stop_resource", resources=(("g1", "fip1"),))
    assert refusal(p, {"s1": doc(groups={"g1": "Online"}, resources={"fip1": "Offline"})}) is None
    assert refusal(p, {"s1": doc(groups={"g1": "Offline"}, resources={"fip1": "Online"})}) is None
    why = refusal(p, {"s1": doc(groups={"g1": "Online"}, resources={"fip1": "Online"})})
    assert why is not None and "clprsc -t fip1" in why


def test_the_new_generation_follows_the_newest_one_any_target_runs() -> None:
    assert next_generation([None, None]) == 1
    assert next_generation([{"generation": 3}, {"generation": 0}, None]) == 4
