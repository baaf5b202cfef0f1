/* SPDX-License-Identifier: GPL-2.0 */
#ifndef DD_BM_BUFIO_H
#define DD_BM_BUFIO_H

#include <linux/blkdev.h>

struct dd_bm;

struct dd_bm *dd_bm_bufio_create(struct block_device *bdev, unsigned int reserved,
				 bool read_only);
void dd_bm_bufio_set_minimum(struct dd_bm *bm, unsigned int n);
u64 dd_bm_bufio_device_blocks(struct dd_bm *bm);	/* re-reads the size; grows only */
void dd_bm_bufio_destroy(struct dd_bm *bm);

#endif
