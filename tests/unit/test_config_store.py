"""clp.trn.config_store: a pushed configuration is staged beside the running one, committed by one
rename, aborted without a trace; bad paths, symlinks, a second push and a wrong digest are refused
before anything is written."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from clp.trn.config_store import (
    Busy,
    ConfigStore,
    StoreError,
    check_path,
    collect,
    decoded,
    digest,
)

TXN1, TXN2 = "a" * 16, "b" * 16


def config_dir(path: Path, conf: str = "cluster: {name: c}\n", script: str = "echo 1\n") -> Path:
    (path / "scripts" / "g1" / "exec1").mkdir(parents=True)
    (path / "clp.conf").write_text(conf)
    start = path / "scripts" / "g1" / "exec1" / "start.sh"
    start.write_text(script)
    start.chmod(0o755)
    return path


def installed(tmp_path: Path) -> Path:
    """An etc/ as the installer or clplab leaves it: plain files, and a key."""
    etc = config_dir(tmp_path / "etc", conf="cluster: {name: old}\n", script="echo old\n")
    (etc / "cluster.key").write_bytes(b"k" * 32)
    return etc


def visible(etc: Path) -> tuple[str, str]:
    return ((etc / "clp.conf").read_text(),
            (etc / "scripts" / "g1" / "exec1" / "start.sh").read_text())


def test_collect_takes_clp_conf_and_scripts_only_with_their_modes(tmp_path: Path) -> None:
    d = config_dir(tmp_path / "c")
    (d / "notes.txt").write_text("not pushed")
    files = collect(d)
    assert sorted(files) == ["clp.conf", "scripts/g1/exec1/start.sh"]
    assert files["scripts/g1/exec1/start.sh"]["mode"] == 0o755
    assert base64.b64decode(files["clp.conf"]["data"]) == b"cluster: {name: c}\n"


@pytest.mark.parametrize("where", ["scripts/g1/exec1/stop.sh", "scripts/link", "clp.conf"])
def test_collect_refuses_a_symlink_anywhere(tmp_path: Path, where: str) -> None:
    d = config_dir(tmp_path / "c")
    if where == "clp.conf":
        (d / "clp.conf").rename(d / "real.conf")
    os.symlink("/etc/passwd", d / where)
    with pytest.raises(StoreError, match="symlink|not a regular file"):
        collect(d)


@pytest.mark.parametrize("rel", ["../x", "scripts/../../etc/passwd", "/etc/passwd",
                                 "scripts//a", "cluster.key", "scripts", "scripts/./a", ""])
def test_paths_outside_the_configuration_are_refused(rel: str) -> None:
    with pytest.raises(StoreError):
        check_path(rel)


def test_a_file_that_is_also_a_directory_is_refused(tmp_path: Path) -> None:
    files = collect(config_dir(tmp_path / "c"))
    files["scripts/g1"] = {"mode": 0o644, "data": ""}
    with pytest.raises(StoreError, match="also a file"):
        decoded(files)


def test_commit_switches_clp_conf_and_scripts_together_and_keeps_the_key(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    store = ConfigStore(etc)
    assert store.current().number == 0
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n",
                               script="echo new\n"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    assert visible(etc) == ("cluster: {name: old}\n", "echo old\n")  # staged: nothing in force
    gen = store.commit(TXN1)
    assert (gen.number, gen.digest, gen.source) == (1, digest(files), "server1")
    assert visible(etc) == ("cluster: {name: new}\n", "echo new\n")
    assert (etc / "current").is_symlink() and (etc / "clp.conf").is_symlink()
    assert (etc / "cluster.key").read_bytes() == b"k" * 32
    assert store.current() == gen and store.staged() == []
    assert os.access(etc / "scripts" / "g1" / "exec1" / "start.sh", os.X_OK)


def test_a_second_commit_keeps_the_previous_generation_only(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    store = ConfigStore(etc)
    for n, txn in enumerate((TXN1, TXN2, "c" * 16), start=1):
        files = collect(config_dir(tmp_path / f"n{n}", conf=f"cluster: {{name: g{n}}}\n"))
        store.stage(txn, n, files, digest(files), "server1")
        store.commit(txn)
    assert visible(etc)[0] == "cluster: {name: g3}\n"
    assert sorted(p.name for p in etc.glob(".gen-*")) == [f".gen-2-{TXN2}", ".gen-3-" + "c" * 16]
    gen, files = store.snapshot()
    assert gen.number == 3 and digest(files) == gen.digest


def test_abort_leaves_the_old_configuration_and_no_staged_copy(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    before = sorted(p.name for p in etc.iterdir())
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    assert store.abort(TXN1) is True
    assert sorted(p.name for p in etc.iterdir()) == before
    assert visible(etc) == ("cluster: {name: old}\n", "echo old\n")
    with pytest.raises(StoreError, match="not staged"):
        store.commit(TXN1)


def test_a_second_push_is_refused_while_one_is_staged(tmp_path: Path) -> None:
    store = ConfigStore(installed(tmp_path))
    files = collect(config_dir(tmp_path / "new"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    with pytest.raises(Busy, match=f"transaction {TXN1}"):
        store.stage(TXN2, 1, files, digest(files), "server2")
    assert [t for t, _ in store.staged()] == [TXN1]
    store.stage(TXN1, 1, files, digest(files), "server1")  # asked again (a reply lost): fine
    other = collect(config_dir(tmp_path / "other", conf="cluster: {name: x}\n"))
    with pytest.raises(StoreError, match="already staged"):
        store.stage(TXN1, 1, other, digest(other), "server1")


def test_an_abandoned_stage_does_not_lock_for_ever(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    old = etc / f".staged-{TXN1}"
    os.utime(old, (0, 0))  # its pusher died long ago
    store.stage(TXN2, 1, files, digest(files), "server2")
    assert [t for t, _ in store.staged()] == [TXN2] and not old.exists()


def test_a_wrong_digest_or_a_bad_path_writes_nothing(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    before = sorted(p.name for p in etc.iterdir())
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new"))
    with pytest.raises(StoreError, match="digest"):
        store.stage(TXN1, 1, files, "0" * 64, "server1")
    evil = {**files, "scripts/../../../tmp/x": {"mode": 0o755, "data": ""}}
    with pytest.raises(StoreError, match="leaves"):
        store.stage(TXN1, 1, evil, digest(files), "server1")
    with pytest.raises(StoreError, match="transaction"):
        store.stage("../../x", 1, files, digest(files), "server1")
    assert sorted(p.name for p in etc.iterdir()) == before


def test_an_empty_etc_gets_its_first_configuration(tmp_path: Path) -> None:
    """A reinstalled server: only its key is back."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "cluster.key").write_bytes(b"k" * 32)
    store = ConfigStore(etc)
    assert store.current() is None
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n"))
    store.stage(TXN1, 4, files, digest(files), "server1")
    assert store.commit(TXN1).number == 4
    assert visible(etc)[0] == "cluster: {name: new}\n"


