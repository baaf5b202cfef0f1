// SPDX-License-Identifier: GPL-2.0
/*
 * Dedup at import (engine/dd-import.c), driven as the kernel drives it for
 * dedupctl import (ddscan.h import_write): a second similar machine shares
 * what the first wrote instead of writing it; only byte-equal blocks are
 * shared, never across domains or past the cap; guest writes, frees and
 * commits between the steps never lose a write or share changed bytes; a
 * crash keeps what a flush made durable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddscan.h"
#include <dm-dedup/format.h>

#define META	4096
#define DATA	32768
#define CHUNK	256

static u8 blk[DD_BLOCK_SIZE];

static struct ddsys *sys_new(void)
{
	struct ddsys *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(sys_create(s, META, DATA, 0, NULL), 0);
	return s;
}

static void sys_free(struct ddsys *s)
{
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

static u64 data_used(struct ddsys *s)
{
	struct dd_pool_stats st;

	dd_pool_get_stats(s->tp.pool, &st);
	return st.data_used;
}

/* An image: block i holds content ids[i] (0: a block the importer skips). */
struct image {
	u64 n;
	u64 *ids;
};

static struct image image_new(u64 n, u64 base)
{
	struct image im = { .n = n, .ids = calloc(n, sizeof(u64)) };
	u64 i;

	assert_non_null(im.ids);
	for (i = 0; i < n; i++)
		im.ids[i] = base + i;
	return im;
}

/* Imports the image into v in chunks, as dedupctl does; the sums in *res. */
static int import_image(struct ddsys *s, struct dd_volume *v, const struct image *im,
			const struct import_hooks *h, struct import_result *res)
{
	u8 *buf = malloc((size_t)CHUNK * DD_BLOCK_SIZE);
	bool skip[CHUNK];
	u64 at;
	int r = 0;

	assert_non_null(buf);
	memset(res, 0, sizeof(*res));
	for (at = 0; at < im->n && !r; at += CHUNK) {
		u32 n = im->n - at < CHUNK ? (u32)(im->n - at) : CHUNK, i;

		for (i = 0; i < n; i++) {
			skip[i] = !im->ids[at + i];
			tok_fill(buf + (size_t)i * DD_BLOCK_SIZE, skip[i] ? 1 : im->ids[at + i], 0, 0);
		}
		r = import_write(s, v, at, n, buf, skip, h, res);
	}
	free(buf);
	return r;
}

static void reads_image(struct ddsys *s, struct dd_volume *v, const struct image *im)
{
	u64 i;

	for (i = 0; i < im->n; i++)
		assert_int_equal(get(s, v, i), im->ids[i]);
}

static void a_second_similar_machine_is_shared_not_written(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image ia = image_new(2000, 10000), ib = image_new(2000, 10000);
	struct import_result ra, rb;
	struct dd_scan_stats ss;
	u64 i, differ = 0, writes;

	for (i = 0; i < ib.n; i += 13)
		ib.ids[i] = 50000 + i;	/* its own data */
	for (i = 5; i < ib.n; i += 101)
		ib.ids[i] = 0;		/* zeroes, not written */
	for (i = 0; i < ib.n; i++)
		differ += ib.ids[i] && ib.ids[i] != ia.ids[i];
	assert_int_equal(import_image(s, a, &ia, NULL, &ra), 0);
	assert_int_equal(ra.shared, 0);
	assert_int_equal(ra.written, ia.n);
	assert_int_equal(sys_flush(s), 0);
	writes = s->st.data_writes;
	assert_int_equal(import_image(s, b, &ib, NULL, &rb), 0);
	assert_int_equal(sys_flush(s), 0);
	/* Every block the first machine holds is shared, the rest written. */
	assert_int_equal(rb.written + rb.shared + 20, ib.n);
	assert_int_equal(rb.written, differ);
	assert_int_equal(s->st.data_writes - writes, differ);
	assert_int_equal(data_used(s), ia.n + differ);
	reads_image(s, a, &ia);
	reads_image(s, b, &ib);
	for (i = 1; i < ib.n; i += 13)
		if (ib.ids[i])
			assert_int_equal(pbn_of(a, i), pbn_of(b, i));
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.import_shared, rb.shared);
	assert_int_equal(ss.import_missed, 0);
	assert_int_equal(ss.merged, rb.shared);
	/* A guest write to a shared LBN copies on write; the other keeps its data. */
	tok_fill(blk, 777, 0, 0);
	assert_int_equal(sys_write(s, b, 1, blk), 0);
	assert_int_equal(get(s, b, 1), 777);
	assert_int_equal(get(s, a, 1), ia.ids[1]);
	dd_volume_close(a);
	dd_volume_close(b);
	free(ia.ids);
	free(ib.ids);
	sys_free(s);
}

