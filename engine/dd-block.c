// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 1 (dd-internal.h): metadata blocks and transactions.  Reading and
 * validating blocks, the dirty set of the open transaction, the metadata
 * allocator, journal room, the commit protocol, journal replay, the
 * superblock slots.  Calls only the codec and the block manager.
 *
 * Commit of transaction t (docs/format.md, "Commit protocol"):
 *   1. stamp every dirty block (blocknr, txn t, checksum) and copy it into
 *      journal area t % 2;
 *   2. write back all dirty buffers (the home copies of transaction t - 1
 *      and the journal images), flush;
 *   3. write the superblock of t into slot t % 2 (it names the journal),
 *      flush;
 *   4. mark the blocks of t dirty in the block manager: they go home at
 *      any time, at the latest in step 2 of the next commit.
 * A crash before 3 is durable leaves the superblock of t - 1, whose journal
 * (area (t - 1) % 2, untouched by t) is replayed on open; after 3 the
 * journal of t is replayed.  Replay is idempotent.
 */
#include "dd-internal.h"

static const char *dd_type_name(u32 type)
{
	switch (type) {
	case DD_BT_SUPER: return "superblock";
	case DD_BT_NODE: return "tree node";
	case DD_BT_MAP: return "map leaf";
	case DD_BT_REFS: return "record leaf";
	case DD_BT_DBITMAP: return "data bitmap";
	case DD_BT_MBITMAP: return "metadata bitmap";
	case DD_BT_VOLS: return "volume table";
	case DD_BT_MREFS: return "page reference leaf";
	default: return "block";
	}
}

static bool dd_block_in_range(struct dd_pool *pool, u64 b)
{
	return b >= pool->mbitmap_start && b < pool->nr_meta_blocks;
}

int dd_blk_get(struct dd_pool *pool, u64 b, u32 type, u8 tree, u8 level, u32 owner,
	       unsigned flags, struct dd_buf **out)
{
	struct dd_buf *buf;
	struct dd_aux *aux;
	int r;

	if (!dd_block_in_range(pool, b)) {
		dd_err("metadata %s pointer %llu out of range", dd_type_name(type),
		       (unsigned long long)b);
		return -EILSEQ;
	}
	r = (flags & DD_NOWAIT) ? dd_bm_read_try(pool->bm, b, &buf) : dd_bm_read(pool->bm, b, &buf);
	if (r)
		return r;
	aux = dd_aux(buf);
	if (!(aux->flags & DD_AUX_CHECKED)) {
		/* Blocks of the open transaction are valid by construction. */
		if (aux->dirty_txn != pool->open_txn) {
			r = dd_block_validate(dd_data(buf), b, type, tree, level, owner);
			if (r) {
				dd_bm_put(buf);
				dd_err("metadata %s %llu fails its checks", dd_type_name(type),
				       (unsigned long long)b);
				return r;
			}
		}
		aux->flags |= DD_AUX_CHECKED;
	} else {
		const void *data = dd_data(buf);

		/*
		 * Cheap re-check of the identity: catches a stale or damaged
		 * pointer, also one into another tree or another volume's map
		 * (which must never hand one volume another's mappings).
		 */
		if (dd_block_type(data) != type || (level != 0xff && dd_block_level(data) != level) ||
		    (tree != 0xff && dd_block_tree(data) != tree) ||
		    (owner != DD_NO_VOLUME && dd_block_owner(data) != owner)) {
			dd_bm_put(buf);
			dd_err("metadata block %llu is a %s, expected a %s",
			       (unsigned long long)b, dd_type_name(dd_block_type(data)),
			       dd_type_name(type));
			return -EILSEQ;
		}
	}
	*out = buf;
	return 0;
}

