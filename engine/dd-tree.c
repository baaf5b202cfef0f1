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
	if (t->cow)
		return dd_tree_find_shared(pool, t, idx, flags, leaf, NULL);
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

/* ---- shared pages: the path test and copy-on-write (docs/snapshots.md) --- */

static int dd_mref_get_flags(struct dd_pool *pool, u64 b, unsigned flags, u32 *extra);

int dd_tree_find_shared(struct dd_pool *pool, const struct dd_tree *t, u64 idx, unsigned flags,
			struct dd_buf **leaf, bool *shared)
{
	u64 b = t->root->block;
	u8 level = t->root->height;
	bool test = pool->mrefs_root.block != 0;
	struct dd_buf *node;
	u32 extra;
	int r;

	if (shared)
		*shared = false;
	r = dd_tree_bad_height(t);
	if (r)
		return r;
	if (!b || idx >= dd_tree_capacity(level))
		return -ENODATA;
	for (;; level--) {
		if (test && shared && !*shared) {
			r = dd_mref_get_flags(pool, b, flags, &extra);
			if (r)
				return r;
			*shared = extra != 0;
		}
		if (!level)
			break;
		r = dd_get_node(pool, t, b, level, flags, &node);
		if (r)
			return r;
		b = dd_child(node, dd_slot(idx, level));
		dd_blk_put(node);
		if (!b)
			return -ENODATA;
	}
	return dd_get_node(pool, t, b, 0, flags, leaf);
}

/* Distinct values of v[0..n) / div (n <= DD_NODE_FANOUT), for the worst
 * case of a step: each is one leaf of another tree that the step dirties. */
u32 dd_distinct_leaves(u64 *v, u32 n, u32 div)
{
	u32 i, j, d = 0;

	for (i = 0; i < n; i++) {
		u64 li = dd_div_u64_rem(v[i], div, &j);

		for (j = 0; j < d && v[j] != li; j++)
			;
		if (j == d)
			v[d++] = li;
	}
	return d;
}

/* Worst-case blocks that copying node n dirties: its children's counts
 * change, a mrefs leaf and its path (with their bitmap pages) each. */
static u32 dd_node_cost(struct dd_pool *pool, const void *n)
{
	u64 *v = pool->scratch;		/* DD_BLOCK_SIZE bytes: 512 u64 */
	u32 i, k = 0, d;

	for (i = 0; i < DD_NODE_FANOUT; i++)
		if (dd_node_child(n, i))
			v[k++] = dd_node_child(n, i);
	d = dd_distinct_leaves(v, k, DD_MREFS_PER_LEAF);
	return DD_COW_FIXED_DIRTY + d * 2 * (pool->mrefs_root.height + 3);
}

/* Copies the shared page b at level on the path to leaf idx (parent: the
 * exclusive node above, 0 for the root).  Room is reserved by the caller. */
static int dd_cow_page(struct dd_pool *pool, const struct dd_tree *t, u64 idx, u64 b, u8 level,
		       u64 parent)
{
	struct dd_buf *old, *copy, *pnode;
	u32 i;
	u64 c;
	int r;

	r = level ? dd_get_node(pool, t, b, level, 0, &old) : dd_get_node_dirty(pool, t, b, 0, &old);
	if (r)
		return r;
	r = dd_new_node(pool, t, level, &copy);
	if (r) {
		dd_blk_put(old);
		return r;
	}
	memcpy((u8 *)dd_data(copy) + sizeof(struct dd_disk_header),
	       (const u8 *)dd_data(old) + sizeof(struct dd_disk_header), DD_PAYLOAD_SIZE);
	dd_block_set_count(dd_data(copy), dd_block_count(dd_data(old)));
	if (level) {
		for (i = 0; i < DD_NODE_FANOUT && !r; i++) {
			c = dd_child(old, i);
			if (c)
				r = dd_mref_add(pool, c, 1, NULL);
		}
	} else {
		r = t->cow->leaf_copied(pool, dd_data(old), dd_data(copy));
	}
	dd_blk_put(old);
	if (!r)
		r = dd_mref_add(pool, b, -1, NULL);
	if (!r && parent) {
		r = dd_get_node_dirty(pool, t, parent, level + 1, &pnode);
		if (!r) {
			u32 slot = dd_slot(idx, level + 1);

			if (dd_child(pnode, slot) == b)
				dd_node_set_child(dd_data(pnode), slot, dd_buf_blocknr(copy));
			else
				r = -EILSEQ;
			dd_blk_put(pnode);
		}
	} else if (!r) {
		t->root->block = dd_buf_blocknr(copy);
		t->cow->root_moved(t);
	}
	t->root->hint_block = 0;
	dd_blk_put(copy);
	return r;
}

