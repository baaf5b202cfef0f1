#!/bin/sh
# Malformed and misdirected pool messages are refused, each with its errno and its own
# kernel log line, and change nothing: unknown messages, wrong argument counts, ids and
# numbers out of range (2^24, 2^32, 2^64, negative), create of an existing id, delete
# of an absent or active one, snapshots of an absent, active or the same volume, a
# transaction id that does not match, bad scan arguments; a message to a volume; every
# changing message to a read_only pool and to a pool in fail mode (metadata writes
# failing through dm-flakey), and a volume table against the failed pool.  At the end
# the pool holds exactly the volumes the accepted messages made, and checks clean.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-flakey || die "no dm-flakey"
meta=$(dd_loop 16M) && data=$(dd_loop 64M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
# The metadata passes through a dm device that can be made to fail (for fail mode).
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"
M=/dev/mapper/ddt-meta
check "pool is created" dd_pool_create ddt-pool $M "$data"
check "volume 1 is created and active" dd_volume_create ddt-pool 1 ddt-v1 32768
check "volume 1: 16 blocks are written" \
	dd if=/dev/urandom of=/dev/mapper/ddt-v1 bs=4096 count=16 oflag=direct conv=fsync
sum1=$(dd_sum /dev/mapper/ddt-v1 65536)
check "volume 2 is created (not active)" dmsetup message ddt-pool 0 create_volume 2

E=expect_message_error
EINVAL="Invalid argument"
# The pool's messages name it as major:minor.
K="dedup: $(dd_devno /dev/mapper/ddt-pool):"
TWO64=18446744073709551616

log "--- unknown messages and argument counts"
$E "an unknown message" ddt-pool "$EINVAL" "$K unrecognised pool message 'frobnicate'" \
	frobnicate 1
$E "a prefix of a message name" ddt-pool "$EINVAL" "$K unrecognised pool message 'create'" \
	create 5
$E "create_volume without an id" ddt-pool "$EINVAL" "dedup: usage: create_volume <id>" \
	create_volume
$E "create_volume with three arguments" ddt-pool "$EINVAL" "dedup: usage: create_volume <id>" \
	create_volume 5 0 0
$E "create_snap with one argument" ddt-pool "$EINVAL" "dedup: usage: create_snap <id> <origin id>" \
	create_snap 5
$E "create_snap with three arguments" ddt-pool "$EINVAL" "dedup: usage: create_snap <id> <origin id>" \
	create_snap 5 2 2
$E "delete_volume without an id" ddt-pool "$EINVAL" "dedup: usage: delete_volume <id>" \
	delete_volume
$E "delete_volume with two ids" ddt-pool "$EINVAL" "dedup: usage: delete_volume <id>" \
	delete_volume 2 3
$E "set_transaction_id with one id" ddt-pool "$EINVAL" \
	"dedup: usage: set_transaction_id <current id> <new id>" set_transaction_id 0
$E "set_transaction_id with three ids" ddt-pool "$EINVAL" \
	"dedup: usage: set_transaction_id <current id> <new id>" set_transaction_id 0 1 2

log "--- ids and numbers out of range"
$E "create_volume 2^24" ddt-pool "$EINVAL" "dedup: invalid volume id: 16777216" \
	create_volume 16777216
$E "create_volume 2^32 (0 in 32 bits)" ddt-pool "$EINVAL" "dedup: invalid volume id: 4294967296" \
	create_volume 4294967296
$E "create_volume 2^64" ddt-pool "$EINVAL" "dedup: invalid volume id: $TWO64" \
	create_volume $TWO64
$E "create_volume -1" ddt-pool "$EINVAL" "dedup: invalid volume id: -1" \
	create_volume -1
$E "create_volume with a non-numeric id" ddt-pool "$EINVAL" "dedup: invalid volume id: five" \
	create_volume five
$E "create_volume in domain 256" ddt-pool "$EINVAL" \
	"$K create_volume 5: invalid dedup domain '256' (0..255)" create_volume 5 256
$E "create_volume in domain 2^32" ddt-pool "$EINVAL" \
	"$K create_volume 5: invalid dedup domain '4294967296' (0..255)" create_volume 5 4294967296
$E "create_snap with an origin id of 2^24" ddt-pool "$EINVAL" "dedup: invalid volume id: 16777216" \
	create_snap 5 16777216
$E "create_snap with a snapshot id of 2^32 + 2" ddt-pool "$EINVAL" \
	"dedup: invalid volume id: 4294967298" create_snap 4294967298 2
$E "delete_volume 2^24" ddt-pool "$EINVAL" "dedup: invalid volume id: 16777216" \
	delete_volume 16777216
$E "delete_volume 2^32 + 2 (2 in 32 bits)" ddt-pool "$EINVAL" "dedup: invalid volume id: 4294967298" \
	delete_volume 4294967298
$E "set_transaction_id 0 2^64" ddt-pool "$EINVAL" "dedup: set_transaction_id: invalid transaction id" \
	set_transaction_id 0 $TWO64
$E "set_transaction_id -1 1" ddt-pool "$EINVAL" "dedup: set_transaction_id: invalid transaction id" \
	set_transaction_id -1 1

log "--- ids that exist, do not exist, or are busy"
$E "create_volume of an existing id" ddt-pool "File exists" "$K create_volume 2: already exists" \
	create_volume 2
$E "create_snap onto an existing id" ddt-pool "File exists" "$K create_snap 1 2: already exists" \
	create_snap 1 2
$E "create_snap of an absent origin" ddt-pool "No such file or directory" \
	"$K create_snap 5 99: does not exist" create_snap 5 99
$E "create_snap of a volume onto itself" ddt-pool "$EINVAL" "$K create_snap 2 2: invalid argument" \
	create_snap 2 2
$E "create_snap of an origin that is active and running" ddt-pool "Device or resource busy" \
	"$K create_snap 5 1: suspend the origin volume first" create_snap 5 1
$E "delete_volume of an absent id" ddt-pool "No such file or directory" \
	"$K delete_volume 99: does not exist" delete_volume 99
$E "delete_volume of an active volume" ddt-pool "Device or resource busy" \
	"$K delete_volume 1: volume is active" delete_volume 1
$E "set_transaction_id with the wrong current id" ddt-pool "$EINVAL" \
	"$K set_transaction_id 5 6: current id does not match" set_transaction_id 5 6
$E "a message to a volume (only the pool takes messages)" ddt-v1 "$EINVAL" \
	"Target type does not support messages" create_volume 5
check_eq "the transaction id is still 0" "$(dd_pool_field ddt-pool 1)" 0

log "--- scan messages"
$E "scan without a subcommand" ddt-pool "$EINVAL" "dedup: usage: scan run|rate|full|index_memory" \
	scan
$E "scan with an unknown subcommand" ddt-pool "$EINVAL" "$K scan frob: invalid argument '1'" \
	scan frob 1
$E "scan run without a value" ddt-pool "$EINVAL" "dedup: usage: scan run <0|1|2>" \
	scan run
$E "scan run 3" ddt-pool "$EINVAL" "$K scan run: invalid argument '3'" scan run 3
$E "scan run -1" ddt-pool "$EINVAL" "$K scan run: invalid argument '-1'" scan run -1
$E "scan run 2^32 + 1 (1 in 32 bits)" ddt-pool "$EINVAL" "$K scan run: invalid argument '4294967297'" \
	scan run 4294967297
$E "scan rate above 1048576" ddt-pool "$EINVAL" "$K scan rate: invalid argument '1048577'" \
	scan rate 1048577
$E "scan rate 2^64" ddt-pool "$EINVAL" "$K scan rate: invalid argument '$TWO64'" scan rate $TWO64
$E "scan index_memory 0" ddt-pool "$EINVAL" "$K scan index_memory: invalid argument '0'" \
	scan index_memory 0
$E "scan index_memory above 1048576" ddt-pool "$EINVAL" \
	"$K scan index_memory: invalid argument '1048577'" scan index_memory 1048577
$E "scan share_cap 1" ddt-pool "$EINVAL" "$K scan share_cap: invalid argument '1'" \
	scan share_cap 1
$E "scan share_cap 2^32" ddt-pool "$EINVAL" "$K scan share_cap: invalid argument '4294967296'" \
	scan share_cap 4294967296
$E "scan stats with an argument" ddt-pool "$EINVAL" "$K scan stats: invalid argument 'now'" \
	scan stats now
$E "scan full with an argument" ddt-pool "$EINVAL" "$K scan full: invalid argument 'now'" \
	scan full now
check_eq "scan: run is still 0" "$(scan_stat ddt-pool run)" 0
check_eq "scan: rate is still 32" "$(scan_stat ddt-pool rate_mib)" 32
check_eq "scan: share_cap is still 65536" "$(scan_stat ddt-pool share_cap)" 65536

log "--- the well-formed messages still work"
check "set_transaction_id 0 7" dmsetup message ddt-pool 0 set_transaction_id 0 7
check_eq "the transaction id is 7" "$(dd_pool_field ddt-pool 1)" 7
check "create_volume 3 in domain 255" dmsetup message ddt-pool 0 create_volume 3 255
check "volume 1 is suspended" dmsetup suspend ddt-v1
check "create_snap 4 1 of the suspended origin" dmsetup message ddt-pool 0 create_snap 4 1
check "volume 1 is resumed" dmsetup resume ddt-v1
check "delete_volume 3" dmsetup message ddt-pool 0 delete_volume 3
check "scan rate 0" dmsetup message ddt-pool 0 scan rate 0
check_eq "scan: rate is 0 (no limit)" "$(scan_stat ddt-pool rate_mib)" 0
check "volume 1 is removed" dmsetup remove ddt-v1
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata $M
# Ids that a truncation to 32 bits would have made (0, 1, 2) or that were refused.
vols=$(dedup_dump $M | awk '/^volumes/ {v = 1; next} /^$/ {v = 0} v && $2 ~ /valid/ {print $1}' |
	tr '\n' ' ')
check_eq "the pool holds exactly volumes 1, 2 and the snapshot 4" "$vols" "1 2 4 "

log "--- a read_only pool"
check "pool is opened read_only" dd_pool_create ddt-pool $M "$data" 0 read_only
K="dedup: $(dd_devno /dev/mapper/ddt-pool):"
check_eq "its mode is ro" "$(dd_pool_field ddt-pool 9)" ro
EROFS="Read-only file system"
$E "read_only: create_volume" ddt-pool "$EROFS" "$K create_volume: pool is in ro mode" \
	create_volume 9
$E "read_only: create_snap" ddt-pool "$EROFS" "$K create_snap: pool is in ro mode" \
	create_snap 9 1
$E "read_only: delete_volume" ddt-pool "$EROFS" "$K delete_volume: pool is in ro mode" \
	delete_volume 2
$E "read_only: set_transaction_id" ddt-pool "$EROFS" "$K set_transaction_id: pool is in ro mode" \
	set_transaction_id 7 8
$E "read_only: scan run 1" ddt-pool "$EROFS" "$K scan: pool is in ro mode" scan run 1
$E "read_only: scan full" ddt-pool "$EROFS" "$K scan: pool is in ro mode" scan full
$E "read_only: a malformed message is still refused as malformed" ddt-pool "$EINVAL" \
	"$K unrecognised pool message 'frobnicate'" frobnicate
check "read_only: scan stats still answers" scan_stats ddt-pool
check_eq "read_only: ... with the rate kept in the metadata (0)" "$(scan_stat ddt-pool rate_mib)" 0
check_eq "read_only: the transaction id is still 7" "$(dd_pool_field ddt-pool 1)" 7
check "read_only: volume 1 is activated" dd_volume_activate ddt-pool 1 ddt-v1 32768
check_eq "read_only: volume 1 reads its data" "$(dd_sum /dev/mapper/ddt-v1 65536)" "$sum1"
check "read_only: devices are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-pool"

log "--- a pool in fail mode"
check "pool is recreated read-write" dd_pool_create ddt-pool $M "$data"
K="dedup: $(dd_devno /dev/mapper/ddt-pool):"
check "volume 1 is activated" dd_volume_activate ddt-pool 1 ddt-v1 32768
check "the metadata device starts failing writes" \
	sh -c "echo '0 $MS flakey $meta 0 0 1 1 error_writes' | dmsetup load ddt-meta &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
expect_fail "a write that needs a new block, then a flush, fails" \
	sh -c "dd if=/dev/urandom of=/dev/mapper/ddt-v1 bs=4096 seek=100 count=1 oflag=direct conv=fsync 2>/dev/null"
check_eq "pool mode is fail" "$(dd_pool_field ddt-pool 9)" fail
$E "fail: create_volume" ddt-pool "$EROFS" "$K create_volume: pool is in fail mode" \
	create_volume 9
$E "fail: create_snap" ddt-pool "$EROFS" "$K create_snap: pool is in fail mode" create_snap 9 2
$E "fail: delete_volume" ddt-pool "$EROFS" "$K delete_volume: pool is in fail mode" \
	delete_volume 2
$E "fail: set_transaction_id" ddt-pool "$EROFS" "$K set_transaction_id: pool is in fail mode" \
	set_transaction_id 7 8
$E "fail: scan rate 5" ddt-pool "$EROFS" "$K scan: pool is in fail mode" scan rate 5
expect_table_error "fail: a volume table against the failed pool" ddt-vbad dedup \
	"Pool is in fail mode" "0 32768 dedup /dev/mapper/ddt-pool 2"
check "the metadata device works again" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup load ddt-meta &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
check "fail: devices are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-pool"
check "the metadata checks clean after fail mode" dd_check_metadata $M
vols=$(dedup_dump $M | awk '/^volumes/ {v = 1; next} /^$/ {v = 0} v && $2 ~ /valid/ {print $1}' |
	tr '\n' ' ')
check_eq "the pool still holds exactly volumes 1, 2 and 4" "$vols" "1 2 4 "
check "pool is recreated once more" dd_pool_create ddt-pool $M "$data"
check_eq "its transaction id is 7" "$(dd_pool_field ddt-pool 1)" 7
check "volume 1 is activated" dd_volume_activate ddt-pool 1 ddt-v1 32768
check_eq "volume 1 reads its data" "$(dd_sum /dev/mapper/ddt-v1 65536)" "$sum1"
check "devices are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-pool"
check "the metadata device is removed" dmsetup remove ddt-meta

check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
log "$DD_CASE malformed or misdirected messages (and tables) tried"
finish
