// SPDX-License-Identifier: GPL-2.0
/*
 * The test harness itself: the checks the crash tests rely on must fail when
 * they should.  A check that can never fail proves nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddsys.h"
#include <dm-dedup/format.h>

#define META 1024
#define DATA 64

static void a_fresh_pool_passes_the_read_write_check(void **state)
{
	struct tpool tp = { 0 };

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	assert_null(tp_not_writable(tp.pool));
	assert_int_equal(tp_reopen(&tp), 0);
	assert_null(tp_not_writable(tp.pool));
	tp_destroy(&tp);
}

/* What verify_recovery sees if a crash ever left needs_check behind. */
static void a_pool_that_comes_back_with_needs_check_fails_the_read_write_check(void **state)
{
	struct tpool tp = { 0 };
	const char *why;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	tp_quiet(true);
	assert_int_equal(dd_pool_metadata_error(tp.pool, -EIO, "a test"), DD_MODE_RO);
	tp_quiet(false);
	why = tp_not_writable(tp.pool);
	assert_non_null(why);
	assert_non_null(strstr(why, "needs_check"));
	/* needs_check was written: the pool comes back read-only. */
	tp_quiet(true);
	assert_int_equal(tp_reopen(&tp), 0);
	tp_quiet(false);
	assert_int_equal(dd_pool_mode(tp.pool), DD_MODE_RO);
	why = tp_not_writable(tp.pool);
	assert_non_null(why);
	fprintf(stderr, "# recovered pool refused: %s\n", why);
	tp_destroy(&tp);
}

static void a_pool_opened_read_only_fails_the_read_write_check(void **state)
{
	struct tpool tp = { 0 };
	struct dd_pool *ro;
	struct dd_bm *bm;
	struct dd_bm_opts o = { .read_only = true };
	const char *why;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	tp_close(&tp);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(tp.rd), &o, &bm), 0);
	assert_int_equal(dd_pool_open(bm, DD_OPEN_READ_ONLY, NULL, &ro), 0);
	why = tp_not_writable(ro);
	assert_non_null(why);
	assert_string_equal(why, "it is read-only");
	dd_pool_close(ro);
	dd_bm_drop(bm);
	tp_destroy(&tp);
}

/* Two devices on one supply: the crash write of one cuts the other too. */
static void a_crash_of_one_device_cuts_the_power_of_its_peer(void **state)
{
	static u8 a[DD_BLOCK_SIZE], b[DD_BLOCK_SIZE];
	struct dd_ramdev *meta = dd_ramdev_create(8), *data = dd_ramdev_create(8);
	struct dd_fault f = { .crash_at_write = 3, .unflushed = DD_UNFLUSHED_DROP };
	struct dd_fault keep = { .unflushed = DD_UNFLUSHED_KEEP };
	struct dd_dev *md = dd_ramdev_dev(meta), *dd = dd_ramdev_dev(data);

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	dd_ramdev_share_power(meta, data);
	dd_ramdev_set_fault(meta, &f);
	dd_ramdev_set_fault(data, &keep);
	assert_int_equal(dd_dev_write(dd, 0, a), 0);	/* unflushed, kept */
	assert_int_equal(dd_dev_write(md, 0, a), 0);
	assert_int_equal(dd_dev_write(md, 1, a), 0);
	assert_int_equal(dd_dev_write(md, 2, a), -EIO);	/* the crash write */
	assert_true(dd_ramdev_crashed(meta));
	assert_true(dd_ramdev_crashed(data));
	/* Nothing issued after the instant lands. */
	assert_int_equal(dd_dev_write(dd, 1, b), -EIO);
	assert_int_equal(dd_dev_flush(dd), -EIO);
	dd_ramdev_reboot(meta);
	dd_ramdev_reboot(data);
	assert_memory_equal(dd_ramdev_block(data, 0), a, DD_BLOCK_SIZE);
	assert_memory_not_equal(dd_ramdev_block(data, 1), b, DD_BLOCK_SIZE);
	assert_memory_not_equal(dd_ramdev_block(meta, 0), a, DD_BLOCK_SIZE);	/* dropped */
	/* After the reboot both run again; freeing one unlinks the other. */
	assert_int_equal(dd_dev_write(dd, 1, b), 0);
	dd_ramdev_free(meta);
	dd_ramdev_set_fault(data, &(struct dd_fault){ .crash_at_write = 2 });
	assert_int_equal(dd_dev_write(dd, 2, b), -EIO);
	dd_ramdev_free(data);
}

