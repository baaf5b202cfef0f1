// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 5s (dd-internal.h): dedup at import, beside the scanner whose index,
 * pins and sharing rules it uses.  The contract is in dd-scan.h, the reasons
 * in docs/scanner.md ("Dedup at import").
 *
 *  - Candidates are named from the hashes of the blocks about to be written:
 *    the index for a hook, else a prediction (after a candidate C for
 *    (A, x) owned by (B, y), the block of (B, y + 1) is the candidate for
 *    (A, x + 1)), so a run of a second similar machine follows the first
 *    one's run from one hook.  LBNs the writer skips (zeroes, free space)
 *    move the run on.
 *  - Nothing is trusted from the naming: prepare and apply check every
 *    item again under the pool lock, and only the caller's byte comparison
 *    lets an LBN share C.
 *  - Pins of their own (pool->import_pins): the scanner takes a block that
 *    is pinned already as its own batch's, so the two never share a pin.
 */
#include "dd-internal.h"
#include "dd-scan.h"

#define DD_IMPORT_PRED_SLOTS	16
#define DD_II_PINNED		(1u << 16)	/* we pinned C */
#define DD_II_PUBLIC		(DD_II_HASHED | DD_II_CAND | DD_II_CAND_OWNED | DD_II_SAME | \
				 DD_II_SHARED | DD_II_FROM_INDEX)

struct dd_import_pred {
	bool valid;
	u32 vol, pvol;
	u64 next_lbn;		/* (vol, next_lbn) is predicted to hold ... */
	u64 plbn;		/* ... what (pvol, plbn) holds */
};

struct dd_import {
	struct dd_import_pred pred[DD_IMPORT_PRED_SLOTS];
	u64 hinted, shared, missed, raced;
};

static struct dd_import *dd_import_state(struct dd_pool *pool)
{
	if (!pool->import)
		pool->import = dd_zalloc(sizeof(*pool->import));
	return pool->import;
}

static struct dd_import_pred *dd_import_pred(struct dd_import *im, u32 vol)
{
	return &im->pred[vol % DD_IMPORT_PRED_SLOTS];
}

void dd_import_close(struct dd_pool *pool)
{
	dd_free(pool->import);
	pool->import = NULL;
	dd_resv_destroy(&pool->import_pins);
}

void dd_import_get_stats(struct dd_pool *pool, struct dd_scan_stats *st)
{
	struct dd_import *im = pool->import;

	if (!im)
		return;
	st->import_hinted = im->hinted;
	st->import_shared = im->shared;
	st->import_missed = im->missed;
	st->import_raced = im->raced;
}

/* A live volume's handle (not being deleted, not an incomplete snapshot). */
static int dd_import_volume(struct dd_pool *pool, u32 id, struct dd_volume **v)
{
	int r = dd_vol_handle(pool, id, v);

	if (r)
		return r;
	if ((*v)->flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)) {
		dd_volume_close(*v);
		return -ENOENT;
	}
	return 0;
}

/* The block (vol, lbn) maps, if mapped; never fails the call. */
static bool dd_import_lookup(struct dd_pool *pool, u32 vol, u64 lbn, u64 *pbn)
{
	struct dd_volume *v;
	struct dd_mapping m;
	bool ok;

	if (lbn > DD_MAX_ADDR || dd_import_volume(pool, vol, &v))
		return false;
	ok = !dd_map_lookup(v, lbn, 0, &m) && m.mapped;
	dd_volume_close(v);
	*pbn = m.pbn;
	return ok;
}

/* May C take one more referrer of @domain, @planned more being planned? */
static bool dd_import_fits(struct dd_pool *pool, u64 c, u8 domain, u32 planned,
			   struct dd_record *d)
{
	if (c >= pool->nr_data_blocks || dd_record_get(pool, c, d))
		return false;
	return d->refcount && d->domain == domain &&
	       (u64)d->refcount + planned < dd_scan_share_cap(pool);
}

/* An owner of C to predict from: its only one, or its last if that still maps it. */
static bool dd_import_owner(struct dd_pool *pool, u64 c, const struct dd_record *d,
			    u32 *vol, u64 *lbn)
{
	u64 p;

	if (!(d->refcount == 1 && d->owned) &&
	    !(dd_import_lookup(pool, d->owner_vol, d->owner_lbn, &p) && p == c))
		return false;
	*vol = d->owner_vol;
	*lbn = d->owner_lbn;
	return true;
}

