"""snmpwalk of the product's OID against snmpd with clpsnmpagent inside a lab server: the same
servers, paths, groups, resources and monitors as clpstat --json; SNMPv3 authPriv; the view;
and the cluster service stopped under a running snmpd."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from clp.lab import Lab
from clp.lab.samples import write_sample_config
from clp.snmp import tree
from clp.snmp.oids import PRODUCT
from tests.integration.labutil import needs_root, status, wait_for
from tests.integration.snmplab import COMMUNITY, V3_AUTH, V3_PRIV, V3_USER, snmpd_in

pytestmark = [pytest.mark.lab, needs_root, pytest.mark.timeout(120)]
TYPES = {tree.STRING: "STRING", tree.INTEGER: "INTEGER", tree.GAUGE: "Gauge32"}
AGE = ".".join(map(str, tree.at_name("clpClusterStatusAge")))


def settled(lab: Lab) -> dict:
    """A status with every group running and every monitor Normal, so it holds for a walk."""
    def probe() -> dict | None:
        doc = status(lab, "server1")
        ok = all(g["state"] == "Online" for g in doc["groups"].values()) and all(
            m["state"] == "Normal" for m in doc["monitors"].values())
        return doc if ok else None
    return wait_for("every group Online and every monitor Normal", probe, 60)


def expected(doc: dict) -> dict[str, tuple[str, str]]:
    return {"." + ".".join(map(str, oid)): (TYPES[kind], str(value))
            for oid, (kind, value) in tree.from_status(doc).values.items()}


def test_snmpwalk_matches_clpstat_and_v3_and_a_stopped_service(tmp_path: Path):
    conf = tmp_path / "conf"
    write_sample_config(conf, n_servers=2, interval=0.5, timeout=5)
    name = "snmp" + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, n=2, config_dir=conf)
        doc = settled(lab)
        with snmpd_in(lab, "server1") as snmpd:
            walked = snmpd.walk()
            after = status(lab, "server1")
            # what clpstat shows, object by object (the status age aside: it moves)
            want = expected(doc)
            assert walked.pop("." + AGE)[0] == "Gauge32" and want.pop("." + AGE)
            assert walked == want
            assert expected(after).keys() - {"." + AGE} == walked.keys()
            # and read back as clpstat's own words
            by_name = snmpd.tool("snmpwalk", "-v2c", "-c", COMMUNITY, "-OQs",
                                 "CLP-CLUSTER-MIB::clpClusterMIB", mib=True)
            assert by_name.returncode == 0, by_name.stderr
            lines = set(by_name.stdout.splitlines())
            for i, server in enumerate(doc["servers"], 1):
                assert f"clpServerName.{i} = {server}" in lines
            for g, (group, info) in enumerate(doc["groups"].items(), 1):
                assert f"clpGroupName.{g} = {group}" in lines
                assert f"clpGroupCurrentServer.{g} = {info['server']}" in lines
                assert f"clpGroupStatus.{g} = online" in lines
                for r, res in enumerate(info["resources"], 1):
                    assert f"clpResourceName.{g}.{r} = {res}" in lines
            for m, (mon, info) in enumerate(doc["monitors"].items(), 1):
                assert f"clpMonitorName.{m} = {mon}" in lines
                assert f"clpMonitorType.{m} = {info['type']}" in lines
                assert f"clpMonitorStatusText.{m} = Normal" in lines
            assert "clpClusterStatus.0 = running" in lines

            # SNMPv3 authPriv reads the tree; a wrong privacy password reads nothing
            v3 = ["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", V3_AUTH, "-x",
                  "AES"]
            assert snmpd.walk(*v3, "-X", V3_PRIV).keys() == walked.keys() | {"." + AGE}
            bad = snmpd.tool("snmpget", *v3, "-X", "not-the-password", f".{PRODUCT}.1.1.1.0")
            assert bad.returncode != 0 and "cluster" not in bad.stdout
            # the view holds the product's OID only; a write is refused
            sys_descr = snmpd.tool("snmpget", "-v2c", "-c", COMMUNITY, ".1.3.6.1.2.1.1.1.0")
            assert "No Such Object" in sys_descr.stdout, sys_descr.stdout + sys_descr.stderr
            put = snmpd.tool("snmpset", "-v2c", "-c", COMMUNITY, f".{PRODUCT}.1.1.1.0", "s", "x")
            assert put.returncode != 0

            # the cluster service stops under a running snmpd: stopped(3), empty tables
            r = lab.exec("server1", ["clpcl", "-t"])
            assert r.returncode == 0, r.stdout + r.stderr

            def stopped() -> dict | None:
                w = snmpd.walk()
                return w if w[f".{PRODUCT}.1.1.2.0"] == ("INTEGER", "3") else None
            w = wait_for("snmpd to say the cluster service stopped", stopped, 15, 0.3)
            assert w[f".{PRODUCT}.1.1.1.0"] == ("STRING", doc["cluster"])
            assert w[f".{PRODUCT}.1.1.3.0"] == ("STRING", "Stopped")
            assert len(w) == 12
    finally:
        if lab is not None:
            lab.down()
        Lab.cleanup_all(name)
