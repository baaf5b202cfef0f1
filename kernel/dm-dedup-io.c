// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-io.c: the data path.  map() and end_io of the volume target, the
 * pool's worker (the bios map() could not finish, new-block writes with
 * their read-modify-write and its page reserve, zero writes, discards, the
 * commit timer).  docs/design.md ("The kernel data path") says why.
 */
#include "dm-dedup-core.h"

#include <linux/bio.h>
#include <linux/highmem.h>
#include <linux/kernel.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

/*
 * The rules of the data path (each has a test in tests/vm):
 *  - map() looks the LBN up without sleeping on metadata I/O (the lock-free
 *    lookup cache, no lock taken); on a miss the bio goes to the pool's worker.
 *  - Reads of unmapped LBNs return zeroes; mapped reads are remapped.
 *  - A write to an LBN whose block carries the exclusive bit (exclusive in the
 *    committed state and in the open transaction) is remapped in place.
 *  - Any other write gets a new block: the data is written there first (a
 *    partial block is read, merged and written), then the mapping is
 *    inserted, then the bio completes.  Writes to one LBN that need a new
 *    block are serialised by a cell.
 *  - A whole-block write of zeroes unmaps the LBN; a discard unmaps ranges.
 *  - FLUSH: flush the data device, commit, complete.  FUA: the bio completes
 *    after a commit.  The worker also commits every second.
 *  - Data I/O is counted in an epoch (dm-dedup-epoch.h); a commit first waits
 *    for the I/O of the previous epoch.  A block freed in the open transaction
 *    is reused only after that transaction commits, so no bio that looked up
 *    its old mapping can still touch it.
 *  - The lookup cache (dm-dedup-cache.h) is forgotten before any engine call
 *    that frees or shares blocks and may commit inside (a long discard, a
 *    snapshot copy).
 *  - A read-only pool writes no guest data, not even in place: the exclusive
 *    bits may be damaged.  A whole-block zero write to an unmapped LBN still
 *    succeeds (nothing to do).
 *  - The worker never sleeps on memory only it can return: cells and RMW bios
 *    live in the per-bio data, RMW pages come from a fixed per-pool reserve,
 *    the clones of segments from run_bs, returned by their completion.
 *  - A write over several whole blocks is served in segments under one
 *    range cell (process_write_run()), each segment as one block would be.
 */

#define DD_RECLAIM_STEP			4096	/* map entries freed per worker pass */

/*----------------------------------------------------------------
 * The worker's queues
 *--------------------------------------------------------------*/

void wake_worker(struct pool *pool)
{
	queue_work(pool->wq, &pool->worker);
}

/*
 * Work is queued while lists_lock is held, as the worker takes it before it
 * can complete anything: a completing CPU never touches the workqueue of a
 * pool that may already be gone (the bio it queued completed, its volume and
 * pool torn down).
 */
