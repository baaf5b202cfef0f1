// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: dd_check() over a damaged copy of a valid pool image
 * (same input format as fuzz_open, without the operations).
 *
 * The checker must never crash, leak or hang, its counters must add up,
 * and it must not pass an image the engine cannot read: when it reports no
 * error, a read-only open and a walk of every volume, map and record must
 * succeed.
 */
#include "fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned fz_check_images[4] = { 0, 1, 3, 0 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct dd_check_result res;
	struct fz_ovl *o;
	u8 b0 = fz_u8(&in), flags = fz_u8(&in);
	u64 sum = 0;
	u32 i;

	u32 nops;

	fz_u8(&in);
	nops = fz_u8(&in) % (FZ_MAX_OPS + 1);
	for (i = 0; i < nops * 4; i++)
		fz_u8(&in);		/* the operations of fuzz_open: unused here */
	/* Not the wide image: the check costs about 1 us per data block. */
	o = fz_patched(fz_image(fz_check_images[b0 & 3]), &in, flags & FZ_F_FIX_JOURNAL);
	if (!fz_sane(fz_ovl_dev(o))) {
		fz_ovl_free(o);
		return 0;
	}
	fz_check(fz_ovl_dev(o), (b0 & 0x20) ? 4096 : 0, &res);
	for (i = 0; i < DD_CHK_NR_CODES; i++)
		sum += res.count[i];
	if (sum != res.errors + res.warnings)
		FZ_DIE("check counts %llu findings, %llu errors + %llu warnings",
		       (unsigned long long)sum, (unsigned long long)res.errors,
		       (unsigned long long)res.warnings);

	if (!res.errors) {
		struct dd_bm_opts ro = { .read_only = true, .capacity = (b0 & 0x10) ? 8 : 0 };
		struct dd_pool *pool;
		struct dd_bm *bm;
		int r;

		if (dd_bm_create(fz_ovl_dev(o), &ro, &bm))
			abort();
		r = dd_pool_open(bm, DD_OPEN_READ_ONLY, NULL, &pool);
		if (r)
			FZ_DIE("the check passes a pool that does not open: %d", r);
		r = fz_walk(pool, 1u << 16);
		if (r)
			FZ_DIE("the check passes a pool whose walk fails: %d", r);
		dd_pool_close(pool);
		dd_bm_destroy(bm);
	}
	fz_ovl_free(o);
	return 0;
}
