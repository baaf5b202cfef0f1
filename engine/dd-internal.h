/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Engine internals shared by the dd-*.c files.  Nothing outside engine/
 * includes this header (tests/scripts/test-engine-boundary.sh fails if a
 * file does): the tools and the tests see dd-engine.h, and dd-walk.h for a
 * read-only look inside the metadata.
 *
 * The engine is built in layers; each calls only the layers below it, and
 * all of them the block manager (dd-bm.h) and the environment (dd-env.h):
 *
 *   6 pool    dd-pool.c    format, probe, open, close, abort, the error
 *                          ladder, statistics; and every public call that
 *                          may change metadata, as a wrapper that enters
 *                          the ladder when the layer below marked a failure
 *   5 volume  dd-volume.c  the volume table and its in-core handles, the
 *                          maps (the lookups are public calls from here),
 *                          snapshots, deletion and reclaim
 *   4 refs    dd-refs.c    per-PBN records (refcount, owner), kept in step
 *                          with the data bitmap; the checked reservation
 *                          of a data block
 *   3 space   dd-space.c   data allocation: the dalloc bitmap tree, the
 *                          quarantine of blocks freed in the open
 *                          transaction, the reservations of blocks in flight
 *   2 tree    dd-tree.c    radix trees of metadata blocks keyed by leaf index
 *   1 block   dd-block.c   metadata blocks (read, validate, dirty, allocate,
 *                          free: the metadata bitmap is here because this
 *                          layer journals its pages), the open transaction
 *                          (journal room, commit, replay), the superblock
 *                          slots, the data blocks freed in the transaction
 *                          (reported to the freed hook after its commit)
 *   0 codec   dd-codec.c   every encoder and decoder of the on-disk format
 *
 * Errors are returned up.  An error that leaves the open transaction
 * half-done (a failure in the middle of a change, or of a commit) is also
 * marked with dd_tx_fail(); the public call settles on its way out
 * (dd_pool_settle in dd-pool.c), which is the one place it enters the error
 * ladder (dd_pool_metadata_error).  A refusal before anything changed
 * (-EROFS, -ENOSPC from dd_tx_reserve, -EINVAL...) and a read that meets
 * damage leave the transaction consistent and are only returned.
 *
 * Code of a higher layer runs below it only through pointers filled in at
 * open, never by name: the pre-commit step (pool->pre_commit, which the pool
 * layer sets to the volume layer's dd_volumes_flush; see dd_tx_commit for
 * why the commit lives in the transaction layer), and the caller's hooks.
 */
#ifndef DD_INTERNAL_H
#define DD_INTERNAL_H

#include "dd-engine.h"
#include "dd-codec.h"
#include "dd-scan.h"


#define DD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DD_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Per-buffer engine state, kept by the block manager next to the data. */
struct dd_aux {
	u64 dirty_txn;		/* == pool->open_txn while in the dirty set */
	struct dd_shadow *shadow;	/* committed image (refs and dalloc leaves) */
	u32 flags;
	u32 dirty_idx;		/* position in pool->dirty */
	u64 unused;
};
_Static_assert(sizeof(struct dd_aux) <= DD_BM_AUX_SIZE, "aux size");

#define DD_AUX_CHECKED	(1u << 0)	/* contents validated since it was read */
#define DD_AUX_NEW	(1u << 1)	/* allocated in the open txn: no committed image */
#define DD_AUX_FREED	(1u << 2)	/* freed in the open txn: not journalled */

struct dd_shadow {
	u64 touched[(DD_RECS_PER_LEAF + 63) / 64];	/* records changed in the open txn */
	u8 data[DD_BLOCK_SIZE];
};

struct dd_root {
	u64 block;
	u8 height;
	/* In core only: the last leaf found (hint_block 0 = none), so that a
	 * run of operations on one leaf walks the tree once. */
	u64 hint_idx, hint_block;
};

