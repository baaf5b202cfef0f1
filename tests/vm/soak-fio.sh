#!/bin/sh
# The fio soak of `make soak`: four volumes under fio verify without a pause, for
# SOAK seconds (600; a copy of the script with another value runs shorter), while one control loop snapshots, discards, rewrites
# and verifies, and the scanner runs (rate unlimited) merging what the volumes share.
#
# Each 256 MiB volume holds:
#   [0, 128 MiB)    fio's region: random writes with crc32c verify (volumes 1 and 3:
#                   4-128 KiB aligned; 2 and 4: 512 B-64 KiB at 512-byte offsets,
#                   read-modify-write), run after run
#   [128, 136 MiB)  the shared region: the same 8 MiB on all four volumes at first, so
#                   the scanner merges them; the control loop then writes fresh data
#                   into it, discards parts of it, copies shared data back (new
#                   duplicates) and checks it byte for byte against a model of its own
#                   (the model files live in the guest's tmpfs)
# fio runs are rate-limited (8 MiB/s each way per volume) so that the control loop
# gets its share of an emulated CPU.
# The control loop, one action after the other, on the volumes in turn: write 256 KiB
# of new data; discard 64-256 KiB (reads back as zeroes); copy 256 KiB of the shared
# data back; check one volume's shared region; and every 5th action, on one volume in
# turn: finish its snapshot (both of its regions read back what they held when it was
# taken, and a write into the snapshot stayed there) and delete it, or take a new one
# (origin suspended), remember its checksums and write 256 KiB into it.
# At the end: every fio run verified without an error; every check passed; the scanner
# merged blocks; the pool is rw; the regions read back the same after the pool is
# removed and opened again; the metadata checks clean; no WARN/BUG.
# vm: timeout=1800 disks=2 disk_size=3G
. "$(dirname "$0")/lib.sh"

SOAK=600
P=ddt-soak
VS=524288			# volume: 256 MiB
FIO_MB=128			# fio's region
SH_OFF=$((128 * 256))		# the shared region, in 4 KiB blocks from the start
SH_BLOCKS=$((8 * 256))		# its length in 4 KiB blocks (8 MiB)

