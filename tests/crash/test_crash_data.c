// SPDX-License-Identifier: GPL-2.0
/*
 * Crash tests with data: a metadata device AND a data device on one power
 * supply, the kernel target's data path over the engine (in-place writes to
 * exclusive blocks, new blocks written before their mapping is inserted,
 * zero writes and discards that unmap, the data device flushed before every
 * commit, freed blocks passed down as discards that zero them), and every
 * data block holding a token that names the write that put it there.
 *
 * Each workload runs once as a reference (digests of the engine's state at
 * every commit; after every guest FLUSH the pool must read back exactly
 * what the guest wrote), then once per metadata write index k with the
 * power cut at write k.  Both devices keep none, all, or a random subset of
 * their unflushed writes, or the metadata write tears.  Every fifth
 * recovery is cut again during its replay.  Then the pool must
 *
 *  - open, read-write, with needs_check clear;
 *  - be at the last completed commit or the one in flight, with exactly
 *    the state the reference run had there;
 *  - hold, at every LBN of every volume, what the last completed guest
 *    FLUSH left there or one of the values written after it (zeroes for
 *    an unmap or zero write), and nothing else: a mapped LBN must read the
 *    exact contents of a write (no mapping is durable before its data);
 *  - pass dedup_check, take new work (discards, overwrites, new volumes, a
 *    flush with passdown) and keep everything it held.
 *
 * At every commit, in every run, passdown must never name a block that is
 * mapped or reserved (the freed hook looks up each block's refcount).
 * DD_CRASH_STRIDE=n tests every n-th write index only; DD_CRASH_DATA_SEED=s
 * gives the seeded workloads other sequences (their coverage asserts are
 * then only reported), for longer runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddsys.h"
#include "ddscan.h"
#include <dm-dedup/format.h>

#define MAX_TXN 4096
#define SPARE_VOL (DM_VOLS - 1)	/* the recovery's new work; no workload uses it */

struct ref {
	u64 digest[MAX_TXN];
	bool have[MAX_TXN];
};

struct world;
typedef int (*dworkload_fn)(struct world *w);

struct dcase {
	const char *name;
	dworkload_fn fn;
	u64 meta_blocks, data_blocks;
	u32 journal;
	bool eager;
	u64 seed;
	/* What the reference run must have exercised, or the test proves less
	 * than its name says. */
	void (*expect)(const struct world *w);
};

struct world {
	struct ddsys s;
	struct dmodel m;
	struct dd_volume *h[DM_VOLS];
	const struct dcase *dc;
	struct ref *ref;
	u64 rng;
	u64 reclaims;
	u64 merged;		/* blocks the scanner merged away */
	u64 unshared;		/* blocks unsharing copied */
	char why[768];		/* a failed read-back after a flush */
	u8 blk[DD_BLOCK_SIZE];
};

/* DD_CRASH_DATA_SEED: other sequences for the seeded workloads. */
static bool seed_override;
static u64 seed_base;

static u64 dc_seed(const struct dcase *dc)
{
	return seed_override ? seed_base * 0x9e3779b97f4a7c15ULL + dc->seed : dc->seed;
}

#define EREADBACK 200		/* w_flush: the pool does not read back what was written */

/* ---- the guest: operations on the system and the model together ---- */

#define TRY(x) do { int __r = (x); if (__r) return __r; } while (0)

static struct dd_volume *w_vol(struct world *w, u32 vol)
{
	if (!w->h[vol] && dd_volume_open(w->s.tp.pool, vol, &w->h[vol]))
		w->h[vol] = NULL;
	return w->h[vol];
}

static void w_close_handles(struct world *w)
{
	u32 i;

	for (i = 0; i < DM_VOLS; i++) {
		if (w->h[i])
			dd_volume_close(w->h[i]);
		w->h[i] = NULL;
	}
}

static int w_create(struct world *w, u32 vol)
{
	dm_create(&w->m, vol);
	return dd_volume_create(w->s.tp.pool, vol);
}

static int w_snapshot(struct world *w, u32 vol, u32 origin)
{
	dm_snapshot(&w->m, vol, origin);
	return dd_snapshot_create(w->s.tp.pool, vol, origin);
}

static int w_delete(struct world *w, u32 vol)
{
	if (w->h[vol])
		dd_volume_close(w->h[vol]);
	w->h[vol] = NULL;
	dm_delete(&w->m, vol);
	return dd_volume_delete(w->s.tp.pool, vol);
}

static int w_reclaim(struct world *w, u64 budget, bool *done)
{
	w->reclaims++;
	return dd_pool_reclaim(w->s.tp.pool, budget, done);
}

static int w_write(struct world *w, u32 vol, u64 lbn)
{
	struct dd_volume *v = w_vol(w, vol);
	u64 id = w->m.next_id++;
	int r;

	if (!v)
		return -EIO;
	tok_fill(w->blk, id, vol, lbn);
	dm_may(&w->m, vol, lbn, id);
	r = sys_write(&w->s, v, lbn, w->blk);
	if (!r)
		dm_set(&w->m, vol, lbn, id);
	return r;
}

/* A write over blocks [lbn, lbn + n) of new contents, as one bio the worker serves whole. */
static int w_write_run(struct world *w, u32 vol, u64 lbn, u32 n)
{
	struct dd_volume *v = w_vol(w, vol);
	u8 *blocks = calloc(n, DD_BLOCK_SIZE);
	u64 first = w->m.next_id;
	int r;
	u32 i;

	DD_BUG_ON(!blocks);
	if (!v) {
		free(blocks);
		return -EIO;
	}
	for (i = 0; i < n; i++) {
		tok_fill(blocks + (size_t)i * DD_BLOCK_SIZE, first + i, vol, lbn + i);
		dm_may(&w->m, vol, lbn + i, first + i);
	}
	w->m.next_id += n;
	r = sys_write_run(&w->s, v, lbn, n, blocks);
	for (i = 0; i < n && !sys_power_lost(&w->s); i++) {
		u64 id = 0, pbn;
		bool mapped;

		/* A write that failed may have landed in part: each block
		 * holds what it held or what was written (checked here), and
		 * the guest reads that from now on. */
		if (!r) {
			id = first + i;
		} else if (sys_read(&w->s, v, lbn + i, &id, &pbn, &mapped) == TOK_GARBAGE ||
			   !dm_allowed(&w->m, vol, lbn + i, id)) {
			snprintf(w->why, sizeof(w->why), "LBN %llu after a failed run write",
				 (unsigned long long)(lbn + i));
			free(blocks);
			return -EREADBACK;
		}
		if (!r || id == first + i)
			dm_set(&w->m, vol, lbn + i, id);
	}
	free(blocks);
	return r;
}

