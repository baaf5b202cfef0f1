#!/bin/sh
# I/O errors of the devices under a pool.  The data and metadata devices are dm devices
# whose tables are swapped to put faults at known blocks (found with dedup_dump): error
# segments (dm-error) and always-down dm-flakey segments as bad-block lists (dm-dust is
# not built in Debian's 6.1 or 6.12 kernels), error segments over every free data block
# (a write that needs a new block fails wherever the pool puts it), a dm-flakey segment
# with error_writes that every flush reaches, and a dm-flakey with up/down intervals.
# It proves:
#  1. a read of a bad data block fails with an I/O error (never zeroes or other data)
#     on every volume that maps it, on each read path (a cold one-block read, a cold
#     read over many blocks, the lookup cache's fast path), and every other block reads
#     back; the pool stays rw without needs_check (data errors are not metadata errors);
#  2. a write whose data write fails fails with an I/O error and maps nothing: after the
#     fault the LBN reads its old data (zeroes if never written), live and after the
#     pool is reopened from its commit, for a first write, an in-place overwrite, a COW
#     over a snapshot's block, 1 MiB writes (first, in place, COW, in place then COW:
#     served in segments; of a failed in-place run each block holds its old or new
#     data, the failed one its old) and 512-byte read-modify-writes (first, COW, a COW
#     whose read fails, in place); data used and mapped blocks do not move; the same
#     writes succeed afterwards.  Failed flushes: with nothing to commit the flush fails
#     and the pool stays rw; a commit whose flush fails drops the transaction (the new
#     block's LBN reads zeroes) and the pool goes ro with needs_check; the documented
#     recovery (dedup_check, --clear-needs-check, reload) brings it back rw;
#  3. faults that come and go (dm-flakey up 1 s, down 1 s, error_writes, on the whole
#     data device), while fio writes with O_SYNC at random and verifies what was
#     acknowledged (crc32c, verify_backlog) on a second volume: in a model of 4 KiB and
#     512-byte writes (dd, conv=fsync; each sector names the write that made it, each
#     outcome is logged), every sector holds its last acknowledged write, or a later
#     failed one, or its data from before if none was acknowledged, live and after a
#     reopen; a snapshot keeps its data; a pool that goes ro is recovered as in 2;
#  4. a metadata block that cannot be read (a volume's map root), met by a read and by
#     a write: the I/O fails, the pool goes ro with needs_check, other volumes read on;
#     once the device works, dedup_check finds the metadata clean, and after
#     --clear-needs-check the pool comes back rw with every volume's data.
#     (17-metadata-errors covers failed metadata writes and damaged blocks.)
# The faults injected (fault tables) and the I/O errors they caused are counted and
# printed; the metadata checks clean after every case.
# vm: timeout=400 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-flakey || die "no dm-flakey"
T=$DD_TMP/faults
mkdir -p "$T"
metaf=$(dd_loop 8M) && dataf=$(dd_loop 32M) || die "cannot set up loop devices"
MB=$(($(dd_sectors "$metaf") / 8))
DB=$(($(dd_sectors "$dataf") / 8))
VSEC=32768 # every volume: 16 MiB
FAULT_TABLES=0
IO_ERRORS=0

sum() { sha256sum | cut -d' ' -f1; }
# rd DEV LBN N: N blocks of a device from LBN, O_DIRECT, in one read up to 1 MiB;
# rdx: the same read to /dev/null, with dd's messages; src FILE BLK N: of a file.
rd() {
	if [ "$3" -le 256 ]; then
		dd if="$1" bs=$(($3 * 4096)) skip=$(($2 * 4096)) count=1 iflag=skip_bytes,direct 2>/dev/null
	else # (whole MiBs)
		dd if="$1" bs=1048576 skip=$(($2 / 256)) count=$(($3 / 256)) iflag=direct 2>/dev/null
	fi
}
rdx() { dd if="$1" of=/dev/null bs=$(($3 * 4096)) skip=$(($2 * 4096)) count=1 iflag=skip_bytes,direct 2>&1; }
src() { dd if="$1" bs=4096 skip="$2" count="$3" 2>/dev/null; }
# wr DEV FILE LBN [SECTOR]: FILE in one write at that LBN (and sector), O_DIRECT, then
# fsync (the flush commits): success means the write is acknowledged and durable.
wr() {
	dd if="$2" of="$1" bs="$(wc -c <"$2")" count=1 seek=$(($3 * 4096 + ${4:-0} * 512)) \
		oflag=seek_bytes,direct conv=notrunc,fsync 2>&1
}

# --- device tables --------------------------------------------------------------------

