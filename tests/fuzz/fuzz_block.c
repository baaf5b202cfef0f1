// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: every decoder and validator of a single metadata block.
 *
 * Input: a selector byte, an expectation byte, then one 4 KiB block
 * (zero-padded or truncated).  Selector:
 *   bits 0-3  block type the reader expects (FZ_TYPES[], 9 = the header's own)
 *   bit 4     recompute the checksum first (reach what lies behind it)
 *   bit 5     expect the header's own blocknr/tree/level/owner
 *   bit 6     superblock path: dd_walk_sb_check on slot (expectation & 1)
 *   bit 7     expect wildcards for tree/level/owner
 *
 * Oracles: the engine's block and superblock validators (dd_walk_block_check,
 * dd_walk_sb_check: dd_block_validate and dd_sb_validate) agree with a
 * reference written here from format.h; the fast CRC32C agrees with the
 * portable one; the record, map-entry and root decoders the engine uses
 * (dd-walk.h) lose no bit a re-encoding would keep.
 */
#include "fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const u32 FZ_TYPES[] = {
	DD_BT_SUPER, DD_BT_NODE, DD_BT_MAP, DD_BT_REFS, DD_BT_DBITMAP, DD_BT_MBITMAP,
	DD_BT_VOLS, DD_BT_WRITTEN, DD_BT_INDEX,
};
#define FZ_NR_TYPES (sizeof(FZ_TYPES) / sizeof(FZ_TYPES[0]))

