// SPDX-License-Identifier: GPL-2.0
/*
 * Model-based random tests: thousands of random operation sequences run
 * against the engine and against a plain in-memory model (which volume LBN
 * holds which block identity), compared after every step.  A failure prints
 * the seed; DD_MODEL_SEED=<seed> [DD_MODEL_STEPS=n] reruns just that sequence,
 * DD_MODEL_RUNS=N changes how many sequences run.
 *
 * Besides equality of mappings and reference counts, every time the engine
 * allows an in-place write (exclusive bit) the model proves that no other
 * entry references the block in the open state nor in the last committed
 * state: the rule that keeps one guest's bytes out of another's block.
 * And every block a commit hands to the freed hook (discard passdown) has
 * no references and no reservation at that moment; a quarter of the
 * sequences run on a data device small enough to fill.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include "dd-walk.h"

#define NVOLS 6

struct mt {
	struct tpool tp;
	struct model m, committed;
	struct dd_volume *h[NVOLS];
	u64 rng, seed;
	int step;
	u64 lbn_space;
	u64 in_place, splits, commits;
	/* An unmap in progress when the engine committed on its own: the
	 * committed state has a prefix of this range unmapped. */
	bool pending;
	int pending_vol;
	u64 pending_lo, pending_hi;
	bool in_unmap;
	int unmap_vol;
	u64 unmap_lo, unmap_hi;
	char passdown_bad[160];	/* the first freed block that was in use */
	u64 passdowns;
};

/*
 * The engine commits on its own when an operation fills the journal.  The
 * model is updated only after each engine call returns, so at that moment
 * it still holds the state before the operation: that is what was
 * committed (an interrupted snapshot is dropped on open; a write reserves
 * its journal room before changing anything), except for an unmap, which
 * commits a prefix of its range.
 */
static int mt_hook(void *ctx)
{
	struct mt *t = ctx;

	model_copy(&t->committed, &t->m);
	t->pending = t->in_unmap;
	t->pending_vol = t->unmap_vol;
	t->pending_lo = t->unmap_lo;
	t->pending_hi = t->unmap_hi;
	t->commits++;
	return 0;
}

/* Passdown would discard these blocks: none may be mapped or reserved. */
static void mt_freed(void *ctx, u64 start, u64 len)
{
	struct mt *t = ctx;
	struct dd_record rec;
	u64 b;

	for (b = start; b < start + len && !t->passdown_bad[0]; b++) {
		t->passdowns++;
		if (dd_record_get(t->tp.pool, b, &rec) || rec.refcount)
			snprintf(t->passdown_bad, sizeof(t->passdown_bad),
				 "passdown of data block %llu, which has %u references",
				 (unsigned long long)b, rec.refcount);
		else if (dd_walk_data_reserved(t->tp.pool, b))
			snprintf(t->passdown_bad, sizeof(t->passdown_bad),
				 "passdown of data block %llu, which is reserved", (unsigned long long)b);
	}
}

static bool mt_trace;
#define TRACE(...) do { if (mt_trace) fprintf(stderr, __VA_ARGS__); } while (0)

static void mt_fail(struct mt *t, const char *what)
{
	fprintf(stderr, "model test failed: %s (seed %llu, step %d)\n", what,
		(unsigned long long)t->seed, t->step);
	fail();
}

static void mt_close_handles(struct mt *t)
{
	int i;

	for (i = 0; i < NVOLS; i++) {
		if (t->h[i])
			dd_volume_close(t->h[i]);
		t->h[i] = NULL;
	}
}

static struct dd_volume *mt_vol(struct mt *t, int id)
{
	if (!t->m.exists[id])
		return NULL;
	if (!t->h[id] && dd_volume_open(t->tp.pool, (u32)id, &t->h[id]))
		mt_fail(t, "cannot open an existing volume");
	return t->h[id];
}

static int mt_pick_vol(struct mt *t, bool existing)
{
	int i, start = (int)tr_below(&t->rng, NVOLS);

	for (i = 0; i < NVOLS; i++) {
		int id = (start + i) % NVOLS;

		if (t->m.exists[id] == existing)
			return id;
	}
	return -1;
}

static u64 mt_lbn(struct mt *t)
{
	/* A few hot LBNs make snapshots, splits and overwrites of the same
	 * blocks meet inside one transaction. */
	if (tr_below(&t->rng, 3) == 0)
		return 1000 + tr_below(&t->rng, 16) * 97;
	if (tr_below(&t->rng, 20) == 0)
		return (1ULL << 32) + tr_below(&t->rng, 1000);	/* deep tree */
	return tr_below(&t->rng, t->lbn_space);
}

