#!/bin/sh
# Background work stops when the pool is suspended or removed: a pool removed (or
# suspended) while a deleted volume is still being freed must not touch its
# metadata afterwards (a use-after-free crashed the kernel: the freeing re-queued
# itself past the flush), the metadata checks clean, nothing is freed while the pool
# is suspended, and the freeing resumes when the pool comes back.  The metadata
# device delays its reads (dm-delay) so that the freeing takes seconds.
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-delay || die "no dm-delay"
meta=$(dd_loop 16M) && data=$(dd_loop 128M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
M=/dev/mapper/ddt-meta
meta_table() { # meta_table TABLE: switch the metadata device's table
	echo "$1" | dmsetup load ddt-meta && dmsetup suspend --noflush ddt-meta &&
		dmsetup resume ddt-meta
}
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"

# setup ID: a pool whose volume ID holds 32 MiB written in random order, then the
# pool is recreated (a cold metadata cache) with metadata reads delayed by 50 ms.
setup() {
	check "volume $1: pool" dd_pool_create ddt-pool $M "$data" &&
	check "volume $1: created" dd_volume_create ddt-pool "$1" ddt-v 131072 &&
	check "volume $1: 32 MiB written in random order" \
		fio --name=w --filename=/dev/mapper/ddt-v --rw=randwrite --bs=4k --size=32M \
			--ioengine=libaio --direct=1 --iodepth=16 --randrepeat=0 --output=/dev/null &&
	check "volume $1: devices removed" sh -c "dmsetup remove ddt-v && dmsetup remove ddt-pool" &&
	check "volume $1: pool recreated" dd_pool_create ddt-pool $M "$data" &&
	check "volume $1: metadata reads delayed" meta_table "0 $MS delay $meta 0 50 $meta 0 0"
}

setup 1
check "delete_volume 1, then the pool removed at once" \
	sh -c "dmsetup message ddt-pool 0 delete_volume 1 && dmsetup remove ddt-pool"
check "metadata reads undelayed" meta_table "0 $MS linear $meta 0"
check "the metadata checks clean" dd_check_metadata $M
check_eq "volume 1 is still being deleted (the removal came in the middle)" \
	"$(dedup_dump $M | awk '$1 == 1 {print $2}')" valid,deleting

log "--- suspend in the middle of the freeing"
setup 2
check "delete_volume 2, then the pool suspended at once" \
	sh -c "dmsetup message ddt-pool 0 delete_volume 2 && dmsetup suspend ddt-pool"
used1=$(dd_pool_data_used ddt-pool)
sleep 3
used2=$(dd_pool_data_used ddt-pool)
log "data used while suspended: $used1, 3 s later $used2"
check "the freeing had not ended at the suspend" test "$used1" -gt 0
check_eq "nothing is freed while the pool is suspended" "$used2" "$used1"
check "metadata reads undelayed" meta_table "0 $MS linear $meta 0"
check "the pool resumes" dmsetup resume ddt-pool
t=0
while [ $t -lt 60 ] && [ "$(dd_pool_data_used ddt-pool)" != 0 ]; do
	sleep 1
	t=$((t + 1))
done
check_eq "after the resume both volumes are freed" "$(dd_pool_data_used ddt-pool)" 0
check "both ids can be used again" \
	sh -c "dmsetup message ddt-pool 0 create_volume 1 && dmsetup message ddt-pool 0 create_volume 2"
check "pool removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata $M
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
