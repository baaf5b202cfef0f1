// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 5 (dd-internal.h).  Volumes: the volume table, the LBN -> PBN maps,
 * snapshots, deletion and reclaim.  The lookups are public calls from here;
 * the calls that change metadata are wrapped by the pool layer, which
 * enters the error ladder for them.
 *
 * The exclusive bit of a map entry (DD_ME_EXCL) lets the data path write in
 * place after one map lookup.  Invariant (checked by dedup_check): an entry
 * with the bit set points at a block whose record has refcount 1 and names
 * this (volume, LBN) as owner, and the block was either free or referenced
 * by this same entry alone in the last committed state.  Every operation
 * that adds a reference to a block first clears the bit of the entry that
 * owned it.
 */
#include "dd-internal.h"

/* Dirty blocks one map entry update may add (records, their tree, dalloc). */
#define DD_ENTRY_MAX_DIRTY	24

static u64 dd_map_leaf(u64 lbn, u32 *slot)
{
	return dd_div_u64_rem(lbn, DD_MAP_ENTRIES, slot);
}

/* ---- shared map pages (docs/snapshots.md) --------------------------------- */

/* Copying a shared map leaf dirties a record leaf per distinct one of its
 * blocks. */
static u32 dd_map_leaf_cost(struct dd_pool *pool, const void *leaf)
{
	u64 *v = pool->scratch;		/* DD_BLOCK_SIZE bytes: room for 508 */
	u32 slot, k = 0;

	for (slot = 0; slot < DD_MAP_ENTRIES; slot++) {
		u64 e = dd_me_get(leaf, slot);

		if (dd_me_mapped(e))
			v[k++] = dd_me_pbn(e);
	}
	return dd_distinct_leaves(v, k, DD_RECS_PER_LEAF);
}

/* A shared leaf is copied: each of its blocks gains a reference (the copy's
 * slot), and no entry of either is exclusive any more (the shared one keeps
 * serving its other parents; a clear bit only sends a write elsewhere). */
static int dd_map_leaf_copied(struct dd_pool *pool, void *old, void *new)
{
	u32 slot;
	int r;

	for (slot = 0; slot < DD_MAP_ENTRIES; slot++) {
		u64 e = dd_me_get(old, slot);

		if (!dd_me_mapped(e))
			continue;
		r = dd_rec_inc(pool, dd_me_pbn(e));
		if (r)
			return r;
		if (dd_me_excl(e)) {
			dd_me_store(dd_me_slot(old, slot), dd_me_without_excl(e));
			dd_me_store(dd_me_slot(new, slot), dd_me_without_excl(e));
		}
	}
	return 0;
}

static void dd_vol_dirty(struct dd_volume *v);

/* A copy step moved the map's root: the volume table must have it at the
 * next commit, which the engine may make before the next step. */
static void dd_map_root_moved(const struct dd_tree *t)
{
	dd_vol_dirty((struct dd_volume *)((char *)t - offsetof(struct dd_volume, tree)));
}

static const struct dd_cow_ops dd_map_cow = {
	.leaf_cost = dd_map_leaf_cost,
	.leaf_copied = dd_map_leaf_copied,
	.root_moved = dd_map_root_moved,
};

static void dd_vol_set_tree(struct dd_volume *v)
{
	if (!(v->flags & DD_VOL_FAMILY))
		v->family = v->id;
	v->tree.owner = v->family;
	v->tree.cow = (v->flags & DD_VOL_FAMILY) ? &dd_map_cow : NULL;
}

/*
 * An exclusive bit of a family volume is trusted only if no page on its
 * path is shared, and not while the open transaction has detached a page:
 * a page exclusive now may have been shared at the last commit, where the
 * detached sibling still reaches its blocks, and its leaves keep the bits
 * set before the sharing.  (A copy clears the bits of the leaf it copies,
 * and the pages below a copied node stay shared: no such case.)
 */
static bool dd_vol_excl_ok(struct dd_volume *vol, bool shared)
{
	if (!vol->tree.cow)
		return true;
	return !shared && vol->pool->mrefs_txn != vol->pool->open_txn;
}

/* Makes the path to lbn's leaf this volume's alone (before the caller's
 * own reservation); *copied: pages copied. */
static int dd_vol_unshare(struct dd_volume *vol, u64 lbn, u32 *copied)
{
	struct dd_root before = vol->map;
	u32 slot;
	int r;

	*copied = 0;
	if (!vol->tree.cow)
		return 0;
	r = dd_tree_unshare(vol->pool, &vol->tree, dd_map_leaf(lbn, &slot), copied);
	if (before.block != vol->map.block || before.height != vol->map.height)
		dd_vol_dirty(vol);
	return r;
}

/* ---- the volume table ---------------------------------------------------- */

static u64 dd_vols_leaf(u32 id, u32 *slot)
{
	return dd_div_u64_rem(id, DD_VOLS_PER_LEAF, slot);
}

int dd_vol_entry_get(struct dd_pool *pool, u32 id, struct dd_disk_volume *out)
{
	struct dd_buf *leaf;
	u32 slot;
	int r;

	r = dd_tree_find(pool, &pool->vols_tree, dd_vols_leaf(id, &slot), 0, &leaf);
	if (r == -ENODATA)
		return -ENOENT;
	if (r)
		return r;
	*out = ((struct dd_disk_vols_leaf *)dd_data(leaf))->vol[slot];
	dd_blk_put(leaf);
	if (!(dd_vol_entry_flags(out) & DD_VOL_VALID))
		return -ENOENT;
	if (dd_vol_entry_id(out) != id) {
		dd_err("volume table slot %u holds volume %u", id, dd_vol_entry_id(out));
		return -EILSEQ;
	}
	return 0;
}