/* ---- tokens ---- */

static void tokens_tell_every_write_apart(void **state)
{
	static u8 a[DD_BLOCK_SIZE], b[DD_BLOCK_SIZE], mix[DD_BLOCK_SIZE];
	u64 id, lbn;
	u32 vol;

	tok_fill(a, 17, 3, 1234);
	tok_fill(b, 18, 3, 1234);
	assert_int_equal(tok_decode(a, &id, &vol, &lbn), TOK_WRITE);
	assert_int_equal(id, 17);
	assert_int_equal(vol, 3);
	assert_int_equal(lbn, 1234);
	assert_int_equal(tok_decode(b, &id, &vol, &lbn), TOK_WRITE);
	assert_int_equal(id, 18);
	/* A torn write: the first sector of b over a. */
	memcpy(mix, a, sizeof(mix));
	memcpy(mix, b, 512);
	assert_int_equal(tok_decode(mix, &id, &vol, &lbn), TOK_GARBAGE);
	memcpy(mix, a, sizeof(mix));
	mix[4000] ^= 1;
	assert_int_equal(tok_decode(mix, &id, &vol, &lbn), TOK_GARBAGE);
	memset(mix, 0, sizeof(mix));
	assert_int_equal(tok_decode(mix, &id, &vol, &lbn), TOK_ZERO);
}

/* ---- the model ---- */

static void the_model_allows_the_flushed_value_and_later_writes_only(void **state)
{
	struct dmodel m;

	dm_init(&m);
	dm_create(&m, 1);
	dm_may(&m, 1, 5, 10);
	dm_set(&m, 1, 5, 10);
	dm_may(&m, 1, 5, 11);
	dm_set(&m, 1, 5, 11);
	dm_flushed(&m);
	/* Only what the flush made durable. */
	assert_true(dm_allowed(&m, 1, 5, 11));
	assert_false(dm_allowed(&m, 1, 5, 10));
	assert_false(dm_allowed(&m, 1, 5, 0));
	assert_true(dm_allowed(&m, 1, 6, 0));
	/* Writes after the flush may be there, and so may the flushed value. */
	dm_may(&m, 1, 5, 12);
	dm_set(&m, 1, 5, 12);
	dm_may_zero_range(&m, 1, 0, 100);
	dm_zero_range(&m, 1, 0, 100);
	assert_true(dm_allowed(&m, 1, 5, 11));
	assert_true(dm_allowed(&m, 1, 5, 12));
	assert_true(dm_allowed(&m, 1, 5, 0));
	assert_false(dm_allowed(&m, 1, 5, 10));
	assert_false(dm_allowed(&m, 1, 6, 12));
	dm_flushed(&m);
	assert_true(dm_allowed(&m, 1, 5, 0));
	assert_false(dm_allowed(&m, 1, 5, 12));
	/* A snapshot starts as its origin was. */
	dm_may(&m, 1, 7, 20);
	dm_set(&m, 1, 7, 20);
	dm_snapshot(&m, 2, 1);
	assert_true(dm_allowed(&m, 2, 7, 20));
	assert_false(dm_allowed(&m, 2, 7, 0));
	dm_free(&m);
}

/* ---- the system ---- */

