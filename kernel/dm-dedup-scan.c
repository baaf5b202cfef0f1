// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-scan.c: the scanner thread of a pool.  It moves the data of the
 * engine's scan batches (engine/dd-scan.h decides what to read, compare and
 * merge), limits its rate, and answers the `scan ...` pool messages.
 * docs/scanner.md says why it is built this way; docs/dm-dedup.rst lists the
 * messages and statistics.
 *
 * One batch, with the pool lock held only around the engine calls:
 *
 *   lock:   hand map()'s written marks to the engine; dd_scan_prepare()
 *           pins the blocks D; forget the cache entries of their owners;
 *           flip and drain the epoch (no in-place write that looked up an
 *           owner before the pin is still in flight);
 *   unlock: read every D (contiguous blocks in one bio, idle I/O priority),
 *           hash it, note the blocks of zeroes;
 *   lock:   dd_scan_match() pins the candidates C; forget their owners'
 *           cache entries; drain again;
 *   unlock: read every C, compare its bytes with D's;
 *   lock:   forget the cache entries of the LBNs about to be remapped;
 *           dd_scan_apply() merges the equal pairs and unpins everything.
 *
 * A pinned block is never written in place (the engine reports it shared,
 * so writes to it go to new blocks), and the engine re-checks under the lock
 * in dd_scan_apply() that D still belongs to the LBN it read: a guest write
 * racing a merge is never lost and never merged away.  The drains are made
 * with the pool lock held, as a commit makes them: the bios they wait for
 * never need the lock to end.
 *
 * The thread runs only while the pool is resumed (pool_stop_background()
 * waits for the batch in progress to end) and is stopped before the engine
 * is closed; at a clean close the engine saves the index and the marks.
 */
#include "dm-dedup-core.h"
#include "dd-scan.h"

#include <linux/bio.h>
#include <linux/delay.h>
#include <linux/ioprio.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#define SCAN_PASS_INTERVAL	HZ		/* between passes over written blocks */
#define SCAN_ERROR_BACKOFF	(5 * HZ)	/* after a read or metadata error */
#define SCAN_DEFAULT_RATE_MIB	32		/* docs/benchmarks-scanner.md: why */
#define SCAN_RATE_UNLIMITED	U32_MAX		/* `scan rate 0`, as the engine keeps it */

enum scan_state { SS_OFF, SS_IDLE, SS_SCANNING, SS_UNSHARING };

struct scanner {
	struct pool *pool;
	struct task_struct *task;
	wait_queue_head_t wait;		/* the thread sleeps here */
	wait_queue_head_t idle_wait;	/* pool_stop_background() waits for !busy */
	/* Under pool->lists_lock. */
	bool resumed;			/* scanner_start() .. scanner_stop() */
	bool busy;			/* in a batch */
	bool kick;			/* a setting changed: look again */
	/* Under pool->lock. */
	u32 run;			/* 0 stop, 1 run, 2 unshare */
	u32 rate_mib;			/* SCAN_RATE_UNLIMITED or MiB/s */
	bool full_requested;
	unsigned long last_pass_end;	/* jiffies */
	bool error_reported;
	/* The current pass, for the rate and the ETA (under pool->lock). */
	u64 pass_bytes;
	ktime_t pass_start;
	u64 last_mib_s;			/* of the last pass that ended */
	/* Buffers of the thread. */
	struct dd_scan_batch *b;
	struct dd_unshare_batch *ub;
	struct page *d[DD_SCAN_BATCH_MAX];
	struct page *c[DD_SCAN_BATCH_MAX];
	u64 pbns[DD_SCAN_BATCH_MAX];
	struct page *pages[DD_SCAN_BATCH_MAX];
};

/*----------------------------------------------------------------
 * The written marks of map()
 *--------------------------------------------------------------*/

static void marks_free(struct written_marks *wm)
{
	if (!wm)
		return;
	vfree(wm->bits);
	vfree(wm->summary);
	kfree(wm);
}

static struct written_marks *marks_alloc(u64 nr_blocks)
{
	struct written_marks *wm = kzalloc(sizeof(*wm), GFP_KERNEL);

	if (!wm)
		return NULL;
	wm->nr_blocks = nr_blocks;
	/* vzalloc: kvmalloc refuses sizes past INT_MAX (data spaces past 64 TiB). */
	wm->bits = vzalloc(array_size(BITS_TO_LONGS(nr_blocks), sizeof(long)));
	wm->summary = vzalloc(array_size(BITS_TO_LONGS((nr_blocks >> MARKS_SUMMARY_SHIFT) + 1),
					 sizeof(long)));
	if (!wm->bits || !wm->summary) {
		marks_free(wm);
		return NULL;
	}
	return wm;
}

