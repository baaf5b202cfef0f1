/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The engine's encodings: every conversion between an on-disk structure of
 * include/dm-dedup/format.h and its in-core twin (byte order, bit fields,
 * checksums) is here or in dd-codec.c, and nowhere else in the engine.  The
 * accessors on the lookup path are inline below; the rest is in dd-codec.c.
 *
 * Layer 0 (see dd-internal.h): pure functions of their arguments; they
 * call nothing of the engine but logging.
 */
#ifndef DD_CODEC_H
#define DD_CODEC_H

#include "dd-env.h"
#include <dm-dedup/format.h>

struct dd_pool;
struct dd_root;
struct dd_volume;
struct dd_record;
struct dd_volume_info;

/* ---- block header ------------------------------------------------------ */

u32 dd_block_csum(const void *block, u32 type);
/* A zeroed block of the given identity (blocknr, txn and csum come with the seal). */
void dd_block_init(void *block, u32 type, u8 tree, u8 level, u32 owner);
/* Stamps the home location and the transaction, then the checksum. */
void dd_block_seal(void *block, u64 blocknr, u64 txn);
/* 0 or -EILSEQ; tree/level/owner of 0xff/0xff/DD_NO_VOLUME are not checked. */
int dd_block_validate(const void *block, u64 blocknr, u32 type, u8 tree, u8 level, u32 owner);

static inline u32 dd_block_type(const void *block)
{
	return le32_to_cpu(((const struct dd_disk_header *)block)->type);
}

static inline u8 dd_block_level(const void *block)
{
	return ((const struct dd_disk_header *)block)->level;
}

static inline u8 dd_block_tree(const void *block)
{
	return ((const struct dd_disk_header *)block)->tree;
}

static inline u32 dd_block_owner(const void *block)
{
	return le32_to_cpu(((const struct dd_disk_header *)block)->owner);
}

static inline u64 dd_block_blocknr(const void *block)
{
	return le64_to_cpu(((const struct dd_disk_header *)block)->blocknr);
}

static inline u16 dd_block_count(const void *block)
{
	return le16_to_cpu(((const struct dd_disk_header *)block)->count);
}

static inline void dd_block_set_count(void *block, u16 count)
{
	((struct dd_disk_header *)block)->count = cpu_to_le16(count);
}

/* Adds delta to the header's count (16-bit arithmetic); returns the new count. */
static inline u16 dd_block_count_add(void *block, int delta)
{
	u16 count = (u16)(dd_block_count(block) + delta);

	dd_block_set_count(block, count);
	return count;
}

/* ---- journal --------------------------------------------------------------- */

/* The chained checksum of a journal: crc32c (seed 0) over each image's csum. */
u32 dd_journal_csum_add(u32 jcsum, const void *image);

/* What the superblock says about the journal to replay, decoded. */
struct dd_journal_desc {
	u64 txn;		/* transaction of the images */
	u64 sb_txn;		/* the superblock's own transaction */
	u64 area;		/* first block of the area holding the images */
	u32 nr_blocks;		/* images, 0 = nothing to replay */
	u32 area_blocks;	/* size of one area */
	u32 csum;		/* chained csum of the images */
	u64 home_start, home_end;	/* where an image may go home */
};

/* 0 if a journal image of transaction txn is intact and goes home inside
 * the allocatable region, else -EILSEQ. */
int dd_journal_image_check(const void *image, const struct dd_journal_desc *j);

/* ---- radix tree nodes and roots -------------------------------------------- */

static inline u64 dd_node_child(const void *node, u32 slot)
{
	return le64_to_cpu(((const struct dd_disk_node *)node)->child[slot]);
}

static inline void dd_node_set_child(void *node, u32 slot, u64 b)
{
	((struct dd_disk_node *)node)->child[slot] = cpu_to_le64(b);
}

void dd_root_decode(const struct dd_disk_root *d, struct dd_root *r);
void dd_root_encode(const struct dd_root *r, struct dd_disk_root *d);

/* ---- map entries: in core, the 64-bit value of format.h's layout ----------- */

static inline u64 dd_me_pbn(u64 e) { return e & DD_ME_PBN_MASK; }
static inline bool dd_me_mapped(u64 e) { return e & DD_ME_MAPPED; }
static inline bool dd_me_excl(u64 e) { return e & DD_ME_EXCL; }
/* A newly written block: mapped and exclusive. */
static inline u64 dd_me_new(u64 pbn) { return pbn | DD_ME_MAPPED | DD_ME_EXCL; }
static inline u64 dd_me_with_excl(u64 e) { return e | DD_ME_EXCL; }
static inline u64 dd_me_without_excl(u64 e) { return e & ~DD_ME_EXCL; }

static inline __le64 *dd_me_slot(void *leaf, u32 slot)
{
	return &((struct dd_disk_map_leaf *)leaf)->entry[slot];
}

static inline u64 dd_me_load(const __le64 *p) { return le64_to_cpu(*p); }
static inline void dd_me_store(__le64 *p, u64 e) { *p = cpu_to_le64(e); }

