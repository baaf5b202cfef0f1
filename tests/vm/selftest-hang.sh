#!/bin/sh
# Harness self-test: a guest script that never ends.  The harness's timeout must kill
# the guest and the run must FAIL with "timeout"; scripts/run-tests.sh inverts it.
# vm: timeout=30
. "$(dirname "$0")/lib.sh"
ok "about to hang"
while :; do
	sleep 1
done
