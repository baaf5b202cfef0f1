// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test-only module: a kernel WARN on load, so the harness self-test can prove that a
 * WARN in the guest fails the run.  Never loaded outside that self-test.
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/bug.h>

static int __init dd_selftest_warn_init(void)
{
	WARN(1, "dd_selftest_warn: deliberate warning for the harness self-test\n");
	return 0;
}

static void __exit dd_selftest_warn_exit(void)
{
}

module_init(dd_selftest_warn_init);
module_exit(dd_selftest_warn_exit);

MODULE_DESCRIPTION("dm-dedup harness self-test: WARN on load");
MODULE_LICENSE("GPL");