struct dd_tree {
	struct dd_root *root;
	u8 id;			/* enum dd_tree_id */
	u32 leaf_type;		/* DD_BT_* of level-0 blocks */
	u32 owner;		/* header.owner of every block (family id for maps) */
	/* Pages may be shared (a map of a family volume): lookups test the
	 * path, changes copy it first (dd_tree_unshare); no lookup hint. */
	const struct dd_cow_ops *cow;
};

/* What copying a shared leaf means to the layer that owns the tree: the
 * worst-case blocks it dirties (counted before any change), and the work
 * (the references its entries hold are raised; old and new are the
 * payloads of the shared leaf, which stays valid for its other parents,
 * and of its copy). */
struct dd_cow_ops {
	u32 (*leaf_cost)(struct dd_pool *pool, const void *leaf);
	int (*leaf_copied)(struct dd_pool *pool, void *old, void *new);
	/* The root moved to a copy: what holds the root must reach the next
	 * commit, which may come before the next step. */
	void (*root_moved)(const struct dd_tree *t);
};

/* In-core statistics, encoded into the superblock at commit. */
struct dd_stats {
	u64 data_used, meta_used, shared_blocks, mapped_blocks;
	u64 zero_elided, discarded, cow_splits;
	u64 scan_merged, scan_zero, scan_cow_breaks, scan_passes, scan_full_passes;
	u64 scan_unshared;
};

/* The scanner's settings kept in the superblock (0 = default). */
struct dd_scan_settings {
	u64 index_bytes;
	u32 run, rate_mib, share_cap;
};

struct dd_scan;		/* dd-scan.c */
struct dd_import;	/* dd-import.c */
struct dd_scan_stats;	/* dd-scan.h */
struct dd_index;	/* dd-index.h */

/* Data blocks freed in the open transaction, for the freed hook. */
struct dd_extents {
	u64 *start, *len;
	u32 nr, cap;
	bool overflow;		/* could not record every range */
};

struct dd_resv {
	u64 *slot;		/* open addressing; 0 = empty, ~0 = tombstone, else pbn + 1 */
	u32 size, used, tombs;
};

struct dd_volume {
	struct dd_pool *pool;
	struct dd_volume *next;
	u32 id;
	u32 flags;
	u32 origin;
	int open_count;
	bool table_dirty;	/* mapped count not yet in the volume table */
	struct dd_root map;
	u64 mapped;
	u64 created_txn;
	u64 progress;
	u8 domain;		/* dedup domain: blocks are shared within one only */
	u32 family;		/* owner id of its map pages and records (its id if
				 * not in a family, DD_VOL_FAMILY) */
	struct dd_tree tree;	/* .root points at .map, .owner is .family */
};

/* Work of a layer above the transaction layer that must reach the open
 * transaction before every commit; the pool layer fills it in at open. */
struct dd_pre_commit {
	int (*run)(struct dd_pool *pool);
	const char *what;		/* for the error ladder's log */
};

struct dd_pool {
	struct dd_bm *bm;
	struct dd_pool_hooks hooks;
	struct dd_pre_commit pre_commit;
	unsigned open_flags;
	bool snapshot_copy;	/* dd_pool_set_snapshot_copy(): never share map pages */
	enum dd_mode mode;
	bool needs_check;

	/* geometry (from the superblock) */
	u64 nr_meta_blocks, nr_data_blocks;
	u64 journal_start, mbitmap_start;
	u32 journal_blocks, mbitmap_blocks;
	u32 data_block_sectors;
	u8 uuid[16];

	/* transaction state */
	u64 committed_txn;
	u64 open_txn;
	u64 user_txn;
	u32 nr_volumes;
	u32 nr_deleting;		/* table entries marked DD_VOL_DELETING */
	bool dropped_changes;		/* an abort dropped a non-empty transaction */
	bool sb_dirty;
	/* An error that left the open transaction half-done (dd_tx_fail): the
	 * public call enters the error ladder with it on its way out. */
	int tx_err;
	const char *tx_err_what;
	struct dd_buf **dirty;
	u32 nr_dirty;
	struct dd_stats st;
	struct dd_root vols_root, refs_root, dalloc_root, written_root, index_root;
	struct dd_tree vols_tree, refs_tree, dalloc_tree;
	/* Shared map pages (docs/snapshots.md): their extra parents, the
	 * incompat features in force, and the last transaction in which a
	 * page lost a parent by a detach (while it is the open one, no entry
	 * of a family volume is taken for exclusive: below a detached page,
	 * bits set before it was shared may be trusted again, but the last
	 * commit still shares it). */
	struct dd_root mrefs_root;
	struct dd_tree mrefs_tree;
	u32 incompat;
	u64 mrefs_txn;