void defer_bio(struct pool *pool, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	bio_list_add(&pool->deferred, bio);
	wake_worker(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

void request_commit(struct pool *pool)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	pool->commit_requested = true;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

static void complete_after_commit(struct pool *pool, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	bio_list_add(&pool->commit_waiters, bio);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*----------------------------------------------------------------
 * Epochs of in-flight data I/O
 *--------------------------------------------------------------*/

/*
 * Counts a bio in the current epoch before its mapping is looked up (or, in
 * the worker, under the pool lock, which no flip can pass): see
 * dm-dedup-epoch.h for why any number of flips cannot lose it.
 */
static void epoch_get(struct pool *pool, struct dd_bio_hook *h)
{
	h->epoch = dd_epoch_enter(&pool->epochs);
	h->counted = true;
}

static void epoch_put(struct pool *pool, struct dd_bio_hook *h)
{
	if (!h->counted)
		return;
	h->counted = false;
	dd_epoch_exit(&pool->epochs, h->epoch);
}

/*----------------------------------------------------------------
 * Cells: blocks getting a new home, one run at a time
 *--------------------------------------------------------------*/

/* Unlocks the block; bios that waited go back to the worker's queue. */
void __cell_unlock(struct pool *pool, struct dd_cell *cell)
{
	unsigned long flags;

	lockdep_assert_held_write(&pool->lock);
	__dd_cell_unlock(&pool->cells, cell);
	if (!bio_list_empty(&cell->waiters)) {
		spin_lock_irqsave(&pool->lists_lock, flags);
		bio_list_merge(&pool->deferred, &cell->waiters);
		wake_worker(pool);
		spin_unlock_irqrestore(&pool->lists_lock, flags);
	}
}

/*----------------------------------------------------------------
 * Pages for read-modify-write
 *--------------------------------------------------------------*/

int rmw_pages_init(struct rmw_pages *rp, unsigned int nr)
{
	rp->free = kcalloc(nr, sizeof(*rp->free), GFP_KERNEL);
	if (!rp->free)
		return -ENOMEM;
	bio_list_init(&rp->waiters);
	for (rp->nr = 0; rp->nr < nr; rp->nr++) {
		rp->free[rp->nr] = alloc_page(GFP_KERNEL);
		if (!rp->free[rp->nr])
			break;
	}
	rp->nr_free = rp->nr;
	return rp->nr == nr ? 0 : -ENOMEM;
}

void rmw_pages_exit(struct rmw_pages *rp)
{
	unsigned int i;

	WARN_ON(rp->free && rp->nr_free != rp->nr);
	for (i = 0; rp->free && i < rp->nr_free; i++)
		__free_page(rp->free[i]);
	kfree(rp->free);
	rp->free = NULL;
}

/* A page, or NULL with the bio queued until an RMW in flight returns one. */
static struct page *rmw_page_get(struct pool *pool, struct bio *bio)
{
	struct rmw_pages *rp = &pool->rmw;
	struct page *page = NULL;
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	if (rp->nr_free)
		page = rp->free[--rp->nr_free];
	else
		bio_list_add(&rp->waiters, bio);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	return page;
}

/* As many waiters as there are free pages go back to the worker (lists_lock held). */
static void __rmw_hand_over(struct pool *pool)
{
	struct rmw_pages *rp = &pool->rmw;
	unsigned int n;
	struct bio *bio;

	lockdep_assert_held(&pool->lists_lock);
	for (n = 0; n < rp->nr_free && (bio = bio_list_pop(&rp->waiters)); n++)
		bio_list_add(&pool->deferred, bio);
	if (n)
		wake_worker(pool);
}

static void rmw_page_put(struct pool *pool, struct page *page)
{
	struct rmw_pages *rp = &pool->rmw;
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	rp->free[rp->nr_free++] = page;
	__rmw_hand_over(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*
 * End of a worker pass: a waiter that was handed a page but no longer needed
 * one (its block went in place, or into a cell) must not strand the others.
 */
static void rmw_kick(struct pool *pool)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	__rmw_hand_over(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*----------------------------------------------------------------
 * Data I/O helpers
 *--------------------------------------------------------------*/

static bool bio_is_whole_block(struct bio *bio)
{
	return !(bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1)) &&
	       bio->bi_iter.bi_size == DD_BLOCK_SIZE;
}

/* The blocks a bio touches, from its first (bi_sector is a volume sector). */
static unsigned int bio_nr_blocks(struct bio *bio)
{
	sector_t first = bio->bi_iter.bi_sector >> (DD_BLOCK_SHIFT - SECTOR_SHIFT);
	sector_t end = DIV_ROUND_UP_SECTOR_T(bio_end_sector(bio), DD_SECTORS_PER_BLOCK);

	return end - first;
}

/*
 * map() only: keeps the bio's first @nr blocks (the data path serves them
 * in one go) and lets dm submit the rest again, to map().
 */
static void accept_blocks(struct bio *bio, u64 lbn, unsigned int nr)
{
	sector_t end = (lbn + nr) << (DD_BLOCK_SHIFT - SECTOR_SHIFT);

	if (end < bio_end_sector(bio))
		dm_accept_partial_bio(bio, end - bio->bi_iter.bi_sector);
}

/*
 * Of the first @nr blocks of a write, the index of the first that it covers
 * whole with zeroes (to be unmapped, not written), or @nr if none.  A block
 * is read only up to its first non-zero byte.
 */
static unsigned int first_zero_block(struct bio *bio, unsigned int nr)
{
	/* u64: a bio's start inside its block plus its size can pass 2^32 */
	u64 pos = (bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1)) << SECTOR_SHIFT;
	bool zero = !pos;	/* a block the bio starts inside is not whole */
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		char *p = bvec_kmap_local(&bv);
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned int in_block = pos & (DD_BLOCK_SIZE - 1);
			unsigned int n = min_t(unsigned int, bv.bv_len - done,
					       DD_BLOCK_SIZE - in_block);

			if (pos >> DD_BLOCK_SHIFT >= nr) {
				kunmap_local(p);
				return nr;
			}
			if (!in_block)
				zero = true;
			if (zero && memchr_inv(p + done, 0, n))
				zero = false;
			done += n;
			pos += n;
			if (zero && !(pos & (DD_BLOCK_SIZE - 1))) {
				kunmap_local(p);
				return (pos >> DD_BLOCK_SHIFT) - 1;
			}
		}
		kunmap_local(p);
	}
	return nr;
}

/* A write of one whole block of zeroes (unmapped, not written). */
static bool zero_detect(struct pool *pool, struct bio *bio)
{
	return !(pool->features & DD_POOL_SKIP_ZERO_DETECT) && bio_is_whole_block(bio) &&
	       !first_zero_block(bio, 1);
}

static void remap_to_pbn(struct pool *pool, struct bio *bio, u64 pbn)
{
	bio_set_dev(bio, pool->data_bdev);
	bio->bi_iter.bi_sector = (pbn << (DD_BLOCK_SHIFT - SECTOR_SHIFT)) |
				 (bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1));
}

/* Queues a hook whose I/O finished for the worker (any context). */
static void hook_prepared(struct pool *pool, struct dd_bio_hook *h)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	list_add_tail(&h->list, &pool->prepared);
	wake_worker(pool);	/* under the lock: see defer_bio() */
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/* End of a volume bio the worker submitted with its own completion. */
static void hooked_endio(struct bio *bio)
{
	struct dd_bio_hook *h = bio->bi_private;
	struct pool *pool = h->vc->pool;

	bio->bi_end_io = h->saved_end_io;
	bio->bi_private = h->saved_private;
	h->status = bio->bi_status;
	epoch_put(pool, h);
	hook_prepared(pool, h);
}

/* The worker sees the bio again when its I/O completes. */
static void hook_endio(struct dd_bio_hook *h, struct bio *bio, enum hook_state state)
{
	h->state = state;
	h->saved_end_io = bio->bi_end_io;
	h->saved_private = bio->bi_private;
	bio->bi_end_io = hooked_endio;
	bio->bi_private = h;
}

static void submit_hooked(struct dd_bio_hook *h, struct bio *bio, enum hook_state state)
{
	hook_endio(h, bio, state);
	submit_bio_noacct(bio);
}

/* End of an RMW read or write (a bio of our own). */
static void rmw_endio(struct bio *io)
{
	struct dd_bio_hook *h = io->bi_private;
	struct pool *pool = h->vc->pool;

	h->status = io->bi_status;
	epoch_put(pool, h);	/* held since the block was looked up */
	hook_prepared(pool, h);
}

/*
 * The RMW bio is embedded in the hook (no allocation): read the old block
 * into h->page, or write h->page to the new block.  Cannot fail.
 */
static void rmw_submit(struct pool *pool, struct dd_bio_hook *h, enum req_op op, u64 pbn,
		       enum hook_state state)
{
	struct bio *io = &h->rmw_bio, *bio = hook_bio(h);
	/* The guest's hints and cgroup stay with its I/O. */
	blk_opf_t opf = op | (bio->bi_opf & (REQ_SYNC | REQ_IDLE | REQ_PRIO));

	if (h->state == HS_RMW_READ)
		bio_reset(io, pool->data_bdev, opf);	/* the read is done: reuse its bio */
	else
		bio_init(io, pool->data_bdev, &h->rmw_bvec, 1, opf);
	bio_clone_blkg_association(io, bio);
	io->bi_ioprio = bio->bi_ioprio;
	io->bi_iter.bi_sector = pbn << (DD_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(io, h->page, DD_BLOCK_SIZE, 0);
	io->bi_end_io = rmw_endio;
	io->bi_private = h;
	h->state = state;
	submit_bio_noacct(io);
}

/* Copies the partial write into the block image. */
static void rmw_merge(struct dd_bio_hook *h, struct bio *bio)
{
	char *dst = page_address(h->page) +
		    ((bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1)) << SECTOR_SHIFT);
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(dst, &bv);
		dst += bv.bv_len;
	}
}

