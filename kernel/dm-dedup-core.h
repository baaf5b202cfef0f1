/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dedup-core.h: the private header of the kernel glue.  The tunables the
 * files share, the parsed table arguments, struct pool and the per-target
 * and per-bio structures, and what each file offers the others.
 * docs/design.md ("The kernel data path") says why it is built this way.
 */
#ifndef DM_DEDUP_CORE_H
#define DM_DEDUP_CORE_H

#include "dd-kcompat.h"
#include "dd-engine.h"
#include "dd-scan.h"
#include "dm-dedup-cache.h"
#include "dm-dedup-cell.h"
#include "dm-dedup-epoch.h"
#include "dm-dedup-marks.h"
#include <dm-dedup/format.h>

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/list.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#define DM_MSG_PREFIX "dedup"

/*----------------------------------------------------------------
 * Tunables shared between the files
 *--------------------------------------------------------------*/

#define COMMIT_PERIOD			HZ
#define DD_RUN_CLONES			64	/* the run_bs mempool (dm-dedup-io.c) */

/* Module parameters (dm-dedup-target.c); docs/dm-dedup.rst describes them. */
extern unsigned int dd_lookup_cache_entries;
extern unsigned int dd_rmw_pages;
extern unsigned int dd_no_space_timeout_secs;	/* writable at run time */

/*----------------------------------------------------------------
 * Parsed table arguments
 *--------------------------------------------------------------*/

enum dd_pool_feature {
	DD_POOL_ERROR_IF_NO_SPACE	= 1U << 0,
	DD_POOL_IGNORE_DISCARD		= 1U << 1,
	DD_POOL_NO_DISCARD_PASSDOWN	= 1U << 2,
	DD_POOL_SKIP_ZERO_DETECT	= 1U << 3,
	DD_POOL_READ_ONLY		= 1U << 4,
	DD_POOL_SHARE_SNAPSHOTS		= 1U << 5,
};

struct dd_pool_args {
	struct dm_dev *metadata_dev;
	struct dm_dev *data_dev;
	unsigned int data_block_sectors;
	u64 low_water_blocks;
	unsigned int features;		/* DD_POOL_* */
	u32 index_mib;			/* index_memory <MiB>, 0 if not given */
};

struct dd_volume_args {
	struct dm_dev *pool_dev;
	u32 volume_id;
};

/*----------------------------------------------------------------
 * In-core structures
 *--------------------------------------------------------------*/

enum pool_mode {
	PM_WRITE,		/* metadata may be changed */
	PM_OUT_OF_DATA_SPACE,	/* as PM_WRITE, but new blocks cannot be allocated */
	PM_READ_ONLY,		/* metadata may not be changed */
	PM_FAIL,		/* all I/O fails */
};

/*
 * Pages for read-modify-write (rmw_pages of them), allocated when the pool is
 * created.  The worker takes one without sleeping: when none is free, the
 * bio waits in 'waiters' and goes back to the worker when an RMW in flight
 * returns its page.  The worker never sleeps for memory that only it could
 * give back (cells and RMW bios are part of the per-bio data).
 */
struct rmw_pages {
	struct page **free;
	unsigned int nr_free, nr;
	struct bio_list waiters;	/* under pool->lists_lock */
};

/*
 * One per pool mapped device, shared by all the tables loaded into it (a
 * reload finds it again) and referenced by every volume of the pool.
 */
struct pool {
	struct list_head list;
	struct mapped_device *pool_md;
	dev_t metadata_dev;
	dev_t data_dev;
	unsigned int ref_count;		/* under the registry's mutex (dm-dedup-pool.c) */

	struct block_device *data_bdev;
	struct dm_target *ti;		/* the bound (active) pool target, or NULL */
	unsigned int features;		/* DD_POOL_*, from the bound table */
	u64 low_water_blocks;
	bool low_water_triggered;
	bool meta_limit_warned;		/* the metadata device outgrew the format's limit */
	enum pool_mode mode;

	/*
	 * The engine is not thread-safe: the worker, messages, constructors
	 * and status hold 'lock' around every engine call.  map() never takes
	 * it: it reads the lookup cache.
	 */
	struct rw_semaphore lock;
	struct dd_bm *bm;
	struct dd_pool *eng;

	struct workqueue_struct *wq;
	struct work_struct worker;
	struct delayed_work waker;
	struct delayed_work no_space_timeout;

	spinlock_t lists_lock;
	bool no_space_expired;		/* no_space_timeout fired; cleared by space */
	struct bio_list deferred;	/* from map(): need the worker */
	struct list_head prepared;	/* data I/O done, mapping to insert */
	struct bio_list commit_waiters;	/* complete after the next commit */
	struct bio_list no_space;	/* waiting for data space */
	bool commit_requested;
	bool reclaim_pending;
	/*
	 * Under lists_lock: no background metadata work (reclaim) runs while the
	 * pool is suspended or being destroyed; the worker still serves bios.
	 */
	bool background_stopped;
	unsigned int no_space_timeout_used;	/* seconds, of the episode running */

