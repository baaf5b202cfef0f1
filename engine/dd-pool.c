// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 6 (dd-internal.h), the top.  Pools: format, open (with journal
 * replay), close, abort, the error ladder and statistics; and the public
 * calls that may change metadata, each of which enters the ladder in one
 * place (dd_pool_settle).
 */
#include "dd-internal.h"

static const u8 dd_zero_block[DD_BLOCK_SIZE];

/*
 * A transaction holds at most one journal area: random writes dirty a map
 * leaf each, so a small journal means a commit every few hundred writes
 * (docs/benchmarks-engine.md).  1/32 of the metadata device, up to 4096
 * blocks (16 MiB per area, at most 32 MiB of dirty blocks held in memory).
 */
static u32 dd_default_journal(u64 nr_meta)
{
	u64 j = nr_meta / 32;

	if (j < DD_JOURNAL_MIN_BLOCKS)
		j = DD_JOURNAL_MIN_BLOCKS;
	if (j > DD_JOURNAL_MAX_BLOCKS)
		j = DD_JOURNAL_MAX_BLOCKS;
	return (u32)j;
}

static u64 dd_div_up(u64 n, u64 d)
{
	return (n + d - 1) / d;
}

/*
 * Metadata bitmap pages for a new pool: those nr_meta needs, and room to
 * grow.  By default enough for 16 GiB of metadata or 16 times the size,
 * whichever is more, but no more than 1/64 of the device; max_blocks, if
 * given, sets the limit instead.
 */
static u32 dd_mbitmap_reserve(u64 nr_meta, u64 max_blocks)
{
	u64 need = dd_div_up(nr_meta, DD_BITS_PER_BITMAP), pages;

	if (max_blocks)
		return (u32)dd_div_up(max_blocks, DD_BITS_PER_BITMAP);
	pages = 16 * need > DD_MBITMAP_RESERVE ? 16 * need : DD_MBITMAP_RESERVE;
	if (pages > nr_meta / 64)
		pages = nr_meta / 64;
	return (u32)(pages > need ? pages : need);
}

int dd_pool_probe(struct dd_bm *bm, enum dd_probe *result)
{
	bool zero = true, magic = false, journal = false;
	struct dd_buf *buf;
	u64 slot;
	int r;

	if (dd_bm_nr_blocks(bm) <= DD_SB_SLOTS) {
		*result = DD_PROBE_FOREIGN;
		return 0;
	}
	/*
	 * Both superblock slots and the first journal block (written by the
	 * first commit of any pool that ever stored something) must be zero:
	 * a pool whose superblocks alone were wiped is not formatted over.
	 */
	for (slot = 0; slot <= DD_SB_SLOTS; slot++) {
		bool z;

		r = dd_bm_read(bm, slot, &buf);
		if (r)
			return r;
		z = !memcmp(dd_buf_data(buf), dd_zero_block, DD_BLOCK_SIZE);
		if (slot < DD_SB_SLOTS) {
			zero &= z;
			if (dd_sb_has_magic(dd_buf_data(buf)))
				magic = true;
		} else {
			journal = !z;
		}
		dd_bm_put(buf);
		dd_bm_forget(bm, slot);
	}
	/* A damaged pool is still a pool: never format over one. */
	*result = zero && !journal ? DD_PROBE_ZEROED :
		  magic || zero ? DD_PROBE_POOL : DD_PROBE_FOREIGN;
	return 0;
}

