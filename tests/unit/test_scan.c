// SPDX-License-Identifier: GPL-2.0
/*
 * The scanner's decisions, over the engine and a data device (ddsys.h,
 * ddscan.h): merges only of byte-equal blocks, never across domains, never
 * past the sharing cap; a write racing a merge is never lost or merged away;
 * zero blocks unmapped; runs found from one hook; marks and the index kept
 * across a clean reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddscan.h"
#include <dm-dedup/format.h>

#define META	4096
#define DATA	32768

static u8 blk[DD_BLOCK_SIZE];

static struct ddsys *sys_new(u64 data)
{
	struct ddsys *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(sys_create(s, META, data, 0, NULL), 0);
	return s;
}

static void sys_free(struct ddsys *s)
{
	assert_int_equal(dd_scan_save(s->tp.pool), 0);
	assert_int_equal(dd_pool_commit(s->tp.pool), 0);
	sys_close(s);
	assert_int_equal(tp_check(&s->tp, NULL), 0);
	sys_destroy(s);
	free(s);
}

static struct dd_volume *vol_in(struct ddsys *s, u32 id, u32 domain)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_create_in(s->tp.pool, id, domain), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, id, &v), 0);
	return v;
}

/* Content 'c' (the same bytes wherever it is written). */
static void put(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 c)
{
	tok_fill(blk, c, 0, 0);
	assert_int_equal(sys_write(s, v, lbn, blk), 0);
}

static u64 get(struct ddsys *s, struct dd_volume *v, u64 lbn)
{
	u64 id, pbn;
	bool mapped;

	if (sys_read(s, v, lbn, &id, &pbn, &mapped) == TOK_ZERO)
		return 0;
	return id;
}

static u64 pbn_of(struct dd_volume *v, u64 lbn)
{
	struct dd_mapping m;

	assert_int_equal(dd_map_lookup(v, lbn, 0, &m), 0);
	assert_true(m.mapped);
	return m.pbn;
}

static struct dd_pool_stats stats(struct ddsys *s)
{
	struct dd_pool_stats st;

	dd_pool_get_stats(s->tp.pool, &st);
	return st;
}

static void identical_volumes_share_every_block_after_one_pass(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct scan_result res;
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < 300; i++) {
		put(s, a, i, 1000 + i);
		put(s, b, i, 1000 + i);
	}
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(stats(s).data_used, 600);
	assert_int_equal(scan_pass(s, false, NULL, &res), 0);
	assert_int_equal(stats(s).data_used, 300);
	assert_int_equal(stats(s).shared_blocks, 300);
	assert_int_equal(stats(s).mapped_blocks, 600);
	assert_int_equal(res.merged, 300);
	for (i = 0; i < 300; i++) {
		assert_int_equal(get(s, a, i), 1000 + i);
		assert_int_equal(get(s, b, i), 1000 + i);
		assert_int_equal(pbn_of(a, i), pbn_of(b, i));
	}
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.merged, 300);
	assert_int_equal(ss.false_hits, 0);
	assert_int_equal(ss.pass, 1);
	assert_false(ss.pass_active);
	/* A second pass has nothing to do. */
	assert_int_equal(scan_pass(s, false, NULL, &res), 0);
	assert_int_equal(res.items, 0);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

static void duplicates_within_one_volume_merge_too(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0);
	u64 i;

	for (i = 0; i < 100; i++)
		put(s, a, i * 3, 77);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 1);
	for (i = 0; i < 100; i++)
		assert_int_equal(get(s, a, i * 3), 77);
	dd_volume_close(a);
	sys_free(s);
}

/* Blocks of zeroes written as data (skip_zero_detect, or an older pool). */
static void put_raw(struct ddsys *s, struct dd_volume *v, u64 lbn, const void *data)
{
	u64 pbn;

	assert_int_equal(dd_data_reserve(s->tp.pool, &pbn), 0);
	assert_int_equal(dd_dev_write(dd_ramdev_dev(s->data), pbn, data), 0);
	assert_int_equal(dd_map_insert(v, lbn, pbn), 0);
}

