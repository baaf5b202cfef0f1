// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 4 (dd-internal.h).  Per-PBN records: reference count and owner
 * back-pointer, kept together in one 16-byte record so that they can never
 * disagree after a crash.
 *
 * The owner (volume, LBN) is known (DD_REC_OWNED) while exactly one map
 * entry points at the block and the engine knows which; it is forgotten
 * when the block becomes shared and learnt again by dd_map_make_exclusive.
 * The data allocation bit is set exactly when the refcount is non-zero.
 */
#include "dd-internal.h"

static u64 dd_rec_leaf(u64 pbn, u32 *slot)
{
	return dd_div_u64_rem(pbn, DD_RECS_PER_LEAF, slot);
}

int dd_rec_read(struct dd_pool *pool, u64 pbn, unsigned flags, struct dd_disk_rec *out)
{
	struct dd_buf *leaf;
	u32 slot;
	int r;

	r = dd_tree_find(pool, &pool->refs_tree, dd_rec_leaf(pbn, &slot), flags, &leaf);
	if (r == -ENODATA) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (r)
		return r;
	*out = ((struct dd_disk_refs_leaf *)dd_data(leaf))->rec[slot];
	dd_blk_put(leaf);
	return 0;
}

/*
 * The record as of the last commit, and whether it changed since.  A leaf
 * created in the open transaction has no committed image: every record in
 * it reads as touched.
 */
int dd_rec_read_committed(struct dd_pool *pool, u64 pbn, struct dd_disk_rec *out, bool *touched)
{
	struct dd_buf *leaf;
	struct dd_aux *aux;
	u32 slot;
	int r;

	*touched = true;
	memset(out, 0, sizeof(*out));
	r = dd_tree_find(pool, &pool->refs_tree, dd_rec_leaf(pbn, &slot), 0, &leaf);
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	aux = dd_aux(leaf);
	if (aux->dirty_txn != pool->open_txn) {
		*touched = false;
		*out = ((struct dd_disk_refs_leaf *)dd_data(leaf))->rec[slot];
	} else if (aux->shadow) {
		*touched = aux->shadow->touched[slot / 64] & (1ULL << (slot % 64));
		*out = ((struct dd_disk_refs_leaf *)aux->shadow->data)->rec[slot];
	}
	dd_blk_put(leaf);
	return 0;
}

/* Opens record pbn for change: its leaf joins the transaction and the
 * record is marked touched. */
static int dd_rec_open(struct dd_pool *pool, u64 pbn, bool create, struct dd_buf **leaf,
		       struct dd_disk_rec **rec)
{
	struct dd_aux *aux;
	u32 slot;
	int r;

	if (pbn >= pool->nr_data_blocks) {
		dd_err("record for data block %llu beyond the data device", (unsigned long long)pbn);
		return -EILSEQ;
	}
	r = dd_tree_find_dirty(pool, &pool->refs_tree, dd_rec_leaf(pbn, &slot), create, leaf);
	if (r == -ENODATA) {
		dd_err("data block %llu has no record", (unsigned long long)pbn);
		return -EILSEQ;
	}
	if (r)
		return r;
	aux = dd_aux(*leaf);
	if (aux->shadow)
		aux->shadow->touched[slot / 64] |= 1ULL << (slot % 64);
	*rec = &((struct dd_disk_refs_leaf *)dd_data(*leaf))->rec[slot];
	return 0;
}

/* Closes a record opened by dd_rec_open; frees the leaf once it is empty. */
static int dd_rec_close(struct dd_pool *pool, u64 pbn, struct dd_buf *leaf, u32 old_ref,
			u32 new_ref)
{
	/* count: records with a non-zero refcount */
	u16 count = dd_block_count_add(dd_data(leaf), (new_ref != 0) - (old_ref != 0));
	u32 slot;

	dd_blk_put(leaf);
	if (count)
		return 0;
	return dd_tree_remove(pool, &pool->refs_tree, dd_rec_leaf(pbn, &slot));
}

static int dd_rec_bad(u64 pbn, const char *what, u32 refcount)
{
	dd_err("data block %llu: %s (refcount %u)", (unsigned long long)pbn, what, refcount);
	return -EILSEQ;
}