int dd_pool_format(struct dd_bm *bm, const struct dd_format_params *p)
{
	u64 nr_meta = p->nr_meta_blocks ? p->nr_meta_blocks : dd_bm_nr_blocks(bm);
	struct dd_disk_superblock *sb = NULL;
	struct dd_disk_bitmap *bmp = NULL;
	struct dd_pool *pool = NULL;
	u64 first_free, b, page;
	u32 j;
	int r;

	if (nr_meta > dd_bm_nr_blocks(bm) || p->data_block_sectors != DD_SECTORS_PER_BLOCK ||
	    p->nr_data_blocks > DD_MAX_ADDR + 1 || nr_meta > 0xffffffffULL * DD_BITS_PER_BITMAP ||
	    p->meta_max_blocks > 0xffffffffULL * DD_BITS_PER_BITMAP ||
	    (p->meta_max_blocks && p->meta_max_blocks < nr_meta))
		return -EINVAL;
	if (nr_meta < DD_META_MIN_BLOCKS)
		return -ENOSPC;
	j = p->journal_blocks ? p->journal_blocks : dd_default_journal(nr_meta);
	if (j < DD_JOURNAL_MIN_BLOCKS || j > DD_JOURNAL_MAX_BLOCKS)
		return -EINVAL;

	pool = dd_zalloc(sizeof(*pool));
	sb = dd_alloc(sizeof(*sb));
	bmp = dd_alloc(sizeof(*bmp));
	r = -ENOMEM;
	if (!pool || !sb || !bmp)
		goto out;

	pool->nr_meta_blocks = nr_meta;
	pool->nr_data_blocks = p->nr_data_blocks;
	pool->journal_start = DD_SB_SLOTS;
	pool->journal_blocks = j;
	pool->mbitmap_start = DD_SB_SLOTS + (u64)DD_JOURNAL_AREAS * j;
	pool->mbitmap_blocks = dd_mbitmap_reserve(nr_meta, p->meta_max_blocks);
	pool->data_block_sectors = p->data_block_sectors;
	dd_random_bytes(pool->uuid, sizeof(pool->uuid));
	first_free = pool->mbitmap_start + pool->mbitmap_blocks;
	r = -ENOSPC;
	if (first_free + 2 * DD_OP_MAX_DIRTY > nr_meta)
		goto out;

	/* 1. Invalidate both superblock slots, so a crash leaves no pool. */
	for (b = 0; b < DD_SB_SLOTS; b++) {
		r = dd_bm_write_direct(bm, b, dd_zero_block);
		if (r)
			goto out;
	}
	r = dd_bm_sync(bm);
	if (r)
		goto out;

	/* 2. The metadata bitmap: the fixed region and the tail past the end are used. */
	for (page = 0; page < pool->mbitmap_blocks; page++) {
		u64 base = page * DD_BITS_PER_BITMAP;
		u32 bit;

		dd_block_init(bmp, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0);
		for (bit = 0; bit < DD_BITS_PER_BITMAP; bit++)
			if (base + bit < first_free || base + bit >= nr_meta)
				dd_bitmap_change(bmp, bit, true);
		dd_block_seal(bmp, pool->mbitmap_start + page, 1);
		r = dd_bm_write_direct(bm, pool->mbitmap_start + page, bmp);
		if (r)
			goto out;
	}
	r = dd_bm_sync(bm);
	if (r)
		goto out;

	/* 3. The superblock of transaction 1. */
	pool->st.meta_used = first_free;
	dd_sb_encode(pool, sb, 1, 0, 0);
	pool->bm = bm;
	r = dd_write_sb(pool, sb);
out:
	dd_free(bmp);
	dd_free(sb);
	dd_free(pool);
	return r;
}

int dd_pool_probe_data_blocks(struct dd_bm *bm, u64 *nr_data_blocks)
{
	struct dd_disk_superblock *sb = dd_alloc(sizeof(*sb));
	u64 slot;
	int r;

	if (!sb)
		return -ENOMEM;
	r = dd_sb_read_best(bm, sb, &slot);
	if (!r)
		*nr_data_blocks = le64_to_cpu(sb->nr_data_blocks);
	dd_free(sb);
	return r;
}

