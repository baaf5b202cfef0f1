#!/bin/sh
# A damaged block of every type other than the superblock is never trusted by the
# kernel target.  Over the pool of corrupt-lib.sh, one block each of the metadata
# bitmap, the volume table, a map node, a map leaf, the records, the data bitmap, the
# written bits and the scanner index is damaged in three places (a checksum byte;
# the block number in the header with the checksum re-stamped, so that the
# "claims to be block N" check sees it; a payload byte) and the pool is created over
# each copy.  The volume table refuses the pool ("Metadata damaged (superblock,
# journal or volume table): run dedup_check"); the metadata bitmap, which a writable
# open needs to free the saved index, opens it read-only with needs_check; the
# written bits and the index (savings only) open it with the scanner off, -EIO for
# scan messages and all data right; every other block opens it, and the first I/O
# that needs the block fails (a read of the volume whose map it is, a copy-on-write),
# after which the pool is read-only with needs_check, the other volumes read right
# and writes are refused.  Never wrong data, never a WARN.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/corrupt-lib.sh"

# Every other block type: a checksum byte, the block number in the header (re-stamped:
# "claims to be block ..."), a payload byte.
for t in MBMP VOLS NODE LMAP REFS DBMP WBMP INDX; do
	eval b=\$$t
	for pos in csum header payload; do
		case $pos in
		csum) damage "$t block $b: a checksum byte" "$b" 1 0x10 ;;
		header) damage "$t block $b: the block number (re-stamped)" "$b" 8 0x01 --restamp ;;
		payload) damage "$t block $b: a payload byte" "$b" 2000 0x04 ;;
		esac
		case $t in
		# A writable open frees the saved index: that change meets the damage.
		MBMP) expect_ro needs_check ;;
		VOLS) expect_refused "$DAMAGED" ;;
		NODE | LMAP) expect_lazy 1 ;;
		REFS | DBMP) expect_lazy - sh -c "$COW" ;;
		WBMP | INDX) expect_scanner_off ;;
		esac
	done
done

corrupt_finish