int dd_tree_unshare(struct dd_pool *pool, const struct dd_tree *t, u64 idx, u32 *copied)
{
	struct dd_buf *node;
	u64 b, parent;
	u32 extra, cost, slack;
	u8 level;
	int r;

	*copied = 0;
	if (!t->cow)
		return 0;
	for (;;) {
		if (!pool->mrefs_root.block)
			return 0;
		r = dd_tree_bad_height(t);
		if (r)
			return r;
		b = t->root->block;
		level = t->root->height;
		parent = 0;
		if (!b || idx >= dd_tree_capacity(level))
			return 0;
		/* Down to the first shared page: those above it are exclusive. */
		for (;;) {
			r = dd_mref_get(pool, b, &extra);
			if (r)
				return r;
			if (extra || !level)
				break;
			r = dd_get_node(pool, t, b, level, 0, &node);
			if (r)
				return r;
			parent = b;
			b = dd_child(node, dd_slot(idx, level));
			dd_blk_put(node);
			if (!b)
				return 0;	/* created exclusive below */
			level--;
		}
		if (!extra)
			return 0;
		r = dd_get_node(pool, t, b, level, 0, &node);
		if (r)
			return r;
		cost = level ? dd_node_cost(pool, dd_data(node)) :
			       DD_COW_FIXED_DIRTY + t->cow->leaf_cost(pool, dd_data(node));
		dd_blk_put(node);
		slack = DD_OP_MAX_DIRTY + DD_MAX_DIRTY_VOLS + pool->pre_commit_room;
		if (cost + slack > pool->journal_blocks) {
			dd_err("copying a shared map page needs %u journal blocks, the journal has %u",
			       cost, pool->journal_blocks);
			return -EFBIG;
		}
		r = dd_tx_reserve(pool, cost);
		if (r)
			return r;
		/* A commit in the reservation changes no pointer: b and parent
		 * still hold. */
		r = dd_cow_page(pool, t, idx, b, level, parent);
		if (r)
			return dd_tx_fail(pool, r, "copying a shared map page");
		(*copied)++;
		dd_cond_resched();
	}
}

/* ---- reference counts of shared map pages (docs/snapshots.md) -------------
 * The mrefs tree is an ordinary radix tree (never shared itself) keyed by
 * metadata block number / DD_MREFS_PER_LEAF.  An entry holds the parents a
 * page has beyond its first; a page with one parent has no entry, so a pool
 * without shared pages has an empty tree.  A change dirties the leaf (and
 * creates its path, or frees it once empty): at most DD_MREF_MAX_DIRTY
 * blocks, DD_MREF_MAX_ALLOC of them new.
 */
static u64 dd_mref_leaf(u64 b, u32 *slot)
{
	return dd_div_u64_rem(b, DD_MREFS_PER_LEAF, slot);
}

int dd_mref_get(struct dd_pool *pool, u64 b, u32 *extra)
{
	return dd_mref_get_flags(pool, b, 0, extra);
}

static int dd_mref_get_flags(struct dd_pool *pool, u64 b, unsigned flags, u32 *extra)
{
	struct dd_buf *leaf;
	u32 slot;
	int r;

	*extra = 0;
	if (!pool->mrefs_root.block)
		return 0;
	r = dd_tree_find(pool, &pool->mrefs_tree, dd_mref_leaf(b, &slot), flags, &leaf);
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	*extra = le32_to_cpu(((struct dd_disk_mrefs_leaf *)dd_data(leaf))->extra[slot]);
	dd_blk_put(leaf);
	return 0;
}

