// SPDX-License-Identifier: GPL-2.0
/*
 * The read-only inspection API (engine/dd-walk.h) that the check, the dump
 * and the tests stand on: the tree walk visits every block once, top-down,
 * with the leaf range it covers; it reports damage per block and goes on;
 * it sees the open transaction; nothing it does writes the device.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include "dd-walk.h"

#define META	1024
#define DATA	4000

/*
 * Three map leaves under a tree of height 3, leaf indexes 0, 1016, 258064:
 * in visiting order the root, a level-2 node (leaves from 0) with two
 * level-1 nodes (from 0: leaf 0; from 1016: leaf 1016), and a level-2 node
 * (from 258064) with one level-1 node and leaf 258064.
 */
static const u64 tall_lbns[] = {
	0, 1, 9, 507, 508ULL * 508 * 2 + 5, 508ULL * 508 * 508 + 3,
};
#define NR_TALL (sizeof(tall_lbns) / sizeof(tall_lbns[0]))
#define TALL_BLOCKS 9

static void write_tall_map(struct tpool *tp, u32 id)
{
	struct dd_volume *v;
	u32 i;

	assert_int_equal(dd_volume_create(tp->pool, id), 0);
	assert_int_equal(dd_volume_open(tp->pool, id, &v), 0);
	for (i = 0; i < NR_TALL; i++)
		assert_int_equal(tp_write(v, tall_lbns[i], NULL), 0);
	dd_volume_close(v);
}

/* ---- a visitor that records what it saw ---- */

#define MAX_SEEN 64

struct seen {
	u32 n;
	struct dd_walk_block blk[MAX_SEEN];
	u8 data[MAX_SEEN][DD_BLOCK_SIZE];
	bool had_data[MAX_SEEN];
	int skip_level;		/* return DD_WALK_SKIP at this level (-1: never) */
	u32 stop_after;		/* return -EINTR after this many visits (0: never) */
};

static int record_visit(void *ctx, const struct dd_walk_block *blk)
{
	struct seen *s = ctx;

	assert_true(s->n < MAX_SEEN);
	s->blk[s->n] = *blk;
	s->had_data[s->n] = blk->data.raw != NULL;
	if (blk->data.raw)
		memcpy(s->data[s->n], blk->data.raw, DD_BLOCK_SIZE);
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return -EINTR;
	return blk->level == s->skip_level ? DD_WALK_SKIP : 0;
}

static struct seen *seen_new(void)
{
	struct seen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->skip_level = -1;
	return s;
}

static u64 pow508(u8 n)
{
	u64 r = 1;

	while (n--)
		r *= DD_NODE_FANOUT;
	return r;
}

/* The index of the visit of block b, or -1. */
static int find_visit(const struct seen *s, u64 b)
{
	u32 i;

	for (i = 0; i < s->n; i++)
		if (s->blk[i].blocknr == b)
			return (int)i;
	return -1;
}

/* ---- the walk ---- */

