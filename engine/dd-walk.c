// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only inspection of an open pool (dd-walk.h): geometry, raw blocks,
 * tree walks with a visitor, per-PBN queries and the format's codecs, for
 * the checker, the dump and the tests, which see no engine internals.
 *
 * The walk reads blocks through the block manager and validates them
 * itself, as a checker must: dd_blk_get() would log every damaged block and
 * trusts a block it validated once on a cheaper re-check.
 */
#include "dd-internal.h"
#include "dd-walk.h"

/* ---- geometry and counters ------------------------------------------------ */

void dd_walk_get_info(struct dd_pool *pool, struct dd_walk_info *info)
{
	memset(info, 0, sizeof(*info));
	info->nr_meta_blocks = pool->nr_meta_blocks;
	info->nr_data_blocks = pool->nr_data_blocks;
	info->data_block_sectors = pool->data_block_sectors;
	memcpy(info->uuid, pool->uuid, sizeof(info->uuid));
	info->journal_start = pool->journal_start;
	info->journal_blocks = pool->journal_blocks;
	info->mbitmap_blocks = pool->mbitmap_blocks;
	info->mbitmap_start = pool->mbitmap_start;
	info->first_tree_block = pool->mbitmap_start + pool->mbitmap_blocks;
	info->committed_txn = pool->committed_txn;
	info->sb_slot = pool->committed_txn % DD_SB_SLOTS;
	info->user_txn = pool->user_txn;
	info->data_used = pool->st.data_used;
	info->meta_used = pool->st.meta_used;
	info->shared_blocks = pool->st.shared_blocks;
	info->mapped_blocks = pool->st.mapped_blocks;
	info->zero_elided = pool->st.zero_elided;
	info->discarded = pool->st.discarded;
	info->cow_splits = pool->st.cow_splits;
	info->nr_volumes = pool->nr_volumes;
	info->needs_check = pool->needs_check;
	info->incompat = pool->incompat;
}

int dd_walk_read_block(struct dd_pool *pool, u64 blocknr, void *buf)
{
	struct dd_buf *b;
	int r;

	if (blocknr >= pool->nr_meta_blocks)
		return -ERANGE;
	r = dd_bm_read(pool->bm, blocknr, &b);
	if (r)
		return r;
	memcpy(buf, dd_data(b), DD_BLOCK_SIZE);
	dd_blk_put(b);
	return 0;
}

/* ---- trees ------------------------------------------------------------------ */

/*
 * The tree named by (tree, vol).  A map needs a volume handle, which
 * *vol_out holds until the caller closes it; the scanner's trees have a
 * root but no tree of their own in the pool, so *tmp describes them.
 */
static int dd_walk_lookup(struct dd_pool *pool, enum dd_tree_id tree, u32 vol,
			  struct dd_tree *tmp, const struct dd_tree **t, struct dd_volume **vol_out)
{
	int r;

	*vol_out = NULL;
	switch (tree) {
	case DD_TREE_VOLS:
		*t = &pool->vols_tree;
		return 0;
	case DD_TREE_REFS:
		*t = &pool->refs_tree;
		return 0;
	case DD_TREE_DALLOC:
		*t = &pool->dalloc_tree;
		return 0;
	case DD_TREE_MREFS:
		*t = &pool->mrefs_tree;
		return 0;
	case DD_TREE_WRITTEN:
		*tmp = dd_written_tree(pool);
		*t = tmp;
		return 0;
	case DD_TREE_INDEX:
		*tmp = dd_index_tree(pool);
		*t = tmp;
		return 0;
	case DD_TREE_MAP:
		r = dd_vol_handle(pool, vol, vol_out);
		if (r)
			return r;
		*t = &(*vol_out)->tree;
		return 0;
	default:
		return -EINVAL;
	}
}

int dd_walk_root(struct dd_pool *pool, enum dd_tree_id tree, u32 vol, struct dd_walk_root *root)
{
	const struct dd_tree *t;
	struct dd_tree tmp;
	struct dd_volume *v;
	int r;

	r = dd_walk_lookup(pool, tree, vol, &tmp, &t, &v);
	if (r)
		return r;
	root->block = t->root->block;
	root->height = t->root->height;
	if (v)
		dd_volume_close(v);
	return 0;
}

struct dd_walker {
	struct dd_pool *pool;
	const struct dd_tree *t;
	dd_walk_fn fn;
	void *ctx;
};

/* Visits block b and, if it is a valid node and the visitor agrees, its
 * children.  The node's buffer is held while its children are visited (at
 * most DD_MAX_HEIGHT + 1 held buffers): no copy of child[] is needed. */
