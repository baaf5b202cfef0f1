/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dm-dedup metadata engine: the only code that knows the on-disk format
 * (include/dm-dedup/format.h).  The kernel targets and the userspace tools
 * see these calls and nothing else.  docs/design.md explains the rules.
 *
 * Transactions: every change joins the open transaction; dd_pool_commit()
 * makes it durable (journal, flush, superblock).  The engine also commits on
 * its own when the open transaction fills the journal, and long operations
 * (unmapping a range, copying a snapshot, freeing a deleted volume) commit
 * as they go.  Every commit first calls the pre_commit hook, where the kernel
 * flushes the data device and drains in-flight I/O (a mapping is never
 * durable before its data), and after it the freed hook with the data blocks
 * it freed (discard passdown).
 *
 * Contracts: before each call (or group of calls), the errors it returns
 * besides 0, then whether it may commit, whether it enters the ladder, and
 * whether it may run concurrently:
 *   errors   "I/O" is any error of the block manager or of a hook (-EIO,
 *            -ENOMEM...); "damage" is -EILSEQ: metadata that fails its
 *            checks (checksum, identity, a pointer out of range, a tree
 *            taller than DD_MAX_HEIGHT) or contradicts the operation.
 *   commit   "may commit": the call may run one or more commits, each with
 *            the pre_commit hook before and the freed hook after; "no
 *            commit": it writes nothing and calls no hook.
 *   ladder   "ladder": an error that left the open transaction half-done,
 *            or a failed commit, has stepped the pool down (through
 *            dd_pool_metadata_error, see there) before the call returns;
 *            dd_pool_mode() says where it is.  Refusals before any change
 *            (-EINVAL, -EROFS, -ENOSPC, -EEXIST, -ENOENT, -EBUSY) and damage
 *            met while only reading never do: the caller decides.
 *   [X]      exclusive: no other call on the same pool may run meanwhile
 *            (the engine has no locks: one caller at a time, e.g. the
 *            kernel's pool worker under the pool lock);
 *   [R]      may run alongside other [R] calls, never alongside an [X] call
 *            (the kernel's status, under the read side of the pool lock).
 *            The block manager must then be thread-safe (dm-bufio is).
 * Lookups with DD_NOWAIT are [X] too: a tree keeps a one-leaf lookup hint
 * (two words) that every lookup may rewrite, so two lookups in one volume
 * at once could pair one's index with the other's leaf.
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
	/* The metadata space may grow (dd_pool_resize_meta) up to this many
	 * blocks: bitmap pages for it are reserved now.  0 = the default
	 * (DD_MBITMAP_RESERVE, docs/format.md). */
	u64 meta_max_blocks;
};

struct dd_pool_hooks {
	int (*pre_commit)(void *ctx);	/* may be NULL; an error fails the commit */
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

/* ---- pools --------------------------------------------------------------
 * Probe and format work on a block manager with no pool open on it; open
 * makes the pool, close ends it (no call on it may follow or run meanwhile).
 */

/* I/O.  No commit (writes nothing). */
int dd_pool_probe(struct dd_bm *bm, enum dd_probe *result);
/* -EINVAL parameters (sizes, data_block_sectors, journal_blocks); -ENOSPC a
 * metadata device too small; -ENOMEM; I/O (-EROFS: a read-only device).
 * Writes a new pool over whatever the device held (probe first). */
int dd_pool_format(struct dd_bm *bm, const struct dd_format_params *p);
/* -EINVAL no superblock with the magic, an unsupported version or
 * incompatible feature, inconsistent geometry, a device shorter than the
 * metadata; -EILSEQ no valid superblock but a damaged one, a damaged
 * journal, or (writable opens) a damaged volume table (the kernel says "run
 * dedup_check"); -EROFS the journal must be
 * replayed but the block manager refuses writes (the kernel's read_only
 * pool); -ENOMEM; I/O.
 * Writable opens also read the volume table (damage, I/O) and hand the
 * snapshots a crash interrupted to reclaim (as dd_volume_delete: may
 * commit, through the hooks given here; ladder).  A pool with needs_check
 * (unless DD_OPEN_IGNORE_CHECK), DD_OPEN_READ_ONLY or an unknown ro_compat
 * feature opens in DD_MODE_RO. */
int dd_pool_open(struct dd_bm *bm, unsigned flags, const struct dd_pool_hooks *hooks,
		 struct dd_pool **out);
/* The data space (nr_data_blocks) of the superblock dd_pool_open() would use,
 * read without opening: a caller that can address less refuses the pool
 * before an open allocates for that many blocks (the scanner's sets).  I/O;
 * -EINVAL / -EILSEQ as dd_pool_open() for no valid superblock; -ENOMEM. */
int dd_pool_probe_data_blocks(struct dd_bm *bm, u64 *nr_data_blocks);
/* Never fails.  Uncommitted changes are dropped; with none, a writable pool
 * writes a last superblock with an empty journal (no hook: no mapping
 * changed since the last commit).  Frees the pool and its volume handles. */
void dd_pool_close(struct dd_pool *pool);

/* ---- transactions, modes and the error ladder ----------------------------- */

/* 0 at once if nothing is uncommitted; -EIO in DD_MODE_FAIL; -EROFS not
 * writable; the pre-commit step's errors (damage, I/O), the pre_commit
 * hook's, the commit's I/O.  May commit; ladder; [X]. */
int dd_pool_commit(struct dd_pool *pool);
/* Something is uncommitted.  [R] */
bool dd_pool_dirty(struct dd_pool *pool);
/* [R] */
enum dd_mode dd_pool_mode(struct dd_pool *pool);
/* The ladder, the one path for metadata errors: abort the open transaction,
 * set needs_check (an empty commit that calls the pre_commit hook, its error
 * ignored, and never the freed hook), step the pool down rw -> ro -> fail.
 * Returns the mode.  Nothing happens in DD_MODE_FAIL.  The caller's for
 * errors the engine did not take there itself (the calls marked "ladder"
 * do), e.g. damage met by a lookup.  [X] */
enum dd_mode dd_pool_metadata_error(struct dd_pool *pool, int err, const char *what);
/* Drops the open transaction and reloads the committed state; reservations
 * stay.  0, or the reload's error (damage, -EINVAL, -EROFS, I/O), after
 * which the pool is in DD_MODE_FAIL.  No commit; [X]. */
int dd_pool_abort(struct dd_pool *pool);
/* 0 if the flag is clear; -EROFS in DD_MODE_FAIL or opened read-only; else
 * back to DD_MODE_RW and a commit recording it (as dd_pool_commit: may
 * commit; ladder).  [X] */
int dd_pool_clear_needs_check(struct dd_pool *pool);
/* -EROFS not writable; -EINVAL old_id is not the current id.  No commit (the
 * next one writes it); [X]. */
int dd_pool_set_user_txn(struct dd_pool *pool, u64 old_id, u64 new_id);
/* -EROFS not writable; -EINVAL smaller than now, or beyond 2^48 blocks.  No
 * commit (the next one writes it); [X]. */
int dd_pool_resize_data(struct dd_pool *pool, u64 nr_data_blocks);
/* Grows the metadata space to nr_meta_blocks of the block manager's device
 * (which the caller has grown first).  -EROFS not writable; -EINVAL smaller
 * than now or than the device; -EFBIG beyond the bitmap pages reserved at
 * format (meta_max_blocks in the stats).  May commit when the journal
 * fills (each bitmap page it opens is a dirtied block); the new size is
 * durable with the next commit.  [X] */
int dd_pool_resize_meta(struct dd_pool *pool, u64 nr_meta_blocks);
/* A whole-block zero write to an unmapped LBN (nothing to unmap): counted in
 * zero_elided, which is written with the next commit or the clean close.
 * [X] */
void dd_pool_count_zero_write(struct dd_pool *pool);

struct dd_pool_stats {
	u64 txn;			/* last committed transaction */
	u64 user_txn;
	u64 nr_meta_blocks, meta_used;
	u64 meta_max_blocks;		/* the metadata space may grow to this */
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
/* [R] */
void dd_pool_get_stats(struct dd_pool *pool, struct dd_pool_stats *st);

/* ---- volumes ----------------------------------------------------------
 * Ids above DD_MAX_VOLUME_ID are -EINVAL.  The calls that change the table
 * reserve journal room first (a commit if the journal is full: may commit)
 * and check the pool is writable (-EROFS) before changing anything.
 */

/* -EINVAL; -EROFS; -ENOSPC fewer than DD_OP_MAX_DIRTY free metadata blocks;
 * -EEXIST the id is taken (a deleted volume keeps it until reclaimed);
 * damage, I/O.  May commit; ladder; [X]. */
int dd_volume_create(struct dd_pool *pool, u32 id);
/* The same, in dedup domain 0..DD_MAX_DOMAIN (dd_volume_create: domain 0):
 * blocks are never shared between volumes of different domains.  -EINVAL
 * also for a domain out of range. */
int dd_volume_create_in(struct dd_pool *pool, u32 id, u32 domain);
/* Copy origin's map into a new volume (origin must be quiescent).  Commits
 * as it goes; a crash before it returns leaves no trace after reopening.
 * -EINVAL (also id == origin); -EROFS; -ENOSPC metadata space, before or
 * during the copy; -EEXIST; -ENOENT no such origin; -EOVERFLOW a block of the
 * origin at the 2^32 - 1 reference limit; damage, I/O.  A copy that fails
 * without the ladder is handed to reclaim (deleted).  May commit; ladder
 * (-EOVERFLOW too: it is met during the copy); [X]. */
int dd_snapshot_create(struct dd_pool *pool, u32 id, u32 origin);
/*
 * How the next snapshots are made.  By default a snapshot shares the origin's map
 * pages when the journal holds a page-copy step (DD_COW_MIN_JOURNAL blocks; else it
 * copies the map).  With copy set, every snapshot copies the map, as before shared
 * pages: the volumes of a snapshot family own their blocks as a family, and the
 * scanner merges no block of a family (docs/snapshots.md), so the kernel copies
 * unless the pool's table asks for share_snapshots.  Pages already shared stay so.
 */
void dd_pool_set_snapshot_copy(struct dd_pool *pool, bool copy);
/* Marks the volume deleted; its id stays taken until dd_pool_reclaim has
 * freed its blocks.  Works on a full metadata device (no -ENOSPC).
 * -EINVAL; -EBUSY the volume is open; -EROFS; -ENOENT no such volume, or
 * already deleted; damage, I/O.  May commit; ladder; [X]. */
int dd_volume_delete(struct dd_pool *pool, u32 id);
/* Free up to 'budget' map entries of deleted volumes; *done when none is
 * left.  -EROFS a deleted volume is left but the pool is not writable;
 * damage (a map that cannot be emptied: ladder), I/O.  Commits as it goes
 * (may commit); ladder; [X]. */
int dd_pool_reclaim(struct dd_pool *pool, u64 budget, bool *done);

struct dd_volume_info {
	u32 id;
	u32 flags;			/* DD_VOL_* */
	u32 origin;
	u64 mapped_blocks;
	u64 created_txn;
	u32 domain;			/* dedup domain */
	u32 family;			/* snapshot family (its own id if none) */
};
/* First volume with id >= *id (deleted and incomplete ones too if
 * want_all); -ENOENT at the end; damage (a slot holding another id), I/O.
 * No commit; [X]. */
int dd_volume_next(struct dd_pool *pool, u32 *id, bool want_all, struct dd_volume_info *info);

/* -EINVAL; -ENOENT no such volume, or deleted or incomplete (the kernel
 * says "create_volume first"); damage, I/O, -ENOMEM.  No commit; [X]. */
int dd_volume_open(struct dd_pool *pool, u32 id, struct dd_volume **out);
/* [X] */
void dd_volume_close(struct dd_volume *vol);
/* [R] */
u32 dd_volume_id(struct dd_volume *vol);
/* [R] */
u64 dd_volume_mapped(struct dd_volume *vol);
/* Highest mapped LBN; -ENODATA if nothing is mapped; damage, I/O.  No
 * commit; [R] (what it writes, the tree's lookup hint, any concurrent
 * caller on the same volume writes with the same values). */
int dd_volume_highest_lbn(struct dd_volume *vol, u64 *lbn);

/* ---- the map ----------------------------------------------------------
 * LBNs above DD_MAX_ADDR are -EINVAL.  A mapping is never returned beyond
 * the data device (damage instead).
 */

#define DD_NOWAIT	(1u << 0)	/* -EWOULDBLOCK instead of metadata I/O */

struct dd_mapping {
	u64 pbn;
	bool mapped;
	bool excl;	/* exclusive in the committed and the open state: write in place */
};

/* -EINVAL; -EWOULDBLOCK (DD_NOWAIT) a block is not cached; damage, I/O.  An
 * unmapped LBN is 0 with m->mapped false.  No commit; [X]. */
int dd_map_lookup(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m);

/* First mapped LBN >= *lbn (for dumps and walks); -ENODATA past the last;
 * damage, I/O.  No commit; [X]. */
int dd_map_next(struct dd_volume *vol, u64 *lbn, struct dd_mapping *m);

/* For a mapped LBN without the exclusive bit: if its block is referenced
 * only by this LBN in both the committed and the open state, set the bit and
 * return *excl = true (the write may go in place); 0 with *excl false if
 * not.  -EINVAL; -ENODATA the LBN is unmapped; -EROFS the bit would be set
 * but the pool is not writable; damage (also a record whose owner is
 * another LBN: no ladder), I/O.  Needs no free metadata.  May commit
 * (before setting the bit); ladder; [X]. */
int dd_map_make_exclusive(struct dd_volume *vol, u64 lbn, bool *excl);

enum dd_write_plan {
	DD_WRITE_IN_PLACE,	/* exclusive: write the mapped block in place */
	DD_WRITE_NEW_BLOCK,	/* unmapped, or certainly shared: needs a new block */
	DD_WRITE_ASK,		/* mapped, refcount 1, no exclusive bit: try
				 * dd_map_make_exclusive() first */
};

/* What a write to lbn needs, from the map and the block's record only.
 * As dd_map_lookup (-EINVAL, -EWOULDBLOCK, damage, I/O).  No commit; [X]. */
int dd_map_plan_write(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m,
		      enum dd_write_plan *plan);

/* Reserve a data block for a write in flight.  The reservation is memory
 * only: a crash leaves the block free.  dd_map_insert consumes it.
 * -EROFS not writable; -ENOSPC no free data block (blocks freed in the open
 * transaction count as used until it commits; the kernel then waits for
 * space); damage (a block free in the bitmap that has references: ladder),
 * I/O, -ENOMEM.  No commit; ladder; [X]. */
int dd_data_reserve(struct dd_pool *pool, u64 *pbn);
/* As dd_data_reserve, for up to @want (>= 1) consecutive blocks from *pbn:
 * the first block as dd_data_reserve finds it, then the blocks after it
 * while they are free; *got (>= 1) were reserved, each to be consumed by
 * dd_map_insert or released by dd_data_unreserve.  On an error nothing is
 * reserved.  No commit; ladder; [X]. */
int dd_data_reserve_run(struct dd_pool *pool, u32 want, u64 *pbn, u32 *got);
/* Never fails; harmless for a block no longer reserved.  [X] */
void dd_data_unreserve(struct dd_pool *pool, u64 pbn);
/* dd_data_unreserve of [pbn, pbn + n), the end of a run reserved last: the
 * allocation cursor goes back to pbn if no block was reserved since.  [X] */
void dd_data_unreserve_run(struct dd_pool *pool, u64 pbn, u32 n);

/* Map lbn to the reserved block pbn (whose data is written), exclusively
 * owned; the previous block loses a reference.  -EINVAL an LBN out of range
 * or pbn not reserved; -EROFS; -ENOSPC fewer than DD_OP_MAX_DIRTY free
 * metadata blocks; damage, I/O.  On failure, release the reservation with
 * dd_data_unreserve.  May commit (before the change); ladder; [X]. */
int dd_map_insert(struct dd_volume *vol, u64 lbn, u64 pbn);
/* dd_map_insert for lbn + i -> pbn + i, i < n (n >= 1), each block reserved,
 * in steps of up to 64 blocks inside one map leaf and one refs leaf (a
 * step dirties what one insert does, and may commit before it, as one
 * insert may).  *done: the blocks inserted, in order; on an error the
 * caller releases the reservations of [*done, n) (and if the error entered
 * the ladder, the inserts went with the open transaction).  A block not
 * reserved refuses the run before any change (-EINVAL).  As dd_map_insert
 * otherwise.  May commit (before a step); ladder; [X]. */
int dd_map_insert_run(struct dd_volume *vol, u64 lbn, u64 pbn, u32 n, u32 *done);

enum dd_unmap_reason { DD_UNMAP_DISCARD, DD_UNMAP_ZERO, DD_UNMAP_OTHER };
/* Unmap [lbn, lbn + nr): reference drops only, no data I/O.  Works on a full
 * metadata device.  -EINVAL a range beyond DD_MAX_ADDR; -EROFS something in
 * the range is mapped but the pool is not writable; damage, I/O.  Commits as
 * it goes (may commit: what it committed before an error stays unmapped);
 * ladder; [X]. */
int dd_map_unmap(struct dd_volume *vol, u64 lbn, u64 nr, enum dd_unmap_reason why);

/* ---- per-PBN records (checks, scanner, tools) --------------------------- */

struct dd_record {
	u32 refcount;
	bool owned;
	u32 owner_vol;		/* owned: the owner; else the last owner, a hint */
	u64 owner_lbn;
	u8 domain;		/* the dedup domain of every referrer */
	bool merged;		/* shared through a scanner merge */
};
/* -EINVAL pbn beyond the data device; damage, I/O.  No commit; [X]. */
int dd_record_get(struct dd_pool *pool, u64 pbn, struct dd_record *rec);

/* ---- limits the callers rely on ------------------------------------------
 * (Read-only inspection of the metadata, for checkers, dumps and tests, is
 * engine/dd-walk.h.)
 */

/* Most metadata blocks one engine operation may dirty: an operation starts
 * only if the open transaction has room for this many more (else commit). */
#define DD_OP_MAX_DIRTY		48

#endif
