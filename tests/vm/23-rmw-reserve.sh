#!/bin/sh
# Read-modify-write with a reserve of one page (module parameter rmw_pages=1): many
# concurrent 512-byte and unaligned writes to new blocks on three volumes (and, after a
# snapshot, into shared blocks, whose old contents are read), mixed with whole-block
# writes, all wait their turn for the one page and complete (no hang: the harness fails
# hung tasks and timeouts), and fio verifies every byte.
# vm: timeout=400
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
check "dm-dedup loads with rmw_pages=1" dd_load_module rmw_pages=1
check_eq "the parameter is set" "$(dd_module_param rmw_pages)" 1
meta=$(dd_loop 16M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
for v in 1 2 3; do
	check "volume $v is created" dd_volume_create ddt-pool $v ddt-v$v 131072
done

FIO="fio --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 --refill_buffers
	--randrepeat=0 --group_reporting=0"
# Every job writes its whole region (new blocks: each partial write is a
# read-modify-write) and reads it back to verify.
run_fio() { # run_fio TAG
	$FIO --output="$DD_OUT/fio-$1.txt" \
		--name=v1-512 --filename=/dev/mapper/ddt-v1 --rw=randwrite --bs=512 --iodepth=32 \
		--size=2M \
		--name=v1-512-each-block --filename=/dev/mapper/ddt-v1 --rw=write:3584 --bs=512 \
		--iodepth=32 --offset=32M --size=16M \
		--name=v1-4k --filename=/dev/mapper/ddt-v1 --rw=randwrite --bs=4k --iodepth=16 \
		--offset=16M --size=8M \
		--name=v2-512 --filename=/dev/mapper/ddt-v2 --rw=randwrite --bs=512 --iodepth=32 \
		--size=2M \
		--name=v2-unaligned --filename=/dev/mapper/ddt-v2 --rw=randwrite --bs=3584 \
		--iodepth=16 --offset=16M --size=7M \
		--name=v3-sizes --filename=/dev/mapper/ddt-v3 --rw=randwrite --bsrange=512-12k \
		--blockalign=512 --iodepth=16 --size=6M \
		--name=v3-1k --filename=/dev/mapper/ddt-v3 --rw=randwrite --bs=1k --iodepth=32 \
		--offset=32M --size=2M
}
check "fio: partial writes to new blocks, one RMW page, no verify error" run_fio pass1
log "pool status: $(dmsetup status ddt-pool)"
check "volume 1 is suspended" dmsetup suspend ddt-v1
check "snapshot 4 of volume 1" dmsetup message ddt-pool 0 create_snap 4 1
check "volume 1 is resumed" dmsetup resume ddt-v1
check "snapshot 4 is activated" dd_volume_activate ddt-pool 4 ddt-v4 131072
snap=$(dd if=/dev/mapper/ddt-v4 bs=1M count=48 iflag=direct 2>/dev/null | sha256sum)
check "fio: again, now also into shared blocks (RMW reads the old block)" run_fio pass2
splits=$(dd_pool_field ddt-pool 8)
check "the second pass split shared blocks ($splits)" test "$splits" -gt 0
check_eq "the snapshot is untouched" \
	"$(dd if=/dev/mapper/ddt-v4 bs=1M count=48 iflag=direct 2>/dev/null | sha256sum)" "$snap"
log "pool status: $(dmsetup status ddt-pool)"
for v in 4 1 2 3; do
	check "volume $v is removed" dmsetup remove ddt-v$v
done
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
