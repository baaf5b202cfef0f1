#!/bin/sh
# Harness self-test: the guest powers off in the middle of the script, so no result file
# comes back.  The run must FAIL with "no result file"; scripts/run-tests.sh inverts it.
# vm: timeout=120
. "$(dirname "$0")/lib.sh"
ok "about to power the guest off"
sync
poweroff -f
sleep 30
finish