/* Add a held buffer to the open transaction (the dirty set takes its own hold). */
static int dd_tx_join(struct dd_pool *pool, struct dd_buf *buf, bool is_new)
{
	struct dd_aux *aux = dd_aux(buf);
	struct dd_buf *extra;
	u32 type;
	int r;

	if (aux->dirty_txn == pool->open_txn) {
		if (is_new) {
			aux->flags |= DD_AUX_NEW;
			aux->flags &= ~DD_AUX_FREED;
		}
		return 0;
	}
	if (!dd_writable(pool))
		return -EROFS;
	if (pool->nr_dirty >= pool->journal_blocks) {
		/* dd_tx_room() keeps this from happening: an engine bug. */
		dd_err("transaction exceeds the journal (%u blocks)", pool->journal_blocks);
		return -EFBIG;
	}
	r = dd_bm_read_try(pool->bm, dd_buf_blocknr(buf), &extra);
	if (r)
		return r;
	DD_BUG_ON(extra != buf);

	aux->shadow = NULL;
	aux->flags &= ~(DD_AUX_NEW | DD_AUX_FREED);
	if (is_new) {
		aux->flags |= DD_AUX_NEW;
	} else {
		type = dd_block_type(dd_data(buf));
		if (type == DD_BT_REFS || type == DD_BT_DBITMAP) {
			aux->shadow = dd_zalloc(sizeof(*aux->shadow));
			if (!aux->shadow) {
				dd_bm_put(extra);
				return -ENOMEM;
			}
			memcpy(aux->shadow->data, dd_data(buf), DD_BLOCK_SIZE);
		}
	}
	aux->dirty_txn = pool->open_txn;
	aux->dirty_idx = pool->nr_dirty;
	pool->dirty[pool->nr_dirty++] = buf;
	return 0;
}

int dd_blk_make_dirty(struct dd_pool *pool, struct dd_buf *buf)
{
	if (!dd_writable(pool))
		return -EROFS;
	return dd_tx_join(pool, buf, false);
}

int dd_blk_get_dirty(struct dd_pool *pool, u64 b, u32 type, u8 tree, u8 level, u32 owner,
		     struct dd_buf **out)
{
	struct dd_buf *buf;
	int r;

	if (!dd_writable(pool))
		return -EROFS;
	r = dd_blk_get(pool, b, type, tree, level, owner, 0, &buf);
	if (r)
		return r;
	r = dd_tx_join(pool, buf, false);
	if (r) {
		dd_bm_put(buf);
		return r;
	}
	*out = buf;
	return 0;
}

/* ---- metadata space: the bitmap in the fixed region ----------------------
 * The metadata allocator lives in this layer, not in dd-space.c with the
 * data allocator: its bitmap pages are metadata blocks that this layer
 * journals, so allocating a block dirties another one (dd_blk_alloc ->
 * dd_meta_alloc -> dd_blk_get_dirty).  That knot is genuine (dm-thin's
 * metadata space map has the same one); kept in one layer, it is a call
 * within the layer, not a call up.
 */

static int dd_mbitmap_get(struct dd_pool *pool, u32 page, bool dirty, struct dd_buf **out)
{
	u64 b = pool->mbitmap_start + page;

	if (dirty)
		return dd_blk_get_dirty(pool, b, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0, out);
	return dd_blk_get(pool, b, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0, 0, out);
}

u64 dd_meta_free_blocks(struct dd_pool *pool)
{
	return pool->nr_meta_blocks - pool->st.meta_used;
}

int dd_meta_alloc(struct dd_pool *pool, u64 *b)
{
	u32 scanned, page, pages, bit;
	struct dd_buf *buf;
	struct dd_disk_bitmap *bm;
	int r;

	if (pool->meta_cursor >= pool->nr_meta_blocks)
		pool->meta_cursor = 0;
	/* the pages in use, the one of the cursor twice (its start last) */
	pages = (u32)((pool->nr_meta_blocks + DD_BITS_PER_BITMAP - 1) / DD_BITS_PER_BITMAP);
	for (scanned = 0; scanned <= pages; scanned++) {
		page = (u32)(pool->meta_cursor / DD_BITS_PER_BITMAP);
		r = dd_mbitmap_get(pool, page, false, &buf);
		if (r)
			return r;
		bm = dd_data(buf);
		bit = dd_bitmap_find_zero(bm->word, NULL, pool->meta_cursor % DD_BITS_PER_BITMAP,
					  DD_BITS_PER_BITMAP);
		dd_blk_put(buf);
		if (bit < DD_BITS_PER_BITMAP &&
		    (u64)page * DD_BITS_PER_BITMAP + bit < pool->nr_meta_blocks) {
			r = dd_mbitmap_get(pool, page, true, &buf);
			if (r)
				return r;
			dd_bitmap_change(dd_data(buf), bit, true);
			dd_blk_put(buf);
			*b = (u64)page * DD_BITS_PER_BITMAP + bit;
			pool->meta_cursor = *b + 1;
			pool->st.meta_used++;
			return 0;
		}
		pool->meta_cursor = (u64)(page + 1) * DD_BITS_PER_BITMAP;
		if (pool->meta_cursor >= pool->nr_meta_blocks)
			pool->meta_cursor = 0;
	}
	dd_err("metadata device is full");
	return -ENOSPC;
}