static int dd_vol_entry_put(struct dd_pool *pool, const struct dd_disk_volume *e)
{
	struct dd_disk_vols_leaf *l;
	struct dd_buf *leaf;
	u32 slot, id = dd_vol_entry_id(e);
	bool was_valid;
	int r;

	r = dd_tree_find_dirty(pool, &pool->vols_tree, dd_vols_leaf(id, &slot), true, &leaf);
	if (r)
		return r;
	l = dd_data(leaf);
	was_valid = dd_vol_entry_flags(&l->vol[slot]) & DD_VOL_VALID;
	l->vol[slot] = *e;
	if (!was_valid)
		dd_block_count_add(l, 1);
	dd_blk_put(leaf);
	pool->sb_dirty = true;
	return 0;
}

static int dd_vol_entry_del(struct dd_pool *pool, u32 id)
{
	struct dd_disk_vols_leaf *l;
	struct dd_buf *leaf;
	u32 slot;
	u16 count;
	int r;

	r = dd_tree_find_dirty(pool, &pool->vols_tree, dd_vols_leaf(id, &slot), false, &leaf);
	if (r)
		return r == -ENODATA ? -ENOENT : r;
	l = dd_data(leaf);
	memset(&l->vol[slot], 0, sizeof(l->vol[slot]));
	count = dd_block_count_add(l, -1);
	dd_blk_put(leaf);
	pool->sb_dirty = true;
	if (count)
		return 0;
	return dd_tree_remove(pool, &pool->vols_tree, dd_vols_leaf(id, &slot));
}

/*
 * The mapped count changes with every insert and unmap; writing it to the
 * volume table each time would walk the table tree per write.  It is written
 * when the pool commits (dd_volumes_flush) or when too many volumes wait.
 */
static void dd_vol_dirty(struct dd_volume *v)
{
	if (v->table_dirty)
		return;
	v->table_dirty = true;
	v->pool->nr_dirty_vols++;
}

/* The table no longer needs this volume's count (written, or moot). */
static void dd_vol_clean(struct dd_volume *v)
{
	if (!v->table_dirty)
		return;
	v->table_dirty = false;
	v->pool->nr_dirty_vols--;
}

/* Writes the in-core volume back to its table entry. */
static int dd_vol_sync(struct dd_volume *v)
{
	struct dd_disk_volume e;

	dd_vol_clean(v);
	dd_vol_encode(v, &e);
	return dd_vol_entry_put(v->pool, &e);
}

static void dd_vol_unlink(struct dd_volume *vol)
{
	struct dd_volume **p;

	for (p = &vol->pool->volumes; *p; p = &(*p)->next) {
		if (*p == vol) {
			*p = vol->next;
			break;
		}
	}
	dd_free(vol);
}

/* Writes the volumes' pending counts to the table; frees closed handles. */
int dd_volumes_flush(struct dd_pool *pool)
{
	struct dd_volume *v, *next;
	int r;

	for (v = pool->volumes; v && pool->nr_dirty_vols; v = next) {
		next = v->next;
		if (!v->table_dirty)
			continue;
		r = dd_vol_sync(v);	/* clears table_dirty */
		if (r)
			return r;
		if (!v->open_count)
			dd_vol_unlink(v);
	}
	return 0;
}

/* The in-core handle of volume id (open, or kept for a pending count), or NULL. */
static struct dd_volume *dd_vol_find(struct dd_pool *pool, u32 id)
{
	struct dd_volume *v;

	for (v = pool->volumes; v; v = v->next)
		if (v->id == id)
			return v;
	return NULL;
}

/* A handle on any table entry (deleted and incomplete ones too). */
int dd_vol_handle(struct dd_pool *pool, u32 id, struct dd_volume **out)
{
	struct dd_disk_volume e;
	struct dd_volume *v = dd_vol_find(pool, id);
	int r;

	if (v) {
		v->open_count++;
		*out = v;
		return 0;
	}
	r = dd_vol_entry_get(pool, id, &e);
	if (r)
		return r;
	v = dd_zalloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->pool = pool;
	v->id = id;
	v->open_count = 1;
	dd_vol_decode(&e, v);
	v->tree.root = &v->map;
	v->tree.id = DD_TREE_MAP;
	v->tree.leaf_type = DD_BT_MAP;
	dd_vol_set_tree(v);
	v->next = pool->volumes;
	pool->volumes = v;
	*out = v;
	return 0;
}

/* After an abort: refresh every handle from the committed table. */
int dd_volumes_reload(struct dd_pool *pool)
{
	struct dd_disk_volume e;
	struct dd_volume *v, *next;
	int r;

	for (v = pool->volumes; v; v = next) {
		next = v->next;
		dd_vol_clean(v);
		if (!v->open_count) {
			dd_vol_unlink(v);	/* kept only for a pending count */
			continue;
		}
		r = dd_vol_entry_get(pool, v->id, &e);
		if (r == -ENOENT)	/* created in the aborted txn */
			dd_vol_encode_new(&e, 0, 0, DD_NO_VOLUME, 0, 0);
		else if (r)
			return r;
		dd_vol_decode(&e, v);
		dd_vol_set_tree(v);
	}
	return 0;
}

int dd_volume_open(struct dd_pool *pool, u32 id, struct dd_volume **out)
{
	struct dd_volume *v;
	int r;

	if (id > DD_MAX_VOLUME_ID)
		return -EINVAL;
	r = dd_vol_handle(pool, id, &v);
	if (r)
		return r;
	if (v->flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)) {
		dd_volume_close(v);
		return -ENOENT;
	}
	*out = v;
	return 0;
}

void dd_volume_close(struct dd_volume *vol)
{
	if (--vol->open_count || vol->table_dirty)
		return;		/* a pending count keeps the handle until the flush */
	dd_vol_unlink(vol);
}

u32 dd_volume_id(struct dd_volume *vol)
{
	return vol->id;
}

