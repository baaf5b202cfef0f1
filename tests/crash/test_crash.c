// SPDX-License-Identifier: GPL-2.0
/*
 * Crash tests: each workload runs once to learn the engine's state at every
 * commit, then again once per metadata write index k with the power cut at
 * write k.  After the cut the device keeps none, all, a random subset of
 * its unflushed writes, or a torn last write; the pool must open, pass the
 * check, come back read-write (needs_check clear), hold exactly the state
 * of one committed transaction (the last one that completed, or the one in
 * flight if its superblock landed), and take new work.  Some recoveries are
 * cut again in the middle of their own journal replay.  DD_CRASH_STRIDE=n
 * tests every n-th write index only.  The longest workload (page copies
 * with the engine's own commits between them) cuts every write once, the
 * four device behaviours taking turns (crash_case.rotate).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include <dm-dedup/format.h>

#define MAX_TXN 4096

typedef int (*workload_fn)(struct tpool *tp);

struct ref {
	u64 digest[MAX_TXN];
	bool have[MAX_TXN];
};

/* ---- workloads: each stops at the first error and returns it ---- */

#define TRY(x) do { int __r = (x); if (__r) return __r; } while (0)

static int wopen(struct tpool *tp, u32 id, struct dd_volume **v)
{
	return dd_volume_open(tp->pool, id, v);
}

static int wl_fill_and_overwrite(struct tpool *tp)
{
	struct dd_volume *v;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 1));
	TRY(wopen(tp, 1, &v));
	for (i = 0, r = 0; i < 600 && !r; i++) {
		r = tp_write(v, i * 13, NULL);
		if (!r && i % 100 == 99)
			r = dd_pool_commit(tp->pool);
	}
	if (!r)
		r = dd_pool_commit(tp->pool);
	for (i = 0; i < 300 && !r; i++)
		r = tp_write(v, i * 26, NULL);
	if (!r)
		r = dd_map_unmap(v, 1000, 2000, DD_UNMAP_DISCARD);
	if (!r)
		r = dd_pool_commit(tp->pool);
	for (i = 0; i < 200 && !r; i++)
		r = tp_write(v, 100000 + i, NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	return r;
}

static int wl_snapshot_and_split(struct tpool *tp)
{
	struct dd_volume *v, *s;
	bool done, excl;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 1));
	TRY(wopen(tp, 1, &v));
	for (i = 0, r = 0; i < 400 && !r; i++)
		r = tp_write(v, i * 3, NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_snapshot_create(tp->pool, 2, 1);
	if (!r)
		r = wopen(tp, 2, &s);
	if (r) {
		dd_volume_close(v);
		return r;
	}
	for (i = 0; i < 200 && !r; i++)
		r = tp_write(s, i * 3, NULL);
	for (i = 0; i < 200 && !r; i++)
		r = dd_map_make_exclusive(v, i * 3, &excl);
	if (!r)
		r = dd_pool_commit(tp->pool);
	for (i = 0; i < 200 && !r; i++)
		r = dd_map_make_exclusive(v, i * 3, &excl);
	for (i = 0; i < 100 && !r; i++)
		r = tp_write(v, i * 6, NULL);
	dd_volume_close(s);
	if (!r)
		r = dd_volume_delete(tp->pool, 2);
	if (!r)
		r = dd_pool_reclaim(tp->pool, 150, &done);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_pool_reclaim(tp->pool, ~0ULL, &done);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	return r;
}

/* A small journal: the engine commits inside writes, the snapshot copy and
 * the unmap of the whole volume. */
static int wl_long_operations(struct tpool *tp)
{
	struct dd_volume *v;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 7));
	TRY(wopen(tp, 7, &v));
	for (i = 0, r = 0; i < 700 && !r; i++)
		r = tp_write(v, i * 61, NULL);
	if (!r)
		r = dd_snapshot_create(tp->pool, 8, 7);
	if (!r)
		r = dd_map_unmap(v, 0, DD_MAX_ADDR, DD_UNMAP_DISCARD);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	return r;
}