/* After the RMW of a new block ended (the bio was initialised). */
static void rmw_release(struct pool *pool, struct dd_bio_hook *h)
{
	if (h->page) {
		bio_uninit(&h->rmw_bio);
		rmw_page_put(pool, h->page);
		h->page = NULL;
	}
}

/*----------------------------------------------------------------
 * map() and end_io of the volume target
 *--------------------------------------------------------------*/

/*
 * A write that goes to the worker: how many of its @nr blocks the worker
 * serves in one go.  Whole blocks from an aligned start, inside one cell
 * group (dm-dedup-cell.h), before the first whole block of zeroes (that one
 * is unmapped, on its own); 1 if that leaves fewer than two.
 */
static unsigned int worker_write_blocks(struct pool *pool, struct bio *bio, u64 lbn,
					unsigned int nr)
{
	unsigned int whole;

	if (bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1))
		return 1;
	whole = min3(nr, bio->bi_iter.bi_size >> DD_BLOCK_SHIFT, dd_cell_room(lbn));
	if (whole >= 2 && !(pool->features & DD_POOL_SKIP_ZERO_DETECT))
		whole = first_zero_block(bio, whole);
	return whole >= 2 ? whole : 1;
}

/*
 * The fast path: finish here when the lookup cache has the mappings and the
 * blocks can be read or written in place (no lock taken, no metadata read);
 * everything else goes to the worker, which handles it in batches.  A bio
 * over several blocks is served here as far as its blocks form one run
 * (lc_lookup_run()), the rest coming back to map(); what goes to the worker
 * is cut to the blocks it serves at once: a read up to the end of its cell
 * group, a write over whole blocks as worker_write_blocks() says.
 */
int volume_map(struct dm_target *ti, struct bio *bio)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;
	struct dd_bio_hook *h = hook(bio);
	bool write = bio_op(bio) == REQ_OP_WRITE;
	unsigned int nr, run, i;
	enum pool_mode mode;
	struct dd_mapping m;

	/* The fields every path reads; the others are set where they are used. */
	h->vc = vc;
	h->counted = false;
	h->state = HS_NONE;
	h->status = BLK_STS_OK;
	h->page = NULL;
	h->pin_retried = false;
	h->nr = 1;
	bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	h->lbn = bio->bi_iter.bi_sector >> (DD_BLOCK_SHIFT - SECTOR_SHIFT);

	mode = READ_ONCE(pool->mode);
	if (unlikely(mode == PM_FAIL))
		return DM_MAPIO_KILL;
	/* ignore_discard, also when a pool reload set it after this table's load. */
	if (bio_op(bio) == REQ_OP_DISCARD &&
	    (READ_ONCE(pool->features) & DD_POOL_IGNORE_DISCARD)) {
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (bio_op(bio) == REQ_OP_DISCARD || (op_is_flush(bio->bi_opf) && !bio_has_data(bio)))
		goto defer;
	if (bio_op(bio) != REQ_OP_READ && !write) {
		if (op_is_flush(bio->bi_opf))
			goto defer;	/* the worker completes or refuses it */
		return DM_MAPIO_KILL;
	}
	nr = bio_nr_blocks(bio);
	/*
	 * FUA goes to the worker (it completes after a commit).  A read-only
	 * pool writes nothing in place (the worker fails such writes).
	 */
	if (op_is_flush(bio->bi_opf) || (write && unlikely(mode >= PM_READ_ONLY)))
		goto defer_first;
	/* Dedup at import: a hinted block is held for its compare. */
	if (write && unlikely(atomic_read(&pool->nr_imports))) {
		nr = import_map(pool, vc, bio, nr);
		if (!nr)
			return DM_MAPIO_SUBMITTED;
	}

	/* Counted before the lookups, one count for every block: see epoch_get(). */
	epoch_get(pool, h);
	run = lc_lookup_run(&pool->lc, vc->args.volume_id, h->lbn, nr, write, &m);
	if (!run || (write && !(m.mapped && m.excl)))
		goto defer_counted;
	/* A pool that went read-only during the lookups writes nothing in place. */
	if (write && unlikely(READ_ONCE(pool->mode) >= PM_READ_ONLY))
		goto defer_counted;
	/* A whole block of zeroes is unmapped, not written (by the worker). */
	if (write && !(pool->features & DD_POOL_SKIP_ZERO_DETECT)) {
		run = first_zero_block(bio, run);
		if (!run)
			goto defer_counted;
	}
	accept_blocks(bio, h->lbn, run);
	if (!m.mapped) {
		epoch_put(pool, h);
		zero_fill_bio(bio);
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (write)
		for (i = 0; i < run; i++)
			marks_set(&pool->marks, m.pbn + i);	/* the scanner looks at them again */
	remap_to_pbn(pool, bio, m.pbn);
	return DM_MAPIO_REMAPPED;

defer_counted:
	epoch_put(pool, h);
defer_first:
	/* A read that missed: the worker looks its blocks up a run at a time. */
	h->nr = write ? worker_write_blocks(pool, bio, h->lbn, nr) :
			min_t(unsigned int, nr, dd_cell_room(h->lbn));
	accept_blocks(bio, h->lbn, h->nr);
defer:
	defer_bio(pool, bio);
	return DM_MAPIO_SUBMITTED;
}

int volume_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *err)
{
	struct volume_c *vc = ti->private;

	epoch_put(vc->pool, hook(bio));
	return DM_ENDIO_DONE;
}

