// SPDX-License-Identifier: GPL-2.0
/*
 * Behaviour of the metadata engine, one rule per test, on a RAM device.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include <dm-dedup/format.h>

#define META 2048
#define DATA 100000

static struct tpool *tp_new(u64 meta, u64 data)
{
	struct tpool *tp = calloc(1, sizeof(*tp));

	assert_non_null(tp);
	assert_int_equal(tp_create(tp, meta, data, 0, NULL), 0);
	return tp;
}

static void tp_free(struct tpool *tp)
{
	assert_int_equal(tp_check(tp, NULL), 0);
	tp_destroy(tp);
	free(tp);
}

static struct dd_volume *vol_new(struct tpool *tp, u32 id)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_create(tp->pool, id), 0);
	assert_int_equal(dd_volume_open(tp->pool, id, &v), 0);
	return v;
}

static void lookup(struct dd_volume *v, u64 lbn, struct dd_mapping *m)
{
	assert_int_equal(dd_map_lookup(v, lbn, 0, m), 0);
}

static void crc32c_matches_the_standard_check_value(void **state)
{
	u8 buf[4096];
	u64 s = 7;
	int i;

	assert_int_equal(dd_crc32c(~0u, "123456789", 9) ^ ~0u, 0xe3069283u);
	for (i = 0; i < 4096; i++)
		buf[i] = (u8)tr_next(&s);
	for (i = 0; i < 4096; i += 97)
		assert_int_equal(dd_crc32c(0x1234, buf, (size_t)i),
				 dd_crc32c_portable(0x1234, buf, (size_t)i));
}

static void format_then_open_reports_an_empty_pool(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_pool_stats st;

	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.txn, 1);
	assert_int_equal(st.nr_data_blocks, DATA);
	assert_int_equal(st.data_used, 0);
	assert_int_equal(st.data_free, DATA);
	assert_int_equal(st.nr_volumes, 0);
	assert_int_equal(st.mode, DD_MODE_RW);
	assert_false(st.needs_check);
	tp_free(tp);
}

static void format_refuses_a_metadata_device_below_the_minimum(void **state)
{
	struct tpool tp = { 0 };

	assert_int_equal(tp_create(&tp, DD_META_MIN_BLOCKS - 1, DATA, 0, NULL), -ENOSPC);
	tp_destroy(&tp);
}

static void probe_tells_zeroed_pool_and_foreign_apart(void **state)
{
	struct dd_ramdev *rd = dd_ramdev_create(META);
	struct dd_bm_opts o = { 0 };
	struct dd_format_params fp = { .nr_data_blocks = 10, .data_block_sectors = 8 };
	enum dd_probe p;
	struct dd_bm *bm;
	u8 junk[DD_BLOCK_SIZE];

	assert_int_equal(dd_bm_create(dd_ramdev_dev(rd), &o, &bm), 0);
	assert_int_equal(dd_pool_probe(bm, &p), 0);
	assert_int_equal(p, DD_PROBE_ZEROED);
	assert_int_equal(dd_pool_format(bm, &fp), 0);
	assert_int_equal(dd_pool_probe(bm, &p), 0);
	assert_int_equal(p, DD_PROBE_POOL);
	dd_bm_destroy(bm);
	/* Superblocks wiped but the journal written: never taken for blank. */
	{
		struct tpool tp = { 0 };
		struct dd_volume *v;
		u8 zero[DD_BLOCK_SIZE] = { 0 };

		assert_int_equal(tp_create(&tp, META, 100, 0, NULL), 0);
		v = vol_new(&tp, 1);
		assert_int_equal(tp_write(v, 0, NULL), 0);
		assert_int_equal(dd_pool_commit(tp.pool), 0);
		dd_volume_close(v);
		tp_close(&tp);
		dd_ramdev_poke(tp.rd, 0, zero);
		dd_ramdev_poke(tp.rd, 1, zero);
		assert_int_equal(dd_bm_create(dd_ramdev_dev(tp.rd), &o, &bm), 0);
		assert_int_equal(dd_pool_probe(bm, &p), 0);
		assert_int_equal(p, DD_PROBE_POOL);
		dd_bm_destroy(bm);
		tp_destroy(&tp);
	}
	memset(junk, 0xab, sizeof(junk));
	dd_ramdev_poke(rd, 0, junk);
	dd_ramdev_poke(rd, 1, junk);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(rd), &o, &bm), 0);
	assert_int_equal(dd_pool_probe(bm, &p), 0);
	assert_int_equal(p, DD_PROBE_FOREIGN);
	dd_bm_destroy(bm);
	dd_ramdev_free(rd);
}

static void first_write_maps_an_exclusive_block(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 3);
	struct dd_mapping m;
	struct dd_record rec;
	u64 pbn;

	lookup(v, 42, &m);
	assert_false(m.mapped);
	assert_int_equal(tp_write(v, 42, &pbn), 0);
	lookup(v, 42, &m);
	assert_true(m.mapped);
	assert_true(m.excl);
	assert_int_equal(m.pbn, pbn);
	assert_int_equal(dd_record_get(tp->pool, pbn, &rec), 0);
	assert_int_equal(rec.refcount, 1);
	assert_true(rec.owned);
	assert_int_equal(rec.owner_vol, 3);
	assert_int_equal(rec.owner_lbn, 42);
	dd_volume_close(v);
	tp_free(tp);
}

static void remapping_an_lbn_frees_its_old_block(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	struct dd_record rec;
	u64 p1, p2;

	assert_int_equal(tp_write(v, 7, &p1), 0);
	assert_int_equal(tp_write(v, 7, &p2), 0);
	assert_int_not_equal(p1, p2);
	assert_int_equal(dd_record_get(tp->pool, p1, &rec), 0);
	assert_int_equal(rec.refcount, 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.data_used, 1);
	assert_int_equal(st.mapped_blocks, 1);
	assert_int_equal(st.data_pending_free, 1);
	dd_volume_close(v);
	tp_free(tp);
}