static int wl_volume_churn(struct tpool *tp)
{
	struct dd_volume *v;
	bool done;
	u32 id;
	u64 i;
	int r = 0;

	for (id = 0; id < 10 && !r; id++) {
		r = dd_volume_create(tp->pool, id * 100);
		if (!r)
			r = wopen(tp, id * 100, &v);
		if (r)
			break;
		for (i = 0; i < 40 && !r; i++)
			r = tp_write(v, i + id * 1000, NULL);
		dd_volume_close(v);
		if (!r && id % 3 == 2)
			r = dd_pool_commit(tp->pool);
	}
	for (id = 0; id < 10 && !r; id += 2)
		r = dd_volume_delete(tp->pool, id * 100);
	if (!r)
		r = dd_pool_reclaim(tp->pool, 90, &done);
	if (!r)
		r = dd_pool_set_user_txn(tp->pool, 0, 42);
	if (!r)
		r = dd_pool_resize_data(tp->pool, tp->fp.nr_data_blocks + 5000);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_pool_reclaim(tp->pool, ~0ULL, &done);
	for (id = 0; id < 10 && !r; id += 2)
		r = dd_volume_create(tp->pool, id * 100 + 1);
	if (!r)
		r = dd_pool_commit(tp->pool);
	return r;
}

static int wl_far_lbns(struct tpool *tp)
{
	static const u64 lbns[] = { 0, 1, 507, 508, 1ULL << 20, (1ULL << 30) + 3, 1ULL << 40,
				    DD_MAX_ADDR };
	struct dd_volume *v;
	u64 i;
	int r = 0;

	TRY(dd_volume_create(tp->pool, 3));
	TRY(wopen(tp, 3, &v));
	for (i = 0; i < sizeof(lbns) / sizeof(lbns[0]) && !r; i++)
		r = tp_write(v, lbns[i], NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_snapshot_create(tp->pool, 4, 3);
	if (!r)
		r = dd_map_unmap(v, 2, (1ULL << 41), DD_UNMAP_DISCARD);
	if (!r)
		r = dd_pool_commit(tp->pool);
	for (i = 0; i < sizeof(lbns) / sizeof(lbns[0]) && !r; i++)
		r = tp_write(v, lbns[i], NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	return r;
}

/* Ends with a clean close: home copies, flush, a superblock with no journal. */
static int wl_clean_close(struct tpool *tp)
{
	struct dd_volume *v;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 1));
	TRY(wopen(tp, 1, &v));
	for (i = 0, r = 0; i < 300 && !r; i++)
		r = tp_write(v, i * 5, NULL);
	dd_volume_close(v);
	if (!r)
		r = dd_pool_commit(tp->pool);
	tp_close(tp);
	return r;
}

/*
 * A full metadata device grown at its end: the growth (three bitmap pages,
 * the last one partly) and the writes that land in the new blocks.  Runs on
 * the smallest device (crash_case.meta), so it fills fast.
 */
