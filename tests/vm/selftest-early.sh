#!/bin/sh
# Harness self-test: the kernel is told to run an init that does not exist, so it panics
# before this script (or the harness's /init) ever starts.  run.sh must retry that boot
# once, saying so, and then FAIL with "kernel problem"; scripts/run-tests.sh inverts it
# and checks the retry was announced exactly once.
# vm: timeout=60 append=rdinit=/dd-no-such-init
echo "dd-selftest-early: this line must never run"
exit 0