	/* In-flight data I/O: a commit waits for the older epoch. */
	struct dd_epochs epochs;

	struct lookup_cache lc;

	struct dd_cells cells;		/* under 'lock' (for write) */
	struct rmw_pages rmw;
	struct bio_set run_bs;		/* clones of the segments of a bio (struct run_clone) */

	/* The scanner thread (dm-dedup-scan.c) and map()'s written marks. */
	struct scanner *scanner;
	struct written_marks __rcu *marks;
	/*
	 * Under 'lock': the scanner or the importer holds pins (a batch between
	 * prepare and apply).  A pinned block looks shared, so a write to it
	 * needs a new block; one that finds none waits in pin_waiters for the
	 * batches' end (once) instead of failing or waiting for space.
	 */
	unsigned int pin_holders;	/* batches holding pins: the scanner's, the importer's */
	struct bio_list pin_waiters;
	/* Dedup at import (dm-dedup-import.c): the volumes being imported and the worker. */
	struct xarray imports;		/* volume id -> struct import_vol; changed under 'lock' */
	atomic_t nr_imports;		/* map() looks for hints only when non-zero */
	struct importer *importer;
	u64 index_bytes;		/* the index_memory feature of the bound table, or 0 */

	struct list_head volumes;	/* volume_c, under 'lock' */
	u32 snap_origin;		/* being copied by create_snap, under lists_lock */
	wait_queue_head_t snap_wait;	/* its end */
};

/* Per pool target. */
struct pool_c {
	struct dm_target *ti;
	struct pool *pool;
	struct dd_pool_args args;
};

/* Per volume target. */
struct volume_c {
	struct dm_target *ti;
	struct pool *pool;
	struct dd_volume_args args;
	struct dd_volume *vol;
	struct list_head list;		/* pool->volumes */
	struct mapped_device *md;
	/*
	 * From preresume to postsuspend, under pool->lists_lock: the device
	 * may issue I/O.  create_snap refuses a running origin; a resume during
	 * the copy waits in preresume until it ends (pool->snap_origin).
	 */
	bool running;
};

/*----------------------------------------------------------------
 * The per-bio data of a volume bio
 *--------------------------------------------------------------*/

enum hook_state {
	HS_NONE,
	HS_ALLOC_WRITE,		/* the bio itself writes the new block */
	HS_RMW_READ,		/* reading the old block of a partial write */
	HS_RMW_WRITE,		/* writing the merged block */
	HS_INPLACE_FUA,		/* FUA write in place: complete after a commit */
	HS_RUN_WRITE,		/* a clone writes one segment of a write over several */
};

/*
 * A clone from run_bs (bio_alloc_clone's front pad is what precedes
 * 'clone'): a read segment's bio and epoch count (unused by write segments).
 */
struct run_clone {
	struct bio *orig;
	unsigned int epoch;
	struct bio clone;		/* last: the front pad ends at it */
};

/* Per-bio data of a volume bio. */
struct dd_bio_hook {
	struct volume_c *vc;
	struct list_head list;		/* pool->prepared */
	u64 lbn;
	u32 nr;				/* blocks the worker serves at once (>= 1) */
	u32 done, run_len;		/* a write in segments: blocks done, in flight */
	atomic_t pending;		/* a read in segments: clones in flight, +1 */
	u64 old_pbn, new_pbn;		/* new_pbn: the first block of the run in flight */
	bool old_mapped;
	bool counted;			/* holds an epoch reference */
	u8 epoch;
	u8 state;			/* enum hook_state */
	bool pin_retried;		/* waited for the scanner's pins once */
	bool run_in_place;		/* the segment in flight writes in place */
	blk_status_t status;
	struct page *page;		/* RMW: from pool->rmw */
	bio_end_io_t *saved_end_io;
	void *saved_private;
	struct dd_cell cell;		/* while writing a new block */
	struct dd_import_item hint;	/* a write held for dedup at import */
	struct bio rmw_bio;		/* RMW read, then write */
	struct bio_vec rmw_bvec;
};

static inline struct dd_bio_hook *hook(struct bio *bio)
{
	return dm_per_bio_data(bio, sizeof(struct dd_bio_hook));
}

static inline struct bio *hook_bio(struct dd_bio_hook *h)
{
	return dm_bio_from_per_bio_data(h, sizeof(struct dd_bio_hook));
}

static inline void error_bio(struct bio *bio, blk_status_t status)
{
	bio->bi_status = status;
	bio_endio(bio);
}

/*----------------------------------------------------------------
 * What each file offers the others, by file.  A name that starts with __
 * needs pool->lock held for write (each asserts it with lockdep); "lock
 * held" means pool->lock, for read or write.
 *--------------------------------------------------------------*/

