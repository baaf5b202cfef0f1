/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Consistency check of a dm-dedup metadata device (dedup_check and the
 * tests).  Every finding is reported through a callback with a code, so
 * tests can assert which damage was found, and a one-line message.
 */
#ifndef DD_CHECK_H
#define DD_CHECK_H

#include "libdmdedup.h"

enum dd_check_code {
	DD_CHK_OPEN,		/* superblock, geometry or journal unusable */
	DD_CHK_BLOCK,		/* a metadata block fails checksum/type/location checks */
	DD_CHK_TREE,		/* tree structure: counts, levels, bad child pointers */
	DD_CHK_META_SHARED,	/* a metadata block reachable twice */
	DD_CHK_META_LEAK,	/* metadata block allocated but unreachable */
	DD_CHK_META_FREE,	/* metadata block reachable but marked free */
	DD_CHK_MAP_RANGE,	/* map entry points beyond the data device */
	DD_CHK_MAP_FLAGS,	/* unknown bits in a map entry */
	DD_CHK_REFCOUNT,	/* record refcount != number of map entries */
	DD_CHK_DATA_LEAK,	/* data block allocated but unreferenced */
	DD_CHK_DATA_FREE,	/* data block referenced but free in the bitmap */
	DD_CHK_OWNER,		/* owner back-pointer wrong */
	DD_CHK_EXCL,		/* exclusive bit on a block that is not exclusive */
	DD_CHK_VOLUME,		/* volume table entry malformed */
	DD_CHK_STATS,		/* superblock or volume counters disagree */
	DD_CHK_NEEDS_CHECK,	/* needs_check flag set (warning) */
	DD_CHK_DOMAIN,		/* a block referenced from another dedup domain */
	DD_CHK_SCAN,		/* the scanner's trees (written marks, saved index) */
	DD_CHK_NR_CODES
};

struct dd_check_opts {
	u64 max_memory;		/* bytes for reference counting, 0 = 1 GiB */
	void (*report)(void *ctx, enum dd_check_code code, bool error, const char *msg);
	void *ctx;
	u64 max_reports;	/* per code; 0 = 10 */
};

struct dd_check_result {
	u64 errors, warnings;
	u64 count[DD_CHK_NR_CODES];
	u64 meta_blocks_seen, data_blocks_seen, map_entries_seen;
};

const char *dd_check_code_name(enum dd_check_code code);

/* Checks the metadata behind bm (opened read-only: nothing is written). */
int dd_check(struct dd_bm *bm, const struct dd_check_opts *opts, struct dd_check_result *res);

#endif
