// SPDX-License-Identifier: GPL-2.0
/*
 * Bugs the fuzz targets found, each kept as a unit test (run by
 * `make fuzz-smoke`, built with the fuzz objects).  A hang is turned into a
 * failure by an alarm.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "fuzz_common.h"

static void on_alarm(int sig)
{
	static const char msg[] = "not ok 99 - a fuzz regression test hung (the engine loops)\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* A formatted pool with volumes 1, 2 and 5, closed cleanly, whose last
 * transaction journalled nothing (so a poked block is not replayed over). */
static void three_volumes(struct tpool *tp)
{
	struct dd_volume *v;
	u32 ids[] = { 1, 2, 5 };
	u32 i;

	memset(tp, 0, sizeof(*tp));
	assert_int_equal(tp_create(tp, 512, 256, 128, NULL), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(dd_volume_create(tp->pool, ids[i]), 0);
		assert_int_equal(dd_volume_open(tp->pool, ids[i], &v), 0);
		assert_int_equal(tp_write(v, i, NULL), 0);
		dd_volume_close(v);
	}
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_pool_set_user_txn(tp->pool, 0, 1), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	tp_close(tp);
}

/* Rewrites field 'id' of volume-table slot 'slot' (checksum made valid). */
static void poke_volume_id(struct tpool *tp, u32 slot, u32 id)
{
	const struct dd_disk_superblock *sb0 = dd_ramdev_block(tp->rd, 0);
	const struct dd_disk_superblock *sb1 = dd_ramdev_block(tp->rd, 1);
	const struct dd_disk_superblock *sb =
		le64_to_cpu(sb0->hdr.txn) > le64_to_cpu(sb1->hdr.txn) ? sb0 : sb1;
	struct dd_disk_vols_leaf leaf;
	u64 b = le64_to_cpu(sb->vols.root);

	assert_int_equal(sb->vols.height, 0);	/* the root is the one leaf */
	memcpy(&leaf, dd_ramdev_block(tp->rd, b), sizeof(leaf));
	assert_true(le32_to_cpu(leaf.vol[slot].flags) & DD_VOL_VALID);
	leaf.vol[slot].id = cpu_to_le32(id);
	leaf.hdr.csum = cpu_to_le32(dd_walk_block_csum(&leaf, DD_BT_VOLS));
	dd_ramdev_poke(tp->rd, b, &leaf);
}

/*
 * Found by fuzz_open/fuzz_check (seed "volume table entry with a different
 * id"): dd_volume_next returned the id stored in the entry, and every
 * caller that steps on with id + 1 (pool open dropping incomplete
 * snapshots, reclaim, the checker's walk of the maps) looped forever when
 * an entry named a lower id than its slot.
 */
static void volume_entry_naming_a_lower_id_stops_open_and_check(void **state)
{
	struct dd_check_result res;
	struct tpool tp;

	(void)state;
	three_volumes(&tp);
	poke_volume_id(&tp, 2, 1);		/* slot 2 claims to be volume 1 */
	signal(SIGALRM, on_alarm);
	alarm(20);
	tp_quiet(true);
	assert_int_equal(tp_open(&tp), -EILSEQ);
	assert_true(fz_check(dd_ramdev_dev(tp.rd), 0, &res) > 0);
	assert_true(res.count[DD_CHK_VOLUME] > 0);
	alarm(0);
	tp_destroy(&tp);
}

/* The same for an id above the largest volume id: callers' id + 1 wrapped. */
static void volume_entry_naming_a_huge_id_stops_open_and_check(void **state)
{
	struct dd_check_result res;
	struct tpool tp;

	(void)state;
	three_volumes(&tp);
	poke_volume_id(&tp, 5, 0xffffffffu);
	signal(SIGALRM, on_alarm);
	alarm(20);
	tp_quiet(true);
	assert_int_equal(tp_open(&tp), -EILSEQ);
	assert_true(fz_check(dd_ramdev_dev(tp.rd), 0, &res) > 0);
	assert_true(res.count[DD_CHK_VOLUME] > 0);
	alarm(0);
	tp_destroy(&tp);
}

