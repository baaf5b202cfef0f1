// SPDX-License-Identifier: GPL-2.0
/* The scanner's driver for the tests (ddscan.h). */
#include "ddscan.h"
#include <dm-dedup/format.h>

static const u8 scan_zero[DD_BLOCK_SIZE];

static void scan_hook(const struct scan_hooks *h, struct ddsys *s, enum scan_phase ph,
		      struct dd_scan_batch *b)
{
	if (h && h->between)
		h->between(h->ctx, s, ph, b);
}

int scan_pass(struct ddsys *s, bool full, const struct scan_hooks *h, struct scan_result *res)
{
	struct dd_dev *dev = dd_ramdev_dev(s->data);
	struct dd_scan_batch *b = calloc(1, sizeof(*b));
	u8 (*d)[DD_BLOCK_SIZE] = malloc((size_t)DD_SCAN_BATCH_MAX * DD_BLOCK_SIZE);
	u8 *c = malloc(DD_BLOCK_SIZE);
	struct scan_result dummy;
	u32 i;
	int r;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (!b || !d || !c) {
		r = -ENOMEM;
		goto out;
	}
	r = dd_scan_start_pass(s->tp.pool, full);
	if (r)
		goto out;
	for (;;) {
		r = dd_scan_prepare(s->tp.pool, b);
		if (r <= 0)
			break;
		res->batches++;
		res->items += b->nr;
		scan_hook(h, s, SCAN_AFTER_PREPARE, b);
		for (i = 0; i < b->nr; i++) {
			struct dd_scan_item *it = &b->item[i];

			if (!(it->flags & DD_SI_READ))
				continue;
			r = dd_dev_read(dev, it->pbn, d[i]);
			if (r)
				goto release;
			it->hash = h && h->fake_hash ? h->fake_hash :
				   dd_xxh64(d[i], DD_BLOCK_SIZE, DD_INDEX_SEED);
			if (!memcmp(d[i], scan_zero, DD_BLOCK_SIZE)) {
				it->flags |= DD_SI_ZERO;
				res->zero++;
			}
		}
		scan_hook(h, s, SCAN_AFTER_READ, b);
		r = dd_scan_match(s->tp.pool, b);
		if (r < 0)
			goto release;
		res->candidates += (u64)r;
		scan_hook(h, s, SCAN_AFTER_MATCH, b);
		for (i = 0; i < b->nr; i++) {
			struct dd_scan_item *it = &b->item[i];

			if (!(it->flags & DD_SI_CAND))
				continue;
			r = dd_dev_read(dev, it->cand, c);
			if (r)
				goto release;
			if (!memcmp(c, d[i], DD_BLOCK_SIZE)) {
				it->flags |= DD_SI_SAME;
				res->same++;
			}
		}
		scan_hook(h, s, SCAN_AFTER_COMPARE, b);
		r = dd_scan_apply(s->tp.pool, b);
		if (r)
			goto out;
		for (i = 0; i < b->nr; i++)
			if (b->item[i].flags & DD_SI_MERGED)
				res->merged++;
	}
	goto out;
release:
	dd_scan_release(s->tp.pool, b);
out:
	free(b);
	free(d);
	free(c);
	return r < 0 ? r : 0;
}