/* A small index keeps 1 in 2^k hashes: the runs between hooks follow the
 * first machine's owners, and the same run at another offset is found. */
static void runs_between_sparse_hooks_are_followed(void **state)
{
	struct dd_scan_config cfg = { .index_bytes = DD_INDEX_MIN_BYTES };
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image ia = image_new(12000, 7000), ib = image_new(12003, 7000);
	struct import_result ra, rb;
	struct dd_scan_stats ss;
	u64 i;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (i = 0; i < ib.n; i++)
		ib.ids[i] = i < 3 ? 90000 + i : 7000 + i - 3;
	assert_int_equal(import_image(s, a, &ia, NULL, &ra), 0);
	assert_int_equal(import_image(s, b, &ib, NULL, &rb), 0);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_true(ss.index.sample_shift >= 2);
	assert_true(rb.shared > ia.n * 99 / 100);
	assert_true(rb.written < ib.n / 100);
	reads_image(s, a, &ia);
	reads_image(s, b, &ib);
	dd_volume_close(a);
	dd_volume_close(b);
	free(ia.ids);
	free(ib.ids);
	sys_free(s);
}

/* Every hash the same: the index names blocks that differ; nothing else is shared. */
static void only_byte_equal_blocks_are_shared_whatever_the_hash_says(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image ia = image_new(600, 100), ib = image_new(600, 5000);
	struct import_hooks h = { .fake_hash = 0x1234 };
	struct import_result ra, rb;
	struct dd_scan_stats ss;
	u64 i;

	for (i = 0; i < ib.n; i += 7)
		ib.ids[i] = ia.ids[i];		/* a few equal blocks */
	assert_int_equal(import_image(s, a, &ia, &h, &ra), 0);
	assert_int_equal(import_image(s, b, &ib, &h, &rb), 0);
	reads_image(s, a, &ia);
	reads_image(s, b, &ib);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_true(ss.import_missed > 0);
	/* Whatever was shared holds the same bytes on both sides. */
	for (i = 0; i < ib.n; i++)
		if (pbn_of(a, i) == pbn_of(b, i))
			assert_int_equal(ia.ids[i], ib.ids[i]);
	assert_int_equal(data_used(s), ia.n + ib.n - ra.shared - rb.shared);
	dd_volume_close(a);
	dd_volume_close(b);
	free(ia.ids);
	free(ib.ids);
	sys_free(s);
}

static void volumes_of_different_domains_never_share_at_import(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 1), *c = vol_in(s, 3, 1);
	struct image im = image_new(500, 300);
	struct import_result r;

	assert_int_equal(import_image(s, a, &im, NULL, &r), 0);
	assert_int_equal(import_image(s, b, &im, NULL, &r), 0);
	assert_int_equal(r.shared, 0);
	assert_int_equal(r.written, im.n);
	assert_int_equal(import_image(s, c, &im, NULL, &r), 0);
	assert_int_equal(r.shared, im.n);	/* its own domain's copy */
	assert_int_equal(data_used(s), 2 * im.n);
	reads_image(s, a, &im);
	reads_image(s, b, &im);
	reads_image(s, c, &im);
	dd_volume_close(a);
	dd_volume_close(b);
	dd_volume_close(c);
	free(im.ids);
	sys_free(s);
}

static void the_sharing_cap_is_honoured_at_import(void **state)
{
	struct dd_scan_config cfg = { .share_cap = 3 };
	struct ddsys *s = sys_new();
	struct image im = image_new(40, 60);
	struct dd_volume *v[6];
	struct import_result r;
	struct dd_record rec;
	u64 i;
	u32 k;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (k = 0; k < 6; k++) {
		v[k] = vol_in(s, k + 1, 0);
		assert_int_equal(import_image(s, v[k], &im, NULL, &r), 0);
	}
	assert_int_equal(data_used(s), 2 * im.n);
	for (k = 0; k < 6; k++) {
		for (i = 0; i < im.n; i++) {
			assert_int_equal(dd_record_get(s->tp.pool, pbn_of(v[k], i), &rec), 0);
			assert_true(rec.refcount <= 3);
		}
		reads_image(s, v[k], &im);
	}
	for (k = 0; k < 6; k++)
		dd_volume_close(v[k]);
	free(im.ids);
	sys_free(s);
}

/* ---- races: guest I/O and commits between the steps ---- */

struct race {
	struct dd_volume *a, *b;
	enum import_phase when;
	int what;		/* 0 write C's owner, 1 discard C's owner, 2 write the LBN,
				 * 3 commit */
	u64 lbn;		/* the LBN of each chunk the race hits */
	u32 hits;
};

