"""clplogcc on a real 2-server lab: every server's archive through clusterpro_trn (logs, clp.conf
with its secrets masked, clpstat's JSON; never the cluster key), -l without it, and a crashed
server (and a hung one) reported within the timeout while the other's archive is still written."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from clp.lab import Lab
from tests.integration.labutil import lab_cluster, needs_root, wait_all_online

pytestmark = [pytest.mark.lab, needs_root]

SECRET = "mail-s3cret-pw"


def add_secret(lab: Lab) -> None:
    """An SMTP password in every server's clp.conf (read by clplogcc, not by the running
    services)."""
    for server in lab.servers:
        conf = lab.root_of(server) / "etc" / "clp.conf"
        doc = yaml.safe_load(conf.read_text())
        doc["alert"] = {"mail": {"to": ["ops@example.test"], "smtp": [
            {"host": "198.18.0.250", "security": "starttls", "user": "clp",
             "password": SECRET}]}}
        conf.write_text(yaml.safe_dump(doc, sort_keys=False))


def archives(lab: Lab) -> dict[str, Path]:
    """The archives in server1's default output directory, by server."""
    out = lab.root_of("server1") / "tmp"
    return {p.name.split("-")[0]: p for p in sorted(out.glob("*.tar.gz"))}


def contents(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read()
                for m in tar.getmembers() if m.isfile()}


def check_archive(lab: Lab, server: str, path: Path) -> None:
    got = contents(path)
    assert path.name.startswith(f"{server}-")
    assert any(n.startswith("log/") and n.endswith(".log") for n in got), sorted(got)
    conf = got["etc/clp.conf"].decode()
    assert SECRET not in conf and "password: '********'" in conf
    doc = json.loads(got["state/clpstat.json"])
    assert set(doc["membership"]["servers"]) == {"server1", "server2"}
    assert "state/clpsupervise.json" in got and "os/ip-addr.txt" in got
    key = (lab.root_of(server) / "etc" / "cluster.key").read_bytes().strip()
    assert not any(n.endswith("cluster.key") for n in got)
    assert not any(key in data or SECRET.encode() in data for data in got.values())
    index = json.loads(got["index.json"])
    assert index["server"] == server and index["type"] == "type1"


def test_clplogcc_gets_every_archive_and_reports_a_crashed_server():
    with lab_cluster(2) as lab:
        wait_all_online(lab)
        add_secret(lab)

        r = lab.exec("server1", ["clplogcc", "--timeout", "30"], timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout == "Collect Log server1 : Success\nCollect Log server2 : Success\n"
        found = archives(lab)
        assert set(found) == {"server1", "server2"}, r.stderr
        for server, path in found.items():
            check_archive(lab, server, path)

        for path in found.values():
            path.unlink()
        r = lab.exec("server1", ["clplogcc", "-h", "server2", "-t", "type3"], timeout=60)
        assert r.stdout == "Collect Log server2 : Success\n", r.stderr
        assert set(archives(lab)) == {"server2"}
        (path,) = archives(lab).values()
        assert "os/ps.txt" not in contents(path) and path.stat().st_mode & 0o777 == 0o600

        r = lab.exec("server2", ["clplogcc", "-l", "-t", "type3"], timeout=60)
        assert r.returncode == 0 and r.stdout == "Collect Log server2 : Success\n", r.stderr
        local = list((lab.root_of("server2") / "tmp").glob("server2-*.tar.gz"))
        assert len(local) == 1 and "os/ps.txt" not in contents(local[0])

        # hung (user space frozen, its kernel still accepting connections): a timeout
        for path in archives(lab).values():
            path.unlink()
        lab.hang("server2", live=True)
        t0 = time.monotonic()
        r = lab.exec("server1", ["clplogcc", "--timeout", "6"], timeout=60)
        took = time.monotonic() - t0
        assert r.returncode != 0, r.stdout + r.stderr
        assert r.stdout == "Collect Log server1 : Success\nCollect Log server2 : Timeout\n"
        assert "server2: 198.18.1.2: the server stopped answering" in r.stderr, r.stderr
        assert 6 <= took < 12, took
        assert set(archives(lab)) == {"server1"}

        # crashed: unreachable
        for path in archives(lab).values():
            path.unlink()
        time.sleep(1)  # a new second: a new archive name
        lab.crash("server2")
        t0 = time.monotonic()
        r = lab.exec("server1", ["clplogcc", "--timeout", "15"], timeout=60)
        took = time.monotonic() - t0
        assert r.returncode != 0, r.stdout + r.stderr
        assert r.stdout.startswith("Collect Log server1 : Success\nCollect Log server2 : ")
        assert "Success" not in r.stdout.splitlines()[1]
        assert "server2: unreachable" in r.stderr, r.stderr
        assert took < 20, took
        found = archives(lab)
        assert set(found) == {"server1"}
        check_archive(lab, "server1", found["server1"])
