"""clpcfctrl against a real lab cluster: an upload-only push leaves the running group alone, a
change is refused until the cluster is in the state its method needs, a push a server does not
answer is aborted everywhere, bad input changes nothing, and the seed's backup/restore of a
reinstalled server (--pull, then --push -h) brings it back into the cluster."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from clp.config.lab import generate_lab_config
from clp.lab import Lab
from tests.integration.grouputil import wait_group
from tests.integration.labutil import (
    INTERVAL,
    TIMEOUT,
    needs_root,
    status,
    wait_all_online,
    wait_for,
)

pytestmark = [pytest.mark.lab, needs_root]

BACKUP = "/opt/nec/clusterpro/work/backup"  # inside a server; its install root on the host


@contextmanager
def dummy_cluster(tmp_path: Path) -> Iterator[Lab]:
    """Two servers with group g1 (one dummy resource), unique lab name, removed on any exit."""
    conf_dir = tmp_path / "conf"
    (conf_dir / "scripts").mkdir(parents=True)
    conf = yaml.safe_load(generate_lab_config(2, INTERVAL, TIMEOUT))
    conf["groups"] = {"g1": {"resources": {"d1": {"type": "dummy"}}}}
    (conf_dir / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))
    name = "cf" + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, n=2, config_dir=conf_dir, disks=0, client=False)
        yield lab
    finally:
        if lab is not None:
            lab.down()
        Lab.cleanup_all(name)


def cfctrl(lab: Lab, server: str, *argv: str, timeout: float = 90
           ) -> subprocess.CompletedProcess[str]:
    return lab.exec(server, ["clpcfctrl", *argv], timeout=timeout)


def generation(lab: Lab, server: str) -> dict[str, Any] | None:
    path = lab.root_of(server) / "etc" / "current" / "generation.json"
    return json.loads(path.read_text()) if path.exists() else None


def etc_names(lab: Lab, server: str) -> list[str]:
    return sorted(p.name for p in (lab.root_of(server) / "etc").iterdir())


def backup(lab: Lab, server: str, sub: str) -> tuple[str, Path]:
    """A fresh backup of the running configuration: (its path in the server, on the host)."""
    inside = f"{BACKUP}-{sub}"
    host = lab.root_of(server) / "work" / f"backup-{sub}"
    host.mkdir()
    r = cfctrl(lab, server, "--pull", "-w", "-x", inside)
    assert r.returncode == 0 and r.stdout == "Command succeeded.(code:0)\n", r.stdout + r.stderr
    return inside, host


def edit(host_dir: Path, change) -> None:
    conf = yaml.safe_load((host_dir / "clp.conf").read_text())
    change(conf)
    (host_dir / "clp.conf").write_text(yaml.safe_dump(conf, sort_keys=False))


def dummy_started(lab: Lab, server: str) -> float:
    return (lab.root_of(server) / "work" / "dummy" / "g1.d1").stat().st_mtime


def test_push_upload_only_refuse_abort_and_bad_input(tmp_path):
    with dummy_cluster(tmp_path) as lab:
        wait_all_online(lab)
        wait_group(lab, "g1", "Online", "server1")
        started = dummy_started(lab, "server1")

        # upload only: delivered to both, the group is not touched
        inside, host = backup(lab, "server1", "a")
        assert json.loads((host / "generation.json").read_text())["generation"] == 0
        edit(host, lambda c: c["groups"]["g1"].update(start="manual"))
        r = cfctrl(lab, "server1", "--push", "-x", inside, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        plan = json.loads(r.stdout.splitlines()[0])
        assert plan["method"] == "upload_only"
        assert [c["path"] for c in plan["changes"]] == ["groups.g1.start"]
        assert "file delivery to server server2 success." in r.stdout
        assert r.stdout.endswith("Command succeeded.(code:0)\n")
        assert "keeps the configuration it loaded" in r.stderr  # said, not hidden
        gens = [generation(lab, s) for s in lab.servers]
        assert gens[0]["generation"] == gens[1]["generation"] == 1
        assert gens[0]["hash"] == gens[1]["hash"]
        doc = status(lab, "server2")
        assert doc["config_on_disk"]["generation"] == 1 and doc["config"]["generation"] == 0
        assert "start: manual" in (lab.root_of("server2") / "etc" / "clp.conf").read_text()
        g = status(lab, "server1")["groups"]["g1"]
        assert (g["state"], g["server"]) == ("Online", "server1")
        assert dummy_started(lab, "server1") == started

        # stop_group: refused while g1 runs, nothing delivered
        edit(host, lambda c: c["groups"]["g1"].update(failback="auto"))
        r = cfctrl(lab, "server1", "--push", "-x", inside)
        assert r.returncode == 14, r.stdout + r.stderr
        assert "stop_group" in r.stderr and "clpgrp -t g1" in r.stderr
        assert [generation(lab, s)["generation"] for s in lab.servers] == [1, 1]

        # suspend_cluster: refused until suspended, then delivered
        inside_b, host_b = backup(lab, "server2", "b")
        edit(host_b, lambda c: c["cluster"]["heartbeat"].update(timeout=TIMEOUT + 1))
        r = cfctrl(lab, "server2", "--push", "-x", inside_b)
        assert r.returncode == 14 and "clpcl --suspend" in r.stderr, r.stdout + r.stderr
        assert lab.exec("server1", ["clpcl", "--suspend"]).returncode == 0
        r = cfctrl(lab, "server2", "--push", "-x", inside_b)
        assert r.returncode == 0 and "suspend_cluster" in r.stderr, r.stdout + r.stderr
        assert [generation(lab, s)["generation"] for s in lab.servers] == [2, 2]
        assert lab.exec("server1", ["clpcl", "--resume"]).returncode == 0
        wait_all_online(lab)

        # a server that does not answer: refused, both stay on generation 2 (a server that stops
        # answering after the others staged: tests/unit/test_cfpush_transfer.py)
        inside_c, host_c = backup(lab, "server1", "c")
        edit(host_c, lambda c: c["groups"]["g1"].update(start="auto"))
        before = [etc_names(lab, s) for s in lab.servers]
        frozen = lab.kill("server2", "clusterpro_trn", signal.SIGSTOP)
        try:
            r = cfctrl(lab, "server1", "--push", "-x", inside_c, "--timeout", "2")
        finally:
            lab.kill("server2", "clusterpro_trn", signal.SIGCONT)
        assert r.returncode == 7, r.stdout + r.stderr
        assert r.stdout.startswith("Failed to deliver the configuration file.")
        assert "server2" in r.stderr and "no answer" in r.stderr
        assert frozen
        time.sleep(1)  # what the thawed server had queued is handled: it changes nothing
        assert [etc_names(lab, s) for s in lab.servers] == before
        assert [generation(lab, s)["generation"] for s in lab.servers] == [2, 2]

        # another push in progress (a fresh stage on server2): server1 staged, then aborted;
        # nothing changes anywhere
        fake = lab.root_of("server2") / "etc" / (".staged-" + "f" * 16)
        fake.mkdir()
        r = cfctrl(lab, "server1", "--push", "-x", inside_c)
        assert r.returncode == 128 and r.stdout == "This command is already run.\n", r.stdout
        assert "in progress" in r.stderr
        trn_log = (lab.root_of("server1") / "log" / "trn.log").read_text()
        assert "aborted: staged files removed" in trn_log
        shutil.rmtree(fake)
        assert [etc_names(lab, s) for s in lab.servers] == before

        # two pushes started at once from both servers: each is delivered or refused (128), and
        # both servers end on one generation with one hash
        procs = [lab.popen(s, ["clpcfctrl", "--push", "-x", d], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
                 for s, d in (("server1", inside_c), ("server2", inside_b))]
        results = [(p.wait(60), *p.communicate()) for p in procs]
        assert all(rc in (0, 128) for rc, _, _ in results), results
        gens = [{k: generation(lab, s)[k] for k in ("generation", "hash")} for s in lab.servers]
        assert gens[0] == gens[1], gens
        assert gens[0]["generation"] == 2 + sum(rc == 0 for rc, _, _ in results), results
        before = [etc_names(lab, s) for s in lab.servers]
        assert not any(n.startswith(".staged-") for names in before for n in names)

        # bad input: a syntax error, a symlink out of the directory; nothing delivered
        (host_c / "clp.conf").write_text("cluster: [unclosed\n")
        r = cfctrl(lab, "server1", "--push", "-x", inside_c)
        assert r.returncode == 3 and "not valid YAML" in r.stderr, r.stdout + r.stderr
        edit(host, lambda c: None)
        (host / "scripts" / "evil").symlink_to("/opt/nec/clusterpro/etc/cluster.key")
        r = cfctrl(lab, "server1", "--push", "-x", inside)
        assert r.returncode == 3 and "symlink" in r.stderr, r.stdout + r.stderr
        assert [etc_names(lab, s) for s in lab.servers] == before
        assert [{k: generation(lab, s)[k] for k in ("generation", "hash")}
                for s in lab.servers] == gens
        g = status(lab, "server1")["groups"]["g1"]
        assert (g["state"], g["server"]) == ("Online", "server1")
        assert dummy_started(lab, "server1") == started


def test_restore_a_reinstalled_server_from_another(tmp_path):
    """The seed's chapter 9: server2 loses its configuration (only its key is put back, as the
    reinstall procedure copies it); server1 pushes its own with --push -h server2."""
    with dummy_cluster(tmp_path) as lab:
        wait_all_online(lab)
        inside, host = backup(lab, "server1", "keep")  # chapter 8's backup
        lab.crash("server2")
        etc = lab.root_of("server2") / "etc"
        key = (etc / "cluster.key").read_bytes()
        shutil.rmtree(etc)
        etc.mkdir(mode=0o700)
        (etc / "cluster.key").write_bytes(key)
        (etc / "cluster.key").chmod(0o600)
        lab.restart("server2")
        wait_for("server1 to see server2 Offline",
                 lambda: status(lab, "server1")["membership"]["servers"]["server2"]["state"]
                 == "Offline", 30)

        r = cfctrl(lab, "server1", "--push", "-w", "-h", "server2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout == ("file delivery to server server2 success.\n"
                            "The upload is completed successfully.(cfmgr:0)\n"
                            "Command succeeded.(code:0)\n")
        assert "First delivery" in r.stderr
        assert (etc / "clp.conf").read_text() == (host / "clp.conf").read_text()
        assert generation(lab, "server2")["generation"] == 1
        assert generation(lab, "server1") is None  # -h: only the reinstalled server
        wait_all_online(lab, timeout=90)  # its trn and clusterpro start on the restored files
        assert status(lab, "server2")["config"]["generation"] == 1
        wait_for("server2's clusterpro_trn to answer on its restored addresses",
                 lambda: lab.exec("server1", ["clpstat", "-h", "server2"]).returncode == 0, 60)

        # a backup of another server's configuration, through its clusterpro_trn
        (lab.root_of("server1") / "work" / "backup-s2").mkdir()
        r = cfctrl(lab, "server1", "--pull", "-x", f"{BACKUP}-s2", "-h", "server2")
        assert r.returncode == 0, r.stdout + r.stderr
        pulled = lab.root_of("server1") / "work" / "backup-s2"
        assert (pulled / "clp.conf").read_text() == (host / "clp.conf").read_text()
        assert json.loads((pulled / "generation.json").read_text())["generation"] == 1
        r = cfctrl(lab, "server1", "--pull", "-x", f"{BACKUP}-s2")  # it holds one: refused
        assert r.returncode == 2 and "exists" in r.stderr, r.stdout + r.stderr

        # and the chapter 9 restore of the whole cluster from the backup
        r = cfctrl(lab, "server1", "--push", "-w", "-x", inside)
        assert r.returncode == 0, r.stdout + r.stderr
        assert [generation(lab, s)["generation"] for s in lab.servers] == [2, 2]