static void blocks_of_zeroes_found_by_the_scanner_are_unmapped(void **state)
{
	static const u8 zero[DD_BLOCK_SIZE];
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0);
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < 50; i++)
		put_raw(s, a, i, zero);
	put(s, a, 50, 5);
	assert_int_equal(stats(s).data_used, 51);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 1);
	assert_int_equal(stats(s).mapped_blocks, 1);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.zero_unmapped, 50);
	for (i = 0; i < 50; i++)
		assert_int_equal(get(s, a, i), 0);
	assert_int_equal(get(s, a, 50), 5);
	dd_volume_close(a);
	sys_free(s);
}

/* The guest writes between the steps, where the kernel drops the pool lock. */
struct racer {
	struct dd_volume *v;
	u64 lbn, content;
	enum scan_phase when;
	bool done;
};

static void race_write(void *ctx, struct ddsys *s, enum scan_phase ph, struct dd_scan_batch *b)
{
	struct racer *r = ctx;

	if (r->done || ph != r->when)
		return;
	put(s, r->v, r->lbn, r->content);
	r->done = true;
}

static void a_write_between_hash_and_merge_is_never_merged_away(void **state)
{
	static const enum scan_phase when[] = { SCAN_AFTER_PREPARE, SCAN_AFTER_READ,
						SCAN_AFTER_MATCH, SCAN_AFTER_COMPARE };
	unsigned w;

	for (w = 0; w < 4; w++) {
		struct ddsys *s = sys_new(DATA);
		struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
		struct racer r;
		struct scan_hooks h = { race_write, &r, 0 };
		u64 i;

		for (i = 0; i < 20; i++) {
			put(s, a, i, 10 + i);
			put(s, b, i, 10 + i);
		}
		assert_int_equal(sys_flush(s), 0);
		/* b's LBN 5 (a duplicate being scanned) is overwritten mid-batch. */
		r = (struct racer){ b, 5, 999, when[w], false };
		assert_int_equal(scan_pass(s, false, &h, NULL), 0);
		assert_true(r.done);
		assert_int_equal(get(s, b, 5), 999);
		assert_int_equal(get(s, a, 5), 15);
		for (i = 0; i < 20; i++)
			if (i != 5) {
				assert_int_equal(get(s, a, i), 10 + i);
				assert_int_equal(get(s, b, i), 10 + i);
			}
		assert_int_not_equal(pbn_of(a, 5), pbn_of(b, 5));
		/* The new block is found by the next pass (it is unique). */
		assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
		assert_int_equal(get(s, b, 5), 999);
		dd_volume_close(a);
		dd_volume_close(b);
		sys_free(s);
	}
}

static void a_write_to_the_canonical_block_during_the_compare_copies_on_write(void **state)
{
	static const enum scan_phase when[] = { SCAN_AFTER_MATCH, SCAN_AFTER_COMPARE };
	unsigned w;

	for (w = 0; w < 2; w++) {
		struct ddsys *s = sys_new(DATA);
		struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
		struct racer r;
		struct scan_hooks h = { race_write, &r, 0 };
		u64 i;

		for (i = 0; i < 20; i++)
			put(s, a, i, 10 + i);
		assert_int_equal(scan_pass(s, false, NULL, NULL), 0);	/* a indexed */
		for (i = 0; i < 20; i++)
			put(s, b, i, 10 + i);
		/* While b's blocks are compared with a's, a's LBN 7 (a canonical
		 * block, exclusively owned) is overwritten: it must not go in place. */
		r = (struct racer){ a, 7, 555, when[w], false };
		assert_int_equal(scan_pass(s, false, &h, NULL), 0);
		assert_true(r.done);
		assert_int_equal(get(s, a, 7), 555);
		assert_int_equal(get(s, b, 7), 17);
		for (i = 0; i < 20; i++)
			if (i != 7)
				assert_int_equal(pbn_of(a, i), pbn_of(b, i));
		dd_volume_close(a);
		dd_volume_close(b);
		sys_free(s);
	}
}

