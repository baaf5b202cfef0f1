#!/bin/sh
# dm-dedup loads, unloads cleanly, and loads and unloads a second time.
# vm: timeout=180 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
if dd_module_loaded; then
	die "dm_dedup is loaded before the test starts"
fi

check "dm-dedup loads" dd_load_module
check "dm_dedup is listed in /proc/modules" dd_module_loaded
check "the module is GPL (no proprietary taint)" \
	sh -c '! grep -q P /sys/module/dm_dedup/taint'
check "dm_dedup is unused after loading" \
	sh -c 'test "$(cat /sys/module/dm_dedup/refcnt)" = 0'
check "dm-dedup unloads" dd_unload_module
expect_fail "dm_dedup is gone after unloading" dd_module_loaded

check "dm-dedup loads a second time" dd_load_module
check "dm_dedup is listed again" dd_module_loaded
check "dm-dedup unloads a second time" dd_unload_module
expect_fail "dm_dedup is gone again" dd_module_loaded

check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