/* In-place write allowed: the block must be this entry's alone, now and
 * in the committed state. */
static void mt_check_in_place(struct mt *t, int vol, u64 lbn)
{
	u64 tok, i, k, v, n = 0;
	int cv;

	if (!hm_get(&t->m.vol[vol], lbn, &tok))
		mt_fail(t, "exclusive entry unmapped in the model");
	if (model_refs(&t->m, tok) != 1)
		mt_fail(t, "exclusive bit on a block shared in the open state");
	for (cv = 0; cv < MODEL_MAX_VOLS; cv++)
		for (i = 0; hm_iter(&t->committed.vol[cv], &i, &k, &v);)
			if (v == tok && (cv != vol || k != lbn))
				n++;
	if (n)
		mt_fail(t, "exclusive bit on a block another entry holds in the committed state");
	t->in_place++;
}

static void mt_write(struct mt *t)
{
	int vol = mt_pick_vol(t, true);
	struct dd_volume *v;
	struct dd_mapping mp;
	u64 lbn, tok;
	bool excl;
	int r;

	if (vol < 0)
		return;
	v = mt_vol(t, vol);
	lbn = mt_lbn(t);
	if (dd_map_lookup(v, lbn, 0, &mp))
		mt_fail(t, "lookup");
	if (mp.mapped && !mp.excl && tr_below(&t->rng, 2)) {
		if (dd_map_make_exclusive(v, lbn, &excl))
			mt_fail(t, "make_exclusive");
		mp.excl = excl;
	}
	if (mp.mapped && mp.excl) {
		mt_check_in_place(t, vol, lbn);
		return;
	}
	TRACE("%d: write vol %d lbn %llu (mapped %d)\n", t->step, vol, (unsigned long long)lbn, mp.mapped);
	r = tp_write(v, lbn, NULL);
	if (r == -ENOSPC)
		return;
	if (r)
		mt_fail(t, "write");
	if (mp.mapped && hm_get(&t->m.vol[vol], lbn, &tok) && model_refs(&t->m, tok) > 1)
		t->splits++;
	hm_put(&t->m.vol[vol], lbn, t->m.next_token++);
}

static void mt_unmap(struct mt *t)
{
	int vol = mt_pick_vol(t, true);
	u64 lbn, nr, i, k, v;
	struct hmap *mv, gone;

	if (vol < 0)
		return;
	lbn = mt_lbn(t);
	nr = 1 + tr_below(&t->rng, tr_below(&t->rng, 2) ? 8 : 2000);
	hm_init(&gone);
	TRACE("%d: unmap vol %d %llu+%llu\n", t->step, vol, (unsigned long long)lbn, (unsigned long long)nr);
	t->in_unmap = true;
	t->unmap_vol = vol;
	t->unmap_lo = lbn;
	t->unmap_hi = lbn + nr;
	if (dd_map_unmap(mt_vol(t, vol), lbn, nr, DD_UNMAP_DISCARD))
		mt_fail(t, "unmap");
	t->in_unmap = false;
	mv = &t->m.vol[vol];
	for (i = 0; hm_iter(mv, &i, &k, &v);)
		if (k >= lbn && k < lbn + nr)
			hm_put(&gone, k, 0);
	for (i = 0; hm_iter(&gone, &i, &k, &v);)
		hm_del(mv, k);
	hm_free(&gone);
}

static void mt_create(struct mt *t)
{
	int vol = mt_pick_vol(t, false);

	if (vol < 0)
		return;
	TRACE("%d: create %d\n", t->step, vol);
	if (dd_volume_create(t->tp.pool, (u32)vol) == -EEXIST)
		return;		/* id still being reclaimed */
	t->m.exists[vol] = true;
	hm_clear(&t->m.vol[vol]);
}

static void mt_snapshot(struct mt *t)
{
	int origin = mt_pick_vol(t, true), id = mt_pick_vol(t, false), r;

	if (origin < 0 || id < 0)
		return;
	if (t->h[origin] && tr_below(&t->rng, 2)) {
		dd_volume_close(t->h[origin]);
		t->h[origin] = NULL;
	}
	TRACE("%d: snapshot %d of %d\n", t->step, id, origin);
	r = dd_snapshot_create(t->tp.pool, (u32)id, (u32)origin);
	if (r == -EEXIST)
		return;
	if (r)
		mt_fail(t, "snapshot");
	t->m.exists[id] = true;
	hm_copy(&t->m.vol[id], &t->m.vol[origin]);
}

