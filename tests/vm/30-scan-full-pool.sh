#!/bin/sh
# A full pool with error_if_no_space: in-place overwrites of exclusive blocks never
# fail while the scanner pins them.  A pinned block looks shared (a write to it needs
# a new block); one that finds no free block waits for the scanner's batch to end
# and then goes in place.  (Before that, such writes failed with ENOSPC: the review
# of the scanner's glue.)  The scanner thread of a suspended pool sleeps.
# vm: timeout=420
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 32M) || die "cannot set up loop devices"
check "pool with error_if_no_space" dd_pool_create ddt-pool "$meta" "$data" 0 error_if_no_space
NB=$(( $(dd_sectors "$data") / 8 ))
check "volume is created" dd_volume_create ddt-pool 1 ddt-v $((NB * 8))
V=/dev/mapper/ddt-v
check "every data block written with unique data" \
	fio --name=fill --filename=$V --rw=write --bs=64k --direct=1 --ioengine=libaio \
	--iodepth=4 --refill_buffers --randrepeat=0 --output=/dev/null
check_eq "the pool is full" "$(dd_pool_data_used ddt-pool)" "$NB"
check "scan at full speed" dmsetup message ddt-pool 0 scan rate 0
check "scan runs" dmsetup message ddt-pool 0 scan run 1
# Full passes, one after the other, while fio overwrites blocks in place.
(
	i=0
	while [ $i -lt 40 ] && [ ! -e /tmp/stop-scan ]; do
		dmsetup message ddt-pool 0 scan full
		sleep 0.5
		i=$((i + 1))
	done
) &
loop=$!
check "random in-place overwrites with verification while the scanner pins: no error" \
	fio --name=over --filename=$V --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
	--iodepth=16 --numjobs=1 --size=$((NB * 4096)) --time_based --runtime=15 \
	--verify=crc32c --verify_backlog=256 --verify_fatal=1 --refill_buffers \
	--output="$DD_OUT/fio-over.txt"
touch /tmp/stop-scan
wait $loop
grep -E "err=|IOPS" "$DD_OUT/fio-over.txt" | sed 's/^/# /'
scan_note() { dmsetup message ddt-pool 0 scan stats | tr '\n' ' '; echo; }
log "scanner: $(scan_note)"
PASSES=$(dmsetup message ddt-pool 0 scan stats | sed -n 's/^passes //p')
check "the scanner made passes during the overwrites ($PASSES)" test "$PASSES" -ge 2
check_eq "the pool is still full and rw" "$(dd_pool_field ddt-pool 9)" rw
# While the pool is suspended the scanner thread sleeps (it once spun: a wait
# whose condition was already true).  CPU ticks of the thread over 3 s suspended.
scan_ticks() {
	for c in /proc/[0-9]*/comm; do
		if [ "$(cat "$c" 2>/dev/null)" = dm-dedup-scan ]; then
			awk '{print $14 + $15}' "${c%comm}stat"
			return
		fi
	done
	echo none
}
check "the pool is suspended" dmsetup suspend ddt-pool
T0=$(scan_ticks)
sleep 3
T1=$(scan_ticks)
check "the scanner thread exists ($T0)" test "$T0" != none
check "the suspended pool's scanner used under 0.3 s of CPU in 3 s ($T0 -> $T1 ticks)" \
	test $((T1 - T0)) -lt 30
check "the pool is resumed" dmsetup resume ddt-pool
check "volume is removed" dmsetup remove ddt-v
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
