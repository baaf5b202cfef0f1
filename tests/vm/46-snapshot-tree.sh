#!/bin/sh
# A tree of snapshots that share map pages (docs/snapshots.md): on a pool with the
# share_snapshots feature whose journal is large enough to share (192 MiB of metadata,
# journal >= DD_COW_MIN_JOURNAL), a
# golden volume of 48 MiB of random data gets 10 clones and a clone gets a snapshot;
# the metadata proves that they share (incompat bit 0x1, every snapshot's map root is
# golden's, metadata used grew by less than one copy of golden's map would need).
# All 12 volumes then diverge at once under fio (crc32c, direct I/O): each writes its
# own range of whole blocks, each block once, two of them past golden's end, and
# 512-byte writes (read-modify-write through shared pages, and into unmapped blocks)
# go to three volumes meanwhile.  Proves: every volume reads back exactly its own
# image (its range as fio wrote it, its sectors, golden's data everywhere else, zeroes
# past it), never another volume's; per-volume mapped counts and the pool's data used
# equal a model (one block per LBN a volume wrote, one golden block per LBN still
# mapped through someone); the volumes are deleted one at a time in a seeded random
# order, and after each deletion's reclaim the others read back the same, data used
# and mapped equal the model, the metadata checks clean on the inactive pool and lists
# exactly the live volumes; at the end the pool is empty, data used 0, check clean.
# vm: timeout=1200 smp=2
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
t0=$(dd_uptime_cs)
elapsed() { echo $((($(dd_uptime_cs) - t0) / 100)); }
P=ddt-pool
NV=12			# volumes: index 0 golden (id 1), 1..10 clones of it, 11 a snapshot of a clone
SNAPOF=6		# index 11 (id 12) is a snapshot of the clone of index 5 (id 6)
GMIB=48			# golden's data
L=$((GMIB * 256))	# golden's LBNs: 0..L-1
R=1152			# each volume's own range: R blocks from i*R (the last two past L)
VB=14336		# volume length in blocks (56 MiB): 13824..14335 no range reaches
VS=$((VB * 8))
COW_MIN_JOURNAL=656	# DD_COW_MIN_JOURNAL (engine/dd-internal.h)
SEED=${T46_SEED:-$(($(od -An -N2 -tu2 /dev/urandom) + 0))}