static void mt_delete(struct mt *t)
{
	int vol = mt_pick_vol(t, true);
	bool done;

	if (vol < 0)
		return;
	if (t->h[vol]) {
		if (dd_volume_delete(t->tp.pool, (u32)vol) != -EBUSY)
			mt_fail(t, "deleting an open volume did not say busy");
		dd_volume_close(t->h[vol]);
		t->h[vol] = NULL;
	}
	TRACE("%d: delete %d\n", t->step, vol);
	if (dd_volume_delete(t->tp.pool, (u32)vol))
		mt_fail(t, "delete");
	t->m.exists[vol] = false;
	hm_clear(&t->m.vol[vol]);
	if (dd_pool_reclaim(t->tp.pool, tr_below(&t->rng, 3000), &done))
		mt_fail(t, "reclaim");
}

static void mt_commit(struct mt *t)
{
	TRACE("%d: commit\n", t->step);
	if (dd_pool_commit(t->tp.pool))
		mt_fail(t, "commit");
	/* The hook ran if anything was dirty; an idle commit changes nothing. */
	model_copy(&t->committed, &t->m);
	t->pending = false;
}

/* Finds how far a committed, interrupted unmap got: entries of the range
 * below some LBN are gone, the others are all still there. */
static void mt_resolve_pending(struct mt *t)
{
	struct hmap *mv = &t->committed.vol[t->pending_vol];
	struct dd_volume *v;
	struct dd_mapping mp;
	u64 i, k, tok, cut = t->pending_hi;
	struct hmap gone;

	if (!t->pending)
		return;
	t->pending = false;
	if (dd_volume_open(t->tp.pool, (u32)t->pending_vol, &v))
		mt_fail(t, "volume of an interrupted unmap is missing");
	for (i = 0; hm_iter(mv, &i, &k, &tok);) {
		if (k < t->pending_lo || k >= t->pending_hi)
			continue;
		if (dd_map_lookup(v, k, 0, &mp))
			mt_fail(t, "lookup");
		if (mp.mapped && k < cut)
			cut = k;
	}
	hm_init(&gone);
	for (i = 0; hm_iter(mv, &i, &k, &tok);) {
		if (k < t->pending_lo || k >= t->pending_hi)
			continue;
		if (dd_map_lookup(v, k, 0, &mp))
			mt_fail(t, "lookup");
		if (k < cut && mp.mapped)
			mt_fail(t, "interrupted unmap left a hole");
		if (k < cut)
			hm_put(&gone, k, 0);
	}
	for (i = 0; hm_iter(&gone, &i, &k, &tok);)
		hm_del(mv, k);
	hm_free(&gone);
	dd_volume_close(v);
}

static void mt_back_to_committed(struct mt *t)
{
	mt_resolve_pending(t);
	model_copy(&t->m, &t->committed);
}

static void mt_reopen(struct mt *t, bool crash)
{
	TRACE("%d: reopen crash=%d\n", t->step, crash);
	mt_close_handles(t);
	if (crash) {
		tp_crash(&t->tp);
		if (tp_open(&t->tp))
			mt_fail(t, "open after a crash");
	} else if (tp_reopen(&t->tp)) {
		mt_fail(t, "reopen");
	}
	mt_back_to_committed(t);
	if (tp_check(&t->tp, NULL))
		mt_fail(t, "check after reopen");
}

static void mt_abort(struct mt *t)
{
	TRACE("%d: abort\n", t->step);
	if (dd_pool_abort(t->tp.pool))
		mt_fail(t, "abort");
	mt_back_to_committed(t);
	/* Handles of volumes created in the aborted transaction are stale. */
	mt_close_handles(t);
}

static void mt_compare(struct mt *t)
{
	if (t->passdown_bad[0])
		mt_fail(t, t->passdown_bad);
	if (model_compare(&t->m, t->tp.pool))
		mt_fail(t, "engine differs from the model");
}

/* journal_blocks 0: a random choice of the smallest or the default journal
 * (pools that copy snapshots); else that journal (with a journal that holds
 * a copy step, DD_COW_MIN_JOURNAL, snapshots share the map). */
#define SHARED_META	8192
#define SHARED_JOURNAL	1024