/* Hands map()'s marks to the engine (pool->lock held for write). */
static void __marks_drain(struct pool *pool, struct written_marks *wm)
{
	u64 nr_summary = (wm->nr_blocks >> MARKS_SUMMARY_SHIFT) + 1, s, w, first, last;
	unsigned long word;
	unsigned int bit;

	lockdep_assert_held_write(&pool->lock);
	for (s = find_first_bit(wm->summary, nr_summary); s < nr_summary;
	     s = find_next_bit(wm->summary, nr_summary, s + 1)) {
		if (!test_and_clear_bit(s, wm->summary))
			continue;
		first = (s << MARKS_SUMMARY_SHIFT) / BITS_PER_LONG;
		last = min_t(u64, ((s + 1) << MARKS_SUMMARY_SHIFT) / BITS_PER_LONG,
			     BITS_TO_LONGS(wm->nr_blocks));
		for (w = first; w < last; w++) {
			if (!READ_ONCE(wm->bits[w]))
				continue;
			word = xchg(&wm->bits[w], 0);
			for_each_set_bit(bit, &word, BITS_PER_LONG)
				dd_scan_mark_written(pool->eng, w * BITS_PER_LONG + bit);
		}
	}
}

static void __drain_marks(struct pool *pool)
{
	struct written_marks *wm = rcu_dereference_protected(pool->marks,
							     lockdep_is_held(&pool->lock));

	if (wm)
		__marks_drain(pool, wm);
}

/*
 * After the data device grew (lock held for write): a larger bitmap; the
 * marks of the old one are handed over once no map() can still set them.
 */
int __marks_resize(struct pool *pool, u64 nr_blocks)
{
	struct written_marks *old = rcu_dereference_protected(pool->marks,
							      lockdep_is_held(&pool->lock));
	struct written_marks *wm;

	if (old && old->nr_blocks >= nr_blocks)
		return 0;
	wm = marks_alloc(nr_blocks);
	if (!wm)
		return -ENOMEM;
	rcu_assign_pointer(pool->marks, wm);
	if (old) {
		synchronize_rcu();	/* no map() sets bits in the old one now */
		__marks_drain(pool, old);
		marks_free(old);
	}
	return 0;
}

/*----------------------------------------------------------------
 * Reading blocks
 *--------------------------------------------------------------*/

struct scan_io {
	atomic_t pending;
	struct completion done;
	blk_status_t status;
};

static void scan_endio(struct bio *bio)
{
	struct scan_io *io = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(io->status, bio->bi_status);
	bio_put(bio);
	if (atomic_dec_and_test(&io->pending))
		complete(&io->done);
}

/*
 * Reads (or writes) block pbns[i] into (from) pages[i]; runs of consecutive
 * blocks share a bio.  Idle I/O priority: a scheduler that honours it serves
 * the guests first.
 */
static int scan_io(struct pool *pool, enum req_op op, const u64 *pbns, struct page **pages,
		   unsigned int n)
{
	struct scan_io io;
	unsigned int i = 0, j;

	atomic_set(&io.pending, 1);
	init_completion(&io.done);
	io.status = BLK_STS_OK;
	while (i < n) {
		struct bio *bio;

		for (j = i + 1; j < n && j - i < BIO_MAX_VECS && pbns[j] == pbns[j - 1] + 1; j++)
			;
		bio = bio_alloc(pool->data_bdev, j - i, op, GFP_NOIO);
		bio->bi_iter.bi_sector = pbns[i] << (DD_BLOCK_SHIFT - SECTOR_SHIFT);
		bio->bi_ioprio = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0);
		bio->bi_end_io = scan_endio;
		bio->bi_private = &io;
		for (; i < j; i++)
			__bio_add_page(bio, pages[i], DD_BLOCK_SIZE, 0);
		atomic_inc(&io.pending);
		submit_bio(bio);
	}
	if (!atomic_dec_and_test(&io.pending))
		wait_for_completion_io(&io.done);
	return blk_status_to_errno(io.status);
}

int pool_read_blocks(struct pool *pool, const u64 *pbns, struct page **pages, unsigned int n)
{
	return scan_io(pool, REQ_OP_READ, pbns, pages, n);
}

/*----------------------------------------------------------------
 * One batch
 *--------------------------------------------------------------*/

/*
 * The byte comparison of two blocks, a word at a time (the kernel's generic
 * memcmp() compares bytes, and has to say which is smaller).
 */
static bool blocks_equal(const void *a, const void *b)
{
	const unsigned long *x = a, *y = b;
	unsigned int i;

	for (i = 0; i < DD_BLOCK_SIZE / sizeof(long); i += 4)
		if ((x[i] ^ y[i]) | (x[i + 1] ^ y[i + 1]) | (x[i + 2] ^ y[i + 2]) |
		    (x[i + 3] ^ y[i + 3]))
			return false;
	return true;
}

