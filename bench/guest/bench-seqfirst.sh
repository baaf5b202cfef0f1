#!/bin/sh
# Sequential first writes (not a test; run: scripts/vm/run.sh bench/guest/bench-seqfirst.sh).
# Per repetition, a fresh 200 MiB volume of each kind (dedup, dm-thin with 64 KiB blocks
# and skip_block_zeroing) and dm-linear, on brd RAM disks filled first: fio 1 MiB
# sequential writes over the whole fresh volume (every block a first write, as an import
# or a copy of an image does), then 1 MiB sequential reads of what was written (does it
# read back at the speed of contiguous data?).  The order of the three devices rotates
# from one repetition to the next.  One line per repetition with the IOPS and the
# dedup / linear and thin / linear ratios; docs/benchmarks-datapath.md has the results.
# vm: timeout=900 mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
dd_load_module || die "dm-dedup does not load"
modprobe dm-thin-pool || die "no dm-thin"
dd_brd 4 640 || die "no brd"
S=2048
for _d in ram0:256 ram1:640 ram2:448 ram3:256; do
	dd if=/dev/zero of=/dev/${_d%:*} bs=1M count=${_d#*:} 2>/dev/null
done
check "metadata slices" sh -c "echo '0 $((128 * S)) linear /dev/ram3 0' | dmsetup create ddt-dmeta &&
	echo '0 $((128 * S)) linear /dev/ram3 $((128 * S))' | dmsetup create ddt-tmeta"
check "linear over ram0" sh -c "echo '0 $((256 * S)) linear /dev/ram0 0' | dmsetup create ddt-lin"
check "dedup pool over ram1" dd_pool_create ddt-pool /dev/mapper/ddt-dmeta /dev/ram1
check "thin pool over ram2" sh -c "echo '0 $((448 * S)) thin-pool /dev/mapper/ddt-tmeta /dev/ram2 128 0 1 skip_block_zeroing' | dmsetup create ddt-tpool"
VS=$((200 * S))
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=1m --refill_buffers --minimal
	--terse-version=3 --name=b --size=200M"
wr() { $FIO --filename="$1" --rw=write | cut -d';' -f49; }
rd() { $FIO --filename="$1" --rw=read | cut -d';' -f8; }
dev_of() {
	case $1 in
	linear) echo /dev/mapper/ddt-lin ;;
	dedup) echo /dev/mapper/ddt-d ;;
	thin) echo /dev/mapper/ddt-t ;;
	esac
}
order() {
	case $(($1 % 3)) in
	0) echo linear dedup thin ;;
	1) echo dedup thin linear ;;
	2) echo thin linear dedup ;;
	esac
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
new_volumes() {
	dd_volume_create ddt-pool "$1" ddt-d $VS &&
		dmsetup message ddt-tpool 0 "create_thin $1" &&
		echo "0 $VS thin /dev/mapper/ddt-tpool $1" | dmsetup create ddt-t
}
# Set by eval in the loop, one per device kind.
w_linear='' w_dedup='' w_thin='' r_linear='' r_dedup='' r_thin=''
id=10
for rep in $(seq "$REPS"); do
	check "rep $rep: fresh volumes" new_volumes $id
	for k in $(order "$rep"); do eval "w_$k=\$(wr $(dev_of "$k"))"; done
	sleep 2
	for k in $(order "$rep"); do eval "r_$k=\$(rd $(dev_of "$k"))"; done
	log "rep $rep first writes IOPS linear $w_linear dedup $w_dedup thin $w_thin" \
		"(dedup/linear $(ratio "$w_dedup" "$w_linear"), thin/linear $(ratio "$w_thin" "$w_linear"));" \
		"read-back IOPS linear $r_linear dedup $r_dedup thin $r_thin" \
		"(dedup/linear $(ratio "$r_dedup" "$r_linear"), thin/linear $(ratio "$r_thin" "$r_linear"))"
	dmsetup remove ddt-d
	dmsetup remove ddt-t
	dmsetup message ddt-pool 0 delete_volume $id
	dmsetup message ddt-tpool 0 "delete $id"
	id=$((id + 1))
	sleep 3
done
dmsetup remove ddt-pool
dmsetup remove ddt-tpool
check "the dedup metadata checks clean" dd_check_metadata /dev/mapper/ddt-dmeta
finish
