#!/bin/sh
# exec1 start: the sample application (clp.lab.demo_app), a small TCP service on port 8080 whose
# data file is on the shared disk (disk1, mounted at /mnt/disk1 before exec1 starts).
ROOT=${CLP_ROOT:-/opt/nec/clusterpro}
PIDFILE=$ROOT/work/exec1.pid
PORT=8080
echo "exec1 start: CLP_EVENT=$CLP_EVENT CLP_SERVER=$CLP_SERVER on $(hostname)"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "exec1 start: already running (pid $(cat "$PIDFILE"))"
    exit 0
fi
setsid nohup python3 -m clp.lab.demo_app --port "$PORT" --data /mnt/disk1/app.log \
    </dev/null >>"$ROOT/log/exec1-app.log" 2>&1 &
echo $! >"$PIDFILE"
i=0
while [ $i -lt 100 ]; do    # up to 10 s for the service to listen
    if ss -Hltn "sport = :$PORT" | grep -q .; then
        exit 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
echo "exec1 start: the application did not start listening on port $PORT" >&2
exit 1