/* Loads the in-core state from the best superblock, replaying its journal. */
static int dd_pool_load(struct dd_pool *pool)
{
	struct dd_disk_superblock *sb = dd_alloc(sizeof(*sb));
	u64 slot;
	int r;

	if (!sb)
		return -ENOMEM;
	r = dd_sb_read_best(pool->bm, sb, &slot);
	if (r) {
		dd_err("no valid superblock");
		goto out;
	}
	r = dd_sb_check_geometry(sb, dd_bm_nr_blocks(pool->bm));
	if (r)
		goto out;
	dd_sb_decode_geometry(sb, pool);
	r = dd_journal_replay(pool, sb);
	if (r)
		goto out;

	dd_sb_decode_state(sb, pool);
	pool->open_txn = pool->committed_txn + 1;
	pool->sb_dirty = false;
	pool->data_pending_free = 0;
	if (pool->meta_cursor >= pool->nr_meta_blocks)
		pool->meta_cursor = 0;
out:
	dd_free(sb);
	return r;
}

static void dd_pool_init_trees(struct dd_pool *pool)
{
	pool->vols_tree = (struct dd_tree){ &pool->vols_root, DD_TREE_VOLS, DD_BT_VOLS, 0, NULL };
	pool->refs_tree = (struct dd_tree){ &pool->refs_root, DD_TREE_REFS, DD_BT_REFS, 0, NULL };
	pool->dalloc_tree = (struct dd_tree){ &pool->dalloc_root, DD_TREE_DALLOC, DD_BT_DBITMAP, 0, NULL };
	pool->mrefs_tree = (struct dd_tree){ &pool->mrefs_root, DD_TREE_MREFS, DD_BT_MREFS, 0, NULL };
}

/* Deleted volumes still being freed (their reclaim resumes after open). */
static int dd_pool_count_deleting(struct dd_pool *pool)
{
	struct dd_volume_info info;
	u32 id = 0;
	int r;

	pool->nr_deleting = 0;
	for (;; id++) {
		r = dd_volume_next(pool, &id, true, &info);
		if (r == -ENOENT)
			return 0;
		if (r)
			return r;
		if (info.flags & DD_VOL_DELETING)
			pool->nr_deleting++;
	}
}

/* Snapshots interrupted by a crash are handed to reclaim. */
static int dd_pool_drop_incomplete(struct dd_pool *pool)
{
	struct dd_volume_info info;
	u32 id = 0;
	int r;

	for (;;) {
		r = dd_volume_next(pool, &id, true, &info);
		if (r == -ENOENT)
			return 0;
		if (r)
			return r;
		if (info.flags & DD_VOL_INCOMPLETE) {
			dd_info("dropping snapshot %u, interrupted while being created", id);
			r = dd_volume_delete(pool, id);
			if (r)
				return r;
		}
		id++;
	}
}

/* The pre-commit step: the layers above the transaction layer that must
 * reach the open transaction before every commit. */
static int dd_pool_pre_commit_steps(struct dd_pool *pool)
{
	int r = dd_volumes_flush(pool);

	return r ? r : dd_scan_pre_commit(pool);
}

int dd_pool_open(struct dd_bm *bm, unsigned flags, const struct dd_pool_hooks *hooks,
		 struct dd_pool **out)
{
	struct dd_pool *pool;
	int r;

