#!/bin/sh
# The import benchmark (not a test: `make bench-import` runs it through bench/import.sh,
# which prints the table; docs/benchmarks-import.md has the method and the numbers).
# One boot; the source images attached read-only (serials srca: a guest image of
# scripts/images/, srcb: the same image diverged a little, bench/similar-image.sh).
# Each repetition runs, in an order that alternates from one repetition to the next:
#   dd      coreutils dd of image A into a dm-linear device over a virtio disk of the
#           same kind as the pool's data device: bs=1M oflag=direct conv=fsync
#   dddir   the same with iflag=direct (the source read O_DIRECT, as the import reads it)
#   sparse  the same with conv=sparse,fsync (1 MiB blocks of zeroes are skipped)
#   ddpool  the same dd (no conv=sparse) into a fresh volume of a fresh pool: the
#           dm-dedup write path without dedupctl (the pool elides zero blocks itself)
#   ddpooldir  the same with iflag=direct
#   imp-a   dedupctl import of image A into a fresh volume of a fresh pool (first
#           machine: nothing to share)
#   imp-b   dedupctl import of image B into the same pool (dedup at import shares most)
# imp-b always follows imp-a (it needs A in the pool).  Caches are dropped before each
# run; each run's wall time covers the whole command (dedupctl: the volume's creation
# and the final flush too; dd: conv=fsync).  One uncounted warm-up repetition first (it
# also fills the sparse backing files of the written regions).  The last repetition's
# volumes are checked against their images.
# Results: $DD_OUT/import.csv, one line per run:
#   rep,kind,seconds,source_bytes_read,target_bytes_written,written,shared,tool_seconds
# (bytes from /sys/block/*/stat of the source disk and of the target disks: the
# linear's disk, or the pool's data + metadata disks; written/shared/tool_seconds from
# the import's report, "-" for dd) and $DD_OUT/import.txt ("key value" lines).  The
# imports run with DEDUPCTL_PROFILE=1: their profile lines are in the log.
# vm: timeout=3600 disks=3 disk_size=2G mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

REPS=$(cat "$DD_TESTS/bench-reps" 2>/dev/null || echo 5)
CSV=$DD_OUT/import.csv
R=$DD_OUT/import.txt
: >"$CSV"
: >"$R"
put() { echo "$1 $2" >>"$R"; log "$1: $2"; }
P=ddtimp
C=dedupctl
# coreutils dd if the guest has it (conv=sparse); busybox's otherwise
DD=/usr/bin/dd
[ -x "$DD" ] && "$DD" --version >/dev/null 2>&1 || DD="busybox dd"

dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086
set -- $DD_DISKS
meta=$1 data=$2 lin=$3
A=$(dd_disk_by_serial srca) || die "image A (serial srca) is not attached"
B=$(dd_disk_by_serial srcb) || die "image B (serial srcb) is not attached"
sz=$(dd_sectors "$A")
[ "$(dd_sectors "$B")" = "$sz" ] || die "images A and B differ in size"
put reps "$REPS"
put cpus "$(nproc)"
put image_bytes $((sz * 512))
put dd "$($DD --version 2>&1 | head -n1)"
check "dm-linear over $lin" dmsetup create ddt-lin --table "0 $sz linear $lin 0"

