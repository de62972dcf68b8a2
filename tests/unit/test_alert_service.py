"""clp.alert.service: the alert service's decisions on its spool and its targets, without
sending (the real exchanges are in tests/integration/test_alerts.py)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clp.alert.delivery import Outcome
from clp.alert.service import AlertService
from clp.alert.spool import SpoolWriter
from clp.evt.records import make_record
from clp.paths import InstallRoot

SAMPLE = Path(__file__).parents[2] / "clp" / "samples" / "lab2"
MAIL = {"to": ["ops@example.test"], "smtp": [{"host": "127.0.0.1", "port": 9}]}
TRAP = {"destinations": [{"host": "127.0.0.1", "port": 9}]}


def configure(root: InstallRoot, alert: dict | None) -> None:
    shutil.copytree(SAMPLE, root.config_dir, dirs_exist_ok=True)
    conf = yaml.safe_load((SAMPLE / "clp.conf").read_text())
    if alert is not None:
        conf["alert"] = alert
    tmp = root.config_file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(conf))
    tmp.replace(root.config_file)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AlertService]:
    root = InstallRoot(tmp_path / "root")
    root.ensure_dirs()
    svc = AlertService(root, "server1")
    yield svc
    svc.close()


def spool_alerts(root: InstallRoot, n: int, module: str = "rm") -> None:
    writer = SpoolWriter(root)
    for i in range(n):
        assert writer.put(make_record(module, "ERROR", f"alert {i}", event_id=9, alert=True))
    writer.close()


def test_a_missing_clp_conf_keeps_the_spool_until_a_configuration_loads(
        service: AlertService) -> None:
    root = service.root
    spool_alerts(root, 3)
    service.start()  # no clp.conf at all
    assert len(service.spool.names()) == 3 and not service.targets
    configure(root, None)  # loads, without an alert section: nothing to deliver
    service.reload()
    assert service.spool.names() == []


def test_an_invalid_clp_conf_keeps_the_settings_in_force(service: AlertService) -> None:
    configure(service.root, {"mail": MAIL})
    service.start()
    mail = service.targets["mail"]
    service.root.config_file.write_text("cluster: [not, a, mapping\n")
    service.reload()
    assert service.targets == {"mail": mail} and mail.is_alive()


def test_a_reload_keeps_the_targets_whose_settings_did_not_change(
        service: AlertService) -> None:
    configure(service.root, {"mail": MAIL, "snmp": TRAP})
    service.start()
    mail, (trap_key, trap) = service.targets["mail"], next(
        (k, t) for k, t in service.targets.items() if k != "mail")
    configure(service.root, {"mail": MAIL, "snmp": {"destinations": [
        {"host": "127.0.0.1", "port": 9, "community": "changed"}]}})
    service.reload()
    assert service.targets["mail"] is mail  # whatever it was sending goes on, once
    assert service.targets[trap_key] is not trap
    trap.join(5)
    assert not trap.is_alive()
    configure(service.root, {"snmp": TRAP})
    service.reload()
    assert "mail" not in service.targets


def test_giving_up_a_delivery_report_is_logged_not_alerted(
        service: AlertService, caplog: pytest.LogCaptureFixture) -> None:
    """Two failing channels would otherwise report each other's give-ups for ever."""
    configure(service.root, {"mail": MAIL, "snmp": TRAP})
    spool_alerts(service.root, 1, module="trap")  # a trap channel's failure report
    spool_alerts(service.root, 1, module="rm")
    service.start()
    for t in service.targets.values():  # no delivery here: the outcomes are given by hand
        t.stop()
    names = sorted(service.waiting)
    assert len(names) == 2
    with caplog.at_level(logging.INFO, logger="clp.alertsync"):
        for name in names:
            service.apply(Outcome("mail", name, "given_up", "127.0.0.1:9", "refused", 1.0, 3))
    flags = [getattr(r, "alert", None) for r in caplog.records
             if r.getMessage().startswith("mail of alert")]
    assert flags == [False, True]  # the trap's report (spooled first), then the rm alert
