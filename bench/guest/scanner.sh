#!/bin/sh
# The scanner benchmark (not a test: `make bench-scanner` runs it through
# bench/scanner.sh, which prints the table; docs/benchmarks-scanner.md has the method
# and the numbers).  One boot, the three guest images attached read-only:
#   (a) dm-dedup: the images copied into three volumes of a fresh pool (default index),
#       one pass at `scan rate 0`: wall time, data used, savings against the ideal;
#   (c) plain sequential reads (O_DIRECT, 4 MiB) of the same data: the image disks,
#       the data device region the pool filled, the three volumes;
#   (d) from (a) and (c): the unthrottled scan rate against the raw read rate;
#   (e) 4 KiB random writes (fio, libaio, iodepth 16, 10 s) to a fourth volume with the
#       scanner at its default rate doing a full pass, against the scanner stopped,
#       REPS interleaved pairs (the order swapped every repetition);
#   (b) btrfs + duperemove -b 4096 -d -r on the same data (image files copied into a
#       fresh btrfs, their zero blocks punched out with fallocate -d, as the pool elides
#       them): wall time, bytes freed from `btrfs filesystem df` (Data used) before/after;
#   (f) savings for index_memory 1, 2, 4 and 8 MiB (a fresh pool each, the table
#       feature index_memory) beside the default of (a), with index bytes per TiB.
# Results: $DD_OUT/scanner.txt ("key value" lines), $DD_OUT/iops.csv
# ("rep,mode,iops"), $DD_OUT/index.csv ("index_mib,index_bytes,entries,used,hits,
# scan_seconds").
# vm: timeout=10800 disks=3 disk_size=4G mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images-lib.sh"

