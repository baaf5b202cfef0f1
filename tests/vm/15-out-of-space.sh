#!/bin/sh
# Out of data space: with error_if_no_space a write that needs a block fails at once
# and the pool reports out_of_space; writes in place still work; growing the data
# device with a table reload makes the space usable and the mode returns to rw.
# Without the feature, writes wait and complete once the pool grows; after
# no_space_timeout seconds the waiting writes fail, and so does every later write that
# needs a block (none waits forever), until space appears again.  The low water mark
# raises a dm event.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 64M) && meta2=$(dd_loop 16M) && data2=$(dd_loop 4M) ||
	die "cannot set up loop devices"
M=$(dd_devno "$meta")
D=$(dd_devno "$data")
SMALL=8192 # sectors: 1024 blocks of the 64 MiB data device
V=/dev/mapper/ddt-v
status() { dmsetup status ddt-pool; }

check "a 4 MiB pool with error_if_no_space and low water 100" \
	sh -c "echo '0 $SMALL dedup-pool $meta $data 8 100 1 error_if_no_space' | dmsetup create ddt-pool"
check "volume is created" dd_volume_create ddt-pool 1 ddt-v 65536
ev0=$(dmsetup info -c --noheadings -o events ddt-pool)
check "the 1024 blocks are filled" dd if=/dev/urandom of=$V bs=4096 count=1024 oflag=direct
check_eq "data used 1024/1024" "$(dd_pool_field ddt-pool 3)" 1024/1024
ev1=$(dmsetup info -c --noheadings -o events ddt-pool)
check "the low water mark raised a dm event ($ev0 -> $ev1)" test "$ev1" -gt "$ev0"
expect_fail "a write needing one more block fails" \
	dd if=/dev/urandom of=$V bs=4096 seek=2000 count=1 oflag=direct
check_eq "pool mode is out_of_space" "$(dd_pool_field ddt-pool 9)" out_of_space
check "a write in place still succeeds" \
	dd if=/dev/urandom of=$V bs=4096 seek=10 count=1 oflag=direct conv=notrunc
check "the pool is grown to 16 MiB by a reload" \
	sh -c "echo '0 32768 dedup-pool $M $D 8 100 1 error_if_no_space' | dmsetup load ddt-pool &&
		dmsetup suspend ddt-pool && dmsetup resume ddt-pool"
check_eq "data total is 4096 blocks" "$(dd_pool_field ddt-pool 3)" 1024/4096
check_eq "pool mode is rw again" "$(dd_pool_field ddt-pool 9)" rw
check "the write that failed now succeeds" \
	dd if=/dev/urandom of=$V bs=4096 seek=2000 count=1 oflag=direct

log "--- queue (no error_if_no_space)"
check "reload without error_if_no_space" \
	sh -c "echo '0 32768 dedup-pool $M $D 8 0' | dmsetup load ddt-pool &&
		dmsetup suspend ddt-pool && dmsetup resume ddt-pool"
check "the rest of the space is filled" \
	dd if=/dev/urandom of=$V bs=4096 seek=3000 count=3071 oflag=direct
dd if=/dev/urandom of=$V bs=4096 seek=7000 count=4 oflag=direct 2>/dev/null &
writer=$!
sleep 3
check "the write is waiting (still running after 3 s)" kill -0 $writer
check_eq "pool mode is out_of_space while it waits" "$(dd_pool_field ddt-pool 9)" out_of_space
check "the pool is grown to 64 MiB" \
	sh -c "echo '0 131072 dedup-pool $M $D 8 0' | dmsetup load ddt-pool &&
		dmsetup suspend --noflush ddt-pool && dmsetup resume ddt-pool"
check "the waiting write completes" wait $writer
check_eq "pool mode is rw" "$(dd_pool_field ddt-pool 9)" rw
log "$(status)"
check "volume is removed" dmsetup remove ddt-v
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"

log "--- no_space_timeout"
TMO=/sys/module/dm_dedup/parameters/no_space_timeout
old_tmo=$(cat $TMO)
check "no_space_timeout is set to 2 s" sh -c "echo 2 >$TMO"
V2=/dev/mapper/ddt-v2
# ended PID: true once PID has exited, waiting at most 60 s (a liveness bound, not a timing check).
ended() {
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}
check "a 4 MiB pool that queues" \
	sh -c "echo '0 8192 dedup-pool $meta2 $data2 8 0' | dmsetup create ddt-pool2"
check "its volume is created" dd_volume_create ddt-pool2 1 ddt-v2 65536
check "its 1024 blocks are filled" dd if=/dev/urandom of=$V2 bs=4096 count=1024 oflag=direct
dd if=/dev/urandom of=$V2 bs=4096 seek=2000 count=1 oflag=direct 2>/dev/null &
w1=$!
check "the queued write ends after the timeout" ended $w1
expect_fail "and it failed" wait $w1
dd if=/dev/urandom of=$V2 bs=4096 seek=2001 count=1 oflag=direct 2>/dev/null &
w2=$!
check "a later write that needs a block ends without waiting for space" ended $w2
expect_fail "and it failed" wait $w2
check_eq "pool mode is out_of_space" "$(dd_pool_field ddt-pool2 9)" out_of_space
check "a write in place still succeeds" \
	dd if=/dev/urandom of=$V2 bs=4096 seek=10 count=1 oflag=direct conv=notrunc
check "16 blocks are discarded" blkdiscard -o 0 -l 65536 $V2
check "a write that needs a block succeeds again" \
	dd if=/dev/urandom of=$V2 bs=4096 seek=2002 count=1 oflag=direct
check_eq "pool mode is rw" "$(dd_pool_field ddt-pool2 9)" rw
sh -c "echo $old_tmo >$TMO"
check "volume 2 is removed" dmsetup remove ddt-v2
check "pool 2 is removed" dmsetup remove ddt-pool2
check "its metadata checks clean" dd_check_metadata "$meta2"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