/*----------------------------------------------------------------
 * The worker: bios that map() could not finish
 *--------------------------------------------------------------*/

/*
 * Looks up the blocks from @lbn, at most @max (lock held): *len blocks
 * unmapped, or mapped at consecutive PBNs from m->pbn; each is stored in the
 * lookup cache.  -EIO in fail mode (the in-core state may be garbage: do not
 * even look); a lookup error fails the metadata.
 */
static int __lookup_run(struct pool *pool, struct volume_c *vc, u64 lbn, u32 max,
			struct dd_mapping *m, u32 *len)
{
	u32 vol = vc->args.volume_id;
	struct dd_mapping n;
	int r;

	if (pool->mode == PM_FAIL)
		return -EIO;
	r = dd_map_lookup(vc->vol, lbn, 0, m);
	if (!r)
		__lc_store(&pool->lc, vol, lbn, m);
	for (*len = 1; !r && *len < max; (*len)++) {
		r = dd_map_lookup(vc->vol, lbn + *len, 0, &n);
		if (r)
			break;
		__lc_store(&pool->lc, vol, lbn + *len, &n);
		if (n.mapped != m->mapped || (m->mapped && n.pbn != m->pbn + *len))
			break;
	}
	if (r)
		__metadata_operation_failed(pool, "looking up a block", r);
	return r;
}

static void process_read(struct pool *pool, struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);
	struct dd_mapping m;
	u32 len;
	int r;

	down_write(&pool->lock);
	r = __lookup_run(pool, h->vc, h->lbn, 1, &m, &len);
	if (!r && m.mapped)
		epoch_get(pool, h);
	up_write(&pool->lock);
	if (r) {
		error_bio(bio, BLK_STS_IOERR);
	} else if (!m.mapped) {
		zero_fill_bio(bio);
		bio_endio(bio);
	} else {
		remap_to_pbn(pool, bio, m.pbn);
		submit_bio_noacct(bio);
	}
}

/*
 * Writes that need a new block: the data goes there before the mapping.  A
 * partial block (h->page taken) is read, merged and written; a whole block
 * is written by the bio itself.
 */
static void start_new_block(struct pool *pool, struct bio *bio, const struct dd_mapping *m,
			    u64 pbn)
{
	struct dd_bio_hook *h = hook(bio);

	h->new_pbn = pbn;
	h->old_mapped = m->mapped;
	h->old_pbn = m->pbn;

	if (!h->page) {
		remap_to_pbn(pool, bio, pbn);
		submit_hooked(h, bio, HS_ALLOC_WRITE);
	} else if (!m->mapped) {
		memset(page_address(h->page), 0, DD_BLOCK_SIZE);
		rmw_merge(h, bio);
		rmw_submit(pool, h, REQ_OP_WRITE, pbn, HS_RMW_WRITE);
	} else {
		rmw_submit(pool, h, REQ_OP_READ, m->pbn, HS_RMW_READ);
	}
}

/* A page taken for a write that will not start after all. */
static void drop_rmw_page(struct pool *pool, struct dd_bio_hook *h)
{
	if (h->page) {
		rmw_page_put(pool, h->page);
		h->page = NULL;
	}
}

/* A whole-block write of zeroes: unmap instead of writing (lock held). */
static blk_status_t __process_zero_write(struct pool *pool, struct dd_bio_hook *h,
					 const struct dd_mapping *m)
{
	struct volume_c *vc = h->vc;
	u32 vol = vc->args.volume_id;
	struct dd_mapping none = { 0 };
	int r;

	lockdep_assert_held_write(&pool->lock);
	if (!m->mapped) {
		/* Nothing to do, in any mode that reads. */
		if (pool_can_change_metadata(pool))
			dd_pool_count_zero_write(pool->eng);
		__lc_store(&pool->lc, vol, h->lbn, &none);
		return BLK_STS_OK;
	}
	if (!pool_can_change_metadata(pool))
		return BLK_STS_IOERR;
	/* Forgotten first: the engine may commit inside the unmap. */
	__lc_forget(&pool->lc, vol, h->lbn);
	r = dd_map_unmap(vc->vol, h->lbn, 1, DD_UNMAP_ZERO);
	if (r) {
		__metadata_operation_failed(pool, "unmapping a zero block", r);
		return BLK_STS_IOERR;
	}
	__lc_store(&pool->lc, vol, h->lbn, &none);
	return BLK_STS_OK;
}