/*
 * Grows the metadata space in place.  The bits of the blocks past the end
 * are set (format wrote every reserved page so), so the space grows a page
 * at a time: clear the new blocks' bits in the page, then move the end over
 * them.  A commit between two pages (the journal filled) records a
 * consistent space that ends at a page boundary; the caller checked the
 * reserved pages and the device.
 */
int dd_meta_grow(struct dd_pool *pool, u64 nr_meta_blocks)
{
	struct dd_disk_bitmap *bm;
	struct dd_buf *buf;
	u64 end;
	u32 page, bit, last;
	int r;

	while (pool->nr_meta_blocks < nr_meta_blocks) {
		page = (u32)(pool->nr_meta_blocks / DD_BITS_PER_BITMAP);
		end = (u64)(page + 1) * DD_BITS_PER_BITMAP;
		if (end > nr_meta_blocks)
			end = nr_meta_blocks;
		r = dd_tx_room(pool, 1);
		if (r)
			return r;
		r = dd_mbitmap_get(pool, page, true, &buf);
		if (r)
			return dd_tx_fail(pool, r, "growing the metadata space");
		bm = dd_data(buf);
		last = (u32)(end - (u64)page * DD_BITS_PER_BITMAP);
		for (bit = (u32)(pool->nr_meta_blocks % DD_BITS_PER_BITMAP); bit < last; bit++) {
			if (!dd_bitmap_change(bm, bit, false)) {
				dd_blk_put(buf);
				dd_err("metadata block %llu past the end is marked free",
				       (unsigned long long)((u64)page * DD_BITS_PER_BITMAP + bit));
				return dd_tx_fail(pool, -EILSEQ, "growing the metadata space");
			}
		}
		dd_blk_put(buf);
		pool->nr_meta_blocks = end;
		pool->sb_dirty = true;
	}
	return 0;
}

int dd_meta_free(struct dd_pool *pool, u64 b)
{
	struct dd_buf *buf;
	u32 page = (u32)(b / DD_BITS_PER_BITMAP);
	bool was;
	int r;

	if (b < pool->mbitmap_start + pool->mbitmap_blocks || b >= pool->nr_meta_blocks)
		return -EILSEQ;
	r = dd_mbitmap_get(pool, page, true, &buf);
	if (r)
		return r;
	was = dd_bitmap_change(dd_data(buf), b % DD_BITS_PER_BITMAP, false);
	dd_blk_put(buf);
	if (!was) {
		dd_err("freeing metadata block %llu that is already free", (unsigned long long)b);
		return -EILSEQ;
	}
	pool->st.meta_used--;
	return 0;
}

int dd_blk_alloc(struct dd_pool *pool, u32 type, u8 tree, u8 level, u32 owner,
		 struct dd_buf **out)
{
	struct dd_buf *buf;
	u64 b;
	int r;

	if (!dd_writable(pool))
		return -EROFS;
	r = dd_meta_alloc(pool, &b);
	if (r)
		return r;
	r = dd_bm_new(pool->bm, b, &buf);
	if (r)
		goto bad_free;
	r = dd_tx_join(pool, buf, true);
	if (r) {
		dd_bm_put(buf);
		goto bad_free;
	}
	dd_block_init(dd_data(buf), type, tree, level, owner);
	dd_aux(buf)->flags |= DD_AUX_CHECKED;
	*out = buf;
	return 0;

bad_free:
	dd_meta_free(pool, b);
	return r;
}

