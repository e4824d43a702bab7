#!/bin/sh
# exit3_on_term.sh: answers SIGTERM with exit status 3 instead of a clean
# shutdown: quiesce-run must fail it ("exited with status 3").
trap 'exit 3' TERM
echo ready
while :; do sleep 0.02; done
