// SPDX-License-Identifier: GPL-2.0
/*
 * The engine's block manager on dm-bufio.  dm-bufio already has the
 * semantics engine/dd-bm.h asks for: held buffers are never evicted, a
 * buffer is written back only once marked dirty, and each buffer carries
 * auxiliary bytes for the engine.  struct dd_buf is never defined: it is a
 * struct dm_buffer seen through an opaque pointer.
 */
#include "dd-bm.h"
#include "dd-bm-bufio.h"

#include <linux/dm-bufio.h>
#include <dm-dedup/format.h>

struct dd_bm {
	struct dm_bufio_client *c;
	u64 nr_blocks;
	bool read_only;
};

static struct dm_buffer *to_dmb(struct dd_buf *buf)
{
	return (struct dm_buffer *)buf;
}

static int dd_bm_result(void *p, struct dm_buffer *b, struct dd_buf **out)
{
	if (IS_ERR(p))
		return PTR_ERR(p);
	if (!p)
		return -EWOULDBLOCK;
	*out = (struct dd_buf *)b;
	return 0;
}

int dd_bm_read(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	struct dm_buffer *dmb;
	void *p;

	if (b >= READ_ONCE(bm->nr_blocks))
		return -EINVAL;
	p = dm_bufio_read(bm->c, b, &dmb);
	return dd_bm_result(p, dmb, out);
}

int dd_bm_read_try(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	struct dm_buffer *dmb;
	void *p;

	if (b >= READ_ONCE(bm->nr_blocks))
		return -EINVAL;
	p = dm_bufio_get(bm->c, b, &dmb);
	return dd_bm_result(p, dmb, out);
}

int dd_bm_new(struct dd_bm *bm, u64 b, struct dd_buf **out)
{
	struct dm_buffer *dmb;
	void *p;

	if (b >= READ_ONCE(bm->nr_blocks))
		return -EINVAL;
	p = dm_bufio_new(bm->c, b, &dmb);
	return dd_bm_result(p, dmb, out);
}

void dd_bm_put(struct dd_buf *buf)
{
	dm_bufio_release(to_dmb(buf));
}

void dd_bm_mark_dirty(struct dd_buf *buf)
{
	dm_bufio_mark_buffer_dirty(to_dmb(buf));
}

void dd_bm_forget(struct dd_bm *bm, u64 b)
{
	dm_bufio_forget(bm->c, b);
}

int dd_bm_write_direct(struct dd_bm *bm, u64 b, const void *data)
{
	struct dd_buf *buf;
	int r;

	if (bm->read_only)
		return -EROFS;
	r = dd_bm_new(bm, b, &buf);
	if (r)
		return r;
	memcpy(dd_buf_data(buf), data, DD_BLOCK_SIZE);
	dm_bufio_mark_buffer_dirty(to_dmb(buf));
	dm_bufio_release(to_dmb(buf));
	return 0;
}

int dd_bm_write_dirty(struct dd_bm *bm)
{
	if (bm->read_only)
		return 0;
	return dm_bufio_write_dirty_buffers(bm->c);
}

int dd_bm_flush(struct dd_bm *bm)
{
	if (bm->read_only)
		return 0;
	return dm_bufio_issue_flush(bm->c);
}

void *dd_buf_data(struct dd_buf *buf)
{
	return dm_bufio_get_block_data(to_dmb(buf));
}

void *dd_buf_aux(struct dd_buf *buf)
{
	return dm_bufio_get_aux_data(to_dmb(buf));
}

u64 dd_buf_blocknr(struct dd_buf *buf)
{
	return dm_bufio_get_block_number(to_dmb(buf));
}

u64 dd_bm_nr_blocks(struct dd_bm *bm)
{
	return READ_ONCE(bm->nr_blocks);
}

/*
 * The metadata device's size now (it may have grown, e.g. lvextend and a
 * reload of the linear table under it).  Only growth is taken: the engine
 * never addresses blocks past its own metadata space, and a device that
 * shrank under the pool is the caller's error to report.
 */
u64 dd_bm_bufio_device_blocks(struct dd_bm *bm)
{
	u64 n = dm_bufio_get_device_size(bm->c);

	if (n > bm->nr_blocks)
		WRITE_ONCE(bm->nr_blocks, n);
	return n;
}

/* A buffer (re)assigned to a block starts with clean engine state. */
static void dd_bm_alloc_callback(struct dm_buffer *b)
{
	memset(dm_bufio_get_aux_data(b), 0, DD_BM_AUX_SIZE);
}

struct dd_bm *dd_bm_bufio_create(struct block_device *bdev, unsigned int reserved,
				 bool read_only)
{
	struct dd_bm *bm = kzalloc(sizeof(*bm), GFP_KERNEL);

	if (!bm)
		return ERR_PTR(-ENOMEM);
	bm->c = dm_bufio_client_create(bdev, DD_BLOCK_SIZE, reserved, DD_BM_AUX_SIZE,
				       dd_bm_alloc_callback, NULL, 0);
	if (IS_ERR(bm->c)) {
		void *err = bm->c;

		kfree(bm);
		return err;
	}
	bm->nr_blocks = dm_bufio_get_device_size(bm->c);
	bm->read_only = read_only;
	return bm;
}

/* Keep at least n clean buffers cached (the open transaction holds its own). */
void dd_bm_bufio_set_minimum(struct dd_bm *bm, unsigned int n)
{
	dm_bufio_set_minimum_buffers(bm->c, n);
}

void dd_bm_bufio_destroy(struct dd_bm *bm)
{
	if (!bm)
		return;
	dm_bufio_client_destroy(bm->c);
	kfree(bm);
}
