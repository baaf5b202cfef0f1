// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-pool.c: the pool object: the mode ladder, the commit and the
 * engine's hooks, low water and out of data space, create and destroy
 * (opening the metadata, formatting a zeroed device), and the registry that
 * finds a pool by its mapped device.  docs/design.md says why.
 */
#include "dm-dedup-core.h"
#include "dd-scan.h"
#include "dd-bm-bufio.h"

#include <linux/blkdev.h>
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

/* Buffers dm-bufio keeps in reserve for the thread that holds many. */
#define DD_BM_RESERVED_BUFFERS		128

/*----------------------------------------------------------------
 * Pool mode: one place switches it, from the engine's state and space
 *--------------------------------------------------------------*/

const char *pool_mode_name(enum pool_mode mode)
{
	switch (mode) {
	case PM_WRITE:
		return "rw";
	case PM_OUT_OF_DATA_SPACE:
		return "out_of_space";
	case PM_READ_ONLY:
		return "ro";
	case PM_FAIL:
		return "fail";
	}
	return "?";
}

const char *pool_name(struct pool *pool)
{
	return dm_device_name(pool->pool_md);
}

static void fail_bio_list(struct pool *pool, struct bio_list *list, blk_status_t status)
{
	struct bio_list bios;
	struct bio *bio;
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	bios = *list;
	bio_list_init(list);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	while ((bio = bio_list_pop(&bios)))
		error_bio(bio, status);
}

/* The one place the mode changes (lock held for write). */
static void __set_pool_mode(struct pool *pool, enum pool_mode mode)
{
	lockdep_assert_held_write(&pool->lock);
	if (pool->mode == mode)
		return;
	if (mode == PM_FAIL || mode == PM_READ_ONLY || pool->mode >= PM_READ_ONLY)
		DMERR("%s: switching pool to %s mode", pool_name(pool), pool_mode_name(mode));
	else
		DMWARN("%s: switching pool to %s mode", pool_name(pool), pool_mode_name(mode));
	WRITE_ONCE(pool->mode, mode);	/* map() reads it without the lock */
	if (pool->ti)
		dm_table_event(pool->ti->table);
	/* Writes waiting for space would wait forever. */
	if (mode >= PM_READ_ONLY)
		fail_bio_list(pool, &pool->no_space, BLK_STS_IOERR);
}

/* Follows the engine down the ladder after any engine call (lock held). */
void __check_engine_mode(struct pool *pool)
{
	lockdep_assert_held_write(&pool->lock);
	switch (dd_pool_mode(pool->eng)) {
	case DD_MODE_FAIL:
		if (pool->mode != PM_FAIL)
			__lc_clear(&pool->lc);
		__set_pool_mode(pool, PM_FAIL);
		break;
	case DD_MODE_RO:
		if (pool->mode < PM_READ_ONLY) {
			/* The engine dropped its open transaction. */
			__lc_clear(&pool->lc);
			__set_pool_mode(pool, PM_READ_ONLY);
		}
		break;
	case DD_MODE_RW:
		break;
	}
}

/*
 * A metadata operation failed.  Errors the engine found while changing
 * metadata already went through dd_pool_metadata_error(); one found while only
 * reading it (a lookup that meets a damaged block) goes there now: the pool
 * records needs_check and steps down.  Running out of memory is not a
 * metadata error.
 */
static bool is_metadata_damage(int r)
{
	switch (r) {
	case -ENOMEM:		/* memory, not metadata */
	case -EWOULDBLOCK:	/* a cache-only lookup missed */
	case -EINVAL:		/* bad input (e.g. an LBN out of range) */
	case -ENOSPC:
	case -EROFS:
	case -EOVERFLOW:
		return false;
	default:
		return true;
	}
}

void __metadata_operation_failed(struct pool *pool, const char *op, int r)
{
	lockdep_assert_held_write(&pool->lock);
	DMERR_LIMIT("%s: %s failed: %d", pool_name(pool), op, r);
	if (is_metadata_damage(r) && dd_pool_mode(pool->eng) == DD_MODE_RW &&
	    pool->mode < PM_READ_ONLY)
		dd_pool_metadata_error(pool->eng, r, op);
	__check_engine_mode(pool);
}

/* Lock held (read or write): the mode changes only under it. */
bool pool_can_change_metadata(struct pool *pool)
{
	lockdep_assert_held(&pool->lock);
	return pool->mode == PM_WRITE || pool->mode == PM_OUT_OF_DATA_SPACE;
}

