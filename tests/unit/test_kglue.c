// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel glue's lock-free parts, natively: the lookup cache
 * (dm-dedup/dm-dedup-cache.c), compiled unchanged over the fake kernel
 * headers of tests/kshim.  One rule per test; the concurrent test runs real
 * threads against the contract stated in dm-dedup-cache.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dm-dedup-cache.h"
#include <linux/compiler.h>
#include <linux/hash.h>

/* ---- small helpers ---- */

static u64 rnd(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + (u64)ts.tv_nsec;
}

static void set_flag(int *f)
{
	__atomic_store_n(f, 1, __ATOMIC_SEQ_CST);
}

static bool flag(const int *f)
{
	return __atomic_load_n(f, __ATOMIC_SEQ_CST);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	return t;
}

/* ==== the lookup cache, one thread ==== */

static struct dd_mapping mapping(u64 pbn, bool mapped, bool excl)
{
	struct dd_mapping m = { .pbn = pbn, .mapped = mapped, .excl = excl };

	return m;
}

static void store(struct lookup_cache *lc, u32 vol, u64 lbn, u64 pbn, bool excl)
{
	struct dd_mapping m = mapping(pbn, true, excl);

	__lc_store(lc, vol, lbn, &m);
}

#define assert_hit(lc, vol, lbn, pbn, excl) check_hit(lc, vol, lbn, pbn, excl, __LINE__)
static void check_hit(struct lookup_cache *lc, u32 vol, u64 lbn, u64 pbn, bool excl, int line)
{
	struct dd_mapping m;

	if (!lc_lookup(lc, vol, lbn, &m))
		fail_msg("line %d: (%u, %llu) misses; expected pbn %llu", line, vol,
			 (unsigned long long)lbn, (unsigned long long)pbn);
	if (!m.mapped || m.pbn != pbn || m.excl != excl)
		fail_msg("line %d: (%u, %llu) hits mapped %d pbn %llu excl %d; expected pbn %llu excl %d",
			 line, vol, (unsigned long long)lbn, m.mapped, (unsigned long long)m.pbn,
			 m.excl, (unsigned long long)pbn, excl);
}

#define assert_miss(lc, vol, lbn) check_miss(lc, vol, lbn, __LINE__)
static void check_miss(struct lookup_cache *lc, u32 vol, u64 lbn, int line)
{
	struct dd_mapping m;

	if (lc_lookup(lc, vol, lbn, &m))
		fail_msg("line %d: (%u, %llu) hits pbn %llu (mapped %d excl %d); expected a miss",
			 line, vol, (unsigned long long)lbn, (unsigned long long)m.pbn, m.mapped, m.excl);
}

static u64 nr_slots(const struct lookup_cache *lc)
{
	return 1ULL << lc->bits;
}

/* The set the cache's hash names for a key (what lc_set() computes). */
static u64 set_of(const struct lookup_cache *lc, u32 vol, u64 lbn)
{
	return hash_64(lbn ^ ((u64)vol << 48), lc->bits - 1);
}

/* The slot that holds a key in the current generation, or -1; never two. */
static long slot_of(const struct lookup_cache *lc, u32 vol, u64 lbn)
{
	long found = -1;
	u64 i;

	for (i = 0; i < nr_slots(lc); i++) {
		const struct lc_slot *p = &lc->slots[i];

		if (p->gen == lc->gen && p->vol == vol && p->lbn == lbn) {
			if (found >= 0)
				fail_msg("(%u, %llu) is in slots %ld and %llu", vol,
					 (unsigned long long)lbn, found, (unsigned long long)i);
			found = (long)i;
		}
	}
	return found;
}

/* n more LBNs of volume vol after lbn whose keys fall into the set of (vol, lbn). */
static void colliders(const struct lookup_cache *lc, u32 vol, u64 lbn, u64 *out, int n)
{
	u64 set = set_of(lc, vol, lbn), x;
	int k = 0;

	for (x = lbn + 1; k < n; x++)
		if (set_of(lc, vol, x) == set)
			out[k++] = x;
}

/* Every slot's sequence count is even: no rewrite was left half done. */
static void assert_all_seq_even(const struct lookup_cache *lc)
{
	u64 i;

	for (i = 0; i < nr_slots(lc); i++)
		if (lc->slots[i].seq & 1)
			fail_msg("slot %llu has an odd sequence count %u",
				 (unsigned long long)i, lc->slots[i].seq);
}