dd_load_module || die "dm-dedup does not load"
# 192 MiB of metadata: the default journal is 1/32 of it, 1536 blocks.
meta=$(dd_loop 192M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
G=$DD_TMP/golden

vid() { echo $(($1 + 1)); }
vdev() { echo /dev/mapper/ddt-v$(($1 + 1)); }
LIVE=$(seq 0 $((NV - 1)))	# live volume indexes (the model)

# --- the model -----------------------------------------------------------------------
# $DD_TMP/rmw: the 512-byte writes, one line each: INDEX LBN SECTOR COUNT SRC (SRC: the
# first sector in $DD_TMP/rnd).  W_i = [i*R, i*R+R) and the LBNs of its rmw lines.
: >"$DD_TMP/rmw"
# model LIVE...: "<data used> <pool mapped> <mapped of each live volume...>"
model() {
	echo "$*" | awk -v L=$L -v R=$R -v rmwf="$DD_TMP/rmw" '
	{ n = NF; for (k = 1; k <= NF; k++) live[$k] = 1 }
	END {
		while ((getline line < rmwf) > 0) {
			split(line, f, " ")
			i = f[1]; l = f[2]
			if (!(i in live) || (l >= i * R && l < i * R + R) || ((i, l) in extra)) continue
			extra[i, l] = 1; nextra[i]++
			if (l < L) { inl[i, l] = 1; cnt[l]++ } else beyond[i]++
		}
		used = 0; mapped = 0; out = ""
		for (i in live) {
			s = i * R; e = s + R	# W_i = [s, e) and its extra LBNs
			w = R + nextra[i]
			used += w
			inl_range = (e <= L) ? R : (s >= L ? 0 : L - s)
			mv = L + (R - inl_range) + beyond[i]
			mapped += mv; mv_[i] = mv
			for (l = s; l < e && l < L; l++) cnt[l]++
		}
		golden = 0
		for (l = 0; l < L; l++)
			if (n > 0 && cnt[l] < n) golden++
		used += golden
		out = used " " mapped
		for (k = 0; k < 64; k++) if (k in live) out = out " " mv_[k]
		print out
	}'
}

# --- helpers -------------------------------------------------------------------------
pool_up() { # the pool and every live volume's device
	dd_pool_create $P "$meta" "$data" 0 share_snapshots || return 1
	for _i in $LIVE; do
		dd_volume_activate $P "$(vid $_i)" ddt-v$(vid $_i) $VS || return 1
	done
}
pool_down() {
	for _i in $LIVE; do
		dmsetup remove ddt-v$(vid $_i) || return 1
	done
	dmsetup remove $P
}
# dump: dedup_dump of the inactive metadata into $DD_TMP/dump; vols: its volume rows
# "id flags origin mapped highest created root/height".
dump() { dedup_dump "$meta" >"$DD_TMP/dump" 2>&1; }
vols() { awk '/^volumes$/ {v = 1; getline; next} v && NF == 0 {v = 0} v' "$DD_TMP/dump"; }

# read_hash DEV: a hash of the whole device, read past the page cache (into a file:
# xxhsum reading a pipe took 10 s for 56 MiB under TCG, from a file 0.5 s).
read_hash() {
	dd if="$1" of="$DD_TMP/rd" bs=1M iflag=direct 2>/dev/null &&
		xxhsum -H2 "$DD_TMP/rd" | cut -d' ' -f1
	rm -f "$DD_TMP/rd"
}
# expected I: volume I's image into $DD_TMP/exp (golden, its range, its sectors).
expected() {
	cp "$G" "$DD_TMP/exp" && truncate -s $((VB * 4096)) "$DD_TMP/exp" &&
		dd if="$DD_TMP/reg$1" of="$DD_TMP/exp" bs=4096 skip=$(($1 * R)) seek=$(($1 * R)) \
			count=$R conv=notrunc 2>/dev/null &&
		awk -v i="$1" '$1 == i' "$DD_TMP/rmw" | while read -r _v _l _s _c _src; do
			dd if="$DD_TMP/rnd" of="$DD_TMP/exp" bs=512 skip="$_src" \
				seek=$((_l * 8 + _s)) count="$_c" conv=notrunc 2>/dev/null || exit 1
		done
}
# explain I: where volume I differs from its image, and whose data it read there.
explain() {
	expected "$1" || return
	dd if="$(vdev "$1")" of="$DD_TMP/got" bs=1M iflag=direct 2>/dev/null
	cmp "$DD_TMP/exp" "$DD_TMP/got" | sed 's/^/#   /'
	_off=$(cmp "$DD_TMP/exp" "$DD_TMP/got" 2>/dev/null | awk '{for (k = 1; k < NF; k++) if ($k == "byte" || $k == "char") {sub(",", "", $(k + 1)); print $(k + 1)}}')
	[ -n "$_off" ] || return
	_l=$(((_off - 1) / 4096))
	blk() { dd if="$1" bs=4096 skip="$_l" count=1 2>/dev/null | xxhsum -H2 | cut -d' ' -f1; }
	_h=$(blk "$DD_TMP/got")
	_what="nothing known"
	[ "$_h" = "$(head -c 4096 /dev/zero | xxhsum -H2 | cut -d' ' -f1)" ] && _what="zeroes"
	[ $_l -lt $L ] && [ "$_h" = "$(blk "$G")" ] && _what="golden's block"
	for _j in $(seq 0 $((NV - 1))); do
		[ $_l -ge $((_j * R)) ] && [ $_l -lt $((_j * R + R)) ] &&
			[ "$_h" = "$(blk "$DD_TMP/reg$_j")" ] && _what="volume $(vid $_j)'s range"
	done
	log "volume $(vid "$1"): first difference in LBN $_l, which holds $_what"
}
# check_volumes WHEN: every live volume reads back its image; its status says the
# model's mapped count.
check_volumes() {
	set -- "$1" $(model $LIVE)
	_when=$1
	shift 3
	for _i in $LIVE; do
		_got=$(read_hash "$(vdev $_i)")
		if [ "$_got" = "$(cat "$DD_TMP/hash$_i")" ]; then
			ok "$_when: volume $(vid $_i) reads back its own image"
		else
			fail "$_when: volume $(vid $_i) reads back its own image"
			explain $_i
		fi
		check_eq "$_when: volume $(vid $_i) maps $1 blocks" \
			"$(dmsetup status ddt-v$(vid $_i) | cut -d' ' -f4)" "$1"
		shift
	done
}
# settled: wait (at most 120 s) until the pool's mapped count is the model's: the
# reclaim of deleted volumes is done (their entries count until they are freed).
settled() {
	_want=$(model $LIVE | cut -d' ' -f2)
	_n=0
	while [ "$(dd_pool_field $P 4)" != "$_want" ] && [ $_n -lt 240 ]; do
		sleep 0.5
		_n=$((_n + 1))
	done
	[ "$(dd_pool_field $P 4)" = "$_want" ] || {
		echo "pool mapped $(dd_pool_field $P 4), want $_want: $(dmsetup status $P)"
		return 1
	}
}
# check_pool WHEN: data used and mapped equal the model, then on the inactive pool the
# metadata checks clean and lists exactly the live volumes with their mapped counts.
check_pool() {
	check "$1: the reclaim ends (pool mapped = model)" settled
	set -- "$1" $(model $LIVE)
	check_eq "$1: data used = model" "$(dd_pool_data_used $P)" "$2"
	check_eq "$1: mapped = model" "$(dd_pool_field $P 4)" "$3"
	check_eq "$1: pool mode" "$(dd_pool_field $P 9) $(dd_pool_field $P 10)" "rw -"
	[ "${DO_DUMP:-1}" = 1 ] || return 0
	check "$1: devices are removed" pool_down
	check "$1: dedup_check is clean" dd_check_metadata "$meta"
	dump
	_w=$1
	shift 3
	_want=
	for _i in $LIVE; do
		_want="$_want$(vid $_i) valid $1;"
		shift
	done
	[ -n "$_want" ] || _want="(none);"
	check_eq "$_w: the metadata lists exactly the live volumes" \
		"$(vols | awk '{printf "%s;", $1 == "(none)" ? $1 : $1 " " $2 " " $4}')" "$_want"
	check "$_w: pool and volumes are re-created" pool_up
}

# --- 1. the pool and golden ---------------------------------------------------------------
check "pool is created (192 MiB metadata)" dd_pool_create $P "$meta" "$data" 0 share_snapshots
check "pool is removed (to read its superblock)" dmsetup remove $P
dump
jb=$(sed -n 's/^ *journal  *2 areas of \([0-9]*\) blocks.*/\1/p' "$DD_TMP/dump")
log "journal: ${jb:-?} blocks per area"
check "the journal is large enough to share ($jb >= $COW_MIN_JOURNAL)" \
	test "${jb:-0}" -ge $COW_MIN_JOURNAL
check "pool is opened again" dd_pool_create $P "$meta" "$data" 0 share_snapshots
check "golden (volume 1) is created" dd_volume_create $P 1 ddt-v1 $VS
head -c $((GMIB * 1048576)) /dev/urandom >"$G"
check "golden: $GMIB MiB of random data" \
	dd if="$G" of=/dev/mapper/ddt-v1 bs=1M oflag=direct conv=fsync
check_eq "golden: data used" "$(dd_pool_data_used $P)" $L
meta0=$(dd_pool_field $P 2 | cut -d/ -f1)

# --- 2. clones and a snapshot of a clone ----------------------------------------------------
snap() { # snap ID ORIGIN_ID: create_snap with the origin suspended; prints its time
	dmsetup suspend ddt-v$2 || return 1
	_s=$(dd_uptime_cs)
	dmsetup message $P 0 create_snap $1 $2
	_r=$?
	_e=$(dd_uptime_cs)
	dmsetup resume ddt-v$2 || return 1
	printf '%d.%02d' $(((_e - _s) / 100)) $(((_e - _s) % 100)) >"$DD_TMP/snaptime"
	return $_r
}
times=
for id in $(seq 2 11); do
	check "clone $id of golden (origin suspended)" snap $id 1
	times="$times $(cat "$DD_TMP/snaptime")"
	check "clone $id is activated" dd_volume_activate $P $id ddt-v$id $VS
done
check "snapshot 12 of clone $SNAPOF (origin suspended)" snap 12 $SNAPOF
times="$times $(cat "$DD_TMP/snaptime")"
check "snapshot 12 is activated" dd_volume_activate $P 12 ddt-v12 $VS
log "create_snap times (s), ids 2..12:$times"
meta1=$(dd_pool_field $P 2 | cut -d/ -f1)
check_eq "the snapshots take no data block" "$(dd_pool_data_used $P)" $L
check_eq "every volume maps golden's blocks" "$(dd_pool_field $P 4)" $((NV * L))
gsum=$(head -c $((VB * 4096)) /dev/zero | cat "$G" - | head -c $((VB * 4096)) | xxhsum -H2 | cut -d' ' -f1)
for i in 0 1 5 10 11; do
	check_eq "before the writes: volume $(vid $i) reads as golden" "$(read_hash "$(vdev $i)")" "$gsum"
done

# They share: the inactive metadata has the feature bit, one map root for all 12, and
# the snapshots grew the metadata by less than one copy of golden's map.
check "devices are removed" pool_down
dump
cp "$DD_TMP/dump" "$DD_OUT/dump-after-snapshots.txt"
check "the metadata checks clean after the snapshots" dd_check_metadata "$meta"
check_eq "incompat feature 0x1 (shared maps) is set" \
	"$(sed -n 's/.*features.*incompat \(0x[0-9a-f]*\).*/\1/p' "$DD_TMP/dump")" 0x1
groot=$(vols | awk '$1 == 1 {print $7}')
check_eq "all 12 volumes have golden's map root ($groot)" \
	"$(vols | awk -v r="$groot" '$7 == r {n++} END {print n + 0}')" $NV
dedup_dump --blocks "$meta" >"$DD_TMP/blocks" 2>&1
# Golden's leaves (owner 1: golden's family; each volume's walk lists the blocks it
# reaches, shared ones once per volume)
leaves=$(awk '$3 == "map" && $4 == 0 && $5 == 1 && !seen[$1]++ {n++} END {print n + 0}' \
	"$DD_TMP/blocks")
log "golden's map: $leaves leaves; metadata used $meta0 -> $meta1 over 11 snapshots"
check "golden's map has leaves ($leaves)" test "$leaves" -ge $((L / 1016))
check "11 snapshots grew the metadata by less than one copy of the map ($((meta1 - meta0)) < $leaves)" \
	test $((meta1 - meta0)) -lt "$leaves"
check "pool and volumes are re-created" pool_up

# --- 3. every volume diverges at once -------------------------------------------------------
head -c 1048576 /dev/urandom >"$DD_TMP/rnd"
# 512-byte writes: golden, clone 4 and snapshot 12, into blocks of golden's that they
# share (twice into one of them: the second is in place) and into unmapped blocks.
src=0
for spec in "0 2000 1 1" "0 2000 5 2" "0 5003 0 1" "0 9000 7 1" "0 12280 3 4" "0 14000 2 1" \
	"3 100 6 2" "3 7777 0 8" "3 11111 4 1" "3 14100 0 1" \
	"11 0 0 1" "11 3456 3 3" "11 6912 7 1" "11 12287 2 2" "11 14335 7 1"; do
	echo "$spec $src" >>"$DD_TMP/rmw"
	src=$((src + 8))
done
rmw_writes() {
	while read -r _v _l _s _c _src; do
		dd if="$DD_TMP/rnd" of="$(vdev "$_v")" bs=512 skip="$_src" seek=$((_l * 8 + _s)) \
			count="$_c" oflag=direct conv=notrunc 2>/dev/null || echo "$_v $_l" >>"$DD_TMP/rmw.fail"
		sleep 0.2
	done <"$DD_TMP/rmw"
}
jobs=
for i in $LIVE; do
	jobs="$jobs --name=v$(vid $i) --filename=$(vdev $i) --offset=$((i * R * 4096))"
done
t1=$(dd_uptime_cs)
rm -f "$DD_TMP/rmw.fail"
rmw_writes &
rmwpid=$!
# shellcheck disable=SC2086 # the job list
check "fio: 12 volumes write their own ranges at once, crc32c verified" \
	fio --ioengine=libaio --direct=1 --iodepth=4 --bs=4k --rw=randwrite --size=$((R * 4096)) \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
		--output="$DD_OUT/fio-diverge.txt" $jobs
wait $rmwpid
check "the 512-byte writes succeeded" test ! -e "$DD_TMP/rmw.fail"
log "writes took $((($(dd_uptime_cs) - t1) / 100)) s"
# Each range as fio left it, kept at its offset; fio's own headers (crc32c, offset)
# prove the copy before anything is compared with it.
RK=$((R / 128))		# a range in 512 KiB pieces
jobs=
for i in $LIVE; do
	check "volume $(vid $i): a copy of its range is saved" \
		dd if="$(vdev $i)" of="$DD_TMP/reg$i" bs=512k skip=$((i * RK)) seek=$((i * RK)) \
			count=$RK iflag=direct
	jobs="$jobs --name=c$i --filename=$DD_TMP/reg$i --offset=$((i * R * 4096))"
done
# shellcheck disable=SC2086 # the job list
check "the saved copies verify (fio verify_only: each block's crc32c and offset)" \
	fio --rw=write --bs=4k --size=$((R * 4096)) --verify=crc32c --verify_only=1 \
		--verify_fatal=1 --ioengine=psync --output="$DD_OUT/fio-saved.txt" $jobs
for i in $LIVE; do
	expected $i || die "cannot build volume $(vid $i)'s image"
	xxhsum -H2 <"$DD_TMP/exp" | cut -d' ' -f1 >"$DD_TMP/hash$i"
done
rm -f "$DD_TMP/exp"
# fio's writes differ from golden's everywhere, and a range never equals another's.
check_eq "no two volumes hold the same image" "$(cat "$DD_TMP"/hash* | sort -u | wc -l)" $NV

# --- 4. and 5. every volume reads back its own image; data used -----------------------------
check "page cache is dropped" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_volumes "after the writes"
log "model after the writes: $(model $LIVE) (data used, mapped, per volume)"
check_pool "after the writes"
check_volumes "after a reopen"
log "$(elapsed) s: writes checked; status $(dmsetup status $P)"

# --- 6. delete in a random order --------------------------------------------------------------
order=$(seq 0 $((NV - 1)) | awk -v s="$SEED" 'BEGIN {srand(s)} {print rand(), $1}' | sort -n |
	awk '{printf "%s ", $2}')
log "seed $SEED: delete order (ids):$(for i in $order; do printf ' %d' $(vid $i); done)"
step=0
for i in $order; do
	step=$((step + 1))
	id=$(vid $i)
	check "step $step: volume $id's device is removed" dmsetup remove ddt-v$id
	check "step $step: volume $id is deleted" dmsetup message $P 0 delete_volume $id
	LIVE=$(echo $LIVE | tr ' ' '\n' | awk -v i=$i '$1 != i' | tr '\n' ' ')
	check_pool "step $step (volume $id deleted)"
	[ -n "$LIVE" ] && check_volumes "step $step (volume $id deleted)"
	log "$(elapsed) s: step $step done; status $(dmsetup status $P)"
done

# --- 7. empty -------------------------------------------------------------------------
check_eq "the pool is empty: data used" "$(dd_pool_data_used $P)" 0
check_eq "the pool is empty: mapped" "$(dd_pool_field $P 4)" 0
check "pool is removed" dmsetup remove $P
check "the metadata checks clean at the end" dd_check_metadata "$meta"
dump
check_eq "no volume is left" "$(vols | tr -d ' ')" "(none)"
check_eq "the metadata's data used is 0" \
	"$(awk '$1 == "data" && $2 == "used" {print $3}' "$DD_TMP/dump")" 0
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
log "$(elapsed) s in all"
finish
