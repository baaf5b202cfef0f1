# tests/vm/corrupt-lib.sh: the pool and the helpers of the damaged-metadata tests
# (36-corrupt-metadata, 37-corrupt-blocks).  Sourced after lib.sh, it builds a pool
# with a block of every type: three volumes (3 a snapshot of 1), a two-level map
# (volume 1 maps LBNs 0..15 and 1016..1019: leaves 0 and 2 under a node), blocks
# shared by the snapshot and merged by the scanner (volume 2's 0..15 are volume 1's),
# a saved scanner index and saved written marks (volume 2's 40..43, written after
# the pass).  It removes the pool cleanly, saves the metadata image ($GOOD) and
# finds one block of each type in it ($SB, $SBOLD, $MBMP, $VOLS, $NODE, $LMAP,
# $REFS, $DBMP, $WBMP, $INDX: dedup_dump --blocks).  Each case is
#
#     damage DESC [BLOCK OFFSET MASK [--restamp]]     (dd_bitflip on a copy)
#     expect_refused TEXT [LOG] | expect_rw | expect_ro NEEDS_CHECK |
#     expect_scanner_off | expect_lazy BADVOL [TOUCH...]
#
# and the script ends with corrupt_finish.

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 4M) && data=$(dd_loop 16M) || die "cannot set up loop devices"
MB=$(($(dd_sectors "$meta") / 8))

# --- a pool with every block type ------------------------------------------------
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
check "volume 1 is created" dd_volume_create ddt-pool 1 ddt-v1 32768
check "volume 2 is created" dd_volume_create ddt-pool 2 ddt-v2 32768
for f in a1 b1 c2 d2; do
	head -c 65536 /dev/urandom >"$DD_TMP/$f"
done
# Volume 1: LBNs 0..15 and 1016..1019 (map leaves 0 and 2 under a node).  Volume 2:
# 0..15 the same as volume 1's (the scanner merges them), 16..31 its own.
check "volume 1 is written" sh -c "dd if=$DD_TMP/a1 of=/dev/mapper/ddt-v1 bs=4096 oflag=direct 2>/dev/null &&
	dd if=$DD_TMP/b1 of=/dev/mapper/ddt-v1 bs=4096 seek=1016 count=4 oflag=direct conv=fsync 2>/dev/null"
check "volume 2 is written" sh -c "dd if=$DD_TMP/a1 of=/dev/mapper/ddt-v2 bs=4096 oflag=direct 2>/dev/null &&
	dd if=$DD_TMP/c2 of=/dev/mapper/ddt-v2 bs=4096 seek=16 oflag=direct conv=fsync 2>/dev/null"
check "volume 1 is suspended" dmsetup suspend ddt-v1
check "snapshot 3 of volume 1" dmsetup message ddt-pool 0 create_snap 3 1
check "volume 1 is resumed" dmsetup resume ddt-v1
check "the snapshot is activated" dd_volume_activate ddt-pool 3 ddt-v3 32768
scan_note ddt-pool
check "the scanner runs" scan_msg ddt-pool run 1
check "... and its pass ends" scan_wait_idle ddt-pool 120
check_eq "volume 2's copy of volume 1 is merged (16 blocks)" "$(scan_stat ddt-pool merged_blocks)" 16
check "the scanner is stopped (its run setting is kept: no pass after an open)" scan_msg ddt-pool run 0
# Written after the pass: saved as written marks when the pool is removed.
check "volume 2: 4 more blocks, marked for the next pass" \
	dd if="$DD_TMP/d2" of=/dev/mapper/ddt-v2 bs=4096 seek=40 count=4 oflag=direct conv=fsync

# The contents each volume must read back: volume 1 at 0..15 and 1016..1019, volume 2
# at 0..43, the snapshot as volume 1.
vsum() {
	case $1 in
	2) dd if=/dev/mapper/ddt-v2 bs=4096 count=44 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1 ;;
	*) { dd if="/dev/mapper/ddt-v$1" bs=4096 count=16 iflag=direct 2>/dev/null &&
		dd if="/dev/mapper/ddt-v$1" bs=4096 skip=1016 count=4 iflag=direct 2>/dev/null; } |
		sha256sum | cut -d' ' -f1 ;;
	esac
}
want1=$(vsum 1)
want2=$(vsum 2)
check_eq "the snapshot reads as volume 1" "$(vsum 3)" "$want1"
check "devices are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-v2 &&
	dmsetup remove ddt-v3 && dmsetup remove ddt-pool"