static void block_freed_in_open_txn_is_not_reused_before_commit(void **state)
{
	struct tpool *tp = tp_new(META, 64);
	struct dd_volume *v = vol_new(tp, 1);
	u64 p, old, i;

	assert_int_equal(tp_write(v, 0, &old), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_write(v, 0, &p), 0);	/* old is freed */
	/* Fill the device: every other block gets used, never 'old'. */
	for (i = 1; i < 63; i++) {
		assert_int_equal(tp_write(v, i, &p), 0);
		assert_int_not_equal(p, old);
	}
	assert_int_equal(dd_data_reserve(tp->pool, &p), -ENOSPC);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_data_reserve(tp->pool, &p), 0);
	assert_int_equal(p, old);
	dd_data_unreserve(tp->pool, p);
	dd_volume_close(v);
	tp_free(tp);
}

/*
 * The review's data loss: with one free block left, volume 1 takes it and a
 * zero write unmaps it again; volume 2's next write must not get the same
 * block before the commit (the commit passes it down as a discard, and a bio
 * that looked up volume 1's mapping may still be in flight).
 */
static void block_allocated_and_freed_in_one_txn_is_not_reused_before_commit(void **state)
{
	struct tpool *tp = tp_new(META, 8);
	struct dd_volume *v1 = vol_new(tp, 1), *v2 = vol_new(tp, 2);
	struct dd_pool_stats st;
	u64 p, last, i;

	for (i = 0; i < 7; i++)
		assert_int_equal(tp_write(v1, i, &p), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_write(v1, 100, &last), 0);
	assert_int_equal(dd_map_unmap(v1, 100, 1, DD_UNMAP_ZERO), 0);
	assert_int_equal(dd_data_reserve(tp->pool, &p), -ENOSPC);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.data_free, 0);
	assert_int_equal(st.data_pending_free, 1);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_write(v2, 5, &p), 0);
	assert_int_equal(p, last);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.data_free, 0);
	assert_int_equal(st.data_pending_free, 0);
	dd_volume_close(v1);
	dd_volume_close(v2);
	tp_free(tp);
}

/* The same in a bitmap leaf created in the open transaction (no committed image). */
static void block_freed_in_a_new_bitmap_leaf_is_not_reused_before_commit(void **state)
{
	struct tpool *tp = tp_new(META, 2);
	struct dd_volume *v = vol_new(tp, 1);
	u64 p0, p1, p;

	assert_int_equal(tp_write(v, 0, &p0), 0);
	assert_int_equal(tp_write(v, 1, &p1), 0);
	assert_int_equal(dd_map_unmap(v, 0, 1, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_data_reserve(tp->pool, &p), -ENOSPC);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_data_reserve(tp->pool, &p), 0);
	assert_int_equal(p, p0);
	dd_data_unreserve(tp->pool, p);
	dd_volume_close(v);
	tp_free(tp);
}

/* A metadata error that drops changes makes the pool say so until reopened:
 * writes reported complete are gone, no flush may succeed after it. */
