/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scanner's hash index: a fixed-memory, lossy table (hash, domain) ->
 * candidate canonical block.  A hit is a hint, never proof: the scanner
 * compares the bytes before it merges anything.
 *
 * Memory: the caller chooses the size in bytes; the table holds
 * bytes / sizeof(struct dd_index_slot) entries in sets of DD_INDEX_WAYS
 * (one cache line each).  Each hash may live in either of two sets; when both
 * are full, the least recently used entry of the two makes room.  A table
 * half full loses nothing; a full one keeps nearly all of its capacity.
 *
 * Sampling: with a table smaller than the number of distinct blocks, only
 * "hooks" are inserted and looked up: blocks whose hash has its low
 * 'sample_shift' bits clear (1 in 2^shift blocks, the same ones in every
 * volume, since identical blocks hash alike).  The scanner finds the blocks
 * between hooks by extending a verified match along the volumes' LBNs
 * (dd-scan.c).  dd_index_tune() picks the shift from the number of blocks to
 * index.
 *
 * Not thread-safe: the caller serialises every call (the pool lock).
 */
#ifndef DD_INDEX_H
#define DD_INDEX_H

#include "dd-env.h"

struct dd_index;

#define DD_INDEX_WAYS		4
#define DD_INDEX_MIN_BYTES	(64u * 1024)	/* 4096 entries */

/* One entry: 16 bytes. */
struct dd_index_slot {
	u64 hash;
	u64 val;	/* pbn + 1 (0 = empty) | domain << 48 | clock << 56 */
};

struct dd_index_stats {
	u64 capacity;		/* entries the table can hold */
	u64 entries;		/* entries in use */
	u64 bytes;		/* memory of the table */
	u32 sample_shift;	/* hooks are 1 in 2^sample_shift blocks */
	u64 lookups, hits, inserts, evictions, removals;
};

/* A table of about 'bytes' bytes (at least DD_INDEX_MIN_BYTES). */
int dd_index_create(u64 bytes, struct dd_index **out);
void dd_index_destroy(struct dd_index *idx);

/* Moves every entry into a table of the new size (the least recently used
 * ones go first if it is smaller); the old table stays on -ENOMEM. */
int dd_index_resize(struct dd_index *idx, u64 bytes);

/* Chooses the sampling for an expected number of distinct blocks: dense (0)
 * while they fit, then the smallest shift that makes the hooks fit in about
 * half the table. */
void dd_index_tune(struct dd_index *idx, u64 nr_blocks);
void dd_index_set_shift(struct dd_index *idx, u32 shift);
u32 dd_index_shift(const struct dd_index *idx);

/* Is a block with this hash one the index keeps? */
bool dd_index_is_hook(const struct dd_index *idx, u64 hash);

/* The block last inserted for (hash, domain), or false. */
bool dd_index_lookup(struct dd_index *idx, u64 hash, u8 domain, u64 *pbn);
/* Inserts or refreshes (hash, domain) -> pbn. */
void dd_index_insert(struct dd_index *idx, u64 hash, u8 domain, u64 pbn);
/* Drops (hash, domain) if it names pbn (a stale or false hint). */
void dd_index_remove(struct dd_index *idx, u64 hash, u8 domain, u64 pbn);
void dd_index_clear(struct dd_index *idx);

void dd_index_get_stats(const struct dd_index *idx, struct dd_index_stats *st);

/* Walk for saving: *pos starts at 0; false at the end. */
bool dd_index_next(const struct dd_index *idx, u64 *pos, u64 *hash, u8 *domain, u64 *pbn);

#endif
