// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 3 (dd-internal.h).  Data space: allocation of data blocks (the
 * dalloc radix tree of bitmaps) and the reservations of blocks being
 * written.  (Metadata blocks are allocated by dd-block.c, whose journal
 * their bitmap is part of.)
 *
 * A metadata block freed in the open transaction may be reused at once: its
 * new contents reach home only after the commit that journals them.  A data
 * block may not: a crash before the commit would show the old owner the new
 * bytes.  So a data block is allocated only if it is free both in the open
 * transaction and in the committed state (the shadow copy of a dalloc leaf
 * dirtied in the open transaction), was not freed in the open transaction
 * (even if it was allocated in it), and is not reserved by a write in flight.
 */
#include "dd-internal.h"

/* ---- data blocks --------------------------------------------------------- */

/*
 * A block freed in the open transaction stays unavailable until that
 * transaction commits, even if it was allocated in it: a bio that looked up
 * its old mapping may still be in flight (only a commit drains them), and
 * the commit passes it down as a discard.  Its bit is set in the shadow of
 * its dalloc leaf, which therefore holds "used at the last commit or freed
 * since"; a leaf created in the open transaction gets a shadow (all free at
 * the last commit) for this.
 */
static int dd_dalloc_quarantine(struct dd_buf *leaf, u32 bit)
{
	struct dd_aux *aux = dd_aux(leaf);

	if (!aux->shadow) {
		aux->shadow = dd_zalloc(sizeof(*aux->shadow));
		if (!aux->shadow)
			return -ENOMEM;
	}
	dd_bit_set(((struct dd_disk_bitmap *)aux->shadow->data)->word, bit);
	return 0;
}

int dd_dalloc_set(struct dd_pool *pool, u64 pbn, bool used)
{
	struct dd_buf *leaf;
	u32 bit;
	bool was;
	int r;

	if (pbn >= pool->nr_data_blocks)
		return -EILSEQ;
	r = dd_tree_find_dirty(pool, &pool->dalloc_tree, dd_div_u64_rem(pbn, DD_BITS_PER_BITMAP, &bit),
			       used, &leaf);
	if (r == -ENODATA) {
		dd_err("freeing data block %llu that is already free", (unsigned long long)pbn);
		return -EILSEQ;
	}
	if (r)
		return r;
	if (!used) {
		r = dd_dalloc_quarantine(leaf, bit);
		if (r) {
			dd_blk_put(leaf);
			return r;
		}
	}
	was = dd_bitmap_change(dd_data(leaf), bit, used);
	dd_blk_put(leaf);
	if (was == used) {
		dd_err("data block %llu is already %s", (unsigned long long)pbn,
		       used ? "allocated" : "free");
		return -EILSEQ;
	}
	if (used) {
		pool->st.data_used++;
	} else {
		pool->st.data_used--;
		pool->data_pending_free++;
		dd_freed_add(pool, pbn);
	}
	return 0;
}

/*
 * The shadow of a dalloc leaf in the open transaction: the bits of blocks
 * used at the last commit or freed since (dd_dalloc_quarantine).  NULL if
 * the leaf is not in the open transaction (the open bitmap is the committed
 * one) or was created in it with nothing freed (*all_free: all free at the
 * last commit).
 */
static const __le64 *dd_dalloc_committed(struct dd_buf *leaf, bool *all_free)
{
	struct dd_aux *aux = dd_aux(leaf);

	*all_free = false;
	if (aux->dirty_txn && aux->shadow)
		return ((struct dd_disk_bitmap *)aux->shadow->data)->word;
	if (aux->dirty_txn && (aux->flags & DD_AUX_NEW))
		*all_free = true;
	return NULL;
}

int dd_dalloc_test(struct dd_pool *pool, u64 pbn, bool *open_used, bool *committed_used)
{
	struct dd_buf *leaf;
	const __le64 *cw;
	bool all_free;
	u32 bit;
	int r;

	*open_used = *committed_used = false;
	r = dd_tree_find(pool, &pool->dalloc_tree, dd_div_u64_rem(pbn, DD_BITS_PER_BITMAP, &bit),
			 0, &leaf);
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	*open_used = dd_bit_test(((struct dd_disk_bitmap *)dd_data(leaf))->word, bit);
	cw = dd_dalloc_committed(leaf, &all_free);
	*committed_used = all_free ? false : cw ? dd_bit_test(cw, bit) : *open_used;
	dd_blk_put(leaf);
	return 0;
}

/*
 * Reserved by a write in flight, or pinned by the scanner (a pinned block
 * freed meanwhile waits until the scanner lets it go).
 */