static void race_between(void *ctx, struct ddsys *s, enum import_phase ph,
			 struct dd_import_item *it, u32 n)
{
	struct race *rc = ctx;
	u32 i;

	if (ph != rc->when)
		return;
	for (i = 0; i < n; i++) {
		if (it[i].lbn != rc->lbn)
			continue;
		rc->hits++;
		switch (rc->what) {
		case 0:
			tok_fill(blk, 4242, 0, 0);
			assert_int_equal(sys_write(s, rc->a, rc->lbn, blk), 0);
			break;
		case 1:
			assert_int_equal(sys_discard(s, rc->a, rc->lbn, 1), 0);
			break;
		case 2:
			tok_fill(blk, 4343, 0, 0);
			assert_int_equal(sys_write(s, rc->b, rc->lbn, blk), 0);
			break;
		case 3:
			assert_int_equal(sys_flush(s), 0);
			break;
		}
	}
}

static void one_race(enum import_phase when, int what)
{
	struct ddsys *s = sys_new();
	struct race rc = { .when = when, .what = what, .lbn = 77 };
	struct import_hooks h = { .between = race_between, .ctx = &rc };
	struct image im = image_new(300, 1000);
	struct import_result r;
	u64 i, want_a, want_b;

	rc.a = vol_in(s, 1, 0);
	rc.b = vol_in(s, 2, 0);
	assert_int_equal(import_image(s, rc.a, &im, NULL, &r), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(import_image(s, rc.b, &im, &h, &r), 0);
	assert_int_equal(rc.hits, 1);
	assert_int_equal(sys_flush(s), 0);
	/* The racing write to C's owner is A's; the import's data is B's. */
	want_a = what == 0 ? 4242 : what == 1 ? 0 : im.ids[rc.lbn];
	want_b = im.ids[rc.lbn];	/* the import's write came last (2: it wins) */
	assert_int_equal(get(s, rc.a, rc.lbn), want_a);
	assert_int_equal(get(s, rc.b, rc.lbn), want_b);
	for (i = 0; i < im.n; i++) {
		if (i == rc.lbn)
			continue;
		assert_int_equal(get(s, rc.a, i), im.ids[i]);
		assert_int_equal(get(s, rc.b, i), im.ids[i]);
	}
	dd_volume_close(rc.a);
	dd_volume_close(rc.b);
	free(im.ids);
	sys_free(s);
}

static void a_write_to_the_candidate_never_changes_what_is_shared(void **state)
{
	one_race(IMPORT_AFTER_PLAN, 0);
	one_race(IMPORT_AFTER_PREPARE, 0);
	one_race(IMPORT_AFTER_COMPARE, 0);
}

static void a_freed_candidate_is_never_shared(void **state)
{
	one_race(IMPORT_AFTER_PLAN, 1);
	one_race(IMPORT_AFTER_PREPARE, 1);
	one_race(IMPORT_AFTER_COMPARE, 1);
}

static void a_guest_write_to_the_lbn_is_never_lost(void **state)
{
	one_race(IMPORT_AFTER_PLAN, 2);
	one_race(IMPORT_AFTER_PREPARE, 2);
	one_race(IMPORT_AFTER_COMPARE, 2);
}

static void commits_between_the_steps_change_nothing(void **state)
{
	one_race(IMPORT_AFTER_PLAN, 3);
	one_race(IMPORT_AFTER_PREPARE, 3);
	one_race(IMPORT_AFTER_COMPARE, 3);
}

/* A block freed while it is pinned for the compare is not reused until the pin goes. */
static void a_pinned_candidate_freed_is_not_allocated(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image im = image_new(8, 20);
	struct dd_import_item it = { .vol = 2, .lbn = 3, .flags = DD_II_HASHED };
	struct import_result r;
	u64 c, p, i;

	assert_int_equal(import_image(s, a, &im, NULL, &r), 0);
	tok_fill(blk, im.ids[3], 0, 0);
	it.hash = dd_xxh64(blk, DD_BLOCK_SIZE, DD_INDEX_SEED);
	c = pbn_of(a, 3);
	assert_int_equal(dd_import_plan(s->tp.pool, &it, 1), 1);
	assert_int_equal(it.cand, c);
	assert_int_equal(dd_import_prepare(s->tp.pool, &it, 1), 1);
	assert_true(it.flags & DD_II_CAND_OWNED);
	assert_int_equal(it.cand_vol, 1);
	assert_int_equal(it.cand_lbn, 3);
	/* C's owner sees it shared while it is pinned: a write goes elsewhere. */
	tok_fill(blk, 999, 0, 0);
	assert_int_equal(sys_write(s, a, 3, blk), 0);
	assert_true(pbn_of(a, 3) != c);
	assert_int_equal(sys_flush(s), 0);
	/* C is free now, but pinned: new writes never land on it. */
	for (i = 0; i < 200; i++) {
		tok_fill(blk, 3000 + i, 0, 0);
		assert_int_equal(sys_write(s, b, 100 + i, blk), 0);
		p = pbn_of(b, 100 + i);
		assert_true(p != c);
	}
	it.flags |= DD_II_SAME;	/* the caller compared before the free */
	assert_int_equal(dd_import_apply(s->tp.pool, &it, 1), 0);
	assert_false(it.flags & DD_II_SHARED);	/* C has no referrer left */
	assert_int_equal(get(s, a, 3), 999);
	dd_volume_close(a);
	dd_volume_close(b);
	free(im.ids);
	sys_free(s);
}

/* Resuming an import rewrites LBNs it mapped already: written as any write. */
static void a_resumed_import_rewrites_mapped_lbns_as_any_write(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image im = image_new(700, 400);
	struct import_result r;

	assert_int_equal(import_image(s, a, &im, NULL, &r), 0);
	assert_int_equal(import_image(s, b, &im, NULL, &r), 0);
	assert_int_equal(r.shared, im.n);
	assert_int_equal(import_image(s, b, &im, NULL, &r), 0);
	assert_int_equal(r.hinted, 0);
	assert_int_equal(r.written, im.n);	/* copy on write of each shared block */
	reads_image(s, a, &im);
	reads_image(s, b, &im);
	dd_volume_close(a);
	dd_volume_close(b);
	free(im.ids);
	sys_free(s);
}

/* Duplicates inside one machine: a later chunk shares an earlier chunk's block. */
static void duplicates_within_one_import_are_shared(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0);
	struct image im = image_new(1024, 0);
	struct import_result r;
	u64 i;

	for (i = 0; i < im.n; i++)
		im.ids[i] = 600 + i % 256;	/* four copies of one chunk */
	assert_int_equal(import_image(s, a, &im, NULL, &r), 0);
	assert_int_equal(r.written, 256);
	assert_int_equal(r.shared, 768);
	assert_int_equal(data_used(s), 256);
	reads_image(s, a, &im);
	dd_volume_close(a);
	free(im.ids);
	sys_free(s);
}

