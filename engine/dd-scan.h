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
 *                      the LBNs it remaps first (it may commit inside).
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
};

/* Configure (at open, and at run time: a new index size moves the entries). */
int dd_scan_configure(struct dd_pool *pool, const struct dd_scan_config *cfg);

/* A data write to pbn (in place or new): it is scanned in a later pass. */
void dd_scan_mark_written(struct dd_pool *pool, u64 pbn);

/* Starts a pass over the blocks written since the last one (or, full, over
 * every mapped block).  -EBUSY if one is running. */
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

/* Settings of the caller's scanner kept with the pool (written with the
 * next commit): run 0/1, rate in MiB/s (0 = the caller's default). */
void dd_scan_get_settings(struct dd_pool *pool, u32 *run, u32 *rate_mib);
int dd_scan_set_settings(struct dd_pool *pool, u32 run, u32 rate_mib);

#endif
