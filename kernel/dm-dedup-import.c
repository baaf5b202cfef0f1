// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-import.c: dedup at import.  A writer that is about to write
 * blocks to unmapped LBNs of a volume (dedupctl import) first names their
 * hashes in a pool message; the engine names a candidate block for each it
 * can (engine/dd-import.c).  When the write of such an LBN arrives, map()
 * cuts it to that one block and hands it to this file's worker, which
 * compares the bio's bytes with the candidate's and maps the LBN to the
 * candidate instead of writing; a write whose bytes differ (or whose
 * candidate went away) goes on as any write.  docs/scanner.md ("Dedup at
 * import") says why it is built this way; docs/dm-dedup.rst has the
 * messages.
 *
 *   import_hint <vol> <lbn> <hash>...   up to IMPORT_SET_MAX hashes (16 hex
 *                                       digits, xxh64 seed DD_INDEX_SEED) of
 *                                       the blocks from lbn, "-" for one that
 *                                       will not be written; replaces the
 *                                       volume's previous set
 *   import_done <vol>                   ends the volume's import
 *
 * A batch of held writes, like the scanner's batch, with the pool lock held
 * only around the engine calls:
 *
 *   lock:   dd_import_prepare() re-checks and pins the candidates C; forget
 *           the cache entries of their owners; flip and drain the epoch (no
 *           in-place write to C that looked up its owner before the pin is
 *           still in flight);
 *   unlock: read every C, compare it with the bio's data;
 *   lock:   forget the LBNs' (and C's owners') cache entries;
 *           dd_import_apply() maps the equal ones to C and unpins.
 *
 * The shared bios complete (their mapping is in the open transaction, made
 * durable by the next FLUSH, as a written block's); the others go to the
 * pool's worker as any write.  Nothing here ever fails a bio.
 */
#include "dm-dedup-core.h"
#include "dd-scan.h"

#include <linux/bio.h>
#include <linux/highmem.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/xarray.h>

#define IMPORT_SET_MAX		256	/* hashes per import_hint: 1 MiB of blocks */
#define IMPORT_BATCH		64	/* held writes per batch */

/* The hints of one import_hint message (immutable once published, but the bits). */
struct import_set {
	struct rcu_head rcu;
	u64 lbn;
	u32 n;
	unsigned long hinted[BITS_TO_LONGS(IMPORT_SET_MAX)];	/* claimed by map() */
	struct dd_import_item item[IMPORT_SET_MAX];
};

/* A volume being imported (pool->imports, by volume id; freed under 'lock'). */
struct import_vol {
	struct rcu_head rcu;
	struct import_set __rcu *set;
	u64 hinted, shared, missed;	/* under 'lock' */
};

/* The worker's buffers, allocated at the first import_hint. */
struct importer {
	struct pool *pool;
	struct workqueue_struct *wq;
	struct work_struct work;
	struct bio_list bios;		/* held writes, under pool->lists_lock */
	struct bio *batch[IMPORT_BATCH];
	struct dd_import_item item[IMPORT_BATCH];
	struct page *page[IMPORT_BATCH];
	struct page *pages[IMPORT_BATCH];
	u64 pbns[IMPORT_BATCH];
};

/*----------------------------------------------------------------
 * map(): claiming a hinted block
 *--------------------------------------------------------------*/

static void import_queue(struct pool *pool, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lists_lock, flags);
	bio_list_add(&pool->importer->bios, bio);
	queue_work(pool->importer->wq, &pool->importer->work);	/* see defer_bio() */
	spin_unlock_irqrestore(&pool->lists_lock, flags);
}

/*
 * A write of @nr blocks from h->lbn while imports run: 0 when its first
 * block is hinted (the bio is cut to that block and held), else the blocks
 * it keeps (cut before the first hinted one it covers).
 */
unsigned int import_map(struct pool *pool, struct volume_c *vc, struct bio *bio,
			unsigned int nr)
{
	struct dd_bio_hook *h = hook(bio);
	struct import_set *set;
	struct import_vol *iv;
	unsigned int keep = nr;
	u64 start, stop, i;

	rcu_read_lock();
	iv = xa_load(&pool->imports, vc->args.volume_id);
	set = iv ? rcu_dereference(iv->set) : NULL;
	if (!set || h->lbn + nr <= set->lbn || h->lbn >= set->lbn + set->n)
		goto out;
	start = max(h->lbn, set->lbn) - set->lbn;
	stop = min(h->lbn + nr, set->lbn + set->n) - set->lbn;
	i = find_next_bit(set->hinted, stop, start);
	if (i >= stop)
		goto out;
	if (set->lbn + i > h->lbn) {
		keep = set->lbn + i - h->lbn;	/* the hinted block comes back to map() */
		goto out;
	}
	/* Only a whole, plain write of the block is compared. */
	if ((bio->bi_iter.bi_sector & (DD_SECTORS_PER_BLOCK - 1)) ||
	    bio->bi_iter.bi_size < DD_BLOCK_SIZE || op_is_flush(bio->bi_opf) ||
	    !test_and_clear_bit(i, set->hinted))
		goto out;
	h->hint = set->item[i];
	rcu_read_unlock();
	if (nr > 1)
		dm_accept_partial_bio(bio, DD_SECTORS_PER_BLOCK);
	import_queue(pool, bio);
	return 0;
out:
	rcu_read_unlock();
	if (keep < nr)
		dm_accept_partial_bio(bio, ((h->lbn + keep) << (DD_BLOCK_SHIFT - SECTOR_SHIFT)) -
				      bio->bi_iter.bi_sector);
	return keep;
}

/*----------------------------------------------------------------
 * The worker
 *--------------------------------------------------------------*/

/* The bio's bytes (one whole block) against the candidate's. */
static bool bio_equals(struct bio *bio, struct page *page)
{
	const char *c = page_address(page);
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int off = 0;
	bool same = true;

	bio_for_each_segment(bv, bio, iter) {
		char *p = bvec_kmap_local(&bv);

		same = !memcmp(p, c + off, bv.bv_len);
		kunmap_local(p);
		off += bv.bv_len;
		if (!same)
			break;
	}
	return same;
}

/* A failed engine call (lock held for write). */
static void __import_failed(struct pool *pool, const char *op, int r)
{
	if (r != -EROFS)
		__metadata_operation_failed(pool, op, r);
	__check_engine_mode(pool);
}

/* The owners of the candidates may write in place: forget, drain (lock held). */
static void __forget_owners(struct pool *pool, struct dd_import_item *it, unsigned int n)
{
	bool drain = false;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (!(it[i].flags & DD_II_CAND_OWNED))
			continue;
		__lc_forget(&pool->lc, it[i].cand_vol, it[i].cand_lbn);
		drain = true;
	}
	if (drain)
		dd_epoch_flip_and_drain(&pool->epochs);
}

