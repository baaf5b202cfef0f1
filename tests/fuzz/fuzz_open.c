// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: open a damaged copy of a valid pool image.
 *
 * Phase 1 opens it read-only (a read-only block manager), walks every
 * volume, map and record through the API and aborts; the device must not
 * be written.  Phase 2 (FZ_F_RW) opens it read-write, optionally with a
 * fault injected by the RAM device (failed read, failed write, power cut),
 * runs the operations encoded in the input, commits (or aborts) and
 * closes.  Nothing may crash, leak, hang or trip UBSan.  With FZ_F_ORACLE,
 * an image that passes dd_check before phase 2 must pass it afterwards too
 * (after a power cycle if a fault was injected): a consistent pool stays
 * consistent whatever the operations and faults.
 */
#include "fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const u64 fz_lbns[16] = {
	0, 1, 2, 3, 49, 50, 100, 507, 508, 509, 599, 600, 1000, 508ULL * 508, 1ULL << 40,
	DD_MAX_ADDR,
};
static const u32 fz_vols[8] = { 0, 1, 2, 3, 5, 70, 9, 200 };

struct fz_op {
	u8 code, vol;
	u16 arg;
};

static u32 fz_vol_id(u8 v)
{
	return (v & 0x80) ? (u32)(v & 0x7f) : fz_vols[v & 7];
}

static u64 fz_lbn(u16 arg)
{
	u64 base = fz_lbns[arg & 15];

	return base == DD_MAX_ADDR ? base : base + (arg >> 4);
}

/* One operation; returns its result (errors are expected on damaged pools). */
static int fz_run_op(struct dd_pool *pool, const struct fz_op *op)
{
	u32 id = fz_vol_id(op->vol);
	struct dd_pool_stats st;
	struct dd_volume *v;
	struct dd_mapping m;
	bool b;
	u64 pbn, nr;
	int r;

	switch (op->code % 14) {
	case 0:		/* write */
		r = dd_volume_open(pool, id, &v);
		if (r)
			return r;
		r = tp_write(v, fz_lbn(op->arg), NULL);
		dd_volume_close(v);
		return r;
	case 1:		/* discard */
		r = dd_volume_open(pool, id, &v);
		if (r)
			return r;
		nr = (op->arg >> 4) == 0xfff ? DD_MAX_ADDR + 1 - fz_lbns[op->arg & 15] :
					       (u64)(op->arg >> 4) + 1;
		r = dd_map_unmap(v, fz_lbns[op->arg & 15], nr, DD_UNMAP_DISCARD);
		dd_volume_close(v);
		return r;
	case 2:
		return dd_pool_commit(pool);
	case 3:
		return dd_snapshot_create(pool, id, fz_vols[op->arg & 7]);
	case 4:
		return dd_volume_delete(pool, id);
	case 5:
		return dd_pool_reclaim(pool, (u64)op->arg + 1, &b);
	case 6:
		r = dd_volume_open(pool, id, &v);
		if (r)
			return r;
		r = dd_map_make_exclusive(v, fz_lbn(op->arg), &b);
		dd_volume_close(v);
		return r;
	case 7:
		return dd_volume_create(pool, id);
	case 8:
		return dd_pool_abort(pool);
	case 9:
		r = dd_volume_open(pool, id, &v);
		if (r)
			return r;
		dd_map_lookup(v, fz_lbn(op->arg), DD_NOWAIT, &m);
		r = dd_map_lookup(v, fz_lbn(op->arg), 0, &m);
		dd_volume_close(v);
		return r;
	case 10:
		dd_pool_get_stats(pool, &st);
		nr = st.nr_data_blocks + op->arg % 4096;
		return nr > FZ_MAX_DATA ? 0 : dd_pool_resize_data(pool, nr);
	case 11:
		dd_pool_get_stats(pool, &st);
		return dd_pool_set_user_txn(pool, (op->vol & 1) ? op->arg : st.user_txn, op->arg);
	case 12:
		return dd_pool_clear_needs_check(pool);
	default:
		r = dd_data_reserve(pool, &pbn);
		if (!r)
			dd_data_unreserve(pool, pbn);
		return r;
	}
}

static void fz_read_only(struct dd_dev *dev, u8 b0)
{
	struct dd_bm_opts bo = { .read_only = true, .capacity = (b0 & 0x10) ? 8 : 0 };
	struct dd_pool *pool;
	struct dd_bm *bm;
	u64 writes = dev->writes;
	int r;

	if (dd_bm_create(dev, &bo, &bm))
		abort();
	r = dd_pool_open(bm, DD_OPEN_READ_ONLY, NULL, &pool);
	if (!r) {
		fz_walk(pool, 1024);
		if (!dd_volume_create(pool, 99))
			FZ_DIE("a read-only pool created a volume");
		if (!dd_pool_abort(pool))
			fz_walk(pool, 64);
		dd_pool_close(pool);
	}
	if (dd_bm_destroy(bm))
		FZ_DIE("read-only block manager failed");
	if (dev->writes != writes)
		FZ_DIE("a read-only open wrote %llu blocks",
		       (unsigned long long)(dev->writes - writes));
}