check "the metadata checks clean" dd_check_metadata "$meta"
GOOD=$DD_TMP/good.img
check "the metadata image is saved" dd if="$meta" of="$GOOD" bs=1M iflag=direct
dedup_dump --blocks "$GOOD" >"$DD_TMP/dump" 2>&1
awk '/^blocks/ {b = 1; next} b && NF >= 6' "$DD_TMP/dump" >"$DD_TMP/blocks"
_dd_show "$DD_TMP/blocks"

# blk TYPE [TREE [OWNER]]: the first block in use of this type (tree, owner).
blk() {
	awk -v t="$1" -v tr="${2:-}" -v o="${3:-}" \
		'$2 == t && (tr == "" || $3 == tr) && (o == "" || $5 == o) {print $1; exit}' "$DD_TMP/blocks"
}
SB=$(awk '$2 == "SUPR" && $6 == "in" {print $1; exit}' "$DD_TMP/blocks")
SBOLD=$(awk '$2 == "SUPR" && $6 == "older" {print $1; exit}' "$DD_TMP/blocks")
MBMP=$(blk MBMP)
VOLS=$(blk VOLS)
NODE=$(blk NODE map 1)
LMAP=$(blk LMAP map 1)
REFS=$(blk REFS)
DBMP=$(blk DBMP)
WBMP=$(blk WBMP)
INDX=$(blk INDX)
log "superblock $SB (older $SBOLD), mbitmap $MBMP, vols $VOLS, node $NODE, map leaf $LMAP," \
	"records $REFS, dbitmap $DBMP, written $WBMP, index $INDX"
for b in "$SB" "$SBOLD" "$MBMP" "$VOLS" "$NODE" "$LMAP" "$REFS" "$DBMP" "$WBMP" "$INDX"; do
	[ -n "$b" ] || die "the pool lacks a block type (see the list above)"
done

# --- the cases --------------------------------------------------------------------
POOL="0 $(dd_sectors "$data") dedup-pool $meta $data 8 0"
NCASE=0

