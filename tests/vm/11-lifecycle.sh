#!/bin/sh
# Lifecycle and persistence: a pool with three volumes is written, everything is
# removed and recreated from the same devices, and the contents are identical; then
# the guest reboots (second boot, same disk images) and they are identical again.
# vm: timeout=400 disks=3 disk_size=512M boots=2 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
set -- $DD_DISKS
[ $# -ge 3 ] || die "needs three disks, got: $DD_DISKS"
META=$1 DATA=$2 STATE=$3
SZ=65536 # sectors per volume (32 MiB)

create_all() {
	dd_pool_create ddt-pool "$META" "$DATA" &&
		dd_volume_activate ddt-pool 1 ddt-v1 $SZ &&
		dd_volume_activate ddt-pool 2 ddt-v2 $SZ &&
		dd_volume_activate ddt-pool 3 ddt-v3 $SZ
}
remove_all() {
	dmsetup remove ddt-v1 && dmsetup remove ddt-v2 && dmsetup remove ddt-v3 &&
		dmsetup remove ddt-pool
}
sums() {
	for v in 1 2 3; do
		printf '%s ' "$(dd_sum /dev/mapper/ddt-v$v)"
	done
	dd_pool_field ddt-pool 3
}

if [ "$DD_BOOT" = 1 ]; then
	check "pool is created" dd_pool_create ddt-pool "$META" "$DATA"
	for v in 1 2 3; do
		check "volume $v is created" dd_volume_create ddt-pool $v ddt-v$v $SZ
	done
	# Different data per volume, some of it shared, some partial blocks.
	head -c 8388608 /dev/urandom >"$DD_TMP/r"
	check "volume 1: 8 MiB of random data" \
		dd if="$DD_TMP/r" of=/dev/mapper/ddt-v1 bs=1M oflag=direct
	check "volume 2: the same 8 MiB at another offset" \
		dd if="$DD_TMP/r" of=/dev/mapper/ddt-v2 bs=1M seek=16 oflag=direct
	check "volume 3: scattered 512-byte writes" sh -c "
		for i in 1 7 100 1000 20000 60000; do
			dd if=$DD_TMP/r of=/dev/mapper/ddt-v3 bs=512 skip=\$i seek=\$i count=3 \
				oflag=direct conv=notrunc 2>/dev/null || exit 1
		done"
	before=$(sums)
	log "before: $before"
	check "everything is removed" remove_all
	check "everything is recreated from the same devices" create_all
	check_eq "contents and usage are identical after recreation" "$(sums)" "$before"
	check "everything is removed again" remove_all
	check "the metadata checks clean" dd_check_metadata "$META"
	check "the sums are kept for the second boot" \
		sh -c "printf '%s\n' '$before' | dd of=$STATE bs=4096 conv=sync 2>/dev/null"
else
	want=$(head -n1 "$STATE")
	log "from boot 1: $want"
	check "after a reboot: the pool and volumes are recreated" create_all
	check_eq "after a reboot: contents and usage are identical" "$(sums)" "$want"
	check "after a reboot: a volume takes new writes" \
		dd if=/dev/urandom of=/dev/mapper/ddt-v3 bs=4096 count=16 oflag=direct
	check "after a reboot: everything is removed" remove_all
	check "after a reboot: the metadata checks clean" dd_check_metadata "$META"
fi
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
