/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scanner's side of the engine: what to scan (written marks and passes),
 * the hash index, and byte-verified merges.  docs/scanner.md says why.
 *
 * The engine decides, the caller moves data.  A batch goes through three
 * calls, each made with the pool lock held (like every engine call), with
 * the lock dropped in between while the caller reads data:
 *
 *   dd_scan_prepare()  picks the next blocks of the pass (D) and pins them;
 *                      the caller forgets the lookup-cache entries of the
 *                      owners it lists, waits for in-flight I/O (the epoch
 *                      drain), reads each D and fills in its hash (and
 *                      DD_SI_ZERO for a block of zeroes);
 *   dd_scan_match()    finds a candidate canonical block C for each D (a
 *                      prediction along a verified run, or the index) and
 *                      pins it; the caller forgets the cache entries of the
 *                      owners it lists, drains again, reads each C and sets
 *                      DD_SI_SAME where C's bytes equal D's;
 *   dd_scan_apply()    merges the pairs whose bytes are equal, unmaps the
 *                      blocks of zeroes, updates the index, and unpins
 *                      everything.  The caller forgets the cache entries of
 *                      the LBNs it may remap first (it may commit inside):
 *                      (vol, lbn) of each DD_SI_OWNED item with DD_SI_SAME or
 *                      DD_SI_ZERO, and (cand_vol, cand_lbn) of each
 *                      DD_SI_CAND_OWNED item with DD_SI_SAME (a shared D
 *                      takes its C's LBN instead).
 *
 * A pinned block is never reported exclusive by dd_map_lookup() or
 * dd_map_plan_write() (writes to it copy-on-write), never made exclusive and
 * never allocated (if it is freed meanwhile): its bytes cannot change while
 * it is pinned, except by writes that looked it up before it was pinned,
 * which the caller's drain waits for.  dd_scan_apply() checks again, under
 * the lock, that D is still owned by the same LBN and that C still holds a
 * block of the same domain below the sharing cap; a write that came in
 * between went to a new block, so its pair is dropped.
 */
#ifndef DD_SCAN_H
#define DD_SCAN_H

#include "dd-engine.h"
#include "dd-index.h"

#define DD_SCAN_BATCH_MAX	256

/* Item flags */
#define DD_SI_READ		(1u << 0)	/* prepare: read D and hash it */
#define DD_SI_OWNED		(1u << 1)	/* prepare: D is owned by exactly (vol, lbn) */
#define DD_SI_ZERO		(1u << 2)	/* caller: D is all zeroes */
#define DD_SI_CAND		(1u << 3)	/* match: read C (cand) and compare */
#define DD_SI_CAND_OWNED	(1u << 4)	/* match: C is owned by exactly (cand_vol, cand_lbn) */
#define DD_SI_SAME		(1u << 5)	/* caller: C's bytes equal D's */
#define DD_SI_MERGED		(1u << 6)	/* apply: D was merged into C (or unmapped, zero) */
#define DD_SI_FROM_INDEX	(1u << 7)	/* match: C came from the index (not a prediction) */

struct dd_scan_item {
	u64 pbn;		/* D */
	u64 lbn;		/* D's owner (DD_SI_OWNED) */
	u32 vol;
	u32 flags;		/* DD_SI_* */
	u64 hash;		/* xxh64 of D, seed DD_INDEX_SEED (caller) */
	u64 cand;		/* C (DD_SI_CAND) */
	u64 cand_lbn;		/* C's owner (DD_SI_CAND_OWNED) */
	u32 cand_vol;
	u8 domain;		/* D's dedup domain */
};

struct dd_scan_batch {
	u32 nr;
	struct dd_scan_item item[DD_SCAN_BATCH_MAX];
};

struct dd_scan_config {
	u64 index_bytes;	/* memory of the hash index */
	u32 share_cap;		/* most references a canonical block takes */
	u32 batch;		/* blocks per batch, 1..DD_SCAN_BATCH_MAX */
};

#define DD_SCAN_DEFAULT_INDEX_BYTES	(64ULL << 20)
#define DD_SCAN_DEFAULT_SHARE_CAP	65536u
#define DD_SCAN_DEFAULT_BATCH		DD_SCAN_BATCH_MAX

struct dd_scan_stats {
	/* the current or last pass */
	u64 pass;		/* passes started */
	u64 full_passes;	/* of them, over every mapped block */
	u64 pass_todo, pass_done;	/* blocks of the current pass: all, done */
	bool pass_active;
	/* since the pool was formatted (persistent) */
	u64 merged;		/* blocks merged away (freed by merges) */
	u64 zero_unmapped;	/* blocks of zeroes the scanner unmapped */
	u64 cow_breaks;		/* writes that split a block shared by merges */
	/* since the pool was opened */
	u64 scanned;		/* blocks hashed */
	u64 volatile_skipped;	/* written again before they were scanned */
	u64 false_hits;		/* hash equal, bytes different */
	u64 raced;		/* pairs dropped: a write came between compare and merge */
	u64 marks_dropped;	/* written marks lost (memory) */
	u64 marked;		/* blocks marked for the next pass */
	u32 share_cap;		/* most references a canonical block takes */
	struct dd_index_stats index;
	/* unsharing (scan run 2): the current or last walk, since the pool was opened */
	bool unshare_active;
	u64 unshare_todo, unshare_done;	/* map entries of live volumes: all (at the start), walked */
	u64 unshare_raced;	/* copies dropped: a write moved the LBN away meanwhile */
	/* since the pool was formatted (persistent) */
	u64 unshared;		/* blocks copied by unsharing */
	/* Blocks actually freed by merges now: merged - cow_breaks - unshared
	 * (0 if negative; docs/scanner.md says where it is approximate). */
	u64 freed;
	/* dedup at import, since the pool was opened (the blocks shared at
	 * import also count in merged: they were never written) */
	u64 import_hinted;	/* LBNs dd_import_plan named a candidate for */
	u64 import_shared;	/* LBNs mapped to a byte-equal block instead of written */
	u64 import_missed;	/* candidates whose bytes differed (written instead) */
	u64 import_raced;	/* candidates dropped: gone, mapped, pinned, full */
};

/* Configure (at open, and at run time: a new index size moves the entries). */
int dd_scan_configure(struct dd_pool *pool, const struct dd_scan_config *cfg);

/* A data write to pbn (in place or new): it is scanned in a later pass. */
void dd_scan_mark_written(struct dd_pool *pool, u64 pbn);

/* Starts a pass over the blocks written since the last one (or, full, over
 * every mapped block).  -EBUSY if one is running, or an unshare walk. */
int dd_scan_start_pass(struct dd_pool *pool, bool full);

/* The three steps of a batch (see the top).  prepare returns the number of
 * items (0: the pass is over); match returns the number of candidates. */
int dd_scan_prepare(struct dd_pool *pool, struct dd_scan_batch *b);
int dd_scan_match(struct dd_pool *pool, struct dd_scan_batch *b);
int dd_scan_apply(struct dd_pool *pool, struct dd_scan_batch *b);
/* Unpins a batch without applying it (stop, error). */
void dd_scan_release(struct dd_pool *pool, struct dd_scan_batch *b);

void dd_scan_get_stats(struct dd_pool *pool, struct dd_scan_stats *st);

/* Before a clean close: every written mark and the index to the metadata
 * device (what does not fit is lost: savings only).  May commit. */
int dd_scan_save(struct dd_pool *pool);

/*
 * Unsharing (KSM's run=2): every (volume, LBN) whose block is shared through
 * scanner merges gets a block of its own again, with the same bytes; the
 * sharing snapshots made stays (docs/scanner.md, "Unsharing").  The engine
 * walks the maps of the live volumes in (volume, LBN) order with a cursor
 * it keeps between calls, so the walk runs in batches with the pool lock
 * dropped in between, like a scan pass:
 *
 *   dd_scan_unshare_start()    begins a walk (an active scan pass stops:
 *                              its blocks keep their written marks; no
 *                              pass can start until the walk ends).
 *   dd_scan_unshare_prepare()  lists the next items: (vol, lbn) maps the
 *                              merged block old_pbn and is to map new_pbn,
 *                              a data block reserved for it (as
 *                              dd_data_reserve).  The items of one group
 *                              (LBNs that snapshots made share one block:
 *                              the same LBN in volumes related by
 *                              create_snap) are adjacent and share new_pbn;
 *                              the first carries DD_UI_COPY.  old_pbn is
 *                              pinned (never made exclusive or allocated,
 *                              so its bytes cannot change; it is shared,
 *                              so no in-place write to it is in flight).
 *                              The caller (lock dropped) reads old_pbn and
 *                              writes its bytes to new_pbn for every
 *                              DD_UI_COPY item, and forgets the lookup-cache
 *                              entries of every item's (vol, lbn).
 *   dd_scan_unshare_apply()    remaps each (vol, lbn) that still maps old_pbn
 *                              to new_pbn (one that a guest write moved away
 *                              meanwhile is left alone and, if no LBN of its
 *                              group is left, new_pbn is released), drops
 *                              the reference on old_pbn, clears the merged
 *                              mark when no merged sharing is left, unpins.
 *   dd_scan_unshare_release()  gives back the reservations and pins of a
 *                              batch not applied (an error, a stop).
 *
 * Data before mapping, as on the data path: new_pbn's bytes must be written
 * before apply, and the remaps join the open transaction, which apply may
 * commit (journal full) and the caller's next commit makes durable; every
 * commit runs the pre_commit hook first, which must flush the data device.
 * old_pbn is never freed by unsharing (it keeps at least one referrer); if
 * guest writes free it meanwhile it is quarantined until the commit and
 * stays pinned until apply or release.  The new blocks are not marked
 * written: a later pass does not merge them again unless they are written
 * (or a full pass is run); the caller sets run 0 when the walk is over.
 * Blocks of zeroes the scanner unmapped stay unmapped (they read the same).
 *
 * Every call is [X] and must be made with no scan batch in flight.
 */
#define DD_UI_COPY	(1u << 0)	/* prepare: copy old_pbn to new_pbn (a group's first) */
#define DD_UI_KEEP	(1u << 1)	/* prepare: the group keeps old_pbn (no I/O, new_pbn 0) */
#define DD_UI_DONE	(1u << 2)	/* apply: remapped (KEEP: the merged mark dropped) */

struct dd_unshare_item {
	u32 vol;
	u32 flags;		/* DD_UI_* */
	u64 lbn;
	u64 old_pbn;		/* the merged block (vol, lbn) maps */
	u64 new_pbn;		/* its copy, reserved */
};

struct dd_unshare_batch {
	u32 nr;
	struct dd_unshare_item item[DD_SCAN_BATCH_MAX];
};

/* -EROFS not writable or no scanner; -EBUSY a walk is active; damage, I/O
 * (reading the volume table), -ENOMEM.  No commit; [X]. */
int dd_scan_unshare_start(struct dd_pool *pool);
/* > 0: items in b; 0: the walk is over (it is no longer active); -EAGAIN:
 * nothing in this stretch of the maps (the cursor moved on: drop the lock,
 * call again).  -ENOSPC: no free data block for the next copy (the cursor
 * stays on it: free space and call again, or stop; nothing is lost);
 * -EROFS; damage, I/O, -ENOMEM.  On an error b holds nothing.  No commit;
 * ladder (a data block free in the bitmap with references, as
 * dd_data_reserve); [X]. */
int dd_scan_unshare_prepare(struct dd_pool *pool, struct dd_unshare_batch *b);
/* Applies and releases b.  -EROFS (b released); -ENOSPC metadata space
 * (the items not applied are released: the walk can go on later); damage,
 * I/O.  May commit; ladder; [X]. */
int dd_scan_unshare_apply(struct dd_pool *pool, struct dd_unshare_batch *b);
/* Never fails.  [X] */
void dd_scan_unshare_release(struct dd_pool *pool, struct dd_unshare_batch *b);
/* Ends the walk (release any batch first).  [X] */
void dd_scan_unshare_stop(struct dd_pool *pool);

/* Settings of the caller's scanner kept with the pool (written with the
 * next commit): run 0/1, rate in MiB/s (0 = the caller's default). */
void dd_scan_get_settings(struct dd_pool *pool, u32 *run, u32 *rate_mib);
int dd_scan_set_settings(struct dd_pool *pool, u32 run, u32 rate_mib);

/*
 * Dedup at import (docs/scanner.md, "Dedup at import").  A writer that knows
 * what it is about to write to unmapped LBNs of a volume (dedupctl import)
 * gives the engine the hashes first; the engine names a candidate block C
 * for each LBN it can (the index for a hook, else a prediction along the run
 * of the previous item's candidate, as the scanner predicts).  When the
 * write arrives, the caller holds it and asks, under the pool lock:
 *
 *   dd_import_prepare()  checks each item again (the LBN unmapped, C
 *                        referenced, same domain, below the sharing cap,
 *                        not pinned by the scanner) and pins C; the caller
 *                        forgets the lookup-cache entries of the owners it
 *                        lists (DD_II_CAND_OWNED), drains the epoch, reads
 *                        each C and sets DD_II_SAME where C's bytes equal
 *                        the write's;
 *   dd_import_apply()    maps each DD_II_SAME item's LBN to C (C gains a
 *                        reference, its owner loses the exclusive bit),
 *                        after checking again that the LBN is unmapped and
 *                        C still fits, and unpins everything.  The caller
 *                        forgets the cache entries of (vol, lbn) and of
 *                        C's owner first (apply may commit).  Items not
 *                        DD_II_SHARED afterwards are written as any write.
 *
 * The mappings join the open transaction, as a written block's would: the
 * write is durable after the next commit (a FLUSH).  Nothing is written to
 * the data device, so no data ordering is needed; C cannot change while it
 * is pinned (dd-scan.h's pins, in a set of their own: a scan batch and an
 * import batch never rely on each other's pins).
 *
 * dd_import_index() is called once the writes of a planned set are done:
 * each hook hash whose LBN now owns a block of its own is indexed, so later
 * sets (and the next machine imported) find it without a scan pass.
 */
#define DD_II_HASHED		(1u << 0)	/* caller: hash is the bytes to be written */
#define DD_II_CAND		(1u << 1)	/* plan/prepare: C (cand) is the candidate */
#define DD_II_CAND_OWNED	(1u << 2)	/* prepare: C is owned by (cand_vol, cand_lbn) */
#define DD_II_SAME		(1u << 3)	/* caller: C's bytes equal the write's */
#define DD_II_SHARED		(1u << 4)	/* apply: (vol, lbn) maps C */
#define DD_II_FROM_INDEX	(1u << 5)	/* plan: C came from the index */

struct dd_import_item {
	u32 vol;
	u32 flags;		/* DD_II_* */
	u64 lbn;
	u64 hash;		/* xxh64 of the block to be written, seed DD_INDEX_SEED */
	u64 cand;		/* C */
	u64 cand_lbn;		/* C's owner (DD_II_CAND_OWNED) */
	u32 cand_vol;
};

/* Names candidates for the DD_II_HASHED items of one volume, in LBN order
 * (no pins, nothing changes).  The number named; -EROFS (no scanner, not
 * writable), -ENOENT (no such volume, or being deleted), -EINVAL. */
int dd_import_plan(struct dd_pool *pool, struct dd_import_item *it, u32 n);
/* The DD_II_CAND items that may go on keep it, pinned; the number kept. */
int dd_import_prepare(struct dd_pool *pool, struct dd_import_item *it, u32 n);
/* Shares the DD_II_SAME items (DD_II_SHARED) and unpins all.  0, or an
 * error (the items shared before it stay shared, in the open transaction;
 * -EROFS, metadata space, damage, I/O).  May commit; ladder. */
int dd_import_apply(struct dd_pool *pool, struct dd_import_item *it, u32 n);
/* Unpins items not applied.  Never fails. */
void dd_import_release(struct dd_pool *pool, struct dd_import_item *it, u32 n);
/* Indexes the hooks of a set whose writes are done (see above).  No commit. */
void dd_import_index(struct dd_pool *pool, const struct dd_import_item *it, u32 n);

#endif