u64 dd_volume_mapped(struct dd_volume *vol)
{
	return vol->mapped;
}

int dd_volume_next(struct dd_pool *pool, u32 *id, bool want_all, struct dd_volume_info *info)
{
	const struct dd_disk_vols_leaf *l;
	struct dd_volume *v;
	struct dd_buf *leaf;
	u64 li, found;
	u32 slot;
	int r;

	li = dd_vols_leaf(*id, &slot);
	for (;;) {
		r = dd_tree_next(pool, &pool->vols_tree, li, &found);
		if (r == -ENODATA)
			return -ENOENT;
		if (r)
			return r;
		if (found != li)
			slot = 0;
		r = dd_tree_find(pool, &pool->vols_tree, found, 0, &leaf);
		if (r)
			return r;
		l = dd_data(leaf);
		for (; slot < DD_VOLS_PER_LEAF; slot++) {
			const struct dd_disk_volume *e = &l->vol[slot];
			u32 flags = dd_vol_entry_flags(e);

			if (!(flags & DD_VOL_VALID))
				continue;
			if (!want_all && (flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)))
				continue;
			/* Callers step on from *id + 1: a stored id that is not the
			 * slot's own (damage) would send them back forever. */
			if (found * DD_VOLS_PER_LEAF + slot > DD_MAX_VOLUME_ID ||
			    dd_vol_entry_id(e) != found * DD_VOLS_PER_LEAF + slot) {
				dd_err("volume table slot %llu holds volume %u",
				       (unsigned long long)(found * DD_VOLS_PER_LEAF + slot),
				       dd_vol_entry_id(e));
				dd_blk_put(leaf);
				return -EILSEQ;
			}
			dd_vol_info_decode(e, info);
			v = dd_vol_find(pool, info->id);
			if (v)
				info->mapped_blocks = v->mapped;	/* newer than the table */
			*id = info->id;
			dd_blk_put(leaf);
			return 0;
		}
		dd_blk_put(leaf);
		li = found + 1;
		slot = 0;
	}
}

/* ---- lifecycle -------------------------------------------------------------- */

/* No volume is in family id: the id names pages and records of that
 * family while a member exists. */
static int dd_vol_family_unused(struct dd_pool *pool, u32 id)
{
	struct dd_volume_info info;
	u32 i = 0;
	int r;

	if (!(pool->incompat & DD_INCOMPAT_SHARED_MAPS))
		return 0;
	for (;; i++) {
		r = dd_volume_next(pool, &i, true, &info);
		if (r == -ENOENT)
			return 0;
		if (r)
			return r;
		if (info.family == id)
			return -EEXIST;
	}
}

/* Room for a new volume entry, and the id free (a deleted volume keeps it,
 * a family its first volume's). */
static int dd_vol_id_unused(struct dd_pool *pool, u32 id)
{
	struct dd_disk_volume e;
	int r;

	r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
	if (r)
		return r;
	r = dd_vol_entry_get(pool, id, &e);
	if (r != -ENOENT)
		return r ? r : -EEXIST;
	return dd_vol_family_unused(pool, id);
}

int dd_vol_create(struct dd_pool *pool, u32 id, u32 domain)
{
	struct dd_disk_volume e;
	int r;

	if (id > DD_MAX_VOLUME_ID || domain > DD_MAX_DOMAIN)
		return -EINVAL;
	r = dd_vol_id_unused(pool, id);
	if (r)
		return r;
	dd_vol_encode_new(&e, id, DD_VOL_VALID, DD_NO_VOLUME, pool->open_txn, (u8)domain);
	r = dd_vol_entry_put(pool, &e);
	if (r)
		return dd_tx_fail(pool, r, "creating a volume");
	pool->nr_volumes++;
	return 0;
}

static bool dd_vol_busy(struct dd_pool *pool, u32 id)
{
	struct dd_volume *v = dd_vol_find(pool, id);

	return v && v->open_count;
}

int dd_vol_delete(struct dd_pool *pool, u32 id)
{
	struct dd_volume *v;
	int r;

	if (id > DD_MAX_VOLUME_ID)
		return -EINVAL;
	if (dd_vol_busy(pool, id))
		return -EBUSY;
	r = dd_tx_room(pool, DD_OP_MAX_DIRTY);
	if (r)
		return r;
	r = dd_vol_handle(pool, id, &v);
	if (r)
		return r;
	if (v->flags & DD_VOL_DELETING) {
		dd_volume_close(v);
		return -ENOENT;
	}
	if (!(v->flags & DD_VOL_INCOMPLETE))
		pool->nr_volumes--;
	v->flags |= DD_VOL_DELETING;
	v->flags &= ~DD_VOL_INCOMPLETE;
	v->progress = 0;
	r = dd_vol_sync(v);
	dd_volume_close(v);
	if (r)
		return dd_tx_fail(pool, r, "deleting a volume");
	pool->nr_deleting++;
	return 0;
}

/* ---- the map -------------------------------------------------------------- */

/* As dd_map_lookup; *shared: the entry is reached through a shared page. */
static int dd_vol_lookup(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m,
			 bool *shared)
{
	struct dd_buf *leaf;
	u64 e;
	u32 slot;
	int r;

	m->mapped = m->excl = false;
	m->pbn = 0;
	*shared = false;
	if (lbn > DD_MAX_ADDR)
		return -EINVAL;
	if (vol->tree.cow)	/* the path is tested: no lookup hint */
		r = dd_tree_find_shared(vol->pool, &vol->tree, dd_map_leaf(lbn, &slot), flags,
					&leaf, shared);
	else
		r = dd_tree_find(vol->pool, &vol->tree, dd_map_leaf(lbn, &slot), flags, &leaf);
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	e = dd_me_get(dd_data(leaf), slot);
	dd_blk_put(leaf);
	if (dd_me_mapped(e)) {
		/* Never send a guest's I/O past the end of the data device. */
		if (dd_me_pbn(e) >= vol->pool->nr_data_blocks) {
			dd_err("volume %u LBN %llu maps block %llu beyond the data device", vol->id,
			       (unsigned long long)lbn, (unsigned long long)dd_me_pbn(e));
			return -EILSEQ;
		}
		m->mapped = true;
		/* A block the scanner compares is written copy-on-write only. */
		m->excl = dd_me_excl(e) && !dd_block_pinned(vol->pool, dd_me_pbn(e)) &&
			  dd_vol_excl_ok(vol, *shared);
		m->pbn = dd_me_pbn(e);
	}
	return 0;
}