static int wl_grow_metadata(struct tpool *tp)
{
	u64 grown = 2 * DD_BITS_PER_BITMAP + 300;
	struct dd_volume *v;
	u64 i, n;
	int r;

	TRY(dd_volume_create(tp->pool, 3));
	TRY(wopen(tp, 3, &v));
	for (i = 0, r = 0; i < 100000 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7, NULL);
	n = i - 1;
	if (r == -ENOSPC)
		r = dd_ramdev_grow(tp->rd, grown);
	if (!r)
		r = dd_pool_resize_meta(tp->pool, grown);
	for (i = n; i < n + 150 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7, NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	return r;
}

/*
 * Snapshots that share the map (a journal that holds a copy step): a
 * snapshot, writes on both sides through shared pages (page copies, data
 * references raised), a snapshot of the snapshot, a discard through shared
 * pages, the origin deleted (detached) part by part, then the first
 * snapshot; the journal fills inside, so the engine commits between copy
 * steps too.
 */
static int wl_shared_snapshots(struct tpool *tp)
{
	struct dd_volume *v, *s, *t;
	bool done, excl;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 1));
	TRY(wopen(tp, 1, &v));
	for (i = 0, r = 0; i < 300 && !r; i++)
		r = tp_write(v, i * 37, NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_snapshot_create(tp->pool, 2, 1);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = wopen(tp, 2, &s);
	if (r) {
		dd_volume_close(v);
		return r;
	}
	for (i = 0; i < 150 && !r; i++)
		r = tp_write(s, i * 74, NULL);
	for (i = 0; i < 100 && !r; i++)
		r = tp_write(v, i * 111 + 1, NULL);
	for (i = 0; i < 50 && !r; i++)
		r = dd_map_make_exclusive(v, i * 37, &excl);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_snapshot_create(tp->pool, 3, 2);
	if (!r)
		r = wopen(tp, 3, &t);
	if (r) {
		dd_volume_close(s);
		dd_volume_close(v);
		return r;
	}
	for (i = 0; i < 50 && !r; i++)
		r = tp_write(t, i * 200 + 5, NULL);
	if (!r)
		r = dd_map_unmap(s, 2000, 4000, DD_UNMAP_DISCARD);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(v);
	if (!r)
		r = dd_volume_delete(tp->pool, 1);
	if (!r)
		r = dd_pool_reclaim(tp->pool, 40, &done);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_pool_reclaim(tp->pool, ~0ULL, &done);
	for (i = 0; i < 30 && !r; i++)
		r = tp_write(t, i * 37, NULL);
	dd_volume_close(s);
	if (!r)
		r = dd_volume_delete(tp->pool, 2);
	if (!r)
		r = dd_pool_reclaim(tp->pool, ~0ULL, &done);
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(t);
	return r;
}

/*
 * Copy steps with the engine's own commits between them: a write on each
 * leaf of a snapshot copies that leaf (and the root, once); 340 leaves
 * fill the smallest journal that shares, so the write loop commits inside.
 */
static int wl_shared_self_commits(struct tpool *tp)
{
	struct dd_volume *v, *s;
	struct dd_pool_stats st0, st;
	u64 i;
	int r;

	TRY(dd_volume_create(tp->pool, 1));
	TRY(wopen(tp, 1, &v));
	for (i = 0, r = 0; i < 340 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES, NULL);
	if (!r)
		r = dd_pool_commit(tp->pool);
	if (!r)
		r = dd_snapshot_create(tp->pool, 2, 1);
	if (!r)
		r = wopen(tp, 2, &s);
	dd_volume_close(v);
	if (r)
		return r;
	dd_pool_get_stats(tp->pool, &st0);
	for (i = 0; i < 340 && !r; i++)
		r = tp_write(s, i * DD_MAP_ENTRIES + 1, NULL);
	dd_pool_get_stats(tp->pool, &st);
	if (!r && st.txn == st0.txn)
		r = -EDOM;	/* the workload no longer tests what it says */
	if (!r)
		r = dd_pool_commit(tp->pool);
	dd_volume_close(s);
	return r;
}

/* ---- the harness ---- */

struct crash_case {
	const char *name;
	workload_fn fn;
	u32 journal;
	bool eager;
	u64 meta;	/* metadata blocks, 0 = 2048 */
	/* > 1: the policies take turns, policy p cutting writes p + 1,
	 * p + 1 + rotate...: every write is cut once, not four times (for
	 * the longest workload; DD_CRASH_STRIDE=1 cuts each under all four) */
	u32 rotate;
};

struct run {
	struct ref ref;
	struct tpool base;	/* formatted, clean */
};

