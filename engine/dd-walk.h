/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Read-only inspection of an open pool: what dedup_check, dedup_dump and the
 * tests need to see inside the metadata without engine/dd-internal.h.
 *
 * The engine keeps the format's invariants; only a full walk can prove them
 * (docs/format.md, "What a reader must validate").  So this header gives a
 * checker the blocks themselves, as the format.h structs, and leaves every
 * judgement to it: the tree walk reports each block with where it was found
 * and whether it reads and validates; reachability, double references and
 * counts are the caller's accounting (thin-provisioning-tools' checkers work
 * the same way, through visitors).
 *
 * Contract of every call below, unless it says otherwise:
 *  - read-only: nothing is written to the metadata device, nothing joins the
 *    open transaction, no commit is made (the pool may be opened read-only);
 *    in-core state may change only as a lookup changes it (cached blocks,
 *    the in-core handle of a volume while it is open);
 *  - it sees the open state: the last commit plus the changes of the open
 *    transaction, as dd_map_lookup() does;
 *  - locking: none of its own; the caller serialises it with every other
 *    engine call on the pool, as it does for those (dd-engine.h);
 *  - errors are negative errno values; -EILSEQ means damaged metadata.
 * It builds in the kernel too (dd-env.h primitives only).
 */
#ifndef DD_WALK_H
#define DD_WALK_H

#include "dd-engine.h"
#include <dm-dedup/format.h>

/* ---- geometry and counters ------------------------------------------------ */

struct dd_walk_info {
	/* Geometry, from the superblock the pool was opened from. */
	u64 nr_meta_blocks;		/* the metadata area */
	u64 nr_data_blocks;		/* the data device (a resize shows at once) */
	u32 data_block_sectors;
	u8 uuid[16];
	u64 journal_start;		/* area a starts at journal_start + a * journal_blocks */
	u32 journal_blocks;		/* per area */
	u32 mbitmap_blocks;		/* metadata bitmap pages ... */
	u64 mbitmap_start;		/* ... from this block */
	u64 first_tree_block;		/* tree blocks lie in [first_tree_block, nr_meta_blocks) */

	/* Transactions. */
	u64 committed_txn;		/* the last commit */
	u64 sb_slot;			/* its superblock: committed_txn % DD_SB_SLOTS */
	u64 user_txn;

	/*
	 * The superblock's counters (struct dd_disk_stats) and flags as of the
	 * open state: equal to the superblock's in a pool opened read-only.
	 */
	u64 data_used, meta_used, shared_blocks, mapped_blocks;
	u64 zero_elided, discarded, cow_splits;
	u32 nr_volumes;			/* valid, neither INCOMPLETE nor DELETING */
	bool needs_check;
	u32 incompat;			/* DD_FEATURE_INCOMPAT_* in force */
};

/* Never fails. */
void dd_walk_get_info(struct dd_pool *pool, struct dd_walk_info *info);

/*
 * Copies metadata block 'blocknr' (DD_BLOCK_SIZE bytes) as the block manager
 * holds it: the replayed state, not validated, any block of the metadata area
 * (superblock slots, journal, metadata bitmap pages, tree blocks).  A block
 * changed in the open transaction shows its new contents, with a header that
 * is stamped (blocknr, txn, checksum) only when it commits.
 * -ERANGE if blocknr >= nr_meta_blocks, or the block manager's read error.
 */
int dd_walk_read_block(struct dd_pool *pool, u64 blocknr, void *buf);

/* ---- trees ------------------------------------------------------------------ */

struct dd_walk_root {
	u64 block;			/* 0: the tree is empty */
	u8 height;			/* levels above the leaves; over DD_MAX_HEIGHT is damage */
};

/*
 * The root of a tree: DD_TREE_VOLS, DD_TREE_REFS, DD_TREE_DALLOC,
 * DD_TREE_WRITTEN and DD_TREE_INDEX are the pool's (vol is ignored),
 * DD_TREE_MAP is the map of volume 'vol' (any valid table entry: deleted and
 * incomplete volumes too).  -EINVAL for another tree id; for a map, -ENOENT
 * if the volume does not exist, or the error reading the volume table.
 */
int dd_walk_root(struct dd_pool *pool, enum dd_tree_id tree, u32 vol, struct dd_walk_root *root);

/* One block of a tree, as dd_walk_tree() found it. */
struct dd_walk_block {
	u64 blocknr;			/* where the parent (or the root) points */
	u64 parent;			/* the parent node, 0 for the root */
	u32 slot;			/* this block's slot in the parent's child[] */
	u8 tree;			/* enum dd_tree_id */
	u8 level;			/* 0 = leaf, else levels above the leaves */
	u32 owner;			/* header owner: the volume id for a map, else 0 */
	u32 type;			/* DD_BT_NODE above the leaves, else the tree's leaf type */
	u64 first_leaf;			/* the leaf indexes [first_leaf, first_leaf + nr_leaves) */
	u64 nr_leaves;			/* lie below (1 for a leaf) */
	/*
	 * 0: read, and valid as (type, tree, level, owner) at blocknr (a block
	 * of the open transaction is valid by construction: its header is
	 * stamped only when it commits, so it is not checked);
	 * -ERANGE: the pointer lies outside [first_tree_block, nr_meta_blocks):
	 * not read;
	 * -EILSEQ: read, but fails validation (dd_walk_block_check() says
	 * which way; data is what was read);
	 * other: the block manager's read error, not read.
	 */
	int error;
	/* The block's DD_BLOCK_SIZE bytes as read (NULL when not read); valid
	 * only during the visitor's call. */
	union {
		const void *raw;
		const struct dd_disk_header *hdr;
		const struct dd_disk_node *node;		/* level > 0 */
		const struct dd_disk_map_leaf *map;		/* DD_TREE_MAP leaves */
		const struct dd_disk_refs_leaf *refs;		/* DD_TREE_REFS leaves */
		const struct dd_disk_bitmap *bitmap;		/* DD_TREE_DALLOC, _WRITTEN leaves */
		const struct dd_disk_vols_leaf *vols;		/* DD_TREE_VOLS leaves */
	} data;
};