int dd_blk_free(struct dd_pool *pool, u64 b)
{
	struct dd_buf *buf;
	int r;

	r = dd_meta_free(pool, b);
	if (r)
		return r;
	/* If it is in the dirty set, keep it out of the journal. */
	if (!dd_bm_read_try(pool->bm, b, &buf)) {
		struct dd_aux *aux = dd_aux(buf);

		if (aux->dirty_txn == pool->open_txn) {
			aux->flags |= DD_AUX_FREED;
			dd_free(aux->shadow);
			aux->shadow = NULL;
		}
		dd_bm_put(buf);
	}
	return 0;
}

/*
 * Make room in the journal for an operation that dirties up to 'nr' blocks
 * and allocates none (it only changes or frees blocks that exist: unmapping,
 * deleting, reclaiming): commit first if the journal could overflow.  Such
 * operations must work on a full metadata device, or nothing could free it.
 */
int dd_tx_room(struct dd_pool *pool, u32 nr)
{
	int r;

	if (!dd_writable(pool))
		return -EROFS;
	/* Bound what the pre-commit step may still dirty: run it early. */
	if (pool->nr_dirty_vols >= DD_MAX_DIRTY_VOLS && pool->pre_commit.run) {
		r = pool->pre_commit.run(pool);
		if (r)	/* table entries may be half written, as inside a commit */
			return dd_tx_fail(pool, r, pool->pre_commit.what);
	}
	/* Each volume with a pending count may dirty a table leaf at commit,
	 * and the other pre-commit steps what they said. */
	if (pool->nr_dirty + nr + pool->nr_dirty_vols + pool->pre_commit_room >
	    pool->journal_blocks) {
		r = dd_tx_commit(pool);
		if (r)
			return r;
	}
	return 0;
}

/*
 * As dd_tx_room, for an operation that may also allocate up to 'nr'
 * metadata blocks: refuse (before changing anything) if the metadata device
 * could run out of space in the middle.
 */
int dd_tx_reserve(struct dd_pool *pool, u32 nr)
{
	int r = dd_tx_room(pool, nr);

	if (r)
		return r;
	if (dd_meta_free_blocks(pool) < nr)
		return -ENOSPC;
	return 0;
}

/*
 * A layer that meets an error in the middle of a change (the open
 * transaction is no longer consistent) records it here and returns it up;
 * the public call, in dd-pool.c, enters the error ladder on its way out
 * (dd_pool_settle).  The first error of a call is the one the ladder logs.
 */
int dd_tx_fail(struct dd_pool *pool, int err, const char *what)
{
	if (!pool->tx_err) {
		pool->tx_err = err;
		pool->tx_err_what = what;
	}
	return err;
}

/* Release the dirty set without committing it (abort or close). */
void dd_tx_drop(struct dd_pool *pool)
{
	u32 i;

	for (i = 0; i < pool->nr_dirty; i++) {
		struct dd_buf *buf = pool->dirty[i];
		struct dd_aux *aux = dd_aux(buf);
		u64 b = dd_buf_blocknr(buf);

		dd_free(aux->shadow);
		aux->shadow = NULL;
		aux->dirty_txn = 0;
		aux->flags = 0;
		dd_bm_put(buf);
		dd_bm_forget(pool->bm, b);
	}
	pool->nr_dirty = 0;
	pool->tx_err = 0;
	pool->tx_err_what = NULL;
}

/* ---- data blocks freed in the open transaction (the freed hook) ----------- */

void dd_freed_add(struct dd_pool *pool, u64 pbn)
{
	struct dd_extents *x = &pool->freed;

	if (!pool->hooks.freed || x->overflow)
		return;
	if (x->nr && x->start[x->nr - 1] + x->len[x->nr - 1] == pbn) {
		x->len[x->nr - 1]++;
		return;
	}
	if (x->nr == x->cap) {
		u32 cap = x->cap ? x->cap * 2 : 256;
		u64 *ns = dd_alloc(sizeof(u64) * cap), *nl = dd_alloc(sizeof(u64) * cap);

		if (!ns || !nl) {
			/* Passdown is advisory: give up on it for this transaction. */
			dd_free(ns);
			dd_free(nl);
			x->overflow = true;
			return;
		}
		if (x->nr) {
			memcpy(ns, x->start, sizeof(u64) * x->nr);
			memcpy(nl, x->len, sizeof(u64) * x->nr);
		}
		dd_free(x->start);
		dd_free(x->len);
		x->start = ns;
		x->len = nl;
		x->cap = cap;
	}
	x->start[x->nr] = pbn;
	x->len[x->nr] = 1;
	x->nr++;
}