int dd_map_lookup(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m)
{
	bool shared;

	return dd_vol_lookup(vol, lbn, flags, m, &shared);
}

int dd_vol_lookup_owned(struct dd_volume *vol, u64 lbn, struct dd_mapping *m, bool *owned)
{
	struct dd_disk_rec rec;
	struct dd_record d;
	bool shared;
	int r;

	*owned = false;
	r = dd_vol_lookup(vol, lbn, 0, m, &shared);
	if (r || !m->mapped || shared)
		return r;
	r = dd_rec_read(vol->pool, m->pbn, 0, &rec);
	if (r)
		return r;
	dd_rec_decode(&rec, &d);
	*owned = d.refcount == 1 && d.owned && d.owner_vol == vol->family && d.owner_lbn == lbn;
	return 0;
}

int dd_map_next(struct dd_volume *vol, u64 *lbn, struct dd_mapping *m)
{
	const struct dd_disk_map_leaf *l;
	struct dd_buf *leaf;
	u64 li, found, e = 0;
	u32 slot;
	int r;

	if (*lbn > DD_MAX_ADDR)
		return -ENODATA;
	li = dd_map_leaf(*lbn, &slot);
	for (;;) {
		r = dd_tree_next(vol->pool, &vol->tree, li, &found);
		if (r)
			return r;
		if (found != li)
			slot = 0;
		r = dd_tree_find(vol->pool, &vol->tree, found, 0, &leaf);
		if (r)
			return r;
		l = dd_data(leaf);
		for (; slot < DD_MAP_ENTRIES; slot++) {
			e = dd_me_get(l, slot);
			if (dd_me_mapped(e))
				break;
		}
		dd_blk_put(leaf);
		if (slot < DD_MAP_ENTRIES) {
			*lbn = found * DD_MAP_ENTRIES + slot;
			m->mapped = true;
			m->excl = dd_me_excl(e) && !vol->tree.cow;	/* no path test here */
			m->pbn = dd_me_pbn(e);
			return 0;
		}
		li = found + 1;
		slot = 0;
	}
}

/* Opens the map leaf of lbn for change, creating it if asked; keeps the
 * volume table in step if the tree's root moved. */
static int dd_map_open(struct dd_volume *vol, u64 lbn, bool create, struct dd_buf **leaf,
		       __le64 **entry)
{
	struct dd_root before;
	u32 slot, copied;
	int r;

	/* Callers made the path exclusive before their reservation; if one
	 * did not, copy it now and reserve again. */
	r = dd_vol_unshare(vol, lbn, &copied);
	if (!r && copied)
		r = dd_tx_reserve(vol->pool, DD_OP_MAX_DIRTY + DD_ENTRY_MAX_DIRTY);
	if (r)
		return r;
	before = vol->map;
	r = dd_tree_find_dirty(vol->pool, &vol->tree, dd_map_leaf(lbn, &slot), create, leaf);
	if (r)
		return r;
	*entry = dd_me_slot(dd_data(*leaf), slot);
	if (before.block != vol->map.block || before.height != vol->map.height)
		dd_vol_dirty(vol);
	return 0;
}

static void dd_map_count(struct dd_buf *leaf, int delta)
{
	dd_block_count_add(dd_data(leaf), delta);	/* count: mapped entries */
}

/* Most blocks one step of a run insert takes (a bound on the work between two
 * chances to commit). */
#define DD_INSERT_STEP		64

/*
 * One step of a run insert: lbn + i -> pbn + i for i < *n, where the LBNs lie
 * in one map leaf and the PBNs in one refs leaf.  A step dirties what one
 * insert does: a mapped LBN (its old block loses a reference, in a leaf of
 * its own) ends the step, or is the whole of it.  *n becomes the blocks done.
 */
static int __dd_map_insert_step(struct dd_volume *vol, u64 lbn, u64 pbn, u32 *n)
{
	struct dd_pool *pool = vol->pool;
	bool was_shared, was_merged;
	struct dd_buf *leaf;
	__le64 *entry;
	u32 i, k, fresh = 0;
	u64 old = 0;
	int r;

	r = dd_map_open(vol, lbn, true, &leaf, &entry);
	if (r)
		return r;
	for (k = 0; k < *n; k++) {
		u64 e = dd_me_load(&entry[k]);

		if (dd_me_mapped(e)) {
			if (!k) {
				old = e;
				k = 1;
			}
			break;
		}
	}
	for (i = 0; i < k; i++)
		dd_me_store(&entry[i], dd_me_new(pbn + i));
	fresh = dd_me_mapped(old) ? 0 : k;
	if (fresh) {
		dd_map_count(leaf, (int)fresh);
		vol->mapped += fresh;
		pool->st.mapped_blocks += fresh;
	}
	dd_blk_put(leaf);
	*n = k;
	r = dd_rec_new_run(pool, pbn, k, vol->family, lbn, vol->domain);
	if (r)
		return r;
	for (i = 0; i < k; i++) {
		dd_resv_remove(&pool->resv, pbn + i);
		dd_scan_mark_written(pool, pbn + i);	/* its data is new: scan it */
	}
	if (dd_me_mapped(old)) {
		r = dd_rec_dec(pool, dd_me_pbn(old), &was_shared, &was_merged);
		if (r)
			return r;
		if (was_shared)
			pool->st.cow_splits++;
		if (was_shared && was_merged)
			pool->st.scan_cow_breaks++;
		return 0;
	}
	dd_vol_dirty(vol);
	return 0;
}

