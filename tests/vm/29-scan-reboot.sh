#!/bin/sh
# The scanner's index and settings survive a clean shutdown and a reboot.
# Boot 1: a pool over two virtio disks, `scan rate 37`, `scan run 1`; two volumes
# with the same 16 MiB are merged; the pool is removed (a clean close saves the index)
# and checked.  Boot 2: the pool comes back with run 1 and rate 37 and the index
# entries it had; a new volume gets a third copy of the data (read from volume 1)
# and ONE incremental pass, which hashes only the new blocks (the old ones are not
# marked and are not read again), merges all of it: the matches can only come from
# the index saved in boot 1.  The data reads back in both boots.
# vm: timeout=600 disks=3 disk_size=256M boots=2 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086 # three names
set -- $DD_DISKS
[ $# -ge 3 ] || die "three virtio disks wanted, got '$DD_DISKS'"
meta=$1 data=$2 notes=$3
P=ddt-pool
VS=65536
# The third disk carries what boot 2 must know (the data's checksum, the stats).
note_get() { head -c 4096 "$notes" | tr -d '\0' | awk -v k="$1" '$1 == k {print $2}'; }
st() { scan_stat $P "$1"; }

if [ "$DD_BOOT" = 1 ]; then
	check "pool over $data (metadata $meta)" dd_pool_create $P "$meta" "$data"
	check "scan rate 37" scan_msg $P rate 37
	check "volume 1" dd_volume_create $P 1 ddt-v1 $VS
	check "volume 2" dd_volume_create $P 2 ddt-v2 $VS
	head -c 16777216 /dev/urandom >"$DD_TMP/x"
	xs=$(dd_sum "$DD_TMP/x")
	check "16 MiB to volume 1" dd if="$DD_TMP/x" of=/dev/mapper/ddt-v1 bs=1M oflag=direct
	check "the same to volume 2" dd if="$DD_TMP/x" of=/dev/mapper/ddt-v2 bs=1M oflag=direct
	scan_note $P
	check "scan run 1" scan_msg $P run 1
	# 32 MiB at 37 MiB/s: about a second
	check "a pass ends" scan_wait_idle $P
	check_eq "data used: one copy" "$(dd_pool_data_used $P)" 4096
	check_eq "merged_blocks 4096" "$(st merged_blocks)" 4096
	entries=$(st index_entries)
	check "the index holds the blocks ($entries entries)" test "$entries" -ge 4096
	check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
	check_eq "volume 1 reads back the data" "$(dd_sum /dev/mapper/ddt-v1 16777216)" "$xs"
	check_eq "volume 2 reads back the data" "$(dd_sum /dev/mapper/ddt-v2 16777216)" "$xs"
	log "scan stats: $(scan_stats $P | tr '\n' ' ')"
	check "volume 1 removed" dmsetup remove ddt-v1
	check "volume 2 removed" dmsetup remove ddt-v2
	check "pool removed (a clean close)" dmsetup remove $P
	check "the metadata checks clean" dd_check_metadata "$meta"
	printf 'xsum %s\nentries %s\nused 4096\n' "$xs" "$entries" >"$DD_TMP/notes"
	check "notes for boot 2" dd if="$DD_TMP/notes" of="$notes" conv=fsync 2>/dev/null
	check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
	finish
fi

xs=$(note_get xsum)
[ -n "$xs" ] || die "no notes from boot 1 on $notes"
check "the pool comes back after the reboot" dd_pool_create $P "$meta" "$data"
check_eq "scan run 1 survived" "$(st run)" 1
check_eq "scan rate 37 survived" "$(st rate_mib)" 37
check_eq "the index entries survived" "$(st index_entries)" "$(note_get entries)"
check_eq "merged_blocks survived" "$(st merged_blocks)" 4096
check_eq "data used 4096" "$(dd_pool_data_used $P)" 4096
check "volume 1 activated" dd_volume_activate $P 1 ddt-v1 $VS
check "volume 2 activated" dd_volume_activate $P 2 ddt-v2 $VS
check_eq "volume 1 reads back the data" "$(dd_sum /dev/mapper/ddt-v1 16777216)" "$xs"
check_eq "volume 2 reads back the data" "$(dd_sum /dev/mapper/ddt-v2 16777216)" "$xs"
check "scan run 0 while volume 3 is written" scan_msg $P run 0
check "scan rate 0" scan_msg $P rate 0
check "volume 3" dd_volume_create $P 3 ddt-v3 $VS
check "a third copy to volume 3 (read from volume 1)" \
	dd if=/dev/mapper/ddt-v1 of=/dev/mapper/ddt-v3 bs=1M count=16 oflag=direct
check_eq "data used 8192" "$(dd_pool_data_used $P)" 8192
check_eq "marked: the new blocks" "$(st marked)" 4096
p0=$(st passes)
s0=$(st scanned)
f0=$(st full_passes)
scan_note $P
check "scan run 1" scan_msg $P run 1
check "a pass ends" scan_wait_idle $P
check_eq "exactly one pass" "$(st passes)" $((p0 + 1))
check_eq "not a full pass" "$(st full_passes)" "$f0"
check_eq "it hashed only the 4096 new blocks" "$(($(st scanned) - s0))" 4096
check_eq "data used back to 4096: all of the copy found through the saved index" \
	"$(dd_pool_data_used $P)" 4096
check_eq "merged_blocks 8192" "$(st merged_blocks)" 8192
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
for v in 1 2 3; do
	check_eq "volume $v reads back the data" "$(dd_sum /dev/mapper/ddt-v$v 16777216)" "$xs"
done
log "scan stats: $(scan_stats $P | tr '\n' ' ')"
for v in 1 2 3; do
	check "volume $v removed" dmsetup remove ddt-v$v
done
check "pool removed" dmsetup remove $P
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