static void process_write(struct pool *pool, struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);
	struct volume_c *vc = h->vc;
	u32 vol = vc->args.volume_id;
	bool fua = bio->bi_opf & REQ_FUA;
	enum dd_write_plan plan;
	blk_status_t status = BLK_STS_OK;
	struct dd_cell *cell;
	struct dd_mapping m;
	bool excl;
	u64 pbn;
	int r;

	down_write(&pool->lock);
	cell = __dd_cell_find(&pool->cells, vol, h->lbn, 1);
	if (cell) {
		/* A new home for this block is being written: wait for it. */
		bio_list_add(&cell->waiters, bio);
		bio = NULL;
		goto out;
	}
	if (pool->mode == PM_FAIL) {
		status = BLK_STS_IOERR;
		goto out;
	}
	r = dd_map_plan_write(vc->vol, h->lbn, 0, &m, &plan);
	if (r)
		goto metadata_error;

	if (zero_detect(pool, bio)) {
		status = __process_zero_write(pool, h, &m);
		if (status)
			goto out;
		if (fua)
			complete_after_commit(pool, bio);
		else
			bio_endio(bio);
		bio = NULL;
		goto out;
	}

	/*
	 * Read-only (a metadata error, needs_check, or read_only): the
	 * exclusive bits cannot be trusted, so no guest data is written, not
	 * even in place.
	 */
	if (!pool_can_change_metadata(pool)) {
		status = BLK_STS_IOERR;
		goto out;
	}
	if (plan == DD_WRITE_ASK) {
		r = dd_map_make_exclusive(vc->vol, h->lbn, &excl);
		if (r)
			goto metadata_error;
		m.excl = excl;
	}
	__lc_store(&pool->lc, vol, h->lbn, &m);
	if (m.mapped && m.excl) {
		__scanner_mark(pool, m.pbn);
		epoch_get(pool, h);
		up_write(&pool->lock);
		remap_to_pbn(pool, bio, m.pbn);
		if (fua)
			submit_hooked(h, bio, HS_INPLACE_FUA);
		else
			submit_bio_noacct(bio);
		return;
	}

	if (!bio_is_whole_block(bio)) {
		h->page = rmw_page_get(pool, bio);
		if (!h->page) {
			bio = NULL;	/* requeued when an RMW in flight ends */
			goto out;
		}
	}
	r = dd_data_reserve(pool->eng, &pbn);
	if (r) {
		drop_rmw_page(pool, h);
		if (r != -ENOSPC)
			goto metadata_error;
		if (m.mapped && pool->pin_holders && !h->pin_retried) {
			/* Its block may only look shared: try again after the batch. */
			h->pin_retried = true;
			bio_list_add(&pool->pin_waiters, bio);
			bio = NULL;
			goto out;
		}
		__handle_no_space(pool, bio);
		bio = NULL;
		goto out;
	}
	__dd_cell_lock(&pool->cells, &h->cell, vol, h->lbn, 1);
	epoch_get(pool, h);	/* the old block may be read (RMW) */
	up_write(&pool->lock);
	start_new_block(pool, bio, &m, pbn);
	return;

metadata_error:
	__lc_forget(&pool->lc, vol, h->lbn);
	__metadata_operation_failed(pool, "preparing a write", r);
	status = BLK_STS_IOERR;
out:
	__check_engine_mode(pool);
	up_write(&pool->lock);
	if (bio)
		error_bio(bio, status);
}

/*----------------------------------------------------------------
 * Writes over several whole blocks (map() gave the worker h->nr > 1)
 *--------------------------------------------------------------*/

/*
 * What a write to @lbn can do (lock held): the mapping, its exclusive bit
 * settled (dd_map_make_exclusive when the plan asks), and stored in the
 * lookup cache.  A block it shows exclusive may be written in place.
 */
static int __plan_block(struct pool *pool, struct volume_c *vc, u64 lbn, struct dd_mapping *m)
{
	enum dd_write_plan plan;
	bool excl;
	int r;

	r = dd_map_plan_write(vc->vol, lbn, 0, m, &plan);
	if (!r && plan == DD_WRITE_ASK) {
		r = dd_map_make_exclusive(vc->vol, lbn, &excl);
		m->excl = excl;
	}
	if (!r)
		__lc_store(&pool->lc, vc->args.volume_id, lbn, m);
	return r;
}

enum segment_start {
	SEG_STARTED,	/* the segment is in h, its epoch counted: submit it */
	SEG_PARKED,	/* the bio was handed on (waits, or completed): touch neither */
	SEG_FAILED,	/* complete the bio with the status, after dropping the lock */
};

/*
 * The next segment of a write over several blocks, from block h->done (lock
 * held, the bio's cell held): the longest run of blocks that go in place
 * (exclusive, at consecutive PBNs; marked for the scanner), or of blocks
 * that need new ones, as many as one run of free blocks holds (reserved
 * before the blocks after the first are planned: each block is planned
 * once per segment it may start).  When it cannot start, the cell is let
 * go, and the bio is parked (it waits for space or for the scanner's batch,
 * and is then served again from its first block, which rewrites the same
 * data; or __handle_no_space completed it) or fails with *status.
 */
static enum segment_start __next_segment(struct pool *pool, struct dd_bio_hook *h,
					 blk_status_t *status)
{
	struct volume_c *vc = h->vc;
	u64 lbn = h->lbn + h->done, pbn;
	u32 len, max = h->nr - h->done, i, got;
	struct dd_mapping m;
	bool in_place;
	int r = -EROFS;

	if (!pool_can_change_metadata(pool))
		goto fail;
	r = __plan_block(pool, vc, lbn, &m);
	if (r)
		goto fail;
	in_place = m.mapped && m.excl;
	pbn = m.pbn;
	if (!in_place) {
		r = dd_data_reserve_run(pool->eng, max, &pbn, &got);
		if (r)
			goto fail;
		max = got;
	}
	for (len = 1; len < max; len++) {
		r = __plan_block(pool, vc, lbn + len, &m);
		if (r)
			break;
		if (in_place != (m.mapped && m.excl) || (in_place && m.pbn != pbn + len))
			break;
	}
	if (!in_place)
		dd_data_unreserve_run(pool->eng, pbn + len, max - len);
	if (r) {
		if (!in_place)
			dd_data_unreserve_run(pool->eng, pbn, len);
		goto fail;
	}
	if (in_place) {
		for (i = 0; i < len; i++)
			__scanner_mark(pool, pbn + i);
	}
	h->run_in_place = in_place;
	h->new_pbn = pbn;
	h->run_len = len;
	epoch_get(pool, h);
	return SEG_STARTED;

fail:
	__cell_unlock(pool, &h->cell);
	if (r == -ENOSPC && pool->pin_holders && !h->pin_retried) {
		/* Its blocks may only look shared: try again after the batch. */
		h->pin_retried = true;
		bio_list_add(&pool->pin_waiters, hook_bio(h));
		return SEG_PARKED;
	}
	if (r == -ENOSPC) {
		/* May complete the bio at once (and free h): nothing after this. */
		__handle_no_space(pool, hook_bio(h));
		return SEG_PARKED;
	}
	__lc_forget_range(&pool->lc, vc->args.volume_id, h->lbn, h->nr);
	if (r != -EROFS)
		__metadata_operation_failed(pool, "preparing a write", r);
	*status = BLK_STS_IOERR;
	return SEG_FAILED;
}

