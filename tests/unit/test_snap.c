// SPDX-License-Identifier: GPL-2.0
/*
 * Shared map pages (docs/snapshots.md): the page reference tree (mrefs),
 * the feature bit that guards it, and dedup_check's proof of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include "dd-walk.h"
#include <dm-dedup/format.h>

#define META 8192
#define DATA 20000

static struct dd_volume *vol_new(struct tpool *tp, u32 id)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_create(tp->pool, id), 0);
	assert_int_equal(dd_volume_open(tp->pool, id, &v), 0);
	return v;
}

static u32 mref(struct tpool *tp, u64 b)
{
	u32 x = 12345;

	assert_int_equal(dd_walk_mref(tp->pool, b, &x), 0);
	return x;
}

static u32 incompat(struct tpool *tp)
{
	struct dd_walk_info g;

	dd_walk_get_info(tp->pool, &g);
	return g.incompat;
}

static u64 mrefs_root(struct tpool *tp)
{
	struct dd_walk_root r;

	assert_int_equal(dd_walk_root(tp->pool, DD_TREE_MREFS, 0, &r), 0);
	return r.block;
}

/*
 * Counts kept sparsely: absent reads 0, entries in several leaves survive a
 * commit and a reopen, an entry back at 0 is removed and the last one
 * removes the tree.  A count never goes below 0.
 */