/*----------------------------------------------------------------
 * Commit
 *--------------------------------------------------------------*/

/*
 * The engine calls this before every commit, including those it makes on
 * its own when the journal fills: a mapping must never be durable before
 * its data, and a block freed in this transaction must not be touched by a
 * bio that looked its mapping up earlier once the commit makes it reusable.
 */
static int pool_pre_commit(void *context)
{
	struct pool *pool = context;

	dd_epoch_flip_and_drain(&pool->epochs);
	return blkdev_issue_flush(pool->data_bdev);
}

/*
 * Blocks a commit freed, before they can be allocated again: pass them down to
 * the data device as discards (unless no_discard_passdown).
 */
static void pool_freed(void *context, u64 start, u64 len)
{
	struct pool *pool = context;
	int r;

	if ((pool->features & DD_POOL_NO_DISCARD_PASSDOWN) ||
	    !bdev_max_discard_sectors(pool->data_bdev))
		return;
	r = blkdev_issue_discard(pool->data_bdev, start << (DD_BLOCK_SHIFT - SECTOR_SHIFT),
				 len << (DD_BLOCK_SHIFT - SECTOR_SHIFT), GFP_NOIO);
	if (r && r != -EOPNOTSUPP)
		DMERR_LIMIT("%s: discard passdown failed: %d", pool_name(pool), r);
}

/*
 * Makes every completed write durable.  Caller holds pool->lock for write.
 * Fails once a metadata error dropped changes of an open transaction: writes
 * that were reported complete may be gone, so no flush may say otherwise.
 */
int __commit(struct pool *pool, bool flush_data)
{
	struct dd_pool_stats st;
	int r;

	lockdep_assert_held_write(&pool->lock);
	if (pool->mode == PM_FAIL)
		return -EIO;
	dd_pool_get_stats(pool->eng, &st);
	if (st.dropped_changes) {
		DMERR_LIMIT("%s: failing a flush: a metadata error dropped completed writes",
			    pool_name(pool));
		return -EIO;
	}
	if (dd_pool_dirty(pool->eng) && pool_can_change_metadata(pool)) {
		r = dd_pool_commit(pool->eng);
		__check_engine_mode(pool);
		if (r)
			DMERR_LIMIT("%s: commit failed: %d", pool_name(pool), r);
		return r;
	}
	return flush_data ? blkdev_issue_flush(pool->data_bdev) : 0;
}

/*----------------------------------------------------------------
 * Out of data space
 *--------------------------------------------------------------*/

/* Raises the low water event once per crossing (lock held for write). */
void __check_low_water(struct pool *pool)
{
	struct dd_pool_stats st;

	lockdep_assert_held_write(&pool->lock);
	dd_pool_get_stats(pool->eng, &st);
	if (st.data_free < pool->low_water_blocks) {
		if (!pool->low_water_triggered) {
			pool->low_water_triggered = true;
			DMWARN("%s: reached low water mark for data device: sending event.",
			       pool_name(pool));
			if (pool->ti)
				dm_table_event(pool->ti->table);
		}
	} else {
		pool->low_water_triggered = false;
	}
}

/*
 * Queue a write until space appears.  Once the timeout has fired, writes
 * that need a block fail at once (false) until space appears again.
 */
static bool no_space_wait(struct pool *pool, struct bio *bio, bool even_if_expired)
{
	unsigned long flags;
	bool queued = false;

	spin_lock_irqsave(&pool->lists_lock, flags);
	if (even_if_expired || !pool->no_space_expired) {
		bio_list_add(&pool->no_space, bio);
		queued = true;
	}
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	return queued;
}

