"""The cluster-wide alert log in a running lab cluster: an alert raised on server2 is in
server1's log once; alerts raised on server2 while server1 was powered off are in server1's log
after it is back, in order, once; and server1's alerts reach server2."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from clp.lab import Lab
from tests.integration.labutil import lab_cluster, needs_root, wait_for

pytestmark = [pytest.mark.lab, needs_root, pytest.mark.timeout(120)]


def cluster_log(lab: Lab, server: str) -> list[dict[str, Any]]:
    r = lab.exec(server, [sys.executable, "-m", "clp.alert.clusterlog", "--json"])
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def notes(lab: Lab, server: str, tag: str) -> list[str]:
    return [a["message"] for a in cluster_log(lab, server) if a["message"].startswith(tag)]


def raise_alert(lab: Lab, server: str, message: str) -> None:
    """clplogcmd, again while the event service is starting (it says so: nothing was sent)."""
    def once() -> bool:
        r = lab.exec(server, ["clplogcmd", "-m", message, "--alert"])
        assert r.returncode == 0, r.stderr
        return True
    wait_for(f"clplogcmd on {server}", once, 30, step=0.3)


def test_alerts_of_every_server_reach_a_server_that_was_down_in_order_once() -> None:
    tag = f"alertsync-{time.monotonic_ns()}"
    with lab_cluster(2) as lab:
        raise_alert(lab, "server2", f"{tag} 1")
        wait_for("server2's alert on server1", lambda: notes(lab, "server1", tag), 20)
        lab.crash("server1")
        for i in (2, 3, 4):
            raise_alert(lab, "server2", f"{tag} {i}")
        want = [f"{tag} {i}" for i in (1, 2, 3, 4)]
        wait_for("server2's own journal", lambda: notes(lab, "server2", tag) == want, 10)
        lab.restart("server1")
        wait_for("what server1 missed", lambda: len(notes(lab, "server1", tag)) >= 4, 30)
        time.sleep(2)  # two more acks and resends: nothing may come twice
        assert notes(lab, "server1", tag) == want
        log1 = cluster_log(lab, "server1")
        mine = [a for a in log1 if a["message"].startswith(tag)]
        assert {a["server"] for a in mine} == {"server2"}
        raise_alert(lab, "server1", f"{tag} from server1")
        wait_for("server1's alert on server2",
                 lambda: f"{tag} from server1" in notes(lab, "server2", tag), 20)
        assert notes(lab, "server2", tag) == [*want, f"{tag} from server1"]
