#!/bin/sh
# exec1 stop: clp has already ended the application (the async start script's process group);
# this makes sure it is gone (bounded wait) so that disk1 can be unmounted after this.
ROOT=${CLP_ROOT:-/opt/nec/clusterpro}
PIDFILE=$ROOT/work/exec1.pid
echo "exec1 stop: CLP_EVENT=$CLP_EVENT CLP_SERVER=$CLP_SERVER on $(hostname)"
[ -f "$PIDFILE" ] || exit 0
PID=$(cat "$PIDFILE")
if kill -TERM "$PID" 2>/dev/null; then
    i=0
    while kill -0 "$PID" 2>/dev/null && [ $i -lt 50 ]; do    # up to 5 s, then SIGKILL
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID"
fi
rm -f "$PIDFILE"
exit 0
