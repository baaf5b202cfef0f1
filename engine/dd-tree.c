// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 2 (dd-internal.h): radix trees of metadata blocks, keyed by leaf
 * index.  Used for the volume maps, the per-PBN records, the data
 * allocation bitmap and the volume table.  Blocks are updated in place
 * inside a transaction (the journal makes that crash-safe), so a leaf
 * update never touches its parents; only creating or removing a child does.
 */
#include "dd-internal.h"

static const u64 dd_pow_fanout[DD_MAX_HEIGHT + 1] = {
	1ULL,
	508ULL,
	508ULL * 508,
	508ULL * 508 * 508,
	508ULL * 508 * 508 * 508,
	508ULL * 508 * 508 * 508 * 508,
	508ULL * 508 * 508 * 508 * 508 * 508,
};

/* Leaves addressable by a tree of the given height. */
u64 dd_tree_capacity(u8 height)
{
	return height > DD_MAX_HEIGHT ? ~0ULL : dd_pow_fanout[height];
}

/* Child slot of leaf index idx in a node at the given level (>= 1). */
static u32 dd_slot(u64 idx, u8 level)
{
	u32 rem;

	dd_div_u64_rem(dd_div64_u64(idx, dd_pow_fanout[level - 1]), DD_NODE_FANOUT, &rem);
	return rem;
}

static int dd_get_node(struct dd_pool *pool, const struct dd_tree *t, u64 b, u8 level,
		       unsigned flags, struct dd_buf **out)
{
	return dd_blk_get(pool, b, level ? DD_BT_NODE : t->leaf_type, t->id, level, t->owner,
			  flags, out);
}

static int dd_get_node_dirty(struct dd_pool *pool, const struct dd_tree *t, u64 b, u8 level,
			     struct dd_buf **out)
{
	return dd_blk_get_dirty(pool, b, level ? DD_BT_NODE : t->leaf_type, t->id, level,
				t->owner, out);
}

static int dd_new_node(struct dd_pool *pool, const struct dd_tree *t, u8 level,
		       struct dd_buf **out)
{
	return dd_blk_alloc(pool, level ? DD_BT_NODE : t->leaf_type, t->id, level, t->owner, out);
}

/* A root read from disk may claim any height; the per-level tables stop at
 * DD_MAX_HEIGHT, so a taller tree is damaged metadata. */
static int dd_tree_bad_height(const struct dd_tree *t)
{
	if (t->root->height <= DD_MAX_HEIGHT)
		return 0;
	dd_err("tree %u (owner %u) has height %u", t->id, t->owner, t->root->height);
	return -EILSEQ;
}

static u64 dd_child(struct dd_buf *node, u32 slot)
{
	return dd_node_child(dd_data(node), slot);
}

int dd_tree_find(struct dd_pool *pool, const struct dd_tree *t, u64 idx, unsigned flags,
		 struct dd_buf **leaf)
{
	u64 b = t->root->block;
	u8 level = t->root->height;
	struct dd_buf *node;
	int r;

	r = dd_tree_bad_height(t);
	if (r)
		return r;
	if (!b || idx >= dd_tree_capacity(level))
		return -ENODATA;
	if (t->root->hint_block && t->root->hint_idx == idx)
		return dd_get_node(pool, t, t->root->hint_block, 0, flags, leaf);
	for (; level > 0; level--) {
		r = dd_get_node(pool, t, b, level, flags, &node);
		if (r)
			return r;
		b = dd_child(node, dd_slot(idx, level));
		dd_blk_put(node);
		if (!b)
			return -ENODATA;
	}
	r = dd_get_node(pool, t, b, 0, flags, leaf);
	if (!r) {
		t->root->hint_idx = idx;
		t->root->hint_block = b;
	}
	return r;
}

/* Add levels on top until idx fits. */
static int dd_tree_grow(struct dd_pool *pool, const struct dd_tree *t, u64 idx)
{
	struct dd_root *root = t->root;
	struct dd_buf *node;
	void *n;
	int r;

	if (!root->block) {
		while (idx >= dd_tree_capacity(root->height))
			root->height++;
		return 0;
	}
	while (idx >= dd_tree_capacity(root->height)) {
		if (root->height >= DD_MAX_HEIGHT)
			return -EINVAL;
		r = dd_new_node(pool, t, root->height + 1, &node);
		if (r)
			return r;
		n = dd_data(node);
		dd_node_set_child(n, 0, root->block);
		dd_block_set_count(n, 1);
		root->block = dd_buf_blocknr(node);
		root->height++;
		dd_blk_put(node);
	}
	return 0;
}

int dd_tree_find_dirty(struct dd_pool *pool, const struct dd_tree *t, u64 idx, bool create,
		       struct dd_buf **leaf)
{
	struct dd_root *root = t->root;
	struct dd_buf *node, *child;
	void *n;
	u8 level;
	u64 b;
	u32 slot;
	int r;

