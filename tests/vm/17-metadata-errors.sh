#!/bin/sh
# Metadata errors walk the pool down the ladder rw -> ro -> fail: a metadata device
# that fails every write puts the pool in fail mode, and on a working device it opens
# again at its last commit; a damaged metadata block records needs_check and makes
# the pool read-only (reads work; writes, also in place, and messages are refused:
# the exclusive bits may be damaged), and a pool opened with needs_check stays
# read-only.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-flakey || die "no dm-flakey"
meta=$(dd_loop 16M) && data=$(dd_loop 64M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
# The pool's metadata device is a dm device we can make fail.
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"
M=/dev/mapper/ddt-meta
check "pool is created" dd_pool_create ddt-pool $M "$data"
check "volume is created" dd_volume_create ddt-pool 1 ddt-v 32768
V=/dev/mapper/ddt-v
check "64 blocks are written and committed" \
	sh -c "dd if=/dev/urandom of=$V bs=4096 count=64 oflag=direct conv=fsync 2>/dev/null"
sum=$(dd_sum $V 262144)

# 1. A metadata device that fails every write: the transaction is dropped and the
# flag cannot even be written: fail mode.  Reloaded on a working device, the pool
# opens at its last commit.
check "the metadata device starts failing writes" \
	sh -c "echo '0 $MS flakey $meta 0 0 1 1 error_writes' | dmsetup load ddt-meta &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
expect_fail "a write that needs a new block, then a flush, fails" \
	sh -c "dd if=/dev/urandom of=$V bs=4096 seek=100 count=1 oflag=direct conv=fsync 2>/dev/null"
check_eq "pool mode is fail (needs_check could not be written)" "$(dd_pool_field ddt-pool 9)" fail
expect_fail "reads fail too" dd if=$V of=/dev/null bs=4096 count=1 iflag=direct
expect_fail "messages are refused" dmsetup message ddt-pool 0 create_volume 2
check "the metadata device works again" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup load ddt-meta &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
check "volume is removed" dmsetup remove ddt-v
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dedup_check $M
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
check_eq "the pool is read-write" "$(dd_pool_field ddt-pool 9)" rw
check "volume is reactivated" dd_volume_activate ddt-pool 1 ddt-v 32768
check_eq "the committed data is intact" "$(dd_sum $V 262144)" "$sum"

# 2. A damaged block (a map leaf of volume 2 overwritten while the pool is down):
# reading it is a metadata error; needs_check is recorded and the pool goes ro.
check "volume 2 with 8 blocks" dd_volume_create ddt-pool 2 ddt-v2 32768
check "... written" dd if=/dev/urandom of=/dev/mapper/ddt-v2 bs=4096 count=8 oflag=direct
check "devices are removed" sh -c "dmsetup remove ddt-v2 && dmsetup remove ddt-v && dmsetup remove ddt-pool"
leaf=$(dedup_dump $M | awk '$1 == 2 && $2 ~ /valid/ {split($NF, a, "/"); print a[1]}')
log "volume 2's map leaf is metadata block $leaf"
check "volume 2's map leaf is found" test -n "$leaf"
check "... and overwritten with garbage" \
	sh -c "head -c 4096 /dev/urandom | dd of=$M bs=4096 seek=$leaf conv=notrunc 2>/dev/null"
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
check "volume 1 and 2 are reactivated" \
	sh -c "dd_volume_activate() { echo \"0 \$4 dedup /dev/mapper/\$1 \$2\" | dmsetup create \$3; };
		dd_volume_activate ddt-pool 1 ddt-v 32768 && dd_volume_activate ddt-pool 2 ddt-v2 32768"
# A write to a new block completes (its mapping in the open transaction), then the
# metadata error drops that transaction: a flush after it must not report success
# unless the write is really there.
check "volume 1: a write to a new block, no flush" \
	sh -c "head -c 4096 /dev/urandom >$DD_TMP/b400 && dd if=$DD_TMP/b400 of=$V bs=4096 seek=400 oflag=direct conv=notrunc 2>/dev/null"
expect_fail "reading volume 2 fails" dd if=/dev/mapper/ddt-v2 of=/dev/null bs=4096 count=1 iflag=direct
if sync $V 2>/dev/null; then flushed=yes; else flushed=no; fi
got400=$(dd if=$V bs=4096 skip=400 count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
log "flush after the error: $flushed"
check "a flush succeeds only if the write before the error is there" \
	test "$flushed" = no -o "$got400" = "$(sha256sum <$DD_TMP/b400 | cut -d' ' -f1)"
check_eq "pool mode is ro" "$(dd_pool_field ddt-pool 9)" ro
check_eq "status says needs_check" "$(dd_pool_field ddt-pool 10)" needs_check
check_eq "volume 1 still reads its data" "$(dd_sum $V 262144)" "$sum"
# Its exclusive bits may be damaged: a read-only pool writes no guest data.
expect_fail "volume 1: a write in place is refused too" \
	dd if=/dev/urandom of=$V bs=4096 seek=5 count=1 oflag=direct conv=notrunc
check_eq "volume 1 still reads what it held" "$(dd_sum $V 262144)" "$sum"
check "volume 1: a whole-block zero write to an unmapped block succeeds (nothing to do)" \
	dd if=/dev/zero of=$V bs=4096 seek=300 count=1 oflag=direct
expect_fail "volume 1: a zero write to a mapped block is refused (it would unmap)" \
	dd if=/dev/zero of=$V bs=4096 seek=6 count=1 oflag=direct conv=notrunc
expect_fail "volume 1: a write that needs a new block is refused" \
	dd if=/dev/urandom of=$V bs=4096 seek=200 count=1 oflag=direct
check "devices are removed" sh -c "dmsetup remove ddt-v2 && dmsetup remove ddt-v && dmsetup remove ddt-pool"
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
check_eq "a pool with needs_check opens read-only" "$(dd_pool_field ddt-pool 9)" ro
check "pool is removed" dmsetup remove ddt-pool
expect_fail "dedup_check reports the damaged leaf" dedup_check $M
expect_fail "... and refuses to clear needs_check" dedup_check --clear-needs-check $M
check "the metadata device is removed" dmsetup remove ddt-meta
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