/* What the batch did, for the volume's replies (lock held). */
static void __import_count(struct pool *pool, const struct dd_import_item *it)
{
	struct import_vol *iv = xa_load(&pool->imports, it->vol);

	if (!iv || !(it->flags & DD_II_CAND))
		return;
	if (it->flags & DD_II_SHARED)
		iv->shared++;
	else if (!(it->flags & DD_II_SAME))
		iv->missed++;
}

static void import_batch(struct pool *pool, unsigned int n)
{
	struct importer *im = pool->importer;
	struct dd_import_item *it = im->item;
	unsigned int i, k, noio;
	bool pinned = false;
	int r;

	for (i = 0; i < n; i++)
		it[i] = hook(im->batch[i])->hint;
	noio = memalloc_noio_save();
	down_write(&pool->lock);
	r = -EROFS;
	if (pool_can_change_metadata(pool)) {
		/* A write to a new home of the LBN is in flight: it goes first. */
		for (i = 0; i < n; i++)
			if (__dd_cell_find(&pool->cells, it[i].vol, it[i].lbn, 1))
				it[i].flags &= ~DD_II_CAND;
		r = dd_import_prepare(pool->eng, it, n);
	}
	if (r < 0) {
		__import_failed(pool, "preparing writes at import", r);
		goto unlock;
	}
	if (r > 0) {
		pool->pin_holders++;
		pinned = true;
		__forget_owners(pool, it, n);
	}
	up_write(&pool->lock);

	for (i = k = 0; i < n; i++) {
		if (!(it[i].flags & DD_II_CAND))
			continue;
		im->pbns[k] = it[i].cand;
		im->pages[k++] = im->page[i];
	}
	r = k ? pool_read_blocks(pool, im->pbns, im->pages, k) : 0;
	if (r)
		DMERR_LIMIT("%s: import: reading the data device failed: %d", pool_name(pool), r);
	for (i = 0; i < n && !r; i++)
		if ((it[i].flags & DD_II_CAND) && bio_equals(im->batch[i], im->page[i]))
			it[i].flags |= DD_II_SAME;

	down_write(&pool->lock);
	if (r) {
		dd_import_release(pool->eng, it, n);
		for (i = 0; i < n; i++)
			it[i].flags &= ~DD_II_CAND;
	} else if (pinned) {
		/* The remaps may commit inside: forget first. */
		for (i = 0; i < n; i++) {
			if (!(it[i].flags & DD_II_SAME))
				continue;
			__lc_forget(&pool->lc, it[i].vol, it[i].lbn);
			if (it[i].flags & DD_II_CAND_OWNED)
				__lc_forget(&pool->lc, it[i].cand_vol, it[i].cand_lbn);
		}
		r = dd_import_apply(pool->eng, it, n);
		if (r)
			__import_failed(pool, "sharing blocks at import", r);
		for (i = 0; i < n; i++)
			__import_count(pool, &it[i]);
	}
	if (pinned)
		__pins_released(pool);
	__check_engine_mode(pool);
unlock:
	up_write(&pool->lock);
	memalloc_noio_restore(noio);

	for (i = 0; i < n; i++) {
		struct bio *bio = im->batch[i];

		if (it[i].flags & DD_II_SHARED) {
			bio_endio(bio);
		} else {
			hook(bio)->nr = 1;
			defer_bio(pool, bio);	/* written as any write */
		}
	}
}

