"""A real clp cluster in the lab: membership over LAN heartbeats, faults, and hostile packets."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.labutil import (
    INTERVAL,
    TIMEOUT,
    lab_cluster,
    needs_root,
    path_state,
    server_states,
    status,
    wait_all_online,
    wait_for,
)

pytestmark = [pytest.mark.lab, needs_root]


@pytest.mark.parametrize("n", [2, 3])
def test_every_server_sees_every_server_online(n):
    with lab_cluster(n) as lab:
        wait_all_online(lab)
        for observer in lab.servers:
            doc = status(lab, observer)
            assert doc["me"] == observer
            for server in lab.servers:
                for path in ("lanhb1", "lanhb2"):
                    assert path_state(doc, server, path) == "Normal", (observer, server, path)
        text = lab.exec("server1", ["clpstat"]).stdout
        assert "CLUSTER STATUS" in text and "*server1" in text and "lanhb2" in text
        # once all is Normal, a heartbeat only moves its path's timer: it waits in the
        # heartbeat table for the next round instead of reaching the event loop on its own
        before = status(lab, "server1")["counters"]["paths"]["lanhb2"]
        time.sleep(2.0)
        after = status(lab, "server1")["counters"]["paths"]["lanhb2"]
        received = after["received"] - before["received"]
        assert received >= (n - 1) * 1.0 / INTERVAL, (before, after)
        assert after["news"] - before["news"] <= 2, (before, after)


def test_crash_is_detected_within_timeout_plus_interval_and_restart_rejoins():
    with lab_cluster(3) as lab:
        wait_all_online(lab)
        crashed_at = time.time()
        lab.crash("server3")
        for observer in ("server1", "server2"):
            wait_for(f"{observer} to mark server3 Offline",
                     lambda o=observer: server_states(lab, o)["server3"] == "Offline",
                     timeout=TIMEOUT + 10)
            since = status(lab, observer)["membership"]["servers"]["server3"]["since_wall"]
            # Not before the timeout (no premature failover), not after timeout + one interval
            # (plus scheduling slack of this 2-core machine).
            took = since - crashed_at
            # The last heartbeat may have left up to one interval before the crash.
            assert TIMEOUT - INTERVAL - 0.05 <= took <= TIMEOUT + INTERVAL + 0.5, took
            other = "server1" if observer == "server2" else "server2"
            assert server_states(lab, observer)[other] == "Online"
        lab.restart("server3")
        wait_all_online(lab)


def test_unplugging_one_interconnect_shows_a_path_error_and_nobody_goes_offline():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        lab.unplug("server2", "ic1")
        wait_for("lanhb1 of server2 in Error on server1",
                 lambda: path_state(status(lab, "server1"), "server2", "lanhb1") == "Error")
        wait_for("lanhb1 of server1 in Error on server2",
                 lambda: path_state(status(lab, "server2"), "server1", "lanhb1") == "Error")
        time.sleep(TIMEOUT * 2)  # well past the timeout: the other path keeps server2 alive
        for observer in lab.servers:
            doc = status(lab, observer)
            assert all(v["state"] == "Online" for v in doc["membership"]["servers"].values())
            peer = "server2" if observer == "server1" else "server1"
            assert path_state(doc, peer, "lanhb2") == "Normal"
        alerts = (lab.root_of("server1") / "log" / "alert.log").read_text()
        assert "lanhb1" in alerts and "server2" in alerts
        lab.plug("server2", "ic1")
        wait_for("lanhb1 Normal again",
                 lambda: path_state(status(lab, "server1"), "server2", "lanhb1") == "Normal")


def _supervised_pid(lab, server: str, service: str) -> int:
    r = lab.exec(server, ["python3", "-c", (
        "import json,sys; from clp.paths import InstallRoot;"
        "from clp.platform.supervisor_client import SupervisorClient;"
        "print(json.dumps(SupervisorClient(InstallRoot.from_env()).status()))")])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    services = doc.get("services", doc)
    return int(services[service]["pid"] or 0)


def test_killing_clusterpro_evt_changes_no_cluster_state():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        before = status(lab, "server1")
        old = _supervised_pid(lab, "server1", "clusterpro_evt")
        assert old > 0
        lab.exec("server1", ["kill", "-KILL", str(old)])
        new = wait_for("clusterpro_evt to be restarted", lambda: (
            p := _supervised_pid(lab, "server1", "clusterpro_evt")) not in (0, old) and p)
        assert new != old
        after = status(lab, "server1")
        for server in lab.servers:
            b = before["membership"]["servers"][server]
            a = after["membership"]["servers"][server]
            assert (a["state"], a["since"]) == (b["state"], b["since"]), server
            assert {p: v["state"] for p, v in a["paths"].items()} == \
                {p: v["state"] for p, v in b["paths"].items()}
        assert after["incarnation"] == before["incarnation"]  # clusterpro itself untouched
        r = lab.exec("server1", ["clplogcmd", "-m", "after evt restart", "--alert"])
        assert r.returncode == 0, r.stderr
        wait_for("the alert written by the restarted clusterpro_evt", lambda: "after evt restart"
                 in (lab.root_of("server1") / "log" / "alert.log").read_text())


HOSTILE = r"""
import hashlib, hmac, os, socket, struct, sys, time
from clp.heartbeat import packet
key = bytes.fromhex(open('/opt/nec/clusterpro/etc/cluster.key').read().strip())
cid = packet.cluster_id('cluster')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.18.1.2', 0))
dst = ('198.18.1.1', 29002)
hb = lambda **kw: packet.Heartbeat(**{**dict(cluster_id=cid, sender=1, path=0, incarnation=1,
                                            seq=1, sent=time.time(), state=0), **kw})