/* A write that may find the pool full: the guest gets -ENOSPC, no harm. */
static int w_write_or_full(struct world *w, u32 vol, u64 lbn)
{
	int r = w_write(w, vol, lbn);

	return r == -ENOSPC ? 0 : r;
}

static int w_zero(struct world *w, u32 vol, u64 lbn)
{
	struct dd_volume *v = w_vol(w, vol);
	int r;

	if (!v)
		return -EIO;
	memset(w->blk, 0, sizeof(w->blk));
	dm_may(&w->m, vol, lbn, 0);
	r = sys_write(&w->s, v, lbn, w->blk);
	if (!r)
		dm_set(&w->m, vol, lbn, 0);
	return r;
}

static int w_discard(struct world *w, u32 vol, u64 lbn, u64 nr)
{
	struct dd_volume *v = w_vol(w, vol);
	int r;

	if (!v)
		return -EIO;
	dm_may_zero_range(&w->m, vol, lbn, nr);
	r = sys_discard(&w->s, v, lbn, nr);
	if (!r)
		dm_zero_range(&w->m, vol, lbn, nr);
	return r;
}

/* One worker pass of writes (zero: a zero write); -ENOSPC is no error. */
struct wio {
	u32 vol;
	u64 lbn;
	bool zero;
};

static int w_batch(struct world *w, const struct wio *io, u32 n)
{
	struct sys_wreq req[16] = { { 0 } };
	u8 (*blk)[DD_BLOCK_SIZE] = calloc(n, DD_BLOCK_SIZE);
	u64 id[16];
	int res[16], r = 0;
	u32 i;

	DD_BUG_ON(n > 16 || !blk);
	for (i = 0; i < n; i++) {
		req[i].v = w_vol(w, io[i].vol);
		req[i].lbn = io[i].lbn;
		req[i].block = blk[i];
		id[i] = io[i].zero ? 0 : w->m.next_id++;
		if (id[i])
			tok_fill(blk[i], id[i], io[i].vol, io[i].lbn);
		dm_may(&w->m, io[i].vol, io[i].lbn, id[i]);
		if (!req[i].v)
			r = -EIO;
	}
	if (!r)
		sys_write_batch(&w->s, req, n, res);
	for (i = 0; i < n && !r; i++) {
		if (!res[i])
			dm_set(&w->m, io[i].vol, io[i].lbn, id[i]);
		else if (res[i] != -ENOSPC)
			r = res[i];
	}
	/* (a write deferred behind an earlier one to its LBN completes after
	 * it, so setting them in order leaves the later one, as the pool does) */
	free(blk);
	return r;
}

/* A guest FLUSH; once it completed, the pool must read back exactly. */
static int w_flush(struct world *w)
{
	int r = sys_flush(&w->s);

	if (r)
		return r;
	dm_flushed(&w->m);
	if (dm_verify(&w->m, &w->s, true, w->why, sizeof(w->why)))
		return -EREADBACK;
	return 0;
}

/* ---- workloads: each stops at the first error and returns it ---- */

/*
 * A nearly full pool (64 data blocks): blocks allocated and freed inside one
 * transaction, zero writes that free the last free block while other
 * volumes' writes want one, and flushes.  It starts with the review's data
 * loss: with one free block, volume 1 takes it and a zero write frees it
 * again; a 4 KiB write to volume 2 then fsync must read back (the bug
 * handed volume 2 the block at once and the commit's passdown zeroed it).
 */
static int wl_nearly_full(struct world *w)
{
	static const struct wio pass[] = {
		{ 1, 30, true }, { 2, 10, false }, { 2, 11, false }, { 3, 7, false },
		{ 1, 31, false }, { 1, 32, true }, { 3, 8, false }, { 3, 9, false },
		{ 2, 10, false }, { 1, 33, true },
	};
	u64 n = w->dc->data_blocks, i;

	TRY(w_create(w, 1));
	TRY(w_create(w, 2));
	TRY(w_create(w, 3));
	for (i = 0; i < n - 1; i++)
		TRY(w_write(w, 1, i));
	TRY(w_flush(w));

	/* The review's scenario. */
	TRY(w_write(w, 1, 100));
	TRY(w_zero(w, 1, 100));
	TRY(w_write(w, 2, 0));
	TRY(w_flush(w));

	/* A zero write frees the last block; others want one; in-place
	 * overwrites, a discard and an allocate-and-free around them. */
	TRY(w_zero(w, 1, 0));
	TRY(w_write(w, 3, 5));
	TRY(w_write(w, 2, 0));
	for (i = 1; i <= 4; i++)
		TRY(w_write(w, 1, i));
	TRY(w_discard(w, 1, 10, 10));
	for (i = 1; i <= 5; i++)
		TRY(w_write(w, 2, i));
	TRY(w_zero(w, 3, 5));
	TRY(w_write(w, 1, 200));
	TRY(w_discard(w, 1, 200, 1));
	TRY(w_write(w, 3, 6));
	TRY(w_write(w, 2, 6));
	TRY(w_flush(w));

	/* A worker pass: zero writes free blocks while others are reserved,
	 * written and not yet mapped; the last writes find no block. */
	TRY(w_batch(w, pass, sizeof(pass) / sizeof(pass[0])));
	TRY(w_flush(w));

	/* Churn at the edge: every step frees one block and takes one. */
	for (i = 0; i < 12; i++) {
		TRY(w_zero(w, 1, 40 + i));
		TRY(w_write_or_full(w, 2 + (u32)(i % 2), 300 + i));
		TRY(w_write_or_full(w, 1, 400 + i));
		TRY(w_zero(w, 1, 400 + i));
		if (i % 4 == 3)
			TRY(w_flush(w));
	}
	TRY(w_flush(w));
	return 0;
}