/* A failed engine call (lock held for write). */
static void __scan_failed(struct scanner *s, const char *op, int r)
{
	if (r == -EROFS)
		return;		/* the mode ladder said so already */
	__metadata_operation_failed(s->pool, op, r);
	__check_engine_mode(s->pool);
}

/*
 * The owners of D (or of C) may have written in place through a cache entry
 * that said exclusive: forget the entries, then wait for those writes (lock
 * held for write).  A block with more than one reference is written in place
 * by no one, so a batch without an exclusive owner needs no drain.
 */
static void __forget_and_drain(struct pool *pool, struct dd_scan_batch *b, bool cand)
{
	bool drain = false;
	u32 i;

	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];

		if (!cand && (it->flags & DD_SI_OWNED)) {
			__lc_forget(&pool->lc, it->vol, it->lbn);
			drain = true;
		}
		if (cand && (it->flags & DD_SI_CAND_OWNED)) {
			__lc_forget(&pool->lc, it->cand_vol, it->cand_lbn);
			drain = true;
		}
	}
	if (drain)
		dd_epoch_flip_and_drain(&pool->epochs);
}

/*
 * A batch's pins are gone (lock held for write): once no batch holds any,
 * writes that found no free block while a pin made their block look shared
 * try again.
 */
void __pins_released(struct pool *pool)
{
	struct bio_list bios;
	unsigned long flags;

	lockdep_assert_held_write(&pool->lock);
	if (WARN_ON_ONCE(!pool->pin_holders) || --pool->pin_holders)
		return;
	if (bio_list_empty(&pool->pin_waiters))
		return;
	bios = pool->pin_waiters;
	bio_list_init(&pool->pin_waiters);
	spin_lock_irqsave(&pool->lists_lock, flags);
	bio_list_merge(&pool->deferred, &bios);
	wake_worker(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*
 * Scans one batch of the pass: > 0 blocks were looked at, 0 the pass is
 * over, < 0 an error (the batch is released).
 */
static int scan_batch(struct scanner *s)
{
	struct pool *pool = s->pool;
	struct dd_scan_batch *b = s->b;
	unsigned int n, i, noio;
	int r;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	if (!pool_can_change_metadata(pool)) {
		r = -EROFS;
		goto unlock;
	}
	__drain_marks(pool);
	r = dd_scan_prepare(pool->eng, b);
	if (r <= 0) {
		if (r < 0)
			__scan_failed(s, "preparing a scan batch", r);
		goto unlock;
	}
	pool->pin_holders++;
	__forget_and_drain(pool, b, false);
	up_write(&pool->lock);

	/* Read and hash D. */
	for (i = n = 0; i < b->nr; i++) {
		if (!(b->item[i].flags & DD_SI_READ))
			continue;
		s->pbns[n] = b->item[i].pbn;
		s->pages[n++] = s->d[i];
	}
	r = pool_read_blocks(pool, s->pbns, s->pages, n);
	if (r)
		goto read_failed;
	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];
		const void *data = page_address(s->d[i]);

		if (!(it->flags & DD_SI_READ))
			continue;
		it->hash = dd_xxh64(data, DD_BLOCK_SIZE, DD_INDEX_SEED);
		if (!memchr_inv(data, 0, DD_BLOCK_SIZE))
			it->flags |= DD_SI_ZERO;
	}
	down_write(&pool->lock);
	s->pass_bytes += (u64)n << DD_BLOCK_SHIFT;
	r = dd_scan_match(pool->eng, b);
	if (r < 0) {
		__scan_failed(s, "matching a scan batch", r);
		goto release;
	}
	__forget_and_drain(pool, b, true);
	up_write(&pool->lock);

	/* Read C and compare. */
	for (i = n = 0; i < b->nr; i++) {
		if (!(b->item[i].flags & DD_SI_CAND))
			continue;
		s->pbns[n] = b->item[i].cand;
		s->pages[n++] = s->c[i];
	}
	r = pool_read_blocks(pool, s->pbns, s->pages, n);
	if (r)
		goto read_failed;
	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];

		if ((it->flags & DD_SI_CAND) && blocks_equal(page_address(s->c[i]),
							     page_address(s->d[i])))
			it->flags |= DD_SI_SAME;
	}
	down_write(&pool->lock);
	s->pass_bytes += (u64)n << DD_BLOCK_SHIFT;
	if (!pool_can_change_metadata(pool)) {
		r = -EROFS;
		goto release;
	}
	/* Merges and zero unmaps may commit inside: forget first. */
	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];

		if ((it->flags & DD_SI_OWNED) && (it->flags & (DD_SI_SAME | DD_SI_ZERO)))
			__lc_forget(&pool->lc, it->vol, it->lbn);
		/* A shared D takes its C's owner instead (dd-scan.c). */
		if ((it->flags & DD_SI_CAND_OWNED) && (it->flags & DD_SI_SAME))
			__lc_forget(&pool->lc, it->cand_vol, it->cand_lbn);
	}
	r = dd_scan_apply(pool->eng, b);
	__pins_released(pool);
	if (r)
		__scan_failed(s, "merging blocks", r);
	else
		r = b->nr ? b->nr : 1;
	__check_engine_mode(pool);
	goto unlock;