static int run_ref_hook(void *ctx)
{
	struct run *run = ctx;
	struct dd_pool_stats st;
	struct tpool *tp = &run->base;

	dd_pool_get_stats(tp->pool, &st);
	if (st.txn + 1 < MAX_TXN) {
		run->ref.digest[st.txn + 1] = tp_digest(tp->pool);
		run->ref.have[st.txn + 1] = true;
	}
	return 0;
}

/* Formats a pool and returns a clone of its device (closed, clean). */
static struct dd_ramdev *formatted(const struct crash_case *cc, u64 *data_blocks)
{
	struct tpool tp = { 0 };
	struct dd_bm_opts bmo = { .eager = cc->eager };
	struct dd_ramdev *rd;

	*data_blocks = 20000;
	assert_int_equal(tp_create(&tp, cc->meta ? cc->meta : 2048, *data_blocks, cc->journal, &bmo),
			 0);
	tp_close(&tp);
	rd = dd_ramdev_clone(tp.rd);
	tp_destroy(&tp);
	assert_non_null(rd);
	return rd;
}

static void attach(struct tpool *tp, struct dd_ramdev *rd, const struct crash_case *cc,
		   u64 data_blocks)
{
	memset(tp, 0, sizeof(*tp));
	tp->rd = rd;
	tp->bmo.eager = cc->eager;
	tp->fp.nr_data_blocks = data_blocks;
	tp->fp.data_block_sectors = DD_SECTORS_PER_BLOCK;
}

/* Runs fn against a pool whose device crashes at write 'k' (0 = never). */
static int run_workload(const struct crash_case *cc, struct dd_ramdev *img, u64 data_blocks,
			const struct dd_fault *f, struct dd_pool_hooks *hooks,
			struct tpool *tp, u64 *last_ok_txn, u64 *writes)
{
	struct dd_pool_stats st;
	struct dd_fault fault;
	int r;