static void segment_endio(struct bio *clone)
{
	struct dd_bio_hook *h = clone->bi_private;
	struct pool *pool = h->vc->pool;

	h->status = clone->bi_status;
	bio_put(clone);
	epoch_put(pool, h);
	hook_prepared(pool, h);
}

/*
 * Where block @k of the bio (counted from its first, which it may start
 * inside) begins in the bio's data: the bio's iterator is never advanced
 * while the worker serves it in segments.
 */
static unsigned int bio_block_offset(struct bio *bio, u32 k)
{
	unsigned int in_block = (bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1)) << SECTOR_SHIFT;

	if (!k)
		return 0;
	return min_t(u64, ((u64)k << DD_BLOCK_SHIFT) - in_block, bio->bi_iter.bi_size);
}

/* A clone of the bio writes its blocks [done, done + run_len) to the segment's blocks. */
static void submit_segment(struct pool *pool, struct dd_bio_hook *h)
{
	struct bio *bio = hook_bio(h);
	struct bio *clone = bio_alloc_clone(pool->data_bdev, bio, GFP_NOIO, &pool->run_bs);
	unsigned int off = bio_block_offset(bio, h->done);

	h->state = HS_RUN_WRITE;
	if (unlikely(!clone)) {
		/* (only the clone of an integrity payload can fail) */
		h->status = BLK_STS_RESOURCE;
		epoch_put(pool, h);
		hook_prepared(pool, h);
		return;
	}
	bio_advance(clone, off);
	clone->bi_iter.bi_size = bio_block_offset(bio, h->done + h->run_len) - off;
	remap_to_pbn(pool, clone, h->new_pbn);	/* keeps the offset inside the first block */
	clone->bi_opf &= ~(REQ_FUA | REQ_PREFLUSH);	/* a FUA bio completes after a commit */
	clone->bi_end_io = segment_endio;
	clone->bi_private = h;
	submit_bio_noacct(clone);
}

/*
 * A write over several whole blocks (map() gave the worker h->nr > 1 of
 * them, none of zeroes, inside one cell group), segment by segment under
 * one cell: the blocks that are exclusive in place, the others to new
 * blocks, as the rules for one block say.  When the first segment is the
 * whole bio (every block exclusive, consecutive), the bio itself is
 * remapped.
 */
static void process_write_run(struct pool *pool, struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);
	u32 vol = h->vc->args.volume_id;
	blk_status_t status = BLK_STS_IOERR;
	enum segment_start start;
	struct dd_cell *cell;

	down_write(&pool->lock);
	cell = __dd_cell_find(&pool->cells, vol, h->lbn, h->nr);
	if (cell) {
		/* Some of it is being written to new blocks: wait for that. */
		bio_list_add(&cell->waiters, bio);
		up_write(&pool->lock);
		return;
	}
	h->done = 0;
	__dd_cell_lock(&pool->cells, &h->cell, vol, h->lbn, h->nr);
	start = __next_segment(pool, h, &status);
	if (start != SEG_STARTED) {
		__check_engine_mode(pool);
		up_write(&pool->lock);
		if (start == SEG_FAILED)
			error_bio(bio, status);
		return;
	}
	if (h->run_in_place && h->run_len == h->nr) {
		__cell_unlock(pool, &h->cell);	/* nobody waits: the lock was held */
		up_write(&pool->lock);
		remap_to_pbn(pool, bio, h->new_pbn);
		if (bio->bi_opf & REQ_FUA)
			submit_hooked(h, bio, HS_INPLACE_FUA);
		else
			submit_bio_noacct(bio);
		return;
	}
	up_write(&pool->lock);
	submit_segment(pool, h);
}

/*
 * Maps a segment of new blocks whose data is written (lock held); 0, or the
 * blocks from *done on are released.  The segment's LBNs are forgotten
 * first: the inserts commit between their steps, after old blocks were
 * freed (see the cache's contract).
 */
static int __insert_segment(struct pool *pool, struct dd_bio_hook *h, u32 *done)
{
	u32 vol = h->vc->args.volume_id, i;
	u64 lbn = h->lbn + h->done;
	int r = -EROFS;

	*done = 0;
	__lc_forget_range(&pool->lc, vol, lbn, h->run_len);
	if (pool_can_change_metadata(pool))
		r = dd_map_insert_run(h->vc->vol, lbn, h->new_pbn, h->run_len, done);
	if (r)
		DMERR_LIMIT("%s: cannot insert a mapping: %d", pool_name(pool), r);
	__check_engine_mode(pool);
	/* (an error that dropped the open transaction dropped these too) */
	for (i = 0; i < *done && pool_can_change_metadata(pool); i++) {
		struct dd_mapping m = { .pbn = h->new_pbn + i, .mapped = true, .excl = true };

		__lc_store(&pool->lc, vol, lbn + i, &m);
	}
	return r;
}

/* A segment's data is written: its new mappings, then the next segment or the end. */
static void finish_segment(struct pool *pool, struct dd_bio_hook *h)
{
	struct bio *bio = hook_bio(h);
	blk_status_t status = h->status;
	enum segment_start start;
	u32 i = 0;

	down_write(&pool->lock);
	if (!status && !h->run_in_place) {
		if (__insert_segment(pool, h, &i))
			status = BLK_STS_IOERR;
		else
			__check_low_water(pool);
	}
	if (status) {
		if (!h->run_in_place)
			dd_data_unreserve_run(pool->eng, h->new_pbn + i, h->run_len - i);
		__cell_unlock(pool, &h->cell);
		up_write(&pool->lock);
		error_bio(bio, status);
		return;
	}
	h->done += h->run_len;
	if (h->done < h->nr) {
		start = __next_segment(pool, h, &status);
		__check_engine_mode(pool);
		up_write(&pool->lock);
		if (start == SEG_STARTED)
			submit_segment(pool, h);
		else if (start == SEG_FAILED)
			error_bio(bio, status);
		return;
	}
	__cell_unlock(pool, &h->cell);
	up_write(&pool->lock);
	if (bio->bi_opf & REQ_FUA)
		complete_after_commit(pool, bio);
	else
		bio_endio(bio);
}

