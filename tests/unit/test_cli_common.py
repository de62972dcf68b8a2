"""What every command shares (the product's sentence on stdout, clp's detail on stderr,
``Invalid option.``, the one-run guard), clpregctrl, and the reboot limit behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clp.cli import clpregctrl
from clp.cli.common import exclusive, finish, invalid_name
from clp.cli.options import Command
from clp.clusterd.reboot_limit import RebootLimit, clear, counter_file, read
from clp.paths import InstallRoot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the commands require root")


@click.command(cls=Command)
@click.option("-s", "action", flag_value="s")
@click.option("-t", "action", flag_value="t")
@click.option("-h", "host", metavar="HOST")
@click.option("-n", "count", type=click.IntRange(1, 9))
@click.argument("name", required=False)
def probe(action: str | None, host: str | None, count: int | None, name: str | None) -> None:
    if name == "bad":
        invalid_name("group", name, "cluster")
    finish(0 if action else 5, "" if action else f"no service on {host}")


@pytest.mark.parametrize("args", [["-x"], ["-n"], ["-n", "10"], ["-s", "a", "b"], ["-s", "-t"],
                                  ["-t", "-s", "-t"]])
def test_option_mistake_is_invalid_option_with_click_reason_on_stderr(args: list[str]):
    r = CliRunner().invoke(probe, args)
    assert r.exit_code == 2
    assert r.stdout == "Invalid option.\n"
    assert r.stderr.strip() and "Usage" not in r.stderr


def test_h_is_a_host_and_help_is_long_only():
    r = CliRunner().invoke(probe, ["-h", "server2"])
    assert r.stdout == "Could not connect to the server. Check if the cluster service is active.\n"
    assert r.stderr == "no service on server2\n" and r.exit_code == 5
    r = CliRunner().invoke(probe, ["--help"])
    assert r.exit_code == 0 and "Usage:" in r.stdout


def test_success_and_names():
    r = CliRunner().invoke(probe, ["-s"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Command succeeded.\n", "")
    r = CliRunner().invoke(probe, ["-s", "bad"])
    assert r.exit_code == 2
    assert r.stdout == "Invalid group name. Specify a valid group name in the cluster.\n"
    assert r.stderr == "bad is not a group of cluster cluster.\n"


GUARDED = """
import sys, time
from clp.cli.common import exclusive
with exclusive("clpprobe"):
    print("in", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def test_second_run_is_refused_and_a_killed_run_leaves_no_lock(root: InstallRoot):
    first = subprocess.Popen([sys.executable, "-c", GUARDED, "30"], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "CLP_ROOT": str(root.root)})
    try:
        assert first.stdout is not None and first.stdout.readline() == "in\n"
        second = subprocess.run([sys.executable, "-c", GUARDED, "0"], capture_output=True,
                                text=True, timeout=30,
                                env={**os.environ, "CLP_ROOT": str(root.root)})
        assert second.returncode == 128
        assert second.stdout == "This command is already run.\n"
        assert "Another clpprobe" in second.stderr
    finally:
        first.kill()
        first.wait(timeout=10)
    with exclusive("clpprobe"):  # the killed holder's lock went with it
        pass


def test_clpregctrl_get_clear_and_codes(root: InstallRoot):
    path = counter_file(root.work_dir)
    limit = RebootLimit(root.work_dir, max_count=0)
    assert limit.allow("rm", "stop_cluster_service_and_reboot") == (True, 1)
    r = CliRunner().invoke(clpregctrl.main, ["-g", "-t", "rm"])
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "*" * 25 and lines[-1] == "success.(code:0)"
    assert "type : rm" in lines and "value : 1" in lines and "type : rc" not in lines
    r = CliRunner().invoke(clpregctrl.main, ["--clear"])
    assert r.exit_code == 0 and read(path) == {"rc": 0, "rm": 0}
    r = CliRunner().invoke(clpregctrl.main, ["-t", "rx", "-g"])
    assert (r.exit_code, r.stdout) == (3, "Invalid option.\n")  # its own code, as the product
    r = CliRunner().invoke(clpregctrl.main, [])
    assert (r.exit_code, r.stdout) == (3, "Invalid option.\n")


def test_reboot_limit_counts_halts_only_and_stops_at_max(tmp_path: Path):
    limit = RebootLimit(tmp_path, max_count=2)
    assert limit.allow("rc", "stop_group") == (True, 0)  # not a halt: never counted
    assert limit.allow("rc", "stop_cluster_service_and_shutdown") == (True, 1)
    assert limit.allow("rc", "panic") == (True, 2)
    assert limit.allow("rc", "stop_cluster_service_and_reboot") == (False, 2)
    assert limit.allow("rm", "stop_cluster_service_and_reboot") == (True, 1)  # its own counter
    # the counters survive a restart of the service (a new RebootLimit, the same file)
    assert RebootLimit(tmp_path, max_count=2).allow("rc", "panic") == (False, 2)
    assert json.loads(counter_file(tmp_path).read_text()) == {"rc": 2, "rm": 1}
    clear(counter_file(tmp_path), ("rc",))
    assert read(counter_file(tmp_path)) == {"rc": 0, "rm": 1}
    RebootLimit(tmp_path, max_count=2).reset()
    assert read(counter_file(tmp_path)) == {"rc": 0, "rm": 0}


def test_reboot_limit_zero_means_no_limit(tmp_path: Path):
    limit = RebootLimit(tmp_path, max_count=0)
    for n in range(1, 6):
        assert limit.allow("rm", "panic") == (True, n)


def test_reboot_limit_fails_open_and_a_damaged_file_counts_again(tmp_path: Path,
                                                                  root: InstallRoot):
    blocked = tmp_path / "file"  # the counters' directory cannot be made: a file is in the way
    blocked.write_text("")
    assert RebootLimit(blocked, max_count=1).allow("rm", "panic") == (True, -1)
    path = counter_file(root.work_dir)
    path.write_text("{not json")
    r = CliRunner().invoke(clpregctrl.main, ["-g"])
    assert r.exit_code == 20 and "not JSON" in r.stdout
    assert RebootLimit(root.work_dir, max_count=1).allow("rm", "panic") == (True, 1)
    assert read(path) == {"rc": 0, "rm": 1}  # rewritten
    path.write_text('{"rc": -1}')
    r = CliRunner().invoke(clpregctrl.main, ["-c"])
    assert r.exit_code == 0 and read(path) == {"rc": 0, "rm": 0}