static void run_sequence(u64 seed, int steps, u64 meta_blocks, u32 journal_blocks)
{
	struct mt *t = calloc(1, sizeof(*t));
	struct dd_bm_opts bmo = { 0 };
	u64 data_blocks;
	u32 journal;

	assert_non_null(t);
	t->seed = t->rng = seed;
	t->lbn_space = 64 + tr_below(&t->rng, 5000);
	bmo.capacity = tr_below(&t->rng, 2) ? 64 : 0;	/* small cache: evictions */
	bmo.eager = tr_below(&t->rng, 2);
	journal = tr_below(&t->rng, 2) ? DD_JOURNAL_MIN_BLOCKS : 0;
	if (journal_blocks)
		journal = journal_blocks;
	t->tp.hooks.pre_commit = mt_hook;
	t->tp.hooks.freed = mt_freed;
	t->tp.hooks.ctx = t;
	/* A small data device fills: allocate, free and want blocks in one
	 * transaction, the allocator wrapping around. */
	data_blocks = tr_below(&t->rng, 4) ? 4000 + tr_below(&t->rng, 8000) : 8 + tr_below(&t->rng, 40);
	if (data_blocks < 4000)
		t->lbn_space = data_blocks / 2 + tr_below(&t->rng, data_blocks);
	if (tp_create(&t->tp, meta_blocks, data_blocks, journal, &bmo))
		mt_fail(t, "create");
	model_init(&t->m);
	model_init(&t->committed);
	mt_commit(t);
	for (t->step = 0; t->step < steps; t->step++) {
		u64 op = tr_below(&t->rng, 100);

		if (op < 45)
			mt_write(t);
		else if (op < 55)
			mt_unmap(t);
		else if (op < 61)
			mt_create(t);
		else if (op < 66)
			mt_snapshot(t);
		else if (op < 70)
			mt_delete(t);
		else if (op < 84) {
			mt_commit(t);
			/* Shared pages: dedup_check proves the exact counts. */
			if (journal_blocks && tp_check(&t->tp, NULL))
				mt_fail(t, "check after a commit");
		}
		else if (op < 87)
			mt_reopen(t, false);
		else if (op < 90)
			mt_reopen(t, true);
		else if (op < 92)
			mt_abort(t);
		if (op >= 84 || t->step % 8 == 0)
			mt_compare(t);
	}
	mt_compare(t);
	mt_commit(t);
	mt_close_handles(t);
	tp_close(&t->tp);
	if (tp_check(&t->tp, NULL))
		mt_fail(t, "final check");
	tp_destroy(&t->tp);
	model_free(&t->m);
	model_free(&t->committed);
	free(t);
}

static void random_sequences_match_the_model(void **state)
{
	const char *one = getenv("DD_MODEL_SEED");

	mt_trace = getenv("DD_MODEL_TRACE");
	const char *runs = getenv("DD_MODEL_RUNS");
	u64 n = runs ? strtoull(runs, NULL, 0) : 2000, i;

	if (one) {
		const char *steps = getenv("DD_MODEL_STEPS");

		const char *shared = getenv("DD_MODEL_SHARED");

		run_sequence(strtoull(one, NULL, 0), steps ? atoi(steps) : 3000,
			     shared ? SHARED_META : steps && atoi(steps) <= 120 ? 1024 : 4096,
			     shared ? SHARED_JOURNAL : 0);
		return;
	}
	for (i = 0; i < n; i++)
		run_sequence(0xdd00000000ULL + i, 120, 1024, 0);
	fprintf(stderr, "# %llu sequences\n", (unsigned long long)n);
}

/* A few long sequences: deeper histories, many commits and reopens. */
static void long_sequences_match_the_model(void **state)
{
	u64 i;

	for (i = 0; i < 6; i++)
		run_sequence(0xdd10000000ULL + i, 3000, 4096, 0);
}

/*
 * The same with snapshots that share the map (docs/snapshots.md): writes
 * through shared pages, snapshots of snapshots, deletes that detach; at
 * every in-place write the model proves the block is the entry's alone now
 * and at the last commit, after every commit dedup_check proves the counts.
 */
static void sequences_with_shared_snapshots_match_the_model(void **state)
{
	const char *runs = getenv("DD_MODEL_RUNS");
	u64 n = runs ? strtoull(runs, NULL, 0) : 150, i;

	for (i = 0; i < n; i++)
		run_sequence(0xdd20000000ULL + i, 120, SHARED_META, SHARED_JOURNAL);
	run_sequence(0xdd30000000ULL, 3000, SHARED_META, SHARED_JOURNAL);
	fprintf(stderr, "# %llu + 1 sequences with shared snapshots\n", (unsigned long long)n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_sequences_match_the_model),
		cmocka_unit_test(long_sequences_match_the_model),
		cmocka_unit_test(sequences_with_shared_snapshots_match_the_model),
	};

	tp_quiet(true);
	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