int dd_mref_add(struct dd_pool *pool, u64 b, int delta, u32 *now)
{
	struct dd_disk_mrefs_leaf *l;
	struct dd_buf *leaf;
	u32 slot, old, val;
	u64 li = dd_mref_leaf(b, &slot);
	u16 count;
	int r;

	r = dd_mref_get(pool, b, &old);
	if (r)
		return r;
	if ((delta < 0 && old < (u32)-delta) || (delta > 0 && old > 0xffffffffu - (u32)delta)) {
		dd_err("metadata block %llu: %u extra parents, changed by %d",
		       (unsigned long long)b, old, delta);
		return delta < 0 ? -EILSEQ : -EOVERFLOW;
	}
	val = old + (u32)delta;
	if (now)
		*now = val;
	if (val == old)
		return 0;
	r = dd_tree_find_dirty(pool, &pool->mrefs_tree, li, val != 0, &leaf);
	if (r)
		return r == -ENODATA ? -EILSEQ : r;
	l = dd_data(leaf);
	l->extra[slot] = cpu_to_le32(val);
	count = dd_block_count_add(l, (val != 0) - (old != 0));
	dd_blk_put(leaf);
	if (!(pool->incompat & DD_INCOMPAT_SHARED_MAPS)) {
		/* Sharing starts: from this commit on, an engine that does not
		 * know shared pages must refuse the pool (docs/format.md). */
		pool->incompat |= DD_INCOMPAT_SHARED_MAPS;
		pool->sb_dirty = true;
	}
	if (count)
		return 0;
	return dd_tree_remove(pool, &pool->mrefs_tree, li);
}

/* Sum of the header counts of the leaves below block b at level. */
static int dd_tree_sum_leaves(struct dd_pool *pool, const struct dd_tree *t, u64 b, u8 level,
			      u64 *sum)
{
	struct dd_buf *node;
	u32 i;
	int r;

	r = dd_get_node(pool, t, b, level, 0, &node);
	if (r)
		return r;
	if (!level) {
		*sum += dd_block_count(dd_data(node));
		dd_blk_put(node);
		return 0;
	}
	for (i = 0; i < DD_NODE_FANOUT && !r; i++) {
		u64 c = dd_child(node, i);

		if (c)
			r = dd_tree_sum_leaves(pool, t, c, level - 1, sum);
	}
	dd_blk_put(node);
	dd_cond_resched();
	return r;
}

/*
 * Detaches this tree from the first shared page on the path to leaf idx:
 * the page loses a parent, the slot (or the root) that held it is cleared,
 * and exclusive nodes left empty are freed.  *entries: the live entries of
 * the leaves below it (read-only count), no longer reached by this tree, or
 * ~0 for the root (the tree's own count says how many);
 * *detached false (nothing changed) if the path is exclusive.  Dirties at
 * most DD_OP_MAX_DIRTY blocks and allocates none.
 */
int dd_tree_detach(struct dd_pool *pool, const struct dd_tree *t, u64 idx, bool *detached,
		   u64 *entries)
{
	struct dd_root *root = t->root;
	u64 path[DD_MAX_HEIGHT + 1], b = root->block;
	struct dd_buf *node;
	u32 extra;
	u8 level = root->height, l;
	int r;

	*detached = false;
	*entries = 0;
	r = dd_tree_bad_height(t);
	if (r)
		return r;
	if (!b || idx >= dd_tree_capacity(level))
		return 0;
	for (;;) {
		r = dd_mref_get(pool, b, &extra);
		if (r)
			return r;
		if (extra)
			break;
		if (!level)
			return 0;
		path[level] = b;
		r = dd_get_node(pool, t, b, level, 0, &node);
		if (r)
			return r;
		b = dd_child(node, dd_slot(idx, level));
		dd_blk_put(node);
		if (!b)
			return 0;
		level--;
	}
	if (level == root->height)
		*entries = ~0ULL;	/* the root: everything the tree reached */
	else
		r = dd_tree_sum_leaves(pool, t, b, level, entries);
	if (!r)
		r = dd_mref_add(pool, b, -1, NULL);
	if (r)
		return r;
	*detached = true;
	/* The pages below may have one parent now, and exclusive bits set
	 * from before they were shared: not trusted until the commit. */
	pool->mrefs_txn = pool->open_txn;
	root->hint_block = 0;
	for (l = level + 1; l <= root->height; l++) {
		u16 count;

		r = dd_get_node_dirty(pool, t, path[l], l, &node);
		if (r)
			return r;
		dd_node_set_child(dd_data(node), dd_slot(idx, l), 0);
		count = dd_block_count_add(dd_data(node), -1);
		dd_blk_put(node);
		if (count)
			return 0;
		r = dd_blk_free(pool, path[l]);
		if (r)
			return r;
	}
	root->block = 0;
	root->height = 0;
	return 0;
}
