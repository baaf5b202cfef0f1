/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-dedup-cell.h: cells, a run of blocks (volume, LBNs) getting a new home
 * at a time.  docs/design.md ("The kernel data path") says why the writes to
 * one LBN that need a new block are serialised.
 *
 * Contract:
 *  - Every __dd_cell_* call is made with the lock given to dd_cells_init()
 *    held for write (the pool lock): it protects the hash and every cell in
 *    it, waiters included.
 *  - A cell is embedded in the per-bio data of the bio that holds it:
 *    taking one never allocates, and a block is in at most one cell.  A
 *    cell holds the run [lbn, lbn + nr), which lies inside one group of
 *    DD_CELL_GROUP blocks (aligned): cells are hashed by group, so the one
 *    bucket of a group finds every cell that overlaps a run in it.  Look
 *    the run up first (__dd_cell_find); lock only a run that no cell
 *    overlaps.
 *  - While a block is held, the caller parks other bios for it on
 *    cell->waiters.  __dd_cell_unlock() only unlinks the cell: the bios that
 *    waited stay in cell->waiters, and the caller must requeue them before
 *    it drops the lock (for the pool: __cell_unlock(), dm-dedup-io.c).
 */
#ifndef DM_DEDUP_CELL_H
#define DM_DEDUP_CELL_H

#include <linux/bio.h>
#include <linux/hash.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/rwsem.h>
#include <linux/types.h>

#define DD_CELL_HASH_BITS	10
#define DD_CELL_GROUP_SHIFT	8
#define DD_CELL_GROUP		(1U << DD_CELL_GROUP_SHIFT)	/* blocks: 1 MiB */

/*
 * Blocks being given a new home; other writes to them wait (worker only).
 * Embedded in the hook of the bio that writes the new home: taking a cell
 * never allocates.
 */
struct dd_cell {
	struct hlist_node node;
	u32 vol;
	u32 nr;			/* blocks from lbn, inside lbn's group */
	u64 lbn;
	struct bio_list waiters;
};

/* Blocks from @lbn to the end of its group: the longest run a cell may hold. */
static inline u32 dd_cell_room(u64 lbn)
{
	return DD_CELL_GROUP - (u32)(lbn & (DD_CELL_GROUP - 1));
}

/* The cells held, hashed by (volume, LBN). */
struct dd_cells {
	struct rw_semaphore *lock;	/* held for write by every __dd_cell_* caller */
	struct hlist_head buckets[1 << DD_CELL_HASH_BITS];
};

static inline void dd_cells_init(struct dd_cells *cells, struct rw_semaphore *lock)
{
	unsigned int i;

	cells->lock = lock;
	for (i = 0; i < ARRAY_SIZE(cells->buckets); i++)
		INIT_HLIST_HEAD(&cells->buckets[i]);
}

static inline struct hlist_head *dd_cell_bucket(struct dd_cells *cells, u32 vol, u64 lbn)
{
	return &cells->buckets[hash_64((lbn >> DD_CELL_GROUP_SHIFT) ^ ((u64)vol << 40),
				       DD_CELL_HASH_BITS)];
}

/* A cell that holds a block of [lbn, lbn + nr) (inside one group), or NULL. */
static inline struct dd_cell *__dd_cell_find(struct dd_cells *cells, u32 vol, u64 lbn, u32 nr)
{
	struct dd_cell *cell;

	lockdep_assert_held_write(cells->lock);
	hlist_for_each_entry(cell, dd_cell_bucket(cells, vol, lbn), node)
		if (cell->vol == vol && cell->lbn < lbn + nr && lbn < cell->lbn + cell->nr)
			return cell;
	return NULL;
}

/* Holds [lbn, lbn + nr) of @vol in @cell; no cell may hold any of it. */
static inline void __dd_cell_lock(struct dd_cells *cells, struct dd_cell *cell, u32 vol,
				  u64 lbn, u32 nr)
{
	lockdep_assert_held_write(cells->lock);
	WARN_ON_ONCE(!nr || nr > dd_cell_room(lbn));
	cell->vol = vol;
	cell->lbn = lbn;
	cell->nr = nr;
	bio_list_init(&cell->waiters);
	hlist_add_head(&cell->node, dd_cell_bucket(cells, vol, lbn));
}

/* Lets the block go; the bios that waited are left in cell->waiters. */
static inline void __dd_cell_unlock(struct dd_cells *cells, struct dd_cell *cell)
{
	lockdep_assert_held_write(cells->lock);
	hlist_del(&cell->node);
}

#endif /* DM_DEDUP_CELL_H */