REPS=$(cat "$DD_TESTS/bench-reps" 2>/dev/null || echo 5)
R=$DD_OUT/scanner.txt
: >"$R"
: >"$DD_OUT/iops.csv"
: >"$DD_OUT/index.csv"
put() { echo "$1 $2" >>"$R"; log "$1: $2"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f\n", (b - a) / 100}'; }
# rd DEV MIB: sequential O_DIRECT read of the first MIB MiB of DEV; prints seconds
rd() {
	_t0=$(dd_uptime_cs)
	dd if="$1" of=/dev/null bs=4M count=$((($2 + 3) / 4)) iflag=direct 2>/dev/null || return 1
	secs "$_t0" "$(dd_uptime_cs)"
}
new_pool() { # new_pool [FEATURE...]: a fresh pool ddt-pool over the scratch disks
	dd if=/dev/zero of="$meta" bs=1M count=4 conv=fsync 2>/dev/null &&
		dd_pool_create ddt-pool "$meta" "$data" 0 "$@"
}

dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086
set -- $DD_DISKS
meta=$1 data=$2 bdisk=$3
for n in $IMAGES; do
	check "image $n is attached" img_disk "$n"
done
put reps "$REPS"
put cpus "$(nproc)"

log "=== the ideal"
ideal=$(img_ideal) || die "dd_blockcount over the images"
# shellcheck disable=SC2086
set -- $ideal
nonzero=$1 distinct=$2
put nonzero "$nonzero"
put distinct "$distinct"
img_mib=0
for n in $IMAGES; do
	img_mib=$((img_mib + $(dd_sectors "$(img_disk "$n")") / 2048))
done
put image_mib "$img_mib"

log "=== (a) dm-dedup, default index, scan rate 0"
check "pool" new_pool
put default_rate_mib "$(scan_stat ddt-pool rate_mib)"
t=$(img_pool_fill ddt-pool) || die "the images cannot be copied into the pool"
put copy_seconds "$t"
used0=$(dd_pool_data_used ddt-pool)
put used_before "$used0"
log "=== (c) sequential reads of the same data"
t=0
for n in $IMAGES; do
	s=$(rd "$(img_disk "$n")" $(($(dd_sectors "$(img_disk "$n")") / 2048)))
	t=$(awk -v a="$t" -v b="$s" 'BEGIN {print a + b}')
done
put read_images_seconds "$t"
put read_data_region_seconds "$(rd "$data" $((used0 / 256)))"
put data_region_mib $((used0 / 256))
t=0
for n in $IMAGES; do
	s=$(rd "/dev/mapper/ddt-$n" $(($(dd_sectors "/dev/mapper/ddt-$n") / 2048)))
	t=$(awk -v a="$t" -v b="$s" 'BEGIN {print a + b}')
done
put read_volumes_seconds "$t"

check "scan rate 0" scan_msg ddt-pool rate 0
sc0=$(scan_stat ddt-pool scanned)
t=$(img_scan ddt-pool 7200) || die "the scan did not end"
put scan_seconds "$t"
used=$(dd_pool_data_used ddt-pool)
put used_after "$used"
put scanned_blocks $(($(scan_stat ddt-pool scanned) - sc0))
put scan_read_mib_s "$(scan_stat ddt-pool read_mib_s)"
put index_bytes "$(scan_stat ddt-pool index_bytes)"
put index_entries "$(scan_stat ddt-pool index_entries)"
put index_hits "$(scan_stat ddt-pool index_hits)"
put false_hits "$(scan_stat ddt-pool false_hits)"
scan_stats ddt-pool >"$DD_OUT/scan-stats-a.txt"
echo "default,$(scan_stat ddt-pool index_bytes),$(scan_stat ddt-pool index_entries),$used,$(scan_stat ddt-pool index_hits),$(awk '$1 == "scan_seconds" {print $2}' "$R")" >>"$DD_OUT/index.csv"

log "=== (e) 4 KiB random writes, scanner at its default rate vs stopped"
FIO="fio --name=w --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --rw=randwrite
	--refill_buffers --randrepeat=0 --size=256M --time_based --runtime=10 --minimal
	--terse-version=3"
check "volume 4 (256 MiB), filled" sh -c "dmsetup message ddt-pool 0 create_volume 4 &&
	echo '0 524288 dedup /dev/mapper/ddt-pool 4' | dmsetup create ddt-fio &&
	dd if=/dev/urandom of=/dev/mapper/ddt-fio bs=1M count=256 oflag=direct conv=fsync 2>/dev/null"
check "scan rate: the default" scan_msg ddt-pool rate "$(awk '$1 == "default_rate_mib" {print $2}' "$R")"
active() {
	scan_msg ddt-pool run 1 &&
		if [ "$(scan_stat ddt-pool state)" = idle ]; then scan_msg ddt-pool full; fi
	sleep 1
}
idle() { scan_msg ddt-pool run 0; sleep 1; }
one() { # one REP MODE
	$2
	_l=$($FIO --filename=/dev/mapper/ddt-fio)
	_st=$(scan_stat ddt-pool state)
	_v=$(echo "$_l" | cut -d';' -f49)
	echo "$1,$2,$_v,$_st" >>"$DD_OUT/iops.csv"
	log "rep $1 $2: $_v IOPS (scanner $_st at the end)"
}
log "warm-up (uncounted)"
idle
$FIO --filename=/dev/mapper/ddt-fio >/dev/null
for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then
		one "$rep" idle
		one "$rep" active
	else
		one "$rep" active
		one "$rep" idle
	fi
done
check "every fio run gave a number" sh -c "! grep -q ',,' $DD_OUT/iops.csv"
idle
check "fio volume removed" dmsetup remove ddt-fio
check "pool (a) removed" img_pool_remove ddt-pool
check "pool (a): the metadata checks clean" dd_check_metadata "$meta"

log "=== (b) btrfs + duperemove"
modprobe btrfs || die "no btrfs"
check "mkfs.btrfs" mkfs.btrfs -f -q "$bdisk"
mkdir -p /mnt/b
check "mount" mount -t btrfs "$bdisk" /mnt/b
bcopy() {
	for n in $IMAGES; do
		dd if="$(img_disk "$n")" of="/mnt/b/$n.img" bs=1M iflag=direct 2>/dev/null &&
			/usr/bin/fallocate -d "/mnt/b/$n.img" || return 1
	done
	sync
	# A hole punched into an extent does not free the extent (btrfs frees an extent
	# only when nothing refers to any of it): rewrite the data into new extents so
	# that the start holds only the non-zero data, as the pool does.
	btrfs filesystem defragment -r -f -t 1G /mnt/b &&
		sync && btrfs filesystem sync /mnt/b
}
bused() { btrfs filesystem df -b /mnt/b | awk -F'used=' '/^Data/ {split($2, a, /[ ,]/); print a[1]}'; }
check "the images copied into btrfs, zero blocks punched out, defragmented" bcopy
# dupe OPTS...: one duperemove run; its wall time and the Data used after it
dupe() {
	_tag=$1
	shift
	_b0=$(bused)
	put "btrfs_${_tag}_used_before" "$_b0"
	_t0=$(dd_uptime_cs)
	check "duperemove $* ($_tag)" sh -c "duperemove $* /mnt/b >$DD_OUT/duperemove-$_tag.txt 2>&1"
	_t1=$(dd_uptime_cs)
	put "btrfs_${_tag}_seconds" "$(secs "$_t0" "$_t1")"
	sync
	btrfs filesystem sync /mnt/b
	sleep 2
	btrfs filesystem sync /mnt/b
	put "btrfs_${_tag}_used_after" "$(bused)"
	btrfs filesystem df -b /mnt/b | sed 's/^/# /'
	tail -n 4 "$DD_OUT/duperemove-$_tag.txt" | sed 's/^/# duperemove: /'
}
btrfs filesystem df -b /mnt/b | sed 's/^/# /'
# As asked: 4 KiB blocks, but duperemove 0.11 compares whole extents unless told
# "partial" (and never within one file unless told "same").
dupe extent -b 4096 -d -r
# Block by block, within files too: what the pool's scanner does.
dupe partial -b 4096 -d -r --dedupe-options=partial,same
bcmp() {
	for n in $IMAGES; do
		cmp "$(img_disk "$n")" "/mnt/b/$n.img" || return 1
	done
}
check "the btrfs files read back as the images" bcmp
umount /mnt/b

log "=== (f) savings against index_memory"
for mib in 1 2 4 8; do
	check "pool with index_memory $mib" new_pool index_memory "$mib"
	t=$(img_pool_fill ddt-pool) || die "the images cannot be copied into the pool"
	log "copy: $t s"
	check "scan rate 0" scan_msg ddt-pool rate 0
	s=$(img_scan ddt-pool 7200) || die "the scan did not end"
	u=$(dd_pool_data_used ddt-pool)
	echo "$mib,$(scan_stat ddt-pool index_bytes),$(scan_stat ddt-pool index_entries),$u,$(scan_stat ddt-pool index_hits),$s" >>"$DD_OUT/index.csv"
	log "index_memory $mib MiB: data used $u, $(pct $((nonzero - u)) $((nonzero - distinct))) % of the ideal savings, $s s"
	check "pool removed" img_pool_remove ddt-pool
	check "the metadata checks clean" dd_check_metadata "$meta"
done
finish
