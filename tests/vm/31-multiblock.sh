#!/bin/sh
# Bios over several blocks.  map() serves a bio in one remap as far as its blocks are
# one run (consecutive PBNs; for a write in place, every block exclusive) and hands
# the rest back to dm; reads of unmapped runs are zero-filled at once.  Checked here:
# 1 MiB reads and in-place writes of contiguous data reach the data device as large
# bios (with the old 4 KiB split, every block was a bio of its own: 256 per MiB);
# reads and writes across contiguous, non-contiguous, unmapped, discarded and
# snapshot-shared blocks, from 512-byte-aligned starts with partial edge blocks, read
# back exactly, also with the lookup cache emptied (the worker then looks the blocks up a
# run at a time); zero blocks inside a large write are still elided; a large write over
# blocks the scanner merged splits them (the other volume keeps its data) and a large
# in-place write marks every block it covers for the scanner (all are merged again);
# fio with crc32c verification and 4k-1m block sizes on several volumes at once,
# across a snapshot.  Clean kernel log and metadata.
# vm: timeout=900
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 64M) && data=$(dd_loop 640M) || die "cannot set up loop devices"
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
check "volume 1 is created (32 MiB)" dd_volume_create ddt-pool 1 ddt-v1 65536
check "volume 2 is created (32 MiB)" dd_volume_create ddt-pool 2 ddt-v2 65536
V1=/dev/mapper/ddt-v1
V2=/dev/mapper/ddt-v2
REF=$DD_TMP/ref1
MiB=1048576
DATA=${data#/dev/}
Q1=/sys/block/dm-$(dmsetup info -c --noheadings -o minor ddt-v1)/queue
log "queue of volume 1: max_sectors_kb $(cat $Q1/max_sectors_kb)" \
	"optimal_io_size $(cat $Q1/optimal_io_size) minimum_io_size $(cat $Q1/minimum_io_size);" \
	"data device max_sectors_kb $(cat /sys/block/$DATA/queue/max_sectors_kb)"

# Bios the data device's queue received (completed + merged requests), reads or writes.
data_bios() { # data_bios read|write
	if [ "$1" = read ]; then
		awk -v d="$DATA" '$3 == d {print $4 + $5}' /proc/diskstats
	else
		awk -v d="$DATA" '$3 == d {print $8 + $9}' /proc/diskstats
	fi
}
# w SRC_OFF LEN DEST_OFF [BS]: the same bytes of $DD_TMP/rand into REF and V1, written
# with one dd of block size BS (default 1 MiB) from byte DEST_OFF (512-aligned).
w() {
	dd if="$DD_TMP/rand" of="$DD_TMP/chunk" bs=$MiB skip="$1" count="$2" \
		iflag=skip_bytes,count_bytes 2>/dev/null &&
		dd if="$DD_TMP/chunk" of="$REF" bs=$MiB seek="$3" oflag=seek_bytes conv=notrunc \
			2>/dev/null &&
		dd if="$DD_TMP/chunk" of="$V1" bs="${4:-$MiB}" seek="$3" \
			oflag=direct,seek_bytes conv=notrunc 2>/dev/null
}
# r DEV OFF LEN: sha256 of LEN bytes from byte OFF (512-aligned), read with 1 MiB bios.
r() {
	dd if="$1" bs=$MiB skip="$2" count="$3" iflag=direct,skip_bytes,count_bytes 2>/dev/null |
		sha256sum | cut -d' ' -f1
}
rref() { # rref FILE OFF LEN
	dd if="$1" bs=$MiB skip="$2" count="$3" iflag=skip_bytes,count_bytes 2>/dev/null |
		sha256sum | cut -d' ' -f1
}
same() { # same DESC OFF LEN: V1 and REF agree there
	check_eq "$1" "$(r $V1 "$2" "$3")" "$(rref "$REF" "$2" "$3")"
}
drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }
# The lookup cache is emptied (a snapshot clears it): the next reads miss and go to the
# worker, which looks their blocks up a run at a time.
cold() {
	dmsetup message ddt-pool 0 create_volume 98 && dmsetup message ddt-pool 0 create_snap 99 98 &&
		dmsetup message ddt-pool 0 delete_volume 99 &&
		dmsetup message ddt-pool 0 delete_volume 98
}
# cold_same DESC OFF LEN: as same, with the lookup cache emptied first.
cold_same() {
	check "lookup cache emptied" cold
	same "$1 (cold cache)" "$2" "$3"
}