static void expect_nearly_full(const struct world *w)
{
	/* The pool was full: writes waited for a commit, passdown ran. */
	assert_true(w->s.st.nospace_commits >= 3);
	assert_true(w->s.st.passdown_blocks >= 20);
	assert_true(w->s.st.in_place >= 5);
	assert_true(w->s.st.zero_unmaps >= 15);
}

/*
 * Large discards with the smallest journal: the unmap commits part-way
 * inside the call (passdown of the blocks unmapped so far, then more), with
 * in-place overwrites before it, writes to other volumes and rewrites of
 * discarded LBNs after it.  One block per map leaf makes each unmapped
 * entry dirty its own leaf.
 */
static int wl_big_discards(struct world *w)
{
	const u64 step = DD_MAP_ENTRIES + 1;
	u64 i;

	TRY(w_create(w, 1));
	TRY(w_create(w, 2));
	TRY(w_create(w, 3));
	for (i = 0; i < 140; i++)
		TRY(w_write(w, 1, i * step));
	for (i = 0; i < 30; i++)
		TRY(w_write(w, 2, i));
	TRY(w_flush(w));

	for (i = 125; i < 135; i++)
		TRY(w_write(w, 1, i * step));		/* in place */
	for (i = 30; i < 40; i++)
		TRY(w_write(w, 2, i));
	TRY(w_discard(w, 1, 0, 115 * step));		/* commits inside, twice */
	for (i = 0; i < 8; i++)
		TRY(w_write(w, 2, i));			/* in place */
	TRY(w_write(w, 1, 5 * step));			/* discarded LBNs again */
	TRY(w_write(w, 1, 5 * step + 1));
	for (i = 0; i < 15; i++)
		TRY(w_write(w, 3, i * 3));
	TRY(w_discard(w, 1, 120 * step, DD_MAX_ADDR + 1 - 120 * step));
	for (i = 0; i < 8; i++)
		TRY(w_write(w, 1, 100000 + i));
	TRY(w_flush(w));

	TRY(w_discard(w, 2, 0, 40));
	TRY(w_zero(w, 3, 0));
	TRY(w_zero(w, 3, 3));
	TRY(w_write(w, 2, 7));
	TRY(w_discard(w, 1, 0, DD_MAX_ADDR + 1));
	TRY(w_flush(w));
	return 0;
}

static void expect_big_discards(const struct world *w)
{
	assert_true(w->s.st.commits_in_discard >= 2);
	assert_true(w->s.st.in_place >= 15);
	assert_true(w->s.st.passdown_blocks >= 100);
}

/*
 * Snapshots: writes to both sides (copy-on-write splits), the origin's
 * blocks made exclusive again once the sibling's split is committed (in
 * place from then on), a second snapshot, the first deleted and reclaimed
 * in small steps with writes and flushes in between, then the origin.
 */
static int wl_snapshots(struct world *w)
{
	bool done = false;
	u64 i, n;

	TRY(w_create(w, 1));
	for (i = 0; i < 50; i++)
		TRY(w_write(w, 1, i));
	TRY(w_flush(w));

	TRY(w_snapshot(w, 2, 1));
	for (i = 0; i < 25; i++)
		TRY(w_write(w, 2, i));		/* splits */
	for (i = 0; i < 10; i++)
		TRY(w_write(w, 1, i));		/* sibling split in this txn: new block */
	for (i = 25; i < 32; i++)
		TRY(w_write(w, 1, i));		/* still shared: new block */
	TRY(w_flush(w));

	for (i = 10; i < 25; i++)
		TRY(w_write(w, 1, i));		/* made exclusive: in place */
	for (i = 32; i < 42; i++)
		TRY(w_write(w, 2, i));
	for (i = 32; i < 36; i++)
		TRY(w_write(w, 1, i));		/* split in this txn: new block */
	TRY(w_flush(w));

	for (i = 32; i < 42; i++)
		TRY(w_write(w, 1, i));		/* in place */
	TRY(w_snapshot(w, 3, 1));
	for (i = 0; i < 6; i++)
		TRY(w_write(w, 3, i * 2));
	for (i = 0; i < 6; i++)
		TRY(w_write(w, 1, i * 3));
	TRY(w_delete(w, 2));
	for (n = 0; !done; n++) {
		TRY(w_reclaim(w, 8, &done));
		TRY(w_write(w, 1, 100 + n));	/* may take a block reclaim freed */
		TRY(w_write(w, 3, 1 + n * 2));
		if (n % 2)
			TRY(w_flush(w));
	}
	TRY(w_flush(w));

	TRY(w_delete(w, 1));
	for (done = false, n = 0; !done; n++) {
		TRY(w_reclaim(w, 10, &done));
		TRY(w_write(w, 3, 200 + n));
		TRY(w_zero(w, 3, n * 2));
		if (n % 3 == 2)
			TRY(w_flush(w));
	}
	TRY(w_flush(w));
	return 0;
}

static void expect_snapshots(const struct world *w)
{
	assert_true(w->s.st.made_exclusive >= 10);
	assert_true(w->s.st.in_place >= 25);
	assert_true(w->reclaims >= 6);
	assert_true(w->s.st.passdown_blocks >= 40);
}