# damage DESC [BLOCK OFFSET MASK [--restamp]]: the saved image, with one byte of
# BLOCK XORed with MASK (dd_bitflip), goes onto the metadata device.  DESC names the
# case in its checks.
damage() {
	C=$1
	NCASE=$((NCASE + 1))
	log "--- case $NCASE: $C"
	cp "$GOOD" "$DD_TMP/case.img" &&
		{ [ $# -eq 1 ] || dd_bitflip $5 "$DD_TMP/case.img" "$2" "$3" "$4"; } &&
		dd if="$DD_TMP/case.img" of="$meta" bs=1M oflag=direct 2>/dev/null ||
		fail "$C: the damage cannot be made"
	dd_mark "$DD_TEST.c$NCASE"
}

# Also damages the same byte of a second block (both superblocks).
damage_also() {
	dd_bitflip $4 "$DD_TMP/case.img" "$1" "$2" "$3" &&
		dd if="$DD_TMP/case.img" of="$meta" bs=1M oflag=direct 2>/dev/null ||
		fail "$C: the second damage cannot be made"
}

# The pool's mode and needs_check fields.
mode_nc() { dmsetup status ddt-pool | awk '{print $12, $13}'; }

activate() {
	for v in 1 2 3; do
		dd_volume_activate ddt-pool $v ddt-v$v 32768 || return 1
	done
}

remove_all() {
	for d in ddt-v1 ddt-v2 ddt-v3 ddt-pool; do
		dmsetup remove $d 2>/dev/null
	done
	check "$C: no WARN/BUG/oops" dd_kernel_clean_since "$DD_TEST.c$NCASE"
}

# expect_refused TEXT [LOG]: the pool is refused with ti->error TEXT (and the kernel
# log shows LOG, the engine's reason).
expect_refused() {
	expect_table_error "$C: refused" ddt-pool dedup-pool "$1" "$POOL"
	if [ -n "${2:-}" ]; then
		check "$C: the log says why ('$2')" sh -c "dmesg | sed -n '/dd-mark: $DD_TEST.c$NCASE\$/,\$p' |
			grep -F -- '$2'"
	fi
}

# reads_right VOLS...: those volumes read back what they held.
reads_right() {
	for v in "$@"; do
		if [ "$v" = 2 ]; then w=$want2; else w=$want1; fi
		check_eq "$C: volume $v reads back right" "$(vsum $v)" "$w"
	done
}

writes_refused() {
	expect_fail "$C: a write in place is refused" \
		dd if="$DD_TMP/c2" of=/dev/mapper/ddt-v2 bs=4096 seek=16 count=1 oflag=direct conv=notrunc,fsync
	expect_fail "$C: a write that needs a new block is refused" \
		dd if="$DD_TMP/c2" of=/dev/mapper/ddt-v2 bs=4096 seek=200 count=1 oflag=direct conv=fsync
	reads_right 2
}

# expect_ro NEEDS_CHECK: opens read-only, status needs_check field NEEDS_CHECK
# (needs_check or -), everything reads back right, writes are refused.
expect_ro() {
	check "$C: the pool opens" sh -c "echo '$POOL' | dmsetup create ddt-pool"
	check_eq "$C: its mode is ro, needs_check '$1'" "$(mode_nc)" "ro $1"
	check "$C: the volumes are activated" activate
	reads_right 1 2 3
	writes_refused
	remove_all
}

# expect_rw: opens read-write (from the older superblock), everything reads back right
# and a write works.
expect_rw() {
	check "$C: the pool opens" sh -c "echo '$POOL' | dmsetup create ddt-pool"
	check_eq "$C: its mode is rw, no needs_check" "$(mode_nc)" "rw -"
	check "$C: the volumes are activated" activate
	reads_right 1 2 3
	check "$C: a write that needs a new block works" \
		dd if="$DD_TMP/c2" of=/dev/mapper/ddt-v2 bs=4096 seek=200 count=1 oflag=direct conv=fsync
	remove_all
}

# expect_scanner_off: opens read-write with the scanner's state not loaded: the log
# says so, scan messages fail with -EIO and say to run dedup_check, data is right.
expect_scanner_off() {
	check "$C: the pool opens" sh -c "echo '$POOL' | dmsetup create ddt-pool"
	check "$C: the log says the scanner state is unreadable" sh -c "dmesg |
		sed -n '/dd-mark: $DD_TEST.c$NCASE\$/,\$p' | grep -F 'scanner state unreadable'"
	check_eq "$C: its mode is rw" "$(dd_pool_field ddt-pool 9)" rw
	expect_message_error "$C: scan stats" ddt-pool "Input/output error" \
		"scan: the scanner's state on the metadata device is unreadable: run dedup_check" \
		scan stats
	expect_message_error "$C: scan run 1" ddt-pool "Input/output error" \
		"scan: the scanner's state on the metadata device is unreadable: run dedup_check" \
		scan run 1
	check "$C: the volumes are activated" activate
	reads_right 1 2 3
	remove_all
}

# expect_lazy BADVOL TOUCH...: opens read-write (the block is read when needed); then
# reading BADVOL (if not -) fails, TOUCH (if given: I/O that needs the block) fails;
# after that the pool is read-only with needs_check, the other volumes read right
# and writes are refused.
expect_lazy() {
	bad=$1
	shift
	check "$C: the pool opens" sh -c "echo '$POOL' | dmsetup create ddt-pool"
	check "$C: the volumes are activated" activate
	if [ "$bad" != - ]; then
		expect_fail "$C: reading volume $bad fails (never wrong data)" \
			dd if=/dev/mapper/ddt-v$bad of=/dev/null bs=4096 count=1 iflag=direct
	fi
	if [ $# -gt 0 ]; then
		expect_fail "$C: I/O that needs the damaged block fails ($*)" "$@"
	fi
	check_eq "$C: the pool is ro, status says needs_check" "$(mode_nc)" "ro needs_check"
	for v in 1 2 3; do
		[ "$v" = "$bad" ] || reads_right $v
	done
	expect_fail "$C: a write in place is refused" \
		dd if="$DD_TMP/c2" of=/dev/mapper/ddt-v2 bs=4096 seek=16 count=1 oflag=direct conv=notrunc,fsync
	reads_right 2
	remove_all
}

COW="dd if=$DD_TMP/d2 of=/dev/mapper/ddt-v3 bs=4096 count=1 oflag=direct conv=notrunc,fsync"
DAMAGED="Metadata damaged (superblock, journal or volume table): run dedup_check"

# corrupt_finish: the undamaged image opens read-write with all data once more (the
# damage was the cases' only difference), the kernel log is clean, the tally.
corrupt_finish() {
	damage "no damage, after all the others"
	expect_rw
	check "the metadata checks clean" dd_check_metadata "$meta"
	check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
	log "$NCASE damaged-metadata cases (with the two undamaged controls)"
	finish
}

# The control: the saved image as it is.
damage "no damage (the control)"
expect_rw