read_failed:
	DMERR_LIMIT("%s: scanner: reading the data device failed: %d", pool_name(pool), r);
	down_write(&pool->lock);
release:
	dd_scan_release(pool->eng, b);
	__pins_released(pool);
	if (r > 0)
		r = -EIO;
unlock:
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	return r;
}

/*----------------------------------------------------------------
 * Unsharing (scan run 2)
 *--------------------------------------------------------------*/

/*
 * One batch of the unshare walk: > 0 items done, 0 the walk is over, < 0 an
 * error.  The old blocks are shared (never written in place) and pinned; the
 * new ones are reserved and seen by no one until apply maps them.
 */
static int unshare_batch(struct scanner *s)
{
	struct pool *pool = s->pool;
	struct dd_unshare_batch *b = s->ub;
	unsigned int n, i, noio;
	int r;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	if (!pool_can_change_metadata(pool)) {
		r = -EROFS;
		goto unlock;
	}
	r = dd_scan_unshare_prepare(pool->eng, b);
	if (r == -EAGAIN) {
		r = 1;		/* nothing in this stretch: call again */
		goto unlock;
	}
	if (r <= 0) {
		if (r == -ENOSPC)
			DMERR_LIMIT("%s: scanner: no free data block to unshare into: waiting",
				    pool_name(pool));
		else if (r < 0)
			__scan_failed(s, "preparing an unshare batch", r);
		goto unlock;
	}
	up_write(&pool->lock);

	for (i = n = 0; i < b->nr; i++) {
		if (!(b->item[i].flags & DD_UI_COPY))
			continue;
		s->pbns[n] = b->item[i].old_pbn;
		s->pages[n++] = s->d[i];
	}
	r = pool_read_blocks(pool, s->pbns, s->pages, n);
	if (!r) {
		for (i = n = 0; i < b->nr; i++) {
			if (!(b->item[i].flags & DD_UI_COPY))
				continue;
			s->pbns[n] = b->item[i].new_pbn;
			s->pages[n++] = s->d[i];
		}
		r = scan_io(pool, REQ_OP_WRITE, s->pbns, s->pages, n);
	}
	down_write(&pool->lock);
	s->pass_bytes += (u64)n << (DD_BLOCK_SHIFT + 1);	/* read and written: the rate */
	if (r) {
		DMERR_LIMIT("%s: scanner: copying blocks to unshare them failed: %d",
			    pool_name(pool), r);
		dd_scan_unshare_release(pool->eng, b);
		goto unlock;
	}
	/* Remaps that may commit inside: forget first. */
	for (i = 0; i < b->nr; i++)
		__lc_forget(&pool->lc, b->item[i].vol, b->item[i].lbn);
	r = dd_scan_unshare_apply(pool->eng, b);
	if (r)
		__scan_failed(s, "unsharing blocks", r);
	else
		r = b->nr;
	__check_engine_mode(pool);
unlock:
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	return r;
}

/*----------------------------------------------------------------
 * The thread
 *--------------------------------------------------------------*/

/* Whether the thread may start a batch now; marks it busy if so. */
static bool scan_enter(struct scanner *s)
{
	struct pool *pool = s->pool;
	bool ok;

	spin_lock_irq(&pool->lists_lock);
	ok = s->resumed;
	s->busy = ok;
	s->kick = false;
	spin_unlock_irq(&pool->lists_lock);
	return ok;
}

static void scan_leave(struct scanner *s)
{
	struct pool *pool = s->pool;

	spin_lock_irq(&pool->lists_lock);
	s->busy = false;
	spin_unlock_irq(&pool->lists_lock);
	wake_up_all(&s->idle_wait);
}

/* A setting changed, or (while resumed) the pool is being suspended. */
static bool scan_kicked(struct scanner *s, bool resumed)
{
	bool kick;

	spin_lock_irq(&s->pool->lists_lock);
	kick = s->kick || s->resumed != resumed;
	spin_unlock_irq(&s->pool->lists_lock);
	return kick;
}

