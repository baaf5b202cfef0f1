// SPDX-License-Identifier: GPL-2.0
/*
 * Base images, patches and walks for the fuzz targets (see fuzz_common.h).
 * The images are built with the engine itself, so every structure the
 * engine writes (deep map trees, shared blocks, a deleted volume half
 * reclaimed, an interrupted snapshot, a journal to replay, needs_check)
 * is there for the patches to damage.
 */
#include "fuzz_common.h"

static const u8 fz_zero[DD_BLOCK_SIZE];

static void fz_log(enum dd_log_level lvl, const char *msg)
{
	(void)lvl;
	(void)msg;
}

/* FZ_VERBOSE=1 in the environment (reproducing a crash): engine log lines
 * and check findings go to stderr. */
bool fz_verbose(void)
{
	static int v = -1;

	if (v < 0)
		v = getenv("FZ_VERBOSE") != NULL;
	return v;
}

void fz_quiet(void)
{
	if (!fz_verbose())
		dd_set_log_hook(fz_log);
}

static void fz_report(void *ctx, enum dd_check_code code, bool error, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "  check %s [%s]: %s\n", error ? "error" : "warning",
		dd_check_code_name(code), msg);
}

#define FZ_TRY(x) do { int __r = (x); if (__r) { \
		fprintf(stderr, "fuzz image: %s failed: %d\n", #x, __r); abort(); } } while (0)

static void fz_write(struct dd_volume *v, u64 lbn)
{
	FZ_TRY(tp_write(v, lbn, NULL));
}

static struct dd_volume *fz_vol(struct tpool *tp, u32 id, bool create)
{
	struct dd_volume *v;

	if (create)
		FZ_TRY(dd_volume_create(tp->pool, id));
	FZ_TRY(dd_volume_open(tp->pool, id, &v));
	return v;
}

static void fz_new_pool(struct tpool *tp, u64 meta, u64 data, u32 journal)
{
	memset(tp, 0, sizeof(*tp));
	FZ_TRY(tp_create(tp, meta, data, journal, NULL));
}

/* Image 0: a bit of everything, committed and closed cleanly. */
static void fz_build_mixed(struct tpool *tp)
{
	static const u64 far[] = { 0, 507, 508, 508ULL * 508, 131071000, 1ULL << 40, DD_MAX_ADDR };
	struct dd_volume *v1, *v2, *v3, *v4;
	bool excl, done;
	u64 i;

	fz_new_pool(tp, 640, 1024, 128);
	v1 = fz_vol(tp, 1, true);
	for (i = 0; i < 600; i++) {
		fz_write(v1, i);
		if (i % 200 == 199)
			FZ_TRY(dd_pool_commit(tp->pool));
	}
	v2 = fz_vol(tp, 2, true);
	for (i = 0; i < sizeof(far) / sizeof(far[0]); i++)
		fz_write(v2, far[i]);
	FZ_TRY(dd_pool_commit(tp->pool));
	FZ_TRY(dd_snapshot_create(tp->pool, 3, 1));
	for (i = 0; i < 50; i++)
		fz_write(v1, i);		/* COW splits */
	FZ_TRY(dd_pool_commit(tp->pool));
	v3 = fz_vol(tp, 3, false);
	for (i = 0; i < 10; i++)
		FZ_TRY(dd_map_make_exclusive(v3, i, &excl));
	FZ_TRY(dd_map_unmap(v3, 300, 100, DD_UNMAP_DISCARD));
	v4 = fz_vol(tp, 70, true);		/* second volume-table leaf */
	for (i = 0; i < 100; i++)
		fz_write(v4, i * 7);
	FZ_TRY(dd_pool_commit(tp->pool));
	dd_volume_close(v4);
	FZ_TRY(dd_volume_delete(tp->pool, 70));
	FZ_TRY(dd_pool_reclaim(tp->pool, 30, &done));
	FZ_TRY(dd_pool_set_user_txn(tp->pool, 0, 7));
	FZ_TRY(dd_pool_commit(tp->pool));
	dd_volume_close(v1);
	dd_volume_close(v2);
	dd_volume_close(v3);
	tp_close(tp);
}

/* Image 1: a snapshot copy that committed part-way, then the power failed:
 * an incomplete volume, and a journal that must be replayed. */
static void fz_build_interrupted(struct tpool *tp)
{
	struct dd_ramdev *probe;
	struct dd_fault f;
	struct dd_volume *v;
	struct tpool t2;
	u64 i, before, total;
	int r;

	fz_new_pool(tp, 768, 512, 128);
	v = fz_vol(tp, 1, true);
	for (i = 0; i < 100; i++)
		fz_write(v, i * DD_MAP_ENTRIES + i % 5);	/* one entry per map leaf */
	FZ_TRY(dd_pool_commit(tp->pool));
	dd_volume_close(v);
	tp_close(tp);

	/* Learn how many writes the snapshot takes, on a copy. */
	memset(&t2, 0, sizeof(t2));
	probe = dd_ramdev_clone(tp->rd);
	DD_BUG_ON(!probe);
	t2.rd = probe;
	FZ_TRY(tp_open(&t2));
	before = dd_ramdev_nr_writes(probe);
	FZ_TRY(dd_snapshot_create(t2.pool, 2, 1));
	total = dd_ramdev_nr_writes(probe) - before;
	tp_destroy(&t2);

	FZ_TRY(tp_open(tp));
	memset(&f, 0, sizeof(f));
	f.crash_at_write = dd_ramdev_nr_writes(tp->rd) + total / 2;
	f.unflushed = DD_UNFLUSHED_DROP;
	dd_ramdev_set_fault(tp->rd, &f);
	r = dd_snapshot_create(tp->pool, 2, 1);
	DD_BUG_ON(!r || !dd_ramdev_crashed(tp->rd));
	tp_crash(tp);
}

/* Image 2: a data device with two bitmap leaves and a record tree of
 * height 1; blocks in use at both ends. */
static void fz_build_wide(struct tpool *tp)
{
	struct dd_volume *v;
	u64 i;

	fz_new_pool(tp, 1024, 33000, 256);
	v = fz_vol(tp, 5, true);
	for (i = 0; i < 32600; i++)
		fz_write(v, i);
	FZ_TRY(dd_pool_commit(tp->pool));
	/* Keep a few, so most leaves go away again. */
	FZ_TRY(dd_map_unmap(v, 40, 32500, DD_UNMAP_DISCARD));
	FZ_TRY(dd_pool_commit(tp->pool));
	for (i = 0; i < 20; i++)
		fz_write(v, 100000 + i);
	FZ_TRY(dd_pool_commit(tp->pool));
	dd_volume_close(v);
	tp_close(tp);
}

/* Image 3: a metadata write failed: the pool recorded needs_check. */
static void fz_build_needs_check(struct tpool *tp)
{
	struct dd_fault f;
	struct dd_volume *v;
	u64 i;

	fz_new_pool(tp, 512, 256, 128);
	v = fz_vol(tp, 0, true);
	for (i = 0; i < 10; i++)
		fz_write(v, i);
	FZ_TRY(dd_pool_commit(tp->pool));
	for (i = 10; i < 20; i++)
		fz_write(v, i);
	memset(&f, 0, sizeof(f));
	f.fail_write_at = dd_ramdev_nr_writes(tp->rd) + 1;
	dd_ramdev_set_fault(tp->rd, &f);
	DD_BUG_ON(!dd_pool_commit(tp->pool));
	DD_BUG_ON(dd_pool_mode(tp->pool) != DD_MODE_RO);
	dd_volume_close(v);
	tp_close(tp);
}

static struct fz_image fz_images[FZ_NR_IMAGES];

const struct fz_image *fz_image(unsigned i)
{
	static void (*const build[FZ_NR_IMAGES])(struct tpool *) = {
		fz_build_mixed, fz_build_interrupted, fz_build_wide, fz_build_needs_check,
	};
	static const char *const names[FZ_NR_IMAGES] = {
		"mixed", "interrupted-snapshot", "wide-data", "needs-check",
	};
	struct fz_image *img = &fz_images[i % FZ_NR_IMAGES];
	struct tpool tp;
	u64 b;

	if (img->rd)
		return img;
	fz_quiet();
	build[i % FZ_NR_IMAGES](&tp);
	img->name = names[i % FZ_NR_IMAGES];
	img->rd = tp.rd;
	img->nr_blocks = dd_ramdev_dev(tp.rd)->nr_blocks;
	img->used = calloc(img->nr_blocks, sizeof(u32));
	DD_BUG_ON(!img->used);
	for (b = 0; b < img->nr_blocks; b++)
		if (memcmp(dd_ramdev_block(tp.rd, b), fz_zero, DD_BLOCK_SIZE))
			img->used[img->nr_used++] = (u32)b;
	return img;
}

/* ---- patches -------------------------------------------------------------- */

static u64 fz_pick_block(const struct fz_image *img, u16 sel)
{
	if ((sel & 0x8000) && img->nr_used)
		return img->used[(sel & 0x7fff) % img->nr_used];
	return sel % img->nr_blocks;
}

static void fz_fix_csum(u8 *blk)
{
	struct dd_disk_header *h = (struct dd_disk_header *)blk;

	h->csum = cpu_to_le32(dd_walk_block_csum(blk, le32_to_cpu(h->type)));
}

/* ---- the overlay device -------------------------------------------------- */

struct fz_ovl {
	struct dd_dev dev;
	const struct fz_image *img;
	u8 **blk;		/* written blocks; NULL = the base image's */
};

static const u8 *fz_ovl_get(struct fz_ovl *o, u64 b)
{
	return o->blk[b] ? o->blk[b] : (const u8 *)dd_ramdev_block(o->img->rd, b);
}

static void fz_ovl_put(struct fz_ovl *o, u64 b, const void *data)
{
	if (!o->blk[b]) {
		o->blk[b] = malloc(DD_BLOCK_SIZE);
		DD_BUG_ON(!o->blk[b]);
	}
	memcpy(o->blk[b], data, DD_BLOCK_SIZE);
}

static int fz_ovl_read(struct dd_dev *d, u64 b, void *buf)
{
	struct fz_ovl *o = (struct fz_ovl *)d;

	if (b >= d->nr_blocks)
		return -EIO;
	memcpy(buf, fz_ovl_get(o, b), DD_BLOCK_SIZE);
	return 0;
}

static int fz_ovl_write(struct dd_dev *d, u64 b, const void *buf)
{
	if (b >= d->nr_blocks)
		return -EIO;
	fz_ovl_put((struct fz_ovl *)d, b, buf);
	return 0;
}

static int fz_ovl_flush(struct dd_dev *d)
{
	(void)d;
	return 0;
}

static void fz_ovl_destroy(struct dd_dev *d)
{
	(void)d;
}

static const struct dd_dev_ops fz_ovl_ops = {
	.read = fz_ovl_read,
	.write = fz_ovl_write,
	.flush = fz_ovl_flush,
	.destroy = fz_ovl_destroy,
};

struct dd_dev *fz_ovl_dev(struct fz_ovl *o)
{
	return &o->dev;
}

struct dd_ramdev *fz_ovl_ramdev(struct fz_ovl *o)
{
	struct dd_ramdev *rd = dd_ramdev_create(o->dev.nr_blocks);
	u64 b;

	DD_BUG_ON(!rd);
	for (b = 0; b < o->dev.nr_blocks; b++) {
		const u8 *data = fz_ovl_get(o, b);

		if (o->blk[b] || memcmp(data, fz_zero, DD_BLOCK_SIZE))
			dd_ramdev_poke(rd, b, data);
	}
	return rd;
}

void fz_ovl_free(struct fz_ovl *o)
{
	u64 b;

	for (b = 0; b < o->dev.nr_blocks; b++)
		free(o->blk[b]);
	free(o->blk);
	free(o);
}

/* ---- patches -------------------------------------------------------------- */

/* Makes the journal descriptor of each superblock slot match the images in
 * its area, so damage inside the journal reaches replay. */
static void fz_fix_journal(struct fz_ovl *o)
{
	u8 sbuf[DD_BLOCK_SIZE];
	struct dd_disk_superblock *sb = (struct dd_disk_superblock *)sbuf;
	u64 slot, nr_blocks = o->dev.nr_blocks;

	for (slot = 0; slot < DD_SB_SLOTS; slot++) {
		u64 area, txn;
		u32 n, jb, i, jcsum = 0;

		memcpy(sbuf, fz_ovl_get(o, slot), DD_BLOCK_SIZE);
		if (le32_to_cpu(sb->hdr.type) != DD_BT_SUPER)
			continue;
		txn = le64_to_cpu(sb->journal.txn);
		n = le32_to_cpu(sb->journal.nr_blocks);
		jb = le32_to_cpu(sb->journal_blocks);
		area = le64_to_cpu(sb->journal_start) + (txn % DD_JOURNAL_AREAS) * (u64)jb;
		if (n > jb || jb > DD_JOURNAL_MAX_BLOCKS || area >= nr_blocks || n > nr_blocks - area)
			continue;
		for (i = 0; i < n; i++) {
			const struct dd_disk_header *h = (const void *)fz_ovl_get(o, area + i);

			jcsum = dd_crc32c(jcsum, &h->csum, sizeof(h->csum));
		}
		sb->journal.csum = cpu_to_le32(jcsum);
		fz_fix_csum(sbuf);
		fz_ovl_put(o, slot, sbuf);
	}
}

struct fz_ovl *fz_patched(const struct fz_image *img, struct fz_in *in, bool fix_journal)
{
	struct fz_ovl *o = calloc(1, sizeof(*o));
	u8 blk[DD_BLOCK_SIZE];
	int n;

	DD_BUG_ON(!o);
	o->dev.ops = &fz_ovl_ops;
	o->dev.nr_blocks = img->nr_blocks;
	o->img = img;
	o->blk = calloc(img->nr_blocks, sizeof(*o->blk));
	DD_BUG_ON(!o->blk);
	for (n = 0; n < FZ_MAX_PATCHES && in->n >= 5; n++) {
		u64 b = fz_pick_block(img, fz_u16(in));
		u32 off = fz_u16(in) % DD_BLOCK_SIZE;
		u8 mode = fz_u8(in);
		u32 len = (mode >> FZ_P_LEN_SHIFT) + 1, i;

		memcpy(blk, fz_ovl_get(o, b), DD_BLOCK_SIZE);
		switch (mode & FZ_P_OP_MASK) {
		case FZ_P_SET:
		case FZ_P_XOR:
			for (i = 0; i < len && off + i < DD_BLOCK_SIZE; i++) {
				u8 v = fz_u8(in);

				blk[off + i] = (mode & FZ_P_OP_MASK) == FZ_P_SET ? v : blk[off + i] ^ v;
			}
			break;
		case FZ_P_ADD: {
			u64 delta = 0, cur = 0;

			if (len > 8)
				len = 8;
			if (len > DD_BLOCK_SIZE - off)
				len = DD_BLOCK_SIZE - off;
			for (i = 0; i < len; i++)
				delta |= (u64)fz_u8(in) << (8 * i);
			for (i = 0; i < len; i++)
				cur |= (u64)blk[off + i] << (8 * i);
			cur += delta;
			for (i = 0; i < len; i++)
				blk[off + i] = (u8)(cur >> (8 * i));
			break;
		}
		case FZ_P_COPY:
			memcpy(blk, fz_ovl_get(o, fz_pick_block(img, fz_u16(in))), DD_BLOCK_SIZE);
			break;
		}
		if (mode & FZ_P_FIX_HOME)
			((struct dd_disk_header *)blk)->blocknr = cpu_to_le64(b);
		if (mode & FZ_P_FIX_CSUM)
			fz_fix_csum(blk);
		fz_ovl_put(o, b, blk);
	}
	if (fix_journal)
		fz_fix_journal(o);
	return o;
}

bool fz_sane(struct dd_dev *dev)
{
	u8 buf[DD_BLOCK_SIZE];
	const struct dd_disk_superblock *sb = (const void *)buf;
	u64 slot;

	for (slot = 0; slot < DD_SB_SLOTS && slot < dev->nr_blocks; slot++) {
		if (dev->ops->read(dev, slot, buf))
			return false;
		if (le64_to_cpu(sb->nr_data_blocks) > FZ_MAX_DATA)
			return false;
	}
	return true;
}

u64 fz_check(struct dd_dev *dev, u64 max_memory, struct dd_check_result *res)
{
	struct dd_bm_opts ro = { .read_only = true };
	struct dd_check_opts o = { .max_memory = max_memory };
	struct dd_bm *bm;

	if (fz_verbose())
		o.report = fz_report;
	if (dd_bm_create(dev, &ro, &bm))
		abort();
	dd_check(bm, &o, res);
	if (dd_bm_destroy(bm))
		FZ_DIE("read-only block manager failed to close");
	return res->errors;
}

/* ---- walks ------------------------------------------------------------------ */

/* Errors a consistent pool never returns from a read. */
static bool fz_bad(int r)
{
	return r && r != -ENODATA && r != -ENOENT;
}

static int fz_walk_volume(struct dd_pool *pool, struct dd_volume *v, u32 max_entries)
{
	static const u64 probe[] = { 0, 1, 507, 508, 600, 508ULL * 508, 1ULL << 40, DD_MAX_ADDR,
				     DD_MAX_ADDR + 1 };
	struct dd_mapping m, m2;
	struct dd_record rec;
	u64 lbn = 0, hi, n = 0;
	u32 i;
	int r, first = 0;

	for (i = 0; i < max_entries; i++) {
		r = dd_map_next(v, &lbn, &m);
		if (r) {
			if (fz_bad(r) && !first)
				first = r;
			break;
		}
		n++;
		r = dd_map_lookup(v, lbn, 0, &m2);
		if (r && !first)
			first = r;
		if (!r && (!m2.mapped || m2.pbn != m.pbn || m2.excl != m.excl))
			FZ_DIE("map_next and map_lookup disagree at LBN %llu", (unsigned long long)lbn);
		r = dd_record_get(pool, m.pbn, &rec);
		if (r && !first)
			first = r;	/* -EINVAL: a mapping beyond the data device */
		if (!r && !rec.refcount && !first)
			first = -EILSEQ;
		if (lbn >= DD_MAX_ADDR)
			break;
		/* Every entry of the first leaves, then a sample (the cost of
		 * an input stays small; the checker reads every entry). */
		lbn += (max_entries > 4096 || i < 2 * DD_MAP_ENTRIES) ? 1 : 1 + lbn % 61;
	}
	r = dd_volume_highest_lbn(v, &hi);
	if (r == -ENODATA && n && !first)
		first = -EILSEQ;
	else if (r && r != -ENODATA && !first)
		first = r;
	for (i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		dd_map_lookup(v, probe[i], DD_NOWAIT, &m);	/* may be -EWOULDBLOCK */
		r = dd_map_lookup(v, probe[i], 0, &m);
		if (probe[i] > DD_MAX_ADDR) {
			if (r != -EINVAL)
				FZ_DIE("lookup of LBN %llu returned %d", (unsigned long long)probe[i], r);
		} else if (r && !first) {
			first = r;
		}
	}
	return first;
}

int fz_walk(struct dd_pool *pool, u32 max_entries)
{
	struct dd_volume_info info;
	struct dd_pool_stats st;
	struct dd_record rec;
	u32 id = 0, nvol;
	u64 pbn;
	int r, first = 0;

	dd_pool_get_stats(pool, &st);
	for (nvol = 0; nvol < 80; nvol++) {
		struct dd_volume *v;
		u32 asked = id;

		r = dd_volume_next(pool, &id, true, &info);
		if (r) {
			if (fz_bad(r) && !first)
				first = r;
			break;
		}
		if (id < asked)
			FZ_DIE("volume_next went backwards: asked %u, got %u", asked, id);
		r = dd_volume_open_any(pool, id, &v);
		if (!r) {
			r = fz_walk_volume(pool, v, max_entries);
			dd_volume_close(v);
		}
		if (r && !first)
			first = r;
		if (!(info.flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE))) {
			r = dd_volume_open(pool, id, &v);
			if (!r)
				dd_volume_close(v);
			else if (!first)
				first = r;
		}
		if (id >= DD_MAX_VOLUME_ID)
			break;
		id++;
	}
	for (pbn = 0; pbn < st.nr_data_blocks && pbn < 600; pbn += 7) {
		r = dd_record_get(pool, pbn, &rec);
		if (r && !first)
			first = r;
	}
	return first;
}

