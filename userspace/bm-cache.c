// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace block manager: a bounded LRU cache of metadata blocks over a
 * dd_dev, with dm-bufio's semantics (see engine/dd-bm.h).
 *
 * Options exist for tests: 'eager' writes a dirty buffer back as soon as it
 * is marked dirty (bufio may write it at any time; the commit protocol must
 * not care), and 'read_only' keeps every write in memory (an overlay used
 * to replay a journal for dump/check without touching the device).
 */
#include "dd-bm.h"
#include "dd-dev.h"
#include "libdmdedup.h"
#include <dm-dedup/format.h>

struct dd_buf {
	u64 blocknr;
	u32 hold;
	bool dirty;
	bool pinned;			/* read-only overlay: never evicted */
	struct dd_buf *hnext;
	struct dd_buf *prev, *next;	/* LRU of unheld buffers, most recent first */
	struct dd_bm *bm;
	u64 aux[DD_BM_AUX_SIZE / 8];
	u8 data[DD_BLOCK_SIZE] __attribute__((aligned(64)));
};

struct dd_bm {
	struct dd_dev *dev;
	struct dd_bm_opts opts;
	struct dd_buf **hash;
	u32 hash_size;
	u32 nr_bufs;
	struct dd_buf lru;		/* sentinel */
	int write_error;
	struct dd_bm_counters cnt;
};

static u32 dd_bm_hash(struct dd_bm *bm, u64 b)
{
	return (u32)((b * 0x9e3779b97f4a7c15ULL) >> 32) & (bm->hash_size - 1);
}

static void dd_lru_unlink(struct dd_buf *buf)
{
	buf->prev->next = buf->next;
	buf->next->prev = buf->prev;
	buf->prev = buf->next = NULL;
}

static void dd_lru_push(struct dd_bm *bm, struct dd_buf *buf)
{
	buf->next = bm->lru.next;
	buf->prev = &bm->lru;
	bm->lru.next->prev = buf;
	bm->lru.next = buf;
}

static struct dd_buf *dd_bm_lookup(struct dd_bm *bm, u64 b)
{
	struct dd_buf *buf;

	for (buf = bm->hash[dd_bm_hash(bm, b)]; buf; buf = buf->hnext)
		if (buf->blocknr == b)
			return buf;
	return NULL;
}

static void dd_bm_unhash(struct dd_bm *bm, struct dd_buf *buf)
{
	struct dd_buf **p = &bm->hash[dd_bm_hash(bm, buf->blocknr)];

	while (*p != buf)
		p = &(*p)->hnext;
	*p = buf->hnext;
}

static int dd_bm_writeback(struct dd_bm *bm, struct dd_buf *buf)
{
	int r;

	if (bm->opts.read_only)
		return 0;
	r = dd_dev_write(bm->dev, buf->blocknr, buf->data);
	if (r)
		return r;
	bm->cnt.writebacks++;
	buf->dirty = false;
	return 0;
}

/* Frees unheld buffers from the LRU tail until there is room for one more. */
static int dd_bm_make_room(struct dd_bm *bm)
{
	struct dd_buf *buf = bm->lru.prev;
	int r;

	while (bm->nr_bufs >= bm->opts.capacity && buf != &bm->lru) {
		struct dd_buf *prev = buf->prev;

		if (!buf->pinned) {
			if (buf->dirty) {
				r = dd_bm_writeback(bm, buf);
				if (r)
					return r;
			}
			dd_lru_unlink(buf);
			dd_bm_unhash(bm, buf);
			free(buf);
			bm->nr_bufs--;
			bm->cnt.evictions++;
		}
		buf = prev;
	}
	return 0;	/* over capacity only if everything is held or pinned */
}

static int dd_bm_get(struct dd_bm *bm, u64 b, bool do_read, bool try_only, struct dd_buf **out)
{
	struct dd_buf *buf;
	int r;

	if (b >= bm->dev->nr_blocks)
		return -EINVAL;
	buf = dd_bm_lookup(bm, b);
	if (buf) {
		if (!buf->hold++)
			dd_lru_unlink(buf);
		bm->cnt.hits++;
		*out = buf;
		return 0;
	}
	if (try_only)
		return -EWOULDBLOCK;
	r = dd_bm_make_room(bm);
	if (r)
		return r;
	buf = aligned_alloc(64, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, offsetof(struct dd_buf, data));
	buf->blocknr = b;
	buf->bm = bm;
	if (do_read) {
		bm->cnt.misses++;
		r = dd_dev_read(bm->dev, b, buf->data);
		if (r) {
			free(buf);
			return r;
		}
	} else {
		memset(buf->data, 0, DD_BLOCK_SIZE);
	}
	buf->hold = 1;
	buf->hnext = bm->hash[dd_bm_hash(bm, b)];
	bm->hash[dd_bm_hash(bm, b)] = buf;
	bm->nr_bufs++;
	*out = buf;
	return 0;
}

int dd_bm_read(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	return dd_bm_get(bm, b, true, false, out);
}

int dd_bm_read_try(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	return dd_bm_get(bm, b, false, true, out);
}

