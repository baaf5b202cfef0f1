/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dedup-epoch.h: epochs of in-flight data I/O.
 *
 * A bio that looks a mapping up (in map() or the worker) first enters the
 * current epoch, and leaves it when its data I/O is done.  Before a commit
 * makes the blocks freed by its transaction reusable, the worker flips the
 * epoch and waits until the old one is empty: every bio that may still use
 * an old mapping of a freed block has finished.
 *
 * Why this is enough, for any number of flips (tests/unit/test_kglue.c):
 * dd_epoch_enter() increments the count of the epoch it read, then (after a
 * full barrier) reads the epoch again and keeps the count only if the epoch
 * is unchanged; otherwise it drops it and retries.  The flip stores the new
 * epoch, then (after a full barrier) reads the old epoch's count.  Take a
 * bio that kept its count in epoch e and the flip f that moved the epoch
 * away from e next after the bio's second read:
 *  - f's store comes after the bio's second read, so by the store-buffer
 *    argument (both sides: store, full barrier, load) f's load of count[e]
 *    sees the bio's increment: f waits for the bio;
 *  - the flips before the bio's second read left the epoch at e; the
 *    mapping changes the worker made before them are visible to the bio's
 *    lookup: the flip's store of e is preceded by a full barrier, and the
 *    second read is an acquire load, so every load of the lookup comes after
 *    it (with a plain read, a weakly ordered CPU could satisfy the lookup's
 *    loads early, from before a flip that went e -> e^1 -> e in between).
 * So each bio is either waited for by the first flip that follows its
 * lookup, or looked up after every change that flip is about to publish.
 * (A bio cannot count itself in an epoch that was already drained: the
 * re-read would see the newer epoch.)
 *
 * The writer side (dd_epoch_flip_and_drain) runs with the pool lock held for
 * write, one at a time; it sleeps.
 */
#ifndef DM_DEDUP_EPOCH_H
#define DM_DEDUP_EPOCH_H

#include <linux/atomic.h>
#include <linux/compiler.h>
#include <asm/barrier.h>
#include <linux/wait.h>

struct dd_epochs {
	unsigned int cur;		/* 0 or 1 */
	atomic_t count[2];
	wait_queue_head_t wait;
};

static inline void dd_epochs_init(struct dd_epochs *e)
{
	e->cur = 0;
	atomic_set(&e->count[0], 0);
	atomic_set(&e->count[1], 0);
	init_waitqueue_head(&e->wait);
}

static inline void dd_epoch_exit(struct dd_epochs *e, unsigned int epoch)
{
	/* Release: the bio's data I/O is done before it stops counting. */
	smp_mb__before_atomic();
	if (atomic_dec_and_test(&e->count[epoch]) && wq_has_sleeper(&e->wait))
		wake_up(&e->wait);
}

/* Enters the current epoch; returns it, for dd_epoch_exit(). */
static inline unsigned int dd_epoch_enter(struct dd_epochs *e)
{
	unsigned int epoch;

	for (;;) {
		epoch = READ_ONCE(e->cur);
		atomic_inc(&e->count[epoch]);
		smp_mb__after_atomic();
		/* Acquire: the caller's lookup is ordered after this read. */
		if (likely(smp_load_acquire(&e->cur) == epoch))
			return epoch;
		dd_epoch_exit(e, epoch);	/* a flip in between: count again */
	}
}

/* Makes a new epoch current and waits until the old one is empty. */
static inline void dd_epoch_flip_and_drain(struct dd_epochs *e)
{
	unsigned int old = e->cur;

	smp_mb();	/* mapping and cache changes before the flip */
	WRITE_ONCE(e->cur, old ^ 1);
	smp_mb();	/* the flip before reading the old count */
	wait_event(e->wait, !atomic_read(&e->count[old]));
}

#endif /* DM_DEDUP_EPOCH_H */