/*
 * Sleeps up to @timeout unless stopped or kicked.  Not resumed: until the
 * resume.  (Kthreads ignore signals, so the interruptible wait only keeps
 * the sleep out of the load average.)
 */
static void scan_sleep(struct scanner *s, long timeout, bool resumed)
{
	wait_event_interruptible_timeout(s->wait, kthread_should_stop() ||
					 scan_kicked(s, resumed), timeout);
}

/*
 * What to do next (pool->lock held for write): 1 scan a batch, 0 sleep for
 * *timeout.  Starts a pass when one is due.
 */
static int __scan_next(struct scanner *s, long *timeout)
{
	struct pool *pool = s->pool;
	struct dd_scan_stats st;
	bool full;
	int r;

	*timeout = MAX_SCHEDULE_TIMEOUT;	/* until a message or a resume */
	if (!pool_can_change_metadata(pool))
		return 0;
	dd_scan_get_stats(pool->eng, &st);
	if (s->run != 2 && st.unshare_active) {
		dd_scan_unshare_stop(pool->eng);	/* run set to 0 or 1 meanwhile */
		st.unshare_active = false;
	}
	if (s->run == 2) {
		if (st.unshare_active)
			return 2;
		r = dd_scan_unshare_start(pool->eng);
		if (r) {
			__scan_failed(s, "starting to unshare", r);
			*timeout = SCAN_ERROR_BACKOFF;
			return 0;
		}
		return 2;
	}
	if (s->run != 1)
		return 0;
	/* map() sets marks without waking anyone: look again in a while. */
	*timeout = SCAN_PASS_INTERVAL;
	__drain_marks(pool);
	dd_scan_get_stats(pool->eng, &st);
	if (st.pass_active)
		return 1;
	full = s->full_requested;
	if (!full && !st.marked)
		return 0;
	if (!full && time_before(jiffies, s->last_pass_end + SCAN_PASS_INTERVAL)) {
		*timeout = s->last_pass_end + SCAN_PASS_INTERVAL - jiffies;
		return 0;
	}
	r = dd_scan_start_pass(pool->eng, full);
	if (r) {
		__scan_failed(s, "starting a scan pass", r);
		*timeout = SCAN_ERROR_BACKOFF;
		return 0;
	}
	s->full_requested = false;
	s->pass_bytes = 0;
	s->pass_start = ktime_get();
	return 1;
}

/* MiB/s read in the pass so far (lock held). */
static u64 scan_mib_s(struct scanner *s)
{
	u64 ns = ktime_to_ns(ktime_sub(ktime_get(), s->pass_start));

	return ns > NSEC_PER_MSEC ? mul_u64_u64_div_u64(s->pass_bytes, NSEC_PER_SEC, ns) >> 20 : 0;
}

/* The unshare walk ended: run 0, kept in the metadata. */
static void unshare_done(struct scanner *s)
{
	struct pool *pool = s->pool;
	unsigned int noio = memalloc_noio_save();
	int r = 0;

	down_write(&pool->lock);
	if (s->run == 2) {
		s->run = 0;
		if (pool_can_change_metadata(pool)) {
			r = dd_scan_set_settings(pool->eng, 0, s->rate_mib);
			if (!r)
				r = __commit(pool, false);
			__check_engine_mode(pool);
		}
		if (r)
			DMERR_LIMIT("%s: scanner: cannot record the end of the unshare: %d",
				    pool_name(pool), r);
		else
			DMINFO("%s: scanner: every merged block is unshared", pool_name(pool));
	}
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
}

/* The time the batch's reads should have taken at the rate limit. */
static void scan_throttle(struct scanner *s, u64 bytes, ktime_t started)
{
	u32 rate = READ_ONCE(s->rate_mib);
	s64 want_ns, took_ns;

	if (rate == SCAN_RATE_UNLIMITED || !rate || !bytes)
		return;
	want_ns = div64_u64(bytes * NSEC_PER_SEC, (u64)rate << 20);
	took_ns = ktime_to_ns(ktime_sub(ktime_get(), started));
	if (want_ns > took_ns)
		scan_sleep(s, max_t(long, 1, nsecs_to_jiffies(want_ns - took_ns)), true);
}

/*
 * The pass's idle time between batches is when a guest that wrote new data
 * is not starved: with no rate limit the thread still yields the CPU.
 */