int dd_bm_new(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	return dd_bm_get(bm, b, false, false, out);
}

void dd_bm_put(struct dd_buf *buf)
{
	DD_BUG_ON(!buf->hold);
	if (!--buf->hold)
		dd_lru_push(buf->bm, buf);
}

void dd_bm_mark_dirty(struct dd_buf *buf)
{
	struct dd_bm *bm = buf->bm;

	buf->dirty = true;
	if (bm->opts.read_only) {
		buf->pinned = true;
	} else if (bm->opts.eager) {
		int r = dd_bm_writeback(bm, buf);

		if (r && !bm->write_error)
			bm->write_error = r;	/* reported by the next write_dirty */
	}
}

void dd_bm_forget(struct dd_bm *bm, u64 b)
{
	struct dd_buf *buf = dd_bm_lookup(bm, b);

	if (!buf || buf->hold || buf->dirty || buf->pinned)
		return;
	dd_lru_unlink(buf);
	dd_bm_unhash(bm, buf);
	free(buf);
	bm->nr_bufs--;
}

int dd_bm_write_direct(struct dd_bm *bm, u64 b, const void *data)
{
	struct dd_buf *buf;
	int r;

	if (b >= bm->dev->nr_blocks)
		return -EINVAL;
	if (bm->opts.read_only) {
		r = dd_bm_new(bm, b, &buf);
		if (r)
			return r;
		memcpy(buf->data, data, DD_BLOCK_SIZE);
		buf->pinned = true;
		buf->dirty = true;
		dd_bm_put(buf);
		return 0;
	}
	r = dd_dev_write(bm->dev, b, data);
	if (r)
		return r;
	bm->cnt.direct_writes++;
	buf = dd_bm_lookup(bm, b);
	if (buf) {
		memcpy(buf->data, data, DD_BLOCK_SIZE);
		buf->dirty = false;
	}
	return 0;
}

int dd_bm_write_dirty(struct dd_bm *bm)
{
	struct dd_buf *buf;
	u32 i;
	int r = bm->write_error;

	bm->write_error = 0;
	if (r)
		return r;
	if (bm->opts.read_only)
		return 0;
	for (i = 0; i < bm->hash_size; i++) {
		for (buf = bm->hash[i]; buf; buf = buf->hnext) {
			if (!buf->dirty)
				continue;
			r = dd_bm_writeback(bm, buf);
			if (r)
				return r;
		}
	}
	return 0;
}

int dd_bm_flush(struct dd_bm *bm)
{
	if (bm->opts.read_only)
		return 0;
	return dd_dev_flush(bm->dev);
}

void *dd_buf_data(struct dd_buf *buf)
{
	return buf->data;
}

void *dd_buf_aux(struct dd_buf *buf)
{
	return buf->aux;
}

u64 dd_buf_blocknr(struct dd_buf *buf)
{
	return buf->blocknr;
}

u64 dd_bm_nr_blocks(struct dd_bm *bm)
{
	return bm->dev->nr_blocks;
}

int dd_bm_create(struct dd_dev *dev, const struct dd_bm_opts *opts, struct dd_bm **out)
{
	struct dd_bm *bm = calloc(1, sizeof(*bm));
	u32 hs = 1024;

	if (!bm)
		return -ENOMEM;
	bm->dev = dev;
	bm->opts = *opts;
	if (!bm->opts.capacity)
		bm->opts.capacity = DD_BM_DEFAULT_CAPACITY;
	while (hs < bm->opts.capacity)
		hs <<= 1;
	bm->hash_size = hs;
	bm->hash = calloc(hs, sizeof(*bm->hash));
	if (!bm->hash) {
		free(bm);
		return -ENOMEM;
	}
	bm->lru.next = bm->lru.prev = &bm->lru;
	*out = bm;
	return 0;
}

/* Writes back dirty buffers (unless read-only) and frees the cache. */
int dd_bm_destroy(struct dd_bm *bm)
{
	struct dd_buf *buf, *next;
	u32 i;
	int r = 0;

	if (!bm)
		return 0;
	if (!bm->opts.read_only)
		r = dd_bm_write_dirty(bm);
	for (i = 0; i < bm->hash_size; i++) {
		for (buf = bm->hash[i]; buf; buf = next) {
			next = buf->hnext;
			DD_BUG_ON(buf->hold);
			free(buf);
		}
	}
	free(bm->hash);
	free(bm);
	return r;
}

/* Drops every buffer without writing anything (a simulated crash). */
void dd_bm_drop(struct dd_bm *bm)
{
	struct dd_buf *buf, *next;
	u32 i;

	if (!bm)
		return;
	for (i = 0; i < bm->hash_size; i++) {
		for (buf = bm->hash[i]; buf; buf = next) {
			next = buf->hnext;
			free(buf);
		}
	}
	free(bm->hash);
	free(bm);
}

void dd_bm_get_counters(struct dd_bm *bm, struct dd_bm_counters *c)
{
	*c = bm->cnt;
	c->nr_bufs = bm->nr_bufs;
}