static bool dd_data_held(struct dd_pool *pool, u64 pbn)
{
	return dd_resv_contains(&pool->resv, pbn) || dd_block_pinned(pool, pbn);
}

/* Finds a block free in the open and the committed state and not held,
 * in the leaf li, at or after bit 'from'. */
static int dd_dalloc_search_leaf(struct dd_pool *pool, u64 li, u32 from, u64 *pbn)
{
	struct dd_buf *leaf = NULL;
	const __le64 *ow = NULL, *cw = NULL;
	u64 base = li * DD_BITS_PER_BITMAP;
	u32 nbits = (u32)DD_MIN((u64)DD_BITS_PER_BITMAP, pool->nr_data_blocks - base);
	bool all_free;
	u32 bit;
	int r;

	r = dd_tree_find(pool, &pool->dalloc_tree, li, 0, &leaf);
	if (r && r != -ENODATA)
		return r;
	if (!r) {
		struct dd_disk_bitmap *bmp = dd_data(leaf);

		if (dd_block_count(bmp) >= nbits) {
			dd_blk_put(leaf);
			return -ENOSPC;
		}
		ow = bmp->word;
		cw = dd_dalloc_committed(leaf, &all_free);
	}
	for (bit = from; bit < nbits; bit++) {
		if (ow) {
			bit = dd_bitmap_find_zero(ow, cw, bit, nbits);
			if (bit >= nbits)
				break;
		}
		if (!dd_data_held(pool, base + bit)) {
			*pbn = base + bit;
			r = 0;
			goto out;
		}
	}
	r = -ENOSPC;
out:
	if (leaf)
		dd_blk_put(leaf);
	return r;
}

/*
 * A candidate for a new data block: free in the open and in the committed
 * state and not reserved, from the cursor on (wrapping).  The records layer
 * checks the candidate's record and claims it (dd_rec_reserve).
 */
int dd_data_find_free(struct dd_pool *pool, u64 *pbn)
{
	u64 nr = pool->nr_data_blocks, pos, leaves, scanned;
	u32 from;
	int r;

	if (!dd_writable(pool))
		return -EROFS;
	if (!nr)
		return -ENOSPC;
	leaves = (nr + DD_BITS_PER_BITMAP - 1) / DD_BITS_PER_BITMAP;
	pos = pool->data_cursor < nr ? pool->data_cursor : 0;
	for (scanned = 0; scanned <= leaves; scanned++) {
		u64 li = dd_div_u64_rem(pos, DD_BITS_PER_BITMAP, &from);

		r = dd_dalloc_search_leaf(pool, li, from, pbn);
		if (r != -ENOSPC)
			return r;
		pos = (li + 1) * DD_BITS_PER_BITMAP;
		if (pos >= nr)
			pos = 0;
	}
	return -ENOSPC;
}

/*
 * How many consecutive blocks from @pbn, at most @max and inside @pbn's
 * bitmap leaf, could be handed out now (as dd_data_find_free would: free in
 * the open and the committed state, not freed in the open transaction, not
 * held); 0 beyond the data device.  For extending a reservation into a run.
 */
int dd_data_free_run(struct dd_pool *pool, u64 pbn, u32 max, u32 *n)
{
	const __le64 *ow = NULL, *cw = NULL;
	struct dd_buf *leaf = NULL;
	bool all_free;
	u32 bit, end, i;
	u64 li, base;
	int r;

	*n = 0;
	if (!dd_writable(pool))
		return -EROFS;
	if (pbn >= pool->nr_data_blocks)
		return 0;
	li = dd_div_u64_rem(pbn, DD_BITS_PER_BITMAP, &bit);
	base = pbn - bit;
	end = (u32)DD_MIN((u64)DD_BITS_PER_BITMAP, pool->nr_data_blocks - base);
	end = (u32)DD_MIN((u64)end, (u64)bit + max);
	r = dd_tree_find(pool, &pool->dalloc_tree, li, 0, &leaf);
	if (r && r != -ENODATA)
		return r;
	if (!r) {
		ow = ((struct dd_disk_bitmap *)dd_data(leaf))->word;
		cw = dd_dalloc_committed(leaf, &all_free);	/* NULL: as the open bitmap, or all free */
	}
	for (i = bit; i < end; i++) {
		if (ow && (dd_bit_test(ow, i) || (cw && dd_bit_test(cw, i))))
			break;
		if (dd_data_held(pool, base + i))
			break;
	}
	if (leaf)
		dd_blk_put(leaf);
	*n = i - bit;
	return 0;
}

/*
 * Marks [pbn, pbn + n) used, inside one bitmap leaf: each must be free in
 * the open state (dd_dalloc_set for one, used).
 */