/* Faults need the RAM device; without one the overlay takes the writes. */
static void fz_read_write(struct fz_ovl *o, u8 b0, u8 flags, u8 fparam,
			  const struct fz_op *ops, u32 nops)
{
	struct dd_bm_opts bo = { .capacity = (b0 & 0x10) ? 8 : 0, .eager = b0 & 0x40 };
	u32 kind = (flags >> FZ_F_FAULT_SHIFT) & 3, i;
	struct dd_ramdev *rd = kind ? fz_ovl_ramdev(o) : NULL;
	struct dd_dev *dev = rd ? dd_ramdev_dev(rd) : fz_ovl_dev(o);
	struct dd_check_result res;
	bool clean = false;
	struct dd_pool *pool;
	struct dd_fault f;
	struct dd_bm *bm;
	int r;

	if ((flags & FZ_F_ORACLE) && fz_sane(dev))
		clean = fz_check(dev, 0, &res) == 0;
	if (dd_bm_create(dev, &bo, &bm))
		abort();
	memset(&f, 0, sizeof(f));
	f.fail_sticky = flags & FZ_F_STICKY;
	f.seed = fparam;
	if (kind == 1)
		f.fail_read_at = dev->reads + fparam + 1;
	else if (kind == 2)
		f.fail_write_at = dd_ramdev_nr_writes(rd) + fparam + 1;
	else if (kind == 3)
		f.crash_at_write = dd_ramdev_nr_writes(rd) + (u64)fparam * 2 + 1;
	f.unflushed = (enum dd_unflushed)(fparam % 3);
	f.tear = fparam & 0x80;
	if (kind)
		dd_ramdev_set_fault(rd, &f);

	r = dd_pool_open(bm, (flags & FZ_F_IGNORE_CHECK) ? DD_OPEN_IGNORE_CHECK : 0, NULL, &pool);
	if (fz_verbose())
		fprintf(stderr, "rw open: %d (check before: %s; fault %u: read %llu write %llu crash %llu, unflushed %d%s)\n",
			r, clean ? "clean" : "not clean or not checked", kind,
			(unsigned long long)f.fail_read_at, (unsigned long long)f.fail_write_at,
			(unsigned long long)f.crash_at_write, f.unflushed, f.tear ? ", torn" : "");
	if (!r) {
		for (i = 0; i < nops; i++) {
			enum dd_mode before = dd_pool_mode(pool);

			r = fz_run_op(pool, &ops[i]);
			if (fz_verbose())
				fprintf(stderr, "op %u: code %u vol %u arg %u -> %d (mode %d, %llu writes)\n",
					i, ops[i].code % 14, fz_vol_id(ops[i].vol), ops[i].arg, r,
					dd_pool_mode(pool), (unsigned long long)dev->writes);
			if (clean && !kind && (r == -EILSEQ ||
					       (before == DD_MODE_RW && dd_pool_mode(pool) != DD_MODE_RW)))
				FZ_DIE("operation %u (code %u) on a consistent pool: %d, mode %d", i,
				       ops[i].code % 14, r, dd_pool_mode(pool));
		}
		if (flags & FZ_F_ABORT)
			dd_pool_abort(pool);
		else
			dd_pool_commit(pool);
		fz_walk(pool, 256);
		dd_pool_close(pool);
	} else if (clean && !kind) {
		FZ_DIE("a pool that passes the check does not open read-write: %d", r);
	}
	dd_bm_destroy(bm);	/* fails on a crashed device; catches leaked holds */
	if (rd)
		dd_ramdev_reboot(rd);
	if (clean && fz_check(dev, 0, &res))
		FZ_DIE("a consistent pool fails the check after %u operations (fault %u at %u)",
		       nops, kind, fparam);
	if (rd)
		dd_ramdev_free(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fz_op ops[FZ_MAX_OPS];
	struct fz_ovl *o;
	u8 b0 = fz_u8(&in), flags = fz_u8(&in), fparam = fz_u8(&in);
	u32 nops = fz_u8(&in) % (FZ_MAX_OPS + 1), i;

	for (i = 0; i < nops; i++) {
		ops[i].code = fz_u8(&in);
		ops[i].vol = fz_u8(&in);
		ops[i].arg = fz_u16(&in);
	}
	o = fz_patched(fz_image(b0), &in, flags & FZ_F_FIX_JOURNAL);
	fz_read_only(fz_ovl_dev(o), b0);
	if (flags & FZ_F_RW)
		fz_read_write(o, b0, flags, fparam, ops, nops);
	fz_ovl_free(o);
	return 0;
}
