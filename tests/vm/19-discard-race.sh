#!/bin/sh
# Discards that commit part-way, raced with I/O.  The metadata device is small (the
# minimum journal of 128 blocks), and volume A's blocks are scattered, one per map leaf
# or so, so that one discard of A's range dirties hundreds of leaves and commits inside
# the call.  While it runs, fio overwrites A's blocks in place with A's own pattern
# (0xa1) and writes new blocks of volume B.  No volume may ever see another's data:
#  1. a pool with room: B's fio verifies (crc32c), A's blocks hold 0xa1 or zeroes;
#  2. a full pool (error_if_no_space): B's writes fail until the discard frees A's
#     blocks, and then get them at once; every B block holds B's pattern (0xb2) or
#     zeroes, every A block 0xa1 or zeroes.
# Each round also checks that data used = mapped; the metadata checks clean.
# vm: timeout=400
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
FIO="fio --ioengine=libaio --direct=1 --group_reporting=0"
now() { cut -d' ' -f1 /proc/uptime; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }
mapped() { dmsetup status "$1" | cut -d' ' -f4; }
# pcheck TAG NAME PATTERN NBLOCKS FIO_ARGS...: read the volume's NBLOCKS blocks that fio
# selects; those that do not hold PATTERN must be exactly the unmapped ones (the volume
# writes nowhere else) and read as zeroes (fio shows the verify type a header would
# have there: 0 for zeroes).
pcheck() {
	_tag=$1 _name=$2 _pat=$3 _n=$4
	shift 4
	_m=$(mapped "$_name")
	$FIO --name=check --filename=/dev/mapper/"$_name" --bs=4k --iodepth=16 --verify=pattern \
		--verify_pattern="$_pat" --verify_fatal=0 --continue_on_error=verify "$@" \
		>"$DD_TMP/pcheck.out" 2>&1
	_notpat=$(grep -c 'pattern: verify failed' "$DD_TMP/pcheck.out")
	_nonzero=$(grep 'verify type mismatch' "$DD_TMP/pcheck.out" | grep -vc '(0 media')
	check_eq "$_tag: of $_n blocks, $_m mapped, those not $_pat are the unmapped ones" \
		"$_notpat" $((_n - _m))
	check_eq "$_tag: ... and read as zeroes" "$_nonzero" 0
	[ "$_nonzero" = 0 ] || grep -B1 'verify type mismatch' "$DD_TMP/pcheck.out" | grep -v '(0 media' |
		head -n 20 | sed 's/^/#   | /'
}
# used_is_mapped TAG POOL VOLUME...: data used equals the volumes' mapped blocks.
used_is_mapped() {
	_tag=$1 _pool=$2
	shift 2
	_sum=0
	for _v in "$@"; do
		_sum=$((_sum + $(mapped "$_v")))
	done
	check_eq "$_tag: data used = mapped blocks ($_sum)" "$(dd_pool_data_used "$_pool")" "$_sum"
}

log "--- 1. a pool with room"
meta=$(dd_loop 8M) && data=$(dd_loop 48M) || die "cannot set up loop devices"
A=/dev/mapper/ddt-a
B=/dev/mapper/ddt-b
ARANGE=1024 # MiB of A's address space: 2048 blocks, one every 512 KiB
check "pool of 12288 blocks, 8 MiB of metadata" dd_pool_create ddt-pool "$meta" "$data"
check_eq "the journal is the minimum, 128 blocks" \
	"$(dmsetup remove ddt-pool && dedup_dump "$meta" | awk '/^  journal  / {print $5}')" 128
