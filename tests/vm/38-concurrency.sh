#!/bin/sh
# Concurrency of the control path with I/O.  While fio writes and verifies without a
# pause (crc32c, direct I/O; 4-64 KiB on one volume, 512 B-64 KiB at 512-byte offsets,
# read-modify-write, on the other), two loops run at once: the messages loop creates a
# volume, writes its own pattern, snapshots it (origin suspended), overwrites part of
# the origin, checks that both read back their own data and deletes them; the tables
# loop grows the data device (a loop device over a file: truncate + losetup -c) and
# reloads the pool with the longer table and other features, reloads one fio volume
# with another length and suspends and resumes the other.  Proves: every fio run
# verified without an error; every round's volume and snapshot read back their own
# data; the data space grew each round and the tables say what was loaded; the pool
# stays rw; no WARN/BUG; the metadata checks clean.
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
t0=$(dd_uptime_cs)
elapsed() { echo $(( ($(dd_uptime_cs) - t0) / 100 )); }
MSG_ROUNDS=15		# rounds of the messages loop
TABLE_ROUNDS=15		# rounds of the tables loop
GROW_MIB=2		# the data device grows by this much each round
P=ddt-pool
FV=131072		# fio volumes: 64 MiB (fio uses the first 32 MiB)
LV=8192			# the round's volume: 4 MiB

dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 32M) && data=$(dd_loop 96M) || die "cannot set up loop devices"
datafile=$(awk -v d="$data" '$1 == d {print $2}' "$DD_STATE/loops")
[ -f "$datafile" ] || die "no backing file for $data"
M=$(dd_devno "$meta")
D=$(dd_devno "$data")
check "pool is created" dd_pool_create $P "$meta" "$data"
for v in 1 2; do
	check "fio volume $v is created" dd_volume_create $P $v ddt-f$v $FV
done

# --- fio on volumes 1 and 2, run after run until told to stop ---------------------------
DD_FIO="fio --ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --verify_fatal=1
	--do_verify=1 --randrepeat=0 --size=32M --io_size=4M --rate=2m,2m"
rm -f "$DD_TMP/stop"
dd_fio_loop 1 /dev/mapper/ddt-f1 --rw=randwrite --bsrange=4k-64k &
f1=$!
dd_fio_loop 2 /dev/mapper/ddt-f2 --rw=randwrite --bsrange=512-64k --blockalign=512 &
f2=$!