/*
 * Writes over several blocks (the worker's segments): first writes across
 * map and refs leaf boundaries, writes over blocks a snapshot shares and over
 * exclusive ones in one go, writes into free space in pieces, and into a
 * full pool; a small journal, so the run inserts commit inside.
 */
/* The first LBN below @end of @vol whose block and the n - 1 after it are
 * consecutive on the data device, or ~0. */
static u64 w_find_run(struct world *w, u32 vol, u64 end, u32 n)
{
	struct dd_volume *v = w_vol(w, vol);
	u64 a, id, p, q;
	bool mapped;
	u32 i;

	for (a = 0; v && a + n <= end; a++) {
		sys_read(&w->s, v, a, &id, &p, &mapped);
		for (i = 1; mapped && i < n; i++) {
			sys_read(&w->s, v, a + i, &id, &q, &mapped);
			if (q != p + i)
				mapped = false;
		}
		if (mapped)
			return a;
	}
	return ~0ULL;
}

static int wl_runs(struct world *w)
{
	u64 i, a;
	int r;

	TRY(w_create(w, 1));
	TRY(w_write_run(w, 1, 0, 32));
	TRY(w_write_run(w, 1, 32, 240));	/* PBNs across a refs leaf (254) */
	TRY(w_write_run(w, 1, 490, 40));	/* LBNs across a map leaf (508) */
	/* Across 54 more map leaves: the transaction fills, the inserts commit
	 * (2 commits inside writes; run_segments >= 50 needs at least 27 runs
	 * here: 17 fail it).  45 runs (90 leaves) made 725 metadata writes where
	 * these make 495, and the cut at every one of them costs the square. */
	for (i = 3; i < 30; i++)
		TRY(w_write_run(w, 1, i * 1016 - 2, 4));
	TRY(w_flush(w));
	TRY(w_snapshot(w, 2, 1));
	TRY(w_write_run(w, 1, 16, 32));		/* shared: new blocks */
	TRY(w_flush(w));
	TRY(w_write_run(w, 1, 0, 64));		/* exclusive, new since, exclusive again */
	TRY(w_write_run(w, 2, 500, 20));	/* the snapshot splits across the map leaf */
	TRY(w_flush(w));
	for (i = 0; i < 8; i++)
		TRY(w_discard(w, 2, i * 16, 8));	/* free space in pieces */
	TRY(w_delete(w, 2));
	TRY(w_flush(w));
	TRY(w_create(w, 3));
	for (i = 0; i < 6; i++) {
		r = w_write_run(w, 3, i * 50, 50);	/* into the pieces, then a full pool */
		if (r && r != -ENOSPC)
			return r;
		if (i % 2)
			TRY(w_flush(w));
	}
	TRY(w_flush(w));
	/* Full.  One block free since a commit, the seven after it freed in the
	 * open transaction: a run may take the first, not the others (they wait
	 * for the commit). */
	a = w_find_run(w, 3, 300, 8);
	if (a == ~0ULL)
		return -ENOENT;
	TRY(w_discard(w, 3, a, 1));
	TRY(w_flush(w));
	TRY(w_discard(w, 3, a + 1, 7));
	TRY(w_write_run(w, 3, 600, 8));
	/* The same with the pieces of volume 1. */
	for (i = 0; i < 8; i++)
		TRY(w_discard(w, 1, i * 16, 8));
	for (i = 0; i < 4; i++)
		TRY(w_write_run(w, 3, 400 + i * 16, 16));
	TRY(w_flush(w));
	return 0;
}

static void expect_runs(const struct world *w)
{
	assert_true(w->s.st.run_segments >= 50);
	assert_true(w->s.st.in_place >= 16);
	assert_true(w->s.st.new_blocks >= 500);
	assert_true(w->s.st.nospace >= 1);
	assert_true(w->s.st.nospace_commits >= 1);
	assert_true(w->s.st.commits_in_write >= 1);
}

/*
 * Random writes, overwrites, zero writes, discards and worker passes over
 * four volumes in a pool too small for all of them, with periodic flushes.
 * Seeded: the same sequence every run.
 */
static int wl_random(struct world *w)
{
	const u64 lbns = 40;
	u32 vol;
	int step, r;

	for (vol = 1; vol <= 4; vol++)
		TRY(w_create(w, vol));
	for (step = 0; step < 200; step++) {
		u64 op = tr_below(&w->rng, 100), lbn;

		vol = 1 + (u32)tr_below(&w->rng, 4);
		/* a few hot LBNs: overwrites, in place and not */
		lbn = tr_below(&w->rng, 3) ? tr_below(&w->rng, lbns) : tr_below(&w->rng, 6);
		if (op < 45) {
			r = w_write_or_full(w, vol, lbn);
		} else if (op < 57) {
			r = w_zero(w, vol, lbn);
		} else if (op < 64) {
			r = w_discard(w, vol, lbn, 1 + tr_below(&w->rng, 12));
		} else if (op < 74) {
			struct wio io[6];
			u32 i, n = 2 + (u32)tr_below(&w->rng, 5);

			for (i = 0; i < n; i++) {
				io[i].vol = 1 + (u32)tr_below(&w->rng, 4);
				io[i].lbn = tr_below(&w->rng, lbns);
				io[i].zero = !tr_below(&w->rng, 4);
			}
			r = w_batch(w, io, n);
		} else if (op < 82) {
			r = w_flush(w);
		} else {
			r = w_write_or_full(w, vol, lbn);
		}
		if (r)
			return r;
	}
	return w_flush(w);
}

/*
 * The same with volumes coming and going: snapshots of live volumes (ids
 * 4..14, never reused), deletions, reclaim in small steps; writes to both
 * sides of a snapshot split blocks and make them exclusive again.
 */