head -c 33554432 /dev/zero >"$REF"
head -c $((16 * MiB)) /dev/urandom >"$DD_TMP/rand"

# --- volume 1: a contiguous run, reversed blocks, interleaved blocks, holes -----------
check "0-8 MiB written sequentially (1 MiB bios: contiguous PBNs)" w 0 $((8 * MiB)) 0
# 8-9 MiB block by block, last block first: every PBN one below its left neighbour's.
# The reference gets the same bytes in one copy; volume 1 one 4 KiB dd per block (each a
# first write of its own, in this order).
rev() {
	dd if="$DD_TMP/rand" of="$REF" bs=4096 skip=$((8 * 256)) seek=$((8 * 256)) count=256 \
		conv=notrunc 2>/dev/null || return 1
	i=255
	while [ $i -ge 0 ]; do
		dd if="$DD_TMP/rand" of="$V1" bs=4096 skip=$((8 * 256 + i)) seek=$((8 * 256 + i)) \
			count=1 oflag=direct conv=notrunc 2>/dev/null || return 1
		i=$((i - 1))
	done
}
check "8-9 MiB written block by block in reverse order" rev
# 9-10 MiB in 8 KiB pieces alternating with volume 2: runs of two blocks.
# The reference gets volume 1's bytes in one copy; the volumes one 8 KiB dd each in turn.
alt() {
	dd if="$DD_TMP/rand" of="$REF" bs=8192 skip=$((9 * 128)) seek=$((9 * 128)) count=128 \
		conv=notrunc 2>/dev/null || return 1
	i=0
	while [ $i -lt 128 ]; do
		dd if="$DD_TMP/rand" of="$V1" bs=8192 skip=$((9 * 128 + i)) seek=$((9 * 128 + i)) \
			count=1 oflag=direct conv=notrunc 2>/dev/null || return 1
		dd if="$DD_TMP/rand" of=$V2 bs=8192 skip=$i seek=$i count=1 oflag=direct \
			conv=notrunc 2>/dev/null || return 1
		i=$((i + 1))
	done
}
check "9-10 MiB written in 8 KiB pieces alternating with volume 2" alt
# 10-12 MiB never written; 12-16 MiB written, then 13-13.5 MiB discarded.
check "12-16 MiB written sequentially" w $((12 * MiB)) $((4 * MiB)) $((12 * MiB))
check "13-13.5 MiB discarded" blkdiscard -o $((13 * MiB)) -l $((MiB / 2)) $V1
dd if=/dev/zero of="$REF" bs=4096 seek=$((13 * 256)) count=128 conv=notrunc 2>/dev/null
check "page cache is dropped" drop_caches
check_eq "volume 1 reads back as the reference (1 MiB reads)" "$(r $V1 0 33554432)" \
	"$(dd_sum "$REF")"
# Warm again (the first reads above filled the lookup cache block by block), then count.
r $V1 0 $((8 * MiB)) >/dev/null
b0=$(data_bios read)
r $V1 0 $((8 * MiB)) >/dev/null
b1=$(data_bios read)
log "8 MiB of contiguous blocks read with 1 MiB bios: $((b1 - b0)) bios at the data device"
check "8 MiB read of a contiguous run is not split per block ($((b1 - b0)) bios, 2048 if split)" \
	test $((b1 - b0)) -le 256
same "read from 512 B into the contiguous run, across into the reversed blocks" \
	$((7 * MiB + 512 * 3)) $((MiB + 4096))
same "read across reversed into interleaved blocks, 1.5 KiB past a block start" \
	$((8 * MiB + MiB / 2 + 1536)) $((MiB))
same "read across interleaved blocks into the unmapped hole" $((9 * MiB + 3584)) $((2 * MiB))
same "read across the unmapped hole into mapped blocks" $((11 * MiB + 512)) $((2 * MiB))
same "read across the discarded hole inside a run" $((12 * MiB + 700 * 1024)) $((2 * MiB))
cold_same "read from 512 B into the contiguous run, across into the reversed blocks" \
	$((7 * MiB + 512 * 3)) $((MiB + 4096))
cold_same "read across reversed into interleaved blocks, 1.5 KiB past a block start" \
	$((8 * MiB + MiB / 2 + 1536)) $((MiB))