/*
 * Found by fuzz_open (a write fault during dd_pool_abort's journal replay):
 * when dd_pool_abort() failed, the open transaction was gone but the in-core
 * state (roots, counters, volume handles) was still the aborted one and the
 * pool stayed read-write; the next commit wrote a superblock that disagreed
 * with the metadata.  Fixed: a failed abort puts the pool in fail mode.
 */
static void failed_abort_leaves_the_pool_writable_and_the_next_commit_corrupts(void **state)
{
	struct dd_volume *v;
	struct dd_fault f;
	struct tpool tp;
	u64 i;
	int r;

	(void)state;
	memset(&tp, 0, sizeof(tp));
	tp_quiet(true);
	assert_int_equal(tp_create(&tp, 512, 256, 128, NULL), 0);
	assert_int_equal(dd_volume_create(tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, i, NULL), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, 1000 + i, NULL), 0);	/* to be aborted */

	memset(&f, 0, sizeof(f));
	f.fail_write_at = dd_ramdev_nr_writes(tp.rd) + 1;	/* the replay's first write */
	dd_ramdev_set_fault(tp.rd, &f);
	r = dd_pool_abort(tp.pool);
	assert_int_equal(r, -EIO);
	/* Expected: a failed abort leaves no writable pool behind. */
	if (dd_pool_mode(tp.pool) == DD_MODE_RW) {
		for (i = 0; i < 10; i++)
			tp_write(v, 2000 + i, NULL);
		dd_pool_commit(tp.pool);
	}
	dd_volume_close(v);
	tp_close(&tp);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/*
 * Found by fuzz_open (timeout in dd_pool_reclaim): reclaim retried a deleted
 * volume until its map was empty, but a map leaf whose header counts more
 * entries than it holds is never freed, so the loop made no progress and
 * never ended (in the kernel: the pool worker would spin).  Fixed: a map
 * that is not empty after every leaf was visited is a metadata error.
 */
static void reclaim_of_a_map_leaf_with_a_wrong_count_terminates(void **state)
{
	struct dd_disk_map_leaf leaf;
	struct dd_walk_root root;
	struct dd_volume *v;
	struct tpool tp;
	bool done = false;
	u64 b;
	int r;

	(void)state;
	memset(&tp, 0, sizeof(tp));
	assert_int_equal(tp_create(&tp, 512, 256, 128, NULL), 0);
	assert_int_equal(dd_volume_create(tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	assert_int_equal(tp_write(v, 0, NULL), 0);
	assert_int_equal(tp_write(v, 1, NULL), 0);
	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAP, 1, &root), 0);
	assert_int_equal(root.height, 0);		/* the root is the leaf */
	b = root.block;
	dd_volume_close(v);
	assert_int_equal(dd_volume_delete(tp.pool, 1), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(dd_pool_set_user_txn(tp.pool, 0, 1), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);	/* journals nothing */
	tp_close(&tp);

	memcpy(&leaf, dd_ramdev_block(tp.rd, b), sizeof(leaf));
	assert_int_equal(le16_to_cpu(leaf.hdr.count), 2);
	leaf.hdr.count = cpu_to_le16(3);
	leaf.hdr.csum = cpu_to_le32(dd_walk_block_csum(&leaf, DD_BT_MAP));
	dd_ramdev_poke(tp.rd, b, &leaf);

	tp_quiet(true);
	assert_int_equal(tp_open(&tp), 0);
	signal(SIGALRM, on_alarm);
	alarm(20);
	r = dd_pool_reclaim(tp.pool, 1000, &done);
	alarm(0);
	/* Any result will do (an error is the honest one): returning is what matters. */
	(void)r;
	tp_destroy(&tp);
}

int main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(volume_entry_naming_a_lower_id_stops_open_and_check),
		cmocka_unit_test(volume_entry_naming_a_huge_id_stops_open_and_check),
		cmocka_unit_test(failed_abort_leaves_the_pool_writable_and_the_next_commit_corrupts),
		cmocka_unit_test(reclaim_of_a_map_leaf_with_a_wrong_count_terminates),
	};

	return cmocka_run_group_tests_name("fuzz regressions", fixed, NULL, NULL);
}