sends = {
  'malformed': [os.urandom(96), os.urandom(10), b'', packet.encode(key, hb())[:-1]],
  'bad_mac': [packet.encode(os.urandom(32), hb(seq=10**9)) for _ in range(3)],
  'unknown_cluster': [packet.encode(key, hb(cluster_id=cid ^ 1))],
  'unknown_sender': [packet.encode(key, hb(sender=7)), packet.encode(key, hb(path=1))],
  'replay': [packet.encode(key, hb(incarnation=1, seq=5))],
}
for kind, datas in sends.items():
    for d in datas:
        s.sendto(d, dst)
print('sent')
"""


def test_forged_replayed_and_malformed_packets_change_nothing_and_are_counted():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        before = status(lab, "server1")
        r = lab.exec("server2", ["python3", "-c", HOSTILE])
        assert r.returncode == 0, r.stderr
        time.sleep(TIMEOUT)

        def drops():
            return status(lab, "server1")["counters"]["paths"]["lanhb1"]["drops"]

        got = wait_for("all hostile packets counted", lambda: (d := drops()).get("unknown_sender")
                       and d.get("replay") and d)
        assert got.get("malformed") == 4 and got.get("bad_mac") == 3
        assert got.get("unknown_cluster") == 1 and got.get("unknown_sender") == 2
        assert got.get("replay") == 1
        after = status(lab, "server1")
        s2b = before["membership"]["servers"]["server2"]
        s2a = after["membership"]["servers"]["server2"]
        assert s2a["state"] == "Online" and s2a["since"] == s2b["since"]


def test_killed_clusterpro_is_restarted_and_takes_over_its_stale_state_region():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        before = status(lab, "server1")
        old = _supervised_pid(lab, "server1", "clusterpro")
        lab.exec("server1", ["kill", "-KILL", str(old)])
        wait_for("clusterpro to be restarted and publish again", lambda: (
            doc := status(lab, "server1"))["incarnation"] != before["incarnation"] and doc)
        wait_all_online(lab)
        r = lab.exec("server1", ["clpshm", "dump", "--json"])
        assert r.returncode == 0, r.stderr
        header = json.loads(r.stdout)["header"]
        assert header["generation"] >= 2  # the dead writer's segment was taken over, not leaked
        assert header["writer_pid"] == _supervised_pid(lab, "server1", "clusterpro")