static void walk_visits_each_block_of_a_map_once_top_down_with_its_leaf_range(void **state)
{
	struct tpool tp = { 0 };
	struct dd_walk_root root;
	struct seen *s = seen_new();
	struct dd_volume *v;
	u64 last_leaf = 0;
	u32 i, leaves = 0, k;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 4);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_reopen(&tp), 0);

	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAP, 4, &root), 0);
	assert_int_equal(root.height, 3);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 4, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	assert_int_equal(s->blk[0].blocknr, root.block);
	assert_int_equal(s->blk[0].parent, 0);
	assert_int_equal(dd_walk_tree_capacity(3), pow508(3));
	assert_int_equal(s->blk[0].nr_leaves, pow508(3));

	assert_int_equal(dd_volume_open(tp.pool, 4, &v), 0);
	for (i = 0; i < s->n; i++) {
		const struct dd_walk_block *b = &s->blk[i];
		const struct dd_disk_header *h = (const void *)s->data[i];

		assert_int_equal(b->error, 0);
		assert_true(s->had_data[i]);
		assert_int_equal(b->tree, DD_TREE_MAP);
		assert_int_equal(b->owner, 4);
		assert_int_equal(b->type, b->level ? DD_BT_NODE : DD_BT_MAP);
		assert_int_equal(h->level, b->level);
		assert_int_equal(le64_to_cpu(h->blocknr), b->blocknr);
		assert_int_equal(dd_walk_block_check(h, b->blocknr, b->type, b->tree, b->level,
						     b->owner), 0);
		assert_int_equal(b->nr_leaves, pow508(b->level));
		assert_int_equal(b->first_leaf % b->nr_leaves, 0);
		assert_int_equal(find_visit(s, b->blocknr), (int)i);	/* once */
		if (i) {
			/* Its parent came before it and points at it from its slot. */
			int p = find_visit(s, b->parent);
			const struct dd_disk_node *n;

			assert_true(p >= 0 && p < (int)i);
			n = (const void *)s->data[p];
			assert_int_equal(le64_to_cpu(n->child[b->slot]), b->blocknr);
			assert_int_equal(s->blk[p].level, b->level + 1);
			assert_int_equal(b->first_leaf,
					 s->blk[p].first_leaf + b->slot * b->nr_leaves);
		}
		if (b->level)
			continue;
		/* Leaves come in index order and hold what the map says. */
		assert_true(!leaves || b->first_leaf > last_leaf);
		last_leaf = b->first_leaf;
		leaves++;
		for (k = 0; k < DD_MAP_ENTRIES; k++) {
			const struct dd_disk_map_leaf *l = (const void *)s->data[i];
			struct dd_mapping from_leaf, lookup;

			dd_map_entry_decode(le64_to_cpu(l->entry[k]), &from_leaf);
			assert_int_equal(dd_map_lookup(v, b->first_leaf * DD_MAP_ENTRIES + k, 0,
						       &lookup), 0);
			assert_int_equal(from_leaf.mapped, lookup.mapped);
			if (lookup.mapped) {
				assert_int_equal(from_leaf.pbn, lookup.pbn);
				assert_int_equal(from_leaf.excl, lookup.excl);
			}
		}
	}
	assert_int_equal(leaves, 3);
	assert_int_equal(last_leaf, tall_lbns[NR_TALL - 1] / DD_MAP_ENTRIES);
	dd_volume_close(v);
	free(s);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

static void walk_sees_the_open_transaction(void **state)
{
	struct tpool tp = { 0 };
	struct seen *s = seen_new();
	struct dd_pool_stats st;
	u32 i, leaves = 0;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 2);
	dd_pool_get_stats(tp.pool, &st);
	assert_true(st.nr_dirty > 0);	/* nothing committed: every block is new */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 2, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	for (i = 0; i < s->n; i++) {
		assert_int_equal(s->blk[i].error, 0);
		leaves += !s->blk[i].level;
	}
	assert_int_equal(leaves, 3);
	free(s);
	tp_destroy(&tp);
}

static void a_visitor_skips_children_or_stops_the_walk(void **state)
{
	struct tpool tp = { 0 };
	struct seen *s = seen_new();
	u32 i;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 1);

	s->skip_level = 3;		/* the root */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), 0);
	assert_int_equal(s->n, 1);

	memset(s, 0, sizeof(*s));
	s->skip_level = 1;		/* the nodes just above the leaves */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS - 3);
	for (i = 0; i < s->n; i++)
		assert_true(s->blk[i].level >= 1);

	memset(s, 0, sizeof(*s));
	s->skip_level = -1;
	s->stop_after = 4;		/* root, level 2, level 1, the first leaf */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), -EINTR);
	assert_int_equal(s->n, 4);
	assert_int_equal(s->blk[3].level, 0);
	assert_int_equal(s->blk[3].first_leaf, 0);
	free(s);
	tp_destroy(&tp);
}

