#!/bin/sh
# interrupt.sh: sends SIGTERM to quiesce-run itself while it waits, to
# check that it then kills everything it started (nothing is orphaned) and
# exits with status 2.
# usage: interrupt.sh QUIESCE_RUN PROGRAM [ARGS...]
qr=$1
shift
"$qr" --ready-after 50ms --cancel-after 30s -- "$@" &
runner=$!
sleep 0.5
kill -TERM "$runner"
wait "$runner"
