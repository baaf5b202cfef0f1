/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dm-dedup metadata engine: the only code that knows the on-disk format
 * (include/dm-dedup/format.h).  The kernel targets and the userspace tools
 * see these calls and nothing else.  docs/design.md explains the rules.
 *
 * Concurrency: the engine does no locking of its own.  The caller serialises
 * every call that changes state (one writer at a time, e.g. the pool worker)
 * and may run dd_map_lookup(..., DD_NOWAIT) concurrently with other lookups
 * only while no writer runs (a reader/writer lock in the kernel glue).
 *
 * Transactions: every change joins the open transaction; dd_pool_commit()
 * makes it durable (journal, flush, superblock).  The engine also commits on
 * its own when the open transaction fills the journal, and long operations
 * (unmapping a range, copying a snapshot, freeing a deleted volume) commit
 * as they go.  Every commit first calls the pre_commit hook, where the kernel
 * flushes the data device: a mapping is never durable before its data.
 */
#ifndef DD_ENGINE_H
#define DD_ENGINE_H

#include "dd-env.h"
#include "dd-bm.h"

struct dd_pool;
struct dd_volume;

enum dd_mode {
	DD_MODE_RW,		/* normal */
	DD_MODE_RO,		/* metadata error or needs_check: no metadata changes */
	DD_MODE_FAIL,		/* even reads of metadata failed: nothing works */
};

struct dd_format_params {
	u64 nr_meta_blocks;	/* 0 = the whole metadata device */
	u64 nr_data_blocks;
	u32 data_block_sectors;	/* must be DD_SECTORS_PER_BLOCK in version 1 */
	u32 journal_blocks;	/* per journal area, 0 = sized from the device */
};

struct dd_pool_hooks {
	int (*pre_commit)(void *ctx);	/* may be NULL */
	/*
	 * Optional: called after a commit with the data blocks it freed, as
	 * ranges [start, start + len), before any of them can be allocated
	 * again (discard passdown).  An error is logged, not fatal.
	 */
	void (*freed)(void *ctx, u64 start, u64 len);
	void *ctx;
};

#define DD_OPEN_READ_ONLY	(1u << 0)	/* never write metadata */
#define DD_OPEN_IGNORE_CHECK	(1u << 1)	/* open rw even if needs_check is set */

enum dd_probe {
	DD_PROBE_ZEROED,	/* superblock slots and first journal block zero: format */
	DD_PROBE_POOL,		/* a dm-dedup pool, maybe damaged: never formatted over */
	DD_PROBE_FOREIGN,	/* something else: never format over it */
};

int dd_pool_probe(struct dd_bm *bm, enum dd_probe *result);
int dd_pool_format(struct dd_bm *bm, const struct dd_format_params *p);
int dd_pool_open(struct dd_bm *bm, unsigned flags, const struct dd_pool_hooks *hooks,
		 struct dd_pool **out);
void dd_pool_close(struct dd_pool *pool);	/* uncommitted changes are dropped */

int dd_pool_commit(struct dd_pool *pool);
bool dd_pool_dirty(struct dd_pool *pool);
enum dd_mode dd_pool_mode(struct dd_pool *pool);
/* The one path for metadata errors: abort the open transaction, set
 * needs_check, step the pool down rw -> ro -> fail.  Returns the mode. */
enum dd_mode dd_pool_metadata_error(struct dd_pool *pool, int err, const char *what);
int dd_pool_abort(struct dd_pool *pool);	/* drop the open transaction */
int dd_pool_clear_needs_check(struct dd_pool *pool);
int dd_pool_set_user_txn(struct dd_pool *pool, u64 old_id, u64 new_id);
int dd_pool_resize_data(struct dd_pool *pool, u64 nr_data_blocks);
/* A whole-block zero write to an unmapped LBN (nothing to unmap): counted in
 * zero_elided, which is written with the next commit or the clean close. */
void dd_pool_count_zero_write(struct dd_pool *pool);

struct dd_pool_stats {
	u64 txn;			/* last committed transaction */
	u64 user_txn;
	u64 nr_meta_blocks, meta_used;
	u64 nr_data_blocks, data_used;
	u64 data_free;			/* allocatable now */
	u64 data_pending_free;		/* freed in the open transaction */
	u64 data_reserved;		/* reserved for writes in flight */
	u64 shared_blocks, mapped_blocks;
	u64 zero_elided, discarded, cow_splits;
	u32 nr_volumes;
	u32 nr_deleting;		/* deleted volumes whose blocks are not all freed */
	u32 nr_dirty;			/* metadata blocks in the open transaction */
	u32 journal_blocks;
	bool needs_check;
	/* An abort (a metadata error) dropped changes of the open transaction
	 * since this pool was opened: writes reported complete may be gone, so
	 * a flush must not report success. */
	bool dropped_changes;
	enum dd_mode mode;
};
void dd_pool_get_stats(struct dd_pool *pool, struct dd_pool_stats *st);

