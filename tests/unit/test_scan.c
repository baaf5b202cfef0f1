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
#include "dd-walk.h"
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

/*
 * A writable open frees the saved index; a damaged metadata bitmap makes that
 * change fail.  It was taken for unreadable scanner state (the pool stayed
 * read-write with no needs_check); it is a failed change like any other.
 */
static void a_damaged_metadata_bitmap_met_freeing_the_saved_index_opens_read_only(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0);
	struct dd_pool_stats st;
	struct dd_scan_stats ss;
	struct dd_walk_info g;
	u8 page[DD_BLOCK_SIZE];
	u64 i;

	for (i = 0; i < 50; i++)
		put(s, a, i, 500 + i);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);	/* indexed: saved at close */
	dd_volume_close(a);
	dd_walk_get_info(s->tp.pool, &g);
	assert_int_equal(dd_scan_save(s->tp.pool), 0);
	assert_int_equal(dd_pool_commit(s->tp.pool), 0);
	sys_close(s);

	memcpy(page, dd_ramdev_block(s->tp.rd, g.mbitmap_start), DD_BLOCK_SIZE);
	page[2000] ^= 4;				/* the checksum no longer matches */
	dd_ramdev_poke(s->tp.rd, g.mbitmap_start, page);
	assert_int_equal(sys_open(s), 0);
	dd_pool_get_stats(s->tp.pool, &st);
	assert_int_equal(st.mode, DD_MODE_RO);
	assert_true(st.needs_check);
	dd_scan_get_stats(s->tp.pool, &ss);
	assert_int_equal(ss.index.bytes, 0);			/* the scanner is off */
	assert_int_equal(dd_volume_open(s->tp.pool, 1, &a), 0);
	for (i = 0; i < 50; i += 7)
		assert_int_equal(get(s, a, i), 500 + i);
	dd_volume_close(a);
	sys_close(s);
	sys_destroy(s);
	free(s);
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


/* ---- unsharing (scan run 2) ---- */

static struct dd_scan_stats sstats(struct ddsys *s)
{
	struct dd_scan_stats ss;

	dd_scan_get_stats(s->tp.pool, &ss);
	return ss;
}

/* No mapped block of the volumes is marked merged; returns how many of
 * their LBNs map a block that has more than one reference. */
static u64 no_merged_left(struct ddsys *s, struct dd_volume **v, u32 n)
{
	struct dd_mapping m;
	struct dd_record rec;
	u64 lbn, shared = 0;
	u32 k;

	for (k = 0; k < n; k++)
		for (lbn = 0; dd_map_next(v[k], &lbn, &m) == 0; lbn++) {
			assert_int_equal(dd_record_get(s->tp.pool, m.pbn, &rec), 0);
			assert_false(rec.merged);
			shared += rec.refcount > 1;
		}
	return shared;
}

static void unsharing_gives_every_merged_lbn_its_own_block_with_the_same_bytes(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *v[3] = { vol_in(s, 1, 0), vol_in(s, 2, 0), vol_in(s, 3, 0) };
	struct unshare_result ur;
	struct dd_scan_stats ss;
	struct scan_result res;
	u64 i, before;

	for (i = 0; i < 300; i++) {
		put(s, v[0], i, 1000 + i);
		put(s, v[1], i + 7, 1000 + i);
	}
	for (i = 0; i < 40; i++)
		put(s, v[2], i * 2, i < 30 ? 77 : 1100 + i);	/* within one volume too */
	assert_int_equal(sys_flush(s), 0);
	before = stats(s).data_used;
	assert_int_equal(before, 640);
	assert_int_equal(scan_pass(s, false, NULL, &res), 0);
	assert_true(res.merged >= 300 + 29 + 10);
	assert_true(stats(s).data_used < before);
	assert_int_equal(sstats(s).freed, before - stats(s).data_used);

	assert_int_equal(scan_unshare(s, NULL, &ur), 0);
	assert_true(ur.copies > 0);
	assert_int_equal(stats(s).data_used, before);
	assert_int_equal(stats(s).shared_blocks, 0);
	assert_int_equal(stats(s).data_reserved, 0);
	assert_int_equal(no_merged_left(s, v, 3), 0);
	for (i = 0; i < 300; i++) {
		assert_int_equal(get(s, v[0], i), 1000 + i);
		assert_int_equal(get(s, v[1], i + 7), 1000 + i);
		assert_int_not_equal(pbn_of(v[0], i), pbn_of(v[1], i + 7));
	}
	for (i = 0; i < 40; i++)
		assert_int_equal(get(s, v[2], i * 2), i < 30 ? 77 : 1100 + i);
	ss = sstats(s);
	assert_int_equal(ss.unshared, ss.merged);
	assert_int_equal(ss.freed, 0);
	assert_false(ss.unshare_active);
	assert_int_equal(ss.unshare_todo, 640);
	assert_int_equal(ss.unshare_done, 640);
	/* The copies are not marked written: a pass does not merge them again. */
	assert_int_equal(scan_pass(s, false, NULL, &res), 0);
	assert_int_equal(res.items, 0);
	assert_int_equal(stats(s).data_used, before);
	/* And it all survives a clean reopen and dedup_check. */
	for (i = 0; i < 3; i++)
		dd_volume_close(v[i]);
	reopen(s);
	for (i = 0; i < 3; i++)
		assert_int_equal(dd_volume_open(s->tp.pool, (u32)i + 1, &v[i]), 0);
	assert_int_equal(get(s, v[1], 299 + 7), 1299);
	assert_int_equal(sstats(s).unshared, ss.unshared);
	for (i = 0; i < 3; i++)
		dd_volume_close(v[i]);
	sys_free(s);
}