# seg_table DEV BLOCKS DEFAULT LISTED "RANGES": a table over DEV's BLOCKS 4 KiB blocks
# in which the RANGES (pbn or pbn+len) are LISTED and the rest DEFAULT: linear, error,
# flakey (always down, no features: reads and writes fail) or flakey_w (always down,
# error_writes: writes and flushes fail, reads work).
seg_table() {
	# shellcheck disable=SC2086 # one range a word
	printf '%s\n' $5 | sort -n | awk -v dev="$1" -v n="$2" -v def="$3" -v lst="$4" '
		function seg(a, b, k,    s, l) {
			if (b <= a) return
			s = a * 8; l = (b - a) * 8
			if (k == "linear") print s, l, "linear", dev, s
			else if (k == "error") print s, l, "error"
			else if (k == "flakey") print s, l, "flakey", dev, s, 0, 1
			else print s, l, "flakey", dev, s, 0, 1, 1, "error_writes"
		}
		BEGIN { pos = 0 }
		NF {
			split($1, r, "+"); st = r[1] + 0; ln = (r[2] == "" ? 1 : r[2] + 0)
			if (st < pos || st + ln > n) { print "bad range " $1 > "/dev/stderr"; exit 1 }
			seg(pos, st, def); seg(st, st + ln, lst); pos = st + ln
		}
		END { seg(pos, n, def) }'
}

# load_table NAME: swap in the table on stdin.
load_table() { dmsetup load "$1" && dmsetup suspend "$1" && dmsetup resume "$1"; }

# fault_data KIND "RANGES": those data blocks fail (KIND error or flakey), the rest works.
fault_data() {
	FAULT_TABLES=$((FAULT_TABLES + 1))
	seg_table "$dataf" "$DB" linear "$1" "$2" >"$T/table" && load_table ddt-data <"$T/table"
}
# fault_free: every data block that no volume maps fails (reads and writes).
fault_free() {
	FAULT_TABLES=$((FAULT_TABLES + 1))
	seg_table "$dataf" "$DB" error linear "$USED" >"$T/table" && load_table ddt-data <"$T/table"
}
heal_data() { echo "0 $((DB * 8)) linear $dataf 0" | load_table ddt-data; }
fault_meta() {
	FAULT_TABLES=$((FAULT_TABLES + 1))
	seg_table "$metaf" "$MB" linear error "$1" >"$T/table" && load_table ddt-meta <"$T/table"
}
heal_meta() { echo "0 $((MB * 8)) linear $metaf 0" | load_table ddt-meta; }

check "the metadata device is a dm device (linear)" \
	sh -c "echo '0 $((MB * 8)) linear $metaf 0' | dmsetup create ddt-meta"
check "the data device is a dm device (linear)" \
	sh -c "echo '0 $((DB * 8)) linear $dataf 0' | dmsetup create ddt-data"
M=/dev/mapper/ddt-meta
D=/dev/mapper/ddt-data

# --- the pool and its volumes -----------------------------------------------------------
# Volumes: 1 ddt-v1, 2 ddt-v2, 3 ddt-s1 (snapshot of 1), 4 ddt-s2 (a later one).
V1=/dev/mapper/ddt-v1 V2=/dev/mapper/ddt-v2 S1=/dev/mapper/ddt-s1 S2=/dev/mapper/ddt-s2
VOLS=""
volname() { echo "ddt-$(echo "x v1 v2 s1 s2" | cut -d' ' -f$(($1 + 1)))"; }
pool_down() {
	for _v in 4 3 2 1; do
		if [ -e "/dev/mapper/$(volname $_v)" ]; then
			dmsetup remove "$(volname $_v)" || return 1
		fi
	done
	dmsetup remove ddt-pool
}
pool_up() {
	dd_pool_create ddt-pool $M $D || return 1
	for _v in $VOLS; do
		dd_volume_activate ddt-pool "$_v" "$(volname "$_v")" $VSEC || return 1
	done
}
mode_is() { check_eq "$1: pool mode, needs_check" \
	"$(dd_pool_field ddt-pool 9) $(dd_pool_field ddt-pool 10)" "$2"; }
mapped() { dd_pool_field ddt-pool 4; }