cold_same "read across interleaved blocks into the unmapped hole" $((9 * MiB + 3584)) $((2 * MiB))
cold_same "read across the unmapped hole into mapped blocks" $((11 * MiB + 512)) $((2 * MiB))
cold_same "read across the discarded hole inside a run" $((12 * MiB + 700 * 1024)) $((2 * MiB))
cold_same "all of volume 1" 0 33554432
check "lookup cache emptied" cold
b0=$(data_bios read)
r $V1 0 $((8 * MiB)) >/dev/null
b1=$(data_bios read)
log "8 MiB of contiguous blocks read cold with 1 MiB bios: $((b1 - b0)) bios at the data device"
check "a cold read of a contiguous run is not split per block ($((b1 - b0)) bios, 2048 if split)" \
	test $((b1 - b0)) -le 256
check_eq "the unmapped hole reads as zeroes twice (zero-filled runs)" \
	"$(r $V1 $((10 * MiB)) $((2 * MiB)))$(r $V1 $((10 * MiB)) $((2 * MiB)))" \
	"$(rref /dev/zero 0 $((2 * MiB)))$(rref /dev/zero 0 $((2 * MiB)))"

# --- in-place writes of several blocks --------------------------------------------------
# A commit (a flush commits; it waited for the periodic one with a fixed sleep 2): the
# blocks are exclusive in the committed state too.
check "volume 1 is flushed (a commit)" sync $V1
r $V1 0 $((8 * MiB)) >/dev/null
b0=$(data_bios write)
check "1 MiB in-place overwrites of 0-4 MiB" w $((4 * MiB)) $((4 * MiB)) 0
b1=$(data_bios write)
log "4 MiB written in place with 1 MiB bios: $((b1 - b0)) bios at the data device"
check "a 4 MiB in-place overwrite of a contiguous run is not split per block ($((b1 - b0)) bios, 1024 if split)" \
	test $((b1 - b0)) -le 128
partial_writes() {
	w $((5 * MiB)) $((3 * MiB + 1024)) $((6 * MiB + 512)) &&
		w $((9 * MiB)) $((MiB + 2048)) $((8 * MiB + 3584)) 1536000 &&
		w $((10 * MiB + 4096)) $((2 * MiB + 512)) $((11 * MiB + 1024))
}
check "in-place writes from 512-byte starts over mixed blocks (partial edges)" partial_writes
zeros_before=$(dd_pool_field ddt-pool 6)
used_before=$(dd_pool_data_used ddt-pool)
# 1 MiB over mapped blocks whose blocks 100-103 are zeroes: those four are unmapped.
head -c $((MiB)) /dev/urandom >"$DD_TMP/zchunk"
dd if=/dev/zero of="$DD_TMP/zchunk" bs=4096 seek=100 count=4 conv=notrunc 2>/dev/null
dd if="$DD_TMP/zchunk" of="$REF" bs=4096 seek=$((2 * 256)) conv=notrunc 2>/dev/null
check "a 1 MiB in-place write with four zero blocks inside" \
	dd if="$DD_TMP/zchunk" of=$V1 bs=$MiB seek=2 count=1 oflag=direct conv=notrunc
check_eq "the four zero blocks are elided" "$(($(dd_pool_field ddt-pool 6) - zeros_before))" 4
check_eq "and unmapped" "$((used_before - $(dd_pool_data_used ddt-pool)))" 4
check "page cache is dropped" drop_caches
check_eq "volume 1 reads back as the reference after the large writes" \
	"$(r $V1 0 33554432)" "$(dd_sum "$REF")"

# --- a snapshot: large reads and writes over shared blocks -----------------------------
check "volume 1 is suspended" dmsetup suspend ddt-v1
check "snapshot 3 of volume 1" dmsetup message ddt-pool 0 create_snap 3 1
check "volume 1 is resumed" dmsetup resume ddt-v1
check "snapshot 3 is activated" dd_volume_activate ddt-pool 3 ddt-v3 65536
snap_sum=$(dd_sum "$REF")
check_eq "volume 1 reads as before over shared blocks" "$(r $V1 0 33554432)" "$snap_sum"
splits_before=$(dd_pool_field ddt-pool 8)
check "1 MiB writes from a 512-byte start over shared blocks" \
	w $((8 * MiB)) $((6 * MiB + 512)) $((MiB + 2560))