static void page_references_round_trip_and_vanish_at_zero(void **state)
{
	struct tpool tp = { 0 };
	static const u64 blocks[] = { 2300, 2301, 2300 + DD_MREFS_PER_LEAF,
				      2300 + 3 * DD_MREFS_PER_LEAF + 17, META - 1 };
	u32 now, i;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	assert_int_equal(mrefs_root(&tp), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(mref(&tp, blocks[i]), 0);
		assert_int_equal(dd_test_mref_add(tp.pool, blocks[i], (int)i + 1, &now), 0);
		assert_int_equal(now, i + 1);
	}
	assert_int_equal(dd_test_mref_add(tp.pool, blocks[0], 2, &now), 0);
	assert_int_equal(now, 3);
	assert_int_equal(mref(&tp, 2302), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);
	assert_true(incompat(&tp) & DD_INCOMPAT_SHARED_MAPS);
	assert_int_equal(mref(&tp, blocks[0]), 3);
	for (i = 1; i < 5; i++)
		assert_int_equal(mref(&tp, blocks[i]), i + 1);
	/* Below zero: refused, nothing changed (the pool steps down). */
	tp_quiet(true);
	assert_int_equal(dd_test_mref_add(tp.pool, blocks[1], -3, &now), -EILSEQ);
	tp_quiet(false);
	assert_int_equal(tp_reopen(&tp), 0);
	assert_int_equal(dd_pool_clear_needs_check(tp.pool), 0);
	assert_int_equal(mref(&tp, blocks[1]), 2);
	for (i = 0; i < 5; i++) {
		u32 left = mref(&tp, blocks[i]);

		assert_int_equal(dd_test_mref_add(tp.pool, blocks[i], -(int)left, &now), 0);
		assert_int_equal(now, 0);
		assert_int_equal(mref(&tp, blocks[i]), 0);
		if (i < 4)
			assert_int_not_equal(mrefs_root(&tp), 0);
	}
	assert_int_equal(mrefs_root(&tp), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);
	assert_int_equal(mrefs_root(&tp), 0);
	/* The feature stays: the pool was shared once. */
	assert_true(incompat(&tp) & DD_INCOMPAT_SHARED_MAPS);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/* Runs dedup_check on the committed state; the reports of one code. */
static u64 check_code(struct tpool *tp, enum dd_check_code code, u64 *errors)
{
	struct dd_check_result res;

	*errors = tp_check(tp, &res);
	return res.count[code];
}

/*
 * dedup_check proves every page has 1 + its count parents: a count on a
 * page with one parent, and on a block nothing reaches, are both errors;
 * the pool is clean again once the counts are right.
 */
static void the_check_proves_the_parents_of_every_page(void **state)
{
	struct tpool tp = { 0 };
	struct dd_walk_root root;
	struct dd_volume *v;
	u64 errors, i;
	u32 now;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	v = vol_new(&tp, 1);
	for (i = 0; i < 1200; i++)
		assert_int_equal(tp_write(v, i * 7, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(check_code(&tp, DD_CHK_META_SHARED, &errors), 0);
	assert_int_equal(errors, 0);
	assert_int_equal(incompat(&tp), 0);	/* no sharing: an old pool's format */

	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAP, 1, &root), 0);
	assert_true(root.height >= 1);
	assert_int_equal(dd_test_mref_add(tp.pool, root.block, 1, &now), 0);
	assert_int_equal(dd_test_mref_add(tp.pool, META - 2, 1, &now), 0);	/* unreachable */
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(check_code(&tp, DD_CHK_META_SHARED, &errors), 2);
	assert_int_equal(errors, 2);
	assert_int_equal(dd_test_mref_add(tp.pool, root.block, -1, &now), 0);
	assert_int_equal(dd_test_mref_add(tp.pool, META - 2, -1, &now), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(check_code(&tp, DD_CHK_META_SHARED, &errors), 0);
	assert_int_equal(errors, 0);
	tp_destroy(&tp);
}

/* Rewrites both superblock slots with the incompat word changed. */
static void poke_incompat(struct tpool *tp, u32 incompat)
{
	u8 blk[DD_BLOCK_SIZE];
	struct dd_disk_superblock *sb = (void *)blk;
	u64 slot;

	for (slot = 0; slot < DD_SB_SLOTS; slot++) {
		memcpy(blk, dd_ramdev_block(tp->rd, slot), DD_BLOCK_SIZE);
		if (dd_walk_sb_check(blk, slot))
			continue;
		sb->incompat = cpu_to_le32(incompat);
		sb->hdr.csum = cpu_to_le32(dd_walk_block_csum(blk, DD_BT_SUPER));
		assert_int_equal(dd_walk_sb_check(blk, slot), 0);
		dd_ramdev_poke(tp->rd, slot, blk);
	}
}

/*
 * The feature word: a pool of the previous version (no bit, no mrefs root)
 * opens unchanged and stays without the bit; a bit this engine does not
 * know refuses the open, as the bit refuses an older engine.
 */
static void an_unknown_incompatible_feature_refuses_the_pool(void **state)
{
	struct tpool tp = { 0 };
	struct dd_volume *v;
	struct dd_mapping m;
	u64 p;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	v = vol_new(&tp, 1);
	assert_int_equal(tp_write(v, 3, &p), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);
	assert_int_equal(incompat(&tp), 0);
	tp_close(&tp);

	poke_incompat(&tp, 1u << 7);
	tp_quiet(true);
	assert_int_equal(tp_open(&tp), -EINVAL);
	tp_quiet(false);
	poke_incompat(&tp, 0);
	assert_int_equal(tp_open(&tp), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	assert_int_equal(dd_map_lookup(v, 3, 0, &m), 0);
	assert_true(m.mapped && m.excl);
	assert_int_equal(m.pbn, p);
	dd_volume_close(v);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/* ---- snapshots that share the map ------------------------------------------ */

#define SJOURNAL 1024	/* holds a copy step: the pool shares (DD_COW_MIN_JOURNAL) */

static struct tpool *sp_new(void)
{
	struct tpool *tp = calloc(1, sizeof(*tp));

	assert_non_null(tp);
	assert_int_equal(tp_create(tp, META, DATA, SJOURNAL, NULL), 0);
	return tp;
}

static void sp_free(struct tpool *tp)
{
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_check(tp, NULL), 0);
	tp_destroy(tp);
	free(tp);
}

static struct dd_volume *vol_open(struct tpool *tp, u32 id)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_open(tp->pool, id, &v), 0);
	return v;
}

static struct dd_mapping look(struct dd_volume *v, u64 lbn)
{
	struct dd_mapping m;

	assert_int_equal(dd_map_lookup(v, lbn, 0, &m), 0);
	return m;
}

static struct dd_record rec_of(struct tpool *tp, u64 pbn)
{
	struct dd_record rec;

	assert_int_equal(dd_record_get(tp->pool, pbn, &rec), 0);
	return rec;
}

#define NLBN 3000
static u64 lbn_at(u64 i)
{
	return i < NLBN - 1 ? i * 3 : 600000;	/* the last one makes the tree taller */
}

/*
 * A snapshot of a volume with thousands of mappings is one small
 * transaction: a few dirty blocks, at most a new page reference leaf, no
 * reference taken on any data block.  Both volumes see every mapping, no
 * entry is exclusive through the shared root, and the check proves the
 * shared pages' parents and the data counts.
 */
static void a_snapshot_shares_the_map_in_one_small_transaction(void **state)
{
	struct tpool *tp = sp_new();
	struct dd_volume *v = vol_new(tp, 1), *s;
	struct dd_pool_stats st0, st;
	u64 i, pbn[NLBN];

	for (i = 0; i < NLBN; i++)
		assert_int_equal(tp_write(v, lbn_at(i), &pbn[i]), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(incompat(tp), 0);
	dd_pool_get_stats(tp->pool, &st0);
	assert_int_equal(st0.nr_dirty, 0);

	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_true(st.nr_dirty <= 8);
	assert_true(st.meta_used <= st0.meta_used + 2);
	assert_int_equal(st.data_used, st0.data_used);
	assert_int_equal(st.shared_blocks, 0);
	assert_int_equal(st.mapped_blocks, 2 * NLBN);
	assert_int_equal(st.nr_volumes, 2);
	assert_true(incompat(tp) & DD_INCOMPAT_SHARED_MAPS);
	s = vol_open(tp, 2);
	for (i = 0; i < NLBN; i++) {
		struct dd_mapping a = look(v, lbn_at(i)), b = look(s, lbn_at(i));

		assert_true(a.mapped && b.mapped);
		assert_int_equal(a.pbn, pbn[i]);
		assert_int_equal(b.pbn, pbn[i]);
		assert_false(a.excl);
		assert_false(b.excl);
		assert_int_equal(rec_of(tp, pbn[i]).refcount, 1);	/* one slot */
	}
	assert_int_equal(dd_volume_mapped(s), NLBN);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_check(tp, NULL), 0);
	/* The same after a reopen. */
	dd_volume_close(s);
	dd_volume_close(v);
	assert_int_equal(tp_reopen(tp), 0);
	v = vol_open(tp, 1);
	s = vol_open(tp, 2);
	for (i = 0; i < NLBN; i += 7) {
		assert_int_equal(look(s, lbn_at(i)).pbn, pbn[i]);
		assert_false(look(v, lbn_at(i)).excl);
	}
	dd_volume_close(s);
	dd_volume_close(v);
	sp_free(tp);
}

/*
 * With dd_pool_set_snapshot_copy() (the kernel's default, without the
 * share_snapshots feature) the same pool copies the map: every block gains
 * the snapshot's reference, no page is shared, no feature bit is set, and
 * the origin's later writes are owned by the origin alone again.  A reopen
 * forgets the setting (the kernel sets it before every snapshot).
 */
static void the_copy_mode_copies_on_a_pool_that_could_share(void **state)
{
	struct tpool *tp = sp_new();
	struct dd_volume *v = vol_new(tp, 1), *s;
	struct dd_pool_stats st;
	struct dd_record rec;
	u64 i, pbn[NLBN], p;

	for (i = 0; i < NLBN; i++)
		assert_int_equal(tp_write(v, lbn_at(i), &pbn[i]), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_pool_set_snapshot_copy(tp->pool, true);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(incompat(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.shared_blocks, NLBN);
	s = vol_open(tp, 2);
	for (i = 0; i < NLBN; i++) {
		assert_int_equal(look(s, lbn_at(i)).pbn, pbn[i]);
		assert_int_equal(rec_of(tp, pbn[i]).refcount, 2);
	}
	/* A new write of the origin: its own block, owned by (1, lbn). */
	assert_int_equal(tp_write(v, 1, &p), 0);
	rec = rec_of(tp, p);
	assert_int_equal(rec.refcount, 1);
	assert_true(rec.owned);
	assert_int_equal(rec.owner_vol, 1);
	assert_int_equal(rec.owner_lbn, 1);
	dd_volume_close(s);
	dd_volume_close(v);
	sp_free(tp);
}

/*
 * A write through a shared page copies the path: the writer sees its new
 * block, the sibling keeps the old one, and every other entry of the
 * copied leaf still reads the same on both sides, its block now referenced
 * by both leaves (and exclusive to neither).  Would a write go in place
 * through the shared page, the sibling would read the writer's block.
 */
static void a_write_through_shared_pages_copies_them_and_keeps_the_sibling(void **state)
{
	struct tpool *tp = sp_new();
	struct dd_volume *v = vol_new(tp, 1), *s;
	enum dd_write_plan plan;
	struct dd_mapping m;
	struct dd_pool_stats st;
	u64 i, pbn[NLBN], p, q;
	bool excl;

	for (i = 0; i < NLBN; i++)
		assert_int_equal(tp_write(v, lbn_at(i), &pbn[i]), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_true(look(v, 30).excl);			/* exclusive before */
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	s = vol_open(tp, 2);

	/* Through the shared pages: never in place, not even on request. */
	assert_int_equal(dd_map_plan_write(v, 30, 0, &m, &plan), 0);
	assert_int_not_equal(plan, DD_WRITE_IN_PLACE);
	assert_int_equal(dd_map_make_exclusive(v, 30, &excl), 0);
	assert_false(excl);
	assert_int_equal(dd_map_make_exclusive(s, 30, &excl), 0);
	assert_false(excl);
	assert_false(look(v, 30).excl);

	assert_int_equal(tp_write(v, 30, &p), 0);	/* lbn_at(10) */
	assert_int_equal(look(v, 30).pbn, p);
	assert_true(look(v, 30).excl);			/* a new block, in its own leaf */
	assert_int_equal(look(s, 30).pbn, pbn[10]);	/* the sibling keeps its block */
	assert_false(look(s, 30).excl);
	assert_int_equal(rec_of(tp, pbn[10]).refcount, 1);
	for (i = 0; i < NLBN; i++) {
		if (i == 10)
			continue;
		assert_int_equal(look(v, lbn_at(i)).pbn, pbn[i]);
		assert_int_equal(look(s, lbn_at(i)).pbn, pbn[i]);
		assert_false(look(v, lbn_at(i)).excl);
		assert_false(look(s, lbn_at(i)).excl);
	}
	/* LBN 33 shared the copied leaf: its block has two slots now. */
	assert_int_equal(rec_of(tp, pbn[11]).refcount, 2);
	assert_false(rec_of(tp, pbn[11]).owned);
	assert_int_equal(dd_map_make_exclusive(s, 33, &excl), 0);
	assert_false(excl);
	/* A leaf the write did not copy: still one slot, shared page. */
	assert_int_equal(rec_of(tp, pbn[NLBN - 2]).refcount, 1);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.mapped_blocks, 2 * NLBN);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_check(tp, NULL), 0);

	/* The sibling writes the same LBN: its path is copied too, and the
	 * origin's page is its own again, but only after the commit is its
	 * block exclusive (the committed state shares it). */
	assert_int_equal(tp_write(s, 33, &q), 0);
	assert_int_equal(look(s, 33).pbn, q);
	assert_int_equal(look(v, 33).pbn, pbn[11]);
	assert_int_equal(rec_of(tp, pbn[11]).refcount, 1);
	assert_int_equal(dd_map_make_exclusive(v, 33, &excl), 0);
	assert_false(excl);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_map_make_exclusive(v, 33, &excl), 0);
	assert_true(excl);
	assert_true(look(v, 33).excl);
	assert_true(rec_of(tp, pbn[11]).owned);
	dd_volume_close(s);
	dd_volume_close(v);
	sp_free(tp);
}

/* dedup_check of the committed state in windows of data blocks (a small
 * memory budget): each window walks the shared pages again. */
static u64 check_windowed(struct tpool *tp)
{
	struct dd_check_opts o = { .max_memory = 6 * 1024 };
	struct dd_check_result res;
	struct dd_bm_opts ro = { .read_only = true };
	struct dd_bm *bm;

	assert_int_equal(dd_bm_create(dd_ramdev_dev(tp->rd), &ro, &bm), 0);
	assert_int_equal(dd_check(bm, &o, &res), 0);
	dd_bm_drop(bm);
	return res.errors;
}

/* Every volume's mappings, as the test expects them. */
struct fam {
	struct tpool *tp;
	struct dd_volume *h[8];
	struct hmap want[8];
	bool live[8];
	u64 rng;
};

static void fam_compare(struct fam *f)
{
	struct dd_pool_stats st;
	struct hmap blocks;
	u64 i, k, p, mapped = 0;
	int id;

	hm_init(&blocks);
	for (id = 0; id < 8; id++) {
		if (!f->live[id])
			continue;
		assert_int_equal(dd_volume_mapped(f->h[id]), f->want[id].used);
		for (i = 0; hm_iter(&f->want[id], &i, &k, &p);) {
			struct dd_mapping m = look(f->h[id], k);

			assert_true(m.mapped);
			assert_int_equal(m.pbn, p);
			hm_put(&blocks, p, 1);
			mapped++;
		}
	}
	dd_pool_get_stats(f->tp->pool, &st);
	if (!st.nr_deleting) {
		assert_int_equal(st.data_used, blocks.used);	/* exactly what is mapped */
		assert_int_equal(st.mapped_blocks, mapped);
	}
	hm_free(&blocks);
}

static void fam_write(struct fam *f, int id, int n)
{
	u64 p, lbn;

	while (n--) {
		lbn = tr_below(&f->rng, 4) ? tr_below(&f->rng, 3000) : 100000 + tr_below(&f->rng, 50);
		assert_int_equal(tp_write(f->h[id], lbn, &p), 0);
		hm_put(&f->want[id], lbn, p);
	}
}

static void fam_snap(struct fam *f, int id, int origin)
{
	assert_int_equal(dd_snapshot_create(f->tp->pool, (u32)id, (u32)origin), 0);
	f->h[id] = vol_open(f->tp, (u32)id);
	f->live[id] = true;
	hm_init(&f->want[id]);
	hm_copy(&f->want[id], &f->want[origin]);
}

/*
 * A family: origin -> two clones -> a snapshot of a clone -> a snapshot of
 * that; each written after its snapshots, then deleted in a random order,
 * reclaimed, the check clean and the data used exact after every step.
 */
static void a_family_written_on_every_side_and_deleted_in_any_order(void **state)
{
	int order[5] = { 0, 1, 2, 3, 4 }, run, i, j;

	for (run = 0; run < 6; run++) {
		struct fam f = { .rng = 0x5a5a0000u + (u64)run };
		bool done;

		f.tp = sp_new();
		f.h[0] = vol_new(f.tp, 0);
		f.live[0] = true;
		hm_init(&f.want[0]);
		fam_write(&f, 0, 1500);
		fam_snap(&f, 1, 0);
		fam_write(&f, 0, 200);
		fam_snap(&f, 2, 0);
		fam_write(&f, 1, 300);
		fam_write(&f, 2, 100);
		assert_int_equal(dd_pool_commit(f.tp->pool), 0);
		fam_snap(&f, 3, 1);
		fam_write(&f, 3, 200);
		fam_write(&f, 1, 50);
		fam_snap(&f, 4, 3);
		fam_write(&f, 4, 100);
		fam_compare(&f);
		assert_int_equal(dd_pool_commit(f.tp->pool), 0);
		assert_int_equal(tp_check(f.tp, NULL), 0);
		assert_int_equal(check_windowed(f.tp), 0);
		/* Volume 0's id is the family's: no new volume may take it. */
		for (i = 4; i > 0; i--) {
			j = (int)tr_below(&f.rng, (u64)i + 1);
			int t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (i = 0; i < 5; i++) {
			int id = order[i];

			dd_volume_close(f.h[id]);
			f.live[id] = false;
			hm_free(&f.want[id]);
			assert_int_equal(dd_volume_delete(f.tp->pool, (u32)id), 0);
			assert_int_equal(dd_pool_reclaim(f.tp->pool, ~0ULL, &done), 0);
			assert_true(done);
			if (id == 0 && i < 4)
				assert_int_equal(dd_volume_create(f.tp->pool, 0), -EEXIST);
			fam_compare(&f);
			assert_int_equal(dd_pool_commit(f.tp->pool), 0);
			assert_int_equal(tp_check(f.tp, NULL), 0);
			/* the survivors still write */
			for (j = 0; j < 8; j++)
				if (f.live[j])
					fam_write(&f, j, 20);
			fam_compare(&f);
		}
		{
			struct dd_pool_stats st;

			dd_pool_get_stats(f.tp->pool, &st);
			assert_int_equal(st.data_used, 0);
			assert_int_equal(st.mapped_blocks, 0);
		}
		assert_int_equal(dd_volume_create(f.tp->pool, 0), 0);	/* free again */
		sp_free(f.tp);
	}
}

/*
 * Deleting a volume whose pages are all still shared lets go of the shared
 * root only: one small step, no data reference dropped, the other volume
 * intact.  Either side may go first.
 */
static void deleting_a_volume_that_shares_everything_is_one_small_step(void **state)
{
	int first;

	for (first = 1; first <= 2; first++) {
		struct tpool *tp = sp_new();
		struct dd_volume *v = vol_new(tp, 1), *other;
		struct dd_pool_stats st0, st;
		u64 i, pbn[NLBN];
		bool done;

		for (i = 0; i < NLBN; i++)
			assert_int_equal(tp_write(v, lbn_at(i), &pbn[i]), 0);
		assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
		dd_volume_close(v);
		assert_int_equal(dd_pool_commit(tp->pool), 0);
		dd_pool_get_stats(tp->pool, &st0);
		assert_int_equal(dd_volume_delete(tp->pool, (u32)first), 0);
		assert_int_equal(dd_pool_reclaim(tp->pool, 1, &done), 0);
		dd_pool_get_stats(tp->pool, &st);
		assert_int_equal(st.nr_deleting, 0);		/* gone after one step */
		assert_true(st.nr_dirty <= 8);
		assert_int_equal(st.data_used, st0.data_used);
		assert_int_equal(st.mapped_blocks, NLBN);
		assert_true(st.meta_used <= st0.meta_used);
		other = vol_open(tp, (u32)(3 - first));
		for (i = 0; i < NLBN; i++) {
			struct dd_mapping m = look(other, lbn_at(i));

			assert_true(m.mapped);
			assert_int_equal(m.pbn, pbn[i]);
			assert_false(m.excl);	/* detached in this transaction */
		}
		assert_int_equal(dd_pool_commit(tp->pool), 0);
		assert_int_equal(tp_check(tp, NULL), 0);
		/* After the commit the survivor's blocks are its own again. */
		assert_true(look(other, lbn_at(5)).excl);
		assert_int_equal(tp_write(other, lbn_at(5), NULL), 0);
		dd_volume_close(other);
		sp_free(tp);
	}
}

/* Volume 1 of a new sharing pool: LBNs 0..59, whose 60 blocks lie in 60
 * record leaves, and LBN 600000 (a tree of height 2); snapshot 2 of it,
 * committed.  *old: the block of LBN 6. */
static struct tpool *cow_setup(u64 *old)
{
	struct tpool *tp = sp_new();
	struct dd_volume *v = vol_new(tp, 1);
	u64 i, k, q;
	u32 got;

	for (k = 0; k < 60; k++) {
		assert_int_equal(tp_write(v, k, NULL), 0);
		assert_int_equal(dd_data_reserve_run(tp->pool, DD_RECS_PER_LEAF, &q, &got), 0);
		for (i = 0; i < got; i++)
			dd_data_unreserve(tp->pool, q + i);
	}
	assert_int_equal(tp_write(v, 600000, NULL), 0);
	*old = look(v, 6).pbn;
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	return tp;
}

/* New leaves of volume f until the open transaction holds 'target' dirty
 * blocks, or (target 0) until the engine commits: then the most it held. */
static u32 cow_fill(struct tpool *tp, struct dd_volume *f, u32 target)
{
	struct dd_pool_stats st, st0;
	u32 most = 0;
	u64 i;

	dd_pool_get_stats(tp->pool, &st0);
	for (i = 0;; i++) {
		dd_pool_get_stats(tp->pool, &st);
		if (st.txn != st0.txn || (target && st.nr_dirty >= target))
			return target ? st.nr_dirty : most;
		most = st.nr_dirty > most ? st.nr_dirty : most;
		assert_int_equal(tp_write(f, i * DD_MAP_ENTRIES, NULL), 0);
	}
}

/*
 * A write through a shared root copies the root, then the pages below it,
 * one step each, each with its worst case reserved; when the journal could
 * not hold the next step the engine commits between two steps.  That
 * commit must hold the volume's new root (its table entry): cut the power
 * after the write, wherever the journal filled, and the committed state
 * checks clean and reads right.  The leaf's 60 blocks lie in 60 record
 * leaves, so its step's worst case (80 blocks) is what does not fit.
 */
static void a_commit_between_copy_steps_holds_the_new_root(void **state)
{
	struct tpool *tp;
	struct dd_volume *v, *s, *f;
	u32 room, hit = 0, most;
	u64 k, old, p;

	/* How full the journal gets under these writes before a commit. */
	tp = cow_setup(&old);
	f = vol_new(tp, 9);
	most = cow_fill(tp, f, 0);
	dd_volume_close(f);
	tp_destroy(tp);
	free(tp);
	assert_true(most > 100);

	for (room = 0; room <= 90; room += 2) {
		struct dd_pool_stats st, st0;

		tp = cow_setup(&old);
		f = vol_new(tp, 9);
		s = vol_open(tp, 2);
		cow_fill(tp, f, most - room);
		dd_pool_get_stats(tp->pool, &st0);
		assert_int_equal(tp_write(s, 6, &p), 0);	/* copies root, node, leaf */
		dd_pool_get_stats(tp->pool, &st);
		if (st.txn != st0.txn)
			hit++;
		dd_volume_close(s);
		dd_volume_close(f);
		tp_crash(tp);
		assert_int_equal(tp_open(tp), 0);
		assert_int_equal(tp_check(tp, NULL), 0);
		s = vol_open(tp, 2);
		assert_int_equal(look(s, 6).pbn, old);		/* the write was not committed */
		for (k = 0; k < 60; k++)
			assert_true(look(s, k).mapped);
		dd_volume_close(s);
		v = vol_open(tp, 1);
		assert_int_equal(look(v, 6).pbn, old);
		dd_volume_close(v);
		tp_destroy(tp);
		free(tp);
	}
	assert_true(hit > 0);	/* some fill made the engine commit inside the write */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(page_references_round_trip_and_vanish_at_zero),
		cmocka_unit_test(the_check_proves_the_parents_of_every_page),
		cmocka_unit_test(an_unknown_incompatible_feature_refuses_the_pool),
		cmocka_unit_test(a_snapshot_shares_the_map_in_one_small_transaction),
		cmocka_unit_test(the_copy_mode_copies_on_a_pool_that_could_share),
		cmocka_unit_test(a_write_through_shared_pages_copies_them_and_keeps_the_sibling),
		cmocka_unit_test(a_family_written_on_every_side_and_deleted_in_any_order),
		cmocka_unit_test(deleting_a_volume_that_shares_everything_is_one_small_step),
		cmocka_unit_test(a_commit_between_copy_steps_holds_the_new_root),
	};

	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("snap", tests, NULL, NULL);
}