static int scan_thread(void *context)
{
	struct scanner *s = context;
	struct pool *pool = s->pool;

	while (!kthread_should_stop()) {
		long timeout;
		u64 before;
		ktime_t started;
		int r, todo;

		if (!scan_enter(s)) {
			scan_sleep(s, MAX_SCHEDULE_TIMEOUT, false);
			continue;
		}
		down_write(&pool->lock);
		todo = __scan_next(s, &timeout);
		before = s->pass_bytes;
		up_write(&pool->lock);
		if (!todo) {
			scan_leave(s);
			scan_sleep(s, timeout, true);
			continue;
		}
		started = ktime_get();
		r = todo == 2 ? unshare_batch(s) : scan_batch(s);
		if (!r && todo == 2)
			unshare_done(s);
		else if (!r) {
			down_write(&pool->lock);
			s->last_pass_end = jiffies;
			s->last_mib_s = scan_mib_s(s);
			up_write(&pool->lock);
		}
		scan_leave(s);
		if (r < 0 && r != -EROFS) {
			scan_sleep(s, SCAN_ERROR_BACKOFF, true);
			continue;
		}
		scan_throttle(s, s->pass_bytes - before, started);
		cond_resched();
	}
	return 0;
}

/*----------------------------------------------------------------
 * What the pool object calls
 *--------------------------------------------------------------*/

/* Lock held for write: run, rate and the marks' bitmap from the engine. */
int __scanner_create(struct pool *pool, u64 nr_data_blocks)
{
	struct scanner *s;
	u32 run, rate;
	unsigned int i;
	int r;

	lockdep_assert_held_write(&pool->lock);
	s = kvzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	s->pool = pool;
	init_waitqueue_head(&s->wait);
	init_waitqueue_head(&s->idle_wait);
	s->b = kvzalloc(sizeof(*s->b), GFP_KERNEL);
	s->ub = kvzalloc(sizeof(*s->ub), GFP_KERNEL);
	if (!s->b || !s->ub)
		goto nomem;
	for (i = 0; i < DD_SCAN_BATCH_MAX; i++) {
		s->d[i] = alloc_page(GFP_KERNEL);
		s->c[i] = alloc_page(GFP_KERNEL);
		if (!s->d[i] || !s->c[i])
			goto nomem;
	}
	r = __marks_resize(pool, nr_data_blocks);
	if (r)
		goto bad;
	dd_scan_get_settings(pool->eng, &run, &rate);
	s->run = run <= 2 ? run : 0;	/* an unshare walk starts again */
	s->rate_mib = rate ? rate : SCAN_DEFAULT_RATE_MIB;
	s->last_pass_end = jiffies - SCAN_PASS_INTERVAL;
	s->task = kthread_create(scan_thread, s, "dm-dedup-scan");
	if (IS_ERR(s->task)) {
		r = PTR_ERR(s->task);
		s->task = NULL;
		goto bad;
	}
	set_user_nice(s->task, MAX_NICE);
	/* Asleep until scanner_start() (the first resume). */
	pool->scanner = s;
	wake_up_process(s->task);
	return 0;
nomem:
	r = -ENOMEM;
bad:
	pool->scanner = s;
	scanner_destroy(pool);
	return r;
}

/* Stops the thread; before the engine is closed. */
void scanner_destroy(struct pool *pool)
{
	struct scanner *s = pool->scanner;
	unsigned int i;

	if (!s)
		return;
	if (s->task)
		kthread_stop(s->task);
	for (i = 0; i < DD_SCAN_BATCH_MAX; i++) {
		if (s->d[i])
			__free_page(s->d[i]);
		if (s->c[i])
			__free_page(s->c[i]);
	}
	kvfree(s->b);
	kvfree(s->ub);
	kvfree(s);
	pool->scanner = NULL;
	marks_free(rcu_dereference_protected(pool->marks, true));
	RCU_INIT_POINTER(pool->marks, NULL);
}

/* Looks at the settings again (any context but under lists_lock). */
void scanner_wake(struct pool *pool)
{
	struct scanner *s = pool->scanner;
	unsigned long flags;

	if (!s)
		return;
	spin_lock_irqsave(&pool->lists_lock, flags);
	s->kick = true;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	wake_up_all(&s->wait);
}

/* A resume: batches may run. */
void scanner_start(struct pool *pool)
{
	struct scanner *s = pool->scanner;

	if (!s)
		return;
	spin_lock_irq(&pool->lists_lock);
	s->resumed = true;
	spin_unlock_irq(&pool->lists_lock);
	scanner_wake(pool);
}

/* A suspend or destroy: no batch runs once this returns (waits for one). */
void scanner_stop(struct pool *pool)
{
	struct scanner *s = pool->scanner;

	if (!s)
		return;
	spin_lock_irq(&pool->lists_lock);
	s->resumed = false;
	spin_unlock_irq(&pool->lists_lock);
	wake_up_all(&s->wait);
	wait_event(s->idle_wait, ({
		bool busy;

		spin_lock_irq(&pool->lists_lock);
		busy = s->busy;
		spin_unlock_irq(&pool->lists_lock);
		!busy;
	}));
}

