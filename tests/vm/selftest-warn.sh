#!/bin/sh
# Harness self-test: the script itself passes, but loading the test-only module
# tests/vm/selftest-warn/ triggers a kernel WARN.  The run must FAIL with "kernel
# problem" (found by the harness's dmesg scan); scripts/run-tests.sh inverts it.
# vm: timeout=120
. "$(dirname "$0")/lib.sh"
check "the WARN-on-load test module loads" modprobe dd_selftest_warn
finish