/* A write found no free block (lock held for write). */
void __handle_no_space(struct pool *pool, struct bio *bio)
{
	struct dd_pool_stats st;

	lockdep_assert_held_write(&pool->lock);
	/* A noflush suspend must not wait for space (presuspend requeued the
	 * bios already waiting; this one came later). */
	if (dm_noflush_suspending(hook(bio)->vc->ti)) {
		error_bio(bio, BLK_STS_DM_REQUEUE);
		return;
	}
	dd_pool_get_stats(pool->eng, &st);
	if (st.data_pending_free) {
		/* Blocks freed in the open transaction: usable after a commit. */
		no_space_wait(pool, bio, true);
		request_commit(pool);
		return;
	}
	if (pool->features & DD_POOL_ERROR_IF_NO_SPACE) {
		if (pool->mode == PM_WRITE)
			__set_pool_mode(pool, PM_OUT_OF_DATA_SPACE);
		error_bio(bio, BLK_STS_NOSPC);
		return;
	}
	if (pool->mode == PM_WRITE) {
		unsigned long flags;

		/* A new episode: a timeout left over from the last one is void. */
		spin_lock_irqsave(&pool->lists_lock, flags);
		pool->no_space_expired = false;
		spin_unlock_irqrestore(&pool->lists_lock, flags);
		__set_pool_mode(pool, PM_OUT_OF_DATA_SPACE);
		/* Read once: the parameter is writable at run time. */
		pool->no_space_timeout_used = READ_ONCE(dd_no_space_timeout_secs);
		if (pool->no_space_timeout_used)
			queue_delayed_work(pool->wq, &pool->no_space_timeout,
					   pool->no_space_timeout_used * HZ);
	}
	if (!no_space_wait(pool, bio, false))
		error_bio(bio, BLK_STS_NOSPC);
}