static int wl_random_volumes(struct world *w)
{
	const u64 lbns = 32;
	u32 vol, next_id = 4, live[DM_VOLS], nlive;
	int step, r = 0;
	bool done;

	for (vol = 1; vol <= 3; vol++)
		TRY(w_create(w, vol));
	for (step = 0; step < 200 && !r; step++) {
		u64 op = tr_below(&w->rng, 100), lbn = tr_below(&w->rng, lbns);

		for (nlive = 0, vol = 0; vol < SPARE_VOL; vol++)
			if (w->m.vol[vol].state == DM_LIVE)
				live[nlive++] = vol;
		vol = live[tr_below(&w->rng, nlive)];
		if (op < 45)
			r = w_write_or_full(w, vol, lbn);
		else if (op < 55)
			r = w_zero(w, vol, lbn);
		else if (op < 60)
			r = w_discard(w, vol, lbn, 1 + tr_below(&w->rng, 8));
		else if (op < 64 && next_id < SPARE_VOL)
			r = w_snapshot(w, next_id++, vol);
		else if (op < 66 && nlive > 2)
			r = w_delete(w, vol);
		else if (op < 72)
			r = w_reclaim(w, 1 + tr_below(&w->rng, 12), &done);
		else if (op < 80)
			r = w_flush(w);
		else
			r = w_write_or_full(w, vol, lbn);
	}
	return r ? r : w_flush(w);
}

/* Content c at (vol, lbn): the same bytes wherever c is written. */
static int w_write_content(struct world *w, u32 vol, u64 lbn, u64 c)
{
	struct dd_volume *v = w_vol(w, vol);
	int r;

	if (!v)
		return -EIO;
	tok_fill(w->blk, c, 0, 0);
	dm_may(&w->m, vol, lbn, c);
	r = sys_write(&w->s, v, lbn, w->blk);
	if (!r)
		dm_set(&w->m, vol, lbn, c);
	return r;
}

/* Guest writes while the scanner has the pool lock dropped. */
struct scan_racer {
	struct world *w;
	u32 n;
	int r;
};

static void w_scan_race(void *ctx, struct ddsys *s, enum scan_phase ph, struct dd_scan_batch *b)
{
	struct scan_racer *sr = ctx;
	struct world *w = sr->w;

	if (sr->r || b->nr == 0)
		return;
	sr->n++;
	/* Commits while blocks are pinned, as the kernel's timer makes them. */
	if (ph == SCAN_AFTER_READ && sr->n % 3 == 0) {
		sr->r = w_flush(w);
		return;
	}
	/* Overwrite the owner of a block being compared, in turn D's and C's. */
	if (ph == SCAN_AFTER_MATCH && (b->item[0].flags & DD_SI_OWNED))
		sr->r = w_write_content(w, b->item[0].vol, b->item[0].lbn, 90000 + sr->n);
	else if (ph == SCAN_AFTER_COMPARE && (b->item[b->nr - 1].flags & DD_SI_CAND_OWNED))
		sr->r = w_write_content(w, b->item[b->nr - 1].cand_vol, b->item[b->nr - 1].cand_lbn,
					91000 + sr->n);
}

static int w_scan(struct world *w, bool full)
{
	struct scan_racer sr = { w, 0, 0 };
	struct scan_hooks h = { w_scan_race, &sr, 0 };
	struct scan_result res;
	int r;

	r = scan_pass(&w->s, full, &h, &res);
	w->merged += res.merged;
	return r ? r : sr.r;
}

/*
 * Scan and merge: three volumes holding the same runs at different offsets
 * and one block repeated, a pass with guest writes between its steps (to
 * blocks being compared, on both sides), copy-on-write of merged blocks,
 * discards, a full pass; flushes between, and the engine committing inside
 * the merges (a small journal, small batches).
 */
static int wl_scan(struct world *w)
{
	struct dd_scan_config cfg = { .batch = 24 };
	u64 i;

	TRY(w_create(w, 1));
	TRY(w_create(w, 2));
	TRY(w_create(w, 3));
	TRY(dd_scan_configure(w->s.tp.pool, &cfg));
	for (i = 0; i < 60; i++) {
		TRY(w_write_content(w, 1, i, 1000 + i));
		TRY(w_write_content(w, 2, i + 10, 1000 + i));
	}
	for (i = 0; i < 30; i++)
		TRY(w_write_content(w, 3, i * 3, i < 20 ? 2000 : 1000 + i));
	TRY(w_flush(w));
	TRY(w_scan(w, false));
	TRY(w_flush(w));
	/* Copy-on-write of merged blocks, new duplicates, a discard. */
	for (i = 0; i < 10; i++)
		TRY(w_write_content(w, 2, 15 + i, 3000 + i));
	for (i = 0; i < 10; i++)
		TRY(w_write_content(w, 1, 100 + i, 3000 + i));
	TRY(w_discard(w, 3, 0, 12));
	TRY(w_scan(w, false));
	TRY(w_flush(w));
	TRY(w_scan(w, true));
	return w_flush(w);
}

/* Guest writes and commits while unsharing has the pool lock dropped. */
static void w_unshare_race(void *ctx, struct ddsys *s, enum unshare_phase ph,
			   struct dd_unshare_batch *b)
{
	struct scan_racer *sr = ctx;
	struct world *w = sr->w;

	if (sr->r || b->nr == 0)
		return;
	sr->n++;
	/* A commit between the copies and the remaps, as the timer makes it. */
	if (ph == UNSHARE_AFTER_COPY && sr->n % 3 == 0) {
		sr->r = w_flush(w);
		return;
	}
	/* Overwrite an LBN that is being given its copy. */
	if (ph == UNSHARE_AFTER_PREPARE && sr->n % 4 == 1)
		sr->r = w_write_content(w, b->item[0].vol, b->item[0].lbn, 92000 + sr->n);
}

static int w_unshare(struct world *w)
{
	struct scan_racer sr = { w, 0, 0 };
	struct unshare_hooks h = { w_unshare_race, &sr };
	struct unshare_result res;
	int r;

	r = scan_unshare(&w->s, &h, &res);
	w->unshared += res.copies;
	return r ? r : sr.r;
}