static struct dd_volume *sys_vol(struct ddsys *s, u32 id)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_create(s->tp.pool, id), 0);
	assert_int_equal(dd_volume_open(s->tp.pool, id, &v), 0);
	return v;
}

static void sys_put(struct ddsys *s, struct dmodel *m, struct dd_volume *v, u64 lbn, u8 *blk)
{
	u64 id = m->next_id++;

	tok_fill(blk, id, dd_volume_id(v), lbn);
	dm_may(m, dd_volume_id(v), lbn, id);
	assert_int_equal(sys_write(s, v, lbn, blk), 0);
	dm_set(m, dd_volume_id(v), lbn, id);
}

static void the_data_path_writes_in_place_only_to_exclusive_blocks(void **state)
{
	static u8 blk[DD_BLOCK_SIZE];
	struct ddsys s;
	struct dmodel m;
	struct dd_volume *v, *snap;
	char why[256];

	dm_init(&m);
	assert_int_equal(sys_create(&s, META, DATA, 0, NULL), 0);
	v = sys_vol(&s, 1);
	dm_create(&m, 1);
	sys_put(&s, &m, v, 0, blk);
	assert_int_equal(s.st.new_blocks, 1);
	sys_put(&s, &m, v, 0, blk);		/* new, exclusive: in place */
	assert_int_equal(s.st.in_place, 1);
	assert_int_equal(sys_flush(&s), 0);
	dm_flushed(&m);
	assert_int_equal(dd_snapshot_create(s.tp.pool, 2, 1), 0);
	dm_snapshot(&m, 2, 1);
	sys_put(&s, &m, v, 0, blk);		/* shared: a new block */
	assert_int_equal(s.st.new_blocks, 2);
	assert_int_equal(dd_volume_open(s.tp.pool, 2, &snap), 0);
	sys_put(&s, &m, snap, 1, blk);
	assert_int_equal(sys_flush(&s), 0);
	dm_flushed(&m);
	/* Volume 2's LBN 0 is its alone now, after a commit: made exclusive. */
	sys_put(&s, &m, snap, 0, blk);
	assert_int_equal(s.st.made_exclusive, 1);
	assert_int_equal(s.st.in_place, 2);
	memset(blk, 0, sizeof(blk));
	assert_int_equal(sys_write(&s, v, 0, blk), 0);	/* zero: unmapped */
	dm_set(&m, 1, 0, 0);
	assert_int_equal(s.st.zero_unmaps, 1);
	assert_int_equal(sys_flush(&s), 0);
	dm_flushed(&m);
	assert_true(s.st.passdown_blocks >= 1);
	assert_string_equal(s.violation, "");
	assert_int_equal(dm_verify(&m, &s, true, why, sizeof(why)), 0);
	dd_volume_close(v);
	dd_volume_close(snap);
	sys_destroy(&s);
	dm_free(&m);
}