/*----------------------------------------------------------------
 * Reads over several blocks that missed the lookup cache
 *--------------------------------------------------------------*/

/* Zeroes @len bytes of the bio's data from @off. */
static void zero_fill_range(struct bio *bio, unsigned int off, unsigned int len)
{
	struct bvec_iter iter = bio->bi_iter, it;
	struct bio_vec bv;

	bio_advance_iter(bio, &iter, off);
	iter.bi_size = len;
	__bio_for_each_segment(bv, bio, it, iter)
		memzero_bvec(&bv);
}

/* A read in segments: the last reference (a clone's, or the submitter's) ends the bio. */
static void read_run_put(struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);

	if (atomic_dec_and_test(&h->pending)) {
		bio->bi_status = READ_ONCE(h->status);
		bio_endio(bio);
	}
}

static void read_clone_endio(struct bio *clone)
{
	struct run_clone *rc = container_of(clone, struct run_clone, clone);
	struct bio *bio = rc->orig;
	struct pool *pool = hook(bio)->vc->pool;

	if (unlikely(clone->bi_status))
		WRITE_ONCE(hook(bio)->status, clone->bi_status);
	dd_epoch_exit(&pool->epochs, rc->epoch);
	bio_put(clone);
	read_run_put(bio);
}

/*
 * A read over several blocks that missed the lookup cache (map() gave the
 * worker h->nr > 1 of them, inside one cell group).  Its blocks are looked
 * up a run at a time (unmapped blocks, or mapped blocks at consecutive
 * PBNs), each stored in the lookup cache; an unmapped run is zero-filled
 * here, a mapped run read by a clone submitted at once, so every run of
 * the bio is in flight together (scattered blocks, as dedup leaves them,
 * are read in parallel, not one round trip after another).  Each clone
 * counts itself in the epoch under the lock of its lookup, as one block's
 * read does, and stops counting when its I/O completes: the bio itself
 * holds no count, so the worker never waits for the lock while a count of
 * its own bio could keep an epoch from draining.
 */
static void process_read_run(struct pool *pool, struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);
	unsigned int epoch = 0, off, end;
	u32 done = 0, len = 0;
	struct dd_mapping m;
	struct run_clone *rc;
	struct bio *clone;
	int r;

	atomic_set(&h->pending, 1);	/* the submitter's, dropped at the end */
	while (done < h->nr) {
		down_write(&pool->lock);
		r = __lookup_run(pool, h->vc, h->lbn + done, h->nr - done, &m, &len);
		if (!r && m.mapped)
			epoch = dd_epoch_enter(&pool->epochs);
		up_write(&pool->lock);
		if (r) {
			WRITE_ONCE(h->status, BLK_STS_IOERR);
			break;
		}
		off = bio_block_offset(bio, done);
		end = bio_block_offset(bio, done + len);
		done += len;
		if (!m.mapped) {
			zero_fill_range(bio, off, end - off);
			continue;
		}
		clone = bio_alloc_clone(pool->data_bdev, bio, GFP_NOIO, &pool->run_bs);
		if (unlikely(!clone)) {
			/* (only the clone of an integrity payload can fail) */
			dd_epoch_exit(&pool->epochs, epoch);
			WRITE_ONCE(h->status, BLK_STS_RESOURCE);
			break;
		}
		rc = container_of(clone, struct run_clone, clone);
		rc->orig = bio;
		rc->epoch = epoch;
		bio_advance(clone, off);
		clone->bi_iter.bi_size = end - off;
		remap_to_pbn(pool, clone, m.pbn);	/* keeps the offset inside the first block */
		clone->bi_end_io = read_clone_endio;
		atomic_inc(&h->pending);
		submit_bio_noacct(clone);
	}
	read_run_put(bio);
}

/* Discards unmap the whole blocks they cover, at metadata speed. */
static void process_discard(struct pool *pool, struct bio *bio)
{
	struct dd_bio_hook *h = hook(bio);
	sector_t start = bio->bi_iter.bi_sector, end = bio_end_sector(bio);
	u64 first = DIV_ROUND_UP_SECTOR_T(start, DD_SECTORS_PER_BLOCK);
	u64 last = end >> (DD_BLOCK_SHIFT - SECTOR_SHIFT);
	int r = 0;

	if (first < last) {
		down_write(&pool->lock);
		if (pool_can_change_metadata(pool)) {
			/*
			 * Forgotten before the unmap: a long unmap commits as
			 * it goes, and each commit makes the blocks it freed
			 * reusable; map() must not write in place into them.
			 */
			__lc_forget_range(&pool->lc, h->vc->args.volume_id, first, last - first);
			r = dd_map_unmap(h->vc->vol, first, last - first, DD_UNMAP_DISCARD);
			if (r)
				__metadata_operation_failed(pool, "unmapping a discarded range", r);
		} else {
			r = -EROFS;
		}
		__check_engine_mode(pool);
		up_write(&pool->lock);
	}
	if (r)
		error_bio(bio, BLK_STS_IOERR);
	else
		bio_endio(bio);
}

static void process_deferred(struct pool *pool)
{
	struct bio_list bios;
	struct bio *bio;
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	bios = pool->deferred;
	bio_list_init(&pool->deferred);
	spin_unlock_irqrestore(&pool->lists_lock, flags);

	while ((bio = bio_list_pop(&bios))) {
		if (op_is_flush(bio->bi_opf) && !bio_has_data(bio) &&
		    bio_op(bio) != REQ_OP_DISCARD) {
			complete_after_commit(pool, bio);
			continue;
		}
		switch (bio_op(bio)) {
		case REQ_OP_READ:
			if (hook(bio)->nr > 1)
				process_read_run(pool, bio);
			else
				process_read(pool, bio);
			break;
		case REQ_OP_WRITE:
			if (hook(bio)->nr > 1)
				process_write_run(pool, bio);
			else
				process_write(pool, bio);
			break;
		case REQ_OP_DISCARD:
			process_discard(pool, bio);
			break;
		default:
			error_bio(bio, BLK_STS_NOTSUPP);
			break;
		}
		cond_resched();
	}
}