# dump: the pool down, its mappings dumped into $T/dump, USED = the data blocks mapped
# (runs), the pool up again with a cold lookup cache.
dump() {
	pool_down || return 1
	dedup_check $M || return 1
	dedup_dump --mappings $M >"$T/dump" || return 1
	USED=$(awk '$2 == "->" { print $3, $3 + substr($1, index($1, "+") + 1) }' "$T/dump" |
		sort -n | awk 'NR == 1 { s = $1; e = $2; next }
			$1 <= e { if ($2 > e) e = $2; next }
			{ print s "+" (e - s); s = $1; e = $2 }
			END { if (NR) print s "+" (e - s) }')
	pool_up
}
# pbn_of VOL LBN: where the last dump maps it.
pbn_of() {
	awk -v v="$1" -v l="$2" '
		$1 == "volume" && $3 == "mappings" { cur = $2; next }
		cur == v && $2 == "->" {
			split($1, r, "+")
			if (l >= r[1] + 0 && l < r[1] + r[2]) { print $3 + l - r[1]; exit }
		}' "$T/dump"
}

# expect_eio DESC CMD...: CMD fails, and with an I/O error.
expect_eio() {
	_desc=$1
	shift
	if "$@" >"$T/out" 2>&1; then
		fail "$_desc (succeeded, expected an I/O error: $*)"
	elif grep -q "Input/output error" "$T/out"; then
		IO_ERRORS=$((IO_ERRORS + 1))
		ok "$_desc"
	else
		fail "$_desc (failed, but not with an I/O error: $*)"
		sed 's/^/#   | /' "$T/out"
	fi
}
# same DESC DEV LBN N IMG: N blocks of DEV from LBN equal the image's.
same() {
	if rd "$2" "$3" "$4" | cmp -n $(($4 * 4096)) - "$5" 0 $(($3 * 4096)) >"$T/cmp" 2>&1; then
		ok "$1"
	else
		fail "$1 (blocks $3+$4 of $2 differ from $5)"
		head -n 3 "$T/cmp" | sed 's/^/#   | /'
	fi
}
# classify DEV LBN N OLD NEW: for each of the N blocks from LBN a letter, o (the image
# OLD's block at LBN), n (block k of the file NEW) or x (anything else).
blockrows() { od -A n -v -t x8 -w4096 "$1"; }
classify() {
	rd "$1" "$2" "$3" >"$T/cls.got"
	src "$4" "$2" "$3" >"$T/cls.old"
	blockrows "$T/cls.got" >"$T/cls.g"
	blockrows "$T/cls.old" >"$T/cls.o"
	blockrows "$5" >"$T/cls.n"
	awk -v n="$3" 'FILENAME == ARGV[1] { g[FNR] = $0; next }
		FILENAME == ARGV[2] { o[FNR] = $0; next }
		{ w[FNR] = $0 }
		END {
			for (i = 1; i <= n; i++)
				printf "%s", !(i in g) ? "x" : g[i] == o[i] ? "o" : g[i] == w[i] ? "n" : "x"
			print ""
		}' "$T/cls.g" "$T/cls.o" "$T/cls.n"
}
# img_put IMG LBN FILE [SECTOR]: what a successful write of FILE there makes of the image.
img_put() { dd if="$3" of="$1" bs=512 seek=$(($2 * 8 + ${4:-0})) conv=notrunc 2>/dev/null; }

# --- setup: known data, some shared with a snapshot ------------------------------------
# Volume 1 (LBNs): 0-15 shared with the snapshot, 16-31 exclusive, 256-511 exclusive
# (written as 1 MiB), 512-767 shared, 768-895 exclusive then 896-1023 shared; 1024 on
# unmapped.  Volume 2: 0-15.  IMG1, IMGS, IMG2: what volume 1, the snapshot and volume 2
# hold (6 MiB of each).
IMG1=$T/img1 IMGS=$T/imgs IMG2=$T/img2
rand() { head -c $(($1 * 4096)) /dev/urandom; }
truncate -s 6M "$IMGS" "$IMG2" || die "no scratch space"
rand 16 >"$T/x" && img_put "$IMGS" 0 "$T/x"
rand 256 >"$T/x" && img_put "$IMGS" 512 "$T/x"
rand 128 >"$T/x" && img_put "$IMGS" 896 "$T/x"
rand 16 >"$T/x" && img_put "$IMG2" 0 "$T/x"
cp "$IMGS" "$IMG1"
rand 16 >"$T/x" && img_put "$IMG1" 16 "$T/x"
rand 256 >"$T/x" && img_put "$IMG1" 256 "$T/x"
rand 128 >"$T/x" && img_put "$IMG1" 768 "$T/x"

check "pool is created" dd_pool_create ddt-pool $M $D
check "volumes 1 and 2 are created" sh -c "dmsetup message ddt-pool 0 create_volume 1 &&
	dmsetup message ddt-pool 0 create_volume 2"
VOLS="1 2"
check "... and activated" sh -c "echo '0 $VSEC dedup /dev/mapper/ddt-pool 1' | dmsetup create ddt-v1 &&
	echo '0 $VSEC dedup /dev/mapper/ddt-pool 2' | dmsetup create ddt-v2"
# put DEV IMG LBN N: blocks LBN..LBN+N-1 of the image, in one write.
put() { src "$2" "$3" "$4" >"$T/put" && wr "$1" "$T/put" "$3"; }
setup1() { put $V1 "$IMG1" 0 16 && put $V1 "$IMG1" 512 256 && put $V1 "$IMG1" 896 128 &&
	put $V2 "$IMG2" 0 16; }
check "volume 1: blocks 0-15, 512-767 (1 MiB), 896-1023; volume 2: blocks 0-15" setup1
check "snapshot 3 of volume 1 (ddt-s1)" sh -c "dmsetup suspend ddt-v1 &&
	dmsetup message ddt-pool 0 create_snap 3 1 && dmsetup resume ddt-v1 &&
	echo '0 $VSEC dedup /dev/mapper/ddt-pool 3' | dmsetup create ddt-s1"
VOLS="1 2 3"
setup2() { put $V1 "$IMG1" 16 16 && put $V1 "$IMG1" 256 256 && put $V1 "$IMG1" 768 128; }
check "volume 1 after it: blocks 16-31, 256-511 (1 MiB), 768-895 (exclusive)" setup2
# verify_all DESC: every volume holds its image (the first 6 MiB; 1 MiB of volume 2).
verify_all() {
	same "$1: volume 1 holds its data" $V1 0 1536 "$IMG1"
	same "$1: the snapshot holds its data" $S1 0 1536 "$IMGS"
	same "$1: volume 2 holds its data" $V2 0 256 "$IMG2"
}
check "the pool is reopened (metadata clean, mappings dumped)" dump

# --- 1. read errors ------------------------------------------------------------------
P3=$(pbn_of 1 3) P5=$(pbn_of 1 5) P17=$(pbn_of 1 17) P400=$(pbn_of 1 400) P600=$(pbn_of 1 600)
Q7=$(pbn_of 2 7)
log "data blocks: volume 1 LBN 3 -> $P3, 5 -> $P5, 17 -> $P17, 400 -> $P400, 600 -> $P600;" \
	"volume 2 LBN 7 -> $Q7"
check "the blocks are found in the dump" test -n "$P3" -a -n "$P5" -a -n "$P17" -a -n "$P400" \
	-a -n "$P600" -a -n "$Q7"
check_eq "volume 1's LBN 3 is shared with the snapshot" "$(pbn_of 3 3)" "$P3"
check_eq "volume 1's LBN 600 is shared with the snapshot" "$(pbn_of 3 600)" "$P600"
check "bad data blocks (dm-error): those of volume 1's LBNs 3, 17, 400, 600" \
	fault_data error "$P3 $P17 $P400 $P600"
expect_eio "volume 1, LBN 17: a cold one-block read (the worker's) fails" rdx $V1 17 1
expect_eio "... again, from the lookup cache (map()'s fast path)" rdx $V1 17 1
same "volume 1: LBN 16 reads back" $V1 16 1 "$IMG1"
same "volume 1: LBNs 18-31 read back" $V1 18 14 "$IMG1"
expect_eio "volume 1: a cold 1 MiB read over LBN 600 (the worker's runs) fails" rdx $V1 512 256
expect_eio "the snapshot: LBN 600 (the same block) fails too" rdx $S1 600 1
same "volume 1: LBNs 512-599 read back" $V1 512 88 "$IMG1"
same "volume 1: LBNs 601-767 read back" $V1 601 167 "$IMG1"
same "the snapshot: LBNs 512-599 read back" $S1 512 88 "$IMGS"
same "the snapshot: LBNs 601-767 read back" $S1 601 167 "$IMGS"
expect_eio "volume 1: a cold 1 MiB read over LBN 400 fails" rdx $V1 256 256
expect_eio "... again, from the lookup cache (one remap of the run)" rdx $V1 256 256
same "volume 1: LBNs 256-399 read back" $V1 256 144 "$IMG1"
same "volume 1: LBNs 401-511 read back" $V1 401 111 "$IMG1"
expect_eio "volume 1: LBN 3 fails" rdx $V1 3 1
expect_eio "the snapshot: LBN 3 fails" rdx $S1 3 1
same "volume 1: LBNs 0-2 read back" $V1 0 3 "$IMG1"
same "volume 1: LBNs 4-15 read back" $V1 4 12 "$IMG1"
same "the snapshot: LBNs 4-15 read back" $S1 4 12 "$IMGS"
same "volume 2 reads on" $V2 0 16 "$IMG2"
mode_is "after the read errors" "rw -"
check "bad data blocks move (dm-flakey, always down): volume 1's LBN 5, volume 2's LBN 7" \
	fault_data flakey "$P5 $Q7"
expect_eio "volume 1: LBN 5 fails" rdx $V1 5 1
expect_eio "the snapshot: LBN 5 fails" rdx $S1 5 1
expect_eio "volume 2: LBN 7 fails" rdx $V2 7 1
same "volume 2: LBNs 0-6 read back" $V2 0 7 "$IMG2"
same "volume 2: LBNs 8-15 read back" $V2 8 8 "$IMG2"
same "volume 1: LBN 3 (bad before) reads back" $V1 3 1 "$IMG1"
same "volume 1: LBN 17 (bad before) reads back" $V1 17 1 "$IMG1"
same "volume 1: LBNs 256-511 (400 bad before) read back" $V1 256 256 "$IMG1"
same "volume 1: LBNs 512-767 (600 bad before) read back" $V1 512 256 "$IMG1"
mode_is "after the flakey read errors" "rw -"
check "the data device works again" heal_data
verify_all "after the read faults"
check "the pool takes a message (set_transaction_id 0 1)" \
	dmsetup message ddt-pool 0 set_transaction_id 0 1

# --- 2. write errors -----------------------------------------------------------------
P11=$(pbn_of 1 11) P20=$(pbn_of 1 20) P21=$(pbn_of 1 21) P300=$(pbn_of 1 300)
log "data blocks: volume 1 LBN 11 -> $P11, 20 -> $P20, 21 -> $P21, 300 -> $P300;" \
	"mapped: $(echo "$USED" | tr '\n' ' ')"
check "the blocks are found in the dump" test -n "$P11" -a -n "$P20" -a -n "$P21" -a -n "$P300"
used0=$(dd_pool_data_used ddt-pool)
mapped0=$(mapped)
rand 1 >"$T/n1" && rand 256 >"$T/n256" && head -c 512 /dev/urandom >"$T/n512" ||
	die "no random data"
# wfault DESC FAULT WRITE...: with FAULT in place (fault_free, or fault_data error
# RANGES) the write fails with an I/O error; then the fault is removed.
wfault() {
	_wd=$1 _wf=$2
	shift 2
	# shellcheck disable=SC2086 # the fault is a command and its arguments
	check "$_wd: the fault is in place" $_wf
	expect_eio "$_wd: the write fails" "$@"
	check "$_wd: the fault is removed" heal_data
	mode_is "$_wd" "rw -"
}
wfault "first write of LBN 1300 (a new block)" fault_free wr $V1 "$T/n1" 1300
same "... LBN 1300 reads zeroes" $V1 1300 1 "$IMG1"
wfault "in-place overwrite of LBN 20 (exclusive; its block fails)" "fault_data error $P20" \
	wr $V1 "$T/n1" 20
same "... LBN 20 reads its old data" $V1 20 1 "$IMG1"
wfault "COW write over LBN 8 (shared with the snapshot)" fault_free wr $V1 "$T/n1" 8
same "... volume 1's LBN 8 reads its old data" $V1 8 1 "$IMG1"
same "... the snapshot's LBN 8 too" $S1 8 1 "$IMGS"
wfault "1 MiB first write of LBNs 1024-1279" fault_free wr $V1 "$T/n256" 1024
same "... LBNs 1024-1279 read zeroes" $V1 1024 256 "$IMG1"
wfault "1 MiB in-place write of LBNs 256-511 (LBN 300's block fails)" \
	"fault_data error $P300" wr $V1 "$T/n256" 256
c=$(classify $V1 256 256 "$IMG1" "$T/n256")
log "blocks 256-511 (o old, n new, x other): $c"
check_eq "... LBN 300 reads its old data" "$(echo "$c" | cut -c45)" o
check_eq "... every block holds its old or its new data" "$(echo "$c" | tr -d on)" ""
check "... the old data is written back" put $V1 "$IMG1" 256 256
wfault "1 MiB COW write over LBNs 512-767 (shared)" fault_free wr $V1 "$T/n256" 512
same "... volume 1's LBNs 512-767 read their old data" $V1 512 256 "$IMG1"
same "... the snapshot's too" $S1 512 256 "$IMGS"
wfault "1 MiB write over LBNs 768-1023 (128 exclusive in place, then 128 shared: COW)" \
	fault_free wr $V1 "$T/n256" 768
c=$(classify $V1 768 256 "$IMG1" "$T/n256")
log "blocks 768-1023 (o old, n new, x other): $c"
check_eq "... LBNs 768-895 (in place) each hold their old or new data" \
	"$(echo "$c" | cut -c1-128 | tr -d on)" ""
check_eq "... LBNs 896-1023 (COW, failed) read their old data" \
	"$(echo "$c" | cut -c129-256 | tr -d o)" ""
same "... the snapshot's LBNs 768-1023 are unchanged" $S1 768 256 "$IMGS"
check "... the old data is written back" put $V1 "$IMG1" 768 128
wfault "512-byte write into LBN 10 (shared: read-modify-write into a new block)" fault_free \
	wr $V1 "$T/n512" 10 3
same "... volume 1's LBN 10 reads its old data" $V1 10 1 "$IMG1"
same "... the snapshot's too" $S1 10 1 "$IMGS"
wfault "512-byte write into LBN 11 (shared) whose old block fails (the RMW read)" \
	"fault_data error $P11" wr $V1 "$T/n512" 11 0
same "... volume 1's LBN 11 reads its old data" $V1 11 1 "$IMG1"
same "... the snapshot's too" $S1 11 1 "$IMGS"
wfault "512-byte write into LBN 1301 (unmapped: a new zero-filled block)" fault_free \
	wr $V1 "$T/n512" 1301 5
same "... LBN 1301 reads zeroes" $V1 1301 1 "$IMG1"
wfault "512-byte write into LBN 21 in place (its block fails)" "fault_data error $P21" \
	wr $V1 "$T/n512" 21 7
same "... LBN 21 reads its old data" $V1 21 1 "$IMG1"
check_eq "data used did not move" "$(dd_pool_data_used ddt-pool)" "$used0"
check_eq "mapped blocks did not move" "$(mapped)" "$mapped0"
verify_all "after the failed writes"
check "the pool is reopened from its commit (metadata clean)" dump
verify_all "after the failed writes and a reopen"
check_eq "data used after the reopen" "$(dd_pool_data_used ddt-pool)" "$used0"

# The same writes without the fault.
retry() { # retry DESC FILE LBN [SECTOR]
	check "retry of the $1 succeeds" wr $V1 "$2" "$3" ${4:+"$4"} && img_put "$IMG1" "$3" "$2" ${4:+"$4"}
}
retry "first write of LBN 1300" "$T/n1" 1300
retry "in-place overwrite of LBN 20" "$T/n1" 20
retry "COW write over LBN 8" "$T/n1" 8
retry "1 MiB first write" "$T/n256" 1024
retry "1 MiB in-place write" "$T/n256" 256
retry "1 MiB COW write" "$T/n256" 512
retry "1 MiB write in place then COW" "$T/n256" 768
retry "512-byte COW write into LBN 10" "$T/n512" 10 3
retry "512-byte COW write into LBN 11" "$T/n512" 11 0
retry "512-byte first write into LBN 1301" "$T/n512" 1301 5
retry "512-byte in-place write into LBN 21" "$T/n512" 21 7

# A data device whose flushes fail (dm-flakey always down with error_writes, over one
# block no write goes to: every flush reaches it).  A flush with nothing to commit
# fails; a commit fails (its mappings may name data that is not durable): the pool
# drops the transaction and goes ro with needs_check, as for a metadata error.
Q15=$(pbn_of 2 15)
check "volume 2's LBN 15 is found in the dump ($Q15)" test -n "$Q15"
check "the data device fails flushes (and writes to volume 2's block 15)" fault_data flakey_w "$Q15"
rand 1 >"$T/n1b" || die "no random data"
expect_eio "an in-place write to LBN 20: its flush fails" wr $V1 "$T/n1b" 20
c=$(classify $V1 20 1 "$IMG1" "$T/n1b")
check_eq "... LBN 20 holds its old or its new data" "$(echo "$c" | tr -d on)" ""
mode_is "after a failed flush with nothing to commit" "rw -"
expect_eio "a first write of LBN 1400: its commit fails" wr $V1 "$T/n1" 1400
mode_is "after a failed commit" "ro needs_check"
same "... LBN 1400 reads zeroes (the transaction was dropped)" $V1 1400 1 "$IMG1"
same "... volume 1 reads on" $V1 0 16 "$IMG1"
check "the data device works again" heal_data
check "the volumes and the pool are removed" pool_down
check "dedup_check finds the metadata clean" dedup_check $M
check "needs_check is cleared" dedup_check --clear-needs-check $M
check "the pool is reloaded" pool_up
mode_is "after the recovery" "rw -"
same "... LBN 1400 reads zeroes" $V1 1400 1 "$IMG1"
c=$(classify $V1 20 1 "$IMG1" "$T/n1b")
check_eq "... LBN 20 holds its old or its new data" "$(echo "$c" | tr -d on)" ""
check "... LBN 20's old data is written back" put $V1 "$IMG1" 20 1
check "... a first write of LBN 1400 succeeds" wr $V1 "$T/n1" 1400 && img_put "$IMG1" 1400 "$T/n1"
verify_all "after the failed flushes"

# --- 3. faults that come and go ------------------------------------------------------
# The model: volume 1's LBNs 2048-2127; 2048-2111 hold generation 0 (acknowledged) and
# are shared with snapshot 4, 2112-2127 were never written.  Each 512-byte sector written
# says "L<lbn> S<sector> G<write>" (padded to 512 bytes); $T/wlog lists every write
# with its outcome.
B3=2048 N3=80 PRE3=64
mkpay() { # mkpay LBN SECTOR COUNT GEN: COUNT sectors of write GEN
	_s=$2
	while [ "$_s" -lt $(($2 + $3)) ]; do
		printf '%-512s' "L$1 S$_s G$4"
		_s=$((_s + 1))
	done
}
: >"$T/gen0"
l=$B3
while [ $l -lt $((B3 + PRE3)) ]; do
	mkpay $l 0 8 0 >>"$T/gen0"
	l=$((l + 1))
done
check "volume 1: LBNs 2048-2111 hold generation 0 (one write)" wr $V1 "$T/gen0" $B3
check "snapshot 4 of volume 1 (ddt-s2)" sh -c "dmsetup suspend ddt-v1 &&
	dmsetup message ddt-pool 0 create_snap 4 1 && dmsetup resume ddt-v1 &&
	echo '0 $VSEC dedup /dev/mapper/ddt-pool 4' | dmsetup create ddt-s2"
VOLS="1 2 3 4"
: >"$T/wlog"

# model_check DESC DEV LOG: every sector of the model holds its last acknowledged write
# in LOG, or a failed write after it, or what it held before (generation 0 or zeroes).
model_check() {
	rd "$2" $B3 $N3 | tr '\000' '.' | fold -b -w 512 >"$T/got3"
	awk -v base=$B3 -v pre=$PRE3 -v nsec=$((N3 * 8)) '
		BEGIN { for (k = 0; k < nsec; k++) ack[k] = k < pre * 8 ? 0 : "Z" }
		FILENAME == ARGV[1] {
			for (s = $2; s < $2 + $3; s++) {
				k = ($1 - base) * 8 + s
				if ($5 == "ok") { ack[k] = $4; later[k] = "" }
				else later[k] = later[k] " " $4
			}
			next
		}
		{
			k = FNR - 1; l = base + int(k / 8); s = k % 8; n++
			if (length($0) != 512) g = "?"
			else if ($0 ~ /^\.+$/) g = "Z"
			else if (split($0, f, " ") == 3 && f[1] == "L" l && f[2] == "S" s && f[3] ~ /^G[0-9]+$/)
				g = substr(f[3], 2)
			else g = "?"
			if (g == ack[k]) { good++; next }
			if (index(later[k] " ", " " g " ")) { lateok++; next }
			if (++bad <= 5)
				printf "# LBN %d sector %d holds %s; last acknowledged %s, failed since:%s\n", l, s,
					g == "?" ? "other data" : g == "Z" ? "zeroes" : "write " g, ack[k], later[k]
		}
		END { printf "%d %d %d %d\n", n, good, lateok, bad }' "$3" "$T/got3" >"$T/mc"
	grep '^#' "$T/mc" | sed 's/^/#   /'
	# shellcheck disable=SC2046 # four numbers
	set -- "$1" $(tail -n 1 "$T/mc")
	log "$1: $2 sectors, $3 hold the last acknowledged write, $4 a later failed one, $5 other"
	check_eq "$1: every sector holds an acknowledged or a later failed write" "$2 $5" "$((N3 * 8)) 0"
}

# fio on volume 2 (LBNs 2048-2559): rounds of 64 O_SYNC 4 KiB writes at random over
# 256 KiB, going on after failed writes (fio then leaves those blocks out of its
# verification), every 16 read back and verified (crc32c; a mismatch ends the round with
# an error), until the pool is not rw or the loop is told to stop.
fio_loop() {
	_r=$1
	while [ ! -f "$T/fio.stop" ] && [ "$(dd_pool_field ddt-pool 9)" = rw ]; do
		fio --name=flaky --filename=$V2 --ioengine=psync --direct=1 --sync=1 --rw=randwrite \
			--bs=4k --offset=$((8 * 1048576 + (_r % 8) * 262144)) --size=256k \
			--continue_on_error=write --verify=crc32c --verify_backlog=16 --verify_fatal=1 \
			--output-format=json --output="$DD_OUT/fio.$_r.json" >"$DD_OUT/fio.$_r.err" 2>&1
		echo $? >"$DD_OUT/fio.$_r.rc"
		_r=$((_r + 1))
	done
}
RECOVERIES=0
# recover: a commit failed (the pool is ro with needs_check): the documented way back.
recover() {
	RECOVERIES=$((RECOVERIES + 1))
	touch "$T/fio.stop"
	wait "$FIOPID"
	_rd="recovery $RECOVERIES"
	log "$_rd after write $i: the pool is $(dd_pool_field ddt-pool 9) $(dd_pool_field ddt-pool 10)"
	mode_is "$_rd: a commit failed" "ro needs_check"
	check "$_rd: the volumes and the pool are removed" pool_down
	check "$_rd: dedup_check finds the metadata clean" dedup_check $M
	check "$_rd: needs_check is cleared" dedup_check --clear-needs-check $M
	check "$_rd: the pool is reloaded" pool_up
	mode_is "$_rd" "rw -"
	rm -f "$T/fio.stop"
	fio_loop $((RECOVERIES * 1000)) &
	FIOPID=$!
}

# The writes: 3 in 4 whole blocks, 1 in 4 one sector; LBNs at random (a fixed LCG).
awk -v base=$B3 -v n=$N3 'BEGIN {
	x = 12345
	for (i = 1; i <= 3000; i++) {
		x = (x * 69069 + 1) % 4294967296
		l = base + int(x / 65536) % n; k = int(x / 16) % 4; s = int(x / 256) % 8
		print i, l, k ? 0 : s, k ? 8 : 1
	}
}' >"$T/plan"
rm -f "$T/fio.stop" "$DD_OUT"/fio.*
flaky_data() {
	FAULT_TABLES=$((FAULT_TABLES + 1))
	echo "0 $((DB * 8)) flakey $dataf 0 1 1 1 error_writes" | load_table ddt-data
}
check "the data device fails writes and flushes 1 s in every 2 (dm-flakey up 1 down 1, error_writes)" \
	flaky_data
