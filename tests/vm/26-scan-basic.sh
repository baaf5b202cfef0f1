#!/bin/sh
# The background scanner, counted exactly: two volumes with the same 16 MiB of random
# data lose exactly one copy in one pass and both read back; writes to merged blocks
# split them copy-on-write (exactly one new block each, the other volume unchanged);
# blocks of zeroes stored in place (skip_zero_detect) are unmapped by the scanner;
# volumes in different dedup domains share nothing, a snapshot inherits its origin's
# domain, a domain above 255 is refused; `scan index_memory` at run time keeps the
# index (a new copy of indexed data is found); `scan full` walks every used block
# (and, where the module supports `scan run 2`, finds every merge again after the
# unshare undid them); the stats come in the documented order.
# vm: timeout=600 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 32M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
# skip_zero_detect: whole-block zero writes are stored, so the scanner meets zero blocks.
check "pool is created (skip_zero_detect)" dd_pool_create ddt-pool "$meta" "$data" 0 skip_zero_detect
P=ddt-pool
VS=131072 # sectors: 64 MiB = 16384 blocks per volume
used() { dd_pool_data_used $P; }
st() { scan_stat $P "$1"; }
# sum DEV START_BLOCK COUNT: sha256 of COUNT 4 KiB blocks at START_BLOCK (buffered: the
# page cache is dropped before the reads that matter)
sum() { dd if="$1" bs=4096 skip="$2" count="$3" 2>/dev/null | sha256sum | cut -d' ' -f1; }
fsum() { dd if="$1" bs=4096 skip="$2" count="$3" 2>/dev/null | sha256sum | cut -d' ' -f1; }
zsum() { head -c $(($1 * 4096)) /dev/zero | sha256sum | cut -d' ' -f1; }
# put FILE DEV START_BLOCK: write FILE to DEV at START_BLOCK (direct I/O, then fsync:
# a flush commits the pool)
put() { dd if="$1" of="$2" bs=4096 seek="$3" oflag=direct conv=notrunc,fsync 2>/dev/null; }
vol() { # vol ID DOMAIN: create_volume ID DOMAIN and its device ddt-vID
	dmsetup message $P 0 create_volume "$1" "$2" &&
		echo "0 $VS dedup /dev/mapper/$P $1" | dmsetup create "ddt-v$1"
}
V() { echo "/dev/mapper/ddt-v$1"; }
# wait_pass DESC: the next pass ends (a few seconds here).  A scanner that does not
# get there will not get to the later ones either: stop, so that a broken scanner
# costs a minute of `make test`, not the script's whole timeout.
wait_pass() {
	_f=$DD_FAILED
	check "$1" scan_wait_idle $P 60
	[ "$DD_FAILED" = "$_f" ] || die "the scanner did not finish a pass: the rest depends on it"
}

log "--- stats, fresh pool"
FIELDS="state run rate_mib passes full_passes pass_done pass_todo eta_seconds read_mib_s
blocks_shared references_sharing merged_blocks bytes_freed zero_unmapped volatile cow_breaks
raced false_hits index_entries index_capacity index_bytes index_hits marked marks_dropped
scanned share_cap unshare_done unshare_todo unshared
import_hinted import_shared import_missed import_raced"
check "scan stats answers" scan_stats $P
check_eq "scan stats: the fields, in order" "$(scan_stats $P | awk '{print $1}' | tr '\n' ' ')" \
	"$(echo "$FIELDS" | tr "\n" " ")"
check_eq "scan stats: one value per field" "$(scan_stats $P | awk 'NF != 2' | wc -l)" 0
check_eq "a new pool's scanner is off" "$(st state) $(st run)" "off 0"
check "scan rate 0 (unlimited)" scan_msg $P rate 0
check_eq "rate_mib 0" "$(st rate_mib)" 0