int scan_unshare(struct ddsys *s, const struct unshare_hooks *h, struct unshare_result *res)
{
	struct dd_dev *dev = dd_ramdev_dev(s->data);
	struct dd_unshare_batch *b = calloc(1, sizeof(*b));
	u8 *d = malloc(DD_BLOCK_SIZE);
	struct unshare_result dummy;
	u32 i;
	int r;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (!b || !d) {
		r = -ENOMEM;
		goto out;
	}
	r = dd_scan_unshare_start(s->tp.pool);
	if (r && r != -EBUSY)
		goto out;
	for (;;) {
		r = dd_scan_unshare_prepare(s->tp.pool, b);
		if (r == -EAGAIN)
			continue;	/* the kernel drops the lock here */
		if (r <= 0)
			break;
		res->batches++;
		res->items += b->nr;
		if (h && h->between)
			h->between(h->ctx, s, UNSHARE_AFTER_PREPARE, b);
		for (i = 0; i < b->nr; i++) {
			struct dd_unshare_item *it = &b->item[i];

			if (!(it->flags & DD_UI_COPY))
				continue;
			r = dd_dev_read(dev, it->old_pbn, d);
			if (!r)
				r = dd_dev_write(dev, it->new_pbn, d);
			if (r) {
				dd_scan_unshare_release(s->tp.pool, b);
				goto out;
			}
			res->copies++;
		}
		if (h && h->between)
			h->between(h->ctx, s, UNSHARE_AFTER_COPY, b);
		r = dd_scan_unshare_apply(s->tp.pool, b);
		if (r)
			goto out;
		for (i = 0; i < b->nr; i++)
			res->remapped += (b->item[i].flags & (DD_UI_DONE | DD_UI_KEEP)) == DD_UI_DONE;
	}
out:
	free(b);
	free(d);
	return r < 0 ? r : 0;
}

static void import_hook(const struct import_hooks *h, struct ddsys *s, enum import_phase ph,
			struct dd_import_item *it, u32 n)
{
	if (h && h->between)
		h->between(h->ctx, s, ph, it, n);
}

int import_write(struct ddsys *s, struct dd_volume *v, u64 lbn, u32 n, const void *blocks,
		 const bool *skip, const struct import_hooks *h, struct import_result *res)
{
	struct dd_dev *dev = dd_ramdev_dev(s->data);
	struct dd_import_item *it = calloc(n ? n : 1, sizeof(*it));
	const u8 *data = blocks;
	u8 *c = malloc(DD_BLOCK_SIZE);
	struct import_result dummy;
	u32 i;
	int r;

	if (!res)
		res = &dummy;
	if (!it || !c) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		it[i].vol = dd_volume_id(v);
		it[i].lbn = lbn + i;
		if (skip && skip[i])
			continue;
		it[i].flags = DD_II_HASHED;
		it[i].hash = h && h->fake_hash ? h->fake_hash :
			     dd_xxh64(data + (size_t)i * DD_BLOCK_SIZE, DD_BLOCK_SIZE, DD_INDEX_SEED);
	}
	r = dd_import_plan(s->tp.pool, it, n);
	if (r < 0)
		goto out;
	res->hinted += (u64)r;
	import_hook(h, s, IMPORT_AFTER_PLAN, it, n);
	r = dd_import_prepare(s->tp.pool, it, n);
	if (r < 0)
		goto out;
	res->kept += (u64)r;
	import_hook(h, s, IMPORT_AFTER_PREPARE, it, n);
	for (i = 0; i < n; i++) {
		if (!(it[i].flags & DD_II_CAND))
			continue;
		r = dd_dev_read(dev, it[i].cand, c);
		if (r) {
			dd_import_release(s->tp.pool, it, n);
			goto out;
		}
		if (!memcmp(c, data + (size_t)i * DD_BLOCK_SIZE, DD_BLOCK_SIZE)) {
			it[i].flags |= DD_II_SAME;
			res->same++;
		}
	}
	import_hook(h, s, IMPORT_AFTER_COMPARE, it, n);
	r = dd_import_apply(s->tp.pool, it, n);
	if (r)
		goto out;
	for (i = 0; i < n; i++) {
		if (it[i].flags & DD_II_SHARED) {
			res->shared++;
			continue;
		}
		if (skip && skip[i])
			continue;
		r = sys_write(s, v, lbn + i, data + (size_t)i * DD_BLOCK_SIZE);
		if (r)
			goto out;
		res->written++;
	}
	dd_import_index(s->tp.pool, it, n);
out:
	free(it);
	free(c);
	return r < 0 ? r : 0;
}
