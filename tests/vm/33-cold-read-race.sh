#!/bin/sh
# A block a read looked up is not reused while the read is in flight, on each of the
# three read paths: a read over two blocks that misses the lookup cache (the worker
# looks them up a run at a time, each run read by a clone counted in the epoch), a
# one-block read that misses it (the worker's one-block read) and a read over two
# blocks the cache answers (map()'s fast path).  Deterministic: the data device delays
# reads by 2 s (dm-delay); the pool has exactly one free block; volume A's blocks are
# shared with a snapshot.  While the read of A's blocks 0-1 waits in the delay, A's
# block 0 is overwritten (it moves to the free block), the snapshot is deleted (A's old
# block 0 is freed) and volume B writes a block, which can only get that freed block
# and commits to get it.  The read must return A's old or A's new data, never B's or
# the zeroes of a discard passed down; B's block and A's read back afterwards.  With
# the worker's read clones not counted in the epoch, the two-block cold read returned
# B's data.
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-delay || die "no dm-delay"
N=512 # data blocks
head -c $((N * 4096)) /dev/urandom >"$DD_TMP/old" || die "no random data"
head -c 4096 /dev/urandom >"$DD_TMP/new0" && head -c 4096 /dev/urandom >"$DD_TMP/bdata" ||
	die "no random data"
sum() { sha256sum | cut -d' ' -f1; }
# The two answers a read of A's blocks 0..K-1 may give: all old, or block 0 new.
old_of() { head -c $(($1 * 4096)) "$DD_TMP/old" | sum; }
new_of() {
	{ cat "$DD_TMP/new0"; dd if="$DD_TMP/old" bs=4096 skip=1 count=$(($1 - 1)) 2>/dev/null; } | sum
}

# scenario TAG BLOCKS WARM: the sequence on a fresh pool, reading BLOCKS blocks from A's
# block 0 (WARM=1: the cache holds them, the read takes map()'s fast path).
scenario() {
	tag=$1 k=$2 warm=$3
	meta=$(dd_loop 16M) && data=$(dd_loop $((N * 4))K) || die "$tag: cannot set up loop devices"
	check "$tag: data reads are delayed by 2 s" \
		sh -c "echo '0 $(dd_sectors "$data") delay $data 0 2000 $data 0 0' | dmsetup create ddt-data"
	check "$tag: a pool of exactly $N blocks" dd_pool_create ddt-pool "$meta" /dev/mapper/ddt-data
	check "$tag: volumes A and B" sh -c "dmsetup message ddt-pool 0 create_volume 1 &&
		echo '0 $(((N - 1) * 8)) dedup /dev/mapper/ddt-pool 1' | dmsetup create ddt-a &&
		dmsetup message ddt-pool 0 create_volume 2 &&
		echo '0 2048 dedup /dev/mapper/ddt-pool 2' | dmsetup create ddt-b"
	A=/dev/mapper/ddt-a B=/dev/mapper/ddt-b
	# In reverse order: A's blocks 0 and 1 are not at consecutive PBNs (two runs).
	for i in $(seq $((N - 2)) -1 0); do
		dd if="$DD_TMP/old" of=$A bs=4096 skip="$i" seek="$i" count=1 oflag=direct \
			conv=notrunc 2>/dev/null || fail "$tag: A's block $i is not written"
	done
	check_eq "$tag: A fills all but one block" "$(dd_pool_data_used ddt-pool)" $((N - 1))
	check "$tag: a snapshot of A shares its blocks (the lookup cache is emptied)" \
		sh -c "dmsetup suspend ddt-a && dmsetup message ddt-pool 0 create_snap 3 1 &&
			dmsetup resume ddt-a"
	if [ "$warm" = 1 ]; then
		# Not delayed for long: the mappings go into the cache with this read.
		check "$tag: A's blocks 0-$((k - 1)) are read once (into the lookup cache)" \
			dd if=$A of=/dev/null bs=$((k * 4096)) count=1 iflag=direct
	fi
	dd if=$A of="$DD_TMP/got" bs=$((k * 4096)) count=1 iflag=direct 2>/dev/null &
	rpid=$!
	sleep 0.3
	check "$tag: A's block 0 is overwritten while the read waits (it moves to the free block)" \
		dd if="$DD_TMP/new0" of=$A bs=4096 count=1 oflag=direct conv=notrunc
	check "$tag: the snapshot is deleted (A's old block 0 is freed)" \
		dmsetup message ddt-pool 0 delete_volume 3
	check "$tag: B writes a block: it can only get A's old block 0" \
		dd if="$DD_TMP/bdata" of=$B bs=4096 count=1 oflag=direct conv=notrunc,fsync
	check "$tag: the read completes" wait $rpid
	got=$(sum <"$DD_TMP/got")
	if [ "$got" = "$(old_of "$k")" ]; then
		log "$tag: the read returned A's old data"
	elif [ "$got" = "$(new_of "$k")" ]; then
		log "$tag: the read returned A's new data"
	else
		b0=$(head -c 4096 "$DD_TMP/got" | sum)
		[ "$b0" = "$(sum <"$DD_TMP/bdata")" ] && log "$tag: its block 0 holds B's data"
		[ "$b0" = "$(head -c 4096 /dev/zero | sum)" ] && log "$tag: its block 0 holds zeroes"
	fi
	check "$tag: the read returned A's old or new data (not B's, not zeroes)" \
		test "$got" = "$(old_of "$k")" -o "$got" = "$(new_of "$k")"
	check_eq "$tag: B's block reads back" "$(dd if=$B bs=4096 count=1 iflag=direct 2>/dev/null | sum)" \
		"$(sum <"$DD_TMP/bdata")"
	check_eq "$tag: A reads back with its new block 0" \
		"$(dd if=$A bs=1M iflag=direct 2>/dev/null | sum)" \
		"$({ cat "$DD_TMP/new0"; dd if="$DD_TMP/old" bs=4096 skip=1 count=$((N - 2)) \
			2>/dev/null; } | sum)"
	check_eq "$tag: data used = mapped blocks" "$(dd_pool_data_used ddt-pool)" $N
	check "$tag: volumes and pool are removed" sh -c "dmsetup remove ddt-a && dmsetup remove ddt-b &&
		dmsetup remove ddt-pool && dmsetup remove ddt-data"
	check "$tag: the metadata checks clean" dd_check_metadata "$meta"
}

scenario "cold two-block read" 2 0
scenario "cold one-block read" 1 0
scenario "cached two-block read" 2 1
finish
