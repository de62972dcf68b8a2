"""Every heartbeat path and network-partition resolution in the lab, with the seed's sample
(lanhb1, lanhb2, diskhb1 on the lab's heartbeat disk, comhb1 on its serial cable, ping resolution
to the lab's router): paths lost alone change nothing but raise alerts; an isolated server stops
and the other takes over; a server running alone that is cut off stops before a restarted peer
takes over; clptoratio reaches every server. A watcher fails any test in which the
floating IP or the shared disk is active on two servers."""

from __future__ import annotations

import json

import pytest

from clp.lab.samples import witness_arbitration
from tests.integration.grouputil import (
    ExclusivityWatch,
    app_call,
    clp,
    group,
    running,
    sample_cluster,
    wait_group,
)
from tests.integration.labutil import TIMEOUT, needs_root, path_state, status, wait_for

pytestmark = [pytest.mark.lab, needs_root]

LANS = ("pub", "ic1")


def alerts(lab, server: str) -> str:
    path = lab.root_of(server) / "log" / "alert.log"
    return path.read_text() if path.exists() else ""


def paths_seen(lab, observer: str, server: str) -> dict[str, str]:
    doc = status(lab, observer)
    return {p: path_state(doc, server, p) for p in ("lanhb1", "lanhb2", "diskhb1", "comhb1")}


def stays(lab, seconds: float, check) -> None:
    """``check()`` holds for ``seconds`` (sampled every 0.2 s)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check()
        time.sleep(0.2)


def both_online_on_server1(lab) -> None:
    for observer in lab.servers:
        g = group(lab, observer, "failover1")
        assert (g["state"], g.get("server")) == ("Online", "server1"), (observer, g)
        assert status(lab, observer)["membership"]["servers"]["server1"]["state"] == "Online"


def test_every_lan_unplugged_while_the_disk_heartbeat_lives_moves_nothing(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        lab.unplug("server1", "comhb")  # the serial cable too: only the disk joins them
        for link in LANS:
            lab.unplug("server1", link)
        wait_for("server2 to see the LAN paths to server1 lost", lambda: paths_seen(
            lab, "server2", "server1") == {"lanhb1": "Error", "lanhb2": "Error",
                                            "diskhb1": "Normal", "comhb1": "Error"},
            timeout=TIMEOUT + 10)
        stays(lab, 3 * TIMEOUT, lambda: both_online_on_server1(lab))
        assert "heartbeat path lanhb1 to server1 lost" in alerts(lab, "server2")
        assert "still reachable on diskhb1" in alerts(lab, "server2")
        for link in (*LANS, "comhb"):
            lab.plug("server1", link)
        wait_for("every path to server1 back", lambda: set(paths_seen(
            lab, "server2", "server1").values()) == {"Normal"}, timeout=TIMEOUT + 20)
        assert "heartbeat path lanhb1 to server1 restored" in alerts(lab, "server2")
        both_online_on_server1(lab)


def test_isolated_server_stops_and_the_other_takes_over_after_the_wait(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        assert app_call(lab, "before").startswith("server1 ")
        for link in (*LANS, "diskhb", "comhb"):
            lab.unplug("server1", link)
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 30)
        # server1 could not reach the ping target: it stopped its groups and its service, a
        # lease after it was cut off (its proofs ran out: no peer heard, no target answered)
        wait_for("server1's cluster service to stop", lambda: clp(
            lab, "server1", "clpstat", ok=False).returncode != 0, timeout=30)
        assert "server1 is isolated from the network" in alerts(lab, "server1")
        assert "ping 198.18.1.254 has not answered a probe sent in the last" in \
            alerts(lab, "server1")
        assert "network partition action: stop cluster service" in alerts(lab, "server1")
        down = alerts(lab, "server2")
        assert "server1 down: ping 198.18.1.254 answered; their groups move in" in down
        assert running(lab, "server1")  # the OS goes on (action: stop the cluster service)
        for link in LANS:
            lab.plug("server1", link)
        assert app_call(lab, "after").startswith("server2 ")


def test_com_cable_pulled_alone_raises_an_alert_and_changes_nothing(tmp_path):
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        lab.unplug("server2", "comhb")
        for observer, peer in (("server1", "server2"), ("server2", "server1")):
            wait_for(f"{observer} to see comhb1 to {peer} lost", lambda o=observer, p=peer:
                     paths_seen(lab, o, p)["comhb1"] == "Error", timeout=TIMEOUT + 10)
        doc = status(lab, "server1")
        assert doc["counters"]["paths"]["comhb1"]["local_error"]  # the port itself failed
        stays(lab, 2 * TIMEOUT, lambda: both_online_on_server1(lab))
        assert "comhb1" in alerts(lab, "server1")
        lab.plug("server2", "comhb")
        wait_for("comhb1 back", lambda: paths_seen(lab, "server1", "server2")["comhb1"]
                 == "Normal", timeout=TIMEOUT + 20)


def with_witness(conf, conf_dir):
    conf["interconnects"].append({"type": "witness", "target": "198.18.0.254:29005",
                                  "servers": ["server1", "server2"]})


def test_witness_down_alone_changes_nothing(tmp_path):
    with sample_cluster(tmp_path, edit=with_witness) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_for("witnesshb1 Normal", lambda: path_state(status(lab, "server1"), "server2",
                                                          "witnesshb1") == "Normal", timeout=20)
        lab.witness_stop()
        wait_for("witnesshb1 lost", lambda: path_state(status(lab, "server1"), "server2",
                                                        "witnesshb1") == "Error",
                 timeout=TIMEOUT + 10)
        stays(lab, 2 * TIMEOUT, lambda: both_online_on_server1(lab))
        assert "witnesshb1" in alerts(lab, "server1")
        lab.witness_start()
        wait_for("witnesshb1 back", lambda: path_state(status(lab, "server1"), "server2",
                                                        "witnesshb1") == "Normal", timeout=20)


def test_clptoratio_sets_shows_and_resets_on_every_server(tmp_path):
    with sample_cluster(tmp_path) as lab:
        wait_group(lab, "failover1", "Online", "server1")
        clp(lab, "server2", "clptoratio", "-r", "3", "-t", "10m")
        for server in lab.servers:
            m = status(lab, server)["membership"]
            assert (m["ratio"], m["timeout"]) == (3, pytest.approx(3 * TIMEOUT))
        shown = json.loads(clp(lab, "server1", "clptoratio", "-s", "--json").stdout)
        assert shown["ratio"] == 3 and shown["until"] > 0
        text = clp(lab, "server1", "clptoratio", "-s").stdout
        assert "present toratio : 3" in text
        assert "Timeout ratio : 3" in clp(lab, "server1", "clpstat", "--detail").stdout
        bad = clp(lab, "server1", "clptoratio", "-r", "3", "-t", "10 minutes", ok=False)
        assert bad.returncode == 2 and bad.stdout.startswith("Set the correct extension period.")
        assert "minutes, hours or days" in bad.stderr
        clp(lab, "server1", "clptoratio", "-i")
        for server in lab.servers:
            assert status(lab, server)["membership"]["ratio"] == 1


def test_a_server_alone_then_cut_off_stops_before_a_restarted_peer_takes_over(tmp_path):
    """The second former limit, in the lab: server1 runs alone (server2 crashed), then every
    cable of it is pulled. It has no peer to lose, so the loss-time resolution never runs; its
    proofs (no peer heard, no answer from the router) run out a lease later and it stops. Then
    server2 boots, finds it down and takes over: never both."""
    with sample_cluster(tmp_path) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        lab.crash("server2")
        wait_for("server1 to see server2 down", lambda: status(lab, "server1")["membership"][
            "servers"]["server2"]["state"] == "Offline", timeout=TIMEOUT + 10)
        for link in (*LANS, "diskhb", "comhb"):
            lab.unplug("server1", link)
        wait_for("server1's cluster service to stop", lambda: clp(
            lab, "server1", "clpstat", ok=False).returncode != 0, timeout=30)
        text = alerts(lab, "server1")
        assert "server1 is isolated from the network: server2 has not shown" in text
        assert "ping 198.18.1.254 has not answered a probe sent in the last" in text
        lab.restart("server2")
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 60)
        assert running(lab, "server1")  # the OS goes on (action: stop the cluster service)


def lan_only_witness_arbitration(conf: dict, conf_dir) -> None:
    """LAN heartbeats only (a split of the LANs loses every path) and witness arbitration by
    the lab router's witness instead of ping."""
    conf["interconnects"] = [i for i in conf["interconnects"] if i["type"] == "lan"]
    witness_arbitration(conf, timeout=0.5)


