/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libdmdedup: the userspace build of the dm-dedup engine, for the tools and
 * the tests.  The engine API is engine/dd-engine.h; this header adds the
 * userspace block managers and devices, and helpers for opening a pool.
 */
#ifndef LIBDMDEDUP_H
#define LIBDMDEDUP_H

#include "dd-engine.h"
#include "dd-dev.h"

#define DD_BM_DEFAULT_CAPACITY	8192	/* blocks (32 MiB) */

struct dd_bm_opts {
	u32 capacity;		/* cached blocks beyond those held; 0 = default */
	bool eager;		/* write dirty buffers back at once (tests) */
	bool read_only;		/* never write the device: keep writes in memory */
};

struct dd_bm_counters {
	u64 hits, misses, writebacks, direct_writes, evictions;
	u32 nr_bufs;
};

int dd_bm_create(struct dd_dev *dev, const struct dd_bm_opts *opts, struct dd_bm **out);
int dd_bm_destroy(struct dd_bm *bm);
void dd_bm_drop(struct dd_bm *bm);
void dd_bm_get_counters(struct dd_bm *bm, struct dd_bm_counters *c);

/* Quietens or captures engine log lines (NULL restores stderr). */
/* The table-driven CRC32C, for the test that proves the fast path agrees. */
u32 dd_crc32c_portable(u32 seed, const void *data, size_t len);

void dd_set_log_hook(void (*hook)(enum dd_log_level lvl, const char *msg));

#endif
