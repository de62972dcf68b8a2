"""``clusterpro_alertsync``: the alert service and the cluster-wide alert log.

Reads the alerts ``clusterpro_evt`` spools (:mod:`clp.alert.spool`) and delivers them as the
``alert`` section of clp.conf says (:mod:`clp.alert.service`); ships this server's alerts
(``log/alert.log``) to every other server and keeps theirs, so that every server holds the whole
cluster's alert log (:mod:`clp.alert.syncnet`, read with :mod:`clp.alert.clusterlog`). Stopping
or restarting it never touches the cluster: alerts wait in the spool and in alert.log meanwhile.
"""

from __future__ import annotations

import os
import signal
import sys

from clp.alert.service import AlertService
from clp.evt.logsetup import setup_logging
from clp.evt.records import short_hostname
from clp.paths import InstallRoot
from clp.platform import sdnotify


def main() -> None:
    root = InstallRoot.from_env()
    root.ensure_dirs()
    setup_logging(root, "alertsync")
    service = AlertService(root, os.environ.get("CLP_SERVER") or short_hostname(), sync=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, service.on_signal)
    try:
        service.start()
    except OSError as e:
        sys.exit(f"clusterpro_alertsync: {e}")
    sdnotify.ready("delivering alerts")  # the wake-up socket is bound, the spool scanned
    code = service.run()
    sdnotify.stopping()
    sys.exit(code)


if __name__ == "__main__":
    main()