def test_with_witness_arbitration_a_split_both_sides_see_the_witness_through_has_one_winner(
        tmp_path):
    """The partition ping resolution cannot resolve (each side still reaches the target, so
    each finds the other down and both run the groups: the seed's rule, class (b) in
    docs/network-partition.md): with witness arbitration one side wins the witness, the
    other is refused and stops, and the groups run on the winner only."""
    with sample_cluster(tmp_path, edit=lan_only_witness_arbitration) as lab, ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_for("the witness to grant renewals (after its hold)", lambda: all(
            status(lab, s)["partition"]["resolvers"]["witnessnp1"].get("ok")
            for s in lab.servers), timeout=30)
        lab.partition([["server1"], ["server2"]])  # the router sees both
        stopped = wait_for("one server's cluster service to stop", lambda: [
            s for s in lab.servers if clp(lab, s, "clpstat", ok=False).returncode != 0],
            timeout=TIMEOUT + 30)
        (loser,) = stopped
        (winner,) = set(lab.servers) - {loser}
        assert f"{winner} won the witness against {loser}" in alerts(lab, loser)
        assert f"{loser} is isolated from the network" in alerts(lab, loser)
        assert f"witness {WITNESS}: claim granted: {winner} won the witness against " \
            f"{loser}" in alerts(lab, winner)
        wait_group(lab, "failover1", "Online", winner, observer=winner, timeout=TIMEOUT + 30)
        stays(lab, 2 * TIMEOUT, lambda: clp(lab, loser, "clpstat", ok=False).returncode != 0)
        lab.heal()
        assert app_call(lab, "after").startswith(f"{winner} ")


WITNESS = "198.18.0.254:29005"


def test_won_at_the_witness_a_crashed_owners_groups_move_at_the_verdict(tmp_path):
    """With a hearing window (timeout 1.5 s, lease 0.7 s, interval 0.2 s: 0.4 s), the crashed
    server's proofs have run out by the verdict: no takeover wait ("Won at the witness")."""
    with sample_cluster(tmp_path, edit=lan_only_witness_arbitration) as lab, \
            ExclusivityWatch(lab):
        wait_group(lab, "failover1", "Online", "server1")
        wait_for("the witness to grant renewals (after its hold)", lambda: all(
            status(lab, s)["partition"]["resolvers"]["witnessnp1"].get("ok")
            for s in lab.servers), timeout=30)
        lab.crash("server1")
        wait_group(lab, "failover1", "Online", "server2", observer="server2",
                   timeout=TIMEOUT + 30)
        down = [line for line in alerts(lab, "server2").splitlines()
                if "server1 down: witness" in line]
        assert down and "granted the claim" in down[0] and "move in" not in down[0], down
        assert app_call(lab, "after").startswith("server2 ")
