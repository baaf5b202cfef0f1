#!/bin/sh
# The demo (not a test: `make demo` runs it through scripts/demo.sh): a pool over two
# scratch disks, the three guest images of scripts/images/ copied into three volumes,
# one scan with `scan run 1` at the default rate, then the pool's data used against
# the ideal (the distinct non-zero 4 KiB blocks of the three images, counted in the
# guest by dd_blockcount, bytes compared), the share of the ideal savings achieved,
# and every volume compared byte for byte with its image.
# Results (name value lines) in $DD_OUT/demo.txt.
# vm: timeout=5400 disks=2 disk_size=4G mem=2G
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images-lib.sh"

R=$DD_OUT/demo.txt
: >"$R"
put() { echo "$1 $2" >>"$R"; log "$1: $2"; }

dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086
set -- $DD_DISKS
meta=$1 data=$2
for n in $IMAGES; do
	check "image $n is attached ($(img_disk "$n"))" img_disk "$n"
done
check "pool over $data (metadata $meta)" dd_pool_create ddt-pool "$meta" "$data"
log "scanner defaults: rate $(scan_stat ddt-pool rate_mib) MiB/s, index $(scan_stat ddt-pool index_bytes) bytes"
put rate_mib "$(scan_stat ddt-pool rate_mib)"
put index_bytes "$(scan_stat ddt-pool index_bytes)"
log "copying the images into three volumes"
t=$(img_pool_fill ddt-pool) || die "the images cannot be copied into the pool"
put copy_seconds "$t"
used0=$(dd_pool_data_used ddt-pool)
put used_before "$used0"
log "counting the ideal (dd_blockcount over the image disks)"
ideal=$(img_ideal) || die "dd_blockcount over the images"
# shellcheck disable=SC2086
set -- $ideal
nonzero=$1 distinct=$2
put nonzero "$nonzero"
put distinct "$distinct"
check_eq "the pool stores every non-zero block of the images" "$used0" "$nonzero"
log "scanning (scan run 1)"
t=$(img_scan ddt-pool 3600) || die "the scan did not end"
put scan_seconds "$t"
used=$(dd_pool_data_used ddt-pool)
put used_after "$used"
put merged_blocks "$(scan_stat ddt-pool merged_blocks)"
put bytes_freed "$(scan_stat ddt-pool bytes_freed)"
put read_mib_s "$(scan_stat ddt-pool read_mib_s)"
put index_entries "$(scan_stat ddt-pool index_entries)"
put index_hits "$(scan_stat ddt-pool index_hits)"
put false_hits "$(scan_stat ddt-pool false_hits)"
put savings_pct "$(pct $((nonzero - used)) "$nonzero")"
put ideal_pct "$(pct $((nonzero - distinct)) "$nonzero")"
put achieved_pct "$(pct $((nonzero - used)) $((nonzero - distinct)))"
scan_stats ddt-pool >"$DD_OUT/scan-stats.txt"
check "the pool never stores less than the ideal ($used >= $distinct)" test "$used" -ge "$distinct"
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
for n in $IMAGES; do
	check "volume $n is identical to its image" cmp "$(img_disk "$n")" "/dev/mapper/ddt-$n"
done
check "the pool is removed" img_pool_remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
finish
