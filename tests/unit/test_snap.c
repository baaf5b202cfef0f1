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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(page_references_round_trip_and_vanish_at_zero),
		cmocka_unit_test(the_check_proves_the_parents_of_every_page),
		cmocka_unit_test(an_unknown_incompatible_feature_refuses_the_pool),
	};

	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("snap", tests, NULL, NULL);
}