# --- the two loops --------------------------------------------------------------------
# Each runs in the background and writes what failed, with what it saw, to its .fail
# file, and its rounds done to its .rounds file; the script checks both at the end.
bad() { # bad LOOP ROUND WHAT...: record a failure of a loop
	_l=$1 _r=$2
	shift 2
	echo "round $_r: $*" >>"$DD_TMP/$_l.fail"
}
# same DEV FILE: the first 64 KiB blocks of DEV hold exactly FILE (read past the page
# cache); prints where they differ if not.
same() {
	dd if="$1" bs=65536 count=3 iflag=direct 2>/dev/null | cmp - "$2" 2>&1
}
head -c 65536 /dev/zero >"$DD_TMP/z"
msg_round() { # msg_round I: a volume and its snapshot, each with its own data
	_i=$1 _o=$((100 + $1)) _s=$((200 + $1)) _d=$DD_TMP/m
	_O=/dev/mapper/ddt-o$_i _S=/dev/mapper/ddt-s$_i
	# pat: 128 KiB written at 64 KiB; over: 64 KiB written over its second half
	head -c 131072 /dev/urandom >"$_d.pat"
	head -c 65536 /dev/urandom >"$_d.over"
	dd_volume_create $P $_o ddt-o$_i $LV || { bad msg $_i "create_volume $_o failed"; return; }
	dd if="$_d.pat" of=$_O bs=65536 seek=1 oflag=direct 2>/dev/null ||
		bad msg $_i "the pattern write failed"
	if dmsetup suspend ddt-o$_i; then
		dmsetup message $P 0 create_snap $_s $_o || bad msg $_i "create_snap $_s $_o failed"
		dmsetup resume ddt-o$_i || bad msg $_i "resume of the origin failed"
	else
		bad msg $_i "suspend of the origin failed"
	fi
	dd_volume_activate $P $_s ddt-s$_i $LV || bad msg $_i "the snapshot cannot be activated"
	dd if="$_d.over" of=$_O bs=65536 seek=2 oflag=direct conv=notrunc 2>/dev/null ||
		bad msg $_i "the overwrite failed"
	# The origin: zeroes, the pattern's first half, the overwrite; the snapshot: zeroes,
	# the pattern.
	head -c 65536 "$_d.pat" | cat "$DD_TMP/z" - "$_d.over" >"$_d.want-o"
	cat "$DD_TMP/z" "$_d.pat" >"$_d.want-s"
	_got=$(same $_O "$_d.want-o") || bad msg $_i "the origin does not read back its own data: $_got"
	_got=$(same $_S "$_d.want-s") || bad msg $_i "the snapshot does not read back the pattern: $_got"
	dmsetup remove ddt-s$_i ddt-o$_i || bad msg $_i "removing the devices failed"
	dmsetup message $P 0 delete_volume $_s && dmsetup message $P 0 delete_volume $_o ||
		bad msg $_i "delete_volume failed"
}
# The pool's features, one set per round in turn (read_only cannot change on a reload),
# in the order the table prints them.
features() {
	case $(($1 % 5)) in
	0) echo "" ;;
	1) echo "1 no_discard_passdown" ;;
	2) echo "2 ignore_discard skip_zero_detect" ;;
	3) echo "1 error_if_no_space" ;;
	4) echo "2 index_memory 2" ;;
	esac
}
table_round() { # table_round I: grow and reload the pool; reload and suspend fio volumes
	_i=$1
	_sec=$(($(dd_sectors "$data") + GROW_MIB * 2048))
	truncate -s $((_sec * 512)) "$datafile" && /usr/sbin/losetup -c "$data" ||
		bad table $_i "the data device cannot grow"
	_f=$(features $_i)
	_t="0 $_sec dedup-pool $M $D 8 $((_i * 16))${_f:+ $_f}"
	echo "$_t" | dmsetup reload $P && dmsetup suspend $P && dmsetup resume $P ||
		bad table $_i "reload of the pool with '$_t' failed"
	_got=$(dmsetup table $P)
	[ "$_got" = "$_t" ] || bad table $_i "the pool's table is '$_got', not '$_t'"
	# shellcheck disable=SC2046 # the status line's fields
	set -- $(dmsetup status $P)
	[ "${6#*/}" = $((_sec / 8)) ] ||
		bad table $_i "data used/total $6: the total is not the device's $((_sec / 8))"
	[ "${12}" = rw ] || bad table $_i "the pool is ${12}"
	# The resume swaps in the table loaded: fio's I/O waits for it.
	_len=$((FV + (_i % 2) * 16384))
	echo "0 $_len dedup /dev/mapper/$P 1" | dmsetup reload ddt-f1 && dmsetup resume ddt-f1 ||
		bad table $_i "reload of fio volume 1 ($_len sectors) failed"
	_got=$(dd_sectors /dev/mapper/ddt-f1)
	[ "$_got" = $_len ] || bad table $_i "fio volume 1 has $_got sectors, not $_len"
	dmsetup suspend ddt-f2 && dmsetup resume ddt-f2 ||
		bad table $_i "suspend/resume of fio volume 2 failed"
}
loop() { # loop NAME ROUNDS: NAME_round 1..ROUNDS, then the count in NAME.rounds
	: >"$DD_TMP/$1.fail"
	for _n in $(seq 1 "$2"); do
		"$1_round" "$_n"
		echo "$_n" >"$DD_TMP/$1.rounds"
		log "$1 round $_n done at $(elapsed) s"
	done
}
log "--- $MSG_ROUNDS message rounds and $TABLE_ROUNDS table rounds, at once, under fio"
loop msg "$MSG_ROUNDS" &
lm=$!
loop table "$TABLE_ROUNDS" &
lt=$!
wait $lm
log "messages loop done at $(elapsed) s"
wait $lt
log "tables loop done at $(elapsed) s"
touch "$DD_TMP/stop"
wait $f1
wait $f2
rounds_ok() { # rounds_ok LOOP WANT DESC: LOOP ran WANT rounds and recorded no failure
	_n=$(cat "$DD_TMP/$1.rounds" 2>/dev/null || echo 0)
	if [ "$_n" = "$2" ] && [ ! -s "$DD_TMP/$1.fail" ]; then
		ok "$1 loop: $_n of $2 rounds: $3"
	else
		fail "$1 loop: $_n of $2 rounds: $3"
		[ -s "$DD_TMP/$1.fail" ] && _dd_show "$DD_TMP/$1.fail"
	fi
}
rounds_ok msg "$MSG_ROUNDS" "each volume and its snapshot read back their own data"
rounds_ok table "$TABLE_ROUNDS" "the pool grew and took each table, the fio volumes theirs"
for v in 1 2; do
	runs=$(cat "$DD_TMP/fio$v.runs" 2>/dev/null || echo 0)
	check "fio volume $v: ran all along ($runs runs)" test "$runs" -gt 1
	if [ -e "$DD_TMP/fio$v.failed" ]; then
		fail "fio volume $v: every run verified ($(wc -l <"$DD_TMP/fio$v.failed") failed)"
		_dd_show "$DD_TMP/fio$v.failed"
		_dd_show "$DD_TMP/fio$v.out"
	else
		ok "fio volume $v: all $runs runs verified without an error"
	fi
done
log "pool: $(dmsetup status $P)"
check_eq "pool mode is rw" "$(dd_pool_field $P 9)" rw
check "fio volumes are removed" dmsetup remove ddt-f1 ddt-f2
check "pool is removed" dmsetup remove $P
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
log "wall time $(elapsed) s"
finish