/* ---- seeds -------------------------------------------------------------------- */

struct fz_seed {
	u8 buf[256];
	size_t len;
};

static void fz_s8(struct fz_seed *s, u8 v)
{
	if (s->len < sizeof(s->buf))
		s->buf[s->len++] = v;
}

static void fz_s16(struct fz_seed *s, u16 v)
{
	fz_s8(s, (u8)v);
	fz_s8(s, (u8)(v >> 8));
}

/* The used-block selector of the first block of the given type in image i. */
static bool fz_find(unsigned i, u32 type, u32 nth, u16 *sel)
{
	const struct fz_image *img = fz_image(i);
	u32 k;

	for (k = 0; k < img->nr_used && k < 0x8000; k++) {
		const struct dd_disk_header *h = dd_ramdev_block(img->rd, img->used[k]);

		if (le32_to_cpu(h->type) == type && img->used[k] >= 2 && !nth--) {
			*sel = (u16)(0x8000 | k);
			return true;
		}
	}
	return false;
}

static void fz_patch(struct fz_seed *s, u16 sel, u16 off, u8 op, const u8 *bytes, u32 len)
{
	u32 i;

	fz_s16(s, sel);
	fz_s16(s, off);
	fz_s8(s, (u8)(op | FZ_P_FIX_CSUM | ((len - 1) << FZ_P_LEN_SHIFT)));
	for (i = 0; i < len; i++)
		fz_s8(s, bytes[i]);
}

