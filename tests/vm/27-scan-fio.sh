#!/bin/sh
# The scanner's savings on data with a known share of duplicates, against an
# independent count.  fio writes three volumes (one job each, 32 MiB of 4 KiB
# sequential writes) with dedupe_percentage=N, for N = 50 and 80, each N in a pool of
# its own.
#
# What N means for fio (3.33, dedupe_mode=repeat, its default): for each write, with
# probability N/100, the job's buffer is a copy of the last unique buffer that job
# generated, otherwise a new random buffer (refill_buffers, buffer_compress_percentage=0:
# incompressible, no zero blocks).  So about N % of each JOB's written blocks duplicate
# another block of the same job; jobs have their own random seeds, so nothing is meant
# to repeat across volumes.  The share is random (binomial): the exact ideal is counted
# from the data itself.
#
# The independent count: dd_blockcount (tools/dd_blockcount.c) reads the volumes back
# and counts the distinct non-zero 4 KiB blocks, comparing bytes (no xxHash, no trusted
# hash).  After one pass the pool's data-used must equal that count exactly; the
# savings (non-zero - used) / non-zero must be within 2 points of N; the volumes read
# back the same bytes as before the scan.
# vm: timeout=900 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
command -v dd_blockcount >/dev/null || die "dd_blockcount is not installed"
log "$(fio --version)"
MODE=
if fio --cmdhelp=dedupe_mode >/dev/null 2>&1; then
	MODE=--dedupe_mode=repeat
else
	log "this fio has no dedupe_mode (repeat is then its only behaviour)"
fi
MB=32
VS=$((MB * 2048))

round() { # round N
	n=$1
	P=ddt-pool$n
	meta=$(dd_loop 32M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
	check "N=$n: pool" dd_pool_create $P "$meta" "$data"
	for v in 1 2 3; do
		check "N=$n: volume $v" dd_volume_create $P $v ddt-$n-v$v $VS
	done
	check "N=$n: scan rate 0" scan_msg $P rate 0
	check "N=$n: fio writes three volumes, dedupe_percentage=$n" \
		fio --output="$DD_OUT/fio-$n.txt" --ioengine=libaio --direct=1 --iodepth=8 \
		--rw=write --bs=4k --size=${MB}M --refill_buffers --buffer_compress_percentage=0 \
		--dedupe_percentage="$n" $MODE \
		--name=v1 --filename=/dev/mapper/ddt-$n-v1 \
		--name=v2 --filename=/dev/mapper/ddt-$n-v2 \
		--name=v3 --filename=/dev/mapper/ddt-$n-v3
	check "N=$n: page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
	dd_blockcount /dev/mapper/ddt-$n-v1 /dev/mapper/ddt-$n-v2 /dev/mapper/ddt-$n-v3 \
		>"$DD_OUT/count-$n.before" || fail "N=$n: dd_blockcount"
	sed 's/^/# /' "$DD_OUT/count-$n.before"
	for v in 1 2 3; do
		sha256sum </dev/mapper/ddt-$n-v$v | cut -d' ' -f1
	done >"$DD_TMP/sums-$n.before"
	# field 7: non-zero, 9: distinct
	nz=$(awk '$1 == "total" {print $7}' "$DD_OUT/count-$n.before")
	distinct=$(awk '$1 == "total" {print $9}' "$DD_OUT/count-$n.before")
	used0=$(dd_pool_data_used $P)
	check_eq "N=$n: before the scan the pool stores every non-zero block" "$used0" "$nz"
	# The ideal per job (fio's promise is per job) and for all three.
	awk -v n="$n" '$1 != "total" {printf "# N=%d: %s: %.2f %% duplicates in the job\n",
		n, $1, 100 * ($7 - $9) / $7}' "$DD_OUT/count-$n.before"
	ideal=$(awk -v nz="$nz" -v d="$distinct" 'BEGIN {printf "%.2f", 100 * (nz - d) / nz}')
	log "N=$n: ideal savings (independent count): $ideal % ($nz non-zero, $distinct distinct)"
	check "N=$n: the data has N % duplicates, within 2 points ($ideal %)" \
		awk -v i="$ideal" -v n="$n" 'BEGIN {exit !(i - n <= 2 && n - i <= 2)}'

	scan_note $P
	check "N=$n: scan run 1" scan_msg $P run 1
	check "N=$n: one pass ends" scan_wait_idle $P 300
	used=$(dd_pool_data_used $P)
	got=$(awk -v nz="$nz" -v u="$used" 'BEGIN {printf "%.2f", 100 * (nz - u) / nz}')
	log "N=$n: pool savings: $got % (data used $used of $nz); merged_blocks $(scan_stat $P merged_blocks)"
	check_eq "N=$n: data used equals the distinct non-zero blocks counted" "$used" "$distinct"
	check "N=$n: pool savings within 2 points of N ($got %)" \
		awk -v i="$got" -v n="$n" 'BEGIN {exit !(i - n <= 2 && n - i <= 2)}'
	check_eq "N=$n: merged_blocks = non-zero - distinct" "$(scan_stat $P merged_blocks)" $((nz - distinct))
	check_eq "N=$n: no false hit" "$(scan_stat $P false_hits)" 0
	scan_stats $P >"$DD_OUT/scan-stats-$n.txt"
	if [ "$used" != "$distinct" ]; then
		# Diagnosis only (no check): what a full pass finds of what the first missed.
		log "N=$n: one pass left $((used - distinct)) duplicates (raced $(scan_stat $P raced)," \
			"index_hits $(scan_stat $P index_hits), index_entries $(scan_stat $P index_entries))"
		scan_note $P
		scan_msg $P full && scan_wait_idle $P 300 &&
			log "N=$n: after a scan full: data used $(dd_pool_data_used $P)," \
				"raced $(scan_stat $P raced), merged_blocks $(scan_stat $P merged_blocks)"
	fi
	check "N=$n: page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
	for v in 1 2 3; do
		sha256sum </dev/mapper/ddt-$n-v$v | cut -d' ' -f1
	done >"$DD_TMP/sums-$n.after"
	check "N=$n: the volumes read back what fio wrote" cmp "$DD_TMP/sums-$n.before" "$DD_TMP/sums-$n.after"
	for v in 1 2 3; do
		check "N=$n: volume $v removed" dmsetup remove ddt-$n-v$v
	done
	check "N=$n: pool removed" dmsetup remove $P
	check "N=$n: the metadata checks clean" dd_check_metadata "$meta"
}

round 50
round 80
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