/* After a commit: hand the freed ranges to the hook (they are not yet reusable). */
void dd_freed_report(struct dd_pool *pool)
{
	struct dd_extents *x = &pool->freed;
	u32 i;

	if (!pool->hooks.freed)
		return;
	if (x->overflow)
		dd_warn("too many freed ranges to report in one transaction: passdown skipped");
	for (i = 0; i < x->nr && !x->overflow; i++)
		pool->hooks.freed(pool->hooks.ctx, x->start[i], x->len[i]);
	dd_freed_reset(pool, false);
}

void dd_freed_reset(struct dd_pool *pool, bool release)
{
	struct dd_extents *x = &pool->freed;

	x->nr = 0;
	x->overflow = false;
	if (release) {
		dd_free(x->start);
		dd_free(x->len);
		memset(x, 0, sizeof(*x));
	}
}

/* ---- superblock --------------------------------------------------------- */

/* Reads both slots; the valid one with the higher transaction wins. */
int dd_sb_read_best(struct dd_bm *bm, struct dd_disk_superblock *out, u64 *slot_out)
{
	bool found = false;
	u64 slot, best_txn = 0;
	int r, first_err = -EINVAL;

	for (slot = 0; slot < DD_SB_SLOTS; slot++) {
		struct dd_buf *buf;
		const struct dd_disk_superblock *sb;

		r = dd_bm_read(bm, slot, &buf);
		if (r)
			return r;
		sb = dd_buf_data(buf);
		r = dd_sb_validate(sb, slot);
		if (!r && (!found || dd_sb_txn(sb) > best_txn)) {
			found = true;
			best_txn = dd_sb_txn(sb);
			memcpy(out, sb, sizeof(*out));
			*slot_out = slot;
		} else if (r && first_err == -EINVAL) {
			first_err = r;
		}
		dd_bm_put(buf);
		dd_bm_forget(bm, slot);
	}
	return found ? 0 : first_err;
}

/* Writes the superblock (already encoded) durably: write, then flush. */
int dd_write_sb(struct dd_pool *pool, struct dd_disk_superblock *sb)
{
	int r;

	r = dd_bm_write_direct(pool->bm, dd_block_blocknr(sb), sb);
	return r ? r : dd_bm_sync(pool->bm);
}

/* ---- commit ------------------------------------------------------------- */

/* Steps 1-4 above, without the mode checks and the pre-commit hook. */
int dd_commit_raw(struct dd_pool *pool)
{
	struct dd_disk_superblock *sb = pool->scratch;
	u64 txn = pool->open_txn;
	u64 area = pool->journal_start + (txn % DD_JOURNAL_AREAS) * pool->journal_blocks;
	u32 i, n = 0, jcsum = 0;
	int r;

	for (i = 0; i < pool->nr_dirty; i++) {
		struct dd_buf *buf = pool->dirty[i];
		void *data = dd_data(buf);

		if (dd_aux(buf)->flags & DD_AUX_FREED)
			continue;
		dd_block_seal(data, dd_buf_blocknr(buf), txn);
		jcsum = dd_journal_csum_add(jcsum, data);
		r = dd_bm_write_direct(pool->bm, area + n, data);
		if (r)
			return r;
		n++;
	}
	r = dd_bm_sync(pool->bm);
	if (r)
		return r;
	for (i = 0; i < n; i++)
		dd_bm_forget(pool->bm, area + i);

	dd_sb_encode(pool, sb, txn, n, jcsum);
	r = dd_write_sb(pool, sb);
	if (r)
		return r;

	/* Durable.  The home copies may now be written back at any time. */
	for (i = 0; i < pool->nr_dirty; i++) {
		struct dd_buf *buf = pool->dirty[i];
		struct dd_aux *aux = dd_aux(buf);
		bool freed = aux->flags & DD_AUX_FREED;
		u64 b = dd_buf_blocknr(buf);

		dd_free(aux->shadow);
		aux->shadow = NULL;
		aux->dirty_txn = 0;
		aux->flags &= ~(DD_AUX_NEW | DD_AUX_FREED);
		if (!freed)
			dd_bm_mark_dirty(buf);
		dd_bm_put(buf);
		if (freed)
			dd_bm_forget(pool->bm, b);
	}
	pool->nr_dirty = 0;
	pool->committed_txn = txn;
	pool->open_txn = txn + 1;
	pool->sb_dirty = false;
	pool->data_pending_free = 0;
	/* Before anything can allocate the freed blocks again. */
	dd_freed_report(pool);
	return 0;
}

