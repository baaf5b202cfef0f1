// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's xxh64() (lib/xxhash.c of the guest kernel's source, compiled
 * here over tests/kshim) and libxxhash's XXH64(), which the engine's
 * dd_xxh64() uses in the kernel and in userspace: the same value for the
 * same 4 KiB blocks, so the tools can compute what the scanner computes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ddtest.h"
#include <dm-dedup/format.h>

/* From the kernel's include/linux/xxhash.h (its object is linked in). */
uint64_t xxh64(const void *input, size_t length, uint64_t seed);

static void check_block(const u8 *b, size_t len)
{
	u64 k = xxh64(b, len, DD_INDEX_SEED);

	assert_int_equal(k, dd_xxh64(b, len, DD_INDEX_SEED));
	assert_int_equal(k, XXH64(b, len, DD_INDEX_SEED));
}

static void kernel_and_userspace_xxh64_agree_on_blocks(void **state)
{
	static u8 b[DD_BLOCK_SIZE];
	u64 s = 1, i, j;

	check_block(b, sizeof(b));			/* zeroes */
	memset(b, 0xff, sizeof(b));
	check_block(b, sizeof(b));
	for (i = 0; i < 10000; i++) {
		for (j = 0; j < sizeof(b); j += 8) {
			u64 v = tr_next(&s);

			memcpy(b + j, &v, 8);
		}
		if (i % 7 == 0)			/* blocks that are mostly text */
			for (j = 0; j < sizeof(b); j++)
				b[j] = 'a' + b[j] % 26;
		check_block(b, sizeof(b));
		check_block(b, 1 + i % sizeof(b));	/* every tail length too */
		check_block(b + 1 + i % 7, sizeof(b) - 8);	/* unaligned */
	}
	/* The known answer for empty input, seed 0. */
	assert_int_equal(xxh64("", 0, 0), 0xef46db3751d8e999ULL);
}

static void a_nonzero_seed_changes_the_hash(void **state)
{
	static const u8 b[64] = { 1, 2, 3 };

	assert_int_equal(xxh64(b, sizeof(b), 42), XXH64(b, sizeof(b), 42));
	assert_int_not_equal(xxh64(b, sizeof(b), 42), xxh64(b, sizeof(b), 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kernel_and_userspace_xxh64_agree_on_blocks),
		cmocka_unit_test(a_nonzero_seed_changes_the_hash),
	};

	return cmocka_run_group_tests_name("xxh64", tests, NULL, NULL);
}