static void an_abort_that_drops_changes_is_remembered_until_reopen(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	u64 p;

	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_pool_abort(tp->pool), 0);	/* nothing to drop */
	dd_pool_get_stats(tp->pool, &st);
	assert_false(st.dropped_changes);
	assert_int_equal(tp_write(v, 3, &p), 0);
	dd_volume_close(v);
	tp_quiet(true);
	dd_pool_metadata_error(tp->pool, -EIO, "a test");
	tp_quiet(false);
	dd_pool_get_stats(tp->pool, &st);
	assert_true(st.dropped_changes);
	assert_int_equal(st.mode, DD_MODE_RO);
	tp_close(tp);
	assert_int_equal(tp_open(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_false(st.dropped_changes);
	assert_int_equal(dd_pool_clear_needs_check(tp->pool), 0);
	tp_free(tp);
}

static void reserved_blocks_are_not_handed_out_twice(void **state)
{
	struct tpool *tp = tp_new(META, 100);
	struct hmap seen;
	u64 p, i;

	hm_init(&seen);
	for (i = 0; i < 100; i++) {
		assert_int_equal(dd_data_reserve(tp->pool, &p), 0);
		assert_false(hm_get(&seen, p, NULL));
		hm_put(&seen, p, 1);
	}
	assert_int_equal(dd_data_reserve(tp->pool, &p), -ENOSPC);
	dd_data_unreserve(tp->pool, 17);
	assert_int_equal(dd_data_reserve(tp->pool, &p), 0);
	assert_int_equal(p, 17);
	hm_free(&seen);
	tp_free(tp);
}

/* Releases the reservations of the run [p, p + n). */
static void unreserve_run(struct tpool *tp, u64 p, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		dd_data_unreserve(tp->pool, p + i);
}

/*
 * A run reservation takes consecutive blocks from the first free one and
 * stops before any block a single reservation would refuse: in use, freed
 * in the open transaction, reserved by a write in flight, or past the end.
 */
static void a_run_reservation_stops_where_a_block_may_not_be_used(void **state)
{
	struct tpool *tp = tp_new(META, 12), *small = tp_new(META, 8), *big;
	struct dd_volume *v = vol_new(tp, 1);
	u64 p, q, i;
	u32 got;

	assert_int_equal(dd_data_reserve_run(tp->pool, 0, &p, &got), -EINVAL);
	/* The device's end. */
	assert_int_equal(dd_data_reserve_run(small->pool, 100, &p, &got), 0);
	assert_int_equal(p, 0);
	assert_int_equal(got, 8);
	assert_int_equal(dd_data_reserve_run(small->pool, 1, &q, &got), -ENOSPC);
	unreserve_run(small, p, 8);

	/* Every block used (LBN i on block i), then 1-3, 5-6 and 8-9 freed
	 * and committed, and 7 freed in the open transaction. */
	for (i = 0; i < 12; i++) {
		assert_int_equal(tp_write(v, i, &q), 0);
		assert_int_equal(q, i);
	}
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_map_unmap(v, 1, 3, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_map_unmap(v, 5, 2, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_map_unmap(v, 8, 2, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_map_unmap(v, 7, 1, DD_UNMAP_DISCARD), 0);

	/* Blocks 1 and 2 reserved one by one, 1 given back: 2 is held. */
	assert_int_equal(dd_data_reserve(tp->pool, &q), 0);
	assert_int_equal(q, 1);
	assert_int_equal(dd_data_reserve(tp->pool, &q), 0);
	assert_int_equal(q, 2);
	dd_data_unreserve(tp->pool, 1);
	/* From the cursor (3): the run ends before block 4, mapped. */
	assert_int_equal(dd_data_reserve_run(tp->pool, 10, &p, &got), 0);
	assert_int_equal(p, 3);
	assert_int_equal(got, 1);
	unreserve_run(tp, p, got);
	/* 5 and 6, then 7 (freed in the open transaction) ends it. */
	assert_int_equal(dd_data_reserve_run(tp->pool, 10, &p, &got), 0);
	assert_int_equal(p, 5);
	assert_int_equal(got, 2);
	unreserve_run(tp, p, got);
	/* 8 and 9 (7 skipped), then 10, mapped. */
	assert_int_equal(dd_data_reserve_run(tp->pool, 10, &p, &got), 0);
	assert_int_equal(p, 8);
	assert_int_equal(got, 2);
	unreserve_run(tp, p, got);
	/* Wrapping to 1, then 2 (reserved) ends it. */
	assert_int_equal(dd_data_reserve_run(tp->pool, 10, &p, &got), 0);
	assert_int_equal(p, 1);
	assert_int_equal(got, 1);
	unreserve_run(tp, p, got);
	dd_data_unreserve(tp->pool, 2);
	/* want caps the run. */
	assert_int_equal(dd_data_reserve_run(tp->pool, 2, &p, &got), 0);
	assert_int_equal(p, 2);
	assert_int_equal(got, 2);
	unreserve_run(tp, p, got);

	/* Across a bitmap leaf (32512 blocks); a tail given back brings the
	 * cursor back to it. */
	big = tp_new(META, 33000);
	assert_int_equal(dd_data_reserve_run(big->pool, 32600, &p, &got), 0);
	assert_int_equal(p, 0);
	assert_int_equal(got, 32600);
	dd_data_unreserve_run(big->pool, 100, 32500);
	assert_int_equal(dd_data_reserve(big->pool, &q), 0);
	assert_int_equal(q, 100);
	dd_data_unreserve(big->pool, q);
	unreserve_run(big, 0, 100);

	dd_volume_close(v);
	tp_free(tp);
	tp_free(small);
	tp_free(big);
}

/*
 * A run insert maps lbn + i to pbn + i across map and refs leaf boundaries,
 * over unmapped, exclusive and shared LBNs alike (the old blocks lose a
 * reference each), and refuses a run with a block that is not reserved
 * before changing anything.
 */
static void a_run_insert_maps_every_block_across_leaves(void **state)
{
	struct tpool *tp = tp_new(META, 4096);
	struct dd_volume *v = vol_new(tp, 1), *snap;
	struct dd_pool_stats st, st0;
	struct dd_mapping m;
	u64 p, q, excl_old, shared_old, i;
	u32 got, done;

	assert_int_equal(tp_write(v, 505, &excl_old), 0);
	assert_int_equal(tp_write(v, 510, &shared_old), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_volume_open(tp->pool, 2, &snap), 0);
	assert_int_equal(tp_write(snap, 505, &q), 0);	/* 505 is volume 1's alone again */
	assert_int_equal(dd_map_make_exclusive(v, 505, &(bool){ false }), 0);
	dd_pool_get_stats(tp->pool, &st0);

	assert_int_equal(dd_data_reserve_run(tp->pool, 300, &p, &got), 0);
	assert_int_equal(got, 300);
	assert_true(p % DD_RECS_PER_LEAF + 300 > DD_RECS_PER_LEAF);	/* crosses a refs leaf */
	/* One block not reserved: refused, nothing done. */
	dd_data_unreserve(tp->pool, p + 299);
	assert_int_equal(dd_map_insert_run(v, 400, p, 300, &done), -EINVAL);
	assert_int_equal(done, 0);
	assert_int_equal(dd_map_insert_run(v, 400, p, 0, &done), -EINVAL);
	lookup(v, 400, &m);
	assert_false(m.mapped);
	/* LBNs 400..698: across the map leaf at 508, over 505 and 510. */
	assert_int_equal(dd_map_insert_run(v, 400, p, 299, &done), 0);
	assert_int_equal(done, 299);
	for (i = 0; i < 299; i++) {
		lookup(v, 400 + i, &m);
		assert_true(m.mapped && m.excl);
		assert_int_equal(m.pbn, p + i);
	}
	lookup(snap, 510, &m);
	assert_int_equal(m.pbn, shared_old);	/* the snapshot keeps its block */
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.data_used, st0.data_used + 299 - 1);	/* 505's old block freed */
	assert_int_equal(st.mapped_blocks, st0.mapped_blocks + 299 - 2);
	assert_int_equal(st.cow_splits, st0.cow_splits + 1);		/* 510 */
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(snap);
	dd_volume_close(v);
	tp_free(tp);	/* dedup_check: counts, owners, bitmaps */
}

static void snapshot_shares_every_block_and_clears_exclusive_bits(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1), *s;
	struct dd_pool_stats st;
	struct dd_mapping m, ms;
	struct dd_record rec;
	u64 i;

	for (i = 0; i < 2000; i++)
		assert_int_equal(tp_write(v, i * 3, NULL), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_volume_open(tp->pool, 2, &s), 0);
	for (i = 0; i < 2000; i++) {
		lookup(v, i * 3, &m);
		lookup(s, i * 3, &ms);
		assert_true(m.mapped && ms.mapped);
		assert_int_equal(m.pbn, ms.pbn);
		assert_false(m.excl);
		assert_false(ms.excl);
		assert_int_equal(dd_record_get(tp->pool, m.pbn, &rec), 0);
		assert_int_equal(rec.refcount, 2);
		assert_false(rec.owned);
	}
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.shared_blocks, 2000);
	assert_int_equal(st.mapped_blocks, 4000);
	assert_int_equal(st.data_used, 2000);
	assert_int_equal(st.nr_volumes, 2);
	dd_volume_close(s);
	dd_volume_close(v);
	tp_free(tp);
}