check "writes over shared and unmapped blocks" w $((3 * MiB)) $((3 * MiB)) $((9 * MiB + 1024))
splits=$(($(dd_pool_field ddt-pool 8) - splits_before))
check "the writes split shared blocks ($splits)" test "$splits" -ge 1500
check "volume 1 is flushed (a commit: the new blocks are exclusive)" sync $V1
check "the same range again, now in place" w $((2 * MiB)) $((6 * MiB + 512)) $((MiB + 2560))
check "page cache is dropped" drop_caches
check_eq "the snapshot is untouched" "$(r /dev/mapper/ddt-v3 0 33554432)" "$snap_sum"
check_eq "volume 1 reads back as the reference" "$(r $V1 0 33554432)" "$(dd_sum "$REF")"
check "snapshot 3 is removed" dmsetup remove ddt-v3
check "snapshot 3 is deleted" dmsetup message ddt-pool 0 delete_volume 3

# --- the scanner: merged blocks and the marks of large in-place writes ----------------
check "volume 4 is created" dd_volume_create ddt-pool 4 ddt-v4 8192
check "volume 5 is created" dd_volume_create ddt-pool 5 ddt-v5 8192
V4=/dev/mapper/ddt-v4
V5=/dev/mapper/ddt-v5
head -c $((MiB)) /dev/urandom >"$DD_TMP/D"
head -c $((MiB)) /dev/urandom >"$DD_TMP/E"
head -c $((MiB)) /dev/urandom >"$DD_TMP/F"
check "volume 4: D" dd if="$DD_TMP/D" of=$V4 bs=$MiB oflag=direct
check "volume 5: E" dd if="$DD_TMP/E" of=$V5 bs=$MiB oflag=direct
stat_of() { dmsetup message ddt-pool 0 scan stats | sed -n "s/^$1 //p"; }
# wait_stat NAME MIN SECONDS: until the statistic reaches MIN.
wait_stat() {
	_t=0
	while [ "$(stat_of "$1")" -lt "$2" ] && [ $_t -lt $(($3 * 4)) ]; do
		sleep 0.25
		_t=$((_t + 1))
	done
	[ "$(stat_of "$1")" -ge "$2" ]
}
check "volumes 4 and 5 are flushed (a commit)" sync $V4 $V5
check "scan at full speed" dmsetup message ddt-pool 0 scan rate 0
check "scan runs" dmsetup message ddt-pool 0 scan run 1
check "a full pass" dmsetup message ddt-pool 0 scan full
check "the full pass ends" wait_stat full_passes 1 120
m0=$(stat_of merged_blocks)
log "after the first pass: merged_blocks $m0"
# Volume 5 is read once (the lookup cache learns its exclusive blocks), then
# overwritten with D in one 1 MiB bio in place: every block must be marked.
r $V5 0 $MiB >/dev/null
r $V5 0 $MiB >/dev/null
check "volume 5 overwritten with D in one 1 MiB write" \
	dd if="$DD_TMP/D" of=$V5 bs=$MiB oflag=direct conv=notrunc
check "the scanner merges all 256 blocks the write made duplicates" \
	wait_stat merged_blocks $((m0 + 256)) 60
check_eq "exactly those" "$(($(stat_of merged_blocks) - m0))" 256
# A run from exclusive into merged blocks: volume 11's second half is made a
# duplicate of volume 10's (the older blocks, already in the index, stay), so volume
# 10's blocks are exclusive, then shared, at consecutive PBNs.  A 1 MiB write to
# volume 10 goes in place only over the first half.
check "volume 10 is created" dd_volume_create ddt-pool 10 ddt-v10 8192
check "volume 11 is created" dd_volume_create ddt-pool 11 ddt-v11 8192
head -c $((MiB)) /dev/urandom >"$DD_TMP/D2"
head -c $((MiB)) /dev/urandom >"$DD_TMP/E2"
s0=$(stat_of scanned)
check "volume 10: D2" dd if="$DD_TMP/D2" of=/dev/mapper/ddt-v10 bs=$MiB oflag=direct
check "volume 11: E2" dd if="$DD_TMP/E2" of=/dev/mapper/ddt-v11 bs=$MiB oflag=direct
check "the scanner reads both" wait_stat scanned $((s0 + 512)) 60
m1=$(stat_of merged_blocks)
r /dev/mapper/ddt-v11 0 $MiB >/dev/null
check "volume 11's second half overwritten with D2's (one 512 KiB write)" \
	dd if="$DD_TMP/D2" of=/dev/mapper/ddt-v11 bs=$((MiB / 2)) skip=1 seek=1 count=1 \
	oflag=direct conv=notrunc