int dd_import_plan(struct dd_pool *pool, struct dd_import_item *it, u32 n)
{
	struct dd_index *idx = dd_scan_index(pool);
	struct dd_import_pred *p;
	struct dd_import *im;
	struct dd_volume *v;
	u32 i, named = 0;
	int r;

	if (!idx || !dd_writable(pool))
		return -EROFS;
	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (it[i].vol != it[0].vol || it[i].lbn > DD_MAX_ADDR ||
		    (i && it[i].lbn <= it[i - 1].lbn))
			return -EINVAL;
	im = dd_import_state(pool);
	if (!im)
		return -ENOMEM;
	r = dd_import_volume(pool, it[0].vol, &v);
	if (r)
		return r;
	dd_index_tune(idx, pool->st.data_used);	/* as a pass does: the hooks for the size */
	p = dd_import_pred(im, v->id);
	for (i = 0; i < n; i++) {
		struct dd_import_item *x = &it[i];
		bool predicted = p->valid && p->vol == x->vol && p->next_lbn == x->lbn;
		bool ok = false;
		struct dd_mapping m;
		struct dd_record d;
		u64 c = 0;

		x->flags &= DD_II_HASHED;
		if (!(x->flags & DD_II_HASHED)) {
			/* Not written (zeroes, free space): the run goes on past it. */
			if (predicted) {
				p->next_lbn++;
				p->plbn++;
			}
			continue;
		}
		/* A mapped LBN is written as any write (a resumed import). */
		if (dd_map_lookup(v, x->lbn, 0, &m) || m.mapped) {
			p->valid = false;
			continue;
		}
		if (dd_index_is_hook(idx, x->hash)) {
			if (!dd_index_lookup(idx, x->hash, v->domain, &c)) {
				/* New bytes in the run (the index would know
				 * them): written, and the run goes on past them. */
				if (predicted) {
					p->next_lbn++;
					p->plbn++;
				}
				continue;
			}
			ok = dd_import_fits(pool, c, v->domain, 0, &d);
			if (ok)
				x->flags |= DD_II_FROM_INDEX;
			else
				dd_index_remove(idx, x->hash, v->domain, c);	/* stale */
		}
		if (!ok && predicted && dd_import_lookup(pool, p->pvol, p->plbn, &c))
			ok = dd_import_fits(pool, c, v->domain, 0, &d);
		if (!ok) {
			p->valid = false;
			continue;
		}
		x->cand = c;
		x->flags |= DD_II_CAND;
		named++;
		im->hinted++;
		p->valid = dd_import_owner(pool, c, &d, &p->pvol, &p->plbn);
		p->vol = x->vol;
		p->next_lbn = x->lbn + 1;
		p->plbn++;
	}
	dd_volume_close(v);
	return (int)named;
}

/* Items before @upto that keep C: how many, and whether one pinned it. */
static u32 dd_import_planned(const struct dd_import_item *it, u32 upto, u64 c, bool *pinned)
{
	u32 i, k = 0;

	*pinned = false;
	for (i = 0; i < upto; i++) {
		if (!(it[i].flags & DD_II_CAND) || it[i].cand != c)
			continue;
		k++;
		*pinned = true;		/* an item keeps C only pinned */
	}
	return k;
}

/* Item @i may keep its candidate (lock held): checks, pin, C's owner. */
static bool dd_import_keep(struct dd_pool *pool, struct dd_import_item *it, u32 i)
{
	struct dd_import_item *x = &it[i];
	struct dd_volume *v;
	struct dd_mapping m;
	struct dd_record d;
	bool ok, pinned;
	u32 planned = dd_import_planned(it, i, x->cand, &pinned);

	if (dd_import_volume(pool, x->vol, &v))
		return false;
	ok = !dd_map_lookup(v, x->lbn, 0, &m) && !m.mapped &&
	     dd_import_fits(pool, x->cand, v->domain, planned, &d);
	dd_volume_close(v);
	if (!ok)
		return false;
	if (!pinned) {
		/* The scanner's pin is its batch's: it may end at any unlock. */
		if (dd_resv_contains(&pool->pins, x->cand) ||
		    dd_resv_contains(&pool->import_pins, x->cand) ||
		    dd_resv_add(&pool->import_pins, x->cand))
			return false;
		x->flags |= DD_II_PINNED;
	}
	if (d.refcount == 1 && d.owned) {
		x->flags |= DD_II_CAND_OWNED;
		x->cand_vol = d.owner_vol;
		x->cand_lbn = d.owner_lbn;
	}
	return true;
}

int dd_import_prepare(struct dd_pool *pool, struct dd_import_item *it, u32 n)
{
	struct dd_import *im;
	u32 i, kept = 0;

	for (i = 0; i < n; i++)
		it[i].flags &= DD_II_HASHED | DD_II_CAND | DD_II_FROM_INDEX;
	im = dd_scan_index(pool) && dd_writable(pool) ? dd_import_state(pool) : NULL;
	if (!im) {
		for (i = 0; i < n; i++)
			it[i].flags &= ~DD_II_CAND;
		return dd_scan_index(pool) && dd_writable(pool) ? -ENOMEM : -EROFS;
	}
	for (i = 0; i < n; i++) {
		struct dd_import_item *x = &it[i];

		if (!(x->flags & DD_II_CAND))
			continue;
		if (!dd_import_keep(pool, it, i)) {
			x->flags &= ~(DD_II_CAND | DD_II_PINNED | DD_II_CAND_OWNED);
			im->raced++;
			continue;
		}
		kept++;
	}
	return (int)kept;
}

