#!/bin/sh
# Crash replay of the whole target, data and metadata together: the pool's metadata
# and data devices are two dm-linear slices of ONE dm-log-writes device, so one log
# orders every write, flush, FUA and discard of both as they reached stable storage.
# A mixed workload runs on it: dd_tokens writes on several volumes (whole blocks, runs
# of up to 64 blocks, 512-byte writes across blocks, zero blocks, blocks duplicated
# across volumes that the scanner merges), discards, snapshots that the next writes
# split, volume deletes and re-creates of a deleted id, pool reloads (passdown on and
# off), the scanner running throughout.  After each fsync the script reads every
# volume back through the live pool (checked against the model) and marks the log.
# Then dd_logreplay replays the log onto two fresh devices and, at flush and FUA
# entries (every one, or every n-th: DD_REPLAY_STRIDE), tests/vm/replay-point.sh
# checks that the metadata as left checks clean, the pool opens read-write (over
# snapshots), every volume that existed at the last mark opens and reads back what
# the last completed flush made durable or a later write (never another volume's
# data, never a discarded block's contents), deleted volumes stay deleted, and, at
# every DD_REPLAY_FULL-th point, the recovered pool takes new writes that read back
# and leaves metadata that checks clean.  The model is an honest device: a completed
# flush is durable.
# 32 rounds make 1,250-1,450 flush and FUA entries (the pool's own commits vary with
# timing): the kernel checks every mark and every 64th of them here (about 55 points;
# each costs seconds under emulation: the kernel's open and reads are what they add),
# the host checks every one of them through the userspace engine afterwards
# (tests/scripts/replay-engine.sh, run by make test, wants at least 1,000): the same
# log, so the same bytes, at every point.  (Every 16th, 120 points, doubled the
# guest's time: the extra points repeated the kernel's open and reads at more places
# that the host's replay checks anyway.)
# vm: timeout=1500 disks=1 disk_size=4G smp=1
. "$(dirname "$0")/lib.sh"

ROUNDS=${DD_REPLAY_ROUNDS:-32}
STRIDE=${DD_REPLAY_STRIDE:-64}
FULL=${DD_REPLAY_FULL:-5}
VSZ=8192 # sectors per volume (4 MiB)

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-log-writes && modprobe dm-snapshot || die "no dm-log-writes or dm-snapshot"
command -v dd_tokens >/dev/null && command -v dd_logreplay >/dev/null ||
	die "dd_tokens / dd_logreplay are not installed"
LOGDEV=${DD_DISKS%% *}
[ -b "$LOGDEV" ] || die "no disk for the log"

W=$DD_TMP/replay
rm -rf "$W"
mkdir -p "$W"
MS=32768 # metadata: 16 MiB
DS=65536 # data: 32 MiB
orig=$(dd_loop 48M) && rmeta=$(dd_loop 16M) && rdata=$(dd_loop 32M) &&
	cowm=$(dd_loop 16M) && cowd=$(dd_loop 32M) || die "cannot set up loop devices"
# The log must start empty (its super sector says how many entries follow).
dd if=/dev/zero of="$LOGDEV" bs=1M count=1 oflag=direct 2>/dev/null

check "the log-writes device is created" \
	sh -c "echo '0 $((MS + DS)) log-writes $orig $LOGDEV' | dmsetup create ddt-log"
check "the metadata and data slices are created" \
	sh -c "echo '0 $MS linear /dev/mapper/ddt-log 0' | dmsetup create ddt-lmeta &&
		echo '0 $DS linear /dev/mapper/ddt-log $MS' | dmsetup create ddt-ldata"