static struct lc_slot *snapshot_slots(const struct lookup_cache *lc)
{
	size_t sz = nr_slots(lc) * sizeof(struct lc_slot);
	struct lc_slot *copy = malloc(sz);

	assert_non_null(copy);
	memcpy(copy, lc->slots, sz);
	return copy;
}

static void assert_slots_unchanged(const struct lookup_cache *lc, struct lc_slot *copy)
{
	assert_memory_equal(copy, lc->slots, nr_slots(lc) * sizeof(struct lc_slot));
	free(copy);
}

/*
 * As many clears as it takes to reach generation 'to' (<= 0xffffffff, so
 * without crossing the wrap): a clear away from the wrap changes nothing but
 * lc->gen, so this is exactly that many __lc_clear() calls without the time
 * of up to 2^32 of them.  The barriers are __lc_clear()'s.
 */
static void clear_until_generation(struct lookup_cache *lc, u32 to)
{
	assert_true(to >= lc->gen);
	smp_wmb();
	WRITE_ONCE(lc->gen, to);
	smp_mb();
}

/* No slot holds a generation the cache has not reached: a clear would revive it. */
static void assert_no_slot_ahead(const struct lookup_cache *lc)
{
	u64 i;

	for (i = 0; i < nr_slots(lc); i++)
		if (lc->slots[i].gen > lc->gen)
			fail_msg("slot %llu (%u, %llu) holds generation %u, ahead of the cache's %u",
				 (unsigned long long)i, lc->slots[i].vol,
				 (unsigned long long)lc->slots[i].lbn, lc->slots[i].gen, lc->gen);
}

static void init_rounds_entries_up_to_a_power_of_two_of_at_least_1024(void **state)
{
	struct lookup_cache lc;
	u64 i;

	assert_int_equal(lc_init(&lc, 1), 0);
	assert_int_equal(lc.bits, 10);
	assert_int_equal(lc.gen, 1);
	for (i = 0; i < nr_slots(&lc); i++)
		assert_true(!lc.slots[i].gen && !lc.slots[i].seq);
	assert_int_equal((uintptr_t)lc.slots % 64, 0);	/* a set is one cache line */
	lc_exit(&lc);
	assert_null(lc.slots);
	assert_int_equal(lc_init(&lc, 1024), 0);
	assert_int_equal(lc.bits, 10);
	lc_exit(&lc);
	assert_int_equal(lc_init(&lc, 1025), 0);
	assert_int_equal(lc.bits, 11);
	lc_exit(&lc);
	assert_int_equal(lc_init(&lc, 1U << 18), 0);	/* the module's default */
	assert_int_equal(lc.bits, 18);
	lc_exit(&lc);
}

static void hash_64_is_the_kernels_multiplicative_hash(void **state)
{
	u64 s = 1, x;
	int i;

	assert_int_equal(hash_64(1, 10), 0x61C8864680B583EBull >> 54);
	assert_int_equal(hash_64(0, 9), 0);
	for (i = 0; i < 1000; i++) {
		x = rnd(&s);
		assert_int_equal(hash_64(x, 32), (u32)((x * 0x61C8864680B583EBull) >> 32));
		assert_int_equal(hash_64(x, 9), (u32)((x * 0x61C8864680B583EBull) >> 55));
	}
}

static void a_key_lands_in_one_way_of_the_set_its_hash_names(void **state)
{
	struct lookup_cache lc;
	u64 s = 2;
	int i;

	assert_int_equal(lc_init(&lc, 4096), 0);
	for (i = 0; i < 200; i++) {
		u32 vol = (u32)(rnd(&s) % 5);
		u64 lbn = rnd(&s) % 1000000;
		long slot;

		store(&lc, vol, lbn, 7, false);
		slot = slot_of(&lc, vol, lbn);
		assert_true(slot >= 0);
		assert_int_equal((u64)slot >> 1, set_of(&lc, vol, lbn));
		__lc_forget(&lc, vol, lbn);
	}
	assert_all_seq_even(&lc);
	lc_exit(&lc);
}