check "pool is recreated" dd_pool_create ddt-pool "$meta" "$data"
check "volume A is created" dd_volume_create ddt-pool 1 ddt-a $((ARANGE * 2048))
check "volume B is created" dd_volume_create ddt-pool 2 ddt-b 65536
A_BLOCKS="--bs=4k --size=${ARANGE}M --io_size=8M" # fio: A's 2048 blocks, once each
for r in 1 2; do
	check "round $r: B's region is discarded (its blocks are freed)" \
		sh -c "blkdiscard -o 0 -l 16777216 $B && sync $B"
	check "round $r: A's 2048 scattered blocks are written" \
		$FIO --output="$DD_OUT/fio-a-fill-$r.txt" --name=a-fill --filename=$A --rw=write:508k \
		$A_BLOCKS --iodepth=16 --buffer_pattern=0xa1
	check "round $r: ... and committed" sync $A
	u0=$(dd_pool_data_used ddt-pool)
	t0=$(now)
	$FIO --output="$DD_OUT/fio-b-$r.txt" --name=b --filename=$B --rw=randwrite --bs=4k \
		--size=16M --iodepth=16 --verify=crc32c --verify_fatal=1 --verify_backlog=512 \
		--refill_buffers --randrepeat=0 &
	bpid=$!
	$FIO --output="$DD_OUT/fio-a-over-$r.txt" --name=a-over --filename=$A --rw=randwrite \
		--bs=4k --blockalign=512k --size=${ARANGE}M --time_based --runtime=3 --norandommap \
		--iodepth=16 --buffer_pattern=0xa1 --randrepeat=0 &
	apid=$!
	# The discards start once B is writing (data used grows).
	_i=0
	while [ "$(dd_pool_data_used ddt-pool)" -lt $((u0 + 64)) ] && [ $_i -lt 200 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	for d in 1 2; do
		t1=$(now)
		check "round $r: A's range is discarded while fio runs on A and B ($d)" \
			blkdiscard -o 0 -l $((ARANGE * 1048576)) $A
		log "round $r: discard $d took $(since $t1) s, then A had $(mapped ddt-a) blocks"
		sleep 0.3
	done
	check "round $r: fio on A (in-place overwrites of what is being discarded)" wait $apid
	check "round $r: fio on B (new blocks, crc32c verification) verifies" wait $bpid
	log "round $r: fio ended after $(since $t0) s; pool status $(dmsetup status ddt-pool)"
	pcheck "round $r: A" ddt-a 0xa1 2048 --rw=read:508k $A_BLOCKS
	used_is_mapped "round $r" ddt-pool ddt-a ddt-b
done
check "volumes are removed" sh -c "dmsetup remove ddt-a && dmsetup remove ddt-b"
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"

log "--- 2. a full pool: what the discard frees is handed out at once"
# 1024 blocks.  A2: 128 blocks, one every 2 MiB (one per map leaf: the unmap commits
# after some 80 of them).  B2 fills the rest (LBNs 0..895); then fio keeps 16 writes
# of new B2 blocks (LBNs 1024..4095) in flight, failing with ENOSPC until the discard
# of A2's range frees blocks.
meta2=$(dd_loop 8M) && data2=$(dd_loop 4M) || die "cannot set up loop devices"
check "pool 2: 1024 blocks, error_if_no_space" \
	dd_pool_create ddt-pool2 "$meta2" "$data2" 0 error_if_no_space
check "volume A2 is created" dd_volume_create ddt-pool2 1 ddt-a2 524288
check "volume B2 is created" dd_volume_create ddt-pool2 2 ddt-b2 32768
A2=/dev/mapper/ddt-a2
B2=/dev/mapper/ddt-b2
A2_BLOCKS="--bs=4k --size=256M --io_size=512k" # fio: A2's 128 blocks, once each
printf '\262%.0s' $(seq 4096) >"$DD_TMP/b2blk" || die "no pattern block"
for _ in $(seq 1024); do cat "$DD_TMP/b2blk"; done >"$DD_TMP/b2"
for r in 1 2 3 4; do
	check "full round $r: B2 is emptied" sh -c "blkdiscard $B2 && sync $B2"
	check "full round $r: A2's 128 blocks are written" \
		$FIO --output="$DD_OUT/fio-a2-fill-$r.txt" --name=a2-fill --filename=$A2 \
		--rw=write:2044k $A2_BLOCKS --iodepth=16 --buffer_pattern=0xa1
	# dd stops at the first ENOSPC.
	dd if="$DD_TMP/b2" of=$B2 bs=4096 count=1024 oflag=direct 2>/dev/null
	sync $B2
	check_eq "full round $r: B2 filled the pool" "$(dd_pool_field ddt-pool2 3)" 1024/1024
	$FIO --output="$DD_OUT/fio-a2-$r.txt" --name=a2-over --filename=$A2 --rw=randwrite --bs=4k \
		--blockalign=2m --size=256M --norandommap --time_based --runtime=2 --iodepth=16 \
		--buffer_pattern=0xa1 --randrepeat=0 --continue_on_error=write \
		--ignore_error=EIO,ENOSPC &
	apid=$!
	$FIO --output="$DD_OUT/fio-b2-$r.txt" --name=b2-new --filename=$B2 --rw=randwrite --bs=4k \
		--offset=4M --size=12M --norandommap --time_based --runtime=2 --iodepth=16 \
		--buffer_pattern=0xb2 --randrepeat=0 --continue_on_error=write \
		--ignore_error=EIO,ENOSPC &
	bpid=$!
	# Once B2's writes fail for want of space.
	_i=0
	while [ "$(dd_pool_field ddt-pool2 9)" != out_of_space ] && [ $_i -lt 200 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	sleep 0.2
	check "full round $r: A2's range is discarded" blkdiscard -o 0 -l 268435456 $A2
	wait $apid
	wait $bpid
	log "full round $r: B2 has $(mapped ddt-b2) blocks, A2 $(mapped ddt-a2);" \
		"$(dmsetup status ddt-pool2)"
	pcheck "full round $r: B2" ddt-b2 0xb2 4096 --rw=read --size=16M
	pcheck "full round $r: A2" ddt-a2 0xa1 128 --rw=read:2044k $A2_BLOCKS
	used_is_mapped "full round $r" ddt-pool2 ddt-a2 ddt-b2
done
check "volumes are removed" sh -c "dmsetup remove ddt-a2 && dmsetup remove ddt-b2"
check "pool 2 is removed" dmsetup remove ddt-pool2
check "its metadata checks clean" dd_check_metadata "$meta2"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
