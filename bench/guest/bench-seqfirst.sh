#!/bin/sh
# Sequential first writes (not a test; run: scripts/vm/run.sh bench/guest/bench-seqfirst.sh).
# Per repetition, a fresh 200 MiB volume of each kind (dedup, dm-thin with 64 KiB blocks
# and skip_block_zeroing) and dm-linear, on brd RAM disks filled first: fio 1 MiB
# sequential writes over the whole fresh volume (every block a first write, as an import
# or a copy of an image does), then 1 MiB sequential reads of what was written (does it
# read back at the speed of contiguous data?), then the dedup volume and dm-linear read
# again with the dedup lookup cache emptied (a snapshot of a scratch volume clears it):
# every dedup read misses and the worker looks its blocks up a run at a time.  The order
# of the devices rotates from one repetition to the next.  One line per repetition with the IOPS and the
# dedup / linear and thin / linear ratios; docs/benchmarks-datapath.md has the results.
# vm: timeout=900 mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
dd_load_module || die "dm-dedup does not load"
. "$(dirname "$0")/bench-devices.sh"
bench_devices
# shellcheck disable=SC2034 # new_volumes (bench-devices.sh) reads it
VS=$((200 * S))
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=1m --refill_buffers --minimal
	--terse-version=3 --name=b --size=200M"
wr() { $FIO --filename="$1" --rw=write | cut -d';' -f49; }
rd() { $FIO --filename="$1" --rw=read | cut -d';' -f8; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
# Set by eval in the loop, one per device kind.
w_linear='' w_dedup='' w_thin='' r_linear='' r_dedup='' r_thin='' c_linear='' c_dedup=''
# The dedup pool's lookup cache emptied (a snapshot clears it).
cold() {
	dmsetup message ddt-pool 0 create_volume 98 && dmsetup message ddt-pool 0 create_snap 99 98 &&
		dmsetup message ddt-pool 0 delete_volume 99 && dmsetup message ddt-pool 0 delete_volume 98
}
id=10
for rep in $(seq "$REPS"); do
	check "rep $rep: fresh volumes" new_volumes $id
	for k in $(order "$rep"); do eval "w_$k=\$(wr $(dev_of "$k"))"; done
	sleep 2
	for k in $(order "$rep"); do eval "r_$k=\$(rd $(dev_of "$k"))"; done
	for k in $(order "$rep"); do
		[ "$k" = thin ] && continue
		[ "$k" = dedup ] && { cold || die "cannot empty the lookup cache"; }
		eval "c_$k=\$(rd $(dev_of "$k"))"
	done
	log "rep $rep first writes IOPS linear $w_linear dedup $w_dedup thin $w_thin" \
		"(dedup/linear $(ratio "$w_dedup" "$w_linear"), thin/linear $(ratio "$w_thin" "$w_linear"));" \
		"read-back IOPS linear $r_linear dedup $r_dedup thin $r_thin" \
		"(dedup/linear $(ratio "$r_dedup" "$r_linear"), thin/linear $(ratio "$r_thin" "$r_linear"));" \
		"cold read-back IOPS linear $c_linear dedup $c_dedup (dedup/linear $(ratio "$c_dedup" "$c_linear"))"
	drop_volumes $id
	id=$((id + 1))
	sleep 2
done
dmsetup remove ddt-pool
dmsetup remove ddt-tpool
check "the dedup metadata checks clean" dd_check_metadata /dev/mapper/ddt-dmeta
finish