/* After a commit or a resize: retry the writes that waited for space. */
void __retry_no_space(struct pool *pool)
{
	struct dd_pool_stats st;
	struct bio_list bios;
	unsigned long flags;

	lockdep_assert_held_write(&pool->lock);
	dd_pool_get_stats(pool->eng, &st);
	if (!st.data_free)
		return;
	if (pool->mode == PM_OUT_OF_DATA_SPACE) {
		cancel_delayed_work(&pool->no_space_timeout);
		__set_pool_mode(pool, PM_WRITE);
	}
	spin_lock_irqsave(&pool->lists_lock, flags);
	pool->no_space_expired = false;
	bios = pool->no_space;
	bio_list_init(&pool->no_space);
	bio_list_merge(&pool->deferred, &bios);
	if (!bio_list_empty(&bios))
		wake_worker(pool);
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*
 * The queued writes fail, and so does every later write that needs a block,
 * until space appears (__retry_no_space): nothing waits forever.
 */
static void do_no_space_timeout(struct work_struct *ws)
{
	struct pool *pool = container_of(to_delayed_work(ws), struct pool, no_space_timeout);
	unsigned long flags;

	DMERR("%s: no data space for %u seconds: failing writes that need a block",
	      pool_name(pool), pool->no_space_timeout_used);
	spin_lock_irqsave(&pool->lists_lock, flags);
	pool->no_space_expired = true;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	fail_bio_list(pool, &pool->no_space, BLK_STS_NOSPC);
}

/*----------------------------------------------------------------
 * Pool object lifecycle
 *--------------------------------------------------------------*/

static void pool_destroy(struct pool *pool)
{
	unsigned int noio;

	if (pool->wq) {
		pool_stop_background(pool);
		cancel_delayed_work_sync(&pool->no_space_timeout);
		drain_workqueue(pool->wq);
	}
	import_destroy(pool);
	if (pool->eng) {
		noio = memalloc_noio_save();
		down_write(&pool->lock);
		__scanner_save(pool);	/* the thread is stopped: pool_stop_background() */
		(void)__commit(pool, true);
		dd_pool_close(pool->eng);
		up_write(&pool->lock);
		memalloc_noio_restore(noio);
	}
	scanner_destroy(pool);
	fail_bio_list(pool, &pool->no_space, BLK_STS_IOERR);
	if (pool->wq)
		destroy_workqueue(pool->wq);
	dd_bm_bufio_destroy(pool->bm);
	lc_exit(&pool->lc);
	rmw_pages_exit(&pool->rmw);
	bioset_exit(&pool->run_bs);	/* safe if never initialised (zeroed) */
	kfree(pool);
}

/*
 * The index_memory feature of a table being bound (lock held for write).  A
 * failure costs savings, not the table: the index keeps its size.
 */
void __pool_configure_scanner(struct pool *pool, struct pool_c *pc)
{
	struct dd_scan_config cfg = { .index_bytes = (u64)pc->args.index_mib << 20 };
	int r;

	if (!cfg.index_bytes || cfg.index_bytes == pool->index_bytes ||
	    !pool_can_change_metadata(pool))
		return;
	r = dd_scan_configure(pool->eng, &cfg);
	if (r)
		DMERR("%s: cannot set index_memory %u MiB: %d", pool_name(pool),
		      pc->args.index_mib, r);
	else
		pool->index_bytes = cfg.index_bytes;
}

/* Formats a zeroed metadata device, opens the engine (lock held for write). */
static int __pool_open_metadata(struct pool *pool, struct pool_c *pc, char **error)
{
	bool read_only = pc->args.features & DD_POOL_READ_ONLY;
	struct dd_pool_hooks hooks = {
		.pre_commit = pool_pre_commit,
		.freed = pool_freed,
		.ctx = pool,
	};
	u64 nr_data = pc->ti->len >> (DD_BLOCK_SHIFT - SECTOR_SHIFT), meta_data;
	struct dd_pool_stats st;
	enum dd_probe probe;
	int r;

	lockdep_assert_held_write(&pool->lock);
	pool->bm = dd_bm_bufio_create(pc->args.metadata_dev->bdev, DD_BM_RESERVED_BUFFERS,
				      read_only);
	if (IS_ERR(pool->bm)) {
		r = PTR_ERR(pool->bm);
		pool->bm = NULL;
		*error = "Cannot create the metadata block manager";
		return r;
	}
	r = dd_pool_probe(pool->bm, &probe);
	if (r) {
		*error = "Cannot read the metadata device";
		return r;
	}
	if (probe == DD_PROBE_FOREIGN) {
		*error = "Metadata device holds something other than a dedup pool";
		return -EINVAL;
	}
	if (probe == DD_PROBE_ZEROED) {
		struct dd_format_params fp = {
			.nr_data_blocks = nr_data,
			.data_block_sectors = DD_SECTORS_PER_BLOCK,
		};

		if (read_only) {
			*error = "Cannot format a metadata device in read_only mode";
			return -EINVAL;
		}
		r = dd_pool_format(pool->bm, &fp);
		if (r) {
			*error = "Cannot format the metadata device";
			return r;
		}
	}
	/*
	 * Before the open, which allocates for the data space it finds (a
	 * damaged superblock may claim 2^48 blocks); an unreadable superblock
	 * is left to the open to report.
	 */
	if (probe == DD_PROBE_POOL && !dd_pool_probe_data_blocks(pool->bm, &meta_data) &&
	    meta_data > nr_data) {
		*error = "Pool length is smaller than the data space in the metadata";
		return -EINVAL;
	}
	r = dd_pool_open(pool->bm, read_only ? DD_OPEN_READ_ONLY : 0, &hooks, &pool->eng);
	if (r) {
		pool->eng = NULL;
		*error = r == -EROFS ? "Metadata journal needs replay: load the pool without read_only once" :
			 r == -EILSEQ ? "Metadata damaged (superblock, journal or volume table): run dedup_check" :
			 "Cannot open the pool metadata";
		return r;
	}
	dd_pool_get_stats(pool->eng, &st);
	if (st.nr_data_blocks > nr_data) {
		*error = "Pool length is smaller than the data space in the metadata";
		return -EINVAL;
	}
	dd_bm_bufio_set_minimum(pool->bm, 2 * st.journal_blocks);
	pool->mode = PM_WRITE;
	__check_engine_mode(pool);
	if (read_only)
		pool->mode = PM_READ_ONLY;
	/* Volumes a crash left half-freed (or snapshots it interrupted). */
	pool->reclaim_pending = st.nr_deleting > 0;
	__pool_configure_scanner(pool, pc);
	r = __scanner_create(pool, st.nr_data_blocks);
	if (r)
		*error = "Cannot start the scanner";
	return r;
}

/*
 * At resume: takes the room of a metadata device that grew (lvextend of the
 * metadata LV, then a reload of the table under the pool), as far as the
 * bitmap pages reserved at format allow, and commits it.  A device smaller
 * than the metadata space fails the resume.
 */
int __pool_grow_metadata(struct pool *pool)
{
	struct dd_pool_stats st;
	u64 dev, want;
	int r;

	lockdep_assert_held_write(&pool->lock);
	dd_pool_get_stats(pool->eng, &st);
	dev = dd_bm_bufio_device_blocks(pool->bm);
	if (dev < st.nr_meta_blocks) {
		DMERR("%s: the metadata device (%llu blocks) is smaller than the metadata space (%llu blocks)",
		      pool_name(pool), (unsigned long long)dev,
		      (unsigned long long)st.nr_meta_blocks);
		return -EINVAL;
	}
	want = min(dev, st.meta_max_blocks);
	if (dev > st.meta_max_blocks && !pool->meta_limit_warned) {
		DMWARN("%s: the metadata device has %llu blocks; the pool can use %llu (the limit set at format)",
		       pool_name(pool), (unsigned long long)dev,
		       (unsigned long long)st.meta_max_blocks);
		pool->meta_limit_warned = true;
	}
	if (want <= st.nr_meta_blocks)
		return 0;
	if (!pool_can_change_metadata(pool)) {
		/* harmless: the room is taken at a later resume in write mode */
		DMWARN("%s: the metadata device grew; not taken in %s mode", pool_name(pool),
		       pool_mode_name(pool->mode));
		return 0;
	}
	r = dd_pool_resize_meta(pool->eng, want);
	if (!r)
		r = __commit(pool, false);
	__check_engine_mode(pool);
	if (r) {
		DMERR("%s: cannot grow the metadata space: %d", pool_name(pool), r);
		return r;
	}
	DMINFO("%s: metadata space grown from %llu to %llu blocks", pool_name(pool),
	       (unsigned long long)st.nr_meta_blocks, (unsigned long long)want);
	return 0;
}

/* A new pool object with one reference, its metadata open; not yet registered. */
static struct pool *pool_create(struct mapped_device *md, struct pool_c *pc, char **error)
{
	struct pool *pool;
	unsigned int noio;
	int r;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool) {
		*error = "Cannot allocate pool";
		return ERR_PTR(-ENOMEM);
	}
	pool->pool_md = md;
	pool->metadata_dev = dd_dev_t(pc->args.metadata_dev);
	pool->data_dev = dd_dev_t(pc->args.data_dev);
	pool->data_bdev = pc->args.data_dev->bdev;
	pool->ref_count = 1;
	pool->features = pc->args.features;
	pool->low_water_blocks = pc->args.low_water_blocks;
	init_rwsem(&pool->lock);
	spin_lock_init(&pool->lists_lock);
	bio_list_init(&pool->deferred);
	INIT_LIST_HEAD(&pool->prepared);
	bio_list_init(&pool->commit_waiters);
	bio_list_init(&pool->no_space);
	bio_list_init(&pool->pin_waiters);
	xa_init(&pool->imports);
	INIT_LIST_HEAD(&pool->volumes);
	dd_epochs_init(&pool->epochs);
	dd_cells_init(&pool->cells, &pool->lock);
	pool->snap_origin = DD_NO_VOLUME;
	init_waitqueue_head(&pool->snap_wait);
	INIT_WORK(&pool->worker, do_worker);
	INIT_DELAYED_WORK(&pool->waker, do_waker);
	INIT_DELAYED_WORK(&pool->no_space_timeout, do_no_space_timeout);

	r = -ENOMEM;
	if (rmw_pages_init(&pool->rmw, max(dd_rmw_pages, 1U))) {
		*error = "Cannot allocate the read-modify-write pages";
		goto bad;
	}
	/* A clone per run in flight; more wait for one to complete (device I/O only). */
	if (bioset_init(&pool->run_bs, DD_RUN_CLONES, offsetof(struct run_clone, clone), 0)) {
		*error = "Cannot allocate the bio set of segments";
		goto bad;
	}
	if (lc_init(&pool->lc, dd_lookup_cache_entries)) {
		*error = "Cannot allocate the lookup cache";
		goto bad;
	}
	pool->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!pool->wq) {
		*error = "Cannot create the pool workqueue";
		goto bad;
	}
	/*
	 * No one else can see the pool yet; the lock is taken for the contract
	 * of the engine calls and __check_engine_mode().
	 */
	noio = memalloc_noio_save();
	down_write(&pool->lock);
	r = __pool_open_metadata(pool, pc, error);
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	if (r)
		goto bad;
	return pool;
