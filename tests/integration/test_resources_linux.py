"""fip and disk resources on real Linux: network namespaces, a veth pair and a loop device.

Each fip operation runs in a fresh process inside the test's namespace (``ip netns exec``); the
disk scenario runs in one process in a private mount namespace (``unshare -m``), so nothing is ever
mounted in the host's namespace. Everything created is removed in ``finally``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, loop devices)"),
]

REPO = Path(__file__).resolve().parents[2]

# Runs one operation of one type, printing the Result (or probe answer) as JSON.
OPERATE = textwrap.dedent("""\
    import json, logging, sys
    from pathlib import Path
    from clp.paths import InstallRoot
    from clp.resources import registry
    from clp.resources.base import Context
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    op, type_, params, root = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    kind = registry.get(type_)
    full = {n: p["default"] for n, p in kind.schema["properties"].items() if "default" in p}
    for name, sub in kind.schema["properties"].items():
        if sub.get("type") == "object" and "properties" in sub:
            full[name] = {n: p["default"] for n, p in sub["properties"].items()}
            full[name].update(params.pop(name, {}))
    full.update(params)
    ctx = Context.for_group(cluster="c", server="s1", group="g", resource="r", event="START",
                            servers=("s1", "s2"), root=InstallRoot(Path(root)),
                            log=logging.getLogger("it"))
    res = getattr(kind, op)(full, ctx)
    if op == "probe":
        print(json.dumps({"probe": res}))
    else:
        print(json.dumps({"status": res.status.value, "code": res.code, "reason": res.reason}))
""")


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True,
                          timeout=timeout)


def operate(prefix: list[str], op: str, type_: str, params: dict[str, Any],
            root: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([*prefix, sys.executable, "-c", OPERATE, op, type_,
                          json.dumps(params), str(root)],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(2)
    one, two = f"rt{tag}", f"rt{tag}p"
    try:
        sh("ip", "netns", "add", one)
        sh("ip", "netns", "add", two)
        sh("ip", "link", "add", f"v{tag}a", "netns", one, "type", "veth",
           "peer", "name", f"v{tag}b", "netns", two)
        for ns, dev, addr in ((one, f"v{tag}a", "198.18.5.1/24"),
                              (two, f"v{tag}b", "198.18.5.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield one, two
    finally:
        for ns in (one, two):
            sh("ip", "netns", "del", ns, check=False)


def test_fip_start_duplicate_and_stop(netns_pair: tuple[str, str], tmp_path: Path) -> None:
    one, two = netns_pair
    inside = ["ip", "netns", "exec", one]
    fip = {"ip": "198.18.5.12"}
    assert operate(inside, "probe", "fip", fip, tmp_path) == {"probe": False}
    started = operate(inside, "start", "fip", fip, tmp_path)
    assert started["status"] == "done", started
    assert "198.18.5.12/24 added to" in started["reason"]
    assert operate(inside, "probe", "fip", fip, tmp_path) == {"probe": True}
    sh("ip", "netns", "exec", two, "ping", "-c", "1", "-W", "2", "198.18.5.12")
    # the peer already holds .13: starting it here must be refused
    sh("ip", "-n", two, "addr", "add", "198.18.5.13/24", "dev", f"v{one[2:6]}b")
    dup = operate(inside, "start", "fip", {"ip": "198.18.5.13"}, tmp_path)
    assert dup == {"status": "error", "code": 1,
                   "reason": "198.18.5.13 already answers on the network"}
    assert "198.18.5.13" not in sh("ip", "-n", one, "addr").stdout
    # no interface with a matching subnet
    away = operate(inside, "start", "fip", {"ip": "198.18.9.1"}, tmp_path)
    assert away["status"] == "error_hard" and "198.18.9.1" in away["reason"]
    stopped = operate(inside, "stop", "fip", fip, tmp_path)
    assert stopped["status"] == "done", stopped
    assert "198.18.5.12" not in sh("ip", "-n", one, "addr").stdout
    assert operate(inside, "stop", "fip", fip, tmp_path)["reason"].endswith("not active on "
                                                                            "this server")


DISK_SCENARIO = textwrap.dedent("""\
    import json, subprocess, sys, time
    sys.argv = [sys.argv[0]]
    from pathlib import Path
    device, mnt, root, operate = {device!r}, {mnt!r}, {root!r}, {operate!r}
    def run(op, **extra):
        params = {{"device": device, "mount_point": mnt,
                  "umount": {{"interval": 0.3, "retry": 3}}, **extra}}
        out = subprocess.run([sys.executable, "-c", operate, op, "disk", json.dumps(params), root],
                             capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout.strip().splitlines()[-1])
    found = {{"start": run("start"), "probe": run("probe"), "again": run("start")}}
    Path(mnt, "file").write_text("data")
    holder = subprocess.Popen(["bash", "-c", "exec 3<file; exec sleep 1000"], cwd=mnt)
    time.sleep(0.3)
    found["stop"] = run("stop")
    found["holder"] = holder.wait(timeout=10)
    found["after"] = run("probe")
    print(json.dumps(found))