LM=/dev/mapper/ddt-lmeta
LD=/dev/mapper/ddt-ldata
pool_table() { # pool_table [FEATURE...]
	_f=
	[ $# -gt 0 ] && _f=" $# $*"
	echo "0 $DS dedup-pool $LM $LD 8 0$_f"
}
create_pool() { pool_table | dmsetup create ddt-pool; }
check "the pool is created on the slices" create_pool
dmsetup status ddt-pool >/dev/null 2>&1 || die "no pool"

# --- the model -----------------------------------------------------------------------
# live: the volume ids with a device; s.ID: "must|may|gone ARGS" for the current
# interval (see replay-point.sh); i$K/: the interval after mark mK (journals j.ID,
# the spec written at its end); m$K.ID: the map of volume ID read at mark mK.
K=0
live=
gone=
next_id=1
seed=1
writes=0
events=

add_volume() { # add_volume ID SPEC_HOW ARGS...: a device for volume ID, in the model
	_id=$1
	shift
	echo "$VSZ" >"$W/size.$_id"
	echo "0 $VSZ dedup /dev/mapper/ddt-pool $_id" | dmsetup create "ddt-v$_id" || return 1
	live="$live $_id"
	echo "$*" >"$W/s.$_id"
}

# mark: flush, read every live volume back through the live pool against the model,
# save the maps, write the interval's spec, mark the log, start the next interval.
mark() {
	dd_tokens flush "/dev/mapper/ddt-v${live##* }" || return 1
	for _id in $live; do
		# shellcheck disable=SC2046
		(cd "$W" && dd_tokens verify "/dev/mapper/ddt-v$_id" $(cut -d' ' -f2- "s.$_id") \
			--name "live volume $_id" --out "m$((K + 1)).$_id") || return 1
	done
	if [ -d "$W/i$K" ]; then
		: >"$W/i$K/spec"
		for _f in "$W"/s.*; do
			[ -f "$_f" ] && echo "${_f##*.} $(cat "$_f")" >>"$W/i$K/spec"
		done
	fi
	K=$((K + 1))
	mkdir -p "$W/i$K"
	for _id in $live; do
		: >"$W/i$K/j.$_id"
		echo "must --map m$K.$_id --journal i$K/j.$_id" >"$W/s.$_id"
	done
	for _id in $gone; do echo "gone" >"$W/s.$_id"; done
	dmsetup message ddt-log 0 mark "m$K"
}

for _i in 1 2 3 4; do
	: >"$W/j0.$_i"
	check "volume $_i is created" sh -c "dmsetup message ddt-pool 0 create_volume $_i"
	add_volume $_i may --zero --journal "j0.$_i" || die "volume $_i has no device"
	next_id=$((_i + 1))
done
check "the scanner runs with no rate limit" sh -c "dmsetup message ddt-pool 0 scan rate 0 &&
	dmsetup message ddt-pool 0 scan run 1"
# mark m1 ends interval 0 (the pool being made: replay-point.sh skips it, K starts at 1).
K=0
check "mark m1: volumes read back, the log is marked" mark

# work ID: 24 dd_tokens writes (12 of them duplicates) on volume ID, journalled in this
# interval, then its fsync; the next seed.
work() {
	dd_tokens write "/dev/mapper/ddt-v$1" "$W/i$K/j.$1" --seed $seed --count 24 --dups 12 ||
		return 1
	seed=$((seed + 1))
	writes=$((writes + 24))
}

passdown=on
r=1
while [ $r -le "$ROUNDS" ]; do
	# Writes on every live volume; each volume's run ends with an fsync.
	for _id in $live; do
		work "$_id" || { fail "round $r: writes to volume $_id"; break 2; }
	done
	first=${live# }
	first=${first%% *}
	# Events, in turn.
	case $((r % 5)) in
	1) # a snapshot of the first volume; the next writes split its blocks
		if [ "$(echo $live | wc -w)" -lt 6 ]; then
			s=$next_id
			next_id=$((next_id + 1))
			cp "$W/i$K/j.$first" "$W/i$K/j.$first.snap$s"
			: >"$W/i$K/j.$s"
			dmsetup suspend "ddt-v$first" &&
				dmsetup message ddt-pool 0 create_snap $s "$first" &&
				dmsetup resume "ddt-v$first" &&
				add_volume $s may $(cut -d' ' -f2- "$W/s.$first" | sed "s|i$K/j.$first\$|i$K/j.$first.snap$s|") \
					--journal "i$K/j.$s" ||
				{ fail "round $r: snapshot $s of volume $first"; break; }
			events="$events snapshot"
			work "$first" || { fail "round $r: writes after the snapshot"; break; }
		fi
		;;
	2) # discards: whole blocks and a range with partial blocks at its ends
		for _id in $live; do
			o=$(((r * 977 + _id * 131) % (VSZ - 1200)))
			echo "$o 1024 0" >>"$W/i$K/j.$_id"
			blkdiscard -o $((o * 512)) -l $((1024 * 512)) "/dev/mapper/ddt-v$_id" ||
				{ fail "round $r: discard on volume $_id"; break 2; }
		done
		events="$events discard"
		;;
	3) # a volume deleted (the newest, while more than three live)
		if [ "$(echo $live | wc -w)" -gt 3 ]; then
			d=${live##* }
			dmsetup remove "ddt-v$d" && dmsetup message ddt-pool 0 delete_volume "$d" ||
				{ fail "round $r: delete of volume $d"; break; }
			live=$(echo "$live" | sed "s/ $d\$//")
			sed -i 's/^must/may/' "$W/s.$d"
			gone="$gone $d"
			events="$events delete"
		fi
		;;
	4) # a deleted id created again: it must read zeroes or its own writes
		if [ -n "$gone" ]; then
			d=${gone##* }
			gone=$(echo "$gone" | sed "s/ $d\$//")
			: >"$W/i$K/j.$d"
			dmsetup message ddt-pool 0 create_volume "$d" &&
				add_volume "$d" may --zero --journal "i$K/j.$d" ||
				{ fail "round $r: volume $d created again"; break; }
			work "$d" || { fail "round $r: writes to the new volume $d"; break; }
			events="$events recreate"
		fi
		;;
	0) # a reload that turns discard passdown off or on again
		if [ $passdown = on ]; then t=$(pool_table no_discard_passdown); passdown=off; else t=$(pool_table); passdown=on; fi
		echo "$t" | dmsetup load ddt-pool && dmsetup suspend ddt-pool && dmsetup resume ddt-pool ||
			{ fail "round $r: reload of the pool"; break; }
		events="$events reload"
		;;
	esac
	mark || { fail "round $r: the live volumes do not read back (see above)"; break; }
	r=$((r + 1))
