// SPDX-License-Identifier: GPL-2.0
/*
 * The test harness itself: the checks the crash tests rely on must fail when
 * they should.  A check that can never fail proves nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include "dd-internal.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_fresh_pool_passes_the_read_write_check),
		cmocka_unit_test(a_pool_that_comes_back_with_needs_check_fails_the_read_write_check),
		cmocka_unit_test(a_pool_opened_read_only_fails_the_read_write_check),
		cmocka_unit_test(a_crash_of_one_device_cuts_the_power_of_its_peer),
	};

	tp_quiet(false);
	return cmocka_run_group_tests_name("harness", tests, NULL, NULL);
}
