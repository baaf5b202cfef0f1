#!/bin/sh
# `dmsetup targets` lists dedup-pool and dedup with their versions while dm-dedup is
# loaded, and neither once it is unloaded.
# vm: timeout=180 smp=1
. "$(dirname "$0")/lib.sh"

# The target versions in kernel/dm-dedup-target.c; a table/status/message change
# bumps them (and this line).
POOL_VERSION=v0.4.0
VOLUME_VERSION=v0.4.0

target_version() { dmsetup targets | awk -v t="$1" '$1 == t { print $2 }'; }

dd_mark "$DD_TEST.start"
modprobe dm-mod
check "dm-mod is loaded" sh -c 'grep -q "^dm_mod " /proc/modules'
check_eq "no dedup-pool target before loading" "$(target_version dedup-pool)" ""

check "dm-dedup loads" dd_load_module
dmsetup targets | sed 's/^/# targets: /'
check_eq "dedup-pool is listed with its version" "$(target_version dedup-pool)" "$POOL_VERSION"
check_eq "dedup is listed with its version" "$(target_version dedup)" "$VOLUME_VERSION"
check "linear is still listed" sh -c 'dmsetup targets | grep -q "^linear "'

check "dm-dedup unloads" dd_unload_module
check_eq "dedup-pool is gone after unloading" "$(target_version dedup-pool)" ""
check_eq "dedup is gone after unloading" "$(target_version dedup)" ""

check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