/* Golden image G with snapshots S and T, and an unrelated X holding the
 * same blocks: merges share X's blocks with G's; unsharing gives X its own
 * again and leaves G, S and T sharing one block per LBN, whichever of the
 * two is walked first. */
static void unsharing_keeps_the_sharing_snapshots_made(void **state)
{
	unsigned layout;

	for (layout = 0; layout < 2; layout++) {
		u32 g = layout ? 2 : 1, x = layout ? 1 : 4;
		u32 sn = layout ? 3 : 2, t = layout ? 4 : 3;
		struct ddsys *s = sys_new(DATA);
		struct dd_volume *vg = vol_in(s, g, 0), *vx = vol_in(s, x, 0), *vs, *vt;
		struct dd_volume *all[4];
		struct dd_record rec;
		u64 i, before;

		for (i = 0; i < 50; i++)
			put(s, vg, i, 500 + i);
		put(s, vg, 100, 4242);		/* shared by the snapshots only */
		assert_int_equal(dd_snapshot_create(s->tp.pool, sn, g), 0);
		assert_int_equal(dd_snapshot_create(s->tp.pool, t, sn), 0);	/* a snapshot of a snapshot */
		assert_int_equal(dd_volume_open(s->tp.pool, sn, &vs), 0);
		assert_int_equal(dd_volume_open(s->tp.pool, t, &vt), 0);
		for (i = 0; i < 50; i++)
			put(s, vx, i + 1, 500 + i);
		assert_int_equal(sys_flush(s), 0);
		before = stats(s).data_used;
		assert_int_equal(before, 101);
		assert_int_equal(scan_pass(s, true, NULL, NULL), 0);
		assert_int_equal(stats(s).data_used, 51);
		assert_int_equal(scan_unshare(s, NULL, NULL), 0);
		assert_int_equal(stats(s).data_used, before);
		all[0] = vg, all[1] = vx, all[2] = vs, all[3] = vt;
		assert_int_equal(no_merged_left(s, all, 4), 3 * 51);
		for (i = 0; i < 50; i++) {
			assert_int_equal(pbn_of(vg, i), pbn_of(vs, i));
			assert_int_equal(pbn_of(vg, i), pbn_of(vt, i));
			assert_int_not_equal(pbn_of(vg, i), pbn_of(vx, i + 1));
			assert_int_equal(dd_record_get(s->tp.pool, pbn_of(vg, i), &rec), 0);
			assert_int_equal(rec.refcount, 3);
			assert_int_equal(dd_record_get(s->tp.pool, pbn_of(vx, i + 1), &rec), 0);
			assert_int_equal(rec.refcount, 1);
			assert_int_equal(get(s, vg, i), 500 + i);
			assert_int_equal(get(s, vt, i), 500 + i);
			assert_int_equal(get(s, vx, i + 1), 500 + i);
		}
		assert_int_equal(pbn_of(vg, 100), pbn_of(vt, 100));
		assert_int_equal(get(s, vs, 100), 4242);
		assert_int_equal(sstats(s).freed, 0);
		dd_volume_close(vg);
		dd_volume_close(vx);
		dd_volume_close(vs);
		dd_volume_close(vt);
		sys_free(s);
	}
}