static u64 rd64(const u8 *p)
{
	u64 v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static u32 rd32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* The header rules of format.h, from the raw bytes. */
static int ref_validate(const u8 *b, u64 blocknr, u32 type, u8 tree, u8 level, u32 owner)
{
	if (rd32(b + 4) != type)
		return -EILSEQ;
	if (rd32(b) != dd_crc32c_portable(DD_CSUM_SEED ^ type, b + 4, DD_BLOCK_SIZE - 4))
		return -EILSEQ;
	if (rd64(b + 8) != blocknr)
		return -EILSEQ;
	if (tree != 0xff && b[27] != tree)
		return -EILSEQ;
	if (level != 0xff && b[26] != level)
		return -EILSEQ;
	if (owner != DD_NO_VOLUME && rd32(b + 28) != owner)
		return -EILSEQ;
	return 0;
}

static void fz_decode_map(const struct dd_disk_map_leaf *l)
{
	u32 i;

	for (i = 0; i < DD_MAP_ENTRIES; i++) {
		u64 e = le64_to_cpu(l->entry[i]), back;
		struct dd_mapping m;

		dd_map_entry_decode(e, &m);
		if (m.pbn > DD_MAX_ADDR)
			FZ_DIE("map entry %#llx: PBN out of range", (unsigned long long)e);
		back = m.pbn | (m.mapped ? DD_ME_MAPPED : 0) | (m.excl ? DD_ME_EXCL : 0);
		if (back != (e & DD_ME_KNOWN))
			FZ_DIE("map entry %#llx decodes to %#llx", (unsigned long long)e,
			       (unsigned long long)back);
	}
}

static void fz_decode_refs(const struct dd_disk_refs_leaf *l)
{
	struct dd_record r;
	u32 i;

	for (i = 0; i < DD_RECS_PER_LEAF; i++) {
		const struct dd_disk_rec *d = &l->rec[i];
		u64 ol = le64_to_cpu(d->owner_lbn), back;

		dd_record_decode(d, &r);
		back = r.owner_lbn | ((u64)r.domain << DD_REC_DOMAIN_SHIFT) |
		       (r.owned ? DD_REC_OWNED : 0) | (r.merged ? DD_REC_MERGED : 0);
		if (r.owner_lbn > DD_MAX_ADDR || back != (ol & (DD_REC_LBN_MASK | DD_REC_DOMAIN_MASK |
							       DD_REC_KNOWN_FLAGS)))
			FZ_DIE("record %#llx decodes to %#llx", (unsigned long long)ol,
			       (unsigned long long)back);
		if (r.refcount != le32_to_cpu(d->refcount) || r.owner_vol != le32_to_cpu(d->owner_vol))
			FZ_DIE("record fields lost in decoding");
	}
}

static void fz_check_root(const struct dd_disk_root *d)
{
	struct dd_disk_root again;
	struct dd_walk_root r;

	dd_walk_root_decode(d, &r);
	dd_walk_root_encode(&r, &again);
	if (again.root != d->root || again.height != d->height)
		FZ_DIE("root does not survive decode + encode");
	(void)dd_walk_tree_capacity(r.height);
}

static void fz_decode_vols(const struct dd_disk_vols_leaf *l)
{
	u32 i;

	for (i = 0; i < DD_VOLS_PER_LEAF; i++)
		fz_check_root(&l->vol[i].map);
}

static void fz_decode_super(const struct dd_disk_superblock *sb)
{
	fz_check_root(&sb->vols);
	fz_check_root(&sb->refs);
	fz_check_root(&sb->dalloc);
	fz_check_root(&sb->written);
	fz_check_root(&sb->index);
}

static u32 fz_popcount(const struct dd_disk_bitmap *bm)
{
	u32 w, n = 0;

	for (w = 0; w < DD_BITMAP_WORDS; w++)
		n += dd_popcount64(le64_to_cpu(bm->word[w]));
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static u8 blk[DD_BLOCK_SIZE] __attribute__((aligned(64)));
	const struct dd_disk_header *h = (const struct dd_disk_header *)blk;
	u8 sel, exp, tree, level;
	u32 type, owner, csum_fast, csum_ref, len;
	u64 blocknr;
	int r, ref;

	if (size < 2)
		return 0;
	sel = data[0];
	exp = data[1];
	memset(blk, 0, sizeof(blk));
	memcpy(blk, data + 2, size - 2 < DD_BLOCK_SIZE ? size - 2 : DD_BLOCK_SIZE);

	type = (sel & 15) < FZ_NR_TYPES ? FZ_TYPES[sel & 15] : le32_to_cpu(h->type);
	if (sel & 0x10)
		((struct dd_disk_header *)blk)->csum = cpu_to_le32(dd_walk_block_csum(blk, type));

	/* Both CRC32C paths over a prefix the input chooses. */
	len = (u32)exp * 16 + (sel & 15);
	csum_fast = dd_crc32c(exp, blk, len);
	csum_ref = dd_crc32c_portable(exp, blk, len);
	if (csum_fast != csum_ref)
		FZ_DIE("crc32c paths disagree over %u bytes", len);

	if (sel & 0x20) {
		blocknr = le64_to_cpu(h->blocknr);
		tree = h->tree;
		level = h->level;
		owner = le32_to_cpu(h->owner);
	} else {
		blocknr = exp;
		tree = exp & 7;
		level = exp >> 5;
		owner = exp >> 3;
	}
	if (sel & 0x80) {
		tree = level = 0xff;
		owner = DD_NO_VOLUME;
	}
	r = dd_walk_block_check(blk, blocknr, type, tree, level, owner);
	ref = ref_validate(blk, blocknr, type, tree, level, owner);
	if (r != ref)
		FZ_DIE("dd_block_validate says %d, format.h says %d", r, ref);

	if (sel & 0x40) {
		u64 slot = exp & 1;

		r = dd_walk_sb_check(blk, slot);
		ref = rd64(blk + offsetof(struct dd_disk_superblock, magic)) != DD_MAGIC ? -EINVAL :
		      ref_validate(blk, slot, DD_BT_SUPER, 0xff, 0xff, DD_NO_VOLUME) ? -EILSEQ :
		      le64_to_cpu(h->txn) % DD_SB_SLOTS != slot ? -EILSEQ : 0;
		if (r != ref)
			FZ_DIE("dd_sb_validate says %d, format.h says %d", r, ref);
	}

	/* Decode the payload as the header's type says, valid or not. */
	switch (le32_to_cpu(h->type)) {
	case DD_BT_MAP:
		fz_decode_map((const struct dd_disk_map_leaf *)blk);
		break;
	case DD_BT_REFS:
		fz_decode_refs((const struct dd_disk_refs_leaf *)blk);
		break;
	case DD_BT_VOLS:
		fz_decode_vols((const struct dd_disk_vols_leaf *)blk);
		break;
	case DD_BT_SUPER:
		fz_decode_super((const struct dd_disk_superblock *)blk);
		break;
	case DD_BT_DBITMAP:
	case DD_BT_MBITMAP:
	case DD_BT_WRITTEN:
		if (fz_popcount((const struct dd_disk_bitmap *)blk) > DD_BITS_PER_BITMAP)
			FZ_DIE("bitmap popcount out of range");
		break;
	default:
		(void)dd_walk_tree_capacity(h->level);
		break;
	}
	return 0;
}