int dd_vol_map_insert_run(struct dd_volume *vol, u64 lbn, u64 pbn, u32 n, u32 *done)
{
	struct dd_pool *pool = vol->pool;
	u32 i, k, slot;
	int r;

	*done = 0;
	if (!n || lbn > DD_MAX_ADDR || n - 1 > DD_MAX_ADDR - lbn || pbn >= pool->nr_data_blocks ||
	    n > pool->nr_data_blocks - pbn)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!dd_resv_contains(&pool->resv, pbn + i))
			return -EINVAL;
	while (*done < n) {
		dd_map_leaf(lbn + *done, &slot);
		k = DD_MIN(DD_MIN(n - *done, (u32)DD_INSERT_STEP),
			   DD_MIN(DD_MAP_ENTRIES - slot, dd_rec_run_room(pbn + *done)));
		r = dd_vol_unshare(vol, lbn + *done, &slot);
		if (!r)
			r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
		if (r)
			return r;
		r = __dd_map_insert_step(vol, lbn + *done, pbn + *done, &k);
		if (r)
			return dd_tx_fail(pool, r, "inserting a mapping");
		*done += k;
	}
	return 0;
}

int dd_vol_map_insert(struct dd_volume *vol, u64 lbn, u64 pbn)
{
	u32 done;

	return dd_vol_map_insert_run(vol, lbn, pbn, 1, &done);
}

int dd_map_plan_write(struct dd_volume *vol, u64 lbn, unsigned flags, struct dd_mapping *m,
		      enum dd_write_plan *plan)
{
	struct dd_disk_rec rec;
	int r;

	r = dd_map_lookup(vol, lbn, flags, m);
	if (r)
		return r;
	if (!m->mapped) {
		*plan = DD_WRITE_NEW_BLOCK;
		return 0;
	}
	if (m->excl) {
		*plan = DD_WRITE_IN_PLACE;
		return 0;
	}
	r = dd_rec_read(vol->pool, m->pbn, flags, &rec);
	if (r)
		return r;
	*plan = dd_rec_refcount(&rec) > 1 ? DD_WRITE_NEW_BLOCK : DD_WRITE_ASK;
	return 0;
}

int dd_vol_make_exclusive(struct dd_volume *vol, u64 lbn, bool *excl)
{
	struct dd_pool *pool = vol->pool;
	struct dd_disk_rec rec, crec;
	struct dd_mapping m;
	struct dd_record d;
	struct dd_buf *leaf;
	__le64 *entry;
	bool touched, open_used, committed_used;
	int r;

	bool shared;

	if (lbn > DD_MAX_ADDR)
		return -EINVAL;
	*excl = false;
	r = dd_vol_lookup(vol, lbn, 0, &m, &shared);
	if (r)
		return r;
	if (!m.mapped)
		return -ENODATA;
	if (m.excl) {
		*excl = true;
		return 0;
	}
	if (dd_block_pinned(pool, m.pbn))
		return 0;	/* the scanner is comparing it */
	if (!dd_vol_excl_ok(vol, shared))
		return 0;	/* reached through a shared page, now or at the last commit */
	r = dd_rec_read(pool, m.pbn, 0, &rec);
	if (r)
		return r;
	dd_rec_decode(&rec, &d);
	if (d.refcount != 1)
		return 0;
	if (d.owned && (d.owner_vol != vol->family || d.owner_lbn != lbn)) {
		dd_err("data block %llu: owner %u/%llu but mapped by %u/%llu",
		       (unsigned long long)m.pbn, d.owner_vol, (unsigned long long)d.owner_lbn,
		       vol->id, (unsigned long long)lbn);
		return -EILSEQ;
	}
	r = dd_rec_read_committed(pool, m.pbn, &crec, &touched);
	if (r)
		return r;
	r = dd_dalloc_test(pool, m.pbn, &open_used, &committed_used);
	if (r)
		return r;
	/* Referenced in the committed state by someone we cannot name: no. */
	if (touched && committed_used)
		return 0;

	r = dd_tx_room(pool, DD_OP_MAX_DIRTY);
	if (r)
		return r;
	if (!d.owned) {
		r = dd_rec_set_owner(pool, m.pbn, vol->family, lbn);
		if (r)
			goto bad;
	}
	r = dd_map_open(vol, lbn, false, &leaf, &entry);
	if (r)
		goto bad;
	dd_me_store(entry, dd_me_with_excl(dd_me_load(entry)));
	dd_blk_put(leaf);
	*excl = true;
	return 0;
bad:
	return dd_tx_fail(pool, r, "making a block exclusive");
}

int dd_vol_remap(struct dd_volume *vol, u64 lbn, u64 pbn)
{
	struct dd_buf *leaf;
	__le64 *entry;
	int r;

	r = dd_map_open(vol, lbn, false, &leaf, &entry);
	if (r)
		return r;
	if (!dd_me_mapped(dd_me_load(entry))) {
		dd_blk_put(leaf);
		return -EILSEQ;
	}
	dd_me_store(entry, dd_me_without_excl(dd_me_new(pbn)));
	dd_blk_put(leaf);
	return 0;
}