static void lookup_in_an_empty_cache_misses(void **state)
{
	struct lookup_cache lc;
	u64 lbn;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (lbn = 0; lbn < 5000; lbn++)
		assert_miss(&lc, 0, lbn);	/* an empty slot is generation 0, vol 0, lbn 0 */
	assert_miss(&lc, 1, 0);
	lc_exit(&lc);
}

static void store_then_lookup_returns_the_entry(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;

	assert_int_equal(lc_init(&lc, 1024), 0);
	store(&lc, 1, 10, 100, false);
	store(&lc, 1, 11, 101, true);
	store(&lc, 1, 12, LC_PBN_MASK, true);	/* the largest pbn */
	store(&lc, 2, 10, 200, false);		/* another volume, same lbn */
	m = mapping(999, false, false);		/* unmapped: the pbn is not kept */
	__lc_store(&lc, 1, 13, &m);
	assert_hit(&lc, 1, 10, 100, false);
	assert_hit(&lc, 1, 11, 101, true);
	assert_hit(&lc, 1, 12, LC_PBN_MASK, true);
	assert_hit(&lc, 2, 10, 200, false);
	assert_true(lc_lookup(&lc, 1, 13, &m));
	assert_false(m.mapped);
	assert_int_equal(m.pbn, 0);
	assert_false(m.excl);
	assert_miss(&lc, 3, 10);
	assert_miss(&lc, 1, 14);
	assert_all_seq_even(&lc);
	lc_exit(&lc);
}

static void a_new_entry_for_a_key_replaces_the_old_in_place(void **state)
{
	struct lookup_cache lc;
	long slot;
	u32 seq;

	assert_int_equal(lc_init(&lc, 1024), 0);
	store(&lc, 1, 10, 100, false);
	slot = slot_of(&lc, 1, 10);
	seq = lc.slots[slot].seq;
	store(&lc, 1, 10, 101, true);
	assert_hit(&lc, 1, 10, 101, true);
	assert_int_equal(slot_of(&lc, 1, 10), slot);
	assert_int_equal(lc.slots[slot].seq, seq + 2);	/* one whole rewrite */
	store(&lc, 1, 10, 101, false);			/* only the exclusive bit */
	assert_hit(&lc, 1, 10, 101, false);
	lc_exit(&lc);
}

static void keys_with_the_same_hash_input_are_told_apart(void **state)
{
	struct lookup_cache lc;

	/* lbn ^ vol << 48: (1, 0) and (0, 2^48) hash alike, (1, 5) and (0, 2^48 | 5) too. */
	assert_int_equal(lc_init(&lc, 1024), 0);
	assert_int_equal(set_of(&lc, 1, 0), set_of(&lc, 0, 1ULL << 48));
	store(&lc, 1, 0, 10, false);
	store(&lc, 0, 1ULL << 48, 20, true);
	assert_hit(&lc, 1, 0, 10, false);
	assert_hit(&lc, 0, 1ULL << 48, 20, true);
	assert_miss(&lc, 0, 0);
	assert_miss(&lc, 1, 1ULL << 48);
	lc_exit(&lc);
}

static void two_colliding_keys_both_stay(void **state)
{
	struct lookup_cache lc;
	u64 b;
	int i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	colliders(&lc, 1, 100, &b, 1);
	for (i = 0; i < 10; i++) {
		store(&lc, 1, 100, 1000 + (u64)i, false);
		store(&lc, 1, b, 2000 + (u64)i, true);
		assert_hit(&lc, 1, 100, 1000 + (u64)i, false);
		assert_hit(&lc, 1, b, 2000 + (u64)i, true);
	}
	assert_int_equal((u64)slot_of(&lc, 1, 100) >> 1, (u64)slot_of(&lc, 1, b) >> 1);
	assert_int_not_equal(slot_of(&lc, 1, 100), slot_of(&lc, 1, b));
	lc_exit(&lc);
}

/*
 * The order dm-dedup-cache.c states: "a new key moves way 0's key to way 1
 * (evicting way 1's) unless a way is empty or stale".
 */