/* The recovery check must refuse every way a flushed write can be lost. */
static void the_recovery_check_fails_a_pool_that_lost_a_flushed_write(void **state)
{
	static u8 blk[DD_BLOCK_SIZE], old[DD_BLOCK_SIZE];
	struct ddsys s;
	struct dmodel m;
	struct dd_volume *v;
	struct dd_mapping mp;
	char why[512];

	dm_init(&m);
	assert_int_equal(sys_create(&s, META, DATA, 0, NULL), 0);
	v = sys_vol(&s, 1);
	dm_create(&m, 1);
	sys_put(&s, &m, v, 3, blk);
	memcpy(old, blk, sizeof(old));
	sys_put(&s, &m, v, 3, blk);		/* in place */
	assert_int_equal(sys_flush(&s), 0);
	dm_flushed(&m);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), 0);
	assert_int_equal(dd_map_lookup(v, 3, 0, &mp), 0);

	/* The older write shows through. */
	dd_ramdev_poke(s.data, mp.pbn, old);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	fprintf(stderr, "# %s\n", why);
	assert_non_null(strstr(why, "reads write #1"));
	/* The mapping is there, its data is not. */
	memset(old, 0, sizeof(old));
	dd_ramdev_poke(s.data, mp.pbn, old);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	fprintf(stderr, "# %s\n", why);
	assert_non_null(strstr(why, "holds zeroes"));
	/* A torn block. */
	memcpy(old, blk, 512);
	dd_ramdev_poke(s.data, mp.pbn, old);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no write's contents"));
	dd_ramdev_poke(s.data, mp.pbn, blk);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), 0);
	/* The mapping is gone. */
	assert_int_equal(dd_map_unmap(v, 3, 1, DD_UNMAP_OTHER), 0);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	fprintf(stderr, "# %s\n", why);
	assert_non_null(strstr(why, "reads zeroes (unmapped)"));
	dd_volume_close(v);
	/* A flushed volume is missing; an unknown one exists. */
	assert_int_equal(dd_volume_delete(s.tp.pool, 1), 0);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "volume 1 is missing"));
	dm_delete(&m, 1);
	assert_int_equal(dm_verify(&m, &s, true, why, sizeof(why)), 0);
	assert_int_equal(dd_volume_create(s.tp.pool, 2), 0);
	assert_int_equal(dm_verify(&m, &s, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "volume 2 exists"));
	sys_destroy(&s);
	dm_free(&m);
}

/* The freed hook is where "passdown never hits a mapped block" is checked. */
static void passdown_of_a_mapped_block_is_a_violation(void **state)
{
	static u8 blk[DD_BLOCK_SIZE];
	struct ddsys s;
	struct dmodel m;
	struct dd_volume *v;
	struct dd_mapping mp;
	u64 pbn;

	dm_init(&m);
	assert_int_equal(sys_create(&s, META, DATA, 0, NULL), 0);
	v = sys_vol(&s, 1);
	dm_create(&m, 1);
	sys_put(&s, &m, v, 3, blk);
	assert_int_equal(sys_flush(&s), 0);
	assert_int_equal(dd_map_lookup(v, 3, 0, &mp), 0);
	s.tp.hooks.freed(s.tp.hooks.ctx, mp.pbn, 1);
	fprintf(stderr, "# %s\n", s.violation);
	assert_non_null(strstr(s.violation, "which is mapped (refcount 1, owner volume 1 LBN 3)"));
	/* ... and so is passdown of a block reserved by a write in flight. */
	s.violation[0] = 0;
	assert_int_equal(dd_data_reserve(s.tp.pool, &pbn), 0);
	s.tp.hooks.freed(s.tp.hooks.ctx, pbn, 1);
	assert_non_null(strstr(s.violation, "reserved by a write in flight"));
	dd_data_unreserve(s.tp.pool, pbn);
	/* A free block may go down: it is zeroed. */
	s.violation[0] = 0;
	s.tp.hooks.freed(s.tp.hooks.ctx, pbn, 1);
	assert_string_equal(s.violation, "");
	dd_volume_close(v);
	sys_destroy(&s);
	dm_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_fresh_pool_passes_the_read_write_check),
		cmocka_unit_test(a_pool_that_comes_back_with_needs_check_fails_the_read_write_check),
		cmocka_unit_test(a_pool_opened_read_only_fails_the_read_write_check),
		cmocka_unit_test(a_crash_of_one_device_cuts_the_power_of_its_peer),
		cmocka_unit_test(tokens_tell_every_write_apart),
		cmocka_unit_test(the_model_allows_the_flushed_value_and_later_writes_only),
		cmocka_unit_test(the_data_path_writes_in_place_only_to_exclusive_blocks),
		cmocka_unit_test(the_recovery_check_fails_a_pool_that_lost_a_flushed_write),
		cmocka_unit_test(passdown_of_a_mapped_block_is_a_violation),
	};

	tp_quiet(false);
	return cmocka_run_group_tests_name("harness", tests, NULL, NULL);
}