/* A hash is a hint: with every block hashing alike, only byte-equal blocks merge. */
static void only_byte_equal_blocks_merge_whatever_the_hash_says(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct scan_hooks h = { NULL, NULL, 0x1234 };
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < 40; i++) {
		put(s, a, i, 100 + i);
		put(s, b, i, i % 2 ? 100 + i : 500 + i);	/* half equal */
	}
	assert_int_equal(scan_pass(s, false, &h, NULL), 0);
	for (i = 0; i < 40; i++) {
		assert_int_equal(get(s, a, i), 100 + i);
		assert_int_equal(get(s, b, i), i % 2 ? 100 + i : 500 + i);
		if (i % 2 == 0)
			assert_int_not_equal(pbn_of(a, i), pbn_of(b, i));
	}
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_true(ss.false_hits > 0);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

static void volumes_of_different_domains_never_share(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 1), *c = vol_in(s, 3, 1);
	u64 i;

	for (i = 0; i < 30; i++) {
		put(s, a, i, 40 + i);
		put(s, b, i, 40 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 60);
	assert_int_equal(stats(s).shared_blocks, 0);
	for (i = 0; i < 30; i++)
		put(s, c, i, 40 + i);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 60);
	for (i = 0; i < 30; i++) {
		assert_int_equal(pbn_of(b, i), pbn_of(c, i));
		assert_int_not_equal(pbn_of(a, i), pbn_of(b, i));
	}
	/* Snapshots inherit the domain. */
	dd_volume_close(c);
	assert_int_equal(dd_snapshot_create(s->tp.pool, 4, 3), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, 4, &c), 0);
	put(s, c, 100, 41);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(pbn_of(c, 100), pbn_of(b, 1));
	assert_int_equal(dd_volume_create_in(s->tp.pool, 9, DD_MAX_DOMAIN + 1), -EINVAL);
	dd_volume_close(a);
	dd_volume_close(b);
	dd_volume_close(c);
	sys_free(s);
}

static void the_sharing_cap_is_honoured(void **state)
{
	struct dd_scan_config cfg = { .share_cap = 3 };
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *v[6];
	struct dd_record rec;
	u64 i, p;
	u32 k;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (k = 0; k < 6; k++) {
		v[k] = vol_in(s, k + 1, 0);
		for (i = 0; i < 10; i++)
			put(s, v[k], i, 60 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 20);
	for (k = 0; k < 6; k++)
		for (i = 0; i < 10; i++) {
			p = pbn_of(v[k], i);
			assert_int_equal(dd_record_get(s->tp.pool, p, &rec), 0);
			assert_true(rec.refcount <= 3);
			assert_int_equal(get(s, v[k], i), 60 + i);
		}
	for (k = 0; k < 6; k++)
		dd_volume_close(v[k]);
	sys_free(s);
}

/* A small index keeps 1 in 2^s blocks; the run between hooks is found by
 * following each verified match along the LBNs. */
static void runs_are_found_from_one_hook_by_prediction(void **state)
{
	struct dd_scan_config cfg = { .index_bytes = DD_INDEX_MIN_BYTES };
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct dd_scan_stats ss;
	u64 i, n = 12000, same = 0;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (i = 0; i < n; i++)
		put(s, a, i, 7000 + i);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	for (i = 0; i < n; i++)
		put(s, b, i + 3, 7000 + i);	/* the same run, at another offset */
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_true(ss.index.sample_shift >= 2);	/* sparse: 1 in 4 or fewer */
	for (i = 0; i < n; i++)
		same += pbn_of(a, i) == pbn_of(b, i + 3);
	assert_true(same > n * 99 / 100);
	for (i = 0; i < n; i += 97)
		assert_int_equal(get(s, b, i + 3), 7000 + i);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

/* Clean close and reopen: the marks and the index come back. */
static void reopen(struct ddsys *s)
{
	assert_int_equal(dd_scan_save(s->tp.pool), 0);
	assert_int_equal(dd_pool_commit(s->tp.pool), 0);
	sys_close(s);
	assert_int_equal(tp_check(&s->tp, NULL), 0);
	assert_int_equal(sys_open(s), 0);
}

static void written_marks_and_the_index_survive_a_clean_reopen(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b;
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < 50; i++)
		put(s, a, i, 300 + i);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);	/* a's blocks indexed */
	b = vol_in(s, 2, 0);
	for (i = 0; i < 50; i++)
		put(s, b, i + 1000, 300 + i);			/* marked, not scanned */
	dd_volume_close(a);
	dd_volume_close(b);
	reopen(s);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.marked, 50);
	assert_true(ss.index.entries >= 50);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 50);		/* b merged into a */
	assert_int_equal(dd_volume_open(s->tp.pool, 2, &b), 0);
	for (i = 0; i < 50; i++)
		assert_int_equal(get(s, b, i + 1000), 300 + i);
	dd_volume_close(b);
	sys_free(s);
}