static void a_new_key_in_a_full_set_moves_way_0_down_and_evicts_way_1(void **state)
{
	struct lookup_cache lc;
	u64 k[4], set2;

	assert_int_equal(lc_init(&lc, 1024), 0);
	k[0] = 7;
	colliders(&lc, 3, k[0], &k[1], 3);
	set2 = set_of(&lc, 3, k[0]) << 1;

	store(&lc, 3, k[0], 10, false);		/* empty set: way 0 */
	assert_int_equal(slot_of(&lc, 3, k[0]), set2);
	store(&lc, 3, k[1], 11, false);		/* way 1 is empty: it takes the key */
	assert_int_equal(slot_of(&lc, 3, k[0]), set2);
	assert_int_equal(slot_of(&lc, 3, k[1]), set2 + 1);

	store(&lc, 3, k[2], 12, false);		/* full: k0 moves down, k1 goes */
	assert_int_equal(slot_of(&lc, 3, k[2]), set2);
	assert_int_equal(slot_of(&lc, 3, k[0]), set2 + 1);
	assert_miss(&lc, 3, k[1]);
	assert_hit(&lc, 3, k[0], 10, false);
	assert_hit(&lc, 3, k[2], 12, false);

	store(&lc, 3, k[3], 13, true);		/* full: k2 moves down, k0 goes */
	assert_int_equal(slot_of(&lc, 3, k[3]), set2);
	assert_int_equal(slot_of(&lc, 3, k[2]), set2 + 1);
	assert_miss(&lc, 3, k[0]);
	assert_hit(&lc, 3, k[2], 12, false);
	assert_hit(&lc, 3, k[3], 13, true);

	store(&lc, 3, k[2], 22, false);		/* a key already held stays in its way */
	assert_int_equal(slot_of(&lc, 3, k[2]), set2 + 1);
	assert_hit(&lc, 3, k[3], 13, true);
	assert_hit(&lc, 3, k[2], 22, false);
	assert_all_seq_even(&lc);
	lc_exit(&lc);
}

static void a_forgotten_or_stale_way_is_filled_before_a_key_is_evicted(void **state)
{
	struct lookup_cache lc;
	u64 k[4], set2;

	assert_int_equal(lc_init(&lc, 1024), 0);
	k[0] = 40;
	colliders(&lc, 1, k[0], &k[1], 3);
	set2 = set_of(&lc, 1, k[0]) << 1;
	store(&lc, 1, k[0], 10, false);
	store(&lc, 1, k[1], 11, false);
	__lc_forget(&lc, 1, k[0]);		/* way 0 is empty now */
	store(&lc, 1, k[2], 12, false);
	assert_int_equal(slot_of(&lc, 1, k[2]), set2);
	assert_hit(&lc, 1, k[1], 11, false);
	assert_hit(&lc, 1, k[2], 12, false);

	__lc_clear(&lc);			/* both ways are stale */
	store(&lc, 1, k[3], 13, false);
	assert_int_equal(slot_of(&lc, 1, k[3]), set2);
	store(&lc, 1, k[1], 21, false);
	assert_int_equal(slot_of(&lc, 1, k[1]), set2 + 1);
	assert_hit(&lc, 1, k[3], 13, false);
	assert_hit(&lc, 1, k[1], 21, false);
	assert_miss(&lc, 1, k[2]);
	lc_exit(&lc);
}

static void a_store_of_an_identical_entry_is_a_no_op(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;
	struct lc_slot *copy;
	u64 b;

	assert_int_equal(lc_init(&lc, 1024), 0);
	colliders(&lc, 1, 5, &b, 1);
	store(&lc, 1, 5, 50, true);
	store(&lc, 1, b, 60, false);		/* in way 1 */
	m = mapping(0, false, false);
	__lc_store(&lc, 1, 6, &m);
	copy = snapshot_slots(&lc);
	store(&lc, 1, 5, 50, true);
	store(&lc, 1, b, 60, false);
	m = mapping(12345, false, false);	/* unmapped: the pbn is no part of it */
	__lc_store(&lc, 1, 6, &m);
	assert_slots_unchanged(&lc, copy);	/* not even a sequence count moved */
	lc_exit(&lc);
}