/* Guest writes where the kernel drops the pool lock: to an LBN being given
 * its copy (the copy must not replace the write: its block is released)
 * and to an LBN that is given its copy later. */
struct uracer {
	struct dd_volume *a, *b;
	enum unshare_phase when;
	bool done;
};

static void unshare_race(void *ctx, struct ddsys *s, enum unshare_phase ph,
			 struct dd_unshare_batch *b)
{
	struct uracer *r = ctx;
	u32 i;

	if (r->done || ph != r->when)
		return;
	for (i = 0; i < b->nr; i++)
		if (b->item[i].vol == 1 && b->item[i].lbn == 5)
			break;
	assert_true(i < b->nr);		/* a's LBN 5 gets a copy */
	assert_true(b->item[i].flags & DD_UI_COPY);
	put(s, r->a, 5, 999);
	put(s, r->b, 6, 888);
	r->done = true;
}

static void a_write_between_prepare_and_apply_is_never_lost_and_its_block_is_released(void **state)
{
	static const enum unshare_phase when[] = { UNSHARE_AFTER_PREPARE, UNSHARE_AFTER_COPY };
	unsigned w;

	for (w = 0; w < 2; w++) {
		struct ddsys *s = sys_new(DATA);
		struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0), *c = vol_in(s, 3, 0);
		struct uracer r = { a, b, when[w], false };
		struct unshare_hooks h = { unshare_race, &r };
		struct dd_volume *all[3] = { a, b, c };
		u64 i;

		for (i = 0; i < 20; i++) {
			put(s, a, i, 10 + i);
			put(s, b, i, 10 + i);
			put(s, c, i, 10 + i);
		}
		assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
		assert_int_equal(stats(s).data_used, 20);
		assert_int_equal(scan_unshare(s, &h, NULL), 0);
		assert_true(r.done);
		assert_int_equal(get(s, a, 5), 999);
		assert_int_equal(get(s, b, 5), 15);
		assert_int_equal(get(s, c, 5), 15);
		assert_int_equal(get(s, a, 6), 16);
		assert_int_equal(get(s, b, 6), 888);
		assert_int_equal(get(s, c, 6), 16);
		for (i = 0; i < 20; i++)
			if (i != 5 && i != 6) {
				assert_int_equal(get(s, a, i), 10 + i);
				assert_int_equal(get(s, b, i), 10 + i);
				assert_int_equal(get(s, c, i), 10 + i);
			}
		/* 20 + the two writes' blocks + 38 copies: the ones reserved for
		 * a's LBN 5 and b's LBN 6 (in the same batch) went back. */
		assert_int_equal(stats(s).data_used, 60);
		assert_int_equal(stats(s).data_reserved, 0);
		assert_int_equal(no_merged_left(s, all, 3), 0);
		assert_int_equal(sstats(s).unshare_raced, 2);
		assert_int_equal(sstats(s).unshared, 38);
		dd_volume_close(a);
		dd_volume_close(b);
		dd_volume_close(c);
		sys_free(s);
	}
}

/* While a's LBN 5 is being copied, b's copy-on-write leaves a the only
 * referrer; a commit, then a write to a's LBN 5 that would go in place, then
 * a snapshot of a that shares the block again.  The old block is pinned, so
 * the write goes to a new block and the stale copy is never mapped. */
struct pinrace {
	struct dd_volume *a, *b;
	bool done;
};

static void unshare_pin_race(void *ctx, struct ddsys *s, enum unshare_phase ph,
			     struct dd_unshare_batch *b)
{
	struct pinrace *r = ctx;

	if (r->done || ph != UNSHARE_AFTER_COPY)
		return;
	put(s, r->b, 5, 888);
	assert_int_equal(sys_flush(s), 0);
	put(s, r->a, 5, 777);
	assert_int_equal(dd_snapshot_create(s->tp.pool, 9, 1), 0);
	r->done = true;
}

