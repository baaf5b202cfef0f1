#!/bin/sh
# The demo (not a test: `make demo` runs it through scripts/demo.sh), the way an
# administrator would do it: `dedupctl create` makes a pool over two scratch disks,
# `dedupctl import` copies each of the three guest images of scripts/images/ into a
# volume (P2V: free and zero blocks skipped), `dedupctl scan POOL start` runs one scan
# at the default rate while `dedupctl status` shows its progress and ETA, then the
# pool's data used is set against the ideal (the distinct non-zero 4 KiB blocks of the
# three volumes as imported, counted by dd_blockcount, bytes compared), and every
# volume is compared byte for byte with its image.
# Results (name value lines) in $DD_OUT/demo.txt.
# vm: timeout=5400 disks=2 disk_size=4G mem=2G
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images-lib.sh"

R=$DD_OUT/demo.txt
: >"$R"
put() { echo "$1 $2" >>"$R"; log "$1: $2"; }
P=demo
C=dedupctl

dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086
set -- $DD_DISKS
meta=$1 data=$2
for n in $IMAGES; do
	check "image $n is attached ($(img_disk "$n"))" img_disk "$n"
done
check "dedupctl create $P $meta $data" $C create $P "$meta" "$data"
put rate_mib "$(scan_stat $P rate_mib)"
put index_bytes "$(scan_stat $P index_bytes)"
t0=$(dd_uptime_cs)
vols=
for n in $IMAGES; do
	src=$(img_disk "$n")
	log "dedupctl import $src $P $n"
	$C import "$src" $P "$n" >"$DD_TMP/imp.$n" 2>&1 || { _dd_show "$DD_TMP/imp.$n"; die "the import of $n failed"; }
	tail -n 1 "$DD_TMP/imp.$n" | sed 's/^/# /'
	line=$(grep "done in" "$DD_TMP/imp.$n")
	put "img_${n}_blocks" $(($(dd_sectors "$src") / 8))
	for f in read written "skipped as zero" "skipped as free" "shared at import"; do
		v=$(echo "$line" | sed -n "s/.*$f \([0-9]*\).*/\1/p")
		put "img_${n}_$(echo "$f" | tr ' ' _)" "${v:-0}"
	done
	vols="$vols /dev/mapper/$P-$n"
done
t1=$(dd_uptime_cs)
put copy_seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) / 100}')"
used0=$(dd_pool_data_used $P)
put used_before "$used0"
log "counting the ideal (dd_blockcount over the imported volumes)"
# shellcheck disable=SC2086 # three device names
dd_blockcount $vols >"$DD_OUT/ideal-guest.txt" || die "dd_blockcount over the volumes"
# shellcheck disable=SC2046
set -- $(awk '$1 == "total" {print $7, $9}' "$DD_OUT/ideal-guest.txt")
nonzero=$1 distinct=$2
put nonzero "$nonzero"
put distinct "$distinct"
shared=0
for n in $IMAGES; do
	shared=$((shared + $(sed -n "s/^img_${n}_shared_at_import //p" "$R")))
done
check_eq "the pool stores every non-zero block of the volumes but those shared at import" \
	"$used0" "$((nonzero - shared))"

log "scanning (dedupctl scan $P start); dedupctl status every 15 s:"
scan_note $P
t0=$(dd_uptime_cs)
check "dedupctl scan $P start" $C scan $P start
(
	while sleep 15; do
		$C status $P 2>/dev/null | grep -iE "scan|saving" | sed 's/^/#   /'
	done
) &
shower=$!
scan_wait_idle $P 3600 || { kill $shower; die "the scan did not end"; }
kill $shower 2>/dev/null
wait $shower 2>/dev/null
t1=$(dd_uptime_cs)
put scan_seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) / 100}')"
$C status $P | sed 's/^/# /'
$C --json status $P >"$DD_OUT/status.json"
used=$(dd_pool_data_used $P)
put used_after "$used"
put merged_blocks "$(scan_stat $P merged_blocks)"
put bytes_freed "$(scan_stat $P bytes_freed)"
put read_mib_s "$(scan_stat $P read_mib_s)"
put index_entries "$(scan_stat $P index_entries)"
put index_hits "$(scan_stat $P index_hits)"
put false_hits "$(scan_stat $P false_hits)"
put savings_pct "$(pct $((nonzero - used)) "$nonzero")"
put ideal_pct "$(pct $((nonzero - distinct)) "$nonzero")"
put achieved_pct "$(pct $((nonzero - used)) $((nonzero - distinct)))"
scan_stats $P >"$DD_OUT/scan-stats.txt"
check "the pool never stores less than the ideal ($used >= $distinct)" test "$used" -ge "$distinct"
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
for n in $IMAGES; do
	check "volume $n is identical to its image" cmp "$(img_disk "$n")" "/dev/mapper/$P-$n"
done
check "dedupctl deactivate $P" $C deactivate $P
check "dedupctl check: the metadata checks clean" $C check "$meta"
finish