/* ---- damage ---- */

static void poke_fixed(struct dd_ramdev *rd, u64 b, void *blk)
{
	struct dd_disk_header *h = blk;

	h->csum = cpu_to_le32(dd_walk_block_csum(blk, le32_to_cpu(h->type)));
	dd_ramdev_poke(rd, b, blk);
}

static void damage_is_reported_per_block_and_the_walk_goes_on(void **state)
{
	struct tpool tp = { 0 };
	struct seen *s = seen_new();
	struct dd_walk_root root;
	struct dd_walk_info g;
	union {
		u8 raw[DD_BLOCK_SIZE];
		struct dd_disk_header hdr;
		struct dd_disk_node node;
	} u;
	u64 leaf0, leaf1, node_l1;
	u32 slot;
	int i;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 1);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	leaf0 = s->blk[3].blocknr;
	node_l1 = s->blk[4].blocknr;	/* leaves from 1016 */
	leaf1 = s->blk[5].blocknr;
	assert_int_equal(s->blk[3].first_leaf, 0);
	assert_int_equal(s->blk[4].level, 1);
	assert_int_equal(s->blk[4].first_leaf, 1016);
	assert_int_equal(s->blk[5].first_leaf, 1016);
	dd_walk_get_info(tp.pool, &g);
	tp_close(&tp);

	/* A stale checksum on the first leaf: reported with its contents, and
	 * its sibling is still visited. */
	memcpy(u.raw, dd_ramdev_block(tp.rd, leaf0), DD_BLOCK_SIZE);
	u.raw[DD_BLOCK_SIZE - 1] ^= 1;
	dd_ramdev_poke(tp.rd, leaf0, u.raw);
	assert_int_equal(tp_open(&tp), 0);
	memset(s, 0, sizeof(*s));
	s->skip_level = -1;
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	i = find_visit(s, leaf0);
	assert_true(i >= 0);
	assert_int_equal(s->blk[i].error, -EILSEQ);
	assert_true(s->had_data[i]);
	assert_memory_equal(s->data[i], u.raw, DD_BLOCK_SIZE);
	assert_int_equal(dd_walk_block_check(s->data[i], leaf0, DD_BT_MAP, DD_TREE_MAP, 0, 1),
			 -EILSEQ);
	i = find_visit(s, leaf1);
	assert_true(i >= 0);
	assert_int_equal(s->blk[i].error, 0);
	tp_close(&tp);

	/* A child pointer into the journal: not read, reported out of range. */
	memcpy(u.raw, dd_ramdev_block(tp.rd, node_l1), DD_BLOCK_SIZE);
	slot = 1016 % DD_NODE_FANOUT;
	assert_int_equal(le64_to_cpu(u.node.child[slot]), leaf1);
	u.node.child[slot] = cpu_to_le64(g.journal_start + 1);
	poke_fixed(tp.rd, node_l1, u.raw);
	assert_int_equal(tp_open(&tp), 0);
	memset(s, 0, sizeof(*s));
	s->skip_level = -1;
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	i = find_visit(s, g.journal_start + 1);
	assert_true(i >= 0);
	assert_int_equal(s->blk[i].error, -ERANGE);
	assert_false(s->had_data[i]);
	assert_int_equal(s->blk[i].parent, node_l1);
	assert_int_equal(s->blk[i].slot, slot);
	assert_int_equal(s->blk[i].first_leaf, 1016);

	/* A root taller than the format allows: nothing is visited. */
	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_VOLS, 0, &root), 0);
	assert_int_not_equal(root.block, 0);
	assert_int_equal(root.height, 0);	/* the one leaf */
	tp_close(&tp);
	{
		struct dd_disk_vols_leaf *l = (void *)u.raw;

		memcpy(u.raw, dd_ramdev_block(tp.rd, root.block), DD_BLOCK_SIZE);
		l->vol[1].map.height = DD_MAX_HEIGHT + 1;
		poke_fixed(tp.rd, root.block, u.raw);
	}
	assert_int_equal(tp_open(&tp), 0);
	memset(s, 0, sizeof(*s));
	s->skip_level = -1;
	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAP, 1, &root), 0);
	assert_int_equal(root.height, DD_MAX_HEIGHT + 1);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 1, record_visit, s), -EILSEQ);
	assert_int_equal(s->n, 0);
	free(s);
	tp_destroy(&tp);
}