	if (!create) {
		r = dd_tree_find(pool, t, idx, 0, &node);
		if (r)
			return r;
		r = dd_blk_make_dirty(pool, node);
		if (r) {
			dd_blk_put(node);
			return r;
		}
		*leaf = node;
		return 0;
	}

	r = dd_tree_bad_height(t);
	if (!r)
		r = dd_tree_grow(pool, t, idx);
	if (r)
		return r;
	if (!root->block) {
		r = dd_new_node(pool, t, root->height, &node);
		if (r)
			return r;
		root->block = dd_buf_blocknr(node);
		dd_blk_put(node);
	}
	b = root->block;
	for (level = root->height; level > 0; level--) {
		slot = dd_slot(idx, level);
		r = dd_get_node(pool, t, b, level, 0, &node);
		if (r)
			return r;
		if (!dd_child(node, slot)) {
			dd_blk_put(node);
			r = dd_get_node_dirty(pool, t, b, level, &node);
			if (r)
				return r;
			r = dd_new_node(pool, t, level - 1, &child);
			if (r) {
				dd_blk_put(node);
				return r;
			}
			n = dd_data(node);
			dd_node_set_child(n, slot, dd_buf_blocknr(child));
			dd_block_count_add(n, 1);
			dd_blk_put(child);
		}
		b = dd_child(node, slot);
		dd_blk_put(node);
	}
	r = dd_get_node_dirty(pool, t, b, 0, leaf);
	if (!r) {
		root->hint_idx = idx;
		root->hint_block = b;
	}
	return r;
}

/* Free leaf idx (which must exist) and every ancestor it leaves empty. */
int dd_tree_remove(struct dd_pool *pool, const struct dd_tree *t, u64 idx)
{
	struct dd_root *root = t->root;
	u64 path[DD_MAX_HEIGHT + 1];
	struct dd_buf *node;
	void *n;
	u8 level;
	u64 b = root->block;
	u16 count;
	int r;

	r = dd_tree_bad_height(t);
	if (r)
		return r;
	if (!b || idx >= dd_tree_capacity(root->height))
		return -ENODATA;
	root->hint_block = 0;
	for (level = root->height; level > 0; level--) {
		path[level] = b;
		r = dd_get_node(pool, t, b, level, 0, &node);
		if (r)
			return r;
		b = dd_child(node, dd_slot(idx, level));
		dd_blk_put(node);
		if (!b)
			return -ENODATA;
	}
	r = dd_blk_free(pool, b);
	if (r)
		return r;
	for (level = 1; level <= root->height; level++) {
		r = dd_get_node_dirty(pool, t, path[level], level, &node);
		if (r)
			return r;
		n = dd_data(node);
		dd_node_set_child(n, dd_slot(idx, level), 0);
		count = dd_block_count_add(n, -1);
		dd_blk_put(node);
		if (count)
			return 0;
		r = dd_blk_free(pool, path[level]);
		if (r)
			return r;
	}
	root->block = 0;
	root->height = 0;
	return 0;
}

static int dd_tree_next_in(struct dd_pool *pool, const struct dd_tree *t, u64 b, u8 level,
			   u64 base, u64 idx, bool last, u64 *found)
{
	struct dd_buf *node;
	u64 span, child;
	u32 slot, first;
	int r, i;

	if (!level) {
		*found = base;
		return 0;
	}
	r = dd_get_node(pool, t, b, level, 0, &node);
	if (r)
		return r;
	span = dd_pow_fanout[level - 1];
	first = (!last && idx > base) ? dd_slot(idx, level) : 0;
	r = -ENODATA;
	for (i = 0; i < (int)(DD_NODE_FANOUT - first); i++) {
		slot = last ? DD_NODE_FANOUT - 1 - i : first + i;
		child = dd_child(node, slot);
		if (!child)
			continue;
		r = dd_tree_next_in(pool, t, child, level - 1, base + slot * span,
				    (last || slot != first) ? 0 : idx, last, found);
		if (r != -ENODATA)
			break;
	}
	dd_blk_put(node);
	return r;
}

/* First existing leaf with index >= idx. */
int dd_tree_next(struct dd_pool *pool, const struct dd_tree *t, u64 idx, u64 *found)
{
	if (dd_tree_bad_height(t))
		return -EILSEQ;
	if (!t->root->block || idx >= dd_tree_capacity(t->root->height))
		return -ENODATA;
	return dd_tree_next_in(pool, t, t->root->block, t->root->height, 0, idx, false, found);
}

/* Existing leaf with the highest index. */
int dd_tree_last(struct dd_pool *pool, const struct dd_tree *t, u64 *found)
{
	if (dd_tree_bad_height(t))
		return -EILSEQ;
	if (!t->root->block)
		return -ENODATA;
	return dd_tree_next_in(pool, t, t->root->block, t->root->height, 0, 0, true, found);
}