fio_loop 0 &
FIOPID=$!
oks=0 fails=0 windows=0 prev=ok others=0 i=0
while read -r i l s n <&3; do
	mkpay "$l" "$s" "$n" "$i" >"$T/pay"
	if wr $V1 "$T/pay" "$l" "$s" >"$T/wr.out"; then
		echo "$l $s $n $i ok" >>"$T/wlog"
		oks=$((oks + 1)) prev=ok
	else
		echo "$l $s $n $i fail" >>"$T/wlog"
		[ $prev = ok ] && windows=$((windows + 1))
		fails=$((fails + 1)) prev=fail
		if ! grep -q "Input/output error" "$T/wr.out"; then
			others=$((others + 1))
			sed 's/^/#   | /' "$T/wr.out"
		fi
		[ "$(dd_pool_field ddt-pool 9)" = rw ] || recover
	fi
	[ $windows -ge 3 ] && [ $prev = ok ] && [ $oks -ge 30 ] && break
done 3<"$T/plan"
touch "$T/fio.stop"
wait "$FIOPID"
log "writes: $i, $oks acknowledged, $fails failed, in $windows fault windows; $RECOVERIES recoveries"
check "the faults came and went (3 windows, 30 acknowledged writes) within 3000 writes" \
	test $windows -ge 3 -a $prev = ok -a $oks -ge 30