/* ---- naming trees and volumes ---- */

static void trees_are_named_by_id_and_deleted_volumes_stay_readable(void **state)
{
	struct tpool tp = { 0 };
	struct seen *s = seen_new();
	struct dd_walk_root root;
	struct dd_volume *v;
	struct dd_mapping m;
	u64 lbn = 0;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 3);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_NONE, 0, record_visit, s), -EINVAL);
	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAX, 0, &root), -EINVAL);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 99, record_visit, s), -ENOENT);
	assert_int_equal(dd_walk_root(tp.pool, DD_TREE_MAP, 99, &root), -ENOENT);
	assert_int_equal(dd_volume_open_any(tp.pool, 99, &v), -ENOENT);
	/* The scanner's trees are empty in version 1. */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_WRITTEN, 0, record_visit, s), 0);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_INDEX, 0, record_visit, s), 0);
	assert_int_equal(s->n, 0);
	/* The pool's trees: one leaf each here. */
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_VOLS, 0, record_visit, s), 0);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_REFS, 0, record_visit, s), 0);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_DALLOC, 0, record_visit, s), 0);
	assert_int_equal(s->n, 3);
	assert_int_equal(s->blk[0].type, DD_BT_VOLS);
	assert_int_equal(s->blk[1].type, DD_BT_REFS);
	assert_int_equal(s->blk[2].type, DD_BT_DBITMAP);
	assert_int_equal(s->blk[2].tree, DD_TREE_DALLOC);

	/* A deleted volume: gone for dd_volume_open, readable until reclaimed. */
	assert_int_equal(dd_volume_delete(tp.pool, 3), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(dd_volume_open(tp.pool, 3, &v), -ENOENT);
	assert_int_equal(dd_volume_open_any(tp.pool, 3, &v), 0);
	assert_ptr_equal(dd_volume_pool(v), tp.pool);
	assert_int_equal(dd_volume_mapped(v), NR_TALL);
	assert_int_equal(dd_map_next(v, &lbn, &m), 0);
	assert_int_equal(lbn, 0);
	dd_volume_close(v);
	memset(s, 0, sizeof(*s));
	s->skip_level = -1;
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 3, record_visit, s), 0);
	assert_int_equal(s->n, TALL_BLOCKS);
	free(s);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

/* ---- the pool and its raw blocks ---- */

static int count_visit(void *ctx, const struct dd_walk_block *blk)
{
	(*(u32 *)ctx)++;
	return 0;
}

