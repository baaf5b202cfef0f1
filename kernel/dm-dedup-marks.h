/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dedup-marks.h: the written marks of in-place writes, set by map().
 *
 * map() may not take the pool lock, so it cannot tell the engine that a block
 * it writes in place has changed.  It sets the block's bit here instead (one
 * atomic bit operation, none when the bit is set already) and the scanner
 * thread hands the bits to the engine (dd_scan_mark_written()) under the pool
 * lock before each batch.  A summary bit per 4096 blocks keeps that hand-over
 * proportional to the regions written, not to the size of the pool.
 *
 * Ordering: map() sets the block bit, then the summary bit; the hand-over
 * clears the summary bit, then takes the words.  A bit set after the
 * hand-over read its word leaves its summary bit set for the next one, so no
 * mark is lost, only delayed.  A lost mark would cost savings, never data:
 * merges compare bytes under pins (dm-dedup-scan.c).
 *
 * The bitmap grows with the data device (marks_resize(), on a pool resume);
 * map() reads it under RCU.
 */
#ifndef DM_DEDUP_MARKS_H
#define DM_DEDUP_MARKS_H

#include <linux/bitops.h>
#include <linux/rcupdate.h>
#include <linux/types.h>

#define MARKS_SUMMARY_SHIFT	12	/* blocks per summary bit: 4096 */

struct written_marks {
	u64 nr_blocks;
	unsigned long *bits;		/* one per data block */
	unsigned long *summary;		/* one per 2^MARKS_SUMMARY_SHIFT blocks */
};

/* Any context, no lock: the block was written in place. */
static inline void marks_set(struct written_marks __rcu **slot, u64 pbn)
{
	struct written_marks *wm;

	rcu_read_lock();
	wm = rcu_dereference(*slot);
	if (likely(wm && pbn < wm->nr_blocks) && !test_bit(pbn, wm->bits)) {
		set_bit(pbn, wm->bits);
		smp_mb__after_atomic();	/* the block bit before the summary bit */
		if (!test_bit(pbn >> MARKS_SUMMARY_SHIFT, wm->summary))
			set_bit(pbn >> MARKS_SUMMARY_SHIFT, wm->summary);
	}
	rcu_read_unlock();
}

#endif /* DM_DEDUP_MARKS_H */