/* Written again after the pass began: skipped now, scanned in the next pass. */
struct rewriter {
	struct dd_volume *v;
	bool done;
};

static void rewrite_late(void *ctx, struct ddsys *s, enum scan_phase ph, struct dd_scan_batch *b)
{
	struct rewriter *w = ctx;

	if (w->done || ph != SCAN_AFTER_PREPARE)
		return;
	put(s, w->v, 600, 8);	/* a block the pass has not reached */
	w->done = true;
}

static void blocks_written_again_during_a_pass_are_skipped_as_volatile(void **state)
{
	struct dd_scan_config cfg = { .batch = 16 };
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0);
	struct rewriter w = { a, false };
	struct scan_hooks h = { rewrite_late, &w, 0 };
	struct dd_scan_stats ss;
	u64 i;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (i = 0; i < 601; i++)
		put(s, a, i, i < 600 ? 900 + i : 7);
	put(s, a, 700, 8);
	assert_int_equal(scan_pass(s, false, &h, NULL), 0);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_true(ss.volatile_skipped >= 1);
	assert_int_not_equal(pbn_of(a, 600), pbn_of(a, 700));
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(pbn_of(a, 600), pbn_of(a, 700));
	assert_int_equal(get(s, a, 600), 8);
	dd_volume_close(a);
	sys_free(s);
}

/* A write to a merged block splits it again and is counted as such. */
static void writes_after_a_merge_copy_on_write(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < 10; i++) {
		put(s, a, i, 20 + i);
		put(s, b, i, 20 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 10);
	put(s, b, 3, 4444);
	put(s, a, 4, 5555);
	assert_int_equal(get(s, a, 3), 23);
	assert_int_equal(get(s, b, 3), 4444);
	assert_int_equal(get(s, a, 4), 5555);
	assert_int_equal(get(s, b, 4), 24);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.cow_breaks, 2);
	assert_int_equal(stats(s).data_used, 12);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

/* A full pass sees blocks whose marks were lost (a crash) as well. */
static void a_full_pass_finds_what_lost_marks_hid(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct scan_result res;
	u64 i;

	for (i = 0; i < 25; i++) {
		put(s, a, i, 30 + i);
		put(s, b, i, 30 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	put(s, a, 100, 1);
	put(s, b, 100, 1);
	/* Marks of the last interval lost: an ordinary pass finds the two
	 * only if marked; a full pass finds them anyway. */
	assert_int_equal(scan_pass(s, true, NULL, &res), 0);
	assert_true(res.items >= 27);
	assert_int_equal(pbn_of(a, 100), pbn_of(b, 100));
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(identical_volumes_share_every_block_after_one_pass),
		cmocka_unit_test(duplicates_within_one_volume_merge_too),
		cmocka_unit_test(blocks_of_zeroes_found_by_the_scanner_are_unmapped),
		cmocka_unit_test(a_write_between_hash_and_merge_is_never_merged_away),
		cmocka_unit_test(a_write_to_the_canonical_block_during_the_compare_copies_on_write),
		cmocka_unit_test(only_byte_equal_blocks_merge_whatever_the_hash_says),
		cmocka_unit_test(volumes_of_different_domains_never_share),
		cmocka_unit_test(the_sharing_cap_is_honoured),
		cmocka_unit_test(runs_are_found_from_one_hook_by_prediction),
		cmocka_unit_test(written_marks_and_the_index_survive_a_clean_reopen),
		cmocka_unit_test(blocks_written_again_during_a_pass_are_skipped_as_volatile),
		cmocka_unit_test(writes_after_a_merge_copy_on_write),
		cmocka_unit_test(a_full_pass_finds_what_lost_marks_hid),
	};

	tp_quiet(true);
	return cmocka_run_group_tests_name("scan", tests, NULL, NULL);
}