/*
 * The clean close (lock held for write, the thread stopped by
 * scanner_stop()): the index and marks to disk; scanner_destroy() after.
 */
void __scanner_save(struct pool *pool)
{
	int r;

	if (!pool->scanner || !pool_can_change_metadata(pool))
		return;
	__drain_marks(pool);
	r = dd_scan_save(pool->eng);
	if (r)
		DMERR("%s: cannot save the scanner index (savings only): %d", pool_name(pool), r);
}

/*----------------------------------------------------------------
 * Messages and statistics
 *--------------------------------------------------------------*/

static const char *scan_state_name(struct scanner *s, const struct dd_scan_stats *st)
{
	if (s->run == 2 || st->unshare_active)
		return "unsharing";
	if (s->run != 1)
		return "off";
	return st->pass_active ? "scanning" : "idle";
}

/* `scan stats`: one "name value" line each, in the documented order. */
static void __scan_emit_stats(struct pool *pool, char *result, unsigned int maxlen)
{
	struct scanner *s = pool->scanner;
	struct dd_pool_stats ps;
	struct dd_scan_stats st;
	unsigned int sz = 0;
	u64 ns, mib_s = s->last_mib_s, eta = 0, left, freed;

	dd_pool_get_stats(pool->eng, &ps);
	dd_scan_get_stats(pool->eng, &st);
	if (st.pass_active) {
		/* Measured over the pass so far (since this open). */
		ns = ktime_to_ns(ktime_sub(ktime_get(), s->pass_start));
		left = st.pass_todo > st.pass_done ? st.pass_todo - st.pass_done : 0;
		mib_s = scan_mib_s(s);
		if (ns > NSEC_PER_MSEC && st.pass_done) {
			u64 per_s = mul_u64_u64_div_u64(st.pass_done, NSEC_PER_SEC, ns);

			eta = div64_u64(left, max_t(u64, per_s, 1));
		}
	}
	freed = st.freed + st.zero_unmapped;
	DMEMIT("state %s\n", scan_state_name(s, &st));
	DMEMIT("run %u\n", s->run);
	DMEMIT("rate_mib %u\n", s->rate_mib == SCAN_RATE_UNLIMITED ? 0 : s->rate_mib);
	DMEMIT("passes %llu\n", st.pass - st.pass_active);
	DMEMIT("full_passes %llu\n", st.full_passes);
	DMEMIT("pass_done %llu\n", st.pass_done);
	DMEMIT("pass_todo %llu\n", st.pass_todo);
	DMEMIT("eta_seconds %llu\n", eta);
	DMEMIT("read_mib_s %llu\n", mib_s);
	DMEMIT("blocks_shared %llu\n", ps.shared_blocks);
	/* Mappings of shared blocks: all mappings less those of unshared blocks. */
	DMEMIT("references_sharing %llu\n", ps.mapped_blocks + ps.shared_blocks > ps.data_used ?
	       ps.mapped_blocks + ps.shared_blocks - ps.data_used : 0);
	DMEMIT("merged_blocks %llu\n", st.merged);
	DMEMIT("bytes_freed %llu\n", freed << DD_BLOCK_SHIFT);
	DMEMIT("zero_unmapped %llu\n", st.zero_unmapped);
	DMEMIT("volatile %llu\n", st.volatile_skipped);
	DMEMIT("cow_breaks %llu\n", st.cow_breaks);
	DMEMIT("raced %llu\n", st.raced);
	DMEMIT("false_hits %llu\n", st.false_hits);
	DMEMIT("index_entries %llu\n", st.index.entries);
	DMEMIT("index_capacity %llu\n", st.index.capacity);
	DMEMIT("index_bytes %llu\n", st.index.bytes);
	DMEMIT("index_hits %llu\n", st.index.hits);
	DMEMIT("marked %llu\n", st.marked);
	DMEMIT("marks_dropped %llu\n", st.marks_dropped);
	DMEMIT("scanned %llu\n", st.scanned);
	DMEMIT("share_cap %u\n", st.share_cap);
	DMEMIT("unshare_done %llu\n", st.unshare_done);
	DMEMIT("unshare_todo %llu\n", st.unshare_todo);
	DMEMIT("unshared %llu\n", st.unshared);
	DMEMIT("import_hinted %llu\n", st.import_hinted);
	DMEMIT("import_shared %llu\n", st.import_shared);
	DMEMIT("import_missed %llu\n", st.import_missed);
	DMEMIT("import_raced %llu\n", st.import_raced);
}