static void write_to_shared_block_splits_and_keeps_the_sibling(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1), *s;
	struct dd_pool_stats st;
	struct dd_mapping m, ms;
	u64 p;

	assert_int_equal(tp_write(v, 5, NULL), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_volume_open(tp->pool, 2, &s), 0);
	lookup(v, 5, &m);
	assert_int_equal(tp_write(s, 5, &p), 0);
	lookup(s, 5, &ms);
	assert_int_equal(ms.pbn, p);
	assert_true(ms.excl);
	lookup(v, 5, &ms);
	assert_int_equal(ms.pbn, m.pbn);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.cow_splits, 1);
	assert_int_equal(st.shared_blocks, 0);
	dd_volume_close(s);
	dd_volume_close(v);
	tp_free(tp);
}

/*
 * The rule that keeps one guest's write out of another guest's block: a
 * block that became exclusive only in the open transaction (its sibling was
 * just split away) is still shared in the committed state and must not be
 * written in place until the commit.
 */
static void block_exclusive_only_in_open_txn_is_not_written_in_place(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1), *s;
	struct dd_mapping m;
	bool excl;

	assert_int_equal(tp_write(v, 9, NULL), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_volume_open(tp->pool, 2, &s), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_write(s, 9, NULL), 0);	/* split: origin's block is now refcount 1 */
	lookup(v, 9, &m);
	assert_false(m.excl);
	assert_int_equal(dd_map_make_exclusive(v, 9, &excl), 0);
	assert_false(excl);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_map_make_exclusive(v, 9, &excl), 0);
	assert_true(excl);
	lookup(v, 9, &m);
	assert_true(m.excl);
	dd_volume_close(s);
	dd_volume_close(v);
	tp_free(tp);
}

static void block_exclusive_in_committed_state_is_made_exclusive_at_once(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_record rec;
	struct dd_mapping m;
	bool excl;

	assert_int_equal(tp_write(v, 9, NULL), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_volume_delete(tp->pool, 2), 0);
	bool done;
	assert_int_equal(dd_pool_reclaim(tp->pool, ~0ULL, &done), 0);
	assert_true(done);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	lookup(v, 9, &m);
	assert_false(m.excl);				/* refcount back to 1, owner unknown */
	assert_int_equal(dd_record_get(tp->pool, m.pbn, &rec), 0);
	assert_int_equal(rec.refcount, 1);
	assert_false(rec.owned);
	assert_int_equal(dd_map_make_exclusive(v, 9, &excl), 0);
	assert_true(excl);
	assert_int_equal(dd_record_get(tp->pool, m.pbn, &rec), 0);
	assert_true(rec.owned);
	assert_int_equal(rec.owner_vol, 1);
	assert_int_equal(rec.owner_lbn, 9);
	dd_volume_close(v);
	tp_free(tp);
}

static void unmap_range_drops_references_and_counts_discards(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	struct dd_mapping m;
	u64 i;

	for (i = 0; i < 3000; i++)
		assert_int_equal(tp_write(v, i, NULL), 0);
	assert_int_equal(dd_map_unmap(v, 100, 1000, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_map_unmap(v, 2000, 1, DD_UNMAP_ZERO), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.discarded, 1000);
	assert_int_equal(st.zero_elided, 1);
	assert_int_equal(st.mapped_blocks, 1999);
	assert_int_equal(st.data_used, 1999);
	lookup(v, 99, &m);
	assert_true(m.mapped);
	lookup(v, 100, &m);
	assert_false(m.mapped);
	lookup(v, 1099, &m);
	assert_false(m.mapped);
	lookup(v, 1100, &m);
	assert_true(m.mapped);
	assert_int_equal(dd_volume_mapped(v), 1999);
	dd_volume_close(v);
	tp_free(tp);
}

static void unmap_of_a_huge_sparse_range_is_cheap(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	u64 top;

	assert_int_equal(tp_write(v, 0, NULL), 0);
	assert_int_equal(tp_write(v, 1ULL << 40, NULL), 0);	/* grows the tree */
	assert_int_equal(dd_volume_highest_lbn(v, &top), 0);
	assert_int_equal(top, 1ULL << 40);
	assert_int_equal(dd_map_unmap(v, 1, DD_MAX_ADDR, DD_UNMAP_DISCARD), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.mapped_blocks, 1);
	assert_int_equal(dd_volume_highest_lbn(v, &top), 0);
	assert_int_equal(top, 0);
	dd_volume_close(v);
	tp_free(tp);
}

static void deleting_a_volume_frees_its_blocks_after_reclaim(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 4);
	struct dd_pool_stats st;
	bool done;
	u64 i;

	for (i = 0; i < 5000; i++)
		assert_int_equal(tp_write(v, i * 11, NULL), 0);
	assert_int_equal(dd_volume_delete(tp->pool, 4), -EBUSY);
	dd_volume_close(v);
	assert_int_equal(dd_volume_delete(tp->pool, 4), 0);
	assert_int_equal(dd_volume_open(tp->pool, 4, &v), -ENOENT);
	assert_int_equal(dd_volume_create(tp->pool, 4), -EEXIST);	/* id busy until freed */
	assert_int_equal(dd_pool_reclaim(tp->pool, 100, &done), 0);
	assert_false(done);
	assert_int_equal(dd_pool_reclaim(tp->pool, ~0ULL, &done), 0);
	assert_true(done);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.data_used, 0);
	assert_int_equal(st.mapped_blocks, 0);
	assert_int_equal(st.nr_volumes, 0);
	assert_int_equal(dd_volume_create(tp->pool, 4), 0);
	tp_free(tp);
}

