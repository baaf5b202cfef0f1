#!/bin/sh
# Zero-block elision and discard move the data-used count exactly: whole-block writes
# of zeroes unmap (or, to unmapped blocks, change nothing), partial zero writes and
# partial discards are stored/ignored, whole-block discards unmap; the skip_zero_detect
# feature stores zero blocks; blocks freed by a commit are discarded on the data
# device unless no_discard_passdown.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 64M) && meta2=$(dd_loop 16M) && data2=$(dd_loop 64M) ||
	die "cannot set up loop devices"
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
check "volume is created" dd_volume_create ddt-pool 1 ddt-v 32768
V=/dev/mapper/ddt-v
used() { dd_pool_data_used ddt-pool; }

check "1000 blocks of random data" dd if=/dev/urandom of=$V bs=4096 count=1000 oflag=direct
check_eq "data used 1000" "$(used)" 1000
check "100 whole blocks of zeroes over mapped blocks" \
	dd if=/dev/zero of=$V bs=4096 seek=100 count=100 oflag=direct
check_eq "data used 900: the zero blocks were unmapped" "$(used)" 900
check_eq "zero writes elided: 100" "$(dd_pool_field ddt-pool 6)" 100
check "50 whole blocks of zeroes over unmapped blocks" \
	dd if=/dev/zero of=$V bs=4096 seek=2000 count=50 oflag=direct
check_eq "data used still 900" "$(used)" 900
check_eq "zero writes elided: 150" "$(dd_pool_field ddt-pool 6)" 150
check "a partial zero write (2 KiB) into a mapped block" \
	dd if=/dev/zero of=$V bs=2048 seek=1000 count=1 oflag=direct
check_eq "data used still 900: partial zeroes are stored" "$(used)" 900
check_eq "zeroed blocks read as zeroes" \
	"$(dd if=$V bs=4096 skip=100 count=100 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(head -c 409600 /dev/zero | sha256sum | cut -d' ' -f1)"

check "discard 200 whole blocks (800-999)" blkdiscard -o 3276800 -l 819200 $V
check_eq "data used 700" "$(used)" 700
check_eq "discarded blocks: 200" "$(dd_pool_field ddt-pool 7)" 200
check "discard a partial block range (1 KiB inside block 10)" \
	blkdiscard -o $((10 * 4096 + 1024)) -l 1024 $V
check_eq "data used still 700: partial discards unmap nothing" "$(used)" 700
check "discard straddling blocks 20-22 unaligned" \
	blkdiscard -o $((20 * 4096 + 512)) -l $((3 * 4096 - 1024)) $V
check_eq "only block 21 (the one fully covered) is unmapped" "$(used)" 699
check_eq "discarded blocks read as zeroes" \
	"$(dd if=$V bs=4096 skip=800 count=200 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(head -c 819200 /dev/zero | sha256sum | cut -d' ' -f1)"
check "volume is removed" dmsetup remove ddt-v
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"

log "--- skip_zero_detect"
check "pool with skip_zero_detect" dd_pool_create ddt-pool2 "$meta2" "$data2" 0 skip_zero_detect
check "volume is created" dd_volume_create ddt-pool2 1 ddt-v2 32768
check "100 blocks of zeroes" dd if=/dev/zero of=/dev/mapper/ddt-v2 bs=4096 count=100 oflag=direct
check_eq "zero blocks are stored" "$(dd_pool_data_used ddt-pool2)" 100
check_eq "no zero write elided" "$(dd_pool_field ddt-pool2 6)" 0
check "volume is removed" dmsetup remove ddt-v2
check "pool is removed" dmsetup remove ddt-pool2
check "the metadata checks clean" dd_check_metadata "$meta2"
log "--- discard passdown"
# The first blocks a fresh pool allocates are data blocks 0, 1, ...: after the
# commit that frees them they are discarded on the data device (a loop device over
# tmpfs, where a discard punches a hole that reads back as zeroes), unless
# no_discard_passdown.
ZERO64K=$(head -c 65536 /dev/zero | sha256sum | cut -d' ' -f1)
raw16() { dd if=/dev/mapper/$1 bs=4096 count=16 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
for mode in passdown no_discard_passdown; do
	m=$(dd_loop 16M) && d=$(dd_loop 64M) || die "loop devices"
	if [ $mode = passdown ]; then feat=; else feat="0 no_discard_passdown"; fi
	check "$mode: pool" dd_pool_create ddt-pp "$m" "$d" $feat
	check "$mode: volume" dd_volume_create ddt-pp 1 ddt-pv 32768
	check "$mode: 16 blocks written" \
		dd if=/dev/urandom of=/dev/mapper/ddt-pv bs=4096 count=16 oflag=direct
	check "$mode: they are on data blocks 0-15" test "$(raw16 ddt-pp)" != "$ZERO64K"
	check "$mode: discarded, then a flush commits" \
		sh -c 'blkdiscard -o 0 -l 65536 /dev/mapper/ddt-pv && sync /dev/mapper/ddt-pv'
	check "$mode: ... and a write with an fsync" \
		dd if=/dev/urandom of=/dev/mapper/ddt-pv bs=4096 seek=100 count=1 oflag=direct conv=fsync
	if [ $mode = passdown ]; then
		check_eq "passdown: the data device was discarded" "$(raw16 ddt-pp)" "$ZERO64K"
	else
		check "no_discard_passdown: the data device still holds the data" \
			test "$(raw16 ddt-pp)" != "$ZERO64K"
	fi
	check "$mode: volume removed" dmsetup remove ddt-pv
	check "$mode: pool removed" dmsetup remove ddt-pp
	check "$mode: the metadata checks clean" dd_check_metadata "$m"
done
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
