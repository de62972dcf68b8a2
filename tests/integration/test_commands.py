"""clpcl and clpstat against a real lab cluster: local and remote (-h, through clusterpro_trn)."""

from __future__ import annotations

import pytest

from tests.integration.labutil import (
    lab_cluster,
    needs_root,
    server_states,
    status,
    wait_all_online,
    wait_for,
)

pytestmark = [pytest.mark.lab, needs_root]


def test_clpcl_stop_and_remote_start_and_suspend_resume():
    with lab_cluster(2) as lab:
        wait_all_online(lab)

        r = lab.exec("server2", ["clpcl", "-t"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout == "Command succeeded.\n"

        r = lab.exec("server2", ["clpstat"])
        assert r.returncode == 5, r.stdout + r.stderr
        assert r.stdout.startswith("Could not connect to the server.")
        assert "The cluster service is not running" in r.stderr
        wait_for("server1 to mark the stopped server2 Offline",
                 lambda: server_states(lab, "server1")["server2"] == "Offline")

        # the other server starts it again, through server2's clusterpro_trn
        r = lab.exec("server1", ["clpcl", "-s", "-h", "server2"])
        assert r.returncode == 0, r.stdout + r.stderr
        wait_all_online(lab)

        # clpstat -h asks the other server for its view
        r = lab.exec("server1", ["clpstat", "-h", "server2"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "*server2" in r.stdout

        r = lab.exec("server1", ["clpcl", "--suspend"])
        assert r.returncode == 0, r.stdout + r.stderr
        for server in lab.servers:
            assert status(lab, server)["suspended"] is True
        assert "Suspension" in lab.exec("server2", ["clpstat"]).stdout
        r = lab.exec("server1", ["clpcl", "--suspend"])
        assert r.returncode != 0 and "already suspended" in r.stdout + r.stderr

        r = lab.exec("server2", ["clpcl", "--resume"])
        assert r.returncode == 0, r.stdout + r.stderr
        for server in lab.servers:
            assert status(lab, server)["suspended"] is False
        wait_all_online(lab)


def test_bad_arguments_get_a_clear_error_and_change_nothing():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        before = status(lab, "server1")
        for argv, text in [
            (["clpcl"], "Specify one of"),
            (["clpcl", "-t", "-a", "-h", "server2"], "cannot be used together"),
            (["clpcl", "-t", "-h", "nosuch"], "nosuch is not a server"),
            (["clpcl", "-s", "--suspend"], "Invalid option."),
            (["clpstat", "-h", "nosuch"], "nosuch is not a server"),
        ]:
            r = lab.exec("server1", argv)
            assert r.returncode != 0, argv
            assert text in r.stdout + r.stderr, (argv, r.stdout, r.stderr)
        after = status(lab, "server1")
        assert after["incarnation"] == before["incarnation"]
        assert server_states(lab, "server1") == {"server1": "Online", "server2": "Online"}
