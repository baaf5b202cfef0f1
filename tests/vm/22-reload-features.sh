#!/bin/sh
# What a pool's table and its reopening change for the volumes: ignore_discard set by a
# reload applies to a volume already active (its discards unmap nothing) and a reload
# without it restores discards; the count of zero writes elided (also those to unmapped
# blocks) survives the removal and recreation of the pool; a pool opened read_only
# reads, completes a whole-block zero write to an unmapped block (nothing to do) and
# refuses a zero write to a mapped block, a write in place to a block the volume owns
# exclusively and a write that needs a new block; nothing of it reached the data.
# vm: timeout=240 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 64M) || die "cannot set up loop devices"
M=$(dd_devno "$meta")
D=$(dd_devno "$data")
PS=$(dd_sectors "$data")
V=/dev/mapper/ddt-v
used() { dd_pool_data_used ddt-pool; }
# vsum [LBN COUNT]: checksum of blocks of the volume, read past the page cache.
vsum() {
	dd if=$V bs=4096 skip="${1:-0}" count="${2:-64}" iflag=direct 2>/dev/null |
		sha256sum | cut -d' ' -f1
}
reload() { # reload [FEATURE...]: the pool's table again, with these features
	_t="0 $PS dedup-pool $M $D 8 0"
	[ $# -gt 0 ] && _t="$_t $# $*"
	echo "$_t" | dmsetup load ddt-pool && dmsetup suspend ddt-pool && dmsetup resume ddt-pool
}

check "pool is created (discards processed)" dd_pool_create ddt-pool "$meta" "$data"
check "volume is created and active" dd_volume_create ddt-pool 1 ddt-v 65536
check "64 blocks are written" dd if=/dev/urandom of=$V bs=4096 count=64 oflag=direct conv=fsync
sum=$(vsum)
check_eq "data used 64" "$(used)" 64

log "--- ignore_discard set by a reload, the volume staying active"
check "the pool is reloaded with ignore_discard" reload ignore_discard
check_eq "the pool's table says so" "$(dmsetup table ddt-pool | cut -d' ' -f8-)" "1 ignore_discard"
check "a discard of blocks 0-31 on the volume completes" blkdiscard -o 0 -l 131072 $V
check "... and a flush" sync $V
check_eq "nothing was unmapped: data used 64" "$(used)" 64
check_eq "no block counted as discarded" "$(dd_pool_field ddt-pool 7)" 0
check_eq "the blocks read back" "$(vsum)" "$sum"
check "the pool is reloaded without it" reload
check "a discard of blocks 0-15 unmaps them" blkdiscard -o 0 -l 65536 $V
check_eq "data used 48" "$(used)" 48
check_eq "16 blocks counted as discarded" "$(dd_pool_field ddt-pool 7)" 16
check_eq "they read as zeroes" "$(vsum 0 16)" "$(dd_sum /dev/zero 65536)"
# The expected image of blocks 0-63 from here on.
dd if=/dev/zero of="$DD_TMP/img" bs=4096 count=16 2>/dev/null
dd if=$V bs=4096 skip=16 count=48 iflag=direct of="$DD_TMP/img" seek=16 2>/dev/null

log "--- zero writes elided, counted across a recreation of the pool"
z0=$(dd_pool_field ddt-pool 6)
check "8 whole-block zero writes over mapped blocks (16-23)" \
	dd if=/dev/zero of=$V bs=4096 seek=16 count=8 oflag=direct conv=notrunc
check "20 whole-block zero writes to unmapped blocks (1000-1019)" \
	dd if=/dev/zero of=$V bs=4096 seek=1000 count=20 oflag=direct conv=notrunc
check_eq "zero writes elided: $z0 + 28" "$(dd_pool_field ddt-pool 6)" $((z0 + 28))
check_eq "data used 40" "$(used)" 40
dd if=/dev/zero of="$DD_TMP/img" bs=4096 seek=16 count=8 conv=notrunc 2>/dev/null
sum=$(dd_sum "$DD_TMP/img")
check_eq "the volume reads as expected" "$(vsum)" "$sum"
check "devices are removed" sh -c "dmsetup remove ddt-v && dmsetup remove ddt-pool"
check "the metadata checks clean" dd_check_metadata "$meta"
check "the pool is recreated" dd_pool_create ddt-pool "$meta" "$data"
check_eq "zero writes elided still $((z0 + 28))" "$(dd_pool_field ddt-pool 6)" $((z0 + 28))
check "the volume is reactivated" dd_volume_activate ddt-pool 1 ddt-v 65536
check_eq "it reads as before" "$(vsum)" "$sum"
check "the pool is reloaded (suspend, load, resume)" reload
check_eq "zero writes elided still $((z0 + 28)) after the reload" "$(dd_pool_field ddt-pool 6)" \
	$((z0 + 28))
check "devices are removed" sh -c "dmsetup remove ddt-v && dmsetup remove ddt-pool"

log "--- read_only"
check "the pool is opened read_only" dd_pool_create ddt-pool "$meta" "$data" 0 read_only
check_eq "pool mode is ro" "$(dd_pool_field ddt-pool 9)" ro
check "the volume is activated" dd_volume_activate ddt-pool 1 ddt-v 65536
check_eq "reads work" "$(vsum)" "$sum"
check "a whole-block zero write to an unmapped block succeeds (nothing to do)" \
	dd if=/dev/zero of=$V bs=4096 seek=2000 count=1 oflag=direct conv=notrunc
expect_fail "a whole-block zero write to a mapped block fails (it would unmap)" \
	dd if=/dev/zero of=$V bs=4096 seek=40 count=1 oflag=direct conv=notrunc
expect_fail "a write in place to an exclusively owned block fails" \
	dd if=/dev/urandom of=$V bs=4096 seek=41 count=1 oflag=direct conv=notrunc
# (busybox dd falls back to the page cache for a 512-byte direct write: the fsync fails.)
expect_fail "a 512-byte write into one fails" \
	dd if=/dev/urandom of=$V bs=512 seek=$((42 * 8 + 3)) count=1 oflag=direct conv=notrunc,fsync
expect_fail "a write that needs a new block fails" \
	dd if=/dev/urandom of=$V bs=4096 seek=3000 count=1 oflag=direct conv=notrunc
check_eq "the volume still reads as before" "$(vsum)" "$sum"
check_eq "the pool still says data used 40" "$(used)" 40
check "devices are removed" sh -c "dmsetup remove ddt-v && dmsetup remove ddt-pool"
check "the metadata checks clean" dd_check_metadata "$meta"
check "the pool is recreated read-write" dd_pool_create ddt-pool "$meta" "$data"
check "the volume is reactivated" dd_volume_activate ddt-pool 1 ddt-v 65536
check_eq "nothing of the refused writes reached the data" "$(vsum)" "$sum"
check "a write in place works again" \
	dd if=/dev/urandom of=$V bs=4096 seek=41 count=1 oflag=direct conv=notrunc,fsync
dd if=$V bs=4096 skip=41 count=1 iflag=direct of="$DD_TMP/img" seek=41 conv=notrunc 2>/dev/null
check_eq "the volume reads as expected" "$(vsum)" "$(dd_sum "$DD_TMP/img")"
check_eq "data used still 40 (the write went in place)" "$(used)" 40
check "devices are removed" sh -c "dmsetup remove ddt-v && dmsetup remove ddt-pool"
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