static void do_import(struct work_struct *ws)
{
	struct importer *im = container_of(ws, struct importer, work);
	struct pool *pool = im->pool;
	unsigned long flags;
	unsigned int n;

	for (;;) {
		spin_lock_irqsave(&pool->lists_lock, flags);
		for (n = 0; n < IMPORT_BATCH; n++) {
			im->batch[n] = bio_list_pop(&im->bios);
			if (!im->batch[n])
				break;
		}
		spin_unlock_irqrestore(&pool->lists_lock, flags);
		if (!n)
			return;
		import_batch(pool, n);
		cond_resched();
	}
}

/*----------------------------------------------------------------
 * Setup and the messages
 *--------------------------------------------------------------*/

static void importer_free(struct importer *im)
{
	unsigned int i;

	if (!im)
		return;
	if (im->wq)
		destroy_workqueue(im->wq);
	for (i = 0; i < IMPORT_BATCH; i++)
		if (im->page[i])
			__free_page(im->page[i]);
	kvfree(im);
}

/* The worker and its pages, at the first import_hint (not with the lock held). */
static int importer_get(struct pool *pool)
{
	struct importer *im;
	unsigned int i;

	if (READ_ONCE(pool->importer))
		return 0;
	im = kvzalloc(sizeof(*im), GFP_KERNEL);
	if (!im)
		return -ENOMEM;
	im->pool = pool;
	bio_list_init(&im->bios);
	INIT_WORK(&im->work, do_import);
	im->wq = alloc_workqueue("dm-" DM_MSG_PREFIX "-import", WQ_MEM_RECLAIM | WQ_UNBOUND, 1);
	for (i = 0; i < IMPORT_BATCH && im->wq; i++) {
		im->page[i] = alloc_page(GFP_KERNEL);
		if (!im->page[i])
			break;
	}
	if (!im->wq || i < IMPORT_BATCH) {
		importer_free(im);
		return -ENOMEM;
	}
	down_write(&pool->lock);
	if (!pool->importer) {
		pool->importer = im;
		im = NULL;
	}
	up_write(&pool->lock);
	importer_free(im);	/* another message made one first */
	return 0;
}

/* Pool destruction (no volume is left, so no write is held). */
void import_destroy(struct pool *pool)
{
	struct import_vol *iv;
	unsigned long id;

	if (pool->importer)
		drain_workqueue(pool->importer->wq);
	xa_for_each(&pool->imports, id, iv) {
		kfree(rcu_dereference_protected(iv->set, true));
		kfree(iv);
	}
	xa_destroy(&pool->imports);
	importer_free(pool->importer);
	pool->importer = NULL;
}

static int parse_hash(const char *arg, struct dd_import_item *it)
{
	if (!strcmp(arg, "-"))
		return 0;	/* not written */
	if (strlen(arg) != 16 || kstrtou64(arg, 16, &it->hash))
		return -EINVAL;
	it->flags = DD_II_HASHED;
	return 0;
}