static void lookup_after_forget_misses(void **state)
{
	struct lookup_cache lc;
	struct lc_slot *copy;
	u64 b;
	long slot;
	u32 seq;

	assert_int_equal(lc_init(&lc, 1024), 0);
	colliders(&lc, 2, 9, &b, 1);
	store(&lc, 2, 9, 90, true);
	store(&lc, 2, b, 91, false);
	store(&lc, 1, 9, 92, false);
	slot = slot_of(&lc, 2, 9);
	seq = lc.slots[slot].seq;
	__lc_forget(&lc, 2, 9);
	assert_miss(&lc, 2, 9);
	assert_int_equal(lc.slots[slot].seq, seq + 2);
	assert_int_equal(lc.slots[slot].gen, 0);	/* emptied, not just marked */
	assert_hit(&lc, 2, b, 91, false);		/* the other way is kept */
	assert_hit(&lc, 1, 9, 92, false);		/* the same lbn elsewhere too */

	copy = snapshot_slots(&lc);			/* absent keys: nothing to do */
	__lc_forget(&lc, 2, 9);
	__lc_forget(&lc, 3, 9);
	__lc_forget(&lc, 2, 10);
	assert_slots_unchanged(&lc, copy);

	store(&lc, 2, 9, 93, false);			/* and it can come back */
	assert_hit(&lc, 2, 9, 93, false);
	lc_exit(&lc);
}

static void forget_range_forgets_exactly_that_range_of_that_volume(void **state)
{
	struct lookup_cache lc;
	struct lc_slot *copy;
	u64 lbn;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (lbn = 0; lbn < 100; lbn++) {
		store(&lc, 1, lbn, 1000 + lbn, false);
		store(&lc, 2, lbn, 2000 + lbn, false);
	}
	/* 200 keys in 512 sets: assume none was evicted, and check it. */
	for (lbn = 0; lbn < 100; lbn++) {
		assert_hit(&lc, 1, lbn, 1000 + lbn, false);
		assert_hit(&lc, 2, lbn, 2000 + lbn, false);
	}
	__lc_forget_range(&lc, 1, 10, 20);
	for (lbn = 0; lbn < 100; lbn++) {
		if (lbn >= 10 && lbn < 30)
			assert_miss(&lc, 1, lbn);
		else
			assert_hit(&lc, 1, lbn, 1000 + lbn, false);
		assert_hit(&lc, 2, lbn, 2000 + lbn, false);
	}
	copy = snapshot_slots(&lc);
	__lc_forget_range(&lc, 1, 50, 0);
	assert_slots_unchanged(&lc, copy);
	assert_int_equal(lc.gen, 1);
	lc_exit(&lc);
}

static void forget_range_larger_than_the_cache_clears_it(void **state)
{
	struct lookup_cache lc;

	assert_int_equal(lc_init(&lc, 1024), 0);
	store(&lc, 1, 5000, 1, false);
	store(&lc, 2, 7, 2, false);
	store(&lc, 1, 3, 3, false);
	/* Exactly the cache's size: key by key, the generation stays. */
	__lc_forget_range(&lc, 1, 0, nr_slots(&lc));
	assert_int_equal(lc.gen, 1);
	assert_miss(&lc, 1, 3);
	assert_hit(&lc, 1, 5000, 1, false);
	assert_hit(&lc, 2, 7, 2, false);
	/* One more: a clear, which drops other volumes' keys as well. */
	__lc_forget_range(&lc, 1, 0, nr_slots(&lc) + 1);
	assert_int_equal(lc.gen, 2);
	assert_miss(&lc, 1, 5000);
	assert_miss(&lc, 2, 7);
	lc_exit(&lc);
}

static void lookup_after_clear_misses(void **state)
{
	struct lookup_cache lc;
	struct lc_slot *copy;
	u64 lbn;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (lbn = 0; lbn < 300; lbn++)
		store(&lc, (u32)(lbn % 3), lbn, lbn + 1, lbn & 1);
	copy = snapshot_slots(&lc);
	__lc_clear(&lc);
	assert_int_equal(lc.gen, 2);
	assert_slots_unchanged(&lc, copy);	/* a new generation, no slot written */
	for (lbn = 0; lbn < 300; lbn++)
		assert_miss(&lc, (u32)(lbn % 3), lbn);
	store(&lc, 1, 1, 77, true);		/* stale slots take new keys */
	assert_hit(&lc, 1, 1, 77, true);
	assert_miss(&lc, 0, 0);
	lc_exit(&lc);
}

/* ==== the generation wrap ==== */

