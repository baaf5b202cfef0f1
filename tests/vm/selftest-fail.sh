#!/bin/sh
# Harness self-test: a guest script with a failing check.  The run must FAIL with
# "test failed"; scripts/run-tests.sh inverts it.  Not a product test.
# vm: timeout=120
. "$(dirname "$0")/lib.sh"
check "a check that passes" true
check "a check that fails on purpose" false
finish