int dd_vol_unshare_one(struct dd_volume *vol, u64 lbn, u64 old, u64 new, bool first, bool excl)
{
	struct dd_pool *pool = vol->pool;
	struct dd_buf *leaf;
	__le64 *entry;
	bool was_shared;
	u64 e;
	int r;

	r = dd_map_open(vol, lbn, false, &leaf, &entry);
	if (r)
		return r == -ENODATA ? -EILSEQ : r;
	e = dd_me_load(entry);
	if (!dd_me_mapped(e) || dd_me_pbn(e) != old) {
		dd_blk_put(leaf);
		return -EILSEQ;
	}
	e = dd_me_new(new);
	dd_me_store(entry, first && excl ? e : dd_me_without_excl(e));
	dd_blk_put(leaf);
	if (first) {
		r = dd_rec_new(pool, new, vol->family, lbn, vol->domain);
		if (r)
			return r;
		dd_resv_remove(&pool->resv, new);
	} else {
		r = dd_rec_inc(pool, new);
		if (r)
			return r;
	}
	return dd_rec_dec(pool, old, &was_shared, NULL);
}

int dd_vol_clear_excl(struct dd_volume *vol, u64 lbn, u64 pbn)
{
	struct dd_buf *leaf;
	__le64 *entry;
	u64 e;
	int r;

	r = dd_map_open(vol, lbn, false, &leaf, &entry);
	if (r)
		return r == -ENODATA ? 0 : r;
	e = dd_me_load(entry);
	if (dd_me_mapped(e) && dd_me_pbn(e) == pbn)
		dd_me_store(entry, dd_me_without_excl(e));
	dd_blk_put(leaf);
	return 0;
}

int dd_vol_owner_clear_excl(struct dd_pool *pool, u64 pbn, const struct dd_record *d, bool *ok)
{
	struct dd_volume *o;
	int r;

	*ok = true;
	if (d->refcount != 1 || !d->owned)
		return 0;	/* no entry holds an exclusive bit on it */
	r = dd_vol_handle(pool, d->owner_vol, &o);
	if (r == -ENOENT && (pool->incompat & DD_INCOMPAT_SHARED_MAPS)) {
		*ok = false;	/* a family whose first volume is gone */
		return 0;
	}
	if (r)
		return r;
	if (o->tree.cow) {
		*ok = false;
		dd_volume_close(o);
		return 0;
	}
	r = dd_vol_clear_excl(o, d->owner_lbn, pbn);
	dd_volume_close(o);
	return r;
}

int dd_vol_map_share(struct dd_volume *vol, u64 lbn, u64 pbn)
{
	struct dd_pool *pool = vol->pool;
	struct dd_buf *leaf;
	__le64 *entry;
	int r;

	if (lbn > DD_MAX_ADDR || pbn >= pool->nr_data_blocks)
		return -EINVAL;
	r = dd_map_open(vol, lbn, true, &leaf, &entry);
	if (r)
		return r;
	if (dd_me_mapped(dd_me_load(entry))) {
		dd_blk_put(leaf);
		return -EEXIST;
	}
	dd_me_store(entry, dd_me_without_excl(dd_me_new(pbn)));
	dd_map_count(leaf, 1);
	dd_blk_put(leaf);
	vol->mapped++;
	pool->st.mapped_blocks++;
	dd_vol_dirty(vol);
	return dd_rec_inc(pool, pbn);
}

/* Room left in the journal for one more entry update. */
static bool dd_entry_room(struct dd_pool *pool)
{
	return pool->nr_dirty + DD_ENTRY_MAX_DIRTY + DD_OP_MAX_DIRTY <= pool->journal_blocks;
}

/*
 * Unmaps [*pos, end) within one leaf, stopping early when the journal is
 * nearly full; advances *pos.
 */
static int dd_unmap_leaf(struct dd_volume *vol, u64 li, u64 *pos, u64 end,
			 enum dd_unmap_reason why, u64 *budget)
{
	struct dd_pool *pool = vol->pool;
	void *l;
	struct dd_buf *leaf;
	u64 base = li * DD_MAP_ENTRIES, e;
	u32 slot, stop = (u32)DD_MIN((u64)DD_MAP_ENTRIES, end - base);
	bool was_shared, removed = false;
	u64 dropped = 0;
	__le64 *unused;
	int r;

	r = dd_map_open(vol, base, false, &leaf, &unused);
	if (r)
		return r;
	l = dd_data(leaf);
	for (slot = (u32)(*pos - base); slot < stop; slot++) {
		e = dd_me_get(l, slot);
		if (!dd_me_mapped(e))
			continue;
		if (!dd_entry_room(pool) || !*budget)
			break;
		dd_me_store(dd_me_slot(l, slot), 0);
		dd_map_count(leaf, -1);
		dropped++;
		(*budget)--;
		r = dd_rec_dec(pool, dd_me_pbn(e), &was_shared, NULL);
		if (r)
			break;
	}
	*pos = base + slot;
	if (!r && !dd_block_count(l)) {
		/* A count that reaches zero too early would leak references. */
		for (slot = 0; slot < DD_MAP_ENTRIES; slot++) {
			if (dd_me_mapped(dd_me_get(l, slot))) {
				dd_err("volume %u map leaf %llu: count 0 with entries left", vol->id,
				       (unsigned long long)li);
				r = -EILSEQ;
				break;
			}
		}
		removed = !r;
		*pos = base + DD_MAP_ENTRIES;
	}
	dd_blk_put(leaf);
	vol->mapped -= dropped;
	pool->st.mapped_blocks -= dropped;
	if (why == DD_UNMAP_DISCARD)
		pool->st.discarded += dropped;
	else if (why == DD_UNMAP_ZERO)
		pool->st.zero_elided += dropped;
	if (r)
		return r;
	if (removed) {
		r = dd_tree_remove(pool, &vol->tree, li);
		if (r)
			return r;
	}
	dd_vol_dirty(vol);
	return 0;
}