static void info_and_raw_blocks_describe_the_pool_and_nothing_is_written(void **state)
{
	struct tpool tp = { 0 };
	struct dd_disk_superblock *sb = malloc(sizeof(*sb));
	struct dd_walk_info g;
	struct dd_pool_stats st;
	u8 *blk = malloc(DD_BLOCK_SIZE);
	u64 writes, b;
	u32 n = 0, id;

	assert_non_null(sb);
	assert_non_null(blk);
	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 1);
	write_tall_map(&tp, 2);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	dd_walk_get_info(tp.pool, &g);
	dd_pool_get_stats(tp.pool, &st);

	/* The superblock of the last commit says what the info says. */
	assert_int_equal(g.committed_txn, st.txn);
	assert_int_equal(g.sb_slot, st.txn % DD_SB_SLOTS);
	assert_int_equal(dd_walk_read_block(tp.pool, g.sb_slot, sb), 0);
	assert_int_equal(dd_walk_sb_check(sb, g.sb_slot), 0);
	assert_int_equal(dd_walk_sb_check(sb, !g.sb_slot), -EILSEQ);
	assert_int_equal(le64_to_cpu(sb->hdr.txn), g.committed_txn);
	assert_int_equal(le64_to_cpu(sb->nr_meta_blocks), g.nr_meta_blocks);
	assert_int_equal(le64_to_cpu(sb->nr_data_blocks), g.nr_data_blocks);
	assert_int_equal(le64_to_cpu(sb->journal_start), g.journal_start);
	assert_int_equal(le32_to_cpu(sb->journal_blocks), g.journal_blocks);
	assert_int_equal(le64_to_cpu(sb->mbitmap_start), g.mbitmap_start);
	assert_int_equal(le32_to_cpu(sb->mbitmap_blocks), g.mbitmap_blocks);
	assert_int_equal(g.first_tree_block, g.mbitmap_start + g.mbitmap_blocks);
	assert_int_equal(le32_to_cpu(sb->data_block_sectors), g.data_block_sectors);
	assert_memory_equal(sb->uuid, g.uuid, sizeof(g.uuid));
	assert_int_equal(le64_to_cpu(sb->stats.data_used), g.data_used);
	assert_int_equal(le64_to_cpu(sb->stats.meta_used), g.meta_used);
	assert_int_equal(le64_to_cpu(sb->stats.mapped_blocks), g.mapped_blocks);
	assert_int_equal(le64_to_cpu(sb->stats.shared_blocks), g.shared_blocks);
	assert_int_equal(le32_to_cpu(sb->nr_volumes), g.nr_volumes);
	assert_int_equal(g.nr_volumes, 2);
	assert_int_equal(g.mapped_blocks, 2 * NR_TALL);
	assert_false(g.needs_check);
	assert_int_equal(dd_walk_read_block(tp.pool, g.nr_meta_blocks, blk), -ERANGE);
	assert_int_equal(dd_walk_read_block(tp.pool, g.mbitmap_start, blk), 0);
	assert_int_equal(dd_walk_block_check(blk, g.mbitmap_start, DD_BT_MBITMAP, DD_TREE_NONE,
					     0, 0), 0);

	/* Reading everything writes nothing. */
	writes = dd_ramdev_nr_writes(tp.rd);
	for (b = 0; b < g.nr_meta_blocks; b++)
		assert_int_equal(dd_walk_read_block(tp.pool, b, blk), 0);
	for (id = DD_TREE_VOLS; id < DD_TREE_MAX; id++)
		assert_int_equal(dd_walk_tree(tp.pool, id, id == DD_TREE_MAP ? 1 : 0, count_visit,
					      &n), 0);
	assert_int_equal(dd_walk_tree(tp.pool, DD_TREE_MAP, 2, count_visit, &n), 0);
	/* vols, refs, dalloc and written-marks leaves, and the two maps */
	assert_int_equal(n, 4 + 2 * TALL_BLOCKS);
	assert_int_equal(dd_ramdev_nr_writes(tp.rd), writes);
	assert_false(dd_pool_dirty(tp.pool));
	free(sb);
	free(blk);
	tp_destroy(&tp);
}