void dd_import_release(struct dd_pool *pool, struct dd_import_item *it, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (it[i].flags & DD_II_PINNED)
			dd_resv_remove(&pool->import_pins, it[i].cand);
		it[i].flags &= ~DD_II_PINNED;
	}
}

/* Maps (v, x->lbn) to C after the last checks; *shared says if it did. */
static int dd_import_share_one(struct dd_pool *pool, struct dd_volume *v,
			       struct dd_import_item *x, bool *shared)
{
	struct dd_mapping m;
	struct dd_record c;
	int r;

	*shared = false;
	r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
	if (r)
		return r;
	r = dd_map_lookup(v, x->lbn, 0, &m);
	if (r || m.mapped)
		return r;	/* a write came in between: it is the LBN's data now */
	r = dd_record_get(pool, x->cand, &c);
	if (r)
		return r;
	if (!c.refcount || c.domain != v->domain || c.refcount >= dd_scan_share_cap(pool))
		return 0;
	{
		/* C's owner must stop writing in place: it is shared now (an
		 * owner that is a snapshot family cannot be named: not C). */
		bool ok;

		r = dd_vol_owner_clear_excl(pool, x->cand, &c, &ok);
		if (r)
			return dd_tx_fail(pool, r, "sharing a block at import");
		if (!ok)
			return 0;
	}
	r = dd_vol_map_share(v, x->lbn, x->cand);
	if (!r)
		r = dd_rec_set_merged(pool, x->cand, true);
	if (r)
		return dd_tx_fail(pool, r, "sharing a block at import");	/* half-done */
	*shared = true;
	return 0;
}

int dd_import_apply(struct dd_pool *pool, struct dd_import_item *it, u32 n)
{
	struct dd_index *idx = dd_scan_index(pool);
	struct dd_import *im = pool->import;
	u32 i;
	int r = 0;

	if (!idx || !im || !dd_writable(pool)) {
		dd_import_release(pool, it, n);
		return -EROFS;
	}
	for (i = 0; i < n && !r; i++) {
		struct dd_import_item *x = &it[i];
		struct dd_volume *v;
		bool shared;

		x->flags &= ~DD_II_SHARED;
		if (!(x->flags & DD_II_CAND))
			continue;
		if (dd_import_volume(pool, x->vol, &v)) {
			im->raced++;
			continue;
		}
		if (!(x->flags & DD_II_SAME)) {
			/* Equal hashes, different bytes, or a prediction that failed. */
			struct dd_import_pred *p = dd_import_pred(im, x->vol);

			im->missed++;
			if (x->flags & DD_II_FROM_INDEX)
				dd_index_remove(idx, x->hash, v->domain, x->cand);
			if (p->vol == x->vol)
				p->valid = false;
			dd_volume_close(v);
			continue;
		}
		r = dd_import_share_one(pool, v, x, &shared);
		dd_volume_close(v);
		if (r)
			break;
		if (shared) {
			x->flags |= DD_II_SHARED;
			pool->st.scan_merged++;	/* deduplicated: never written */
			im->shared++;
		} else {
			im->raced++;
		}
		dd_cond_resched();
	}
	dd_import_release(pool, it, n);
	return dd_pool_settle(pool, r);
}

void dd_import_index(struct dd_pool *pool, const struct dd_import_item *it, u32 n)
{
	struct dd_index *idx = dd_scan_index(pool);
	struct dd_volume *v;
	u32 i;

	if (!idx || !n || !dd_writable(pool) || dd_import_volume(pool, it[0].vol, &v))
		return;
	for (i = 0; i < n; i++) {
		const struct dd_import_item *x = &it[i];
		struct dd_mapping m;
		struct dd_record d;
		u64 c;

		if (!(x->flags & DD_II_HASHED) || x->vol != v->id ||
		    !dd_index_is_hook(idx, x->hash) ||
		    dd_index_lookup(idx, x->hash, v->domain, &c))
			continue;
		/* Only a block of its own holds what the writer said it wrote. */
		if (dd_map_lookup(v, x->lbn, 0, &m) || !m.mapped ||
		    dd_record_get(pool, m.pbn, &d))
			continue;
		if (d.refcount == 1 && d.owned && d.owner_vol == v->id && d.owner_lbn == x->lbn)
			dd_index_insert(idx, x->hash, v->domain, m.pbn);
	}
	dd_volume_close(v);
}