static void reopen_keeps_the_committed_state_and_drops_the_rest(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	struct dd_mapping m;
	u64 p;

	assert_int_equal(tp_write(v, 1, &p), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_write(v, 2, NULL), 0);
	assert_int_equal(dd_volume_create(tp->pool, 2), 0);
	dd_volume_close(v);
	assert_int_equal(tp_reopen(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.nr_volumes, 1);
	assert_int_equal(st.data_used, 1);
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	lookup(v, 1, &m);
	assert_true(m.mapped && m.excl);
	assert_int_equal(m.pbn, p);
	lookup(v, 2, &m);
	assert_false(m.mapped);
	dd_volume_close(v);
	tp_free(tp);
}

static void full_data_device_returns_enospc_and_growing_it_helps(void **state)
{
	struct tpool *tp = tp_new(META, 10);
	struct dd_volume *v = vol_new(tp, 1);
	u64 i, p;

	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, i, NULL), 0);
	assert_int_equal(dd_data_reserve(tp->pool, &p), -ENOSPC);
	assert_int_equal(dd_pool_resize_data(tp->pool, 5), -EINVAL);
	assert_int_equal(dd_pool_resize_data(tp->pool, 40000), 0);
	assert_int_equal(tp_write(v, 10, &p), 0);
	assert_true(p >= 10);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(v);
	assert_int_equal(tp_reopen(tp), 0);
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	for (i = 11; i < 20; i++)
		assert_int_equal(tp_write(v, 40000 + i, NULL), 0);
	dd_volume_close(v);
	tp_free(tp);
}

/*
 * The data device of these two (2^20 blocks) only has to outlast the metadata
 * (a few hundred map leaves, fewer than 2,000 writes); at 2^30 blocks the check
 * at tp_free, which walks every data block, took 96 and 100 s of the 200 s that
 * test_engine ran under ASan.
 */
static void full_metadata_device_refuses_before_changing_anything(void **state)
{
	struct tpool *tp = tp_new(DD_META_MIN_BLOCKS, 1ULL << 20);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	u64 i;
	int r = 0;

	/* Scattered LBNs: one map leaf each, until metadata runs out. */
	for (i = 0; i < 100000 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7, NULL);
	assert_int_equal(r, -ENOSPC);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.mode, DD_MODE_RW);
	assert_int_equal(st.mapped_blocks, i - 1);
	/* the metadata ran out, not the data space */
	assert_true(st.data_used + 1000 < st.nr_data_blocks);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(v);
	tp_free(tp);
}

/*
 * Freeing needs no free metadata block: with the metadata device full, a
 * discard, a delete and its reclaim still work (else nothing could make
 * room), and a failed snapshot's partial copy is given back.
 */
static void a_full_metadata_device_can_still_unmap_delete_and_reclaim(void **state)
{
	struct tpool *tp = tp_new(DD_META_MIN_BLOCKS, 1ULL << 20);
	struct dd_volume *v = vol_new(tp, 1), *w;
	struct dd_pool_stats st;
	bool done;
	u64 i, n;
	int r = 0;

	/* An origin of n map leaves, with room for about half a copy of it. */
	for (n = 0; n < 100000; n++) {
		assert_int_equal(tp_write(v, n * DD_MAP_ENTRIES * 7, NULL), 0);
		dd_pool_get_stats(tp->pool, &st);
		if (st.nr_meta_blocks - st.meta_used < n / 2 + 2 * DD_OP_MAX_DIRTY)
			break;
	}
	n++;
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	/* The snapshot runs out of space and hands its partial copy to reclaim. */
	dd_volume_close(v);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), -ENOSPC);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.nr_deleting, 1);
	assert_int_equal(dd_pool_reclaim(tp->pool, ~0ULL, &done), 0);
	assert_true(done);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.nr_deleting, 0);
	assert_int_equal(st.shared_blocks, 0);
	assert_int_equal(st.mapped_blocks, n);
	/* Fill the metadata device, then a discard of half the volume works. */
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	for (i = n, r = 0; i < 100000 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7, NULL);
	assert_int_equal(r, -ENOSPC);
	dd_pool_get_stats(tp->pool, &st);
	assert_true(st.data_used + 1000 < st.nr_data_blocks);	/* metadata, not data, ran out */
	n = i - 1;
	assert_int_equal(dd_map_unmap(v, 0, (n / 2) * DD_MAP_ENTRIES * 7, DD_UNMAP_DISCARD), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	/* Refill, then delete the whole volume. */
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	for (i = 0, r = 0; i < 100000 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7 + 1, NULL);
	assert_int_equal(r, -ENOSPC);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(dd_volume_delete(tp->pool, 1), 0);
	assert_int_equal(dd_pool_reclaim(tp->pool, ~0ULL, &done), 0);
	assert_true(done);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.mapped_blocks, 0);
	assert_int_equal(st.data_used, 0);
	assert_int_equal(dd_volume_create(tp->pool, 1), 0);
	assert_int_equal(dd_volume_open(tp->pool, 1, &w), 0);
	assert_int_equal(tp_write(w, 5, NULL), 0);
	dd_volume_close(w);
	tp_free(tp);
}

/* Scattered LBNs, one map leaf each, until the metadata space runs out. */
static u64 fill_metadata(struct dd_volume *v, u64 from)
{
	u64 i;
	int r = 0;

	for (i = from; i < from + 1000000 && !r; i++)
		r = tp_write(v, i * DD_MAP_ENTRIES * 7, NULL);
	assert_int_equal(r, -ENOSPC);
	return i - 1;	/* LBNs [from, i - 1) written */
}

static void expect_mapped(struct tpool *tp, u32 id, u64 from, u64 to)
{
	struct dd_volume *v;
	struct dd_mapping m;
	u64 i;

	assert_int_equal(dd_volume_open(tp->pool, id, &v), 0);
	for (i = from; i < to; i++) {
		lookup(v, i * DD_MAP_ENTRIES * 7, &m);
		assert_true(m.mapped);
	}
	lookup(v, to * DD_MAP_ENTRIES * 7, &m);
	assert_false(m.mapped);
	dd_volume_close(v);
}

/*
 * A full metadata device grown at its end (lvextend) gives the pool room
 * at once; what was written before stays, what is written after lands in
 * the new blocks, and both survive a reopen and the check.  Growth beyond
 * the bitmap pages reserved at format is refused with -EFBIG.
 */