bool dd_tx_dirty(struct dd_pool *pool)
{
	return pool->nr_dirty || pool->sb_dirty || pool->nr_dirty_vols;
}

/*
 * Commits the open transaction, if it holds anything: the pre-commit step
 * of the layers above, the caller's pre_commit hook (the kernel flushes the
 * data device and drains in-flight I/O: a mapping is never durable before
 * its data), then steps 1-4.  A failure is marked for the ladder and
 * returned.
 *
 * Why the commit is here and not in the pool layer: the transaction layer
 * already owns the protocol and the journal, and the journal is what tells
 * when an operation must commit first (dd_tx_room, deep inside the loops
 * of the volume layer).  With the commit in the pool layer, this layer
 * would have to call up for it through a callback all the same.  So the
 * only upper-layer work at commit time, writing the volumes' pending counts
 * into the volume table before the superblock, is a pre-commit step that
 * the pool layer registers when it opens the pool (pool->pre_commit), as
 * in persistent-data's transaction manager.
 */
int dd_tx_commit(struct dd_pool *pool)
{
	int r;

	if (!dd_tx_dirty(pool))
		return 0;
	if (pool->pre_commit.run) {
		r = pool->pre_commit.run(pool);
		if (r)
			return dd_tx_fail(pool, r, pool->pre_commit.what);
	}
	if (pool->hooks.pre_commit) {
		r = pool->hooks.pre_commit(pool->hooks.ctx);
		if (r)
			return dd_tx_fail(pool, r, "flushing the data device before commit");
	}
	r = dd_commit_raw(pool);
	if (r)
		return dd_tx_fail(pool, r, "commit");
	return 0;
}

/* ---- journal replay ------------------------------------------------------ */

static int dd_journal_image(struct dd_pool *pool, const struct dd_journal_desc *j, u64 jb,
			    void *out)
{
	struct dd_buf *buf;
	int r;

	r = dd_bm_read(pool->bm, jb, &buf);
	if (r)
		return r;
	memcpy(out, dd_buf_data(buf), DD_BLOCK_SIZE);
	dd_bm_put(buf);
	dd_bm_forget(pool->bm, jb);
	return dd_journal_image_check(out, j);
}

/*
 * Copies the journal named by the superblock to the home locations.  All
 * images are verified before the first one is applied.
 */
int dd_journal_replay(struct dd_pool *pool, const struct dd_disk_superblock *sb)
{
	struct dd_journal_desc j;
	u8 *img = pool->scratch;
	u32 i, jcsum = 0;
	int r, pass;

	dd_sb_decode_journal(sb, &j);
	if (!j.nr_blocks)
		return 0;
	if (j.nr_blocks > j.area_blocks || j.txn != j.sb_txn) {
		dd_err("superblock names an impossible journal (%u blocks, txn %llu)", j.nr_blocks,
		       (unsigned long long)j.txn);
		return -EILSEQ;
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < j.nr_blocks; i++) {
			r = dd_journal_image(pool, &j, j.area + i, img);
			if (r) {
				dd_err("journal block %u of transaction %llu is damaged", i,
				       (unsigned long long)j.txn);
				return r;
			}
			if (pass == 0) {
				jcsum = dd_journal_csum_add(jcsum, img);
				continue;
			}
			r = dd_bm_write_direct(pool->bm, dd_block_blocknr(img), img);
			if (r)
				return r;
		}
		if (pass == 0 && jcsum != j.csum) {
			dd_err("journal of transaction %llu does not match its superblock",
			       (unsigned long long)j.txn);
			return -EILSEQ;
		}
	}
	return dd_bm_sync(pool->bm);
}