/* A newly written block: refcount 1, owned by (vol, lbn), allocated. */
int dd_rec_new(struct dd_pool *pool, u64 pbn, u32 vol, u64 lbn, u8 domain)
{
	return dd_rec_new_run(pool, pbn, 1, vol, lbn, domain);
}

int dd_rec_inc(struct dd_pool *pool, u64 pbn)
{
	struct dd_buf *leaf;
	struct dd_disk_rec *rec;
	u32 ref;
	int r;

	r = dd_rec_open(pool, pbn, false, &leaf, &rec);
	if (r)
		return r;
	ref = dd_rec_refcount(rec);
	if (!ref || ref == 0xffffffffu) {
		dd_blk_put(leaf);
		if (ref)
			return -EOVERFLOW;
		return dd_rec_bad(pbn, "sharing a free block", ref);
	}
	if (ref == 1)
		pool->st.shared_blocks++;
	dd_rec_enc_refcount(rec, ref + 1);
	dd_rec_enc_disown(rec);
	return dd_rec_close(pool, pbn, leaf, ref, ref + 1);
}

int dd_rec_dec(struct dd_pool *pool, u64 pbn, bool *was_shared, bool *was_merged)
{
	struct dd_buf *leaf;
	struct dd_disk_rec *rec;
	u32 ref;
	int r;

	r = dd_rec_open(pool, pbn, false, &leaf, &rec);
	if (r)
		return r;
	ref = dd_rec_refcount(rec);
	if (!ref) {
		dd_blk_put(leaf);
		return dd_rec_bad(pbn, "dropping a reference to a free block", ref);
	}
	*was_shared = ref > 1;
	if (was_merged)
		*was_merged = dd_rec_merged(rec);
	if (ref == 2)
		pool->st.shared_blocks--;
	if (ref == 1) {
		memset(rec, 0, sizeof(*rec));
	} else {
		dd_rec_enc_refcount(rec, ref - 1);
		dd_rec_enc_disown(rec);
		if (ref == 2)
			dd_rec_enc_merged(rec, false);	/* no longer shared */
	}
	r = dd_rec_close(pool, pbn, leaf, ref, ref - 1);
	if (r || ref > 1)
		return r;
	return dd_dalloc_set(pool, pbn, false);
}

int dd_rec_set_owner(struct dd_pool *pool, u64 pbn, u32 vol, u64 lbn)
{
	struct dd_buf *leaf;
	struct dd_disk_rec *rec;
	u32 ref;
	int r;

	r = dd_rec_open(pool, pbn, false, &leaf, &rec);
	if (r)
		return r;
	ref = dd_rec_refcount(rec);
	if (ref != 1) {
		dd_blk_put(leaf);
		return dd_rec_bad(pbn, "owner set on a block that is not exclusive", ref);
	}
	dd_rec_enc_owner(rec, vol, lbn);
	return dd_rec_close(pool, pbn, leaf, 1, 1);
}

/*
 * Blocks [pbn, pbn + n), inside one refs leaf, free in the bitmap, must have
 * no references: otherwise (damaged metadata) a guest's write would land on
 * a live block before the insert notices.  One leaf lookup, in a leaf the
 * insert needs anyway.
 */
static int dd_rec_check_unused_run(struct dd_pool *pool, u64 pbn, u32 n)
{
	const struct dd_disk_rec *rec;
	struct dd_buf *leaf;
	u32 slot, i, ref;
	int r;

	r = dd_tree_find(pool, &pool->refs_tree, dd_rec_leaf(pbn, &slot), 0, &leaf);
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	rec = ((struct dd_disk_refs_leaf *)dd_data(leaf))->rec;
	for (i = 0; i < n; i++) {
		ref = dd_rec_refcount(&rec[slot + i]);
		if (ref) {
			dd_blk_put(leaf);
			dd_err("data block %llu is free in the bitmap but has %u references",
			       (unsigned long long)(pbn + i), ref);
			return dd_tx_fail(pool, -EILSEQ, "allocating a data block");
		}
	}
	dd_blk_put(leaf);
	return 0;
}

