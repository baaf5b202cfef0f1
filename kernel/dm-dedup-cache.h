/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dedup-cache.h: the lookup cache, what map() consults instead of the
 * engine.
 *
 * A two-way set-associative table (volume, LBN) -> mapping.  Contract:
 *  - One writer at a time: every __lc_* call is made with the pool lock held
 *    for write (the worker, messages).  Readers (lc_lookup, from map()) take
 *    no lock.
 *  - Each slot carries a sequence count, odd while the writer rewrites it; a
 *    reader that sees an odd count, or a count that changed while it read the
 *    slot, misses.  So a reader never returns a torn slot: it returns an
 *    entry that the slot held, whole, at some instant of its lookup.
 *  - The cache never holds a mapping that differs from the engine's open
 *    state: every engine call that changes a mapping is preceded or followed,
 *    in the same critical section, by a store, a forget or a clear.  Callers
 *    that unmap or share blocks forget them *before* the engine call (it may
 *    commit inside, and a commit makes freed blocks reusable).
 *  - A lookup that returns after __lc_forget or __lc_clear returned, and that
 *    started after it, misses (or sees a later store): the writer's barriers
 *    pair with the reader's.
 *  - Generations: a clear bumps lc->gen, so every slot of an older generation
 *    reads as empty.  When the 32-bit generation would wrap, every slot is
 *    emptied first, so a slot from 2^32 clears ago can never come back.
 *
 * Natively tested (tests/unit/test_kglue.c) over the shim kernel headers in
 * tests/kshim.
 */
#ifndef DM_DEDUP_CACHE_H
#define DM_DEDUP_CACHE_H

#include <linux/types.h>
#include "dd-engine.h"

struct lc_slot {
	u32 seq;		/* odd while the writer rewrites the slot */
	u32 gen;		/* 0 = empty */
	u32 vol;
	u32 pad;
	u64 lbn;
	u64 entry;		/* pbn | LC_MAPPED | LC_EXCL */
};

#define LC_MAPPED	(1ULL << 63)
#define LC_EXCL		(1ULL << 62)
#define LC_PBN_MASK	((1ULL << 48) - 1)

struct lookup_cache {
	u32 gen;
	u32 bits;		/* 2^bits slots */
	struct lc_slot *slots;	/* sets of two ways, 64-byte aligned */
};

/* At least 1024 entries; rounded up to a power of two. */
int lc_init(struct lookup_cache *lc, unsigned int entries);
void lc_exit(struct lookup_cache *lc);

/* Lock-free: true and *m on a hit. */
bool lc_lookup(struct lookup_cache *lc, u32 vol, u64 lbn, struct dd_mapping *m);

/*
 * Lock-free, for a bio over @nr blocks from @lbn: how many of them, from the
 * first, the cache shows as one run that a single remap (or one zero fill)
 * can serve; *m is the first block's mapping.  0 when the first misses.  A
 * run is unmapped blocks, or mapped blocks at consecutive PBNs; with
 * @in_place (a write) only mapped, exclusive blocks count, and a first block
 * that is not one returns 1 (the caller sees *m and goes to the worker).
 * Each block is its own lc_lookup(): the run ends at the first slot that
 * misses or cannot be validated, never reading an entry across it.
 */
unsigned int lc_lookup_run(struct lookup_cache *lc, u32 vol, u64 lbn, unsigned int nr,
			   bool in_place, struct dd_mapping *m);

/* Writer side: the pool lock held for write. */
void __lc_store(struct lookup_cache *lc, u32 vol, u64 lbn, const struct dd_mapping *m);
void __lc_forget(struct lookup_cache *lc, u32 vol, u64 lbn);
void __lc_forget_range(struct lookup_cache *lc, u32 vol, u64 lbn, u64 nr);
void __lc_clear(struct lookup_cache *lc);

#endif /* DM_DEDUP_CACHE_H */