done
ok "workload: $((r - 1)) rounds, $writes writes, events:$(echo "$events" | tr " " "\n" | grep -v "^$" | sort | uniq -c | awk '{printf " %s %s", $1, $2}')"
merged=$(scan_stat ddt-pool merged_blocks)
log "scanner: $(scan_stats ddt-pool | tr '\n' ' ')"

# The last interval's spec: the state at the last mark, no writes after it.
for _f in "$W"/s.*; do echo "${_f##*.} $(cat "$_f")" >>"$W/i$K/spec"; done
for v in $live; do dmsetup remove "ddt-v$v"; done
check "the pool is removed cleanly" dmsetup remove ddt-pool
check "the slices and the log device are removed (the log is closed)" \
	sh -c "dmsetup remove ddt-lmeta && dmsetup remove ddt-ldata && dmsetup remove ddt-log"
dd_logreplay list "$LOGDEV" >"$W/list"
nent=$(grep -vc '^#' "$W/list")
nflush=$(awk '!/^#/ && ($2 ~ /F/ || $2 ~ /U/)' "$W/list" | wc -l)
nmark=$(awk '!/^#/ && $2 ~ /M/' "$W/list" | wc -l)
log "the log: $nent entries, $nflush flush or FUA, $nmark marks; scanner merged ${merged:-?} blocks"
check "the log holds a mark for every round" test "$nmark" -ge $((ROUNDS + 1))
# The model, for tests/scripts/replay-engine.sh: the host checks every flush of this
# log (the guest's /dev/vda) through the userspace engine.
echo "$MS $DS" >"$W/geometry"
check "the model is saved for the host's replay" tar -C "$W" -cf "$DD_OUT/replay-model.tar" .

export RP_DIR=$W RP_META=$rmeta RP_DATA=$rdata RP_COWM=$cowm RP_COWD=$cowd RP_MS=$MS RP_DS=$DS
export RP_FULL=$FULL
: >"$W/checked"
t0=$(dd_uptime_cs)
check "every point of the log replays to a pool that opens, checks clean and reads back" \
	dd_logreplay replay "$LOGDEV" --at flush --stride "$STRIDE" \
		--exec "sh $DD_TESTS/replay-point.sh" "$rmeta:0:$MS" "$rdata:$MS:$DS"
t1=$(dd_uptime_cs)
npoints=$(wc -l <"$W/checked")
nfull=$(grep -c full "$W/checked" || true)
log "replay points checked: $npoints (of them $nfull with new writes and a check after), stride $STRIDE, $(((t1 - t0) / 100)) s"
want=$(awk -v stride="$STRIDE" -f "$DD_TESTS/replay-points.awk" "$W/list")
check_eq "every point the stride picks after mark m1 was checked ($want)" "$npoints" "$want"
# The check can fail: the devices now hold the end of the log, which the model of
# mark m1 (the first round's writes and no later ones) does not allow.
expect_fail "a control: the end of the log checked against mark m1's model fails" \
	env DD_REPLAY_MARK=m1 DD_REPLAY_INDEX=end DD_REPLAY_POINT=1 sh "$DD_TESTS/replay-point.sh"
grep -q 'does not read back' "$DD_STATE/out" && ok "the control failed on data read back" ||
	{ fail "the control failed for another reason"; _dd_show "$DD_STATE/out"; }
echo "points $npoints full $nfull entries $nent flushes $nflush writes $writes" >"$DD_OUT/replay-summary.txt"
finish