	/* allocators */
	u64 meta_cursor, data_cursor;
	u64 data_pending_free;
	struct dd_resv resv;
	struct dd_extents freed;

	struct dd_resv pins;		/* blocks the scanner compares: never exclusive */
	struct dd_resv import_pins;	/* blocks dedup at import compares: the same */
	struct dd_import *import;	/* dedup at import (dd-import.c), or NULL */
	/* Blocks the pre-commit steps may still dirty (the scanner's written
	 * leaves; the volume table is counted by nr_dirty_vols). */
	u32 pre_commit_room;
	struct dd_scan *scan;		/* the scanner's state (writable pools) */
	struct dd_scan_settings scan_cfg;

	struct dd_volume *volumes;	/* open handles */
	u32 nr_dirty_vols;		/* handles with table_dirty set */
#define DD_MAX_DIRTY_VOLS	16
	void *scratch;			/* one block */
};

/* ---- 1 block (dd-block.c): metadata blocks and the open transaction -----
 * dd_blk_get: a validated block (-EILSEQ if damaged or out of range,
 * -EWOULDBLOCK with DD_NOWAIT if not cached).  The _dirty/alloc/free calls
 * join the open transaction (-EROFS if the pool is not writable).
 * dd_tx_room/dd_tx_reserve come first in every operation that changes
 * metadata: they may commit (the journal is full), and dd_tx_reserve
 * refuses with -ENOSPC, before anything changes, if metadata space could
 * run out in the middle.
 */
int dd_blk_get(struct dd_pool *pool, u64 b, u32 type, u8 tree, u8 level, u32 owner,
	       unsigned flags, struct dd_buf **out);
int dd_blk_get_dirty(struct dd_pool *pool, u64 b, u32 type, u8 tree, u8 level, u32 owner,
		     struct dd_buf **out);
int dd_blk_make_dirty(struct dd_pool *pool, struct dd_buf *buf);
int dd_blk_alloc(struct dd_pool *pool, u32 type, u8 tree, u8 level, u32 owner,
		 struct dd_buf **out);
int dd_blk_free(struct dd_pool *pool, u64 b);
static inline void dd_blk_put(struct dd_buf *buf) { dd_bm_put(buf); }
static inline struct dd_aux *dd_aux(struct dd_buf *buf) { return dd_buf_aux(buf); }
static inline void *dd_data(struct dd_buf *buf) { return dd_buf_data(buf); }
int dd_meta_alloc(struct dd_pool *pool, u64 *b);
int dd_meta_free(struct dd_pool *pool, u64 b);
u64 dd_meta_free_blocks(struct dd_pool *pool);
int dd_meta_grow(struct dd_pool *pool, u64 nr_meta_blocks);
void dd_freed_add(struct dd_pool *pool, u64 pbn);
void dd_freed_report(struct dd_pool *pool);
void dd_freed_reset(struct dd_pool *pool, bool release);
int dd_tx_room(struct dd_pool *pool, u32 nr);		/* journal room only */
int dd_tx_reserve(struct dd_pool *pool, u32 nr);	/* and metadata space */
bool dd_tx_dirty(struct dd_pool *pool);
int dd_tx_commit(struct dd_pool *pool);
int dd_commit_raw(struct dd_pool *pool);
void dd_tx_drop(struct dd_pool *pool);
int dd_tx_fail(struct dd_pool *pool, int err, const char *what);
/* The public call's way out: an error marked by dd_tx_fail enters the ladder
 * (dd-pool.c; also for the scanner's public calls in dd-scan.c). */