bad:
	pool_destroy(pool);
	return ERR_PTR(r);
}

/*----------------------------------------------------------------
 * Pool registry, keyed by the pool's mapped_device
 *--------------------------------------------------------------*/

/* Every pool object; 'mutex' also protects each pool's ref_count. */
static struct {
	struct mutex mutex;
	struct list_head pools;
} dd_pool_table;

void dd_pool_table_init(void)
{
	mutex_init(&dd_pool_table.mutex);
	INIT_LIST_HEAD(&dd_pool_table.pools);
}

void dd_pool_table_exit(void)
{
	WARN_ON(!list_empty(&dd_pool_table.pools));
	mutex_destroy(&dd_pool_table.mutex);
}

static struct pool *__pool_lookup_md(struct mapped_device *md)
{
	struct pool *pool;

	lockdep_assert_held(&dd_pool_table.mutex);
	list_for_each_entry(pool, &dd_pool_table.pools, list)
		if (pool->pool_md == md)
			return pool;
	return NULL;
}

/* A pool other than the one in @md that uses @dev as metadata or data device. */
static struct pool *__pool_using_dev(struct mapped_device *md, dev_t dev, bool metadata)
{
	struct pool *pool;

	lockdep_assert_held(&dd_pool_table.mutex);
	list_for_each_entry(pool, &dd_pool_table.pools, list) {
		if (pool->pool_md == md)
			continue;
		if ((metadata ? pool->metadata_dev : pool->data_dev) == dev)
			return pool;
	}
	return NULL;
}

