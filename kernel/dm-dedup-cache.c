// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-cache.c: the lock-free lookup cache of the data path.  The
 * contract is in dm-dedup-cache.h.
 */
#include "dm-dedup-cache.h"

#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/mm.h>

/* Bounds of the entry count (2^30 entries are 32 GiB). */
#define LC_MIN_ENTRIES	1024U
#define LC_MAX_ENTRIES	(1U << 30)

int lc_init(struct lookup_cache *lc, unsigned int entries)
{
	unsigned int n = roundup_pow_of_two(clamp(entries, LC_MIN_ENTRIES, LC_MAX_ENTRIES));

	BUILD_BUG_ON(sizeof(struct lc_slot) != 32);	/* two ways per cache line */
	lc->gen = 1;
	lc->bits = ilog2(n);
	lc->slots = kvcalloc(n, sizeof(*lc->slots), GFP_KERNEL);
	return lc->slots ? 0 : -ENOMEM;
}

void lc_exit(struct lookup_cache *lc)
{
	kvfree(lc->slots);
	lc->slots = NULL;
}

/*
 * Two ways per set, both in one 64-byte cache line: two LBNs whose hashes
 * collide no longer evict each other on every access.
 *
 * LC_GROUP consecutive LBNs of a volume sit in the LC_GROUP sets of one
 * 4 KiB page; the groups are spread over the table by a multiplicative hash
 * (of the group number and the volume: LBNs below 2^48 leave the group
 * number 42 bits, the volume id takes the bits above).  A run lookup of a
 * large bio then walks memory in order, a page per 64 blocks, instead of one
 * cache line and one page (a TLB miss, dear under TCG's soft MMU) per block;
 * random LBNs still spread evenly.  Inside its page an LBN's set is rotated
 * by the group's hash, so LBNs a multiple of 64 apart (a filesystem's
 * per-group metadata) do not all crowd into one set in 64.
 */
#define LC_GROUP_SHIFT	6
#define LC_GROUP	(1U << LC_GROUP_SHIFT)

static struct lc_slot *lc_set(struct lookup_cache *lc, u32 vol, u64 lbn)
{
	u64 group = hash_64((lbn >> LC_GROUP_SHIFT) ^ ((u64)vol << 42),
			    lc->bits - 1 - LC_GROUP_SHIFT);
	u64 set = (group << LC_GROUP_SHIFT) | ((lbn + group) & (LC_GROUP - 1));

	return &lc->slots[set << 1];
}

/* One way, lock-free: false on a miss or while the writer rewrites it. */
static bool lc_read_way(struct lc_slot *p, u32 gen, u32 vol, u64 lbn, u64 *entry)
{
	u32 seq = READ_ONCE(p->seq), slot_vol, slot_gen;
	u64 slot_lbn;

	if (seq & 1)
		return false;
	smp_rmb();
	slot_gen = READ_ONCE(p->gen);
	slot_vol = READ_ONCE(p->vol);
	slot_lbn = READ_ONCE(p->lbn);
	*entry = READ_ONCE(p->entry);
	smp_rmb();
	return READ_ONCE(p->seq) == seq && slot_gen == gen && slot_vol == vol &&
	       slot_lbn == lbn;
}

bool lc_lookup(struct lookup_cache *lc, u32 vol, u64 lbn, struct dd_mapping *m)
{
	struct lc_slot *set = lc_set(lc, vol, lbn);
	u32 gen = READ_ONCE(lc->gen);
	u64 entry;

	/* The slots are read after the generation (pairs with __lc_clear). */
	smp_rmb();
	if (!lc_read_way(&set[0], gen, vol, lbn, &entry) &&
	    !lc_read_way(&set[1], gen, vol, lbn, &entry))
		return false;
	m->mapped = entry & LC_MAPPED;
	m->excl = entry & LC_EXCL;
	m->pbn = entry & LC_PBN_MASK;
	return true;
}

unsigned int lc_lookup_run(struct lookup_cache *lc, u32 vol, u64 lbn, unsigned int nr,
			   bool in_place, struct dd_mapping *m)
{
	struct dd_mapping next;
	unsigned int i;

	if (!nr || !lc_lookup(lc, vol, lbn, m))
		return 0;
	if (in_place && !(m->mapped && m->excl))
		return 1;
	for (i = 1; i < nr; i++) {
		if (!lc_lookup(lc, vol, lbn + i, &next) || next.mapped != m->mapped)
			break;
		if (m->mapped && (next.pbn != m->pbn + i || (in_place && !next.excl)))
			break;
	}
	return i;
}

static void __lc_write(struct lc_slot *p, u32 gen, u32 vol, u64 lbn, u64 entry)
{
	WRITE_ONCE(p->seq, p->seq + 1);
	smp_wmb();
	WRITE_ONCE(p->gen, gen);
	WRITE_ONCE(p->vol, vol);
	WRITE_ONCE(p->lbn, lbn);
	WRITE_ONCE(p->entry, entry);
	smp_wmb();
	WRITE_ONCE(p->seq, p->seq + 1);
}

static bool __lc_holds(const struct lookup_cache *lc, const struct lc_slot *p, u32 vol, u64 lbn)
{
	return p->gen == lc->gen && p->vol == vol && p->lbn == lbn;
}

/*
 * Way 0 holds the most recently inserted key: a new key goes to way 0, whose
 * key (if it has one) moves to way 1, evicting way 1's; a key already held
 * is updated where it is.
 */
void __lc_store(struct lookup_cache *lc, u32 vol, u64 lbn, const struct dd_mapping *m)
{
	struct lc_slot *set = lc_set(lc, vol, lbn), *p;
	u64 entry = (m->mapped ? LC_MAPPED | m->pbn : 0) | (m->excl ? LC_EXCL : 0);

	if (__lc_holds(lc, &set[0], vol, lbn)) {
		p = &set[0];
	} else if (__lc_holds(lc, &set[1], vol, lbn)) {
		p = &set[1];
	} else {
		if (set[0].gen == lc->gen)
			__lc_write(&set[1], set[0].gen, set[0].vol, set[0].lbn, set[0].entry);
		p = &set[0];
	}
	if (__lc_holds(lc, p, vol, lbn) && p->entry == entry)
		return;
	__lc_write(p, lc->gen, vol, lbn, entry);
}

void __lc_forget(struct lookup_cache *lc, u32 vol, u64 lbn)
{
	struct lc_slot *set = lc_set(lc, vol, lbn);
	int i;

	for (i = 0; i < 2; i++)
		if (__lc_holds(lc, &set[i], vol, lbn))
			__lc_write(&set[i], 0, 0, 0, 0);
}

/* Drops everything (snapshots, deletions, aborts): a new generation. */
void __lc_clear(struct lookup_cache *lc)
{
	u32 gen = lc->gen + 1;

	if (unlikely(!gen)) {
		/* Empty every slot before generation 1 comes round again. */
		u64 i, n = 1ULL << lc->bits;

		for (i = 0; i < n; i++)
			if (lc->slots[i].gen)
				__lc_write(&lc->slots[i], 0, 0, 0, 0);
		gen = 1;
	}
	smp_wmb();	/* slot changes before the new generation */
	WRITE_ONCE(lc->gen, gen);
	smp_mb();	/* the new generation before the caller's next step */
}

void __lc_forget_range(struct lookup_cache *lc, u32 vol, u64 lbn, u64 nr)
{
	u64 i;

	if (nr > (1ULL << lc->bits)) {
		__lc_clear(lc);
		return;
	}
	for (i = 0; i < nr; i++)
		__lc_forget(lc, vol, lbn + i);
}
