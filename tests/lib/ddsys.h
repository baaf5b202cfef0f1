/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A userspace "system" for the tests: a pool's metadata device and its DATA
 * device (both fault-injecting RAM devices on one power supply), the kernel
 * target's data path over the engine (dm-dedup-io.c process_write,
 * finish_new_block, process_discard; dm-dedup-pool.c __commit), its
 * ordering (the data device is flushed before every commit) and discard
 * passdown of the blocks a commit freed.  Every data block written carries a token that says which
 * write put it there, and a model per volume says which tokens an LBN may
 * legitimately hold after a crash.
 */
#ifndef DDSYS_H
#define DDSYS_H

#include "ddtest.h"

/* ---- tokens: the contents of every data block a test writes ---- */

/* Fills a block with the contents of write 'id' (to vol/lbn); id > 0. */
void tok_fill(void *block, u64 id, u32 vol, u64 lbn);

enum tok_kind {
	TOK_ZERO,	/* all zeroes */
	TOK_WRITE,	/* exactly the contents of one write: *id, *vol, *lbn */
	TOK_GARBAGE,	/* anything else: torn, mixed, foreign */
};
enum tok_kind tok_decode(const void *block, u64 *id, u32 *vol, u64 *lbn);

/* ---- the system ---- */

struct sys_stats {
	u64 data_writes;		/* to the data device, passdown excluded */
	u64 in_place;			/* writes to an exclusive block */
	u64 made_exclusive;		/* of which dd_map_make_exclusive allowed */
	u64 new_blocks;			/* writes to a newly reserved block */
	u64 run_segments;		/* runs of new blocks written by sys_write_run */
	u64 zero_unmaps;		/* whole-block zero writes that unmapped */
	u64 discards;
	u64 flushes;			/* guest FLUSHes completed */
	u64 commits;			/* pre_commit calls (every commit) */
	u64 commits_in_write;		/* the engine committed inside a write */
	u64 commits_in_discard;		/* ... inside a discard's unmap */
	u64 nospace_commits;		/* a write found no block: commit, retry */
	u64 nospace;			/* writes that failed -ENOSPC */
	u64 passdown_ranges, passdown_blocks;
};

enum sys_op { SYS_IDLE, SYS_WRITE, SYS_DISCARD, SYS_FLUSH, SYS_OTHER };

struct ddsys {
	struct tpool tp;		/* metadata device, block manager, pool */
	struct dd_ramdev *data;		/* the data device: nr_data_blocks blocks */
	bool no_passdown;		/* the no_discard_passdown feature */
	enum sys_op op;			/* what the guest is doing (statistics) */
	struct sys_stats st;
	/* The first broken rule (passdown over a block in use...), "" if none. */
	char violation[384];
	/* Called at every commit, before the data device is flushed. */
	void (*on_commit)(void *ctx, struct dd_pool *pool);
	void *ctx;
};

/* Formats a pool on new devices and opens it. */
int sys_create(struct ddsys *s, u64 meta_blocks, u64 data_blocks, u32 journal,
	       const struct dd_bm_opts *bmo);
/* Takes over two devices holding a formatted pool (closed) and opens it. */
int sys_attach(struct ddsys *s, struct dd_ramdev *meta, struct dd_ramdev *data,
	       u64 data_blocks, const struct dd_bm_opts *bmo);
int sys_open(struct ddsys *s);
void sys_close(struct ddsys *s);	/* clean close */
/*
 * Arms a power cut at the metadata device's f->crash_at_write-th write from
 * now (0: none); both devices keep their unflushed writes per f->unflushed
 * (the tear applies to the metadata write only).
 */
void sys_arm(struct ddsys *s, const struct dd_fault *f);
bool sys_power_lost(struct ddsys *s);
/* The power is gone: the engine's memory is lost, both devices reboot. */
void sys_crash(struct ddsys *s);
void sys_destroy(struct ddsys *s);
u64 sys_nr_data_blocks(struct ddsys *s);

/*
 * The guest's I/O, as the kernel target handles it.  A write of a whole
 * zero block unmaps the LBN; any other write goes in place if the LBN's
 * block is exclusive (asking dd_map_make_exclusive when the engine says
 * so), else to a newly reserved block, written before the mapping is
 * inserted.  A write that finds no free block while blocks wait for a
 * commit commits and starts again.  Returns -ENOSPC if the pool is full.
 */