static void the_clear_at_the_wrap_empties_every_slot_and_restarts_at_1(void **state)
{
	struct lookup_cache lc;
	u64 lbn, i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (lbn = 0; lbn < 100; lbn++)
		store(&lc, 1, lbn, lbn + 1, false);	/* generation 1 */
	clear_until_generation(&lc, 0xffffffffu);
	for (lbn = 100; lbn < 200; lbn++)
		store(&lc, 1, lbn, lbn + 1, false);	/* generation 0xffffffff */
	assert_hit(&lc, 1, 150, 151, false);
	__lc_clear(&lc);
	assert_int_equal(lc.gen, 1);			/* never 0: 0 is "empty" */
	for (i = 0; i < nr_slots(&lc); i++)
		if (lc.slots[i].gen)
			fail_msg("slot %llu (%u, %llu) still holds generation %#x after the wrap",
				 (unsigned long long)i, lc.slots[i].vol,
				 (unsigned long long)lc.slots[i].lbn, lc.slots[i].gen);
	assert_all_seq_even(&lc);
	for (lbn = 0; lbn < 200; lbn++)
		assert_miss(&lc, 1, lbn);
	store(&lc, 1, 5, 55, true);
	assert_hit(&lc, 1, 5, 55, true);
	lc_exit(&lc);
}

struct stored_key {
	u32 vol, gen;
	u64 lbn;
};

/*
 * Keys stored at many generations, then as many clears as it takes to wrap
 * the 32-bit generation and climb past every one of those generations again:
 * at each step no key from before the wrap may hit.  Three such wraps.
 */
static void no_entry_comes_back_after_the_generation_wraps(void **state)
{
	struct lookup_cache lc;
	struct stored_key *keys;
	int nkeys = 0, round, j, g, steps;
	u32 first;
	u64 lbn = 0;

	keys = calloc(4096, sizeof(*keys));
	assert_non_null(keys);
	assert_int_equal(lc_init(&lc, 1024), 0);
	for (round = 0; round < 3; round++) {
		first = lc.gen;
		for (g = 0; g < 8; g++) {		/* eight generations of keys */
			for (j = 0; j < 16; j++, lbn++) {
				store(&lc, 1 + (u32)(j & 1), lbn, lbn + 1, false);
				keys[nkeys++] = (struct stored_key){ 1 + (u32)(j & 1), lc.gen, lbn };
			}
			__lc_clear(&lc);
		}
		clear_until_generation(&lc, 0xfffffffeu);
		for (g = 0; g < 2; g++) {		/* and two right before the wrap */
			for (j = 0; j < 16; j++, lbn++) {
				store(&lc, 1, lbn, lbn + 1, true);
				keys[nkeys++] = (struct stored_key){ 1, lc.gen, lbn };
			}
			__lc_clear(&lc);
		}
		assert_int_equal(lc.gen, 1);
		/* Up through every generation a key was stored at, and beyond. */
		for (steps = 0; lc.gen <= first + 8; steps++) {
			for (j = 0; j < nkeys; j++) {
				struct dd_mapping m;

				if (lc_lookup(&lc, keys[j].vol, keys[j].lbn, &m))
					fail_msg("wrap %d: (%u, %llu), stored at generation %u "
						 "before the wrap, is back at generation %u",
						 round + 1, keys[j].vol,
						 (unsigned long long)keys[j].lbn, keys[j].gen, lc.gen);
			}
			assert_no_slot_ahead(&lc);
			__lc_clear(&lc);
		}
		assert_true(steps >= 9);
		/* A store after the wrap hits, and goes at the next clear. */
		store(&lc, 3, 1, 2, false);
		assert_hit(&lc, 3, 1, 2, false);
		__lc_clear(&lc);
		assert_miss(&lc, 3, 1);
	}
	assert_all_seq_even(&lc);
	lc_exit(&lc);
	free(keys);
}

/* ==== the lookup cache, one writer and concurrent readers ==== */

