#!/bin/sh
# A data block freed in the open transaction is not handed out again before that
# transaction commits, even one allocated in it: in a pool with one free block, volume 1
# writes it and then overwrites it with a whole block of zeroes (which unmaps it); a
# write of volume 2 must wait for the commit instead of being given that block, whose
# freeing the commit passes down as a discard (a loop device over tmpfs, which
# honours discards: it would zero volume 2's data).  Volume 2's data reads back after
# the commit and after the pool is recreated; many rounds; and the same with
# error_if_no_space (the write waits for the commit instead of failing).
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
N=1024 # data blocks
ROUNDS=12
for r in $(seq 0 $ROUNDS); do
	head -c 4096 /dev/urandom >"$DD_TMP/b$r" || die "no random data"
done
bsum() { dd_sum "$DD_TMP/b$1"; }
# rd DEV LBN: the checksum of one block, read past the page cache.
rd() { dd if="$1" bs=4096 skip="$2" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
# wr DEV LBN FILE [fsync]: one block, direct (and an fsync: a flush, which commits).
wr() {
	dd if="$3" of="$1" bs=4096 seek="$2" count=1 oflag=direct conv=notrunc${4:+,$4} 2>/dev/null
}

# scenario TAG [FEATURE]: the whole sequence on a fresh pool.
scenario() {
	tag=$1
	shift
	meta=$(dd_loop 16M) && data=$(dd_loop $((N * 4))K) || die "$tag: cannot set up loop devices"
	check "$tag: a pool of exactly $N blocks" dd_pool_create ddt-pool "$meta" "$data" 0 "$@"
	check_eq "$tag: data total" "$(dd_pool_field ddt-pool 3)" "0/$N"
	check "$tag: volume 1" dd_volume_create ddt-pool 1 ddt-v1 2097152
	check "$tag: volume 2" dd_volume_create ddt-pool 2 ddt-v2 2097152
	V1=/dev/mapper/ddt-v1 V2=/dev/mapper/ddt-v2
	check "$tag: volume 1 fills all but one block, with an fsync" \
		dd if=/dev/urandom of=$V1 bs=4096 count=$((N - 1)) oflag=direct conv=fsync
	check_eq "$tag: data used $((N - 1))/$N" "$(dd_pool_field ddt-pool 3)" "$((N - 1))/$N"
	# Volume 1's blocks the rounds do not touch.
	v1rest() {
		dd if=$V1 bs=4096 count=$ROUNDS skip=$((ROUNDS + 1)) iflag=direct 2>/dev/null | sha256sum
	}
	v1sum=$(v1rest)

	bad=0
	for r in $(seq 0 $ROUNDS); do
		# Volume 1 takes the last free block and unmaps it again in the same
		# transaction; volume 2 then needs a block.
		wr $V1 $((100000 + r)) "$DD_TMP/b$r" || fail "$tag round $r: volume 1 writes the last free block"
		used=$(dd_pool_data_used ddt-pool)
		[ "$used" = $N ] || fail "$tag round $r: data used $used after it, not $N"
		wr $V1 $((100000 + r)) /dev/zero || fail "$tag round $r: volume 1 overwrites it with zeroes"
		used=$(dd_pool_data_used ddt-pool)
		[ "$used" = $((N - 1)) ] ||
			fail "$tag round $r: data used $used after the zero write, not $((N - 1))"
		wr $V2 $((5000 + r)) "$DD_TMP/b$r" fsync ||
			fail "$tag round $r: volume 2 writes a block with an fsync"
		got=$(rd $V2 $((5000 + r)))
		if [ "$got" != "$(bsum $r)" ]; then
			fail "$tag round $r: volume 2's block reads back after the commit"
			bad=$((bad + 1))
		fi
		# One of volume 1's blocks is discarded and committed: again one free block.
		blkdiscard -o $((r * 4096)) -l 4096 $V1 && sync $V1 ||
			fail "$tag round $r: volume 1 discards one block"
	done
	check_eq "$tag: volume 2's blocks read back after every commit ($ROUNDS+1 rounds)" "$bad" 0
	check_eq "$tag: volume 1's other blocks are intact" "$(v1rest)" "$v1sum"
	check_eq "$tag: volume 1's zeroed blocks read as zeroes" "$(rd $V1 100000)" \
		"$(dd_sum /dev/zero 4096)"
	check_eq "$tag: data used $((N - 1)) = mapped" \
		"$(dd_pool_data_used ddt-pool) $(dd_pool_field ddt-pool 4)" "$((N - 1)) $((N - 1))"
	check "$tag: everything is removed" \
		sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-v2 && dmsetup remove ddt-pool"
	check "$tag: the metadata checks clean" dd_check_metadata "$meta"
	check "$tag: the pool is recreated" dd_pool_create ddt-pool "$meta" "$data" 0 "$@"
	check "$tag: volume 2 is reactivated" dd_volume_activate ddt-pool 2 ddt-v2 2097152
	bad=0
	for r in $(seq 0 $ROUNDS); do
		[ "$(rd $V2 $((5000 + r)))" = "$(bsum $r)" ] || bad=$((bad + 1))
	done
	check_eq "$tag: after the recreation volume 2's blocks hold their data" "$bad" 0
	check "$tag: everything is removed" sh -c "dmsetup remove ddt-v2 && dmsetup remove ddt-pool"
	check "$tag: the metadata checks clean" dd_check_metadata "$meta"
}

scenario default
scenario error_if_no_space error_if_no_space
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