/* Visitor: return 0 to go on (into the children of a node), DD_WALK_SKIP to
 * leave out this node's children, a negative value to stop the walk. */
#define DD_WALK_SKIP	1
typedef int (*dd_walk_fn)(void *ctx, const struct dd_walk_block *blk);

/*
 * Visits every block of a tree (named as for dd_walk_root()) top-down,
 * depth first, in leaf index order: a node, then each non-zero child in
 * slot order.  The children of a node are visited only if it read and
 * validated (error 0).  A block reachable twice is visited twice; a
 * visitor that counts references skips the second visit.  The visitor
 * must not change the pool; it may make other read-only calls.
 * Returns 0 when done, the first negative value of the visitor, -ENOMEM,
 * the errors of dd_walk_root(), or -EILSEQ without visiting anything if the
 * root is taller than DD_MAX_HEIGHT.  An empty tree visits nothing.
 */
int dd_walk_tree(struct dd_pool *pool, enum dd_tree_id tree, u32 vol, dd_walk_fn fn, void *ctx);

/* ---- per data block ---------------------------------------------------------- */

/* The record of pbn as stored (all zero if its leaf does not exist); decode
 * with dd_record_decode().  -EINVAL if pbn >= nr_data_blocks, -EILSEQ or
 * the read error if the record tree cannot be read there. */
int dd_walk_record(struct dd_pool *pool, u64 pbn, struct dd_disk_rec *rec);

/*
 * pbn's data bitmap bit in the open state, and "used at the last commit, or
 * freed since" (the committed image the allocator respects; for a mapped
 * block exactly "used at the last commit").  -EINVAL if pbn >=
 * nr_data_blocks, -EILSEQ or the read error if the bitmap cannot be read.
 */
int dd_walk_data_bit(struct dd_pool *pool, u64 pbn, bool *open_used, bool *committed_used);

/* Whether pbn is reserved for a write in flight (dd_data_reserve()). */
bool dd_walk_data_reserved(struct dd_pool *pool, u64 pbn);

/* ---- volumes ------------------------------------------------------------------- */

/*
 * As dd_volume_open(), for any valid table entry, deleted and incomplete
 * volumes too, to read their maps (dd_map_lookup, dd_map_next,
 * dd_volume_highest_lbn) while reclaim has not freed them.  Such a handle
 * is only read through; dd_volume_close() releases it.
 */
int dd_volume_open_any(struct dd_pool *pool, u32 id, struct dd_volume **out);

/* The pool a volume handle belongs to.  Never fails. */
struct dd_pool *dd_volume_pool(struct dd_volume *vol);

/* ---- the format's codecs, as the engine applies them ---------------------------- */

/* The checksum a block of the given type carries in hdr.csum. */
u32 dd_walk_block_csum(const void *block, u32 type);

/*
 * 0 if the block read from 'blocknr' is valid as a block of this type, tree,
 * level and owner (docs/format.md, section 2); -EILSEQ if not.  tree 0xff,
 * level 0xff and owner DD_NO_VOLUME are not checked.
 */
int dd_walk_block_check(const void *block, u64 blocknr, u32 type, u8 tree, u8 level, u32 owner);

/* How dd_pool_open() judges superblock slot 'slot': 0 valid, -EINVAL no
 * magic, -EILSEQ the magic but a bad block or a transaction of the other slot. */
int dd_walk_sb_check(const void *block, u64 slot);

void dd_record_decode(const struct dd_disk_rec *d, struct dd_record *rec);

/* A map entry (le64_to_cpu'd): mapped, pbn, and excl = its DD_ME_EXCL bit. */
void dd_map_entry_decode(u64 entry, struct dd_mapping *m);

void dd_walk_root_decode(const struct dd_disk_root *d, struct dd_walk_root *root);
void dd_walk_root_encode(const struct dd_walk_root *root, struct dd_disk_root *d);

/* Leaves addressable by a tree of the given height (~0 past DD_MAX_HEIGHT). */
u64 dd_walk_tree_capacity(u8 height);

/* ---- tests --------------------------------------------------------------------- */

/*
 * Frees the in-core pool without any I/O, as a power cut leaves it: the open
 * transaction is dropped, nothing is written or flushed (not even the clean
 * close's superblock).  The block manager stays the caller's (drop it
 * without write-back to simulate the crash).
 */
void dd_pool_drop(struct dd_pool *pool);

/*
 * Changes the extra-parent count of metadata block b by delta in the open
 * transaction (room reserved first), as sharing does: for the tests of the
 * mrefs tree and of the check's proof of it.  *now: the new count.
 */
int dd_test_mref_add(struct dd_pool *pool, u64 b, int delta, u32 *now);
/* The extra-parent count of metadata block b in the open state. */
int dd_walk_mref(struct dd_pool *pool, u64 b, u32 *extra);

#endif