	attach(tp, dd_ramdev_clone(img), cc, data_blocks);
	assert_non_null(tp->rd);
	if (hooks)
		tp->hooks = *hooks;
	assert_int_equal(tp_open(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	*last_ok_txn = st.txn;
	if (f) {
		fault = *f;
		fault.crash_at_write += dd_ramdev_nr_writes(tp->rd);
		dd_ramdev_set_fault(tp->rd, &fault);
	}
	*writes = dd_ramdev_nr_writes(tp->rd);
	r = cc->fn(tp);
	*writes = dd_ramdev_nr_writes(tp->rd) - *writes;
	/* The engine advances its committed txn only when a commit completes. */
	if (tp->pool) {
		dd_pool_get_stats(tp->pool, &st);
		*last_ok_txn = st.txn;
	} else {
		*last_ok_txn = tp->last_txn;
	}
	return r;
}

static void verify_recovery(const struct crash_case *cc, struct run *run, struct tpool *tp,
			    u64 k, const char *policy, u64 last_ok)
{
	struct dd_pool_stats st;
	struct dd_volume *v;
	const char *why;
	u64 d;

	if (tp_open(tp)) {
		fprintf(stderr, "%s: %s crash at write %llu: pool does not open\n", cc->name, policy,
			(unsigned long long)k);
		fail();
	}
	/* A crash is no metadata error: the pool must come back read-write. */
	why = tp_not_writable(tp->pool);
	if (why) {
		fprintf(stderr, "%s: %s crash at write %llu: the pool opens, but %s\n", cc->name,
			policy, (unsigned long long)k, why);
		fail();
	}
	dd_pool_get_stats(tp->pool, &st);
	if (st.txn != last_ok && st.txn != last_ok + 1) {
		fprintf(stderr, "%s: %s crash at write %llu: opened at txn %llu, last commit %llu\n",
			cc->name, policy, (unsigned long long)k, (unsigned long long)st.txn,
			(unsigned long long)last_ok);
		fail();
	}
	d = tp_digest(tp->pool);
	if (st.txn >= MAX_TXN || !run->ref.have[st.txn] || run->ref.digest[st.txn] != d) {
		fprintf(stderr, "%s: %s crash at write %llu: state differs from committed txn %llu\n",
			cc->name, policy, (unsigned long long)k, (unsigned long long)st.txn);
		fail();
	}
	tp_close(tp);
	if (tp_check(tp, NULL)) {
		fprintf(stderr, "%s: %s crash at write %llu: check fails\n", cc->name, policy,
			(unsigned long long)k);
		fail();
	}
	/* The recovered pool takes new work. */
	assert_int_equal(tp_open(tp), 0);
	if (dd_volume_create(tp->pool, 999) == 0) {
		assert_int_equal(dd_volume_open(tp->pool, 999, &v), 0);
		assert_int_equal(tp_write(v, 5, NULL), 0);
		dd_volume_close(v);
	}
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	tp_close(tp);
	assert_int_equal(tp_check(tp, NULL), 0);
}

static void crash_everywhere(const struct crash_case *cc)
{
	static const struct { enum dd_unflushed u; bool tear; const char *name; } policies[] = {
		{ DD_UNFLUSHED_DROP, false, "drop-unflushed" },
		{ DD_UNFLUSHED_KEEP, false, "keep-unflushed" },
		{ DD_UNFLUSHED_RANDOM, false, "random-unflushed" },
		{ DD_UNFLUSHED_DROP, true, "torn-write" },
	};
	const char *stride_env = getenv("DD_CRASH_STRIDE");
	u64 stride = stride_env ? strtoull(stride_env, NULL, 0) : 1;
	struct run *run = calloc(1, sizeof(*run));
	struct dd_pool_hooks hooks = { .pre_commit = run_ref_hook, .ctx = run };
	struct dd_ramdev *img;
	u64 data_blocks, last_ok, total, writes, k, cuts = 0, replay_cuts = 0;
	unsigned p;

	assert_non_null(run);
	img = formatted(cc, &data_blocks);

	/* Reference run: digests at every commit. */
	attach(&run->base, dd_ramdev_clone(img), cc, data_blocks);
	run->base.hooks = hooks;
	assert_int_equal(tp_open(&run->base), 0);
	{
		struct dd_pool_stats st;

		dd_pool_get_stats(run->base.pool, &st);
		run->ref.digest[st.txn] = tp_digest(run->base.pool);
		run->ref.have[st.txn] = true;
	}
	total = dd_ramdev_nr_writes(run->base.rd);
	assert_int_equal(cc->fn(&run->base), 0);
	total = dd_ramdev_nr_writes(run->base.rd) - total;
	if (!run->base.pool) {
		/* The workload closed the pool: its last superblock is a txn too. */
		struct dd_pool_stats st;

		run->base.hooks.pre_commit = NULL;
		assert_int_equal(tp_open(&run->base), 0);
		dd_pool_get_stats(run->base.pool, &st);
		run->ref.digest[st.txn] = tp_digest(run->base.pool);
		run->ref.have[st.txn] = true;
	}
	tp_destroy(&run->base);

	if (!stride_env && cc->rotate > 1)
		stride = cc->rotate;
	for (p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
		for (k = 1 + (stride == cc->rotate ? p % stride : 0); k <= total; k += stride) {
			struct dd_fault f = { .crash_at_write = k, .unflushed = policies[p].u,
					      .tear = policies[p].tear, .seed = k * 31 + p };
			struct tpool tp;
			int r;

			r = run_workload(cc, img, data_blocks, &f, NULL, &tp, &last_ok, &writes);
			if (!r && !dd_ramdev_crashed(tp.rd)) {
				fprintf(stderr, "%s: write %llu never came\n", cc->name,
					(unsigned long long)k);
				fail();
			}
			tp_crash(&tp);
			/* Every 5th recovery is itself cut during its replay. */
			if (k % 5 == 0) {
				struct dd_fault g = { .crash_at_write = 1 + k % 7,
						      .unflushed = DD_UNFLUSHED_RANDOM, .seed = k };

				dd_ramdev_set_fault(tp.rd, &g);
				if (tp_open(&tp))
					replay_cuts++;
				tp_crash(&tp);	/* (a short replay was not cut: crash after it) */
			}
			verify_recovery(cc, run, &tp, k, policies[p].name, last_ok);
			tp_destroy(&tp);
			cuts++;
		}
	}
	fprintf(stderr, "# %s: %llu metadata writes, %llu crash points tested (%llu recoveries cut)\n",
		cc->name, (unsigned long long)total, (unsigned long long)cuts,
		(unsigned long long)replay_cuts);
	dd_ramdev_free(img);
	free(run);
}

#define CRASH_TEST_ROTATE(name, fn, journal, eager, meta, rotate) \
	static void name(void **state) \
	{ \
		static const struct crash_case cc = { #name, fn, journal, eager, meta, rotate }; \
		crash_everywhere(&cc); \
	}
#define CRASH_TEST_META(name, fn, journal, eager, meta) \
	CRASH_TEST_ROTATE(name, fn, journal, eager, meta, 0)
#define CRASH_TEST(name, fn, journal, eager) CRASH_TEST_META(name, fn, journal, eager, 0)

CRASH_TEST(fill_and_overwrite_survives_a_crash_at_every_write, wl_fill_and_overwrite, 0, false)
CRASH_TEST(snapshot_split_and_delete_survive_a_crash_at_every_write, wl_snapshot_and_split, 0, false)
CRASH_TEST(long_operations_survive_a_crash_at_every_write, wl_long_operations, DD_JOURNAL_MIN_BLOCKS, false)
CRASH_TEST(volume_churn_survives_a_crash_at_every_write, wl_volume_churn, 0, false)
CRASH_TEST(tree_growth_survives_a_crash_at_every_write, wl_far_lbns, 0, false)
CRASH_TEST(early_home_writes_survive_a_crash_at_every_write, wl_snapshot_and_split, 0, true)
CRASH_TEST(clean_close_survives_a_crash_at_every_write, wl_clean_close, 0, false)
CRASH_TEST_META(metadata_growth_survives_a_crash_at_every_write, wl_grow_metadata, 0, false,
		DD_META_MIN_BLOCKS)
CRASH_TEST_META(shared_snapshots_survive_a_crash_at_every_write, wl_shared_snapshots, 700, false,
		4096)
CRASH_TEST_META(shared_snapshots_with_early_home_writes_survive_a_crash_at_every_write,
		wl_shared_snapshots, 700, true, 4096)
CRASH_TEST_ROTATE(shared_page_copies_survive_a_crash_at_every_write, wl_shared_self_commits, 700,
		  false, 4096, 4)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fill_and_overwrite_survives_a_crash_at_every_write),
		cmocka_unit_test(snapshot_split_and_delete_survive_a_crash_at_every_write),
		cmocka_unit_test(long_operations_survive_a_crash_at_every_write),
		cmocka_unit_test(volume_churn_survives_a_crash_at_every_write),
		cmocka_unit_test(tree_growth_survives_a_crash_at_every_write),
		cmocka_unit_test(early_home_writes_survive_a_crash_at_every_write),
		cmocka_unit_test(clean_close_survives_a_crash_at_every_write),
		cmocka_unit_test(metadata_growth_survives_a_crash_at_every_write),
		cmocka_unit_test(shared_snapshots_survive_a_crash_at_every_write),
		cmocka_unit_test(shared_snapshots_with_early_home_writes_survive_a_crash_at_every_write),
		cmocka_unit_test(shared_page_copies_survive_a_crash_at_every_write),
	};

	tp_quiet(true);
	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