/* Unmaps [lbn, end), at most *budget entries; *next is where it stopped. */
static int dd_unmap_range(struct dd_volume *vol, u64 lbn, u64 end, enum dd_unmap_reason why,
			  u64 *budget, u64 *next)
{
	struct dd_pool *pool = vol->pool;
	u64 pos = lbn, li, found;
	u32 slot;
	int r;

	while (pos < end) {
		if (!*budget) {
			*next = pos;
			return 0;
		}
		li = dd_map_leaf(pos, &slot);
		r = dd_tree_next(pool, &vol->tree, li, &found);
		if (r == -ENODATA || (!r && found * DD_MAP_ENTRIES >= end))
			break;
		if (r)
			return r;
		if (found != li)
			pos = found * DD_MAP_ENTRIES;
		if (vol->tree.cow && (vol->flags & DD_VOL_DELETING)) {
			/* Reclaim: what is shared is let go of, not copied. */
			bool detached;
			u64 entries;

			r = dd_tx_room(pool, DD_OP_MAX_DIRTY);
			if (r)
				return r;
			r = dd_tree_detach(pool, &vol->tree, found, &detached, &entries);
			if (r)
				return dd_tx_fail(pool, r, "detaching a deleted volume");
			if (detached) {
				if (entries == ~0ULL)	/* the root: all of it */
					entries = vol->mapped;
				vol->mapped -= entries;
				pool->st.mapped_blocks -= entries;
				dd_vol_dirty(vol);
				(*budget)--;
				continue;
			}
		} else if (vol->tree.cow) {
			u32 copied;

			r = dd_vol_unshare(vol, pos, &copied);
			if (r)
				return r;
		}
		r = dd_tx_room(pool, DD_OP_MAX_DIRTY + DD_ENTRY_MAX_DIRTY);
		if (r)
			return r;
		r = dd_unmap_leaf(vol, found, &pos, end, why, budget);
		if (r)
			return dd_tx_fail(pool, r, "unmapping");
		dd_cond_resched();
	}
	*next = end;
	return 0;
}

int dd_vol_map_unmap(struct dd_volume *vol, u64 lbn, u64 nr, enum dd_unmap_reason why)
{
	u64 next, budget = ~0ULL;

	if (!nr)
		return 0;
	if (lbn > DD_MAX_ADDR || nr > DD_MAX_ADDR + 1 - lbn)
		return -EINVAL;
	return dd_unmap_range(vol, lbn, lbn + nr, why, &budget, &next);
}

int dd_volume_highest_lbn(struct dd_volume *vol, u64 *lbn)
{
	const void *l;
	struct dd_buf *leaf;
	u64 li;
	int r, slot;

	r = dd_tree_last(vol->pool, &vol->tree, &li);
	if (r)
		return r;
	r = dd_tree_find(vol->pool, &vol->tree, li, 0, &leaf);
	if (r)
		return r;
	l = dd_data(leaf);
	for (slot = DD_MAP_ENTRIES - 1; slot >= 0; slot--)
		if (dd_me_mapped(dd_me_get(l, (u32)slot)))
			break;
	dd_blk_put(leaf);
	if (slot < 0)
		return -EILSEQ;		/* empty leaves are removed */
	*lbn = li * DD_MAP_ENTRIES + (u64)slot;
	return 0;
}

/* ---- snapshots ------------------------------------------------------------- */

/* Copies origin entries [*pos, leaf end) into the snapshot, taking a
 * reference on each block and clearing the origin's exclusive bits. */
static int dd_snap_copy_leaf(struct dd_volume *snap, struct dd_volume *origin, u64 li, u64 *pos)
{
	struct dd_pool *pool = snap->pool;
	void *ol, *sl;
	struct dd_buf *oleaf, *sleaf;
	u64 base = li * DD_MAP_ENTRIES, e;
	__le64 *dummy;
	u32 slot;
	int r;

	r = dd_map_open(origin, base, false, &oleaf, &dummy);
	if (r)
		return r;
	r = dd_map_open(snap, base, true, &sleaf, &dummy);
	if (r) {
		dd_blk_put(oleaf);
		return r;
	}
	ol = dd_data(oleaf);
	sl = dd_data(sleaf);
	for (slot = (u32)(*pos - base); slot < DD_MAP_ENTRIES; slot++) {
		e = dd_me_get(ol, slot);
		if (!dd_me_mapped(e))
			continue;
		if (!dd_entry_room(pool))
			break;
		r = dd_rec_inc(pool, dd_me_pbn(e));
		if (r)
			break;
		if (dd_me_excl(e))
			dd_me_store(dd_me_slot(ol, slot), dd_me_without_excl(e));
		dd_me_store(dd_me_slot(sl, slot), dd_me_without_excl(e));
		dd_map_count(sleaf, 1);
		snap->mapped++;
		pool->st.mapped_blocks++;
	}
	*pos = base + slot;
	if (!dd_block_count(sl)) {
		dd_blk_put(sleaf);
		dd_blk_put(oleaf);
		/* Nothing copied yet (journal full at the first entry). */
		r = r ? r : dd_tree_remove(pool, &snap->tree, li);
		return r ? r : dd_vol_sync(snap);
	}
	dd_blk_put(sleaf);
	dd_blk_put(oleaf);
	if (r)
		return r;
	snap->progress = *pos;
	return dd_vol_sync(snap);
}

static int dd_snap_copy(struct dd_volume *snap, struct dd_volume *origin)
{
	struct dd_pool *pool = snap->pool;
	u64 pos = snap->progress, li, found;
	u32 slot;
	int r;

	for (;;) {
		li = dd_map_leaf(pos, &slot);
		r = dd_tree_next(pool, &origin->tree, li, &found);
		if (r == -ENODATA)
			return 0;
		if (r)
			return r;
		if (found != li)
			pos = found * DD_MAP_ENTRIES;
		r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY + DD_ENTRY_MAX_DIRTY);
		if (r)
			return r;
		r = dd_snap_copy_leaf(snap, origin, found, &pos);
		if (r)
			return dd_tx_fail(pool, r, "copying a snapshot");
		dd_cond_resched();
	}
}