static void the_metadata_space_grows_in_place(void **state)
{
	struct tpool *tp = tp_new(DD_META_MIN_BLOCKS, 1ULL << 20);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_pool_stats st;
	u64 n1, n2, max, grown = DD_BITS_PER_BITMAP + 700;

	n1 = fill_metadata(v, 0);
	dd_pool_get_stats(tp->pool, &st);
	max = st.meta_max_blocks;
	/* 1/64 of the minimum device: 8 pages */
	assert_int_equal(max, 8ULL * DD_BITS_PER_BITMAP);
	assert_int_equal(st.nr_meta_blocks, DD_META_MIN_BLOCKS);
	/* the device has not grown yet */
	assert_int_equal(dd_pool_resize_meta(tp->pool, DD_META_MIN_BLOCKS + 1), -EINVAL);
	assert_int_equal(dd_pool_resize_meta(tp->pool, DD_META_MIN_BLOCKS - 1), -EINVAL);
	assert_int_equal(dd_ramdev_grow(tp->rd, max + 1000), 0);
	assert_int_equal(dd_pool_resize_meta(tp->pool, max + 1), -EFBIG);
	/* the rest of the first page and part of the second */
	assert_int_equal(dd_pool_resize_meta(tp->pool, grown), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.nr_meta_blocks, grown);
	assert_int_equal(st.mode, DD_MODE_RW);
	n2 = n1 + 3000;
	for (u64 i = n1; i < n2; i++)
		assert_int_equal(tp_write(v, i * DD_MAP_ENTRIES * 7, NULL), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(v);
	assert_int_equal(tp_reopen(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.nr_meta_blocks, grown);
	expect_mapped(tp, 1, 0, n2);
	/* into a third page, then a fill of it all: allocation crosses pages */
	grown = 2 * DD_BITS_PER_BITMAP + 50;
	assert_int_equal(dd_pool_resize_meta(tp->pool, grown), 0);
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	n2 = fill_metadata(v, n2);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_true(st.meta_used > grown - 2 * DD_OP_MAX_DIRTY);
	assert_int_equal(tp_reopen(tp), 0);
	expect_mapped(tp, 1, 0, n2);
	tp_free(tp);
}

/* The reserve is the format's choice; growth within the last page still works. */
static void the_metadata_growth_limit_is_set_at_format(void **state)
{
	struct tpool tp = { 0 };
	struct dd_bm *bm;
	struct dd_pool_stats st;
	struct dd_volume *v;

	tp.rd = dd_ramdev_create(8192);
	assert_non_null(tp.rd);
	tp.fp.nr_data_blocks = 1000;
	tp.fp.data_block_sectors = DD_SECTORS_PER_BLOCK;
	tp.fp.nr_meta_blocks = 1024;
	assert_int_equal(dd_bm_create(dd_ramdev_dev(tp.rd), &tp.bmo, &bm), 0);
	tp.fp.meta_max_blocks = 1023;	/* below the size */
	assert_int_equal(dd_pool_format(bm, &tp.fp), -EINVAL);
	tp.fp.meta_max_blocks = 4096;	/* one page */
	assert_int_equal(dd_pool_format(bm, &tp.fp), 0);
	dd_bm_destroy(bm);
	assert_int_equal(tp_open(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_int_equal(st.meta_max_blocks, DD_BITS_PER_BITMAP);
	assert_int_equal(dd_pool_resize_meta(tp.pool, 8192), 0);
	assert_int_equal(dd_ramdev_grow(tp.rd, DD_BITS_PER_BITMAP + 1), 0);
	assert_int_equal(dd_pool_resize_meta(tp.pool, DD_BITS_PER_BITMAP + 1), -EFBIG);
	v = vol_new(&tp, 1);
	assert_int_equal(tp_write(v, 3, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_int_equal(st.nr_meta_blocks, 8192);
	expect_mapped(&tp, 1, 0, 0);	/* lbn 0 unmapped ... */
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	{
		struct dd_mapping m;

		lookup(v, 3, &m);	/* ... lbn 3 mapped */
		assert_true(m.mapped);
	}
	dd_volume_close(v);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/* A growth that fills the journal commits between two pages, consistently. */
static void a_metadata_growth_may_commit_between_pages(void **state)
{
	const u64 grown = 100 * DD_BITS_PER_BITMAP;	/* 100 pages: more than the journal holds */
	struct tpool tp = { 0 };
	struct dd_pool_stats st;
	struct dd_volume *v;
	u64 i, txn;

	assert_int_equal(tp_create(&tp, 8192, 1ULL << 20, DD_JOURNAL_MIN_BLOCKS, NULL), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.meta_max_blocks >= grown);
	v = vol_new(&tp, 1);
	for (i = 0;; i++) {
		assert_int_equal(tp_write(v, i * DD_MAP_ENTRIES * 7, NULL), 0);
		dd_pool_get_stats(tp.pool, &st);
		if (st.nr_dirty >= 40)
			break;
	}
	txn = st.txn;
	assert_int_equal(dd_ramdev_grow(tp.rd, grown), 0);
	assert_int_equal(dd_pool_resize_meta(tp.pool, grown), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.txn > txn);
	assert_int_equal(st.nr_meta_blocks, grown);
	dd_volume_close(v);
	tp_crash(&tp);	/* the committed part only */
	assert_int_equal(tp_open(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.nr_meta_blocks > 8192 && st.nr_meta_blocks < grown);
	assert_int_equal(st.nr_meta_blocks % DD_BITS_PER_BITMAP, 0);
	expect_mapped(&tp, 1, 0, i + 1);	/* committed with the first pages */
	tp_close(&tp);
	assert_int_equal(tp_check(&tp, NULL), 0);
	assert_int_equal(tp_open(&tp), 0);
	assert_int_equal(dd_pool_resize_meta(tp.pool, grown), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_int_equal(st.nr_meta_blocks, grown);
	tp_close(&tp);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

static void a_large_operation_commits_when_the_journal_fills(void **state)
{
	struct tpool tp = { 0 };
	struct dd_volume *v;
	struct dd_pool_stats st;
	u64 i, txn;

	assert_int_equal(tp_create(&tp, 8192, DATA, DD_JOURNAL_MIN_BLOCKS, NULL), 0);
	v = vol_new(&tp, 1);
	for (i = 0; i < 20000; i++)
		assert_int_equal(tp_write(v, i * 37, NULL), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.txn > 10);
	assert_true(st.nr_dirty <= DD_JOURNAL_MIN_BLOCKS);
	txn = st.txn;
	assert_int_equal(dd_snapshot_create(tp.pool, 2, 1), 0);
	assert_int_equal(dd_map_unmap(v, 0, DD_MAX_ADDR, DD_UNMAP_DISCARD), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.txn > txn + 10);
	assert_int_equal(st.mapped_blocks, 20000);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

static void needs_check_opens_read_only_until_cleared(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_mapping m;
	struct dd_fault f = { 0 };

	assert_int_equal(tp_write(v, 1, NULL), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	/* One failed metadata write: the pool steps down and records needs_check. */
	tp_quiet(true);
	f.fail_write_at = dd_ramdev_nr_writes(tp->rd) + 1;
	dd_ramdev_set_fault(tp->rd, &f);
	assert_int_equal(tp_write(v, 2, NULL), 0);
	assert_int_not_equal(dd_pool_commit(tp->pool), 0);
	tp_quiet(false);
	assert_int_equal(dd_pool_mode(tp->pool), DD_MODE_RO);
	assert_int_equal(tp_write(v, 3, NULL), -EROFS);
	lookup(v, 1, &m);
	assert_true(m.mapped);			/* reads still work */
	dd_volume_close(v);
	tp_quiet(true);
	assert_int_equal(tp_reopen(tp), 0);
	tp_quiet(false);
	assert_int_equal(dd_pool_mode(tp->pool), DD_MODE_RO);
	tp_close(tp);
	assert_int_equal(tp_check(tp, NULL), 0);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(tp->rd), &tp->bmo, &tp->bm), 0);
	assert_int_equal(dd_pool_open(tp->bm, DD_OPEN_IGNORE_CHECK, NULL, &tp->pool), 0);
	assert_int_equal(dd_pool_clear_needs_check(tp->pool), 0);
	assert_int_equal(tp_reopen(tp), 0);
	assert_int_equal(dd_pool_mode(tp->pool), DD_MODE_RW);
	tp_free(tp);
}

static void failing_metadata_device_steps_the_pool_down_to_fail(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_fault f = { 0 };

	assert_int_equal(tp_write(v, 1, NULL), 0);
	tp_quiet(true);
	f.fail_write_at = dd_ramdev_nr_writes(tp->rd) + 1;
	f.fail_sticky = true;
	dd_ramdev_set_fault(tp->rd, &f);
	assert_int_not_equal(dd_pool_commit(tp->pool), 0);
	tp_quiet(false);
	assert_int_equal(dd_pool_mode(tp->pool), DD_MODE_FAIL);
	assert_int_not_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(v);
	tp_crash(tp);
	assert_int_equal(tp_open(tp), 0);
	tp_free(tp);
}

static void user_transaction_id_changes_only_from_the_expected_value(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_pool_stats st;

	assert_int_equal(dd_pool_set_user_txn(tp->pool, 1, 2), -EINVAL);
	assert_int_equal(dd_pool_set_user_txn(tp->pool, 0, 5), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	assert_int_equal(tp_reopen(tp), 0);
	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(st.user_txn, 5);
	tp_free(tp);
}

static void volume_ids_are_listed_in_order_and_bounded(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume_info info;
	u32 ids[] = { 0, 5, 62, 63, 64, 1000, DD_MAX_VOLUME_ID };
	u32 id = 0, i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_int_equal(dd_volume_create(tp->pool, ids[i]), 0);
	assert_int_equal(dd_volume_create(tp->pool, DD_MAX_VOLUME_ID + 1), -EINVAL);
	assert_int_equal(dd_volume_create(tp->pool, 5), -EEXIST);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++, id++) {
		assert_int_equal(dd_volume_next(tp->pool, &id, false, &info), 0);
		assert_int_equal(id, ids[i]);
	}
	assert_int_equal(dd_volume_next(tp->pool, &id, false, &info), -ENOENT);
	tp_free(tp);
}

static void snapshot_of_a_missing_or_same_volume_is_refused(void **state)
{
	struct tpool *tp = tp_new(META, DATA);

	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), -ENOENT);
	assert_int_equal(dd_volume_create(tp->pool, 1), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 1, 1), -EINVAL);
	assert_int_equal(dd_snapshot_create(tp->pool, 1, 1), -EINVAL);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), 0);
	assert_int_equal(dd_snapshot_create(tp->pool, 2, 1), -EEXIST);
	tp_free(tp);
}

static void lookups_without_io_fail_fast_when_not_cached(void **state)
{
	struct tpool *tp = tp_new(META, DATA);
	struct dd_volume *v = vol_new(tp, 1);
	struct dd_mapping m;

	assert_int_equal(tp_write(v, 100000, NULL), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
	dd_volume_close(v);
	assert_int_equal(tp_reopen(tp), 0);
	assert_int_equal(dd_volume_open(tp->pool, 1, &v), 0);
	assert_int_equal(dd_map_lookup(v, 100000, DD_NOWAIT, &m), -EWOULDBLOCK);
	assert_int_equal(dd_map_lookup(v, 100000, 0, &m), 0);
	assert_true(m.mapped);
	assert_int_equal(dd_map_lookup(v, 100000, DD_NOWAIT, &m), 0);
	assert_true(m.mapped);
	dd_volume_close(v);
	tp_free(tp);
}

struct freed_log {
	u64 start[64], len[64];
	int n;
};

static void record_freed(void *ctx, u64 start, u64 len)
{
	struct freed_log *log = ctx;

	if (log->n < 64) {
		log->start[log->n] = start;
		log->len[log->n] = len;
	}
	log->n++;
}

static void freed_blocks_are_reported_after_their_commit_only(void **state)
{
	struct freed_log log = { .n = 0 };
	struct tpool tp = { .hooks = { .freed = record_freed, .ctx = &log } };
	struct dd_volume *v;
	u64 i, p[8];

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	v = vol_new(&tp, 1);
	for (i = 0; i < 8; i++)
		assert_int_equal(tp_write(v, i, &p[i]), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(log.n, 0);
	/* Unmap 0-2 and 5: two ranges, reported only once committed. */
	assert_int_equal(dd_map_unmap(v, 0, 3, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_map_unmap(v, 5, 1, DD_UNMAP_DISCARD), 0);
	assert_int_equal(log.n, 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.start[0], p[0]);
	assert_int_equal(log.len[0], 3);
	assert_int_equal(log.start[1], p[5]);
	assert_int_equal(log.len[1], 1);
	/* Frees of an aborted transaction are never reported. */
	assert_int_equal(dd_map_unmap(v, 6, 2, DD_UNMAP_DISCARD), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_abort(tp.pool), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(log.n, 2);
	tp_close(&tp);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/* A freed hook that checks what passdown would discard: nothing mapped. */
struct passdown_probe {
	struct tpool *tp;
	u64 ranges, blocks, live;
};

static void probe_freed(void *ctx, u64 start, u64 len)
{
	struct passdown_probe *pp = ctx;
	struct dd_record rec;
	u64 b;

	pp->ranges++;
	for (b = start; b < start + len; b++) {
		pp->blocks++;
		assert_int_equal(dd_record_get(pp->tp->pool, b, &rec), 0);
		if (rec.refcount)
			pp->live++;
	}
}

static void passdown_never_names_a_block_that_is_mapped_again(void **state)
{
	struct passdown_probe pp = { 0 };
	struct tpool tp = { .hooks = { .freed = probe_freed, .ctx = &pp } };
	struct dd_volume *v1, *v2;
	u64 i, p;

	pp.tp = &tp;
	assert_int_equal(tp_create(&tp, META, 16, 0, NULL), 0);
	v1 = vol_new(&tp, 1);
	v2 = vol_new(&tp, 2);
	for (i = 0; i < 15; i++)
		assert_int_equal(tp_write(v1, i, &p), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	/* Allocate, free and try to reuse, many times in one transaction. */
	for (i = 0; i < 20; i++) {
		int r = tp_write(v1, 1000 + i, &p);

		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		assert_int_equal(dd_map_unmap(v1, 1000 + i, 1, DD_UNMAP_ZERO), 0);
		r = tp_write(v2, i, &p);
		assert_true(r == 0 || r == -ENOSPC);
	}
	assert_int_equal(dd_map_unmap(v1, 0, 4, DD_UNMAP_DISCARD), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_true(pp.ranges > 0);
	assert_int_equal(pp.live, 0);
	dd_volume_close(v1);
	dd_volume_close(v2);
	tp_close(&tp);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_matches_the_standard_check_value),
		cmocka_unit_test(format_then_open_reports_an_empty_pool),
		cmocka_unit_test(format_refuses_a_metadata_device_below_the_minimum),
		cmocka_unit_test(probe_tells_zeroed_pool_and_foreign_apart),
		cmocka_unit_test(first_write_maps_an_exclusive_block),
		cmocka_unit_test(remapping_an_lbn_frees_its_old_block),
		cmocka_unit_test(block_freed_in_open_txn_is_not_reused_before_commit),
		cmocka_unit_test(block_allocated_and_freed_in_one_txn_is_not_reused_before_commit),
		cmocka_unit_test(block_freed_in_a_new_bitmap_leaf_is_not_reused_before_commit),
		cmocka_unit_test(an_abort_that_drops_changes_is_remembered_until_reopen),
		cmocka_unit_test(reserved_blocks_are_not_handed_out_twice),
		cmocka_unit_test(a_run_reservation_stops_where_a_block_may_not_be_used),
		cmocka_unit_test(a_run_insert_maps_every_block_across_leaves),
		cmocka_unit_test(snapshot_shares_every_block_and_clears_exclusive_bits),
		cmocka_unit_test(write_to_shared_block_splits_and_keeps_the_sibling),
		cmocka_unit_test(block_exclusive_only_in_open_txn_is_not_written_in_place),
		cmocka_unit_test(block_exclusive_in_committed_state_is_made_exclusive_at_once),
		cmocka_unit_test(unmap_range_drops_references_and_counts_discards),
		cmocka_unit_test(unmap_of_a_huge_sparse_range_is_cheap),
		cmocka_unit_test(deleting_a_volume_frees_its_blocks_after_reclaim),
		cmocka_unit_test(reopen_keeps_the_committed_state_and_drops_the_rest),
		cmocka_unit_test(full_data_device_returns_enospc_and_growing_it_helps),
		cmocka_unit_test(full_metadata_device_refuses_before_changing_anything),
		cmocka_unit_test(a_full_metadata_device_can_still_unmap_delete_and_reclaim),
		cmocka_unit_test(the_metadata_space_grows_in_place),
		cmocka_unit_test(the_metadata_growth_limit_is_set_at_format),
		cmocka_unit_test(a_metadata_growth_may_commit_between_pages),
		cmocka_unit_test(a_large_operation_commits_when_the_journal_fills),
		cmocka_unit_test(needs_check_opens_read_only_until_cleared),
		cmocka_unit_test(failing_metadata_device_steps_the_pool_down_to_fail),
		cmocka_unit_test(user_transaction_id_changes_only_from_the_expected_value),
		cmocka_unit_test(volume_ids_are_listed_in_order_and_bounded),
		cmocka_unit_test(snapshot_of_a_missing_or_same_volume_is_refused),
		cmocka_unit_test(lookups_without_io_fail_fast_when_not_cached),
		cmocka_unit_test(freed_blocks_are_reported_after_their_commit_only),
		cmocka_unit_test(passdown_never_names_a_block_that_is_mapped_again),
	};

	tp_quiet(false);
	if (getenv("DD_TEST_FILTER"))	/* a glob over the test names */
		cmocka_set_test_filter(getenv("DD_TEST_FILTER"));
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