check_eq "every failed write failed with an I/O error" "$others" 0
check "the data device works again" heal_data
# Each round: exit 0, error 0 or EIO (5: the first failed write; fio went on, counting
# them in total_err), no verification failure (that ends the round, with EILSEQ).
rounds=0 fio_bad=0 fio_errs=0 fio_kib=0
for f in "$DD_OUT"/fio.*.rc; do
	[ -f "$f" ] || continue
	b=${f%.rc}
	rounds=$((rounds + 1))
	e=$(sed -n 's/.*"error" : \([0-9]*\).*/\1/p' "$b.json" | head -n 1)
	n=$(sed -n 's/.*"total_err" : \([0-9]*\).*/\1/p' "$b.json" | head -n 1)
	w=$(awk '/"write" : \{/ { w = 1 } w && /"io_kbytes"/ { gsub(/[^0-9]/, ""); print; exit }' "$b.json")
	fio_errs=$((fio_errs + ${n:-0}))
	fio_kib=$((fio_kib + ${w:-0}))
	rc=$(cat "$f") good=no
	case "$rc $e" in "0 0" | "0 5") good=yes ;; esac
	grep -qi "verif" "$b.err" && good=no
	if [ $good = no ]; then
		fio_bad=$((fio_bad + 1))
		log "fio round ${b##*.}: exit $rc, error '$e'"
		sed 's/^/#   | /' "$b.err"
	fi