/*
 * A snapshot that shares the origin's map (docs/snapshots.md): one
 * transaction, whatever the origin's size.  Both join the origin's family;
 * the origin's root gains a parent.  No exclusive bit changes: through the
 * shared root no lookup trusts them.
 */
static int dd_vol_share(struct dd_pool *pool, u32 id, struct dd_volume *origin)
{
	struct dd_disk_volume e;
	struct dd_volume *snap;
	int r;

	r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY + DD_MREF_MAX_DIRTY);
	if (r)
		return r;
	if (origin->map.block) {
		r = dd_mref_add(pool, origin->map.block, 1, NULL);
		if (r)
			goto bad;
	}
	if (!(pool->incompat & DD_INCOMPAT_SHARED_MAPS)) {
		pool->incompat |= DD_INCOMPAT_SHARED_MAPS;
		pool->sb_dirty = true;
	}
	origin->flags |= DD_VOL_FAMILY;
	dd_vol_set_tree(origin);
	origin->map.hint_block = 0;
	r = dd_vol_sync(origin);
	if (r)
		goto bad;
	dd_vol_encode_new(&e, id, DD_VOL_VALID, origin->id, pool->open_txn, origin->domain);
	r = dd_vol_entry_put(pool, &e);
	if (r)
		goto bad;
	r = dd_vol_handle(pool, id, &snap);
	if (r)
		goto bad;
	snap->flags |= DD_VOL_FAMILY;
	snap->family = origin->family;
	snap->map.block = origin->map.block;
	snap->map.height = origin->map.height;
	snap->map.hint_block = 0;
	snap->mapped = origin->mapped;
	dd_vol_set_tree(snap);
	r = dd_vol_sync(snap);
	dd_volume_close(snap);
	if (r)
		goto bad;
	pool->st.mapped_blocks += origin->mapped;
	pool->nr_volumes++;
	return 0;
bad:
	return dd_tx_fail(pool, r, "creating a snapshot");
}

/* Pools whose journal holds the largest copy step share; others copy. */
static bool dd_pool_shares(struct dd_pool *pool)
{
	return !pool->snapshot_copy && pool->journal_blocks >= DD_COW_MIN_JOURNAL;
}

int dd_vol_snapshot(struct dd_pool *pool, u32 id, u32 origin_id)
{
	struct dd_disk_volume e;
	struct dd_volume *origin, *snap;
	int r;

	if (id > DD_MAX_VOLUME_ID || origin_id > DD_MAX_VOLUME_ID || id == origin_id)
		return -EINVAL;
	r = dd_vol_id_unused(pool, id);
	if (r)
		return r;
	r = dd_volume_open(pool, origin_id, &origin);
	if (r)
		return r;
	if (dd_pool_shares(pool)) {
		r = dd_vol_share(pool, id, origin);
		dd_volume_close(origin);
		return r;
	}

	/* A snapshot shares its origin's blocks: it is in the origin's domain. */
	dd_vol_encode_new(&e, id, DD_VOL_VALID | DD_VOL_INCOMPLETE, origin_id, pool->open_txn,
			  origin->domain);
	r = dd_vol_entry_put(pool, &e);
	if (r)
		goto bad_meta;
	r = dd_vol_handle(pool, id, &snap);
	if (r)
		goto bad_meta;
	r = dd_snap_copy(snap, origin);
	if (!r) {
		snap->flags &= ~DD_VOL_INCOMPLETE;
		snap->progress = 0;
		r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
		if (!r)
			r = dd_vol_sync(snap);
		if (!r)
			pool->nr_volumes++;
	}
	dd_volume_close(snap);
	dd_volume_close(origin);
	if (r && dd_writable(pool) && !pool->tx_err) {
		/* e.g. -ENOSPC: hand the partial copy to reclaim (a failed
		 * transaction is aborted instead, by the caller's ladder). */
		dd_vol_delete(pool, id);
	}
	return r;

bad_meta:
	dd_volume_close(origin);
	return dd_tx_fail(pool, r, "creating a snapshot");
}

/* ---- freeing deleted volumes ------------------------------------------------- */

int dd_vol_reclaim(struct dd_pool *pool, u64 budget, bool *done)
{
	struct dd_volume_info info;
	struct dd_volume *v;
	u32 id = 0;
	u64 next;
	int r;

	*done = false;
	while (budget) {
		r = dd_volume_next(pool, &id, true, &info);
		if (r == -ENOENT) {
			*done = true;
			return 0;
		}
		if (r)
			return r;
		if (!(info.flags & DD_VOL_DELETING)) {
			id++;
			continue;
		}
		if (!dd_writable(pool))
			return -EROFS;
		r = dd_vol_handle(pool, id, &v);
		if (r)
			return r;
		r = dd_unmap_range(v, 0, DD_MAX_ADDR + 1, DD_UNMAP_OTHER, &budget, &next);
		if (!r && v->map.block && budget) {
			/* Every leaf was visited, yet the tree is not empty: a node
			 * or leaf count is wrong.  Retrying would never end. */
			dd_err("deleted volume %u: map cannot be emptied", id);
			r = dd_tx_fail(pool, -EILSEQ, "freeing a deleted volume");
		} else if (!r && !v->map.block) {
			r = dd_tx_room(pool, DD_OP_MAX_DIRTY);
			if (!r) {
				r = dd_vol_entry_del(pool, id);
				if (r)
					dd_tx_fail(pool, r, "removing a deleted volume");
			}
			if (!r) {
				dd_vol_clean(v);	/* gone from the table */
				pool->nr_deleting--;
			}
		}
		dd_volume_close(v);
		if (r)
			return r;
	}
	return 0;
}