dd_mark "$DD_TEST.start"
t0=$(dd_uptime_cs)
elapsed() { echo $(( ($(dd_uptime_cs) - t0) / 100 )); }
set -- $DD_DISKS
[ $# -ge 2 ] || die "two disks wanted, got '$DD_DISKS'"
meta=$1 data=$2
dd_load_module || die "dm-dedup does not load"
check "pool is created" dd_pool_create $P "$meta" "$data"
check "scanner: rate unlimited" scan_msg $P rate 0
check "scanner: run" scan_msg $P run 1

head -c $((SH_BLOCKS * 4096)) /dev/urandom >"$DD_TMP/shared" || die "no shared data"
for v in 1 2 3 4; do
	check "volume $v is created" dd_volume_create $P $v ddt-v$v $VS
	check "volume $v: the shared region is written" \
		dd if="$DD_TMP/shared" of=/dev/mapper/ddt-v$v bs=1M seek=$((SH_OFF / 256)) oflag=direct status=none
	cp "$DD_TMP/shared" "$DD_TMP/model$v"
done

# --- fio on every volume, run after run, until told to stop ------------------------------
DD_FIO="fio --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --verify_fatal=1
	--do_verify=1 --randrepeat=0 --size=${FIO_MB}M --io_size=24M --rate=8m,8m"
rm -f "$DD_TMP/stop"
pids=
for v in 1 2 3 4; do
	if [ $((v % 2)) = 1 ]; then
		dd_fio_loop $v /dev/mapper/ddt-v$v --rw=randwrite --bsrange=4k-128k &
	else
		dd_fio_loop $v /dev/mapper/ddt-v$v --rw=randwrite --bsrange=512-64k --blockalign=512 &
	fi
	pids="$pids $!"
done

# --- the control loop ---------------------------------------------------------------------
# rnd N: a random number in [0, N).
rnd() { echo $(( $(od -An -N4 -tu4 /dev/urandom) % $1 )); }
CHECKS=0
FAILS=0
bad() { FAILS=$((FAILS + 1)); fail "$*"; }
good() { CHECKS=$((CHECKS + 1)); }
# put V FILE BLOCK: FILE (whole 4 KiB blocks) at block BLOCK of V's shared region, on
# the volume and in its model.
put() {
	_n=$(($(stat -c %s "$2") / 4096))
	dd if="$2" of=/dev/mapper/ddt-v$1 bs=4096 seek=$((SH_OFF + $3)) oflag=direct conv=notrunc status=none &&
		dd if="$2" of="$DD_TMP/model$1" bs=4096 seek="$3" conv=notrunc status=none ||
		bad "volume $1: writing $_n blocks at shared block $3 failed"
}
# region DEV SKIP COUNT: COUNT MiB of DEV from SKIP MiB, past the page cache.
region() { dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none; }
SH_MIB=$((SH_OFF / 256))
verify_shared() { # verify_shared V
	if _d=$(region /dev/mapper/ddt-v$1 $SH_MIB $((SH_BLOCKS / 256)) | cmp - "$DD_TMP/model$1" 2>&1); then
		good
	else
		bad "volume $1: the shared region differs from its model: $_d"
	fi
}
# Snapshots: volume V's snapshot is id 10+V, device ddt-s$V; its checksums at creation
# are in snap$V.fio and snap$V.shared (after the write into it).
snap_take() { # snap_take V
	_s=$((10 + $1))
	if ! dmsetup suspend ddt-v$1; then bad "volume $1: suspend failed"; return; fi
	dmsetup message $P 0 create_snap $_s $1 || bad "volume $1: create_snap $_s failed"
	dmsetup resume ddt-v$1 || bad "volume $1: resume failed"
	dd_volume_activate $P $_s ddt-s$1 $VS || { bad "snapshot of $1 cannot be activated"; return; }
	# The shared region as it was, then 256 KiB of new data into the snapshot only.
	cp "$DD_TMP/model$1" "$DD_TMP/snapmodel$1"
	_b=$(rnd $((SH_BLOCKS - 64)))
	head -c 262144 /dev/urandom >"$DD_TMP/snapw"
	dd if="$DD_TMP/snapw" of=/dev/mapper/ddt-s$1 bs=4096 seek=$((SH_OFF + _b)) oflag=direct conv=notrunc status=none ||
		bad "snapshot of $1: the write failed"
	dd if="$DD_TMP/snapw" of="$DD_TMP/snapmodel$1" bs=4096 seek="$_b" conv=notrunc status=none
	region /dev/mapper/ddt-s$1 0 $FIO_MB | sha256sum >"$DD_TMP/snap$1.fio"
	echo "$1" >>"$DD_TMP/snaps"
	log "snapshot $_s of volume $1 taken at $(elapsed) s (wrote 64 blocks at shared block $_b)"
}
snap_finish() { # snap_finish V
	_s=$((10 + $1))
	if region /dev/mapper/ddt-s$1 0 $FIO_MB | sha256sum | cmp -s - "$DD_TMP/snap$1.fio"; then
		good
	else
		bad "snapshot of $1: fio's region changed while the origin was written"
	fi
	if _d=$(region /dev/mapper/ddt-s$1 $SH_MIB $((SH_BLOCKS / 256)) | cmp - "$DD_TMP/snapmodel$1" 2>&1); then
		good
	else
		bad "snapshot of $1: the shared region is not what it held plus its own write: $_d"
	fi
	dmsetup remove ddt-s$1 || bad "snapshot of $1: remove failed"
	dmsetup message $P 0 delete_volume $_s || bad "snapshot of $1: delete_volume $_s failed"
	log "snapshot $_s of volume $1 checked and deleted at $(elapsed) s"
}

: >"$DD_TMP/snaps"
i=0
acts=0
log "--- soak: ${SOAK} s of fio on 4 volumes, snapshots, discards, the scanner"
while [ "$(elapsed)" -lt "$SOAK" ]; do
	i=$((i + 1))
	v=$((i % 4 + 1))
	case $((i % 5)) in
	1) # new data
		head -c 262144 /dev/urandom >"$DD_TMP/new"
		put $v "$DD_TMP/new" "$(rnd $((SH_BLOCKS - 64)))" ;;
	2) # a discard: zeroes
		_b=$(rnd $((SH_BLOCKS - 64)))
		_n=$((16 + $(rnd 49)))
		if blkdiscard -o $(((SH_OFF + _b) * 4096)) -l $((_n * 4096)) /dev/mapper/ddt-v$v; then
			dd if=/dev/zero of="$DD_TMP/model$v" bs=4096 seek="$_b" count="$_n" conv=notrunc status=none
		else
			bad "volume $v: blkdiscard of $_n blocks at shared block $_b failed"
		fi ;;
	3) # shared data back: duplicates again
		_b=$(rnd $((SH_BLOCKS - 64)))
		dd if="$DD_TMP/shared" of="$DD_TMP/back" bs=4096 skip="$_b" count=64 status=none
		put $v "$DD_TMP/back" "$_b" ;;
	4) verify_shared $v ;;
	0) # snapshots, on each volume in turn
		w=$(((i / 5) % 4 + 1))
		if grep -qx "$w" "$DD_TMP/snaps"; then
			snap_finish $w
			grep -vx "$w" "$DD_TMP/snaps" >"$DD_TMP/snaps.new"
			mv "$DD_TMP/snaps.new" "$DD_TMP/snaps"
		else
			snap_take $w
		fi ;;
	esac
	acts=$((acts + 1))
	[ $((i % 50)) != 0 ] || log "$(elapsed) s: $acts actions; $(dmsetup status $P | cut -d' ' -f4-13)"
