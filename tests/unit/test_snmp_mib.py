"""mib/CLP-CLUSTER-MIB.txt passes smilint, loads in net-snmp, and says the same as the agent's
tree (clp.snmp.tree.COLUMNS) and the alert sender's OIDs (clp.snmp.oids)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from clp.snmp import oids
from clp.snmp.tree import COLUMNS, GAUGE, INTEGER, ROOT, STRING

MIB_DIR = Path(__file__).resolve().parents[2] / "mib"
MODULE = "CLP-CLUSTER-MIB"
IETF_MIBS = Path("/usr/local/share/clp/mibs")  # tools/install-deps.sh puts them there
INDEXES = {"clpServerIndex", "clpHeartbeatIndex", "clpGroupIndex", "clpResourceIndex",
           "clpMonitorIndex"}
ALERTS = {"clpAlertModule": oids.ALERT_MODULE, "clpAlertEventId": oids.ALERT_EVENT_ID,
          "clpAlertLevel": oids.ALERT_LEVEL, "clpAlertServer": oids.ALERT_SERVER,
          "clpAlertMessage": oids.ALERT_MESSAGE, "clpAlertTime": oids.ALERT_TIME}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert (IETF_MIBS / "SNMPv2-SMI.mib").is_file(), \
        f"{IETF_MIBS} lacks the IETF base modules: run tools/install-deps.sh"
    # a private persistent dir, so the tools never write /var/lib/snmp (made whole, so they
    # have nothing to say about creating it)
    persistent = tmp_path_factory.mktemp("snmp")
    (persistent / "cert_indexes").mkdir()
    return {**os.environ, "SNMP_PERSISTENT_DIR": str(persistent),
            "SMIPATH": str(IETF_MIBS), "MIBS": "", "MIBDIRS": ""}


def translate(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(["snmptranslate", "-M", f"{IETF_MIBS}:{MIB_DIR}", "-m", MODULE, *args],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stderr, r.stderr
    return r.stdout


def test_smilint_level_3_is_clean(env: dict[str, str]):
    r = subprocess.run(["smilint", "-l", "3", str(MIB_DIR / f"{MODULE}.txt")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout + r.stderr == ""


def test_net_snmp_loads_the_whole_tree(env: dict[str, str]):
    out = translate(env, "-Tp", "-IR", "clpClusterMIB")
    assert "clpClusterMIB(207)" in out and "clpMonitorServerStatusText(2)" in out
    assert "clpAlertNotification(1)" in out


def labels(env: dict[str, str]) -> dict[str, str]:
    """Every object of the module: name -> numeric OID."""
    found = {}
    for line in translate(env, "-Tz").splitlines():
        m = re.fullmatch(r'"(\w+)"\s+"([\d.]+)"', line.strip())
        if m and m.group(2).startswith(oids.PRODUCT):
            found[m.group(1)] = m.group(2)
    return found


def test_the_agents_objects_are_the_mibs(env: dict[str, str]):
    names = labels(env)
    objects = oids.OBJECTS + "."
    parents = {o.rsplit(".", 1)[0] for o in names.values()}
    leaves = {n for n, o in names.items() if o.startswith(objects) and o not in parents}
    assert leaves - INDEXES == set(COLUMNS)
    for name, (at, _) in COLUMNS.items():
        assert names[name] == ".".join(map(str, ROOT + at)), name


def test_the_agents_types_are_the_mibs(env: dict[str, str]):
    """net-snmp shows the base syntax: OCTET STRING for the UTF-8 strings, Unsigned32 for the
    gauges, INTEGER with its enumeration (a TC of ours or TruthValue) for the integers."""
    expected = {"OCTET": STRING, "Unsigned32": GAUGE, "INTEGER": INTEGER}
    for name, (_, kind) in COLUMNS.items():
        described = translate(env, "-Td", f"{MODULE}::{name}")
        syntax = re.search(r"SYNTAX\s+(\w+)(.*)", described)
        assert syntax, name
        assert expected[syntax.group(1)] == kind, (name, syntax.group(1))
        if kind == STRING:
            assert "TEXTUAL CONVENTION ClpUtf8String" in described, name
        if kind == INTEGER:
            assert "{" in syntax.group(2), name  # an enumeration


def test_the_alert_notification_and_objects_are_clp_snmp_oids(env: dict[str, str]):
    names = labels(env)
    assert names["clpAlertNotification"] == oids.ALERT_TRAP
    for name, instance in ALERTS.items():
        assert names[name] + ".0" == instance, name
        assert "accessible-for-notify" in translate(env, "-Td", f"{MODULE}::{name}")
    trap = translate(env, "-Td", f"{MODULE}::clpAlertNotification")
    assert re.search(r"OBJECTS\s+\{\s*clpAlertModule, clpAlertEventId, clpAlertLevel, "
                     r"clpAlertServer,\s+clpAlertMessage, clpAlertTime\s*\}", trap), trap
    level = translate(env, "-Td", f"{MODULE}::clpAlertLevel")
    for word, number in (("info", 1), ("warning", 2), ("error", 3), ("critical", 4)):
        assert f"{word}({number})" in level
    assert set(oids.ALERT_LEVELS.values()) == {1, 2, 3, 4}
