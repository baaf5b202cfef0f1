#!/bin/sh
# Data integrity under load: fio writes with crc32c verification (verify_backlog and a
# full read-back) on three volumes at once: 4 KiB random overwrites, 512-byte writes
# (read-modify-write), unaligned 3.5 KiB writes and writes of 1-32 KiB, while another
# region is written and discarded over and over (it must read back as zeroes).  A
# snapshot in the middle makes the second pass split shared blocks, and the snapshot
# must not change.  No verify error, a clean kernel log and clean metadata.
# vm: timeout=900
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 64M) && data=$(dd_loop 768M) || die "cannot set up loop devices"
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
for v in 1 2 3; do
	check "volume $v is created" dd_volume_create ddt-pool $v ddt-v$v 262144
done

FIO="fio --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --verify_fatal=1
	--refill_buffers --randrepeat=0 --group_reporting=0"
# Four jobs on three volumes at once; each verifies its writes as it goes
# (verify_backlog) and reads everything back at the end.
run_fio() { # run_fio TAG
	$FIO --output="$DD_OUT/fio-$1.txt" \
		--name=v1-4k --filename=/dev/mapper/ddt-v1 --rw=randwrite --bs=4k \
		--size=64M --loops=2 --verify_backlog=256 \
		--name=v2-512 --filename=/dev/mapper/ddt-v2 --rw=randwrite --bs=512 \
		--size=8M --verify_backlog=512 \
		--name=v3-unaligned --filename=/dev/mapper/ddt-v3 --rw=randwrite --bs=3584 \
		--offset=512 --size=48M --verify_backlog=128 \
		--name=v3-sizes --filename=/dev/mapper/ddt-v3 --rw=write --bsrange=1k-32k \
		--blockalign=512 --offset=64M --size=32M
}
# Discards mixed in: a region of volume 1 fio does not use is written and discarded
# over and over while fio runs; it must read back as zeroes.
discard_loop() {
	i=0
	while [ ! -e "$DD_TMP/stop" ]; do
		dd if=/dev/urandom of=/dev/mapper/ddt-v1 bs=64k seek=$((1536 + i % 256)) count=8 \
			oflag=direct 2>/dev/null
		blkdiscard -o $(((1536 + i % 256) * 65536)) -l 524288 /dev/mapper/ddt-v1
		i=$((i + 1))
	done
	blkdiscard -o $((1536 * 65536)) -l $((264 * 65536)) /dev/mapper/ddt-v1
}
discard_loop &
dpid=$!
check "fio: first pass, no verify error" run_fio pass1
touch "$DD_TMP/stop"
wait $dpid
check_eq "the discarded region reads as zeroes" \
	"$(dd if=/dev/mapper/ddt-v1 bs=64k skip=1536 count=264 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(head -c $((264 * 65536)) /dev/zero | sha256sum | cut -d' ' -f1)"
discarded=$(dd_pool_field ddt-pool 7)
check "discards unmapped blocks ($discarded)" test "$discarded" -gt 0
check "volume 1 is suspended" dmsetup suspend ddt-v1
check "snapshot 4 of volume 1" dmsetup message ddt-pool 0 create_snap 4 1
check "volume 1 is resumed" dmsetup resume ddt-v1
check "snapshot 4 is activated" dd_volume_activate ddt-pool 4 ddt-v4 262144
snap_sum=$(dd_sum /dev/mapper/ddt-v4)
check_eq "the snapshot reads as volume 1" "$(dd_sum /dev/mapper/ddt-v1)" "$snap_sum"
check "fio: second pass, over shared blocks, no verify error" run_fio pass2
check_eq "the snapshot is untouched by the second pass" "$(dd_sum /dev/mapper/ddt-v4)" "$snap_sum"
check "snapshot 4 is removed" dmsetup remove ddt-v4
splits=$(dd_pool_field ddt-pool 8)
log "pool status: $(dmsetup status ddt-pool)"
check "writes after the snapshot split shared blocks ($splits)" test "$splits" -gt 0
for v in 1 2 3; do
	check "volume $v is removed" dmsetup remove ddt-v$v
done
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