static int parse_u32(const char *arg, u32 min, u32 max, u32 *v)
{
	if (kstrtou32(arg, 10, v) || *v < min || *v > max)
		return -EINVAL;
	return 0;
}

/*
 * A writable pool whose engine could not open the scanner's state (it has no
 * index).  A pool that cannot change its metadata never opens that state: it
 * is not damage there (lock held).
 */
static bool __scanner_unreadable(struct pool *pool)
{
	struct dd_scan_stats st;

	if (!pool_can_change_metadata(pool))
		return false;
	dd_scan_get_stats(pool->eng, &st);
	return st.index.bytes == 0;
}

static int scanner_unreadable_error(struct pool *pool)
{
	DMWARN("%s: scan: the scanner's state on the metadata device is unreadable: run dedup_check",
	       pool_name(pool));
	return -EIO;
}

/* Lock held for write; the caller commits what changed. */
static int __scan_message(struct pool *pool, unsigned int argc, char **argv, bool *changed)
{
	struct scanner *s = pool->scanner;
	struct dd_scan_config cfg = { };
	const char *what = argv[1];
	u32 v;
	int r;

	*changed = false;
	if (argc == 2 && !strcasecmp(what, "full")) {
		s->full_requested = true;
		return 0;
	}
	if (argc != 3) {
		DMWARN("usage: scan run <0|1|2> | rate <MiB/s> | full | index_memory <MiB> | share_cap <n> | stats");
		return -EINVAL;
	}
	if (!strcasecmp(what, "run")) {
		if (parse_u32(argv[2], 0, 2, &v))
			goto bad;
		s->run = v;	/* the thread ends an unshare walk (between batches) */
	} else if (!strcasecmp(what, "rate")) {
		if (parse_u32(argv[2], 0, 1U << 20, &v))
			goto bad;
		s->rate_mib = v ? v : SCAN_RATE_UNLIMITED;
	} else if (!strcasecmp(what, "index_memory")) {
		if (parse_u32(argv[2], 1, 1U << 20, &v))
			goto bad;
		cfg.index_bytes = (u64)v << 20;
		r = dd_scan_configure(pool->eng, &cfg);
		if (!r)
			pool->index_bytes = cfg.index_bytes;	/* a reload compares with it */
		if (r) {
			DMWARN("%s: scan index_memory %u: %s", pool_name(pool), v,
			       r == -ENOMEM ? "not enough memory (the index keeps its size)" :
			       "cannot resize the index");
			return r;
		}
	} else if (!strcasecmp(what, "share_cap")) {
		if (parse_u32(argv[2], 2, U32_MAX, &v))
			goto bad;
		cfg.share_cap = v;
		r = dd_scan_configure(pool->eng, &cfg);
		if (r)
			return r;
	} else {
		goto bad;
	}
	*changed = true;
	return dd_scan_set_settings(pool->eng, s->run, s->rate_mib);
bad:
	DMWARN("%s: scan %s: invalid argument '%s'", pool_name(pool), what, argc > 2 ? argv[2] : "");
	return -EINVAL;
}

/* The `scan ...` pool messages; takes the lock itself. */
int scanner_message(struct pool *pool, unsigned int argc, char **argv, char *result,
		    unsigned int maxlen)
{
	unsigned int noio;
	bool changed = false;
	int r;

	if (argc < 2) {
		DMWARN("usage: scan run|rate|full|index_memory|share_cap|stats ...");
		return -EINVAL;
	}
	if (!pool->scanner)
		return -EOPNOTSUPP;
	/* In every mode (a read-only pool shows the persistent counters). */
	if (argc == 2 && !strcasecmp(argv[1], "stats")) {
		down_read(&pool->lock);
		if (__scanner_unreadable(pool)) {
			r = scanner_unreadable_error(pool);
		} else {
			__scan_emit_stats(pool, result, maxlen);
			r = 1;	/* the result holds text */
		}
		up_read(&pool->lock);
		return r;
	}
	noio = memalloc_noio_save();
	down_write(&pool->lock);
	if (!pool_can_change_metadata(pool)) {
		DMWARN("%s: scan: pool is in %s mode", pool_name(pool), pool_mode_name(pool->mode));
		r = -EROFS;
	} else if (__scanner_unreadable(pool)) {
		r = scanner_unreadable_error(pool);
	} else {
		r = __scan_message(pool, argc, argv, &changed);
		if (!r && changed)
			r = __commit(pool, false);
		__check_engine_mode(pool);
	}
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	scanner_wake(pool);
	return r;
}

/* The in-place write path of the worker (lock held for write). */
void __scanner_mark(struct pool *pool, u64 pbn)
{
	dd_scan_mark_written(pool->eng, pbn);
}