int dd_dalloc_use_run(struct dd_pool *pool, u64 pbn, u32 n)
{
	struct dd_buf *leaf;
	u64 li;
	u32 bit, i;
	int r;

	li = dd_div_u64_rem(pbn, DD_BITS_PER_BITMAP, &bit);
	if (pbn + n > pool->nr_data_blocks || bit + n > DD_BITS_PER_BITMAP)
		return -EILSEQ;
	r = dd_tree_find_dirty(pool, &pool->dalloc_tree, li, true, &leaf);
	if (r)
		return r;
	for (i = 0; i < n; i++) {
		if (dd_bitmap_change(dd_data(leaf), bit + i, true)) {
			dd_blk_put(leaf);
			dd_err("data block %llu is already allocated", (unsigned long long)(pbn + i));
			return -EILSEQ;
		}
		pool->st.data_used++;
	}
	dd_blk_put(leaf);
	return 0;
}

/* Reserves a block found by dd_data_find_free (memory only). */
int dd_data_claim(struct dd_pool *pool, u64 pbn)
{
	int r = dd_resv_add(&pool->resv, pbn);

	if (r)
		return r;
	pool->data_cursor = pbn + 1;
	return 0;
}

void dd_data_unreserve(struct dd_pool *pool, u64 pbn)
{
	dd_resv_remove(&pool->resv, pbn);
}

/* The tail of a run given back: the cursor returns to it if nothing was taken since. */
void dd_data_unreserve_run(struct dd_pool *pool, u64 pbn, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		dd_resv_remove(&pool->resv, pbn + i);
	if (n && pool->data_cursor == pbn + n)
		pool->data_cursor = pbn;
}

/* ---- reservations: a small open-addressing set of PBNs -------------------- */

#define DD_RESV_EMPTY	0ULL
#define DD_RESV_TOMB	(~0ULL)

static u32 dd_hash64(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (u32)x;
}

bool dd_resv_contains(const struct dd_resv *r, u64 pbn)
{
	u32 i, n;

	if (!r->size)
		return false;
	for (i = dd_hash64(pbn) & (r->size - 1), n = 0; n < r->size; n++, i = (i + 1) & (r->size - 1)) {
		if (r->slot[i] == DD_RESV_EMPTY)
			return false;
		if (r->slot[i] == pbn + 1)
			return true;
	}
	return false;
}

static int dd_resv_rehash(struct dd_resv *r, u32 size)
{
	u64 *old = r->slot;
	u32 i, old_size = r->size;

	r->slot = dd_zalloc(sizeof(u64) * size);
	if (!r->slot) {
		r->slot = old;
		return -ENOMEM;
	}
	r->size = size;
	r->used = 0;
	r->tombs = 0;
	for (i = 0; i < old_size; i++)
		if (old[i] != DD_RESV_EMPTY && old[i] != DD_RESV_TOMB)
			dd_resv_add(r, old[i] - 1);
	dd_free(old);
	return 0;
}

static bool dd_resv_needs_growth(const struct dd_resv *r)
{
	return (r->used + r->tombs + 1) * 4 > r->size * 3;
}

int dd_resv_add(struct dd_resv *r, u64 pbn)
{
	u32 i;
	int err;

	if (dd_resv_needs_growth(r)) {
		err = dd_resv_rehash(r, r->used * 2 + 2 > r->size ? DD_MAX(64u, r->size * 2) : r->size);
		if (err)
			return err;
	}
	for (i = dd_hash64(pbn) & (r->size - 1);; i = (i + 1) & (r->size - 1)) {
		if (r->slot[i] == DD_RESV_EMPTY || r->slot[i] == DD_RESV_TOMB) {
			if (r->slot[i] == DD_RESV_TOMB)
				r->tombs--;
			r->slot[i] = pbn + 1;
			r->used++;
			return 0;
		}
	}
}

bool dd_resv_remove(struct dd_resv *r, u64 pbn)
{
	u32 i, n;

	if (!r->size)
		return false;
	for (i = dd_hash64(pbn) & (r->size - 1), n = 0; n < r->size; n++, i = (i + 1) & (r->size - 1)) {
		if (r->slot[i] == DD_RESV_EMPTY)
			return false;
		if (r->slot[i] == pbn + 1) {
			r->slot[i] = DD_RESV_TOMB;
			r->used--;
			r->tombs++;
			return true;
		}
	}
	return false;
}

void dd_resv_destroy(struct dd_resv *r)
{
	dd_free(r->slot);
	memset(r, 0, sizeof(*r));
}