""")


def test_disk_mount_refuse_and_umount_kills_holders(tmp_path: Path) -> None:
    image, mnt = tmp_path / "disk.img", tmp_path / "mnt"
    loop = ""
    try:
        with open(image, "wb") as f:
            f.truncate(64 << 20)
        loop = sh("losetup", "--find", "--show", str(image)).stdout.strip()
        sh("mkfs.ext4", "-q", "-F", loop, timeout=60)
        scenario = DISK_SCENARIO.format(device=loop, mnt=str(mnt), root=str(tmp_path),
                                        operate=OPERATE)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        out = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                              scenario], capture_output=True, text=True, timeout=120, env=env,
                             check=False)
        assert out.returncode == 0, out.stderr
        found = json.loads(out.stdout.strip().splitlines()[-1])
        assert found["start"]["status"] == "done", found
        assert found["probe"] == {"probe": True}
        assert found["again"]["status"] == "error"
        assert f"{loop} is already mounted at {mnt}" in found["again"]["reason"]
        assert found["stop"] == {"status": "done", "code": 0, "reason": f"{mnt} unmounted"}
        assert found["holder"] == -15  # SIGTERM from the first kill round
        assert found["after"] == {"probe": False}
        assert str(mnt) not in Path("/proc/self/mountinfo").read_text()
    finally:
        if loop:
            sh("losetup", "-d", loop, check=False)
        if shutil.which("losetup") and loop:
            assert loop not in sh("losetup", "-a").stdout


WATCH_SCENARIO = textwrap.dedent("""\
    import json, subprocess, sys, time
    from clp import platform
    from clp.platform import arp
    host, dev, peer_dev, peer_ns = platform.current(), sys.argv[1], sys.argv[2], sys.argv[3]
    def peer_add(ip):
        subprocess.run(["ip", "-n", peer_ns, "addr", "add", ip + "/24", "dev", peer_dev],
                       check=True)
    found = {}
    peer_add("198.18.5.13")
    host.watch_addresses({"198.18.5.13": dev, "198.18.5.14": dev, "198.18.5.15": dev}, 0.02, 30)
    found["early"] = arp.answers(dev, "198.18.5.14", 0.1)  # waits for the watch to cover 0.1 s
    found["held"] = arp.answers(dev, "198.18.5.13", 0.1)
    found["free"] = arp.answers(dev, "198.18.5.14", 0.1)
    peer_add("198.18.5.15")  # a holder appears while the address is watched
    time.sleep(0.05)
    found["appeared"] = arp.answers(dev, "198.18.5.15", 0.1)
    host.watch_addresses({}, 0.02, 30)
    found["unwatched"] = arp.answers(dev, "198.18.5.14", 0.1)
    print(json.dumps(found))
""")


def test_a_watched_address_needs_only_a_last_probe_and_a_holder_is_still_found(
        netns_pair: tuple[str, str]) -> None:
    one, two = netns_pair
    tag = one[2:6]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(["ip", "netns", "exec", one, sys.executable, "-c", WATCH_SCENARIO,
                          f"v{tag}a", f"v{tag}b", two], capture_output=True, text=True,
                         timeout=60, env=env, check=False)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["early"][0] is False and "watch of 0.1" in found["early"][1], found
    assert found["held"] == [True, "probed for 0.1 s"], found  # the watch heard it: full probe
    assert found["free"][0] is False and "and a last probe" in found["free"][1], found
    assert found["appeared"] == [True, "probed for 0.1 s"], found
    assert found["unwatched"] == [False, "probed for 0.1 s"], found