int dd_pool_settle(struct dd_pool *pool, int r);
int dd_journal_replay(struct dd_pool *pool, const struct dd_disk_superblock *sb);
int dd_sb_read_best(struct dd_bm *bm, struct dd_disk_superblock *out, u64 *slot_out);
int dd_write_sb(struct dd_pool *pool, struct dd_disk_superblock *sb);

/* ---- 2 tree (dd-tree.c) ------------------------------------------------
 * -ENODATA: no such leaf (it reads as all zero); -EILSEQ: damaged tree.
 */
u64 dd_tree_capacity(u8 height);
/* The scanner's trees have their roots in the superblock, not a struct dd_tree
 * of the pool: one descriptor each, for the scanner and the walker. */
static inline struct dd_tree dd_written_tree(struct dd_pool *pool)
{
	return (struct dd_tree){ &pool->written_root, DD_TREE_WRITTEN, DD_BT_WRITTEN, 0, NULL };
}

static inline struct dd_tree dd_index_tree(struct dd_pool *pool)
{
	return (struct dd_tree){ &pool->index_root, DD_TREE_INDEX, DD_BT_INDEX, 0, NULL };
}

int dd_tree_find(struct dd_pool *pool, const struct dd_tree *t, u64 idx, unsigned flags,
		 struct dd_buf **leaf);
/* As dd_tree_find; *shared: a page on the path to the leaf is shared. */
int dd_tree_find_shared(struct dd_pool *pool, const struct dd_tree *t, u64 idx, unsigned flags,
			struct dd_buf **leaf, bool *shared);
/*
 * Makes the path to leaf idx exclusive to this tree, copying its shared
 * pages top-down, one page per step, each step with its journal room
 * reserved first (so the engine may commit between steps, never inside
 * one).  *copied: pages copied (0 if the path was exclusive).  -EFBIG, with
 * nothing changed, if one step could not fit in an empty transaction;
 * -ENOSPC, refused before the step, without metadata space.  An error in a
 * step is marked failed (dd_tx_fail).
 */
int dd_tree_unshare(struct dd_pool *pool, const struct dd_tree *t, u64 idx, u32 *copied);
int dd_tree_detach(struct dd_pool *pool, const struct dd_tree *t, u64 idx, bool *detached,
		   u64 *entries);
/* Distinct v[i] / div over v[0..n) (v is overwritten): a step's other leaves. */
u32 dd_distinct_leaves(u64 *v, u32 n, u32 div);
int dd_tree_find_dirty(struct dd_pool *pool, const struct dd_tree *t, u64 idx, bool create,
		       struct dd_buf **leaf);
int dd_tree_remove(struct dd_pool *pool, const struct dd_tree *t, u64 idx);
int dd_tree_next(struct dd_pool *pool, const struct dd_tree *t, u64 idx, u64 *found);
int dd_tree_last(struct dd_pool *pool, const struct dd_tree *t, u64 *found);

/* Extra parents of metadata block b (0: one parent, or none), in the open
 * state; dd_mref_add changes them by delta (the result must stay >= 0:
 * else -EILSEQ), *now the new value.  An add dirties at most
 * DD_MREF_MAX_DIRTY blocks and allocates at most DD_MREF_MAX_ALLOC. */
int dd_mref_get(struct dd_pool *pool, u64 b, u32 *extra);
int dd_mref_add(struct dd_pool *pool, u64 b, int delta, u32 *now);
#define DD_MREF_MAX_DIRTY	(2 * (DD_MAX_HEIGHT + 1) + 2)
#define DD_MREF_MAX_ALLOC	(DD_MAX_HEIGHT + 2)
/* The fixed part of one copy step: the copy and its bitmap page, the shared
 * page, the parent, and the shared page's own count. */
#define DD_COW_FIXED_DIRTY	(4 + DD_MREF_MAX_DIRTY)
/* The smallest journal with which a pool shares map pages: the largest
 * copy step of a leaf (a record leaf per entry) and an operation's own
 * room fit in an empty transaction.  Smaller pools copy snapshots. */