static void the_old_block_is_never_written_in_place_while_it_is_copied(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0), *snap;
	struct pinrace r = { a, b, false };
	struct unshare_hooks h = { unshare_pin_race, &r };
	u64 i;

	for (i = 0; i < 10; i++) {
		put(s, a, i, 10 + i);
		put(s, b, i, 10 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_unshare(s, &h, NULL), 0);
	assert_true(r.done);
	assert_int_equal(dd_volume_open(s->tp.pool, 9, &snap), 0);
	assert_int_equal(get(s, a, 5), 777);
	assert_int_equal(get(s, snap, 5), 777);
	assert_int_equal(get(s, b, 5), 888);
	for (i = 0; i < 10; i++)
		if (i != 5)
			assert_int_equal(get(s, snap, i), 10 + i);
	assert_int_equal(stats(s).data_reserved, 0);
	dd_volume_close(snap);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

struct first_item {
	bool seen;
	u32 vol;
	u64 lbn;
};

static void note_first_item(void *ctx, struct ddsys *s, enum unshare_phase ph,
			    struct dd_unshare_batch *b)
{
	struct first_item *f = ctx;

	if (!f->seen && b->nr) {
		f->seen = true;
		f->vol = b->item[0].vol;
		f->lbn = b->item[0].lbn;
	}
}

/* Three volumes with the same blocks and a filler: room for 4 of the 40
 * copies.  The walk stops with -ENOSPC where it was; after a discard it goes
 * on from there and completes. */
static void unsharing_stops_at_enospc_and_leaves_everything_readable(void **state)
{
	struct dd_scan_config cfg = { .batch = 8 };
	struct ddsys *s = sys_new(64);
	struct dd_volume *v[4] = { vol_in(s, 1, 0), vol_in(s, 2, 0), vol_in(s, 3, 0),
				   vol_in(s, 4, 0) };
	struct first_item first = { false, 0, 0 };
	struct unshare_hooks h = { note_first_item, &first };
	struct unshare_result ur;
	struct dd_scan_stats ss;
	u64 i;
	u32 k;

	assert_int_equal(dd_scan_configure(s->tp.pool, &cfg), 0);
	for (i = 0; i < 20; i++)
		for (k = 0; k < 3; k++)
			put(s, v[k], i, 10 + i);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 20);
	assert_int_equal(sys_flush(s), 0);
	for (i = 0; i < 40; i++)
		put(s, v[3], i, 700 + i);		/* 4 blocks left */
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(stats(s).data_free, 4);
	assert_int_equal(scan_unshare(s, NULL, &ur), -ENOSPC);
	assert_int_equal(ur.copies, 4);
	ss = sstats(s);
	assert_true(ss.unshare_active);
	assert_int_equal(ss.unshared, 4);
	assert_int_equal(stats(s).data_free, 0);
	assert_int_equal(stats(s).data_reserved, 0);
	assert_int_equal(dd_scan_start_pass(s->tp.pool, false), -EBUSY);
	for (i = 0; i < 20; i++)
		for (k = 0; k < 3; k++)
			assert_int_equal(get(s, v[k], i), 10 + i);
	for (i = 0; i < 40; i++)
		assert_int_equal(get(s, v[3], i), 700 + i);
	/* The pool is consistent as it stands (dedup_check on the commit). */
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(tp_check(&s->tp, NULL), 0);
	/* Space again: the walk goes on where it stopped and completes. */
	assert_int_equal(sys_discard(s, v[3], 0, 40), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_unshare(s, &h, &ur), 0);
	assert_int_equal(ur.copies, 36);
	assert_true(first.seen);		/* on from the LBN that found no block */
	assert_int_equal(first.vol, 1);
	assert_int_equal(first.lbn, 4);
	assert_int_equal(stats(s).data_used, 60);
	assert_int_equal(no_merged_left(s, v, 3), 0);
	for (i = 0; i < 20; i++)
		for (k = 0; k < 3; k++)
			assert_int_equal(get(s, v[k], i), 10 + i);
	assert_false(sstats(s).unshare_active);
	for (k = 0; k < 4; k++)
		dd_volume_close(v[k]);
	sys_free(s);
}

