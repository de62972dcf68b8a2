#!/bin/sh
# exec1 start (mode: async): the sample application, a small TCP service on port 8080 whose data
# file is on the shared disk (disk1, mounted at /mnt/disk1 before exec1 starts). It runs in the
# foreground of this script (exec), so clp keeps its process id: pidw1 watches that process and
# the stop ends it.
ROOT=${CLP_ROOT:-/opt/nec/clusterpro}
echo "exec1 start: CLP_EVENT=$CLP_EVENT CLP_SERVER=$CLP_SERVER on $(hostname)"
echo $$ >"$ROOT/work/exec1.pid"
exec python3 -m clp.lab.demo_app --port 8080 --data /mnt/disk1/app.log \
    </dev/null >>"$ROOT/log/exec1-app.log" 2>&1