/*
 * Scan, merge and unshare: a volume and its snapshot (4 and 5), and two
 * unrelated volumes (1 and 2, walked first) holding the same runs, one block
 * repeated, merged by a pass: each block of the family has two more
 * referrers, so a write racing the copy of one of them leaves the block
 * shared.  Then unsharing in small batches with guest writes to LBNs being
 * copied and commits between the copies and the remaps; writes after it and
 * flushes between.
 */
static int wl_scan_unshare(struct world *w)
{
	struct dd_scan_config cfg = { .batch = 8 };
	u64 i;

	TRY(w_create(w, 4));
	TRY(w_create(w, 1));
	TRY(w_create(w, 2));
	TRY(dd_scan_configure(w->s.tp.pool, &cfg));
	for (i = 0; i < 40; i++)
		TRY(w_write_content(w, 4, i, 1000 + i));
	for (i = 0; i < 8; i++)
		TRY(w_write_content(w, 4, 50 + i * 2, 2000));
	TRY(w_snapshot(w, 5, 4));
	for (i = 0; i < 40; i++) {
		TRY(w_write_content(w, 1, i + 5, 1000 + i));
		TRY(w_write_content(w, 2, i + 20, 1000 + i));
	}
	TRY(w_flush(w));
	TRY(w_scan(w, false));
	TRY(w_flush(w));
	TRY(w_unshare(w));
	for (i = 0; i < 5; i++)
		TRY(w_write_content(w, 5, 10 + i, 4000 + i));
	TRY(w_flush(w));
	return w_flush(w);
}

static void expect_scan_unshare(const struct world *w)
{
	fprintf(stderr, "# scan, merge and unshare: %llu merged, %llu copied\n",
		(unsigned long long)w->merged, (unsigned long long)w->unshared);
	assert_true(w->merged >= 30);	/* vol 2 into vol 1's (snapshot-shared) blocks */
	assert_true(w->unshared >= 25);
}

static void expect_scan(const struct world *w)
{
	fprintf(stderr, "# scan and merge: %llu blocks merged\n", (unsigned long long)w->merged);
	assert_true(w->merged >= 50);	/* the race writes cost two per batch */
	assert_true(w->s.st.in_place >= 2 || w->s.st.new_blocks >= 200);
}

static void expect_random_volumes(const struct world *w)
{
	assert_true(w->s.st.made_exclusive >= 3);
	assert_true(w->s.st.in_place >= 10);
	assert_true(w->reclaims >= 5);
	assert_true(w->s.st.passdown_blocks >= 20);
	assert_true(w->s.st.flushes >= 10);
}

static void expect_random(const struct world *w)
{
	assert_true(w->s.st.in_place >= 10);
	assert_true(w->s.st.new_blocks >= 60);
	assert_true(w->s.st.zero_unmaps >= 5);
	assert_true(w->s.st.passdown_blocks >= 20);
	assert_true(w->s.st.nospace_commits + w->s.st.nospace >= 3);
	assert_true(w->s.st.flushes >= 10);
}

/* ---- the harness ---- */

static void ref_on_commit(void *ctx, struct dd_pool *pool)
{
	struct world *w = ctx;
	struct dd_pool_stats st;

	dd_pool_get_stats(pool, &st);
	if (st.txn + 1 < MAX_TXN) {
		w->ref->digest[st.txn + 1] = tp_digest(pool);
		w->ref->have[st.txn + 1] = true;
	}
}

static struct dd_bm_opts dc_bmo(const struct dcase *dc)
{
	struct dd_bm_opts o = { .eager = dc->eager };

	return o;
}

/* A formatted pool (closed) and its zeroed data device. */
static void images(const struct dcase *dc, struct dd_ramdev **meta, struct dd_ramdev **data)
{
	struct dd_bm_opts bmo = dc_bmo(dc);
	struct ddsys s;

	assert_int_equal(sys_create(&s, dc->meta_blocks, dc->data_blocks, dc->journal, &bmo), 0);
	sys_close(&s);
	*meta = dd_ramdev_clone(s.tp.rd);
	*data = dd_ramdev_clone(s.data);
	assert_non_null(*meta);
	assert_non_null(*data);
	sys_destroy(&s);
}

static struct world *world_new(const struct dcase *dc, struct ref *ref, struct dd_ramdev *meta,
			       struct dd_ramdev *data)
{
	struct world *w = calloc(1, sizeof(*w));
	struct dd_bm_opts bmo = dc_bmo(dc);
	struct dd_ramdev *m = dd_ramdev_clone(meta), *d = dd_ramdev_clone(data);

	assert_non_null(w);
	assert_non_null(m);
	assert_non_null(d);
	w->dc = dc;
	w->ref = ref;
	w->rng = dc_seed(dc);
	dm_init(&w->m);
	assert_int_equal(sys_attach(&w->s, m, d, dc->data_blocks, &bmo), 0);
	return w;
}

static void world_free(struct world *w)
{
	w_close_handles(w);
	sys_destroy(&w->s);
	dm_free(&w->m);
	free(w);
}

static u64 last_committed(struct world *w)
{
	struct dd_pool_stats st;

	if (!w->s.tp.pool)
		return w->s.tp.last_txn;
	dd_pool_get_stats(w->s.tp.pool, &st);
	return st.txn;
}

/* k == 0: the reference run, without a crash. */
static void fail_head(const struct world *w, u64 k, const char *policy)
{
	if (k)
		fprintf(stderr, "%s: %s crash at write %llu: ", w->dc->name, policy,
			(unsigned long long)k);
	else
		fprintf(stderr, "%s: reference run (no crash): ", w->dc->name);
}

#define FAIL_AT(w, k, policy, ...) do { \
		fail_head(w, k, policy); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		fail(); \
	} while (0)