/* A crash after the flush keeps both machines; before it, what the import
 * shared since the last flush may be gone (as a write would be), nothing else. */
static void a_crash_keeps_what_the_flush_made_durable(void **state)
{
	struct ddsys *s = sys_new();
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct image im = image_new(900, 2000), half = image_new(900, 2000);
	struct import_result r;
	u64 i;

	assert_int_equal(import_image(s, a, &im, NULL, &r), 0);
	assert_int_equal(sys_flush(s), 0);
	half.n = 512;
	assert_int_equal(import_image(s, b, &half, NULL, &r), 0);
	assert_int_equal(sys_flush(s), 0);
	half.n = 900;
	for (i = 0; i < 512; i++)
		half.ids[i] = 0;
	assert_int_equal(import_image(s, b, &half, NULL, &r), 0);	/* the rest, unflushed */
	dd_volume_close(a);
	dd_volume_close(b);
	sys_crash(s);
	assert_int_equal(sys_open(s), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, 1, &a), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, 2, &b), 0);
	reads_image(s, a, &im);
	for (i = 0; i < im.n; i++) {
		u64 got = get(s, b, i);

		if (i < 512)
			assert_int_equal(got, im.ids[i]);
		else
			assert_true(got == 0 || got == im.ids[i]);
	}
	dd_volume_close(a);
	dd_volume_close(b);
	free(im.ids);
	free(half.ids);
	sys_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_second_similar_machine_is_shared_not_written),
		cmocka_unit_test(runs_between_sparse_hooks_are_followed),
		cmocka_unit_test(only_byte_equal_blocks_are_shared_whatever_the_hash_says),
		cmocka_unit_test(volumes_of_different_domains_never_share_at_import),
		cmocka_unit_test(the_sharing_cap_is_honoured_at_import),
		cmocka_unit_test(a_write_to_the_candidate_never_changes_what_is_shared),
		cmocka_unit_test(a_freed_candidate_is_never_shared),
		cmocka_unit_test(a_guest_write_to_the_lbn_is_never_lost),
		cmocka_unit_test(commits_between_the_steps_change_nothing),
		cmocka_unit_test(a_pinned_candidate_freed_is_not_allocated),
		cmocka_unit_test(a_resumed_import_rewrites_mapped_lbns_as_any_write),
		cmocka_unit_test(duplicates_within_one_import_are_shared),
		cmocka_unit_test(a_crash_keeps_what_the_flush_made_durable),
	};

	tp_quiet(true);
	return cmocka_run_group_tests_name("import", tests, NULL, NULL);
}