done
log "--- $(elapsed) s: stopping fio"
touch "$DD_TMP/stop"
for p in $pids; do wait "$p"; done
for v in 1 2 3 4; do
	runs=$(cat "$DD_TMP/fio$v.runs" 2>/dev/null || echo 0)
	if [ -s "$DD_TMP/fio$v.failed" ]; then
		fail "fio on volume $v: $(wc -l <"$DD_TMP/fio$v.failed") of $runs runs failed to verify"
		sed 's/^/#   /' "$DD_TMP/fio$v.failed"
	else
		ok "fio on volume $v: every one of $runs runs verified"
	fi
	check "fio on volume $v ran more than once" test "$runs" -gt 1
done
for w in $(cat "$DD_TMP/snaps"); do snap_finish $w; done
for v in 1 2 3 4; do verify_shared $v; done
check_eq "control loop: failures in $CHECKS checks of $acts actions" 0 "$FAILS"

check "scanner: idle after the last writes" scan_wait_idle $P 600
scan_stats $P | sed 's/^/# /'
merged=$(scan_stat $P merged_blocks)
check "the scanner merged blocks (${merged:-none})" test "${merged:-0}" -gt 0
check_eq "pool mode" rw "$(dd_pool_field $P 9)"
for v in 1 2 3 4; do
	region /dev/mapper/ddt-v$v 0 $((VS / 2048)) | sha256sum >"$DD_TMP/sum$v"
done

# --- the pool again, after a clean removal -------------------------------------------------
check "devices are removed" dmsetup remove ddt-v1 ddt-v2 ddt-v3 ddt-v4 $P
check "dedup_check is clean" dd_check_metadata "$meta"
check "pool opens again" dd_pool_create $P "$meta" "$data"
for v in 1 2 3 4; do
	check "volume $v is activated" dd_volume_activate $P $v ddt-v$v $VS
	check "volume $v reads back what it held" \
		sh -c "dd if=/dev/mapper/ddt-v$v bs=1M count=$((VS / 2048)) iflag=direct status=none | sha256sum | cmp -s - '$DD_TMP/sum$v'"
	verify_shared $v
done
check "devices are removed at the end" dmsetup remove ddt-v1 ddt-v2 ddt-v3 ddt-v4 $P
check "dedup_check is clean at the end" dd_check_metadata "$meta"
log "soak: $(elapsed) s, $acts control actions, $CHECKS region checks, merged_blocks ${merged:-0}"
check "no WARN/BUG in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