int sys_write(struct ddsys *s, struct dd_volume *v, u64 lbn, const void *block);

/*
 * A write over n whole blocks, none of zeroes, as the worker serves one
 * (process_write_run): segment by segment, the longest run of blocks that
 * go in place, or of blocks that need new ones that one run of free blocks
 * holds (dd_data_reserve_run), written, then inserted with
 * dd_map_insert_run.  Out of space with blocks waiting for a commit, it
 * commits and goes on.  Returns -ENOSPC if the pool is full; the blocks
 * before the failing segment are written.
 */
int sys_write_run(struct ddsys *s, struct dd_volume *v, u64 lbn, u32 n, const void *blocks);

/*
 * Writes as the target's worker does a pass of queued writes (distinct
 * LBNs): every lookup, reservation and data write first, then the inserts,
 * so an insert can make the engine commit while other blocks are reserved
 * and written but not yet mapped.  res[i] is each write's result.
 */
struct sys_wreq {
	struct dd_volume *v;
	u64 lbn;
	const void *block;
};
void sys_write_batch(struct ddsys *s, const struct sys_wreq *w, u32 n, int *res);

int sys_discard(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 nr);
/* A guest FLUSH: a commit if anything changed (pre_commit flushes the data
 * device first), else a flush of the data device. */
int sys_flush(struct ddsys *s);

/* What the guest reads at lbn now: TOK_ZERO if unmapped. */
enum tok_kind sys_read(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 *id, u64 *pbn,
		       bool *mapped);

/* ---- the model: what each LBN may hold after a crash ---- */

#define DM_VOLS 16		/* volume ids 0..15 */

enum dm_state { DM_NEVER, DM_LIVE, DM_DELETED };

struct dm_vol {
	enum dm_state state;
	bool at_flush;		/* existed at the last completed flush */
	bool since;		/* created (or snapshotted) after it */
	struct hmap cur;	/* lbn -> write id the guest reads now (absent: zeroes) */
	struct hmap base;	/* lbn -> write id at the last flush, or at creation after it */
	struct hmap later;	/* lbn -> 1 + first node of the ids written after it */
};

struct dm_node {
	u64 id;			/* 0: zeroes */
	u64 next;		/* 1 + index, 0 = end */
};

struct dmodel {
	struct dm_vol vol[DM_VOLS];
	struct dm_node *node;
	u64 nr_node, cap_node;
	u64 next_id;		/* the next write's id */
};

void dm_init(struct dmodel *m);
void dm_free(struct dmodel *m);
/*
 * The guest's operations.  dm_may() is called before an operation is
 * issued (it may land, in part or whole, even if it fails in the crash);
 * dm_set()/dm_zero_range() once it completed, for the reads that follow.
 */
void dm_create(struct dmodel *m, u32 vol);
void dm_snapshot(struct dmodel *m, u32 vol, u32 origin);
void dm_delete(struct dmodel *m, u32 vol);
void dm_may(struct dmodel *m, u32 vol, u64 lbn, u64 id);
void dm_may_zero_range(struct dmodel *m, u32 vol, u64 lbn, u64 nr);
void dm_set(struct dmodel *m, u32 vol, u64 lbn, u64 id);
void dm_zero_range(struct dmodel *m, u32 vol, u64 lbn, u64 nr);
/* A guest FLUSH completed: what the guest reads now is durable. */
void dm_flushed(struct dmodel *m);
bool dm_allowed(const struct dmodel *m, u32 vol, u64 lbn, u64 id);

/*
 * Compares the pool with the model; 0, or -1 with the first difference in
 * why.  exact: every LBN holds what the guest reads now (no crash since);
 * else (after a crash) what the last completed flush left or anything
 * written after it, and the volumes that must exist do, and no other.
 * Either way a mapped LBN must hold the exact contents of a write: a
 * mapping durable without its data reads zeroes or garbage.
 */
int dm_verify(const struct dmodel *m, struct ddsys *s, bool exact, char *why, size_t len);
/* A model whose present is what the pool holds now (after a verified
 * recovery): every LBN of every volume below DM_VOLS, all flushed. */
int dm_from_pool(struct dmodel *m, struct ddsys *s);

#endif
