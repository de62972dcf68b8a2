"""clpcfchk: output layout and exit codes (0 valid, 1 errors)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from clp.cli.clpcfchk import main
from clp.keys import KeyFileError, arbiter_key, load_arbiter_key, load_key

SAMPLE = Path(__file__).resolve().parents[2] / "clp" / "samples" / "lab2"

BAD = """\
cluster:
  name: cluster
  heartbeat: {interval: 9, timeout: 3}
servers:
  server1: {}
  server2: {}
interconnects:
  - type: lan
    addresses: {server1: 198.18.1.1, server2: 198.18.1.300}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def make(tmp_path: Path, text: str) -> str:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "clp.conf").write_text(text)
    return str(tmp_path)


def test_valid_sample() -> None:
    code, out = run(str(SAMPLE))
    assert code == 0
    assert out.splitlines() == [
        "The configuration is valid: 0 errors, 0 warnings.",
        "Command succeeded.",
    ]


def test_errors_and_warnings_are_all_printed(tmp_path: Path) -> None:
    code, out = run(make(tmp_path, BAD))
    assert code == 3
    assert out.splitlines() == [
        "Error: cluster.heartbeat.interval: heartbeat interval (9 s) must be shorter than the "
        "timeout (3 s) (clp.conf:3)",
        "Error: interconnects[0].addresses.server2: '198.18.1.300' is not an IPv4 address "
        "(clp.conf:9)",
        "Warning: interconnects: only one LAN interconnect is set; 2 or more are recommended "
        "(clp.conf:7)",
        "Invalid configuration: 2 errors, 1 warning.",
    ]


def test_warnings_alone_exit_zero(tmp_path: Path) -> None:
    code, out = run(
        make(
            tmp_path,
            BAD.replace("interval: 9", "interval: 1").replace("198.18.1.300", "198.18.1.2"),
        )
    )
    assert code == 0
    assert out.splitlines()[-2:] == [
        "The configuration is valid: 0 errors, 1 warning.",
        "Command succeeded.",
    ]


def test_json_output(tmp_path: Path) -> None:
    code, out = run(make(tmp_path, BAD), "--json")
    assert code == 3
    data = json.loads(out)
    assert data["valid"] is False
    assert [(e["path"], e["line"], e["severity"]) for e in data["errors"]] == [
        ("cluster.heartbeat.interval", 3, "error"),
        ("interconnects[0].addresses.server2", 9, "error"),
    ]
    assert data["warnings"][0]["severity"] == "warning"
    code, out = run(str(SAMPLE), "--json")
    assert code == 0 and json.loads(out)["valid"] is True


def test_missing_directory(tmp_path: Path) -> None:
    code, out = run(str(tmp_path / "absent"))
    assert code == 3
    assert "is not a configuration directory" in out


def test_missing_clp_conf(tmp_path: Path) -> None:
    code, out = run(str(tmp_path))
    assert code == 3
    assert "clp.conf does not exist" in out


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    code, out = run(make(tmp_path, "cluster:\n  name: cluster\nservers: [server1\n"))
    assert code == 3
    assert out.startswith("Error: clp.conf is not valid YAML:")
    assert "(clp.conf:4)" in out.splitlines()[0]


def test_unreadable_clp_conf(tmp_path: Path) -> None:
    # a directory where the file should be: unreadable even for root, who reads any mode
    path = make(tmp_path, BAD)
    (tmp_path / "clp.conf").unlink()
    (tmp_path / "clp.conf").mkdir()
    code, out = run(path)
    assert code == 3
    assert "cannot read" in out


def test_clp_conf_that_is_not_text(tmp_path: Path) -> None:
    path = make(tmp_path, "")
    (tmp_path / "clp.conf").write_bytes(b"cluster:\n  name: \xff\xfe\n")
    code, out = run(path)
    assert code == 3
    assert "cannot read" in out


def test_new_key_creates_a_root_only_key_once(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "clp" / "samples" / "lab2", conf)
    r = CliRunner().invoke(main, [str(conf), "--new-key"])
    assert r.exit_code == 0, r.output
    key_file = conf / "cluster.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(load_key(key_file)) == 32
    again = CliRunner().invoke(main, [str(conf), "--new-key"])
    assert again.exit_code != 0 and "exists" in again.output


def test_arbiter_key_is_derived_from_the_cluster_key_and_never_overwritten(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(Path(__file__).resolve().parents[2] / "clp" / "samples" / "lab2", conf)
    out = tmp_path / "arbiter.key"
    r = CliRunner().invoke(main, [str(conf), "--arbiter-key", str(out)])
    assert r.exit_code != 0 and "cluster key" in r.output and "does not exist" in r.output
    assert not out.exists()
    assert CliRunner().invoke(main, [str(conf), "--new-key"]).exit_code == 0
    r = CliRunner().invoke(main, [str(conf), "--arbiter-key", str(out)])
    assert r.exit_code == 0 and "clpwitnessd --arbiter CLUSTER=" in r.output, r.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_arbiter_key(out) == arbiter_key(load_key(conf / "cluster.key"))
    again = CliRunner().invoke(main, [str(conf), "--arbiter-key", str(out)])
    assert again.exit_code != 0 and "exists" in again.output
    with pytest.raises(KeyFileError, match="is an arbiter key, not the cluster key"):
        load_key(out)
    with pytest.raises(KeyFileError, match="is not an arbiter key"):
        load_arbiter_key(conf / "cluster.key")
