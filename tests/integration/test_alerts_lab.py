"""Alerts of a running lab cluster reach a real snmptrapd and a real SMTP server on the lab's
client machine: an operator's alert (clplogcmd --mail --trap) and a monitor's error, as mail, v2c
trap and v3 authPriv inform, each from the server that raised it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from clp.lab import Lab
from clp.lab.samples import write_sample_config
from tests.integration.alertlab import alert_section, receivers_on_client
from tests.integration.labutil import needs_root, wait_all_online, wait_for

pytestmark = [pytest.mark.lab, needs_root, pytest.mark.timeout(150)]


def test_cluster_alerts_reach_trap_and_mail_receivers(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    clp_conf = write_sample_config(conf, n_servers=2, interval=0.5, timeout=5)
    doc = yaml.safe_load(clp_conf.read_text())
    doc["alert"] = alert_section(["server1", "server2"])
    clp_conf.write_text(yaml.safe_dump(doc))
    name = "al" + secrets.token_hex(2)
    lab = None
    try:
        lab = Lab.up(name=name, n=2, config_dir=conf)
        wait_all_online(lab)
        with receivers_on_client(name, lab.servers, tmp_path / "receivers") as rx:
            r = lab.exec("server2", ["clplogcmd", "-m", "operator note", "-l", "INFO", "--mail",
                                     "--trap"])
            assert r.returncode == 0, r.stderr
            wait_for("the operator's mail", lambda: [m for m in rx.mails()
                                                     if "operator note" in m], 30)
            wait_for("its trap and inform", lambda: len(
                [t for t in rx.traps() if "operator note" in t]) == 2 or None, 30)
            mail = next(m for m in rx.mails() if "operator note" in m)
            assert "Server:   server2" in mail and "Module:   logcmd" in mail
            # a monitor's error (the seed's pseudo failure of fipw2) is an ERROR alert of rm
            r = lab.exec("server1", ["clpmonctrl", "-e", "-m", "fipw2"])
            assert r.returncode == 0, r.stderr + r.stdout
            wait_for("the monitor error's mail", lambda: [
                m for m in rx.mails() if "Module:   rm" in m and "fipw2" in m], 60)
            traps = wait_for("the monitor error's traps", lambda: [
                t for t in rx.traps() if '"rm"' in t and "fipw2" in t] or None, 60)
            assert any(".1.3.6.1.4.1.119.2.3.207.3.3.0 = INTEGER: 3" in t for t in traps)
    finally:
        if lab is not None:
            lab.down()
        Lab.cleanup_all(name)