/* dm-dedup-pool.c, the registry: not with pool->lock held (it creates and destroys pools). */
void dd_pool_table_init(void);
void dd_pool_table_exit(void);		/* every pool is gone */
/* The pool of @md, a new reference; created (a zeroed metadata device formatted) if none. */
struct pool *pool_find_or_create(struct mapped_device *md, struct pool_c *pc, char **error);
struct pool *pool_lookup(struct mapped_device *md);	/* a new reference, or NULL */
void pool_put(struct pool *pool);	/* the last reference commits, closes and frees */
void pool_put_target(struct pool *pool, struct dm_target *ti);	/* unbinds @ti if active */
void pool_stop_background(struct pool *pool);	/* suspend/destroy; then flush the wq */
void pool_start_background(struct pool *pool);	/* resume */
/* The table's index_memory, when it changed (lock held for write). */
void __pool_configure_scanner(struct pool *pool, struct pool_c *pc);

/* dm-dedup-pool.c, the mode ladder (switched in that file only). */
const char *pool_name(struct pool *pool);		/* the pool's dm device name */
const char *pool_mode_name(enum pool_mode mode);	/* as the status line says it */
void __check_engine_mode(struct pool *pool);	/* follows the engine after an engine call */
/* @op failed with @r: damage sets needs_check and steps down; -ENOMEM, -EINVAL... do not. */
void __metadata_operation_failed(struct pool *pool, const char *op, int r);
bool pool_can_change_metadata(struct pool *pool);	/* rw or out_of_space; lock held */
int __pool_grow_metadata(struct pool *pool);	/* at resume: a metadata device that grew */

/* dm-dedup-pool.c, the commit: fails once a metadata error dropped completed writes. */
int __commit(struct pool *pool, bool flush_data);	/* else flushes data if @flush_data */

/* dm-dedup-pool.c, low water and out of data space. */
void __check_low_water(struct pool *pool);	/* the event, once per crossing */
/* A write found no free block: it waits (for a commit, or space) or fails. */
void __handle_no_space(struct pool *pool, struct bio *bio);
void __retry_no_space(struct pool *pool);	/* if there is space: rw, waiters retried */

/* dm-dedup-io.c, the volume target's data path: map() never takes pool->lock. */
int volume_map(struct dm_target *ti, struct bio *bio);
int volume_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *err);

/* dm-dedup-io.c, the worker (on the ordered workqueue pool->wq). */
void do_worker(struct work_struct *ws);		/* pool->worker: what map() deferred */
void do_waker(struct work_struct *ws);		/* pool->waker: commits every COMMIT_PERIOD */
void wake_worker(struct pool *pool);		/* any context */
void defer_bio(struct pool *pool, struct bio *bio);	/* to the worker; any context */
void request_commit(struct pool *pool);		/* by the next worker pass; any context */
/* Lets a block held with __dd_cell_lock() go; the bios that waited go to the worker. */
void __cell_unlock(struct pool *pool, struct dd_cell *cell);
/* The read-modify-write page reserve; exit is safe after a failed init. */
int rmw_pages_init(struct rmw_pages *rp, unsigned int nr);
void rmw_pages_exit(struct rmw_pages *rp);	/* every page must be back */

/* dm-dedup-scan.c, the scanner thread and the `scan` messages. */
int __scanner_create(struct pool *pool, u64 nr_data_blocks);	/* at pool creation */
void scanner_destroy(struct pool *pool);	/* before the engine is closed */
void scanner_start(struct pool *pool);		/* resume */
void scanner_stop(struct pool *pool);		/* suspend/destroy: waits for the batch */
void scanner_wake(struct pool *pool);		/* a setting changed */
void __scanner_save(struct pool *pool);		/* clean close: index and marks to disk */
int __marks_resize(struct pool *pool, u64 nr_data_blocks);	/* the data device grew */
void __scanner_mark(struct pool *pool, u64 pbn);	/* a worker write in place */
/* Reads data blocks pbns[i] into pages[i] (runs in one bio, idle priority); sleeps. */
int pool_read_blocks(struct pool *pool, const u64 *pbns, struct page **pages, unsigned int n);
/* A batch's pins are gone: the last holder requeues the pin waiters. */
void __pins_released(struct pool *pool);
/* Returns 1 when @result holds text (scan stats). */
int scanner_message(struct pool *pool, unsigned int argc, char **argv, char *result,
		    unsigned int maxlen);

/* dm-dedup-import.c, dedup at import. */
/* map(): a write of @nr blocks while imports run; 0 if held, else the blocks it keeps. */
unsigned int import_map(struct pool *pool, struct volume_c *vc, struct bio *bio,
			unsigned int nr);
void import_destroy(struct pool *pool);	/* pool destruction, no volume left */
/* `import_hint ...`, `import_done ...`: 1 when @result holds text. */
int import_message(struct pool *pool, unsigned int argc, char **argv, char *result,
		   unsigned int maxlen);

#endif /* DM_DEDUP_CORE_H */
