/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scanner's driver for the tests, over the system of ddsys.h: the same
 * three engine steps as the kernel's scanner thread (kernel/dm-dedup-scan.c),
 * with the data device read for real, hashes computed with the engine's
 * dd_xxh64 and the bytes compared before every merge.  Hooks let a test run
 * guest I/O between the steps, where the kernel drops the pool lock.
 */
#ifndef DDSCAN_H
#define DDSCAN_H

#include "ddsys.h"
#include "dd-scan.h"

enum scan_phase {
	SCAN_AFTER_PREPARE,	/* D pinned, not yet read */
	SCAN_AFTER_READ,	/* D read and hashed */
	SCAN_AFTER_MATCH,	/* C pinned, not yet read */
	SCAN_AFTER_COMPARE,	/* C read and compared, not yet merged */
};

struct scan_hooks {
	void (*between)(void *ctx, struct ddsys *s, enum scan_phase ph, struct dd_scan_batch *b);
	void *ctx;
	/* Every block gets this hash instead of its own (0: the real one): a
	 * hash is a hint, so only byte-equal blocks may still be merged. */
	u64 fake_hash;
};

struct scan_result {
	u64 batches, items, candidates, same, merged, zero;
};

/* One whole pass (full: over every mapped block); engine errors returned. */
int scan_pass(struct ddsys *s, bool full, const struct scan_hooks *h, struct scan_result *res);

/*
 * Unsharing (scan run 2), as the kernel's scanner thread runs it: prepare,
 * the copies (old block read, its bytes written to the reserved new block)
 * with the pool lock dropped, apply.  Starts a walk, or goes on with one an
 * earlier call left (after -ENOSPC).  Engine errors returned (-ENOSPC: the
 * walk stays active, nothing is lost).
 */
enum unshare_phase {
	UNSHARE_AFTER_PREPARE,	/* new blocks reserved, nothing copied */
	UNSHARE_AFTER_COPY,	/* copied, not yet remapped */
};

struct unshare_hooks {
	void (*between)(void *ctx, struct ddsys *s, enum unshare_phase ph,
			struct dd_unshare_batch *b);
	void *ctx;
};

struct unshare_result {
	u64 batches, items, copies, remapped;
};

int scan_unshare(struct ddsys *s, const struct unshare_hooks *h, struct unshare_result *res);

/*
 * Dedup at import, as the kernel runs it for dedupctl import (the
 * import_hint message, then the writes): the hashes of the n blocks from
 * lbn planned (blocks with skip[i] set are not written, as zeroes and free
 * space are not), the candidates pinned, read and compared with the
 * blocks, the equal ones shared; every other block written as sys_write
 * writes it; then the set indexed.  Engine errors returned.
 */
enum import_phase {
	IMPORT_AFTER_PLAN,	/* candidates named, nothing pinned */
	IMPORT_AFTER_PREPARE,	/* candidates pinned, not yet read */
	IMPORT_AFTER_COMPARE,	/* compared, not yet shared */
};

struct import_hooks {
	void (*between)(void *ctx, struct ddsys *s, enum import_phase ph,
			struct dd_import_item *it, u32 n);
	void *ctx;
	u64 fake_hash;		/* as scan_hooks' */
};

struct import_result {
	u64 hinted, kept, same, shared, written;
};

int import_write(struct ddsys *s, struct dd_volume *v, u64 lbn, u32 n, const void *blocks,
		 const bool *skip, const struct import_hooks *h, struct import_result *res);

#endif
