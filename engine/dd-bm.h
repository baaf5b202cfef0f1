/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Block manager: the engine's only way to reach the metadata device.
 *
 * Implemented twice: on dm-bufio in the kernel (kernel/dd-bm-bufio.c) and
 * on a small cache over a file, a block device or a fault-injecting RAM
 * device in userspace (userspace/bm-cache.c).  Both follow dm-bufio's
 * semantics, which the commit protocol relies on:
 *
 *  - A buffer obtained by read/read_try/new is held until put; a held buffer
 *    is never evicted and never written back unless it was marked dirty.
 *  - The engine marks a buffer dirty only once its contents are committed
 *    (journalled and pointed to by a durable superblock); a dirty buffer may
 *    be written back at any time after that and at the latest by write_dirty.
 *  - write_direct replaces the block's contents on disk *and* in the cache
 *    (if cached); it is complete after the next write_dirty.
 *  - forget drops a clean, unheld buffer so the next read goes to the disk.
 *
 * Each buffer carries DD_BM_AUX_SIZE bytes of engine state (struct dd_aux),
 * zeroed whenever the buffer is (re)assigned to a block.
 */
#ifndef DD_BM_H
#define DD_BM_H

#include "dd-env.h"

struct dd_bm;
struct dd_buf;

#define DD_BM_AUX_SIZE	32

int dd_bm_read(struct dd_bm *bm, u64 b, struct dd_buf **out);
int dd_bm_read_try(struct dd_bm *bm, u64 b, struct dd_buf **out); /* -EWOULDBLOCK if not cached */
int dd_bm_new(struct dd_bm *bm, u64 b, struct dd_buf **out);	/* contents undefined */
void dd_bm_put(struct dd_buf *buf);
void dd_bm_mark_dirty(struct dd_buf *buf);
void dd_bm_forget(struct dd_bm *bm, u64 b);

int dd_bm_write_direct(struct dd_bm *bm, u64 b, const void *data);
int dd_bm_write_dirty(struct dd_bm *bm);
int dd_bm_flush(struct dd_bm *bm);

void *dd_buf_data(struct dd_buf *buf);
void *dd_buf_aux(struct dd_buf *buf);
u64 dd_buf_blocknr(struct dd_buf *buf);

u64 dd_bm_nr_blocks(struct dd_bm *bm);

#endif