/*
 * A key k is (1 + k % 2, k / 2); its entries carry (k, version) in the pbn,
 * and the exclusive bit is the version's low bit, so a reader can tell an
 * entry of another key (a torn read of a slot) and an entry from the past.
 * Versions come from one counter, so they grow across all keys.
 *
 * Per key the writer publishes hi[k] (the newest version it is storing or
 * stored, published before the store) and lo[k] (every version below it is
 * gone: published after a store returned, with its version, or after a forget
 * returned, with a fresh version no entry has); lo_all likewise after a clear.
 * A reader takes lo = max(lo[k], lo_all) before its lookup and hi[k] after
 * it: a hit must be k's, with lo <= version <= hi.
 */
#define CC_KEYS		1536		/* three keys per set of a 1024-entry cache */
#define CC_VER_BITS	28
#define CC_READERS	2
#define CC_MIN_OPS	300000
#define CC_MIN_LOOKUPS	10000000	/* the writer goes on until the readers did this many */
#define CC_MAX_NS	3000000000ULL

struct cc_run {
	struct lookup_cache lc;
	u64 lo[CC_KEYS], hi[CC_KEYS], lo_all;
	int stop;
	int bad;				/* first violation wins */
	char why[256];
	u64 hits, misses, wraps;
	u64 lookups;				/* by the readers, roughly, while they run */
};

static u32 cc_vol(u64 k) { return 1 + (u32)(k & 1); }
static u64 cc_lbn(u64 k) { return k >> 1; }
static u64 cc_key(u32 vol, u64 lbn) { return lbn * 2 + (vol - 1); }