void fz_seed_patches(void (*emit)(void *ctx, const u8 *data, size_t len), void *ctx)
{
	static const u8 one[1] = { 1 }, ff[1] = { 0xff }, zero8[8] = { 0 };
	static const u8 ops[] = {
		/* opcode, volume, arg lo, arg hi (see fuzz_open.c) */
		0, 1, 5, 0,   0, 2, 9, 0,   1, 1, 0, 1,   2, 0, 0, 0,   3, 9, 1, 0,
		6, 3, 20, 0,  4, 2, 0, 0,   5, 0, 50, 0,  2, 0, 0, 0,
	};
	struct fz_seed s;
	unsigned i;
	u16 sel;

	for (i = 0; i < FZ_NR_IMAGES; i++) {
		u8 flags;

		/* Untouched image, read-only and with a read-write phase. */
		for (flags = 0; flags < 4; flags++) {
			memset(&s, 0, sizeof(s));
			fz_s8(&s, (u8)i);
			fz_s8(&s, flags == 0 ? 0 : flags == 1 ? FZ_F_RW :
			      flags == 2 ? (FZ_F_RW | FZ_F_ORACLE) :
			      (FZ_F_RW | FZ_F_IGNORE_CHECK | (3u << FZ_F_FAULT_SHIFT)));
			fz_s8(&s, 40);
			fz_s8(&s, flags ? sizeof(ops) / 4 : 0);
			if (flags)
				memcpy(s.buf + s.len, ops, sizeof(ops)), s.len += sizeof(ops);
			emit(ctx, s.buf, s.len);
		}
		/* A reference count off by one. */
		if (fz_find(i, DD_BT_REFS, 0, &sel)) {
			memset(&s, 0, sizeof(s));
			fz_s8(&s, (u8)i);
			fz_s8(&s, FZ_F_FIX_JOURNAL);
			fz_s8(&s, 0);
			fz_s8(&s, 0);
			fz_patch(&s, sel, sizeof(struct dd_disk_header), FZ_P_ADD, one, 1);
			emit(ctx, s.buf, s.len);
		}
		/* A map entry cleared, another pointing past the data device. */
		if (fz_find(i, DD_BT_MAP, 0, &sel)) {
			memset(&s, 0, sizeof(s));
			fz_s8(&s, (u8)i);
			fz_s8(&s, FZ_F_FIX_JOURNAL | FZ_F_RW);
			fz_s8(&s, 0);
			fz_s8(&s, 0);
			fz_patch(&s, sel, sizeof(struct dd_disk_header), FZ_P_SET, zero8, 8);
			fz_patch(&s, sel, sizeof(struct dd_disk_header) + 8 + 5, FZ_P_XOR, ff, 1);
			emit(ctx, s.buf, s.len);
		}
		/* A tree node's child pointer moved. */
		if (fz_find(i, DD_BT_NODE, 0, &sel)) {
			memset(&s, 0, sizeof(s));
			fz_s8(&s, (u8)i);
			fz_s8(&s, FZ_F_FIX_JOURNAL);
			fz_s8(&s, 0);
			fz_s8(&s, 0);
			fz_patch(&s, sel, sizeof(struct dd_disk_header), FZ_P_ADD, one, 1);
			emit(ctx, s.buf, s.len);
		}
		/* A volume table entry with a different id. */
		if (fz_find(i, DD_BT_VOLS, 0, &sel)) {
			memset(&s, 0, sizeof(s));
			fz_s8(&s, (u8)i);
			fz_s8(&s, FZ_F_FIX_JOURNAL | FZ_F_RW);
			fz_s8(&s, 0);
			fz_s8(&s, 0);
			fz_patch(&s, sel, sizeof(struct dd_disk_header) + 64, FZ_P_XOR, one, 1);
			emit(ctx, s.buf, s.len);
		}
		/* The superblocks: journal emptied, a root pointer bumped. */
		memset(&s, 0, sizeof(s));
		fz_s8(&s, (u8)i);
		fz_s8(&s, FZ_F_FIX_JOURNAL | FZ_F_RW);
		fz_s8(&s, 0);
		fz_s8(&s, 0);
		fz_patch(&s, 0, offsetof(struct dd_disk_superblock, journal.nr_blocks), FZ_P_SET,
			 zero8, 4);
		fz_patch(&s, 1, offsetof(struct dd_disk_superblock, refs), FZ_P_ADD, one, 1);
		emit(ctx, s.buf, s.len);
	}
}