def test_clplogcc_collects_the_committed_files_through_the_links(tmp_path: Path) -> None:
    """After a push etc/clp.conf and etc/scripts are symlinks into the generation: clplogcc
    (which follows no link it finds inside a directory) still collects both."""
    import tarfile

    from clp.paths import InstallRoot
    from clp.trn import logcollect

    root = InstallRoot(tmp_path / "root")
    root.ensure_dirs()
    etc = installed(tmp_path / "root")  # the same etc/ as root.config_dir
    assert etc == root.config_dir
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n",
                               script="echo new\n"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    store.commit(TXN1)
    out = tmp_path / "server1-20260101000000.tar.gz"
    logcollect.collect(root, "server1", "type1", 2, out, 60.0)
    with tarfile.open(out) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    p = "server1-20260101000000/etc/"
    assert b"name: new" in got[p + "clp.conf"]
    assert got[p + "scripts/g1/exec1/start.sh"] == b"echo new\n"
    assert not any(n.endswith("cluster.key") for n in got)


def test_the_loader_reads_one_generation_through_current(tmp_path: Path) -> None:
    """clp.conf and scripts/ come from the generation `current` names, resolved once."""
    from clp.config import load_config

    sample = Path(__file__).parents[2] / "clp" / "samples" / "lab2"
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copytree(sample, etc / ".gen-2-a")
    (etc / "current").symlink_to(".gen-2-a")
    # links of a commit half seen: clp.conf still points at an older, broken generation
    (etc / ".gen-1-b").mkdir()
    (etc / ".gen-1-b" / "clp.conf").write_text("cluster: [broken\n")
    (etc / "clp.conf").symlink_to(".gen-1-b/clp.conf")
    (etc / "scripts").symlink_to("current/scripts")
    config = load_config(etc)
    assert config.name == "cluster" and config.directory == etc


def test_a_commit_done_before_is_answered_again_not_refused(tmp_path: Path) -> None:
    """A reply lost after the commit: the same commit asked again (another address, a retry)
    answers with the generation, and a crash between the rename and the switch is finished."""
    etc = installed(tmp_path)
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    first = store.commit(TXN1)
    assert store.commit(TXN1) == first
    # the switch undone by hand, as a crash right after the rename would leave it
    os.replace(etc / "current", etc / ".cur-save")
    (etc / "current").symlink_to(".gen-0-install")
    assert visible(etc)[0] == "cluster: {name: old}\n"
    assert store.commit(TXN1) == first and visible(etc)[0] == "cluster: {name: new}\n"


def test_files_that_cannot_be_kept_refuse_the_first_push_and_change_nothing(
        tmp_path: Path) -> None:
    etc = installed(tmp_path)
    (etc / "scripts" / "g1" / "exec1" / "stop.sh").symlink_to("/bin/true")
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n"))
    with pytest.raises(StoreError, match="cannot be kept as its generation 0"):
        store.stage(TXN1, 1, files, digest(files), "server1")
    assert visible(etc) == ("cluster: {name: old}\n", "echo old\n")
    assert not (etc / "clp.conf").is_symlink() and store.staged() == []


def test_a_directory_that_is_not_a_stage_of_ours_is_no_lock(tmp_path: Path) -> None:
    etc = installed(tmp_path)
    (etc / ".staged-by-hand").mkdir()
    store = ConfigStore(etc)
    files = collect(config_dir(tmp_path / "new", conf="cluster: {name: new}\n"))
    store.stage(TXN1, 1, files, digest(files), "server1")
    assert store.commit(TXN1).number == 1