log "--- two volumes, the same 16 MiB"
head -c 16777216 /dev/urandom >"$DD_TMP/x"
head -c 4096000 "$DD_TMP/x" >"$DD_TMP/x1000"
check "volume 1 (domain 0)" vol 1 0
check "volume 2 (domain 0)" vol 2 0
check "16 MiB written to volume 1" put "$DD_TMP/x" "$(V 1)" 0
check "the same 16 MiB written to volume 2" put "$DD_TMP/x" "$(V 2)" 0
check_eq "data used: two copies (8192 blocks)" "$(used)" 8192
scan_note $P
check "scan run 1" scan_msg $P run 1
wait_pass "one pass ends"
check_eq "data used: one copy (4096 blocks): exactly the second copy merged" "$(used)" 4096
check_eq "merged_blocks 4096" "$(st merged_blocks)" 4096
check_eq "bytes_freed = 4096 blocks" "$(st bytes_freed)" $((4096 * 4096))
check_eq "blocks_shared 4096" "$(st blocks_shared)" 4096
check_eq "references_sharing 8192" "$(st references_sharing)" 8192
check_eq "no false hit, no zero block" "$(st false_hits) $(st zero_unmapped)" "0 0"
log "pool status: $(dmsetup status $P)"
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
XS=$(fsum "$DD_TMP/x" 0 4096)
check_eq "volume 1 reads back its data" "$(sum "$(V 1)" 0 4096)" "$XS"
check_eq "volume 2 reads back its data" "$(sum "$(V 2)" 0 4096)" "$XS"
check_eq "the rest of volume 1 is unmapped (zeroes)" "$(sum "$(V 1)" 4096 12288)" "$(zsum 12288)"

log "--- writes to merged blocks split them"
head -c 409600 /dev/urandom >"$DD_TMP/y"
scan_note $P
check "100 blocks of volume 1 overwritten (blocks 1000-1099)" put "$DD_TMP/y" "$(V 1)" 1000
check_eq "data used grows by exactly 100" "$(used)" 4196
wait_pass "the scanner looks at the new blocks"
check_eq "data used still 4196 (the new blocks are unique)" "$(used)" 4196
check_eq "cow_breaks 100" "$(st cow_breaks)" 100
check_eq "bytes_freed net of the breaks: 3996 blocks" "$(st bytes_freed)" $((3996 * 4096))
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "volume 2 is unchanged" "$(sum "$(V 2)" 0 4096)" "$XS"
check_eq "volume 1: blocks 0-999 as before" "$(sum "$(V 1)" 0 1000)" "$(fsum "$DD_TMP/x" 0 1000)"
check_eq "volume 1: blocks 1000-1099 the new data" "$(sum "$(V 1)" 1000 100)" "$(fsum "$DD_TMP/y" 0 100)"
check_eq "volume 1: blocks 1100-4095 as before" "$(sum "$(V 1)" 1100 2996)" "$(fsum "$DD_TMP/x" 1100 2996)"

log "--- blocks of zeroes written in place are unmapped by the scanner"
head -c 1048576 /dev/urandom >"$DD_TMP/z"
check "volume 3 (domain 0)" vol 3 0
scan_note $P
check "256 blocks written to volume 3" put "$DD_TMP/z" "$(V 3)" 0
wait_pass "the scanner looks at them"
u0=$(used)
check_eq "data used 4452" "$u0" 4452
head -c 409600 /dev/zero >"$DD_TMP/zero100"
# The scanner is stopped while the zeroes are written: a running one may start a
# pass (at most one a second) and unmap them before `used` is read.
check "scan run 0 (the zero blocks are counted first)" scan_msg $P run 0
scan_note $P
check "blocks 0-99 of volume 3 overwritten with zeroes" put "$DD_TMP/zero100" "$(V 3)" 0
check_eq "the zero blocks are stored (skip_zero_detect): data used unchanged" "$(used)" "$u0"
check "scan run 1" scan_msg $P run 1
wait_pass "a pass ends"
check_eq "zero_unmapped 100" "$(st zero_unmapped)" 100
check_eq "data used 100 lower" "$(used)" $((u0 - 100))
check_eq "volume 3 status: 156 blocks mapped" "$(dmsetup status ddt-v3 | awk '{print $4}')" 156
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "volume 3: blocks 0-99 read as zeroes" "$(sum "$(V 3)" 0 100)" "$(zsum 100)"
check_eq "volume 3: blocks 100-255 as written" "$(sum "$(V 3)" 100 156)" "$(fsum "$DD_TMP/z" 100 156)"