static inline u64 dd_me_get(const void *leaf, u32 slot)
{
	return dd_me_load(&((const struct dd_disk_map_leaf *)leaf)->entry[slot]);
}

/* ---- per-PBN records --------------------------------------------------------- */

void dd_rec_decode(const struct dd_disk_rec *d, struct dd_record *r);

static inline u32 dd_rec_refcount(const struct dd_disk_rec *d)
{
	return le32_to_cpu(d->refcount);
}

static inline void dd_rec_enc_refcount(struct dd_disk_rec *d, u32 refcount)
{
	d->refcount = cpu_to_le32(refcount);
}

/* Refcount 1, owned by (vol, lbn), in a volume of the given dedup domain. */
void dd_rec_enc_new(struct dd_disk_rec *d, u32 vol, u64 lbn, u8 domain);
/* The owner is forgotten (the block is shared): every other bit is kept
 * (the last owner stays as a hint the scanner may check). */
void dd_rec_enc_disown(struct dd_disk_rec *d);
/* The owner is learnt: (vol, lbn); the domain kept, the merge flag dropped
 * (the block is referenced once again). */
void dd_rec_enc_owner(struct dd_disk_rec *d, u32 vol, u64 lbn);
void dd_rec_enc_merged(struct dd_disk_rec *d, bool merged);

static inline u8 dd_rec_domain(const struct dd_disk_rec *d)
{
	return (u8)((le64_to_cpu(d->owner_lbn) & DD_REC_DOMAIN_MASK) >> DD_REC_DOMAIN_SHIFT);
}

static inline bool dd_rec_merged(const struct dd_disk_rec *d)
{
	return le64_to_cpu(d->owner_lbn) & DD_REC_MERGED;
}

/* ---- scanner index entries --------------------------------------------------- */

void dd_ie_encode(struct dd_disk_index_entry *e, u64 hash, u8 domain, u64 pbn);
/* false for an empty entry */
bool dd_ie_decode(const struct dd_disk_index_entry *e, u64 *hash, u8 *domain, u64 *pbn);

/* ---- bitmaps: bit i of word w is block w * 64 + i ------------------------------ */

static inline bool dd_bit_test(const __le64 *words, u32 bit)
{
	return le64_to_cpu(words[bit / 64]) & (1ULL << (bit % 64));
}

/* Sets a bit without counting it (committed images, shadows). */
void dd_bit_set(__le64 *words, u32 bit);
/* Sets or clears a bit of a bitmap block and keeps its count; returns the old value. */
bool dd_bitmap_change(struct dd_disk_bitmap *bm, u32 bit, bool set);
/* First bit >= from clear in a (and in b, if not NULL), or nbits. */
u32 dd_bitmap_find_zero(const __le64 *a, const __le64 *b, u32 from, u32 nbits);

/* ---- volume table entries ------------------------------------------------------ */

static inline u32 dd_vol_entry_id(const struct dd_disk_volume *e)
{
	return le32_to_cpu(e->id);
}

static inline u32 dd_vol_entry_flags(const struct dd_disk_volume *e)
{
	return le32_to_cpu(e->flags);
}

/* Into an in-core volume, all but its id (a handle keeps its own). */
void dd_vol_decode(const struct dd_disk_volume *e, struct dd_volume *v);
void dd_vol_encode(const struct dd_volume *v, struct dd_disk_volume *e);
/* A new entry: empty map, nothing mapped, no progress. */
void dd_vol_encode_new(struct dd_disk_volume *e, u32 id, u32 flags, u32 origin, u64 created_txn,
		       u8 domain);
/* The API's view (mapped_blocks as in the table). */
void dd_vol_info_decode(const struct dd_disk_volume *e, struct dd_volume_info *info);

/* ---- superblock ------------------------------------------------------------------ */

bool dd_sb_has_magic(const struct dd_disk_superblock *sb);
static inline u64 dd_sb_txn(const struct dd_disk_superblock *sb)
{
	return le64_to_cpu(sb->hdr.txn);
}
/* -EINVAL without the magic, -EILSEQ if damaged or in the wrong slot. */
int dd_sb_validate(const struct dd_disk_superblock *sb, u64 slot);
/* -EINVAL (logged) unless version, incompat features and geometry are ours and
 * the metadata area fits a device of dev_blocks blocks. */
int dd_sb_check_geometry(const struct dd_disk_superblock *sb, u64 dev_blocks);
/* The superblock of transaction txn from the pool's in-core state, sealed. */
void dd_sb_encode(const struct dd_pool *pool, struct dd_disk_superblock *sb, u64 txn,
		  u32 nr_journal, u32 journal_csum);
/* Geometry only (what dd_sb_encode needs besides the state). */
void dd_sb_decode_geometry(const struct dd_disk_superblock *sb, struct dd_pool *pool);
/* The committed state: transaction, roots, counters, flags; an unknown
 * ro_compat feature makes the pool read-only. */
void dd_sb_decode_state(const struct dd_disk_superblock *sb, struct dd_pool *pool);
void dd_sb_decode_journal(const struct dd_disk_superblock *sb, struct dd_journal_desc *j);

#endif