static void __pool_get(struct pool *pool)
{
	lockdep_assert_held(&dd_pool_table.mutex);
	pool->ref_count++;
}

static void __pool_put(struct pool *pool)
{
	lockdep_assert_held(&dd_pool_table.mutex);
	if (WARN_ON(!pool->ref_count))
		return;
	if (--pool->ref_count)
		return;
	list_del(&pool->list);
	pool_destroy(pool);
}

/*
 * Find the pool object of @md, or create it.  A reload of a pool device must name the
 * same metadata and data devices; a device may belong to one pool only.
 */
static struct pool *__pool_find(struct mapped_device *md, struct pool_c *pc, char **error)
{
	dev_t mdev = dd_dev_t(pc->args.metadata_dev), ddev = dd_dev_t(pc->args.data_dev);
	struct pool *pool;

	lockdep_assert_held(&dd_pool_table.mutex);
	if (__pool_using_dev(md, mdev, true) || __pool_using_dev(md, mdev, false)) {
		*error = "Metadata device already in use by another pool";
		return ERR_PTR(-EBUSY);
	}
	if (__pool_using_dev(md, ddev, false) || __pool_using_dev(md, ddev, true)) {
		*error = "Data device already in use by another pool";
		return ERR_PTR(-EBUSY);
	}

	pool = __pool_lookup_md(md);
	if (pool) {
		if (pool->metadata_dev != mdev || pool->data_dev != ddev) {
			*error = "Pool cannot be replaced by a pool on other devices";
			return ERR_PTR(-EINVAL);
		}
		if ((pc->args.features ^ pool->features) & DD_POOL_READ_ONLY) {
			*error = "Pool cannot switch read_only on reload: remove and recreate it";
			return ERR_PTR(-EINVAL);
		}
		__pool_get(pool);
		return pool;
	}
	pool = pool_create(md, pc, error);
	if (!IS_ERR(pool))
		list_add(&pool->list, &dd_pool_table.pools);
	return pool;
}

struct pool *pool_find_or_create(struct mapped_device *md, struct pool_c *pc, char **error)
{
	struct pool *pool;

	mutex_lock(&dd_pool_table.mutex);
	pool = __pool_find(md, pc, error);
	mutex_unlock(&dd_pool_table.mutex);
	return pool;
}

struct pool *pool_lookup(struct mapped_device *md)
{
	struct pool *pool;

	mutex_lock(&dd_pool_table.mutex);
	pool = __pool_lookup_md(md);
	if (pool)
		__pool_get(pool);
	mutex_unlock(&dd_pool_table.mutex);
	return pool;
}

void pool_put(struct pool *pool)
{
	mutex_lock(&dd_pool_table.mutex);
	__pool_put(pool);
	mutex_unlock(&dd_pool_table.mutex);
}

void pool_put_target(struct pool *pool, struct dm_target *ti)
{
	mutex_lock(&dd_pool_table.mutex);
	/* pool->ti is read under the pool lock (mode and low-water events). */
	down_write(&pool->lock);
	if (pool->ti == ti)
		WRITE_ONCE(pool->ti, NULL);
	up_write(&pool->lock);
	__pool_put(pool);
	mutex_unlock(&dd_pool_table.mutex);
}

/*
 * Stops background work (reclaim) and the commit timer; the caller flushes
 * or drains the workqueue afterwards, so no background step runs after it
 * returns.  Bios are still served.
 */
void pool_stop_background(struct pool *pool)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	pool->background_stopped = true;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	cancel_delayed_work_sync(&pool->waker);
	scanner_stop(pool);
}

void pool_start_background(struct pool *pool)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	pool->background_stopped = false;
	wake_worker(pool);	/* e.g. reclaim left over from before a suspend or crash */
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	queue_delayed_work(pool->wq, &pool->waker, COMMIT_PERIOD);
	scanner_start(pool);
}