done
log "fio: $rounds rounds, $fio_kib KiB acknowledged and verified, $fio_errs writes failed"
check "fio ran" test $rounds -gt 0
check_eq "every fio round verified what it wrote (exit 0, only I/O errors)" "$fio_bad" 0
FAILED_WRITES3=$fails
model_check "after the faults" $V1 "$T/wlog"
model_check "after the faults, the snapshot" $S2 /dev/null
if [ "$(dd_pool_field ddt-pool 10)" = needs_check ]; then
	recover
	touch "$T/fio.stop"
	wait "$FIOPID"
fi
mode_is "after the faults" "rw -"
check "the pool is reopened (metadata clean)" dump
model_check "after a reopen" $V1 "$T/wlog"
model_check "after a reopen, the snapshot" $S2 /dev/null
verify_all "after the faults that come and go"

# --- 4. a metadata block that cannot be read --------------------------------------------
# meta_fault DESC CMD...: with the pool down, volume 2's map root is made to fail on the
# metadata device and the pool is loaded (rw); CMD, the first I/O of volume 2, fails with
# an I/O error, and the pool goes ro with needs_check; the other volumes read on.  Once
# the device works, the pool is removed, dedup_check finds the metadata clean and clears
# needs_check.
meta_fault() {
	_md=$1
	shift
	_root=$(dedup_dump $M | awk '$1 == 2 && $2 ~ /valid/ {split($NF, a, "/"); print a[1]}')
	log "$_md: volume 2's map root is metadata block $_root"
	check "$_md: volume 2's map root is found" test -n "$_root"
	check "$_md: that metadata block fails (dm-error)" fault_meta "$_root"
	check "$_md: the pool is loaded" pool_up
	mode_is "$_md: before" "rw -"
	expect_eio "$_md: it fails" "$@"
	mode_is "$_md: a metadata error" "ro needs_check"
	same "$_md: volume 1 reads on" $V1 0 256 "$IMG1"
	same "$_md: the snapshot reads on" $S1 0 256 "$IMGS"
	check "$_md: the metadata device works again" heal_meta
	check "$_md: the volumes and the pool are removed" pool_down
	check "$_md: dedup_check finds the metadata clean" dedup_check $M
	check "$_md: needs_check is cleared" dedup_check --clear-needs-check $M
}
check "the volumes and the pool are removed" pool_down
meta_fault "a read of volume 2" rdx $V2 0 1
meta_fault "an in-place write to volume 2" wr $V2 "$T/n1" 1
check "the pool is reloaded" pool_up
mode_is "after the metadata faults" "rw -"
same "after the metadata faults: volume 2 holds its data" $V2 0 256 "$IMG2"
check "the pool takes messages again (create_volume 5)" dmsetup message ddt-pool 0 create_volume 5
verify_all "at the end"

check "the volumes and the pool are removed" pool_down
check "the metadata checks clean at the end" dedup_check $M
log "faults injected: $FAULT_TABLES fault tables; I/O errors returned: $IO_ERRORS in the" \
	"deterministic cases, $FAILED_WRITES3 failed writes while faults came and went" \
	"($RECOVERIES recoveries), $fio_errs failed fio writes"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