static int dd_walk_node(struct dd_walker *w, u64 b, u64 parent, u32 slot, u8 level, u64 first,
			u64 nr)
{
	struct dd_pool *pool = w->pool;
	const struct dd_tree *t = w->t;
	struct dd_walk_block blk;
	struct dd_buf *buf = NULL;
	u64 span;
	u32 i;
	int r;

	memset(&blk, 0, sizeof(blk));
	blk.blocknr = b;
	blk.parent = parent;
	blk.slot = slot;
	blk.tree = t->id;
	blk.level = level;
	blk.owner = t->owner;
	blk.type = level ? DD_BT_NODE : t->leaf_type;
	blk.first_leaf = first;
	blk.nr_leaves = nr;
	dd_cond_resched();
	if (b < pool->mbitmap_start + pool->mbitmap_blocks || b >= pool->nr_meta_blocks) {
		blk.error = -ERANGE;
	} else {
		r = dd_bm_read(pool->bm, b, &buf);
		if (r) {
			blk.error = r;
			buf = NULL;
		} else {
			blk.data.raw = dd_data(buf);
			/* As dd_blk_get(): the open transaction's blocks are valid
			 * by construction (stamped only at commit). */
			if (dd_aux(buf)->dirty_txn != pool->open_txn)
				blk.error = dd_block_validate(blk.data.raw, b, blk.type, blk.tree,
							      level, blk.owner);
		}
	}
	r = w->fn(w->ctx, &blk);
	if (r < 0)
		goto out;
	if (r > 0 || blk.error || !level) {
		r = 0;		/* DD_WALK_SKIP, or nothing below */
		goto out;
	}
	span = dd_div64_u64(nr, DD_NODE_FANOUT);
	for (i = 0; i < DD_NODE_FANOUT; i++) {
		u64 child = le64_to_cpu(blk.data.node->child[i]);

		if (!child)
			continue;
		r = dd_walk_node(w, child, b, i, level - 1, first + i * span, span);
		if (r)
			break;
	}
out:
	if (buf)
		dd_blk_put(buf);
	return r;
}

int dd_walk_tree(struct dd_pool *pool, enum dd_tree_id tree, u32 vol, dd_walk_fn fn, void *ctx)
{
	struct dd_walker w = { .pool = pool, .fn = fn, .ctx = ctx };
	const struct dd_tree *t;
	struct dd_tree tmp;
	struct dd_volume *v;
	int r;

	r = dd_walk_lookup(pool, tree, vol, &tmp, &t, &v);
	if (r)
		return r;
	w.t = t;
	if (!t->root->block)
		r = 0;
	else if (t->root->height > DD_MAX_HEIGHT)
		r = -EILSEQ;
	else
		r = dd_walk_node(&w, t->root->block, 0, 0, t->root->height, 0,
				 dd_tree_capacity(t->root->height));
	if (v)
		dd_volume_close(v);
	return r;
}

/* ---- per data block ---------------------------------------------------------- */

int dd_walk_record(struct dd_pool *pool, u64 pbn, struct dd_disk_rec *rec)
{
	if (pbn >= pool->nr_data_blocks)
		return -EINVAL;
	return dd_rec_read(pool, pbn, 0, rec);
}

int dd_walk_data_bit(struct dd_pool *pool, u64 pbn, bool *open_used, bool *committed_used)
{
	if (pbn >= pool->nr_data_blocks)
		return -EINVAL;
	return dd_dalloc_test(pool, pbn, open_used, committed_used);
}

bool dd_walk_data_reserved(struct dd_pool *pool, u64 pbn)
{
	return dd_resv_contains(&pool->resv, pbn);
}

/* ---- volumes ------------------------------------------------------------------- */

int dd_volume_open_any(struct dd_pool *pool, u32 id, struct dd_volume **out)
{
	return dd_vol_handle(pool, id, out);
}

struct dd_pool *dd_volume_pool(struct dd_volume *vol)
{
	return vol->pool;
}

/* ---- the format's codecs -------------------------------------------------------- */

u32 dd_walk_block_csum(const void *block, u32 type)
{
	return dd_block_csum(block, type);
}

int dd_walk_block_check(const void *block, u64 blocknr, u32 type, u8 tree, u8 level, u32 owner)
{
	return dd_block_validate(block, blocknr, type, tree, level, owner);
}

int dd_walk_sb_check(const void *block, u64 slot)
{
	return dd_sb_validate(block, slot);
}

void dd_record_decode(const struct dd_disk_rec *d, struct dd_record *rec)
{
	dd_rec_decode(d, rec);
}

void dd_map_entry_decode(u64 entry, struct dd_mapping *m)
{
	m->mapped = dd_me_mapped(entry);
	m->excl = dd_me_excl(entry);
	m->pbn = dd_me_pbn(entry);
}

void dd_walk_root_decode(const struct dd_disk_root *d, struct dd_walk_root *root)
{
	struct dd_root r;

	dd_root_decode(d, &r);
	root->block = r.block;
	root->height = r.height;
}

void dd_walk_root_encode(const struct dd_walk_root *root, struct dd_disk_root *d)
{
	struct dd_root r = { .block = root->block, .height = root->height };

	dd_root_encode(&r, d);
}

u64 dd_walk_tree_capacity(u8 height)
{
	return dd_tree_capacity(height);
}

/* ---- tests --------------------------------------------------------------------- */

/* A failed pool writes nothing on close: the close's own teardown, so that
 * nothing it frees is forgotten here. */
void dd_pool_drop(struct dd_pool *pool)
{
	pool->mode = DD_MODE_FAIL;
	pool->open_flags |= DD_OPEN_READ_ONLY;
	dd_pool_close(pool);
}

int dd_test_mref_add(struct dd_pool *pool, u64 b, int delta, u32 *now)
{
	int r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);

	if (r)
		return r;
	r = dd_mref_add(pool, b, delta, now);
	return dd_pool_settle(pool, r ? dd_tx_fail(pool, r, "changing a page reference") : 0);
}

int dd_walk_mref(struct dd_pool *pool, u64 b, u32 *extra)
{
	return dd_mref_get(pool, b, extra);
}