#define DD_COW_MIN_JOURNAL	(DD_COW_FIXED_DIRTY + DD_MAP_ENTRIES + DD_OP_MAX_DIRTY + \
				 DD_MAX_DIRTY_VOLS + 64)

/* ---- 3 space (dd-space.c): data allocation ---------------------------- */
int dd_dalloc_set(struct dd_pool *pool, u64 pbn, bool used);
/* committed_used: used at the last commit, or freed since (never mapped again
 * before the commit, so for a mapped block it is exactly "used at the last
 * commit"). */
int dd_dalloc_test(struct dd_pool *pool, u64 pbn, bool *open_used, bool *committed_used);
int dd_data_find_free(struct dd_pool *pool, u64 *pbn);
int dd_data_free_run(struct dd_pool *pool, u64 pbn, u32 max, u32 *n);
int dd_dalloc_use_run(struct dd_pool *pool, u64 pbn, u32 n);	/* inside one leaf */
int dd_data_claim(struct dd_pool *pool, u64 pbn);
bool dd_resv_contains(const struct dd_resv *r, u64 pbn);
int dd_resv_add(struct dd_resv *r, u64 pbn);
bool dd_resv_remove(struct dd_resv *r, u64 pbn);
void dd_resv_destroy(struct dd_resv *r);

/* ---- 4 refs (dd-refs.c): per-PBN records -------------------------------
 * A record that contradicts the operation (a reference to a free block, a
 * missing record) is -EILSEQ; dd_rec_inc at the 32-bit limit is -EOVERFLOW.
 */
int dd_rec_read(struct dd_pool *pool, u64 pbn, unsigned flags, struct dd_disk_rec *out);
int dd_rec_read_committed(struct dd_pool *pool, u64 pbn, struct dd_disk_rec *out,
			  bool *touched);
int dd_rec_new(struct dd_pool *pool, u64 pbn, u32 vol, u64 lbn, u8 domain);
int dd_rec_inc(struct dd_pool *pool, u64 pbn);
int dd_rec_dec(struct dd_pool *pool, u64 pbn, bool *was_shared, bool *was_merged);
int dd_rec_set_owner(struct dd_pool *pool, u64 pbn, u32 vol, u64 lbn);
int dd_rec_reserve(struct dd_pool *pool, u64 *pbn);
int dd_rec_reserve_run(struct dd_pool *pool, u32 want, u64 *pbn, u32 *got);
/* Records [pbn, pbn + n) of new blocks owned by (vol, lbn + i), inside one
 * refs leaf (dd_rec_run_room); their bitmap bits set. */
int dd_rec_new_run(struct dd_pool *pool, u64 pbn, u32 n, u32 vol, u64 lbn, u8 domain);
u32 dd_rec_run_room(u64 pbn);	/* records from pbn to the end of its leaf */
int dd_rec_set_merged(struct dd_pool *pool, u64 pbn, bool merged);

/* ---- 5 volume (dd-volume.c) ------------------------------------------------
 * dd_vol_create, _snapshot, _delete, _reclaim, _map_insert, _map_unmap and
 * _make_exclusive are dd_volume_create, dd_snapshot_create, dd_volume_delete,
 * dd_pool_reclaim, dd_map_insert, dd_map_unmap and dd_map_make_exclusive
 * without the settling (dd-pool.c wraps them).  dd_volumes_flush is the
 * pre-commit step.
 */
int dd_vol_entry_get(struct dd_pool *pool, u32 id, struct dd_disk_volume *out);
int dd_vol_handle(struct dd_pool *pool, u32 id, struct dd_volume **out);
int dd_volumes_reload(struct dd_pool *pool);
int dd_volumes_flush(struct dd_pool *pool);
int dd_vol_create(struct dd_pool *pool, u32 id, u32 domain);
int dd_vol_snapshot(struct dd_pool *pool, u32 id, u32 origin);
int dd_vol_delete(struct dd_pool *pool, u32 id);
int dd_vol_reclaim(struct dd_pool *pool, u64 budget, bool *done);
int dd_vol_map_insert(struct dd_volume *vol, u64 lbn, u64 pbn);
int dd_vol_map_insert_run(struct dd_volume *vol, u64 lbn, u64 pbn, u32 n, u32 *done);
int dd_vol_map_unmap(struct dd_volume *vol, u64 lbn, u64 nr, enum dd_unmap_reason why);
int dd_vol_make_exclusive(struct dd_volume *vol, u64 lbn, bool *excl);
/* The mapping of (vol, lbn), and whether its block is referenced by that
 * entry alone, known as its owner, through no shared page (the one answer
 * the scanner's merges trust). */