static void unsharing_goes_on_across_commits_the_engine_makes_on_its_own(void **state)
{
	struct ddsys *s = calloc(1, sizeof(*s));
	struct dd_volume *a, *b, *all[2];
	u64 i, commits, n = 400;

	assert_non_null(s);
	assert_int_equal(sys_create(s, META, DATA, DD_JOURNAL_MIN_BLOCKS, NULL), 0);
	all[0] = a = vol_in(s, 1, 0);
	all[1] = b = vol_in(s, 2, 0);
	for (i = 0; i < n; i++) {
		put(s, a, i * 600, 20000 + i);		/* a map leaf each */
		put(s, b, i * 600, 20000 + i);
	}
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(stats(s).data_used, n);
	commits = s->st.commits;
	assert_int_equal(scan_unshare(s, NULL, NULL), 0);
	assert_true(s->st.commits >= commits + 2);	/* the journal filled up inside */
	assert_int_equal(stats(s).data_used, 2 * n);
	assert_int_equal(no_merged_left(s, all, 2), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(get(s, a, i * 600), 20000 + i);
		assert_int_equal(get(s, b, i * 600), 20000 + i);
	}
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

/*
 * A merge refused for want of metadata space is a refusal, not damage: the
 * pool stays writable and the writes of the open transaction are kept (the
 * review found the refusal marked as a failed transaction, so the next call
 * aborted it: needs_check, and the last writes gone).
 */
static void a_merge_refused_for_metadata_space_keeps_the_pool_and_its_writes(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0), *c = vol_in(s, 3, 0);
	struct dd_pool_stats st;
	u64 i, n = 0;
	int r = 0;

	(void)state;
	for (i = 0; i < 8; i++) {
		put(s, a, i, 10 + i);
		put(s, b, i, 10 + i);
	}
	assert_int_equal(sys_flush(s), 0);
	/* Fill the metadata device: one new map leaf per write, no commit. */
	for (i = 0; r == 0; i++) {
		tok_fill(blk, 1000 + i, 3, i * 508);
		r = sys_write(s, c, i * 508, blk);
		if (!r)
			n++;
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(n > 0);
	st = stats(s);
	assert_true(st.data_free > 1000);	/* it was the metadata that filled */
	r = scan_pass(s, true, NULL, NULL);
	assert_true(r == 0 || r == -ENOSPC);
	assert_int_equal(dd_pool_mode(s->tp.pool), DD_MODE_RW);
	assert_int_equal(sys_flush(s), 0);
	st = stats(s);
	assert_false(st.needs_check);
	assert_int_equal(dd_pool_mode(s->tp.pool), DD_MODE_RW);
	for (i = 0; i < n; i++)
		assert_int_equal(get(s, c, i * 508), 1000 + i);
	for (i = 0; i < 8; i++) {
		assert_int_equal(get(s, a, i), 10 + i);
		assert_int_equal(get(s, b, i), 10 + i);
	}
	dd_volume_close(a);
	dd_volume_close(b);
	dd_volume_close(c);
	sys_close(s);
	assert_int_equal(tp_check(&s->tp, NULL), 0);
	sys_destroy(s);
	free(s);
}

/*
 * Growing the data device keeps the scanner's state whole (the review found
 * the dirty-chunk bits copied at the new length out of the old array: a
 * heap over-read that ASan reports).
 */
static void growing_the_data_device_keeps_marks_and_merges_working(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	struct dd_scan_stats st;
	u64 i;

	(void)state;
	for (i = 0; i < 16; i++)
		put(s, a, i, 10 + i);
	assert_int_equal(dd_pool_resize_data(s->tp.pool, (u64)DATA * 256), 0);
	for (i = 0; i < 16; i++)
		put(s, b, i, 10 + i);
	assert_int_equal(sys_flush(s), 0);
	dd_scan_get_stats(s->tp.pool, &st);
	assert_int_equal(st.marked, 32);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(get(s, b, i), 10 + i);
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

/* Identical blocks side by side in one batch end as one copy (each later one
 * was once predicted onto the one before it, which merged away meanwhile, and
 * two copies were left of four). */
static void identical_neighbours_in_one_batch_keep_one_copy(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0);
	u64 i;

	(void)state;
	for (i = 0; i < 4; i++)
		put(s, a, i, 77);
	for (i = 4; i < 40; i++)
		put(s, a, i, 500);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 2);
	for (i = 0; i < 40; i++)
		assert_int_equal(get(s, a, i), i < 4 ? 77 : 500);
	dd_volume_close(a);
	sys_free(s);
}

/* A run that breaks (the next LBNs hold other duplicates, in another order)
 * does not hide what the index knows: every duplicate merges in one pass. */