/* Inserts the mapping of a block whose data is written, then completes. */
static void finish_new_block(struct pool *pool, struct dd_bio_hook *h)
{
	struct bio *bio = hook_bio(h);
	u32 vol = h->vc->args.volume_id;
	int r = 0;

	down_write(&pool->lock);
	if (!h->status) {
		r = pool_can_change_metadata(pool) ?
			dd_map_insert(h->vc->vol, h->lbn, h->new_pbn) : -EROFS;
		if (!r) {
			struct dd_mapping m = { .pbn = h->new_pbn, .mapped = true, .excl = true };

			__lc_store(&pool->lc, vol, h->lbn, &m);
		} else {
			__lc_forget(&pool->lc, vol, h->lbn);
			DMERR_LIMIT("%s: cannot insert a mapping: %d", pool_name(pool), r);
		}
		__check_engine_mode(pool);
	}
	if (h->status || r)
		dd_data_unreserve(pool->eng, h->new_pbn);
	else
		__check_low_water(pool);
	__cell_unlock(pool, &h->cell);
	up_write(&pool->lock);

	rmw_release(pool, h);
	if (h->status || r)
		error_bio(bio, h->status ? h->status : BLK_STS_IOERR);
	else if (bio->bi_opf & REQ_FUA)
		complete_after_commit(pool, bio);
	else
		bio_endio(bio);
}

static void process_prepared(struct pool *pool)
{
	struct dd_bio_hook *h, *tmp;
	unsigned long flags;
	LIST_HEAD(list);

	spin_lock_irqsave(&pool->lists_lock, flags);
	list_splice_init(&pool->prepared, &list);
	spin_unlock_irqrestore(&pool->lists_lock, flags);

	list_for_each_entry_safe(h, tmp, &list, list) {
		struct bio *bio = hook_bio(h);

		list_del(&h->list);
		switch (h->state) {
		case HS_ALLOC_WRITE:
		case HS_RMW_WRITE:
			finish_new_block(pool, h);
			break;
		case HS_RMW_READ:
			/* A pool gone read-only cannot insert: skip the write. */
			if (!h->status && READ_ONCE(pool->mode) >= PM_READ_ONLY)
				h->status = BLK_STS_IOERR;
			if (h->status) {
				finish_new_block(pool, h);
				break;
			}
			rmw_merge(h, bio);
			rmw_submit(pool, h, REQ_OP_WRITE, h->new_pbn, HS_RMW_WRITE);
			break;
		case HS_RUN_WRITE:
			finish_segment(pool, h);
			break;
		case HS_INPLACE_FUA:
			if (h->status)
				error_bio(bio, h->status);
			else
				complete_after_commit(pool, bio);
			break;
		default:
			WARN_ON_ONCE(1);
			error_bio(bio, BLK_STS_IOERR);
		}
		cond_resched();
	}
}

/* Commits when asked (timer, FLUSH, FUA, no space) and completes the waiters. */
static void process_commit(struct pool *pool)
{
	struct bio_list waiters;
	unsigned long flags;
	bool requested;
	struct bio *bio;
	int r;

	spin_lock_irqsave(&pool->lists_lock, flags);
	waiters = pool->commit_waiters;
	bio_list_init(&pool->commit_waiters);
	requested = pool->commit_requested;
	pool->commit_requested = false;
	spin_unlock_irqrestore(&pool->lists_lock, flags);

	if (!requested && bio_list_empty(&waiters))
		return;
	down_write(&pool->lock);
	r = __commit(pool, !bio_list_empty(&waiters));
	if (!r)
		__retry_no_space(pool);
	up_write(&pool->lock);
	while ((bio = bio_list_pop(&waiters))) {
		if (r)
			error_bio(bio, BLK_STS_IOERR);
		else
			bio_endio(bio);
	}
}

/* Is background work allowed (the pool is not suspended or going away)? */
static bool background_allowed(struct pool *pool)
{
	unsigned long flags;
	bool ok;

	spin_lock_irqsave(&pool->lists_lock, flags);
	ok = !pool->background_stopped;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	return ok;
}

static void process_reclaim(struct pool *pool)
{
	unsigned long flags;
	bool done = true;
	int r;

	if (!pool->reclaim_pending || !background_allowed(pool))
		return;
	down_write(&pool->lock);
	if (pool_can_change_metadata(pool)) {
		r = dd_pool_reclaim(pool->eng, DD_RECLAIM_STEP, &done);
		__check_engine_mode(pool);
		if (r) {
			DMERR_LIMIT("%s: freeing deleted volumes failed: %d", pool_name(pool), r);
			done = true;
		}
	}
	if (done) {
		pool->reclaim_pending = false;
		request_commit(pool);
	}
	up_write(&pool->lock);
	if (done)
		return;
	/* Another step, unless a suspend or a destroy came meanwhile (they
	 * flush the workqueue after stopping background work, and a resume
	 * wakes the worker again). */
	spin_lock_irqsave(&pool->lists_lock, flags);
	if (!pool->background_stopped)
		wake_worker(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

void do_worker(struct work_struct *ws)
{
	struct pool *pool = container_of(ws, struct pool, worker);
	unsigned int noio = memalloc_noio_save();

	process_prepared(pool);
	process_deferred(pool);
	/* Fast devices complete the writes just issued before we get here. */
	process_prepared(pool);
	process_commit(pool);
	process_reclaim(pool);
	rmw_kick(pool);
	memalloc_noio_restore(noio);
}

/* Commits every COMMIT_PERIOD. */
void do_waker(struct work_struct *ws)
{
	struct pool *pool = container_of(to_delayed_work(ws), struct pool, waker);

	request_commit(pool);
	wake_worker(pool);
	queue_delayed_work(pool->wq, &pool->waker, COMMIT_PERIOD);
}