static void cc_publish(u64 *p, u64 v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static u64 cc_read(const u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void cc_violation(struct cc_run *r, const char *fmt, ...)
{
	va_list ap;
	int expected = 0;

	if (!__atomic_compare_exchange_n(&r->bad, &expected, 1, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	set_flag(&r->stop);
}

static void *cc_reader(void *arg)
{
	struct cc_run *r = arg;
	u64 s = (u64)pthread_self(), hits = 0, misses = 0;

	while (!flag(&r->stop)) {
		u64 k = rnd(&s) % CC_KEYS, lo, lo_all, hi, ver;
		struct dd_mapping m;

		lo = cc_read(&r->lo[k]);
		lo_all = cc_read(&r->lo_all);
		if (lo_all > lo)
			lo = lo_all;
		if (!((hits + misses) & 1023))
			__atomic_fetch_add(&r->lookups, 1024, __ATOMIC_RELAXED);
		if (!lc_lookup(&r->lc, cc_vol(k), cc_lbn(k), &m)) {
			misses++;
			continue;
		}
		hits++;
		hi = cc_read(&r->hi[k]);
		ver = m.pbn & ((1ULL << CC_VER_BITS) - 1);
		if (!m.mapped || m.pbn >> CC_VER_BITS != k)
			cc_violation(r, "key %llu: a hit on pbn %#llx (mapped %d), an entry of key %llu",
				     (unsigned long long)k, (unsigned long long)m.pbn, m.mapped,
				     (unsigned long long)(m.pbn >> CC_VER_BITS));
		else if (m.excl != (ver & 1))
			cc_violation(r, "key %llu version %llu: exclusive bit %d", (unsigned long long)k,
				     (unsigned long long)ver, m.excl);
		else if (ver < lo)
			cc_violation(r, "key %llu: a hit on version %llu, gone (replaced, forgotten "
				     "or cleared) before the lookup began: the oldest live was %llu",
				     (unsigned long long)k, (unsigned long long)ver,
				     (unsigned long long)lo);
		else if (ver > hi)
			cc_violation(r, "key %llu: a hit on version %llu, newer than any stored (%llu)",
				     (unsigned long long)k, (unsigned long long)ver,
				     (unsigned long long)hi);
	}
	__atomic_fetch_add(&r->hits, hits, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->misses, misses, __ATOMIC_RELAXED);
	return NULL;
}

static void cc_store(struct cc_run *r, u64 k, u64 ver)
{
	struct dd_mapping m = mapping(k << CC_VER_BITS | ver, true, ver & 1);

	cc_publish(&r->hi[k], ver);
	__lc_store(&r->lc, cc_vol(k), cc_lbn(k), &m);
	cc_publish(&r->lo[k], ver);
}

static void concurrent_lookups_return_only_whole_live_entries(void **state)
{
	struct cc_run *r = calloc(1, sizeof(*r));
	pthread_t t[CC_READERS];
	u64 s = 99, ver = 0, op, k, i, nr, t0 = now_ns();
	u32 gen;
	int n;

	assert_non_null(r);
	assert_int_equal(lc_init(&r->lc, 1024), 0);
	for (n = 0; n < CC_READERS; n++)
		t[n] = spawn(cc_reader, r);
	for (op = 0; !flag(&r->stop); op++) {
		u64 x = rnd(&s) % 100000;

		if (!(op & 1023) && op >= CC_MIN_OPS &&
		    (__atomic_load_n(&r->lookups, __ATOMIC_RELAXED) >= CC_MIN_LOOKUPS ||
		     now_ns() - t0 > CC_MAX_NS))
			break;
		k = rnd(&s) % CC_KEYS;
		ver++;
		gen = r->lc.gen;
		if (x < 93000) {
			cc_store(r, k, ver);
		} else if (x < 99000) {
			__lc_forget(&r->lc, cc_vol(k), cc_lbn(k));
			cc_publish(&r->lo[k], ver);
		} else if (x < 99960) {
			nr = 1 + rnd(&s) % 16;
			__lc_forget_range(&r->lc, cc_vol(k), cc_lbn(k), nr);
			for (i = 0; i < nr; i++)
				if (cc_key(cc_vol(k), cc_lbn(k) + i) < CC_KEYS)
					cc_publish(&r->lo[cc_key(cc_vol(k), cc_lbn(k) + i)], ver);
		} else if (x < 99985) {
			__lc_clear(&r->lc);
			cc_publish(&r->lo_all, ver);
		} else if (r->lc.gen < 0xfffffffeu) {
			/* Right before the wrap: the next clears empty every slot under the readers. */
			clear_until_generation(&r->lc, 0xfffffffeu);
			cc_publish(&r->lo_all, ver);
		}
		if (r->lc.gen < gen)
			r->wraps++;
	}
	set_flag(&r->stop);
	for (n = 0; n < CC_READERS; n++)
		pthread_join(t[n], NULL);
	if (r->bad)
		fail_msg("%s", r->why);
	printf("# %llu writer ops, %llu wraps, readers: %llu hits, %llu misses, %.2f s\n",
	       (unsigned long long)op, (unsigned long long)r->wraps,
	       (unsigned long long)r->hits, (unsigned long long)r->misses,
	       (double)(now_ns() - t0) / 1e9);
	assert_true(ver < (1ULL << CC_VER_BITS));
	assert_true(r->hits > 10000 && r->misses > 10000);	/* both paths ran */
	assert_true(r->wraps > 0);
	assert_all_seq_even(&r->lc);
	assert_no_slot_ahead(&r->lc);
	lc_exit(&r->lc);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_rounds_entries_up_to_a_power_of_two_of_at_least_1024),
		cmocka_unit_test(hash_64_is_the_kernels_multiplicative_hash),
		cmocka_unit_test(a_key_lands_in_one_way_of_the_set_its_hash_names),
		cmocka_unit_test(lookup_in_an_empty_cache_misses),
		cmocka_unit_test(store_then_lookup_returns_the_entry),
		cmocka_unit_test(a_new_entry_for_a_key_replaces_the_old_in_place),
		cmocka_unit_test(keys_with_the_same_hash_input_are_told_apart),
		cmocka_unit_test(two_colliding_keys_both_stay),
		cmocka_unit_test(a_new_key_in_a_full_set_moves_way_0_down_and_evicts_way_1),
		cmocka_unit_test(a_forgotten_or_stale_way_is_filled_before_a_key_is_evicted),
		cmocka_unit_test(a_store_of_an_identical_entry_is_a_no_op),
		cmocka_unit_test(lookup_after_forget_misses),
		cmocka_unit_test(forget_range_forgets_exactly_that_range_of_that_volume),
		cmocka_unit_test(forget_range_larger_than_the_cache_clears_it),
		cmocka_unit_test(lookup_after_clear_misses),
		cmocka_unit_test(the_clear_at_the_wrap_empties_every_slot_and_restarts_at_1),
		cmocka_unit_test(no_entry_comes_back_after_the_generation_wraps),
		cmocka_unit_test(concurrent_lookups_return_only_whole_live_entries),
	};

	return cmocka_run_group_tests_name("kglue", tests, NULL, NULL);
}
