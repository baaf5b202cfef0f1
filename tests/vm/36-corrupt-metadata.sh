#!/bin/sh
# Damaged superblocks, and damage behind a valid checksum, are never trusted by the
# kernel target.  Over the pool of corrupt-lib.sh (a block of every type), copies of
# the metadata image are damaged and the pool is created over them: the superblock in
# use or both (a checksum byte, the payload, the block number, the magic), and, with
# the checksum re-stamped, its version, an unknown incompat and ro_compat bit, the
# needs_check flag, the journal size, the metadata and data sizes (2^40 and 2^46
# more data blocks: refused before the open allocates for them; 2^46 made it WARN),
# a journal to replay that is not there; then map entries past the data device, a
# map leaf of another owner, a node child outside the metadata, a node one level
# off, a volume table slot with another id, and a damaged volume table opened
# read_only.  Each case ends the documented way (refused with its ti->error; the
# older superblock, with all data; read-only, with needs_check where the metadata
# says so, data right, writes refused; or the first I/O that needs the block fails
# and the pool goes read-only with needs_check), never with wrong data or a WARN.
# (tests/unit/test_corrupt.c proves the engine's side in userspace.)
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/corrupt-lib.sh"

# Superblock.  Header field offsets: docs/format.md, section 8.
damage "superblock in use: a checksum byte" "$SB" 1 0x10
expect_rw
damage "superblock in use: the reserved payload" "$SB" 3000 0x04
expect_rw
damage "both superblocks: the block number (header)" "$SB" 8 0x02
damage_also "$SBOLD" 8 0x02
expect_refused "$DAMAGED" "no valid superblock"
damage "both superblocks: the magic" "$SB" 32 0x01
damage_also "$SBOLD" 32 0x01
expect_refused "Metadata device holds something other than a dedup pool"
damage "superblock in use: version (checksum re-stamped)" "$SB" 40 0x02 --restamp
expect_refused "Cannot open the pool metadata" "unsupported metadata version 3"
damage "superblock in use: an unknown incompat bit (re-stamped)" "$SB" 59 0x80 --restamp
expect_refused "Cannot open the pool metadata" "unsupported incompatible features 0x80000000"
damage "superblock in use: journal_blocks + 4096 (re-stamped)" "$SB" 113 0x10 --restamp
expect_refused "Cannot open the pool metadata" "superblock geometry is inconsistent"
damage "superblock in use: nr_meta_blocks beyond the device (re-stamped)" "$SB" 90 0x01 --restamp
expect_refused "Cannot open the pool metadata" "superblock geometry is inconsistent (metadata $((MB + 65536))"
damage "superblock in use: nr_data_blocks + 2^40 (re-stamped)" "$SB" 101 0x01 --restamp
expect_refused "Pool length is smaller than the data space in the metadata"
damage "superblock in use: nr_data_blocks + 2^46 (re-stamped)" "$SB" 101 0x40 --restamp
expect_refused "Pool length is smaller than the data space in the metadata"
damage "superblock in use: a journal to replay that is not there (re-stamped)" "$SB" 152 0x01 --restamp
expect_refused "$DAMAGED"
damage "superblock in use: an unknown ro_compat bit (re-stamped)" "$SB" 55 0x40 --restamp
expect_ro -
damage "superblock in use: the needs_check flag (re-stamped)" "$SB" 44 0x01 --restamp
expect_ro needs_check

# Damage behind a valid checksum that the engine sees on use.
damage "map leaf: volume 1's first entry points past the data device (re-stamped)" \
	"$LMAP" 37 0x01 --restamp
expect_lazy 1
damage "map leaf: owner volume 1 becomes 3 (re-stamped)" "$LMAP" 28 0x02 --restamp
expect_lazy 1
damage "tree node: its first child points outside the metadata (re-stamped)" \
	"$NODE" 37 0x01 --restamp
expect_lazy 1
damage "tree node: level 1 becomes 3 (re-stamped)" "$NODE" 26 0x02 --restamp
expect_lazy 1
damage "volume table: slot 1 holds id 5 (re-stamped)" "$VOLS" 96 0x04 --restamp
expect_refused "$DAMAGED"
damage "volume table: damaged, opened read_only" "$VOLS" 1 0x10
check "$C: the pool opens read_only" sh -c "echo '$POOL 1 read_only' | dmsetup create ddt-pool"
check_eq "$C: its mode is ro" "$(dd_pool_field ddt-pool 9)" ro
expect_table_error "$C: volume 1 cannot be activated" ddt-v1 dedup \
	"Cannot open the volume's metadata" "0 32768 dedup /dev/mapper/ddt-pool 1"
remove_all

corrupt_finish
