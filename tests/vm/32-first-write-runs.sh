#!/bin/sh
# Writes over several blocks that need new blocks (first writes, and writes over shared
# blocks), which the worker serves as one bio per run of free blocks (segments under one
# cell; dm-dedup-io.c) instead of one block per worker pass.  Checked here:
#  1. 1 MiB first writes to a fresh volume reach the data device as large bios, on
#     consecutive blocks (the read-back is not split either), and read back exactly;
#  2. FUA: 1 MiB first writes with O_DSYNC complete only once their mappings are
#     committed: right after the last one returns, the metadata device drops every
#     write (the crash); the pool is reopened and every such write reads back;
#  3. free space in pieces of four blocks: each 1 MiB write is written in 64 segments,
#     reads back exactly, and the data around the pieces is untouched;
#  4. the pool runs out of space in the middle of a 1 MiB write: the write waits, and
#     completes with the right data once a discard frees blocks;
#  5. the race: 64 KiB in-place writes and first writes to a volume whose range is
#     discarded again and again, each discard committing part-way (small journal), while
#     another volume's fio writes 4k-1m bios with crc32c verification: that volume
#     verifies, every mapped block of the first holds its own pattern, data used =
#     mapped blocks.
# Clean metadata and kernel log.
# vm: timeout=900
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-flakey || die "no dm-flakey"
MiB=1048576
FIO="fio --ioengine=libaio --direct=1 --group_reporting=0"
mapped() { dmsetup status "$1" | cut -d' ' -f4; }
drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }
# r DEV OFF LEN: sha256 of LEN bytes from byte OFF, read with 1 MiB bios.
r() {
	dd if="$1" bs=$MiB skip="$2" count="$3" iflag=direct,skip_bytes,count_bytes 2>/dev/null |
		sha256sum | cut -d' ' -f1
}
# Bios the data device's queue received (completed + merged requests).
data_bios() { # data_bios DEV read|write
	if [ "$2" = read ]; then
		awk -v d="${1#/dev/}" '$3 == d {print $4 + $5}' /proc/diskstats
	else
		awk -v d="${1#/dev/}" '$3 == d {print $8 + $9}' /proc/diskstats
	fi
}
head -c $((16 * MiB)) /dev/urandom >"$DD_TMP/rand"