	pool = dd_zalloc(sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->bm = bm;
	pool->open_flags = flags;
	if (hooks)
		pool->hooks = *hooks;
	/* The upper layers' work before every commit (see dd_tx_commit). */
	pool->pre_commit.run = dd_pool_pre_commit_steps;
	pool->pre_commit.what = "writing the volume table and the written marks";
	dd_pool_init_trees(pool);
	pool->scratch = dd_alloc(DD_BLOCK_SIZE);
	r = -ENOMEM;
	if (!pool->scratch)
		goto bad;
	r = dd_pool_load(pool);
	if (r)
		goto bad;
	pool->dirty = dd_zalloc(sizeof(*pool->dirty) * pool->journal_blocks);
	r = -ENOMEM;
	if (!pool->dirty)
		goto bad;
	pool->mode = DD_MODE_RW;
	if (pool->needs_check && !(flags & DD_OPEN_IGNORE_CHECK)) {
		dd_warn("metadata needs checking: opening read-only");
		pool->mode = DD_MODE_RO;
	}
	/* Asked for, or forced by an unknown ro_compat feature: say so in the mode. */
	if (pool->open_flags & DD_OPEN_READ_ONLY)
		pool->mode = DD_MODE_RO;
	if (dd_writable(pool)) {
		/* Only a writable pool reclaims (and a damaged table must not keep a
		 * read-only open or the check from seeing the rest). */
		r = dd_pool_count_deleting(pool);
		if (r)
			goto bad;
		r = dd_pool_drop_incomplete(pool);
		if (r)
			goto bad;
		r = dd_scan_open(pool);
		if (r)
			goto bad;
		/* A change above that met damage: read-only, needs_check. */
		dd_pool_settle(pool, 0);
	}
	*out = pool;
	return 0;
bad:
	dd_scan_close(pool);
	dd_tx_drop(pool);
	dd_free(pool->dirty);
	dd_free(pool->scratch);
	dd_free(pool);
	return r;
}

/*
 * Closes the pool.  Uncommitted changes are dropped.  If there are none, the
 * home copies are written and a last superblock with an empty journal marks
 * the metadata clean, so that a read-only open needs no replay.
 */
void dd_pool_close(struct dd_pool *pool)
{
	struct dd_disk_superblock *sb = pool->scratch;
	struct dd_volume *v, *next;
	bool clean = !dd_pool_dirty(pool);

	dd_tx_drop(pool);
	if (dd_writable(pool) && !dd_bm_sync(pool->bm) && clean) {
		dd_sb_encode(pool, sb, pool->open_txn, 0, 0);
		if (!dd_write_sb(pool, sb))
			pool->committed_txn = pool->open_txn++;
	}
	for (v = pool->volumes; v; v = next) {
		next = v->next;
		dd_free(v);
	}
	dd_scan_close(pool);
	dd_resv_destroy(&pool->resv);
	dd_freed_reset(pool, true);
	dd_free(pool->dirty);
	dd_free(pool->scratch);
	dd_free(pool);
}

/*
 * Drops the open transaction and reloads the committed state from disk.
 * Buffers dirtied in the open transaction are forgotten; those that were
 * also waiting to go home from the last commit are restored by the replay
 * of its journal.  Reservations stay: their blocks are still free.
 */
int dd_pool_abort(struct dd_pool *pool)
{
	int r;

	if (dd_pool_dirty(pool))
		pool->dropped_changes = true;
	dd_tx_drop(pool);
	dd_freed_reset(pool, false);	/* those frees did not happen */
	r = dd_pool_load(pool);
	if (!r)
		r = dd_volumes_reload(pool);
	if (!r && dd_pool_count_deleting(pool)) {
		/* Best effort: the table is damaged, reclaim will say where. */
		dd_err("cannot count the deleted volumes after an abort");
		pool->nr_deleting = 1;
	}
	if (r) {
		/* The in-core state is neither the old nor the committed one. */
		dd_err("cannot reload the committed metadata (%d): pool fails all I/O", r);
		pool->mode = DD_MODE_FAIL;
	}
	return r;
}

enum dd_mode dd_pool_metadata_error(struct dd_pool *pool, int err, const char *what)
{
	if (pool->mode == DD_MODE_FAIL)
		return pool->mode;
	dd_err("metadata error %d while %s: aborting the transaction", err, what);
	if (dd_pool_abort(pool))
		return pool->mode;	/* DD_MODE_FAIL */
	if (dd_writable(pool)) {
		/* An empty commit that records needs_check. */
		pool->needs_check = true;
		pool->sb_dirty = true;
		if (pool->hooks.pre_commit)
			pool->hooks.pre_commit(pool->hooks.ctx);
		if (dd_commit_raw(pool)) {
			dd_err("cannot record needs_check: pool fails all I/O");
			pool->mode = DD_MODE_FAIL;
			return pool->mode;
		}
	}
	pool->needs_check = true;
	pool->mode = DD_MODE_RO;
	dd_err("pool is read-only until checked (dedup_check)");
	return pool->mode;
}

/* ---- public calls that change metadata ------------------------------------
 * The layers below return every error up; those that leave the open
 * transaction half-done they also mark (dd_tx_fail).  Every public call
 * that may change metadata settles here on its way out: the one place it
 * enters the error ladder.
 */
int dd_pool_settle(struct dd_pool *pool, int r)
{
	int err = pool->tx_err;
	const char *what = pool->tx_err_what;

	if (err) {
		pool->tx_err = 0;
		pool->tx_err_what = NULL;
		dd_pool_metadata_error(pool, err, what);
	}
	return r;
}

int dd_pool_commit(struct dd_pool *pool)
{
	if (pool->mode == DD_MODE_FAIL)
		return -EIO;
	if (!dd_tx_dirty(pool))
		return 0;
	if (!dd_writable(pool))
		return -EROFS;
	return dd_pool_settle(pool, dd_tx_commit(pool));
}

int dd_volume_create(struct dd_pool *pool, u32 id)
{
	return dd_pool_settle(pool, dd_vol_create(pool, id, 0));
}

int dd_volume_create_in(struct dd_pool *pool, u32 id, u32 domain)
{
	return dd_pool_settle(pool, dd_vol_create(pool, id, domain));
}

void dd_pool_set_snapshot_copy(struct dd_pool *pool, bool copy)
{
	pool->snapshot_copy = copy;
}

int dd_snapshot_create(struct dd_pool *pool, u32 id, u32 origin)
{
	return dd_pool_settle(pool, dd_vol_snapshot(pool, id, origin));
}

int dd_volume_delete(struct dd_pool *pool, u32 id)
{
	return dd_pool_settle(pool, dd_vol_delete(pool, id));
}

int dd_pool_reclaim(struct dd_pool *pool, u64 budget, bool *done)
{
	return dd_pool_settle(pool, dd_vol_reclaim(pool, budget, done));
}

int dd_data_reserve(struct dd_pool *pool, u64 *pbn)
{
	return dd_pool_settle(pool, dd_rec_reserve(pool, pbn));
}

int dd_data_reserve_run(struct dd_pool *pool, u32 want, u64 *pbn, u32 *got)
{
	if (!want)
		return -EINVAL;
	return dd_pool_settle(pool, dd_rec_reserve_run(pool, want, pbn, got));
}

int dd_map_insert(struct dd_volume *vol, u64 lbn, u64 pbn)
{
	return dd_pool_settle(vol->pool, dd_vol_map_insert(vol, lbn, pbn));
}

int dd_map_insert_run(struct dd_volume *vol, u64 lbn, u64 pbn, u32 n, u32 *done)
{
	return dd_pool_settle(vol->pool, dd_vol_map_insert_run(vol, lbn, pbn, n, done));
}

int dd_map_unmap(struct dd_volume *vol, u64 lbn, u64 nr, enum dd_unmap_reason why)
{
	return dd_pool_settle(vol->pool, dd_vol_map_unmap(vol, lbn, nr, why));
}

int dd_map_make_exclusive(struct dd_volume *vol, u64 lbn, bool *excl)
{
	return dd_pool_settle(vol->pool, dd_vol_make_exclusive(vol, lbn, excl));
}

int dd_scan_unshare_start(struct dd_pool *pool)
{
	return dd_pool_settle(pool, dd_unshare_start(pool));
}

int dd_scan_unshare_prepare(struct dd_pool *pool, struct dd_unshare_batch *b)
{
	return dd_pool_settle(pool, dd_unshare_prepare(pool, b));
}

int dd_scan_unshare_apply(struct dd_pool *pool, struct dd_unshare_batch *b)
{
	return dd_pool_settle(pool, dd_unshare_apply(pool, b));
}

bool dd_pool_dirty(struct dd_pool *pool)
{
	return dd_tx_dirty(pool);
}

enum dd_mode dd_pool_mode(struct dd_pool *pool)
{
	return pool->mode;
}

int dd_pool_clear_needs_check(struct dd_pool *pool)
{
	if (pool->mode == DD_MODE_FAIL || (pool->open_flags & DD_OPEN_READ_ONLY))
		return -EROFS;
	if (!pool->needs_check)
		return 0;
	pool->needs_check = false;
	pool->mode = DD_MODE_RW;
	pool->sb_dirty = true;
	return dd_pool_commit(pool);
}

int dd_pool_set_user_txn(struct dd_pool *pool, u64 old_id, u64 new_id)
{
	if (!dd_writable(pool))
		return -EROFS;
	if (pool->user_txn != old_id)
		return -EINVAL;
	pool->user_txn = new_id;
	pool->sb_dirty = true;
	return 0;
}

int dd_pool_resize_meta(struct dd_pool *pool, u64 nr_meta_blocks)
{
	if (!dd_writable(pool))
		return -EROFS;
	if (nr_meta_blocks < pool->nr_meta_blocks || nr_meta_blocks > dd_bm_nr_blocks(pool->bm))
		return -EINVAL;
	if (nr_meta_blocks > (u64)pool->mbitmap_blocks * DD_BITS_PER_BITMAP)
		return -EFBIG;
	return dd_pool_settle(pool, dd_meta_grow(pool, nr_meta_blocks));
}

int dd_pool_resize_data(struct dd_pool *pool, u64 nr_data_blocks)
{
	if (!dd_writable(pool))
		return -EROFS;
	if (nr_data_blocks < pool->nr_data_blocks || nr_data_blocks > DD_MAX_ADDR + 1)
		return -EINVAL;
	if (nr_data_blocks == pool->nr_data_blocks)
		return 0;
	pool->nr_data_blocks = nr_data_blocks;
	pool->sb_dirty = true;
	return dd_scan_resize(pool);
}

void dd_pool_count_zero_write(struct dd_pool *pool)
{
	pool->st.zero_elided++;
}

void dd_pool_get_stats(struct dd_pool *pool, struct dd_pool_stats *st)
{
	u64 unavailable = pool->st.data_used + pool->data_pending_free + pool->resv.used;

	memset(st, 0, sizeof(*st));
	st->txn = pool->committed_txn;
	st->user_txn = pool->user_txn;
	st->nr_meta_blocks = pool->nr_meta_blocks;
	st->meta_used = pool->st.meta_used;
	st->meta_max_blocks = (u64)pool->mbitmap_blocks * DD_BITS_PER_BITMAP;
	st->nr_data_blocks = pool->nr_data_blocks;
	st->data_used = pool->st.data_used;
	st->data_free = pool->nr_data_blocks > unavailable ? pool->nr_data_blocks - unavailable : 0;
	st->data_pending_free = pool->data_pending_free;
	st->data_reserved = pool->resv.used;
	st->shared_blocks = pool->st.shared_blocks;
	st->mapped_blocks = pool->st.mapped_blocks;
	st->zero_elided = pool->st.zero_elided;
	st->discarded = pool->st.discarded;
	st->cow_splits = pool->st.cow_splits;
	st->nr_volumes = pool->nr_volumes;
	st->nr_deleting = pool->nr_deleting;
	st->nr_dirty = pool->nr_dirty;
	st->journal_blocks = pool->journal_blocks;
	st->needs_check = pool->needs_check;
	st->dropped_changes = pool->dropped_changes;
	st->mode = pool->mode;
}