log "--- dedup domains"
expect_fail "create_volume with domain 256 is refused" dmsetup message $P 0 create_volume 9 256
head -c 8388608 /dev/urandom >"$DD_TMP/w"
check "volume 4 (domain 1)" vol 4 1
check "volume 5 (domain 2)" vol 5 2
u0=$(used)
m0=$(st merged_blocks)
scan_note $P
check "8 MiB written to volume 4" put "$DD_TMP/w" "$(V 4)" 0
check "the same 8 MiB written to volume 5" put "$DD_TMP/w" "$(V 5)" 0
wait_pass "a pass ends"
check_eq "domains 1 and 2 share nothing: data used +4096" "$(used)" $((u0 + 4096))
check_eq "merged_blocks unchanged" "$(st merged_blocks)" "$m0"

log "--- a snapshot inherits its origin's domain"
check "volume 4 is suspended" dmsetup suspend ddt-v4
check "snapshot 6 of volume 4" dmsetup message $P 0 create_snap 6 4
check "volume 4 is resumed" dmsetup resume ddt-v4
check "snapshot 6 is activated" dd_volume_activate $P 6 ddt-v6 $VS
WS=$(fsum "$DD_TMP/w" 0 2048)
check_eq "the snapshot reads as volume 4" "$(sum "$(V 6)" 0 2048)" "$WS"
check "volume 7 (domain 1)" vol 7 1
head -c 1048576 /dev/urandom >"$DD_TMP/s1"
head -c 1048576 /dev/urandom >"$DD_TMP/s2"
u0=$(used)
m0=$(st merged_blocks)
scan_note $P
# s1 in the snapshot and in volume 7 (domain 1): merged if the snapshot is in domain 1.
# s2 in the snapshot, in volume 5 (domain 2) and in volume 1 (domain 0): never merged.
check "1 MiB (s1) to snapshot 6 at block 8192" put "$DD_TMP/s1" "$(V 6)" 8192
check "s1 to volume 7 (domain 1)" put "$DD_TMP/s1" "$(V 7)" 0
check "1 MiB (s2) to snapshot 6 at block 10240" put "$DD_TMP/s2" "$(V 6)" 10240
check "s2 to volume 5 (domain 2)" put "$DD_TMP/s2" "$(V 5)" 8192
check "s2 to volume 1 (domain 0)" put "$DD_TMP/s2" "$(V 1)" 8192
wait_pass "a pass ends"
check_eq "s1 merged between snapshot 6 and volume 7: merged_blocks +256" \
	"$(st merged_blocks)" $((m0 + 256))
check_eq "data used: 5 x 256 written, 256 merged" "$(used)" $((u0 + 1024))
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "snapshot 6: s1" "$(sum "$(V 6)" 8192 256)" "$(fsum "$DD_TMP/s1" 0 256)"
check_eq "snapshot 6: s2" "$(sum "$(V 6)" 10240 256)" "$(fsum "$DD_TMP/s2" 0 256)"
check_eq "volume 7: s1" "$(sum "$(V 7)" 0 256)" "$(fsum "$DD_TMP/s1" 0 256)"
check_eq "volume 5: w, then s2" "$(sum "$(V 5)" 0 2048) $(sum "$(V 5)" 8192 256)" \
	"$WS $(fsum "$DD_TMP/s2" 0 256)"
check_eq "volume 4 is unchanged" "$(sum "$(V 4)" 0 2048)" "$WS"

# What every volume holds now (the unshare and the full pass must keep it).
all_sums() {
	for v in 1 2 3 4 5 6 7; do
		echo "$v $(dd_sum "$(V $v)")"
	done
}
all_sums >"$DD_TMP/sums.before"

