"""clplogcc's options: the product's messages for a bad type or syslog generation, clear errors
for the rest, and ``-l`` writing this server's archive where ``-o`` says."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from clp.cli.clplogcc import SYSLOG_ERROR, TYPE_ERROR, main
from clp.paths import InstallRoot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clplogcc requires root")


@pytest.mark.parametrize(("args", "line", "detail"), [
    (["-t", "type4"], TYPE_ERROR, "-t type4"),
    (["-r", "0"], SYSLOG_ERROR, "-r 0"),
    (["-r", "100"], SYSLOG_ERROR, "-r 100"),
    (["-r", "two"], SYSLOG_ERROR, "-r two"),
    (["-h", "server1", "-n", "server2"], "Invalid option.", "cannot be used together"),
    (["-l", "-h", "server1"], "Invalid option.", "without -h and -n"),
    (["-o", "/nonexistent/dir"], "Invalid option.", "does not exist"),
    (["--timeout", "1"], "Invalid option.", "--timeout"),
])
def test_invalid_options(root: InstallRoot, args: list[str], line: str, detail: str) -> None:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert r.stdout == line + "\n" and detail in r.stderr


def test_without_a_configuration_only_local_collection_works(root: InstallRoot,
                                                             tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["-o", str(tmp_path)])
    assert r.exit_code == 3 and list(tmp_path.glob("*.tar.gz")) == []
    (root.log_dir / "nm.log").write_text("hello\n")
    r = CliRunner().invoke(main, ["-l", "-t", "type3", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    (archive,) = tmp_path.glob("*.tar.gz")
    assert r.stdout == f"Collect Log {archive.name.rsplit('-', 1)[0]} : Success\n"
    assert str(archive) in r.stderr and "items that failed" in r.stderr  # no clusterpro here
    with tarfile.open(archive) as tar:
        assert any(n.endswith("/log/nm.log") for n in tar.getnames())


def test_the_default_output_is_the_install_roots_tmp(root: InstallRoot) -> None:
    r = CliRunner().invoke(main, ["-l", "-t", "type3"])
    assert r.exit_code == 0, r.output
    assert len(list((root.root / "tmp").glob("*.tar.gz"))) == 1