/*
 * The set that ends (lock held for write): what it wrote is indexed, and
 * map() can no longer claim its blocks once the next one is published.
 */
static void __set_retire(struct pool *pool, struct import_vol *iv, struct import_set *next)
{
	struct import_set *old = rcu_dereference_protected(iv->set, lockdep_is_held(&pool->lock));

	if (old && pool_can_change_metadata(pool))
		dd_import_index(pool->eng, old->item, old->n);
	rcu_assign_pointer(iv->set, next);
	if (old)
		kfree_rcu(old, rcu);
}

static int import_hint(struct pool *pool, u32 vol, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct import_vol *iv, *fresh = NULL;
	struct import_set *set;
	unsigned int i, sz = 0, noio;
	u64 lbn;
	int r;

	if (kstrtou64(argv[2], 10, &lbn) || argc - 3 > IMPORT_SET_MAX ||
	    lbn > DD_MAX_ADDR - IMPORT_SET_MAX) {
		DMWARN("%s: usage: import_hint <volume> <lbn> <hash|->... (1..%u)",
		       pool_name(pool), IMPORT_SET_MAX);
		return -EINVAL;
	}
	r = importer_get(pool);
	if (r)
		return r;
	set = kzalloc(sizeof(*set), GFP_KERNEL);
	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	if (!set || !fresh) {
		r = -ENOMEM;
		goto out_free;
	}
	set->lbn = lbn;
	set->n = argc - 3;
	for (i = 0; i < set->n; i++) {
		set->item[i].vol = vol;
		set->item[i].lbn = lbn + i;
		if (parse_hash(argv[3 + i], &set->item[i])) {
			DMWARN("%s: import_hint: bad hash '%s' (16 hex digits or -)",
			       pool_name(pool), argv[3 + i]);
			r = -EINVAL;
			goto out_free;
		}
	}

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	r = -EROFS;
	if (pool_can_change_metadata(pool))
		r = dd_import_plan(pool->eng, set->item, set->n);
	if (r < 0) {
		if (r == -ENOENT)
			DMWARN("%s: import_hint: no volume %u", pool_name(pool), vol);
		else if (r == -EROFS)
			DMWARN("%s: import_hint: pool is in %s mode (or has no scanner)",
			       pool_name(pool), pool_mode_name(pool->mode));
		else
			__import_failed(pool, "naming blocks at import", r);
		goto unlock;
	}
	for (i = 0; i < set->n; i++)
		if (set->item[i].flags & DD_II_CAND)
			set_bit(i, set->hinted);
	iv = xa_load(&pool->imports, vol);
	if (!iv) {
		r = xa_err(xa_store(&pool->imports, vol, fresh, GFP_NOIO));
		if (r)
			goto unlock;
		iv = fresh;
		fresh = NULL;
		atomic_inc(&pool->nr_imports);
	}
	iv->hinted += r;
	DMEMIT("hinted %d shared %llu missed %llu", r, iv->shared, iv->missed);
	__set_retire(pool, iv, set);
	set = NULL;
	r = 1;		/* the result holds text */
unlock:
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
out_free:
	kfree(set);
	kfree(fresh);
	return r;
}

static int import_done(struct pool *pool, u32 vol, char *result, unsigned int maxlen)
{
	struct import_vol *iv;
	unsigned int sz = 0, noio;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	iv = xa_load(&pool->imports, vol);
	if (iv) {
		__set_retire(pool, iv, NULL);
		xa_erase(&pool->imports, vol);
		atomic_dec(&pool->nr_imports);
		DMEMIT("hinted %llu shared %llu missed %llu", iv->hinted, iv->shared, iv->missed);
		kfree_rcu(iv, rcu);
	} else {
		DMEMIT("hinted 0 shared 0 missed 0");
	}
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	return 1;
}

/* `import_hint ...` and `import_done ...`; 1 when @result holds text. */
int import_message(struct pool *pool, unsigned int argc, char **argv, char *result,
		   unsigned int maxlen)
{
	bool hint = !strcasecmp(argv[0], "import_hint");
	u32 vol;

	if ((hint && argc < 4) || (!hint && argc != 2) || kstrtou32(argv[1], 10, &vol)) {
		DMWARN("%s: usage: import_hint <volume> <lbn> <hash|->... | import_done <volume>",
		       pool_name(pool));
		return -EINVAL;
	}
	return hint ? import_hint(pool, vol, argc, argv, result, maxlen) :
		      import_done(pool, vol, result, maxlen);
}