/* Reserves a data block for a write in flight (its record checked). */
int dd_rec_reserve(struct dd_pool *pool, u64 *pbn)
{
	int r;

	r = dd_data_find_free(pool, pbn);
	if (!r)
		r = dd_rec_check_unused_run(pool, *pbn, 1);
	if (r)
		return r;
	return dd_data_claim(pool, *pbn);
}

u32 dd_rec_run_room(u64 pbn)
{
	u32 slot;

	dd_rec_leaf(pbn, &slot);
	return DD_RECS_PER_LEAF - slot;
}

/*
 * Reserves up to @want consecutive blocks from *pbn: the first as
 * dd_rec_reserve finds it, then the blocks after it while they are free
 * (dd_data_free_run), a bitmap and a refs leaf at a time.  *got >= 1 on
 * success.  On an error nothing stays reserved.
 */
int dd_rec_reserve_run(struct dd_pool *pool, u32 want, u64 *pbn, u32 *got)
{
	u32 n, k, i;
	int r;

	*got = 0;
	r = dd_rec_reserve(pool, pbn);
	if (r)
		return r;
	for (n = 1; n < want; n += k) {
		r = dd_data_free_run(pool, *pbn + n, DD_MIN(want - n, dd_rec_run_room(*pbn + n)), &k);
		if (!r && k)
			r = dd_rec_check_unused_run(pool, *pbn + n, k);
		if (r)
			k = 0;	/* none of these claimed */
		for (i = 0; !r && i < k; i++) {
			r = dd_data_claim(pool, *pbn + n + i);
			if (r)
				k = i;	/* claimed so far: released below */
		}
		if (r) {
			dd_data_unreserve_run(pool, *pbn, n + k);
			return r;
		}
		if (!k)
			break;
	}
	*got = n;
	return 0;
}

/* Records [pbn, pbn + n) of new blocks, inside one refs leaf (one lookup). */
int dd_rec_new_run(struct dd_pool *pool, u64 pbn, u32 n, u32 vol, u64 lbn, u8 domain)
{
	struct dd_disk_rec *rec;
	struct dd_buf *leaf;
	struct dd_aux *aux;
	u32 slot, i, ref;
	int r;

	dd_rec_leaf(pbn, &slot);
	if (!n || slot + n > DD_RECS_PER_LEAF)
		return -EILSEQ;
	r = dd_rec_open(pool, pbn, true, &leaf, &rec);
	if (r)
		return r;
	aux = dd_aux(leaf);
	for (i = 0; i < n; i++) {
		ref = dd_rec_refcount(&rec[i]);
		if (ref) {
			dd_blk_put(leaf);
			return dd_rec_bad(pbn + i, "allocating a block in use", ref);
		}
		if (aux->shadow)
			aux->shadow->touched[(slot + i) / 64] |= 1ULL << ((slot + i) % 64);
		dd_rec_enc_new(&rec[i], vol, lbn + i, domain);
	}
	dd_block_count_add(dd_data(leaf), (int)n);	/* count: records in use */
	dd_blk_put(leaf);
	return dd_dalloc_use_run(pool, pbn, n);
}

/*
 * The block is shared through a merge (for the statistics of COW breaks and
 * for unsharing), or, merged false, what is left of its sharing was not made
 * by merges (unsharing).
 */
int dd_rec_set_merged(struct dd_pool *pool, u64 pbn, bool merged)
{
	struct dd_buf *leaf;
	struct dd_disk_rec *rec;
	u32 ref;
	int r;

	r = dd_rec_open(pool, pbn, false, &leaf, &rec);
	if (r)
		return r;
	ref = dd_rec_refcount(rec);
	if (merged && ref < 2) {
		dd_blk_put(leaf);
		return dd_rec_bad(pbn, "merged but not shared", ref);
	}
	dd_rec_enc_merged(rec, merged);
	return dd_rec_close(pool, pbn, leaf, ref, ref);
}

int dd_record_get(struct dd_pool *pool, u64 pbn, struct dd_record *rec)
{
	struct dd_disk_rec d;
	int r;

	if (pbn >= pool->nr_data_blocks)
		return -EINVAL;
	r = dd_rec_read(pool, pbn, 0, &d);
	if (!r)
		dd_rec_decode(&d, rec);
	return r;
}
