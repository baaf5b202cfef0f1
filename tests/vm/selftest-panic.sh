#!/bin/sh
# Harness self-test: the guest kernel panics in the middle of the script (sysrq crash).
# The run must FAIL with "kernel problem" and no result file; scripts/run-tests.sh
# inverts it.
# vm: timeout=120
. "$(dirname "$0")/lib.sh"
ok "about to crash the kernel"
echo c >/proc/sysrq-trigger
sleep 30
finish