static void per_block_queries_follow_the_open_and_the_committed_state(void **state)
{
	struct tpool tp = { 0 };
	struct dd_disk_rec d;
	struct dd_record rec, got;
	struct dd_volume *v;
	bool open_used, committed_used;
	u64 pbn, fresh, resv;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	assert_int_equal(dd_volume_create(tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	assert_int_equal(tp_write(v, 7, &pbn), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);

	assert_int_equal(dd_walk_record(tp.pool, pbn, &d), 0);
	dd_record_decode(&d, &rec);
	assert_int_equal(dd_record_get(tp.pool, pbn, &got), 0);
	assert_int_equal(rec.refcount, got.refcount);
	assert_int_equal(rec.owned, got.owned);
	assert_int_equal(rec.owner_vol, got.owner_vol);
	assert_int_equal(rec.owner_lbn, got.owner_lbn);
	assert_int_equal(rec.domain, got.domain);
	assert_int_equal(rec.merged, got.merged);
	assert_int_equal(rec.refcount, 1);
	assert_true(rec.owned);
	assert_int_equal(rec.owner_vol, 1);
	assert_int_equal(rec.owner_lbn, 7);
	assert_int_equal(dd_walk_data_bit(tp.pool, pbn, &open_used, &committed_used), 0);
	assert_true(open_used && committed_used);
	assert_int_equal(dd_walk_record(tp.pool, DATA, &d), -EINVAL);
	assert_int_equal(dd_walk_data_bit(tp.pool, DATA, &open_used, &committed_used), -EINVAL);

	/* Overwritten in the open transaction: the old block is free now but
	 * was used at the last commit; the new one the other way round. */
	assert_int_equal(tp_write(v, 7, &fresh), 0);
	assert_int_equal(dd_walk_data_bit(tp.pool, pbn, &open_used, &committed_used), 0);
	assert_false(open_used);
	assert_true(committed_used);
	assert_int_equal(dd_walk_record(tp.pool, pbn, &d), 0);
	assert_int_equal(le32_to_cpu(d.refcount), 0);
	assert_int_equal(dd_walk_data_bit(tp.pool, fresh, &open_used, &committed_used), 0);
	assert_true(open_used);
	assert_false(committed_used);

	assert_int_equal(dd_data_reserve(tp.pool, &resv), 0);
	assert_true(dd_walk_data_reserved(tp.pool, resv));
	assert_false(dd_walk_data_reserved(tp.pool, fresh));
	dd_data_unreserve(tp.pool, resv);
	assert_false(dd_walk_data_reserved(tp.pool, resv));
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

static void dropping_a_pool_writes_nothing(void **state)
{
	struct tpool tp = { 0 };
	struct dd_pool_stats st;
	struct dd_volume *v;
	struct dd_mapping m;
	u64 writes, txn;

	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	write_tall_map(&tp, 1);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	dd_pool_get_stats(tp.pool, &st);
	txn = st.txn;
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	assert_int_equal(tp_write(v, 100, NULL), 0);	/* not committed */
	dd_volume_close(v);

	writes = dd_ramdev_nr_writes(tp.rd);
	dd_pool_drop(tp.pool);
	tp.pool = NULL;
	assert_int_equal(dd_ramdev_nr_writes(tp.rd), writes);
	dd_bm_drop(tp.bm);
	tp.bm = NULL;

	/* The last commit, not a clean close after it, and not the write. */
	assert_int_equal(tp_open(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_int_equal(st.txn, txn);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	assert_int_equal(dd_map_lookup(v, 100, 0, &m), 0);
	assert_false(m.mapped);
	assert_int_equal(dd_map_lookup(v, 9, 0, &m), 0);
	assert_true(m.mapped);
	dd_volume_close(v);
	assert_int_equal(tp_check(&tp, NULL), 0);
	tp_destroy(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(walk_visits_each_block_of_a_map_once_top_down_with_its_leaf_range),
		cmocka_unit_test(walk_sees_the_open_transaction),
		cmocka_unit_test(a_visitor_skips_children_or_stops_the_walk),
		cmocka_unit_test(damage_is_reported_per_block_and_the_walk_goes_on),
		cmocka_unit_test(trees_are_named_by_id_and_deleted_volumes_stay_readable),
		cmocka_unit_test(info_and_raw_blocks_describe_the_pool_and_nothing_is_written),
		cmocka_unit_test(per_block_queries_follow_the_open_and_the_committed_state),
		cmocka_unit_test(dropping_a_pool_writes_nothing),
	};

	tp_quiet(true);
	return cmocka_run_group_tests_name("walk", tests, NULL, NULL);
}