/* ---- volumes ---------------------------------------------------------- */

int dd_volume_create(struct dd_pool *pool, u32 id);
/* Copy origin's map into a new volume (origin must be quiescent).  Commits
 * as it goes; a crash before it returns leaves no trace after reopening. */
int dd_snapshot_create(struct dd_pool *pool, u32 id, u32 origin);
/* Marks the volume deleted (fails with -EBUSY while open); its id stays
 * taken until dd_pool_reclaim has freed its blocks. */
int dd_volume_delete(struct dd_pool *pool, u32 id);
/* Free up to 'budget' map entries of deleted volumes; *done when empty. */
int dd_pool_reclaim(struct dd_pool *pool, u64 budget, bool *done);

struct dd_volume_info {
	u32 id;
	u32 flags;			/* DD_VOL_* */
	u32 origin;
	u64 mapped_blocks;
	u64 created_txn;
};
/* First volume with id >= *id (deleted and incomplete ones too if
 * want_all); -ENOENT at the end. */
int dd_volume_next(struct dd_pool *pool, u32 *id, bool want_all, struct dd_volume_info *info);

int dd_volume_open(struct dd_pool *pool, u32 id, struct dd_volume **out);
void dd_volume_close(struct dd_volume *vol);
u32 dd_volume_id(struct dd_volume *vol);
u64 dd_volume_mapped(struct dd_volume *vol);
/* Highest mapped LBN; -ENODATA if nothing is mapped. */
int dd_volume_highest_lbn(struct dd_volume *vol, u64 *lbn);

/* ---- the map ---------------------------------------------------------- */

#define DD_NOWAIT	(1u << 0)	/* -EWOULDBLOCK instead of metadata I/O */

struct dd_mapping {
	u64 pbn;
	bool mapped;
	bool excl;	/* exclusive in the committed and the open state: write in place */
};

int dd_map_lookup(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m);

/* First mapped LBN >= *lbn (for dumps and walks); -ENODATA past the last. */
int dd_map_next(struct dd_volume *vol, u64 *lbn, struct dd_mapping *m);

/* For a mapped LBN without the exclusive bit: if its block is referenced
 * only by this LBN in both the committed and the open state, set the bit and
 * return *excl = true (the write may go in place). */
int dd_map_make_exclusive(struct dd_volume *vol, u64 lbn, bool *excl);

enum dd_write_plan {
	DD_WRITE_IN_PLACE,	/* exclusive: write the mapped block in place */
	DD_WRITE_NEW_BLOCK,	/* unmapped, or certainly shared: needs a new block */
	DD_WRITE_ASK,		/* mapped, refcount 1, no exclusive bit: try
				 * dd_map_make_exclusive() first */
};

/* What a write to lbn needs, from the map and the block's record only. */
int dd_map_plan_write(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m,
		      enum dd_write_plan *plan);

/* Reserve a data block for a write in flight.  The reservation is memory
 * only: a crash leaves the block free.  dd_map_insert consumes it. */
int dd_data_reserve(struct dd_pool *pool, u64 *pbn);
void dd_data_unreserve(struct dd_pool *pool, u64 pbn);

/* Map lbn to the reserved block pbn (whose data is written), exclusively
 * owned; the previous block loses a reference. */
int dd_map_insert(struct dd_volume *vol, u64 lbn, u64 pbn);

enum dd_unmap_reason { DD_UNMAP_DISCARD, DD_UNMAP_ZERO, DD_UNMAP_OTHER };
/* Unmap [lbn, lbn + nr): reference drops only, no data I/O. */
int dd_map_unmap(struct dd_volume *vol, u64 lbn, u64 nr, enum dd_unmap_reason why);

/* ---- per-PBN records (checks, scanner, tools) --------------------------- */

struct dd_record {
	u32 refcount;
	bool owned;
	u32 owner_vol;
	u64 owner_lbn;
	u8 gen;
};
int dd_record_get(struct dd_pool *pool, u64 pbn, struct dd_record *rec);

/* ---- limits the callers rely on ------------------------------------------
 * (Read-only inspection of the metadata, for checkers, dumps and tests, is
 * engine/dd-walk.h.)
 */

/* Most metadata blocks one engine operation may dirty: an operation starts
 * only if the open transaction has room for this many more (else commit). */
#define DD_OP_MAX_DIRTY		48

#endif