int dd_vol_lookup_owned(struct dd_volume *vol, u64 lbn, struct dd_mapping *m, bool *owned);
/* The owner of block pbn (record d) is about to lose exclusivity (pbn gains
 * a reference): its exclusive bit is cleared.  *ok false, nothing changed,
 * if that entry cannot be named (the owner is a snapshot family, whose
 * entry may be reached through any member). */
int dd_vol_owner_clear_excl(struct dd_pool *pool, u64 pbn, const struct dd_record *d, bool *ok);
/* For the scanner's merges: (vol, lbn) now maps pbn, not exclusive (the
 * references are the caller's); the exclusive bit of (vol, lbn) cleared if
 * it maps pbn. */
int dd_vol_remap(struct dd_volume *vol, u64 lbn, u64 pbn);
int dd_vol_clear_excl(struct dd_volume *vol, u64 lbn, u64 pbn);
/* For dedup at import: the unmapped (vol, lbn) maps the referenced block
 * pbn, not exclusive, and pbn gains a reference; -EEXIST if (vol, lbn) is
 * mapped (nothing changed).  The caller reserved the room. */
int dd_vol_map_share(struct dd_volume *vol, u64 lbn, u64 pbn);
/* For unsharing: (vol, lbn), which maps old, maps new instead; new is a
 * reserved block (first: its record is made, owned by (vol, lbn), and the
 * entry exclusive if excl) or one an earlier call of the same group gave
 * its record (it gains a reference); old loses one.  new is not marked
 * written (the scanner would merge it again). */
int dd_vol_unshare_one(struct dd_volume *vol, u64 lbn, u64 old, u64 new, bool first, bool excl);

/* ---- 5s scan (dd-scan.c), beside the volume layer: dd-scan.h ------------ */
/* A block the scanner or dedup at import compares: never reported exclusive,
 * never made exclusive, never allocated. */
static inline bool dd_block_pinned(const struct dd_pool *pool, u64 pbn)
{
	return dd_resv_contains(&pool->pins, pbn) || dd_resv_contains(&pool->import_pins, pbn);
}
struct dd_index *dd_scan_index(struct dd_pool *pool);	/* NULL without a scanner */
u32 dd_scan_share_cap(struct dd_pool *pool);
/* Dedup at import (dd-import.c), beside the scanner. */
void dd_import_close(struct dd_pool *pool);
void dd_import_get_stats(struct dd_pool *pool, struct dd_scan_stats *st);
int dd_scan_open(struct dd_pool *pool);		/* writable opens */
void dd_scan_close(struct dd_pool *pool);
int dd_scan_resize(struct dd_pool *pool);
int dd_scan_pre_commit(struct dd_pool *pool);	/* a pre-commit step */
/* The unshare calls of dd-scan.h without the settling (dd-pool.c wraps them). */
int dd_unshare_start(struct dd_pool *pool);
int dd_unshare_prepare(struct dd_pool *pool, struct dd_unshare_batch *b);
int dd_unshare_apply(struct dd_pool *pool, struct dd_unshare_batch *b);

/* Everything written so far is on stable storage when this returns 0. */
static inline int dd_bm_sync(struct dd_bm *bm)
{
	int r = dd_bm_write_dirty(bm);

	return r ? r : dd_bm_flush(bm);
}

static inline bool dd_writable(struct dd_pool *pool)
{
	return pool->mode == DD_MODE_RW && !(pool->open_flags & DD_OPEN_READ_ONLY);
}

#endif