# rd DISK / wr DISK: bytes read / written so far (sectors in /sys/block/X/stat)
rd() { awk '{print $3 * 512}' "/sys/block/${1#/dev/}/stat"; }
wr() { awk '{print $7 * 512}' "/sys/block/${1#/dev/}/stat"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f\n", (b - a) / 100}'; }
field() { sed -n "s/.*$2 \([0-9.]*\).*/\1/p" "$1" | head -n1; }

fresh_pool() {
	if dmsetup info "$P" >/dev/null 2>&1; then $C deactivate "$P" || return 1; fi
	$C -q create "$P" "$meta" "$data" --force >/dev/null && $C -q scan "$P" stop >/dev/null
}

# run REP KIND: one timed run, its line in $CSV
run() {
	case $2 in
	imp-a) fresh_pool || die "a fresh pool" ;;
	ddpool | ddpooldir) { fresh_pool && $C -q create-volume "$P" vm-d $((sz * 512)) >/dev/null; } ||
		die "a fresh pool and volume" ;;
	esac
	sync
	echo 3 >/proc/sys/vm/drop_caches
	case $2 in
	dd | dddir | sparse) src=$A tw=$(wr "$lin") ;;
	imp-a | ddpool | ddpooldir) src=$A tw=$(($(wr "$data") + $(wr "$meta"))) ;;
	imp-b) src=$B tw=$(($(wr "$data") + $(wr "$meta"))) ;;
	esac
	r0=$(rd "$src")
	t0=$(dd_uptime_cs)
	case $2 in
	dd) $DD if="$A" of=/dev/mapper/ddt-lin bs=1M oflag=direct conv=fsync 2>"$DD_TMP/out" ;;
	dddir) $DD if="$A" of=/dev/mapper/ddt-lin bs=1M iflag=direct oflag=direct conv=fsync 2>"$DD_TMP/out" ;;
	sparse) $DD if="$A" of=/dev/mapper/ddt-lin bs=1M oflag=direct conv=sparse,fsync 2>"$DD_TMP/out" ;;
	ddpool) $DD if="$A" of="/dev/mapper/$P-vm-d" bs=1M oflag=direct conv=fsync 2>"$DD_TMP/out" ;;
	ddpooldir) $DD if="$A" of="/dev/mapper/$P-vm-d" bs=1M iflag=direct oflag=direct conv=fsync 2>"$DD_TMP/out" ;;
	imp-a) DEDUPCTL_PROFILE=1 $C import "$A" "$P" vm-a >"$DD_TMP/out" 2>&1 ;;
	imp-b) DEDUPCTL_PROFILE=1 $C import "$B" "$P" vm-b >"$DD_TMP/out" 2>&1 ;;
	esac
	rc=$?
	t1=$(dd_uptime_cs)
	[ "$rc" = 0 ] || { cat "$DD_TMP/out"; die "$2 failed (exit $rc)"; }
	r1=$(rd "$src")
	case $2 in
	dd | dddir | sparse) w=$(($(wr "$lin") - tw)) wb=- sb=- ts=- ;;
	ddpool | ddpooldir) w=$(($(wr "$data") + $(wr "$meta") - tw)) wb=- sb=- ts=- ;;
	*)
		w=$(($(wr "$data") + $(wr "$meta") - tw))
		wb=$(field "$DD_TMP/out" written) sb=$(field "$DD_TMP/out" "shared at import")
		ts=$(field "$DD_TMP/out" "done in")
		;;
	esac
	s=$(secs "$t0" "$t1")
	[ "$1" = 0 ] || echo "$1,$2,$s,$((r1 - r0)),$w,$wb,$sb,$ts" >>"$CSV"
	log "rep $1 $2: $s s, read $(((r1 - r0) >> 20)) MiB, written $((w >> 20)) MiB (blocks written $wb, shared $sb)"
	if [ "$1" = 0 ]; then sed 's/^/#   /' "$DD_TMP/out"; else grep '^import profile' "$DD_TMP/out" | sed 's/^/#   /'; fi
	return 0
}

log "=== warm-up (uncounted)"
for k in dd dddir sparse ddpool ddpooldir imp-a imp-b; do run 0 $k; done
for rep in $(seq "$REPS"); do
	log "=== repetition $rep"
	if [ $((rep % 2)) = 1 ]; then
		order="dd dddir sparse ddpool ddpooldir imp-a imp-b"
	else
		order="imp-a imp-b ddpooldir ddpool sparse dddir dd"
	fi
	for k in $order; do run "$rep" "$k"; done
done
check "every run gave a number" sh -c "! grep -q ',,' $CSV"
put pool_status "$(dmsetup status $P | tr '\n' ' ')"

# The last repetition's copies.  Image A's free blocks are zeroes (mkfs.ext4 -d): its
# volume equals it byte for byte.  Image B has free blocks with stale data (its
# rewritten files): its volume's filesystem must check clean and its new files match.
check_eq "vm-a equals image A" "$(dd_sum /dev/mapper/$P-vm-a)" "$(dd_sum "$A")"
check "vm-b's ext4 checks clean" e2fsck -fn "/dev/mapper/$P-vm-b"
newfiles() { # newfiles DEV: sha256 of B's new files as read from DEV
	for i in $(seq 0 11); do
		debugfs -R "dump /var/lib/bench-b/data$i $DD_TMP/nf" "$1" >/dev/null 2>&1 &&
			dd_sum "$DD_TMP/nf" || echo missing
	done
}
check_eq "vm-b's new files equal image B's" "$(newfiles /dev/mapper/$P-vm-b)" "$(newfiles "$B")"
check "deactivate the pool" $C deactivate "$P"
check "the pool's metadata checks clean" $C check "$meta"
dmsetup remove ddt-lin
finish
