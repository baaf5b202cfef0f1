#!/bin/sh
# Snapshots: a snapshot of a suspended volume shares all its blocks; both then diverge
# (overwrites, 512-byte writes, discards on each side) and each reads back exactly its
# own expected image.  Deleting the snapshot frees exactly the blocks only it held.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 128M) || die "cannot set up loop devices"
SZ=32768 # 16 MiB
BYTES=$((SZ * 512))
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
check "origin volume 1 is created" dd_volume_create ddt-pool 1 ddt-origin $SZ
O=/dev/mapper/ddt-origin
S=/dev/mapper/ddt-snap

head -c 12582912 /dev/urandom >"$DD_TMP/r"
head -c "$BYTES" /dev/zero >"$DD_TMP/o"
cp "$DD_TMP/o" "$DD_TMP/s"
put() { # put DEV IMAGE SKIP_512 SEEK_512 COUNT_512
	dd if="$DD_TMP/r" of="$3" bs=512 skip="$4" seek="$5" count="$6" conv=notrunc 2>/dev/null &&
		dd if="$DD_TMP/r" of="$2" bs=512 skip="$4" seek="$5" count="$6" conv=notrunc \
			oflag=direct 2>/dev/null
}
check "origin: 8 MiB written" put x $O "$DD_TMP/o" 0 0 16384
used=$(dd_pool_data_used ddt-pool)
check_eq "origin uses 2048 blocks" "$used" 2048

check "create_snap refuses a running origin" sh -c '! dmsetup message ddt-pool 0 create_snap 2 1'
check "origin is suspended" dmsetup suspend ddt-origin
check "snapshot 2 of volume 1" dmsetup message ddt-pool 0 create_snap 2 1
check "origin is resumed" dmsetup resume ddt-origin
cp "$DD_TMP/o" "$DD_TMP/s"
check "snapshot device is activated" dd_volume_activate ddt-pool 2 ddt-snap $SZ
check_eq "the snapshot uses no new block" "$(dd_pool_data_used ddt-pool)" 2048
check_eq "every block is shared" "$(dd_pool_field ddt-pool 5)" 2048
check_eq "the snapshot reads as the origin" "$(dd_sum $S)" "$(dd_sum "$DD_TMP/o")"

# Diverge both.
check "origin: overwrite 1 MiB" put x $O "$DD_TMP/o" 16384 2048 2048
check "origin: 512-byte writes into shared blocks" put x $O "$DD_TMP/o" 20000 101 3
check "snapshot: overwrite another 1 MiB" put x $S "$DD_TMP/s" 18432 8192 2048
check "snapshot: 512-byte write" put x $S "$DD_TMP/s" 21000 4099 1
check "snapshot: write beyond what the origin had" put x $S "$DD_TMP/s" 22000 20000 800
check "origin: discard 256 KiB (whole blocks)" blkdiscard -o 4194304 -l 262144 $O
dd if=/dev/zero of="$DD_TMP/o" bs=512 seek=8192 count=512 conv=notrunc 2>/dev/null
check "page cache is dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "origin reads back its own image" "$(dd_sum $O)" "$(dd_sum "$DD_TMP/o")"
check_eq "snapshot reads back its own image" "$(dd_sum $S)" "$(dd_sum "$DD_TMP/s")"
splits=$(dd_pool_field ddt-pool 8)
check "shared blocks were split ($splits cow splits)" test "$splits" -ge 512

check "snapshot device is removed" dmsetup remove ddt-snap
check "snapshot 2 is deleted" \
	dmsetup message ddt-pool 0 delete_volume 2
check "the reclaim finishes (no shared block left)" sh -c '
	for i in $(seq 50); do
		[ "$(dmsetup status ddt-pool | cut -d" " -f8)" = 0 ] && exit 0
		sleep 0.2
	done; exit 1'
origin_only=$(dmsetup status ddt-origin | cut -d' ' -f4)
check_eq "after deleting the snapshot, used blocks = the origin's" \
	"$(dd_pool_data_used ddt-pool)" "$origin_only"
check_eq "the origin is unchanged" "$(dd_sum $O)" "$(dd_sum "$DD_TMP/o")"
check "origin is removed" dmsetup remove ddt-origin
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