static void check_rules(struct world *w, u64 k, const char *policy, const char *when)
{
	if (!w->s.violation[0] && !w->why[0])
		return;
	if (w->s.violation[0]) {
		fail_head(w, k, policy);
		fprintf(stderr, "%s: %s\n", when, w->s.violation);
	}
	if (w->why[0]) {
		fail_head(w, k, policy);
		fprintf(stderr, "%s: after a completed flush: %s\n", when, w->why);
	}
	fail();
}

/* The recovered pool takes new work: discards and zero writes (passdown
 * after the flush), overwrites, a new volume, a flush; then everything
 * reads back, also after a clean reopen. */
static void new_work(struct world *w, u64 k, const char *policy)
{
	struct dd_pool_stats st;
	u64 lbn, i, val;
	u32 vol;
	int r;

	/* One mapped LBN per volume: discard it, zero it or overwrite it. */
	for (vol = 0; vol < SPARE_VOL; vol++) {
		i = 0;
		if (w->m.vol[vol].state != DM_LIVE ||
		    !hm_iter(&w->m.vol[vol].cur, &i, &lbn, &val))
			continue;
		if (vol % 3 == 0)
			r = w_discard(w, vol, lbn, 1);
		else if (vol % 3 == 1)
			r = w_zero(w, vol, lbn);
		else
			r = w_write_or_full(w, vol, lbn);
		if (r)
			FAIL_AT(w, k, policy, "new work: volume %u LBN %llu: error %d", vol,
				(unsigned long long)lbn, r);
	}
	r = w_flush(w);
	if (r)
		FAIL_AT(w, k, policy, "new work: flush fails (%d) %s", r, w->why);
	assert_int_equal(w_create(w, SPARE_VOL), 0);
	for (i = 0; i < 4; i++) {
		r = w_write(w, SPARE_VOL, 7 + i);
		dd_pool_get_stats(w->s.tp.pool, &st);
		if (r && !(r == -ENOSPC && !st.data_free))
			FAIL_AT(w, k, policy, "new work: a write to a new volume fails (%d)", r);
	}
	r = w_flush(w);
	if (r)
		FAIL_AT(w, k, policy, "new work: flush fails (%d) %s", r, w->why);
	check_rules(w, k, policy, "new work");
	w_close_handles(w);
	sys_close(&w->s);
	assert_int_equal(sys_open(&w->s), 0);
	if (dm_verify(&w->m, &w->s, true, w->why, sizeof(w->why)))
		FAIL_AT(w, k, policy, "after new work and a clean reopen: %s", w->why);
	sys_close(&w->s);
	if (tp_check(&w->s.tp, NULL))
		FAIL_AT(w, k, policy, "check fails after new work");
}

static void verify_recovery(struct world *w, u64 k, const char *policy, u64 last_ok)
{
	struct dd_pool_stats st;
	const char *bad;
	u64 d;

	if (sys_open(&w->s))
		FAIL_AT(w, k, policy, "pool does not open");
	bad = tp_not_writable(w->s.tp.pool);
	if (bad)
		FAIL_AT(w, k, policy, "the pool opens, but %s", bad);
	dd_pool_get_stats(w->s.tp.pool, &st);
	if (st.txn != last_ok && st.txn != last_ok + 1)
		FAIL_AT(w, k, policy, "opened at txn %llu, last commit %llu",
			(unsigned long long)st.txn, (unsigned long long)last_ok);
	d = tp_digest(w->s.tp.pool);
	if (st.txn >= MAX_TXN || !w->ref->have[st.txn] || w->ref->digest[st.txn] != d)
		FAIL_AT(w, k, policy, "state differs from committed txn %llu",
			(unsigned long long)st.txn);
	if (dm_verify(&w->m, &w->s, false, w->why, sizeof(w->why)))
		FAIL_AT(w, k, policy, "at txn %llu (last commit %llu): %s", (unsigned long long)st.txn,
			(unsigned long long)last_ok, w->why);
	if (dm_from_pool(&w->m, &w->s))
		FAIL_AT(w, k, policy, "cannot read the recovered pool back");
	sys_close(&w->s);
	if (tp_check(&w->s.tp, NULL))
		FAIL_AT(w, k, policy, "check fails");
	assert_int_equal(sys_open(&w->s), 0);
	new_work(w, k, policy);
}

static void print_stats(const struct world *w, u64 writes)
{
	const struct sys_stats *t = &w->s.st;

	fprintf(stderr, "# %s (seed %#llx): %llu metadata writes, %llu data writes; %llu in place "
		"(%llu made exclusive), %llu new blocks, %llu zero unmaps, %llu discards, "
		"%llu flushes, %llu commits (%llu inside writes, %llu inside discards), "
		"%llu waits for space, %llu -ENOSPC, passdown %llu blocks in %llu ranges\n",
		w->dc->name, (unsigned long long)dc_seed(w->dc), (unsigned long long)writes,
		(unsigned long long)t->data_writes,
		(unsigned long long)t->in_place, (unsigned long long)t->made_exclusive,
		(unsigned long long)t->new_blocks, (unsigned long long)t->zero_unmaps,
		(unsigned long long)t->discards, (unsigned long long)t->flushes,
		(unsigned long long)t->commits, (unsigned long long)t->commits_in_write,
		(unsigned long long)t->commits_in_discard, (unsigned long long)t->nospace_commits,
		(unsigned long long)t->nospace, (unsigned long long)t->passdown_blocks,
		(unsigned long long)t->passdown_ranges);
}