log "--- 1. sequential first writes"
meta=$(dd_loop 32M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"
M=/dev/mapper/ddt-meta
check "pool is created" dd_pool_create ddt-pool $M "$data"
check "volume 1 is created" dd_volume_create ddt-pool 1 ddt-v1 65536
b0=$(data_bios "$data" write)
check "16 MiB of first writes in 1 MiB bios" \
	dd if="$DD_TMP/rand" of=/dev/mapper/ddt-v1 bs=$MiB count=16 oflag=direct
b1=$(data_bios "$data" write)
log "16 MiB of first writes: $((b1 - b0)) bios at the data device"
check "they are not split per block ($((b1 - b0)) bios, 4096 if split)" \
	test $((b1 - b0)) -le 256
check_eq "data used" "$(dd_pool_data_used ddt-pool)" 4096
check "page cache is dropped" drop_caches
check_eq "volume 1 reads back (1 MiB reads)" "$(r /dev/mapper/ddt-v1 0 $((16 * MiB)))" \
	"$(dd_sum "$DD_TMP/rand")"
b0=$(data_bios "$data" read)
r /dev/mapper/ddt-v1 0 $((16 * MiB)) >/dev/null
b1=$(data_bios "$data" read)
check "the blocks are consecutive: the read-back is not split ($((b1 - b0)) bios)" \
	test $((b1 - b0)) -le 256

log "--- 2. FUA first writes survive a crash right after they complete"
check "volume 2 is created" dd_volume_create ddt-pool 2 ddt-v2 65536
check "a table that drops every write is loaded (inactive) for the metadata device" \
	sh -c "echo '0 $MS flakey $meta 0 0 1 1 drop_writes' | dmsetup load ddt-meta"
# fio puts a verification header (crc32c, offset) in every 4 KiB block.  Asynchronous
# O_DSYNC direct writes are FUA writes with no flush after them (a synchronous one is
# followed by a flush, which would commit anyway).
FUAJOB="--name=fua --filename=/dev/mapper/ddt-v2 --rw=write --bs=1m --size=8M --ioengine=libaio"
FUAJOB="$FUAJOB --direct=1 --verify=crc32c --verify_interval=4096"
check "8 MiB of 1 MiB first writes with O_DSYNC (FUA); at once the metadata drops writes" \
	sh -c "fio $FUAJOB --sync=dsync --do_verify=0 --output=$DD_OUT/fio-fua.txt &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
check "devices are removed (nothing they write reaches the metadata)" \
	sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-v2 && dmsetup remove ddt-pool"
check "the metadata device works again" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup load ddt-meta &&
		dmsetup suspend ddt-meta && dmsetup resume ddt-meta"
check "the metadata after the crash checks clean" dedup_check $M
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
check "volume 2 is reactivated" dd_volume_activate ddt-pool 2 ddt-v2 65536
check "every FUA write reads back (fio verifies every block)" \
	fio $FUAJOB --verify_only --output="$DD_OUT/fio-fua-verify.txt"
check "volume 2 is removed" dmsetup remove ddt-v2
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$M"
dmsetup remove ddt-meta

log "--- 3. free space in pieces of four blocks"
meta3=$(dd_loop 16M) && data3=$(dd_loop 16M) || die "cannot set up loop devices"
check "pool 3: 4096 blocks" dd_pool_create ddt-pool3 "$meta3" "$data3"
check "volume A is created" dd_volume_create ddt-pool3 1 ddt-a 32768
check "volume B is created" dd_volume_create ddt-pool3 2 ddt-b 32768
A=/dev/mapper/ddt-a
B=/dev/mapper/ddt-b
check "A fills the pool" dd if="$DD_TMP/rand" of=$A bs=$MiB count=16 oflag=direct
check_eq "the pool is full" "$(dd_pool_field ddt-pool3 3)" 4096/4096
# Every other 16 KiB of A is discarded: 512 discards of 16 KiB at 0, 32 KiB, 64 KiB, ...,
# one after the other, issued by one fio (rw=trim with 16 KiB holes) rather than by 512
# blkdiscard processes.
holes() {
	fio --name=holes --filename=$A --ioengine=psync --rw=trim:16k --bs=16k --size=16M \
		--output="$DD_OUT/fio-holes.txt"
}
check "every other 16 KiB of A is discarded" holes
check "... and committed" sync $A
sleep 1.2
check_eq "2048 blocks are free" "$(dd_pool_field ddt-pool3 3)" 2048/4096
b0=$(data_bios "$data3" write)
check "B: 4 MiB in 1 MiB first writes into the pieces" \
	dd if="$DD_TMP/rand" of=$B bs=$MiB count=4 skip=8 oflag=direct
b1=$(data_bios "$data3" write)
log "4 MiB into 4-block pieces: $((b1 - b0)) bios at the data device"
check "written in runs of the free pieces ($((b1 - b0)) bios, 1024 if per block)" \
	test $((b1 - b0)) -le 320
check "page cache is dropped" drop_caches
check_eq "B reads back" "$(r $B 0 $((4 * MiB)))" \
	"$(dd if="$DD_TMP/rand" bs=$MiB skip=8 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
# A's reference: its data with every other 16 KiB zeroed (one fio writes the zeroes at
# 0, 32 KiB, 64 KiB, ... of the copy; 512 dd processes did the same).
cp "$DD_TMP/rand" "$DD_TMP/aref"
fio --name=aref --filename="$DD_TMP/aref" --ioengine=psync --rw=write:16k --bs=16k \
	--size=16M --zero_buffers --output=/dev/null
check_eq "A is untouched around the pieces" "$(r $A 0 $((16 * MiB)))" "$(dd_sum "$DD_TMP/aref")"

log "--- 4. out of space in the middle of a 1 MiB write"
check_eq "1024 blocks are free" "$(dd_pool_field ddt-pool3 3)" 3072/4096
dd if="$DD_TMP/rand" of=$B bs=$MiB count=8 seek=4 oflag=direct 2>"$DD_TMP/dd4.err" &
ddpid=$!
waited() {
	_i=0
	while [ "$(dd_pool_field ddt-pool3 9)" != out_of_space ] && [ $_i -lt 200 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ "$(dd_pool_field ddt-pool3 9)" = out_of_space ]
}
check "the pool runs out of data space during the writes" waited
check "the writer still waits" kill -0 $ddpid
check "A is discarded whole (2048 blocks freed)" blkdiscard $A
check "the waiting 1 MiB write completes once they are usable" wait $ddpid
cat "$DD_TMP/dd4.err" | sed 's/^/# /'
check "page cache is dropped" drop_caches
check_eq "B reads back all 12 MiB" "$(r $B 0 $((12 * MiB)))" \
	"$( (dd if="$DD_TMP/rand" bs=$MiB skip=8 count=4; dd if="$DD_TMP/rand" bs=$MiB count=8) \
		2>/dev/null | sha256sum | cut -d' ' -f1)"
check_eq "data used = B's blocks" "$(dd_pool_data_used ddt-pool3)" 3072
check "volumes are removed" sh -c "dmsetup remove ddt-a && dmsetup remove ddt-b"
check "pool 3 is removed" dmsetup remove ddt-pool3
check "its metadata checks clean" dd_check_metadata "$meta3"

log "--- 5. large writes raced with discards that commit part-way"
meta5=$(dd_loop 8M) && data5=$(dd_loop 256M) || die "cannot set up loop devices"
check "pool 5, minimum journal" dd_pool_create ddt-pool5 "$meta5" "$data5"
ARANGE=1024 # MiB of A's address space: a 64 KiB chunk every 512 KiB
check "volume A is created" dd_volume_create ddt-pool5 1 ddt-a $((ARANGE * 2048))
check "volume B is created" dd_volume_create ddt-pool5 2 ddt-b 196608
A_CHUNKS="--bs=64k --blockalign=512k --size=${ARANGE}M"
for round in 1 2; do
	check "round $round: A's 2048 chunks are written" \
		$FIO --output="$DD_OUT/fio-a-fill-$round.txt" --name=a-fill --filename=$A \
		--rw=write:448k --bs=64k --size=${ARANGE}M --io_size=128M --iodepth=16 \
		--buffer_pattern=0xa1
	check "round $round: ... and committed" sync $A
	$FIO --output="$DD_OUT/fio-b-$round.txt" --name=b --filename=$B --rw=randwrite \
		--bsrange=4k-1m --size=64M --iodepth=8 --verify=crc32c --verify_fatal=1 \
		--verify_backlog=64 --refill_buffers --randrepeat=0 &
	bpid=$!
	$FIO --output="$DD_OUT/fio-a-over-$round.txt" --name=a-over --filename=$A \
		--rw=randwrite $A_CHUNKS --time_based --runtime=4 --norandommap --iodepth=16 \
		--buffer_pattern=0xa1 --randrepeat=0 &
	apid=$!
	sleep 0.5
	for d in 1 2 3; do
		check "round $round: A's range is discarded while A and B are written ($d)" \
			blkdiscard -o 0 -l $((ARANGE * MiB)) $A
		log "round $round: after discard $d A has $(mapped ddt-a) blocks"
		sleep 0.4
	done
	check "round $round: fio on A (in-place and first 64 KiB writes)" wait $apid
	check "round $round: fio on B (4k-1m, crc32c) verifies" wait $bpid
	grep -E "err=" "$DD_OUT/fio-b-$round.txt" | sed 's/^/# /'
	m=$(mapped ddt-a)
	# Only the chunks are read (A is never written between them, so a block mapped
	# there still shows in m against the count): reading all of A read 896 MiB of
	# unmapped zeroes, each 4 KiB a verify-failure report of fio, for nothing more.
	$FIO --name=check --filename=$A --rw=read:448k --bs=64k --size=${ARANGE}M \
		--io_size=$((ARANGE / 8))M --iodepth=16 \
		--verify=pattern --verify_pattern=0xa1 --verify_fatal=0 --continue_on_error=verify \
		--verify_interval=4096 >"$DD_TMP/pcheck.out" 2>&1
	notpat=$(grep -c 'pattern: verify failed' "$DD_TMP/pcheck.out")
	nonzero=$(grep 'verify type mismatch' "$DD_TMP/pcheck.out" | grep -vc '(0 media')
	log "round $round: A: $m mapped blocks, $notpat blocks not 0xa1, $nonzero not zeroes"
	check_eq "round $round: A's blocks not 0xa1 are exactly its unmapped ones" \
		"$notpat" $((ARANGE * 32 - m))
	check_eq "round $round: ... and read as zeroes" "$nonzero" 0
	check_eq "round $round: data used = mapped blocks" "$(dd_pool_data_used ddt-pool5)" \
		$((m + $(mapped ddt-b)))
done
log "pool 5: $(dmsetup status ddt-pool5)"
check "volumes are removed" sh -c "dmsetup remove ddt-a && dmsetup remove ddt-b"
check "pool 5 is removed" dmsetup remove ddt-pool5
check "its metadata checks clean" dd_check_metadata "$meta5"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