static void a_broken_run_does_not_hide_what_the_index_knows(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *b = vol_in(s, 2, 0);
	u64 i;

	(void)state;
	for (i = 0; i < 100; i++)
		put(s, a, i, 100 + i);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	/* b: a's first two blocks, then a's others backwards. */
	put(s, b, 0, 100);
	put(s, b, 1, 101);
	for (i = 2; i < 100; i++)
		put(s, b, i, 100 + (101 - i));
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 100);
	for (i = 2; i < 100; i++)
		assert_int_equal(get(s, b, i), 100 + (101 - i));
	dd_volume_close(a);
	dd_volume_close(b);
	sys_free(s);
}

/*
 * After unsharing, a full pass merges everything again, also where the group
 * that kept the old block is a single LBN and the snapshot family got the
 * copy (the old block was left with one referrer and no owner, so no pass
 * could merge it away: one block too many per such LBN).
 */
static void a_full_pass_after_unsharing_merges_everything_again(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *a = vol_in(s, 1, 0), *c = vol_in(s, 3, 0);
	u64 i, merged_used;

	(void)state;
	for (i = 0; i < 10; i++) {
		put(s, a, i, 100 + i);
		put(s, c, i, 100 + i);
	}
	assert_int_equal(dd_snapshot_create(s->tp.pool, 2, 1), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, false, NULL, NULL), 0);
	merged_used = stats(s).data_used;
	assert_int_equal(merged_used, 10);
	assert_int_equal(scan_unshare(s, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 20);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, true, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, merged_used);
	for (i = 0; i < 10; i++) {
		assert_int_equal(get(s, a, i), 100 + i);
		assert_int_equal(get(s, c, i), 100 + i);
	}
	dd_volume_close(a);
	dd_volume_close(c);
	sys_free(s);
}

/*
 * Copies of a block that a snapshot shares merge into it, also when they
 * were scanned first (a golden image, its clones, and a guest installed on
 * its own): a shared block cannot merge away, so the owned copy merges into
 * it (before, both stayed: 20 blocks instead of 10).
 */
static void owned_copies_merge_into_a_block_a_snapshot_shares(void **state)
{
	struct ddsys *s = sys_new(DATA);
	struct dd_volume *c = vol_in(s, 3, 0), *a = vol_in(s, 1, 0);
	u64 i;

	(void)state;
	for (i = 0; i < 10; i++)
		put(s, c, i, 300 + i);		/* the lower blocks: scanned first */
	for (i = 0; i < 10; i++)
		put(s, a, i, 300 + i);
	assert_int_equal(dd_snapshot_create(s->tp.pool, 2, 1), 0);
	assert_int_equal(sys_flush(s), 0);
	assert_int_equal(scan_pass(s, true, NULL, NULL), 0);
	assert_int_equal(stats(s).data_used, 10);
	for (i = 0; i < 10; i++) {
		assert_int_equal(get(s, a, i), 300 + i);
		assert_int_equal(get(s, c, i), 300 + i);
		assert_int_equal(pbn_of(a, i), pbn_of(c, i));
	}
	/* A write to the merged LBN copies on write. */
	put(s, c, 4, 999);
	assert_int_equal(get(s, c, 4), 999);
	assert_int_equal(get(s, a, 4), 304);
	dd_volume_close(a);
	dd_volume_close(c);
	sys_free(s);
}

/*
 * A snapshot family that shares its map pages (a journal that holds a copy
 * step), with a volume outside it holding the same bytes: writes through the
 * shared pages go to new blocks (the siblings read their own bytes back),
 * the scanner and unsharing leave every volume's bytes as they were, the
 * check is clean; then the origin is deleted and the rest still reads.
 */
