#!/bin/sh
# Reads and writes through a dedup volume behave like a disk: unmapped blocks read as
# zeroes, whole-block, partial (512-byte) and unaligned writes read back exactly,
# overwrites land, a second volume sees none of the first one's data, and the
# metadata checks clean after the pool is removed.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 128M) || die "cannot set up loop devices"

check "pool is created over a zeroed metadata device" dd_pool_create ddt-pool "$meta" "$data"
check "volume 1 is created" dd_volume_create ddt-pool 1 ddt-v1 65536
check "volume 2 is created" dd_volume_create ddt-pool 2 ddt-v2 65536
V1=/dev/mapper/ddt-v1
V2=/dev/mapper/ddt-v2
REF=$DD_TMP/ref1

check_eq "an unmapped volume reads as zeroes" \
	"$(dd_sum $V1)" "$(head -c 33554432 /dev/zero | sha256sum | cut -d' ' -f1)"
check_eq "a fresh pool maps nothing" "$(dd_pool_data_used ddt-pool)" 0

# A reference image, then the same writes to the volume: whole blocks, a 512-byte
# write, an unaligned 3 KiB write across a block boundary, an overwrite.
head -c 33554432 /dev/zero >"$REF"
w() { # w SRC_OFFSET_BYTES COUNT_BYTES DEST_OFFSET_BYTES
	head -c "$(($1 + $2))" "$DD_TMP/rand" | tail -c "$2" >"$DD_TMP/chunk"
	dd if="$DD_TMP/chunk" of="$REF" bs=512 seek=$(($3 / 512)) conv=notrunc 2>/dev/null &&
		dd if="$DD_TMP/chunk" of="$V1" bs=512 seek=$(($3 / 512)) conv=notrunc oflag=direct 2>/dev/null
}
head -c 4194304 /dev/urandom >"$DD_TMP/rand"
check "whole-block writes (1 MiB at 0)" w 0 1048576 0
check "a 512-byte write into an unmapped block" w 1048576 512 $((8 * 1048576 + 1024))
check "a 512-byte write into a mapped block" w 1049088 512 $((4096 * 3 + 512))
check "an unaligned 3 KiB write across two blocks" w 1050000 3072 $((16 * 1048576 + 2560))
check "an overwrite of mapped blocks" w 2097152 65536 8192
check "a write at the end of the volume" w 3000000 4096 $((33554432 - 4096))
check "page cache is dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "the volume reads back exactly the reference" "$(dd_sum $V1)" "$(dd_sum "$REF")"
check_eq "512-byte reads see the same data" \
	"$(dd if=$V1 bs=512 skip=16389 count=7 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(dd if="$REF" bs=512 skip=16389 count=7 2>/dev/null | sha256sum | cut -d' ' -f1)"
check_eq "volume 2 still reads as zeroes" \
	"$(dd_sum $V2)" "$(head -c 33554432 /dev/zero | sha256sum | cut -d' ' -f1)"

used=$(dd_pool_data_used ddt-pool)
# 256 blocks + 1 + 0 (already mapped) + 2 + 0 (overwrite of mapped) + 1
check_eq "data used counts the blocks written" "$used" 260
check_eq "volume 1 status: mapped blocks and highest block" \
	"$(dmsetup status ddt-v1 | cut -d' ' -f4-)" "260 8191"
check_eq "volume 2 status: nothing mapped" "$(dmsetup status ddt-v2 | cut -d' ' -f4-)" "0 -"
check_eq "pool mode is rw" "$(dd_pool_field ddt-pool 9)" rw
check_eq "pool needs no check" "$(dd_pool_field ddt-pool 10)" -

check "volume 1 is removed" dmsetup remove ddt-v1
check "volume 2 is removed" dmsetup remove ddt-v2
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