check "the scanner merges those 128 blocks" wait_stat merged_blocks $((m1 + 128)) 60
check_eq "exactly those" "$(($(stat_of merged_blocks) - m1))" 128
log "scanner: $(dmsetup message ddt-pool 0 scan stats | tr '\n' ' ')"
check "scan stops" dmsetup message ddt-pool 0 scan run 0
r /dev/mapper/ddt-v10 0 $MiB >/dev/null
r /dev/mapper/ddt-v10 0 $MiB >/dev/null
check "volume 10 overwritten with F in one 1 MiB write" \
	dd if="$DD_TMP/F" of=/dev/mapper/ddt-v10 bs=$MiB oflag=direct conv=notrunc
check "page cache is dropped" drop_caches
check_eq "volume 10 reads F" "$(r /dev/mapper/ddt-v10 0 $MiB)" "$(dd_sum "$DD_TMP/F")"
check_eq "volume 11 keeps E2's first half and D2's second" "$(r /dev/mapper/ddt-v11 0 $MiB)" \
	"$( (head -c $((MiB / 2)) "$DD_TMP/E2"; tail -c $((MiB / 2)) "$DD_TMP/D2") |
		sha256sum | cut -d' ' -f1)"
check_eq "volume 5 reads D over merged blocks (1 MiB read)" "$(r $V5 0 $MiB)" "$(dd_sum "$DD_TMP/D")"
check "volume 5 overwritten with F over the merged blocks (1 MiB, from 512 B)" \
	dd if="$DD_TMP/F" of=$V5 bs=$MiB seek=512 oflag=direct,seek_bytes conv=notrunc
check "page cache is dropped" drop_caches
check_eq "volume 4 keeps D" "$(r $V4 0 $MiB)" "$(dd_sum "$DD_TMP/D")"
check_eq "volume 5 reads D's first 512 bytes, then F" "$(r $V5 0 $((MiB + 512)))" \
	"$( (head -c 512 "$DD_TMP/D"; cat "$DD_TMP/F") | sha256sum | cut -d' ' -f1)"
for v in 4 5 10 11; do
	check "volume $v is removed" dmsetup remove ddt-v$v
done

# --- fio: crc32c verification, 4k-1m bios, several volumes, across a snapshot --------
for v in 6 7 8; do
	check "volume $v is created (96 MiB)" dd_volume_create ddt-pool $v ddt-v$v 196608
done
FIO="fio --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --verify_fatal=1
	--refill_buffers --randrepeat=0 --group_reporting=0"
run_fio() { # run_fio TAG
	$FIO --output="$DD_OUT/fio-$1.txt" \
		--name=v6-seq --filename=/dev/mapper/ddt-v6 --rw=write --bsrange=4k-1m \
		--size=64M --verify_backlog=64 \
		--name=v7-rand --filename=/dev/mapper/ddt-v7 --rw=randwrite --bsrange=4k-1m \
		--size=64M --verify_backlog=64 \
		--name=v8-512 --filename=/dev/mapper/ddt-v8 --rw=randwrite --bsrange=1k-1m \
		--offset=512 --size=48M --verify_backlog=64
}
check "fio: first pass, no verify error" run_fio pass1
grep -E "err=" "$DD_OUT/fio-pass1.txt" | sed 's/^/# /'
check "volumes 6-8 are flushed (a commit)" \
	sync /dev/mapper/ddt-v6 /dev/mapper/ddt-v7 /dev/mapper/ddt-v8
check "fio: in-place pass, no verify error" run_fio pass2
check "volume 7 is suspended" dmsetup suspend ddt-v7
check "snapshot 9 of volume 7" dmsetup message ddt-pool 0 create_snap 9 7
check "volume 7 is resumed" dmsetup resume ddt-v7
check "snapshot 9 is activated" dd_volume_activate ddt-pool 9 ddt-v9 196608
snap_sum=$(dd_sum /dev/mapper/ddt-v9)
check "fio: over shared blocks, no verify error" run_fio pass3
check_eq "the snapshot is untouched" "$(dd_sum /dev/mapper/ddt-v9)" "$snap_sum"
log "pool status: $(dmsetup status ddt-pool)"
for v in 1 2 6 7 8 9; do
	check "volume $v is removed" dmsetup remove ddt-v$v
done
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