static void a_family_that_shares_its_map_keeps_every_volume_s_bytes_through_scans(void **state)
{
	struct ddsys *s = calloc(1, sizeof(*s));
	struct dd_volume *vg, *vx, *vs, *vt;
	struct dd_walk_info g;
	bool done;
	u64 i;

	assert_non_null(s);
	assert_int_equal(sys_create(s, 8192, DATA, 1024, NULL), 0);
	vg = vol_in(s, 1, 0);
	vx = vol_in(s, 9, 0);
	for (i = 0; i < 200; i++) {
		put(s, vg, i, 500 + i);
		put(s, vx, i + 1000, 500 + i);
	}
	assert_int_equal(dd_snapshot_create(s->tp.pool, 2, 1), 0);
	assert_int_equal(dd_snapshot_create(s->tp.pool, 3, 2), 0);
	dd_walk_get_info(s->tp.pool, &g);
	assert_true(g.incompat & DD_INCOMPAT_SHARED_MAPS);
	assert_int_equal(dd_volume_open(s->tp.pool, 2, &vs), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, 3, &vt), 0);
	for (i = 0; i < 50; i++)
		put(s, vs, i, 9000 + i);		/* through the shared pages */
	for (i = 50; i < 80; i++)
		put(s, vg, i, 7000 + i);
	assert_int_equal(sys_flush(s), 0);
	for (i = 0; i < 200; i++) {
		assert_int_equal(get(s, vg, i), i >= 50 && i < 80 ? 7000 + i : 500 + i);
		assert_int_equal(get(s, vs, i), i < 50 ? 9000 + i : 500 + i);
		assert_int_equal(get(s, vt, i), 500 + i);
	}
	assert_int_equal(scan_pass(s, true, NULL, NULL), 0);
	assert_int_equal(scan_unshare(s, NULL, NULL), 0);
	assert_int_equal(scan_pass(s, true, NULL, NULL), 0);
	assert_int_equal(sys_flush(s), 0);
	for (i = 0; i < 200; i++) {
		assert_int_equal(get(s, vg, i), i >= 50 && i < 80 ? 7000 + i : 500 + i);
		assert_int_equal(get(s, vs, i), i < 50 ? 9000 + i : 500 + i);
		assert_int_equal(get(s, vt, i), 500 + i);
		assert_int_equal(get(s, vx, i + 1000), 500 + i);
	}
	assert_int_equal(tp_check(&s->tp, NULL), 0);
	/* Every side writes again after the scan; then the origin goes. */
	for (i = 0; i < 200; i += 3) {
		put(s, vt, i, 3000 + i);
		put(s, vx, i + 1000, 4000 + i);
	}
	dd_volume_close(vg);
	assert_int_equal(dd_volume_delete(s->tp.pool, 1), 0);
	assert_int_equal(dd_pool_reclaim(s->tp.pool, ~0ULL, &done), 0);
	assert_true(done);
	assert_int_equal(sys_flush(s), 0);
	for (i = 0; i < 200; i++) {
		assert_int_equal(get(s, vs, i), i < 50 ? 9000 + i : 500 + i);
		assert_int_equal(get(s, vt, i), i % 3 ? 500 + i : 3000 + i);
		assert_int_equal(get(s, vx, i + 1000), i % 3 ? 500 + i : 4000 + i);
	}
	dd_volume_close(vx);
	dd_volume_close(vs);
	dd_volume_close(vt);
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
		cmocka_unit_test(a_damaged_metadata_bitmap_met_freeing_the_saved_index_opens_read_only),
		cmocka_unit_test(blocks_written_again_during_a_pass_are_skipped_as_volatile),
		cmocka_unit_test(writes_after_a_merge_copy_on_write),
		cmocka_unit_test(a_full_pass_finds_what_lost_marks_hid),
		cmocka_unit_test(unsharing_gives_every_merged_lbn_its_own_block_with_the_same_bytes),
		cmocka_unit_test(unsharing_keeps_the_sharing_snapshots_made),
		cmocka_unit_test(a_write_between_prepare_and_apply_is_never_lost_and_its_block_is_released),
		cmocka_unit_test(the_old_block_is_never_written_in_place_while_it_is_copied),
		cmocka_unit_test(unsharing_stops_at_enospc_and_leaves_everything_readable),
		cmocka_unit_test(unsharing_goes_on_across_commits_the_engine_makes_on_its_own),
		cmocka_unit_test(a_merge_refused_for_metadata_space_keeps_the_pool_and_its_writes),
		cmocka_unit_test(a_family_that_shares_its_map_keeps_every_volume_s_bytes_through_scans),
		cmocka_unit_test(growing_the_data_device_keeps_marks_and_merges_working),
		cmocka_unit_test(identical_neighbours_in_one_batch_keep_one_copy),
		cmocka_unit_test(a_broken_run_does_not_hide_what_the_index_knows),
		cmocka_unit_test(a_full_pass_after_unsharing_merges_everything_again),
		cmocka_unit_test(owned_copies_merge_into_a_block_a_snapshot_shares),
	};

	tp_quiet(true);
	return cmocka_run_group_tests_name("scan", tests, NULL, NULL);
}