log "--- scan index_memory at run time keeps the index; scan full walks everything"
cap0=$(st index_capacity)
ent0=$(st index_entries)
check "scan index_memory 2" scan_msg $P index_memory 2
check_eq "index_bytes 2 MiB" "$(st index_bytes)" 2097152
check "index_capacity changed ($cap0 -> $(st index_capacity))" test "$(st index_capacity)" != "$cap0"
check_eq "the entries moved to the new table" "$(st index_entries)" "$ent0"
# A fourth copy of the first 1000 blocks of x (volume 1's copy of them is merged
# with volume 2's): found through the resized index.
check "volume 8 (domain 0)" vol 8 0
u0=$(used)
m0=$(st merged_blocks)
scan_note $P
check "blocks 0-999 of x to volume 8" put "$DD_TMP/x1000" "$(V 8)" 0
wait_pass "a pass ends"
check_eq "all 1000 merged through the resized index" "$(st merged_blocks)" $((m0 + 1000))
check_eq "data used unchanged" "$(used)" "$u0"
echo "8 $(fsum "$DD_TMP/x" 0 1000)" >>"$DD_TMP/sums.before"
echo "8 $(sum "$(V 8)" 0 1000)" >"$DD_TMP/sum8"

log "--- scan full walks every mapped block and finds nothing new"
u0=$(used)
fp0=$(st full_passes)
sc0=$(st scanned)
scan_note $P
check "scan full" scan_msg $P full
wait_pass "the full pass ends"
check_eq "full_passes +1" "$(st full_passes)" $((fp0 + 1))
log "full pass: pass_todo $(st pass_todo), pass_done $(st pass_done), data used $u0, scanned $sc0 -> $(st scanned)"
check_eq "the full pass took every used block" "$(st pass_todo)" "$u0"
check "the full pass hashed blocks" test "$(st scanned)" -gt "$sc0"
check_eq "data used unchanged" "$(used)" "$u0"
log "--- scan run 2 undoes every merge, scan full finds them all again"
u_merged=$(used)
# Blocks merged and still shared through the merge: merged less broken by writes
in_effect=$(($(st merged_blocks) - $(st cow_breaks)))
un0=$(st unshared)
check "scan run 2" scan_msg $P run 2
check "the unshare ends (state off)" scan_wait_state $P off 120
check_eq "run is 0 after the unshare" "$(st run)" 0
check_eq "data used: every merge undone (+$in_effect)" "$(used)" $((u_merged + in_effect))
check_eq "unshared: $in_effect blocks copied" "$(($(st unshared) - un0))" "$in_effect"
check_eq "blocks_shared: the snapshot's 2048 only" "$(st blocks_shared)" 2048
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
all_sums >"$DD_TMP/sums.unshared"
echo "8 $(sum "$(V 8)" 0 1000)" >>"$DD_TMP/sums.unshared"
check "every volume reads as before the unshare" cmp "$DD_TMP/sums.before" "$DD_TMP/sums.unshared"
check "index_memory 4" scan_msg $P index_memory 4
fp0=$(st full_passes)
scan_note $P
check "scan full" scan_msg $P full
check "scan run 1" scan_msg $P run 1
wait_pass "the full pass ends"
check_eq "full_passes +1" "$(st full_passes)" $((fp0 + 1))
check_eq "data used: every merge found again" "$(used)" "$u_merged"
check "page cache dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
all_sums >"$DD_TMP/sums.after"
echo "8 $(sum "$(V 8)" 0 1000)" >>"$DD_TMP/sums.after"
check "every volume reads as before" cmp "$DD_TMP/sums.before" "$DD_TMP/sums.after"
scan_stats $P >"$DD_OUT/scan-stats.txt"
log "pool status: $(dmsetup status $P)"

for v in 1 2 3 4 5 6 7 8; do
	check "volume $v is removed" dmsetup remove "ddt-v$v"
done
check "pool is removed" dmsetup remove $P
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