static void crash_everywhere_with_data(const struct dcase *dc)
{
	static const struct { enum dd_unflushed u; bool tear; const char *name; } policies[] = {
		{ DD_UNFLUSHED_DROP, false, "drop-unflushed" },
		{ DD_UNFLUSHED_KEEP, false, "keep-unflushed" },
		{ DD_UNFLUSHED_RANDOM, false, "random-unflushed" },
		{ DD_UNFLUSHED_DROP, true, "torn-write" },
	};
	const char *stride_env = getenv("DD_CRASH_STRIDE");
	u64 stride = stride_env ? strtoull(stride_env, NULL, 0) : 1;
	struct ref *ref = calloc(1, sizeof(*ref));
	struct dd_ramdev *meta, *data;
	struct dd_pool_stats st;
	u64 total, k, cuts = 0, replay_cuts = 0;
	struct world *w;
	unsigned p;
	int r;

	assert_non_null(ref);
	if (!stride)
		stride = 1;
	images(dc, &meta, &data);

	/* Reference run: digests at every commit, read-back after every flush. */
	w = world_new(dc, ref, meta, data);
	w->s.on_commit = ref_on_commit;
	w->s.ctx = w;
	dd_pool_get_stats(w->s.tp.pool, &st);
	ref->digest[st.txn] = tp_digest(w->s.tp.pool);
	ref->have[st.txn] = true;
	total = dd_ramdev_nr_writes(w->s.tp.rd);
	r = dc->fn(w);
	total = dd_ramdev_nr_writes(w->s.tp.rd) - total;
	check_rules(w, 0, NULL, "the workload");
	if (r)
		FAIL_AT(w, 0, NULL, "the workload fails (%d)", r);
	print_stats(w, total);
	if (!seed_override)
		dc->expect(w);
	if (dm_verify(&w->m, &w->s, true, w->why, sizeof(w->why)))
		FAIL_AT(w, 0, NULL, "at the end: %s", w->why);
	w_close_handles(w);
	sys_close(&w->s);
	assert_int_equal(tp_check(&w->s.tp, NULL), 0);
	world_free(w);

	for (p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
		for (k = 1; k <= total; k += stride) {
			struct dd_fault f = { .crash_at_write = k, .unflushed = policies[p].u,
					      .tear = policies[p].tear, .seed = k * 31 + p };
			const char *pol = policies[p].name;
			u64 last_ok;

			w = world_new(dc, ref, meta, data);
			sys_arm(&w->s, &f);
			r = dc->fn(w);
			check_rules(w, k, pol, "before the crash");
			if (!sys_power_lost(&w->s)) {
				if (r)
					FAIL_AT(w, k, pol, "the workload fails (%d) without a crash", r);
				FAIL_AT(w, k, pol, "write %llu never came", (unsigned long long)k);
			}
			last_ok = last_committed(w);
			memset(w->h, 0, sizeof(w->h));	/* lost with the engine's memory */
			sys_crash(&w->s);
			/* Every 5th recovery is itself cut during its replay. */
			if (k % 5 == 0) {
				struct dd_fault g = { .crash_at_write = 1 + k % 7,
						      .unflushed = DD_UNFLUSHED_RANDOM, .seed = k };

				sys_arm(&w->s, &g);
				if (sys_open(&w->s))
					replay_cuts++;
				sys_crash(&w->s);	/* (a short replay was not cut: crash after it) */
			}
			verify_recovery(w, k, pol, last_ok);
			world_free(w);
			cuts++;
		}
	}
	fprintf(stderr, "# %s: %llu crash points tested (%llu recoveries cut)\n", dc->name,
		(unsigned long long)cuts, (unsigned long long)replay_cuts);
	dd_ramdev_free(meta);
	dd_ramdev_free(data);
	free(ref);
}

#define DATA_CRASH_TEST(name, fn, meta, data, journal, eager, seed, expect) \
	static void name(void **state) \
	{ \
		static const struct dcase dc = { #name, fn, meta, data, journal, eager, seed, \
						 expect }; \
		crash_everywhere_with_data(&dc); \
	}

DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_a_nearly_full_pool,
		wl_nearly_full, 1024, 64, 0, false, 1, expect_nearly_full)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_large_discards_that_commit_inside,
		wl_big_discards, 2048, 512, DD_JOURNAL_MIN_BLOCKS, false, 2, expect_big_discards)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_across_snapshot_splits_and_reclaim,
		wl_snapshots, 1024, 256, 0, false, 3, expect_snapshots)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_random_io_on_a_small_pool,
		wl_random, 1024, 64, 0, false, 1, expect_random)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_early_home_writes,
		wl_random, 1024, 64, 0, true, 2, expect_random)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_snapshots_and_deletes,
		wl_random_volumes, 1024, 96, 0, false, 3, expect_random_volumes)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_of_multi_block_writes,
		wl_runs, 1024, 640, DD_JOURNAL_MIN_BLOCKS, false, 6, expect_runs)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_of_scan_and_merge,
		wl_scan, 1024, 512, DD_JOURNAL_MIN_BLOCKS, false, 4, expect_scan)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_of_scan_merge_and_unshare,
		wl_scan_unshare, 1024, 512, DD_JOURNAL_MIN_BLOCKS, false, 5, expect_scan_unshare)
/* The same with snapshots that share the map (a journal that holds a copy
 * step): in-place writes only where no shared page is on the path. */
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_across_shared_snapshot_splits_and_reclaim,
		wl_snapshots, 4096, 256, 700, false, 7, expect_snapshots)
DATA_CRASH_TEST(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_shared_snapshots_and_deletes,
		wl_random_volumes, 4096, 96, 700, false, 8, expect_random_volumes)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_a_nearly_full_pool),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_large_discards_that_commit_inside),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_across_snapshot_splits_and_reclaim),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_random_io_on_a_small_pool),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_early_home_writes),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_snapshots_and_deletes),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_of_multi_block_writes),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_of_scan_and_merge),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_of_scan_merge_and_unshare),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_across_shared_snapshot_splits_and_reclaim),
		cmocka_unit_test(flushed_writes_survive_a_crash_at_every_write_in_random_io_with_shared_snapshots_and_deletes),
	};

	const char *seed = getenv("DD_CRASH_DATA_SEED");

	if (seed) {
		seed_override = true;
		seed_base = strtoull(seed, NULL, 0);
	}
	tp_quiet(true);
	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("crash-data", tests, NULL, NULL);
}
