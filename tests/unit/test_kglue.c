// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel glue's lock-free parts, natively: the lookup cache
 * (kernel/dm-dedup-cache.c) and the epochs of in-flight I/O
 * (kernel/dm-dedup-epoch.h), compiled unchanged over the fake kernel
 * headers of tests/kshim.  One rule per test; the concurrent tests run real
 * threads against the contracts stated in the two headers.
 *
 * The reference copy of the epoch entry that the target used before the
 * re-read (old_epoch_enter below) fails the same checks: the tests that run
 * it expect it to fail, so a regression to that scheme is caught by the
 * tests that run dd_epoch_enter().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dm-dedup-cache.h"
#include "dm-dedup-epoch.h"
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

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void set_flag(int *f)
{
	__atomic_store_n(f, 1, __ATOMIC_SEQ_CST);
}

static bool flag(const int *f)
{
	return __atomic_load_n(f, __ATOMIC_SEQ_CST);
}

/* Waits (yielding) until *f is set: false after ms milliseconds. */
static bool await_flag(const int *f, unsigned int ms)
{
	u64 end = now_ns() + (u64)ms * 1000000ULL;

	while (!flag(f)) {
		if (now_ns() > end)
			return false;
		sched_yield();
	}
	return true;
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

/* The set the cache's hash names for a key (what lc_set() computes): groups
 * of 64 consecutive LBNs in the 64 sets of one page, the groups hashed, each
 * LBN's place in its page rotated by its group's hash. */
static u64 set_of(const struct lookup_cache *lc, u32 vol, u64 lbn)
{
	u64 g = hash_64((lbn >> 6) ^ ((u64)vol << 42), lc->bits - 7);

	return (g << 6) | ((lbn + g) & 63);
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

/* ==== run lookups (multi-block bios in map()) ==== */

static void store_unmapped(struct lookup_cache *lc, u32 vol, u64 lbn)
{
	struct dd_mapping m = mapping(0, false, false);

	__lc_store(lc, vol, lbn, &m);
}

static void a_read_run_ends_where_the_pbns_stop_being_consecutive(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;
	u64 i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (i = 0; i < 5; i++)
		store(&lc, 1, 100 + i, 500 + i, i != 2);	/* a shared block in the middle */
	store(&lc, 1, 105, 900, true);			/* not after 504 */
	store(&lc, 1, 106, 901, true);
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 8, false, &m), 5);
	assert_true(m.mapped && m.excl);
	assert_int_equal(m.pbn, 500);
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 3, false, &m), 3);	/* never past nr */
	assert_int_equal(lc_lookup_run(&lc, 1, 103, 8, false, &m), 2);
	assert_int_equal(m.pbn, 503);
	assert_int_equal(lc_lookup_run(&lc, 1, 105, 8, false, &m), 2);	/* 107 misses */
	assert_int_equal(m.pbn, 900);
	assert_int_equal(lc_lookup_run(&lc, 1, 99, 8, false, &m), 0);	/* the first misses */
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 0, false, &m), 0);
	assert_int_equal(lc_lookup_run(&lc, 2, 100, 8, false, &m), 0);	/* another volume */
	lc_exit(&lc);
}

static void an_in_place_run_stops_at_the_first_block_not_exclusive(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;
	u64 i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (i = 0; i < 6; i++)
		store(&lc, 1, 100 + i, 500 + i, i != 3);	/* 103: shared (a snapshot, a pin) */
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 6, true, &m), 3);
	assert_true(m.mapped && m.excl);
	assert_int_equal(m.pbn, 500);
	/* A first block that cannot be written in place: 1, and the caller sees why. */
	assert_int_equal(lc_lookup_run(&lc, 1, 103, 6, true, &m), 1);
	assert_false(m.excl);
	assert_int_equal(lc_lookup_run(&lc, 1, 104, 6, true, &m), 2);
	/* The scanner forgets a block it pins: the run ends before it. */
	__lc_forget(&lc, 1, 101);
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 6, true, &m), 1);
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 6, false, &m), 1);
	/* An unmapped block ends an in-place run. */
	store(&lc, 1, 101, 501, true);
	store_unmapped(&lc, 1, 102);
	assert_int_equal(lc_lookup_run(&lc, 1, 100, 6, true, &m), 2);
	store_unmapped(&lc, 1, 110);
	assert_int_equal(lc_lookup_run(&lc, 1, 110, 6, true, &m), 1);
	assert_false(m.mapped);
	lc_exit(&lc);
}

static void an_unmapped_run_stops_at_the_first_mapped_or_missing_block(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;
	u64 i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (i = 0; i < 4; i++)
		store_unmapped(&lc, 1, 200 + i);
	store(&lc, 1, 204, 0, true);		/* pbn 0 is not "unmapped" */
	store_unmapped(&lc, 1, 205);
	assert_int_equal(lc_lookup_run(&lc, 1, 200, 16, false, &m), 4);
	assert_false(m.mapped);
	assert_int_equal(lc_lookup_run(&lc, 1, 205, 16, false, &m), 1);	/* 206 misses */
	/* A mapped run does not continue into unmapped blocks, pbn 0 or not. */
	store(&lc, 1, 199, 1ULL << 40, true);
	assert_int_equal(lc_lookup_run(&lc, 1, 199, 16, false, &m), 1);
	lc_exit(&lc);
}

/* A slot the writer is rewriting (odd count) ends the run: it is never read through. */
static void a_run_ends_at_a_slot_being_rewritten(void **state)
{
	struct lookup_cache lc;
	struct dd_mapping m;
	long slot;
	u64 i;

	assert_int_equal(lc_init(&lc, 1024), 0);
	for (i = 0; i < 8; i++)
		store(&lc, 1, 300 + i, 700 + i, true);
	slot = slot_of(&lc, 1, 304);
	assert_true(slot >= 0);
	lc.slots[slot].seq++;
	assert_int_equal(lc_lookup_run(&lc, 1, 300, 8, true, &m), 4);
	assert_int_equal(lc_lookup_run(&lc, 1, 300, 8, false, &m), 4);
	assert_int_equal(lc_lookup_run(&lc, 1, 304, 8, false, &m), 0);
	lc.slots[slot].seq++;
	assert_int_equal(lc_lookup_run(&lc, 1, 300, 8, true, &m), 8);
	/* A clear (snapshot, deletion) ends every run at once. */
	__lc_clear(&lc);
	assert_int_equal(lc_lookup_run(&lc, 1, 300, 8, false, &m), 0);
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

	/* (lbn >> 6) ^ vol << 42: (1, 0) and (0, 2^48) hash alike, (1, 5) and (0, 2^48 | 5) too. */
	assert_int_equal(lc_init(&lc, 1024), 0);
	assert_int_equal(set_of(&lc, 1, 0), set_of(&lc, 0, 1ULL << 48));
	assert_int_equal(set_of(&lc, 1, 5), set_of(&lc, 0, (1ULL << 48) | 5));
	store(&lc, 1, 0, 10, false);
	store(&lc, 0, 1ULL << 48, 20, true);
	assert_hit(&lc, 1, 0, 10, false);
	assert_hit(&lc, 0, 1ULL << 48, 20, true);
	assert_miss(&lc, 0, 0);
	assert_miss(&lc, 1, 1ULL << 48);
	lc_exit(&lc);
}

/* A run lookup walks memory in order: 64 consecutive LBNs in the 64 sets of
 * one page, while random groups spread over every page and LBNs a multiple
 * of 64 apart do not crowd into one set of their pages. */
static void consecutive_lbns_share_a_page_of_sets_and_groups_spread(void **state)
{
	struct lookup_cache lc;
	u64 g, i, used = 0, pages, *hits;
	u64 offsets = 0;

	assert_int_equal(lc_init(&lc, 1 << 16), 0);
	pages = nr_slots(&lc) / 2 / 64;
	for (g = 0; g < 100; g++) {
		u64 seen = 0;

		for (i = 0; i < 64; i++) {
			u64 set = set_of(&lc, 3, g * 64 + i);

			assert_int_equal(set / 64, set_of(&lc, 3, g * 64) / 64);
			seen |= 1ULL << (set % 64);
		}
		assert_true(seen == ~0ULL);		/* all 64 sets of the page */
		offsets |= 1ULL << (set_of(&lc, 3, g * 64) % 64);
	}
	assert_true(__builtin_popcountll(offsets) > 32);	/* stride 64: spread */
	for (i = 0; i < 256; i++) {
		store(&lc, 2, i * 1000003, i, false);
		assert_int_equal(slot_of(&lc, 2, i * 1000003) >> 1, set_of(&lc, 2, i * 1000003));
		store(&lc, 4, i * 64, i, false);
		assert_int_equal(slot_of(&lc, 4, i * 64) >> 1, set_of(&lc, 4, i * 64));
	}
	hits = calloc(pages, sizeof(*hits));
	assert_non_null(hits);
	for (g = 0; g < 16 * pages; g++)
		hits[set_of(&lc, 1, g * 64) / 64]++;
	for (g = 0; g < pages; g++)
		used += hits[g] != 0;
	assert_true(used > pages * 9 / 10);	/* 16 groups a page on average */
	free(hits);
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
	store(&lc, 3, k[1], 11, false);		/* the newest key is in way 0 */
	assert_int_equal(slot_of(&lc, 3, k[1]), set2);
	assert_int_equal(slot_of(&lc, 3, k[0]), set2 + 1);

	store(&lc, 3, k[2], 12, false);		/* full: k1 moves down, k0 (the oldest) goes */
	assert_int_equal(slot_of(&lc, 3, k[2]), set2);
	assert_int_equal(slot_of(&lc, 3, k[1]), set2 + 1);
	assert_miss(&lc, 3, k[0]);
	assert_hit(&lc, 3, k[1], 11, false);
	assert_hit(&lc, 3, k[2], 12, false);

	store(&lc, 3, k[3], 13, true);		/* full: k2 moves down, k1 goes */
	assert_int_equal(slot_of(&lc, 3, k[3]), set2);
	assert_int_equal(slot_of(&lc, 3, k[2]), set2 + 1);
	assert_miss(&lc, 3, k[1]);
	assert_hit(&lc, 3, k[2], 12, false);
	assert_hit(&lc, 3, k[3], 13, true);

	store(&lc, 3, k[2], 22, false);		/* a key already held stays in its way */
	assert_int_equal(slot_of(&lc, 3, k[2]), set2 + 1);
	assert_hit(&lc, 3, k[3], 13, true);
	assert_hit(&lc, 3, k[2], 22, false);
	assert_all_seq_even(&lc);
	lc_exit(&lc);
}

static void a_forgotten_or_stale_way_0_takes_a_new_key_without_evicting(void **state)
{
	struct lookup_cache lc;
	u64 k[4], set2;

	assert_int_equal(lc_init(&lc, 1024), 0);
	k[0] = 40;
	colliders(&lc, 1, k[0], &k[1], 3);
	set2 = set_of(&lc, 1, k[0]) << 1;
	store(&lc, 1, k[0], 10, false);
	store(&lc, 1, k[1], 11, false);		/* k1 in way 0, k0 in way 1 */
	__lc_forget(&lc, 1, k[1]);		/* way 0 is empty now */
	store(&lc, 1, k[2], 12, false);
	assert_int_equal(slot_of(&lc, 1, k[2]), set2);
	assert_int_equal(slot_of(&lc, 1, k[0]), set2 + 1);
	assert_hit(&lc, 1, k[0], 10, false);
	assert_hit(&lc, 1, k[2], 12, false);

	__lc_clear(&lc);			/* both ways are stale */
	store(&lc, 1, k[3], 13, false);
	assert_int_equal(slot_of(&lc, 1, k[3]), set2);
	store(&lc, 1, k[1], 21, false);		/* k3 moves down over the stale k0 */
	assert_int_equal(slot_of(&lc, 1, k[1]), set2);
	assert_int_equal(slot_of(&lc, 1, k[3]), set2 + 1);
	assert_hit(&lc, 1, k[3], 13, false);
	assert_hit(&lc, 1, k[1], 21, false);
	assert_miss(&lc, 1, k[2]);
	assert_miss(&lc, 1, k[0]);
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

/* ==== epochs ==== */

/*
 * The reference: the target's entry before the re-read (git show
 * 0c04671:dm-dedup/dm-dedup-target.c, epoch_get), over the same struct.
 * Its exit and flip were those of dm-dedup-epoch.h.  Test code only.
 */
static unsigned int old_epoch_enter(struct dd_epochs *e)
{
	unsigned int epoch = READ_ONCE(e->cur);

	atomic_inc(&e->count[epoch]);
	smp_mb__after_atomic();
	return epoch;
}

typedef unsigned int (*enter_fn)(struct dd_epochs *e);

/* A block a reader may use while it holds its epoch. */
#define BLOCK_LIVE	0x4c495645UL
#define BLOCK_POISON	0xdeadUL

struct block {
	unsigned long magic;
	u64 id;
};

static struct block *block_new(u64 id)
{
	struct block *b = malloc(sizeof(*b));

	assert_non_null(b);
	__atomic_store_n(&b->magic, BLOCK_LIVE, __ATOMIC_RELAXED);
	__atomic_store_n(&b->id, id, __ATOMIC_RELAXED);
	return b;
}

static void block_poison(struct block *b)
{
	__atomic_store_n(&b->magic, BLOCK_POISON, __ATOMIC_RELAXED);
}

static bool block_live(const struct block *b)
{
	return __atomic_load_n(&b->magic, __ATOMIC_RELAXED) == BLOCK_LIVE;
}

/* A flip in another thread: done is set when it returned. */
struct flipper {
	struct dd_epochs *e;
	int done;
};

static void *flip_thread(void *arg)
{
	struct flipper *f = arg;

	dd_epoch_flip_and_drain(f->e);
	set_flag(&f->done);
	return NULL;
}

static void enter_counts_in_the_current_epoch_and_exit_uncounts(void **state)
{
	struct dd_epochs e;
	unsigned int a, b;

	dd_epochs_init(&e);
	a = dd_epoch_enter(&e);
	assert_int_equal(a, 0);
	assert_int_equal(atomic_read(&e.count[0]), 1);
	b = dd_epoch_enter(&e);
	assert_int_equal(b, 0);
	assert_int_equal(atomic_read(&e.count[0]), 2);
	dd_epoch_exit(&e, a);
	dd_epoch_exit(&e, b);
	assert_int_equal(atomic_read(&e.count[0]), 0);
	dd_epoch_flip_and_drain(&e);		/* nobody in: returns at once */
	assert_int_equal(e.cur, 1);
	assert_int_equal(dd_epoch_enter(&e), 1);
	assert_int_equal(atomic_read(&e.count[1]), 1);
	dd_epoch_exit(&e, 1);
	dd_epoch_flip_and_drain(&e);
	assert_int_equal(e.cur, 0);
	assert_int_equal(atomic_read(&e.count[0]) + atomic_read(&e.count[1]), 0);
}

static void a_flip_waits_until_the_old_epoch_is_empty(void **state)
{
	struct dd_epochs e;
	struct flipper f = { &e, 0 };
	unsigned int a, b, c;
	pthread_t t;

	dd_epochs_init(&e);
	a = dd_epoch_enter(&e);
	b = dd_epoch_enter(&e);
	t = spawn(flip_thread, &f);
	while (READ_ONCE(e.cur) == 0)
		sched_yield();
	c = dd_epoch_enter(&e);			/* the new epoch: not waited for */
	assert_int_equal(c, 1);
	sleep_ms(50);
	assert_false(flag(&f.done));
	dd_epoch_exit(&e, a);
	sleep_ms(20);
	assert_false(flag(&f.done));
	dd_epoch_exit(&e, b);			/* the last one wakes the flip */
	assert_true(await_flag(&f.done, 5000));
	pthread_join(t, NULL);
	dd_epoch_exit(&e, c);
}

/*
 * The window of the header's argument, in one thread: the test seam in the
 * shim's atomic_inc() runs the writer between the reader's read of the
 * epoch and its count.
 */
struct window {
	struct dd_epochs e;
	struct block *cur;		/* what a reader would look up */
	struct block *blocks[3];
	int flips;			/* flips the writer makes in the window */
	int incs;			/* atomic_inc() calls of the reader */
};

static __thread struct window *window_ctx;

static void writer_runs_in_the_window(atomic_t *v)
{
	struct window *w = window_ctx;
	int i;

	if (w->incs++)
		return;				/* only in the first window */
	for (i = 0; i < w->flips; i++) {
		smp_store_release(&w->cur, w->blocks[i + 1]);	/* a mapping changes, */
		dd_epoch_flip_and_drain(&w->e);			/* then the commit flips */
	}
}

struct window_result {
	unsigned int epoch;		/* what enter returned */
	unsigned int cur;		/* the epoch then */
	int count_cur;			/* the count of the current epoch */
	int incs;
	bool looked_up_latest;		/* the lookup after enter saw the last change */
	bool next_flip_waited;		/* the next flip waited for this reader */
};

static struct window_result run_window(enter_fn enter, int flips)
{
	struct window w = { .flips = flips };
	struct window_result res;
	struct flipper f = { &w.e, 0 };
	pthread_t t;
	int i;

	dd_epochs_init(&w.e);
	for (i = 0; i < 3; i++)
		w.blocks[i] = block_new((u64)i);
	w.cur = w.blocks[0];
	window_ctx = &w;
	kshim_atomic_inc_hook = writer_runs_in_the_window;
	res.epoch = enter(&w.e);
	kshim_atomic_inc_hook = NULL;
	res.cur = READ_ONCE(w.e.cur);
	res.count_cur = atomic_read(&w.e.count[res.cur]);
	res.incs = w.incs;
	res.looked_up_latest = smp_load_acquire(&w.cur) == w.blocks[flips];

	/* The next commit: it must not return while this reader is in. */
	t = spawn(flip_thread, &f);
	res.next_flip_waited = !await_flag(&f.done, 100);
	dd_epoch_exit(&w.e, res.epoch);
	assert_true(await_flag(&f.done, 5000));
	pthread_join(t, NULL);
	for (i = 0; i < 3; i++)
		free(w.blocks[i]);
	return res;
}

/* e -> e^1 -> e between the read and the re-read: the count is kept, and safe. */
static void enter_across_two_flips_back_to_its_epoch_keeps_a_safe_count(void **state)
{
	struct window_result r = run_window(dd_epoch_enter, 2);

	assert_int_equal(r.incs, 1);		/* no retry: the epoch reads the same */
	assert_int_equal(r.epoch, 0);
	assert_int_equal(r.cur, 0);
	assert_int_equal(r.count_cur, 1);	/* counted where the next flip looks */
	assert_true(r.looked_up_latest);	/* and sees both changes */
	assert_true(r.next_flip_waited);
}

/* e -> e^1 between the read and the count: enter notices and counts again. */
static void enter_across_one_flip_counts_again_in_the_new_epoch(void **state)
{
	struct window_result r = run_window(dd_epoch_enter, 1);

	assert_int_equal(r.incs, 2);		/* one retry */
	assert_int_equal(r.epoch, 1);
	assert_int_equal(r.cur, 1);
	assert_int_equal(r.count_cur, 1);
	assert_true(r.looked_up_latest);
	assert_true(r.next_flip_waited);
}

/* The same window, the reference old entry: counted in the drained epoch. */
static void reference_old_enter_across_one_flip_is_not_waited_for(void **state)
{
	struct window_result r = run_window(old_epoch_enter, 1);

	assert_int_equal(r.incs, 1);
	assert_int_equal(r.epoch, 0);		/* the epoch the flip already drained */
	assert_int_equal(r.cur, 1);
	assert_int_equal(r.count_cur, 0);
	assert_false(r.next_flip_waited);	/* the bug: a commit would not wait */
}

/*
 * Two threads, one interleaving forced by the seam: the reader reads the
 * epoch and stops; the writer changes the mapping (block A -> B) and flips;
 * the reader counts and looks B up; the writer changes it again (B -> C),
 * flips, and poisons B (reuses the block).  The reader then checks B.
 * A correct scheme makes the second flip wait for the reader, so the reader
 * finds B live (it waits up to 200 ms for the poisoning, which does not come
 * before it leaves).
 */
struct two_flips {
	struct dd_epochs e;
	struct block *cur;
	enter_fn enter;
	int reader_read_epoch, first_flip_done, reader_looked_up, reader_leaving, poisoned;
	bool reader_found_live, poisoned_before_reader_left, stalled;
	unsigned int reader_epoch;
};

static __thread struct two_flips *two_flips_ctx;

static void stop_after_reading_the_epoch(atomic_t *v)
{
	struct two_flips *tf = two_flips_ctx;

	kshim_atomic_inc_hook = NULL;		/* once */
	set_flag(&tf->reader_read_epoch);
	if (!await_flag(&tf->first_flip_done, 10000))
		tf->stalled = true;
}

static void *two_flips_reader(void *arg)
{
	struct two_flips *tf = arg;
	struct block *b;
	unsigned int e;

	two_flips_ctx = tf;
	kshim_atomic_inc_hook = stop_after_reading_the_epoch;
	e = tf->enter(&tf->e);
	b = smp_load_acquire(&tf->cur);
	set_flag(&tf->reader_looked_up);
	await_flag(&tf->poisoned, 200);		/* the I/O takes a while */
	tf->reader_found_live = block_live(b);
	tf->reader_epoch = e;
	set_flag(&tf->reader_leaving);
	dd_epoch_exit(&tf->e, e);
	return NULL;
}

static bool run_two_flips(enter_fn enter, struct two_flips *tf)
{
	struct block *a = block_new(1), *b = block_new(2), *c = block_new(3);
	pthread_t t;

	memset(tf, 0, sizeof(*tf));
	dd_epochs_init(&tf->e);
	tf->enter = enter;
	tf->cur = a;
	t = spawn(two_flips_reader, tf);
	assert_true(await_flag(&tf->reader_read_epoch, 10000));
	smp_store_release(&tf->cur, b);
	dd_epoch_flip_and_drain(&tf->e);
	block_poison(a);
	set_flag(&tf->first_flip_done);
	assert_true(await_flag(&tf->reader_looked_up, 10000));
	smp_store_release(&tf->cur, c);
	dd_epoch_flip_and_drain(&tf->e);
	tf->poisoned_before_reader_left = !flag(&tf->reader_leaving);
	block_poison(b);
	set_flag(&tf->poisoned);
	pthread_join(t, NULL);
	assert_false(tf->stalled);
	free(a);
	free(b);
	free(c);
	return tf->reader_found_live;
}

static void a_reader_stopped_before_its_count_survives_two_flips(void **state)
{
	struct two_flips tf;

	if (!run_two_flips(dd_epoch_enter, &tf))
		fail_msg("the reader (epoch %u) found its block poisoned: the second flip "
			 "did not wait for it", tf.reader_epoch);
	assert_false(tf.poisoned_before_reader_left);
	assert_int_equal(tf.reader_epoch, 1);
}

static void reference_old_enter_lets_the_second_flip_reuse_a_block_in_use(void **state)
{
	struct two_flips tf;

	assert_false(run_two_flips(old_epoch_enter, &tf));
	assert_true(tf.poisoned_before_reader_left);
	assert_int_equal(tf.reader_epoch, 0);
}

/*
 * Many readers, one writer, many flips.  A reader enters, looks the current
 * block up, checks it is live, sometimes yields (its I/O), checks again and
 * leaves.  The writer replaces the block, flips and drains, then poisons the
 * old one (and, with free_old, frees it: AddressSanitizer then catches any
 * later use).  The seam yields now and then between a reader's read of the
 * epoch and its count, where the old scheme went wrong.
 */
#define ST_READERS	2
#define ST_FLIPS	100000
#define ST_ENTERS_PER_FLIP 20	/* the writer paces its flips by the readers' enters */
#define ST_OLD_MAX_FLIPS 1000000	/* the reference: until its first failure */
/* Both runs pace every flip by the readers' progress, however slow the
 * machine (a loaded CI host took 5 s for 99 % of the full run): this bound
 * only turns a hang into a failure.  The reference stops at its first
 * violation or after ST_OLD_MAX_FLIPS flips, never on a clock: a time cap
 * made it pass or fail by the host's load (it once found nothing in 5 s on
 * a host running two guests beside it). */
#define ST_HANG_NS	300000000000ULL

struct stress {
	struct dd_epochs e;
	struct block *cur;
	enter_fn enter;
	bool free_old;
	int stop;
	u64 violations, enters, incs, flips;
	u64 enters_live;		/* counted as they go, for the pace */
	int why_taken;
	char why[200];	/* the first violation, read after the join */
};

static __thread u64 seam_rng;
static __thread u64 seam_incs;

static void yield_sometimes(atomic_t *v)
{
	seam_incs++;
	if ((rnd(&seam_rng) & 7) == 0)
		sched_yield();
}

static void *stress_reader(void *arg)
{
	struct stress *st = arg;
	u64 s = (u64)pthread_self() | 1, enters = 0;
	int first = 0;

	seam_rng = s * 3;
	seam_incs = 0;
	kshim_atomic_inc_hook = yield_sometimes;
	while (!flag(&st->stop)) {
		unsigned int e = st->enter(&st->e);
		struct block *b = smp_load_acquire(&st->cur);
		u64 id = __atomic_load_n(&b->id, __ATOMIC_RELAXED);
		bool ok = block_live(b);

		if ((rnd(&s) & 3) == 0)
			sched_yield();
		else
			for (int i = 0; i < 20; i++)
				barrier();
		ok = ok && block_live(b) && __atomic_load_n(&b->id, __ATOMIC_RELAXED) == id;
		if (!ok && !__atomic_fetch_add(&st->violations, 1, __ATOMIC_SEQ_CST) &&
		    __atomic_compare_exchange_n(&st->why_taken, &first, 1, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			snprintf(st->why, sizeof(st->why),
				 "a reader in epoch %u used block %llu after the flip that drained it",
				 e, (unsigned long long)id);
		dd_epoch_exit(&st->e, e);
		if (!(++enters & 15))
			__atomic_fetch_add(&st->enters_live, 16, __ATOMIC_RELAXED);
	}
	kshim_atomic_inc_hook = NULL;
	__atomic_fetch_add(&st->enters, enters, __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->incs, seam_incs, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * Flips until max_flips, or (stop_on_violation) until the first use after a
 * drain if that comes first; each flip waits for the readers' enters.
 */
static void run_stress(struct stress *st, enter_fn enter, bool free_old, u64 max_flips,
		       bool stop_on_violation)
{
	struct block **kept = NULL;
	pthread_t t[ST_READERS];
	u64 i, n = 0, t0 = now_ns();
	int r;

	memset(st, 0, sizeof(*st));
	dd_epochs_init(&st->e);
	st->enter = enter;
	st->free_old = free_old;
	st->cur = block_new(0);
	if (!free_old) {
		kept = calloc(max_flips, sizeof(*kept));
		assert_non_null(kept);
	}
	for (r = 0; r < ST_READERS; r++)
		t[r] = spawn(stress_reader, st);
	for (i = 1; i <= max_flips; i++) {
		struct block *old = st->cur;

		smp_store_release(&st->cur, block_new(i));
		dd_epoch_flip_and_drain(&st->e);
		block_poison(old);
		if (free_old)
			free(old);
		else
			kept[n++] = old;
		st->flips = i;
		if (stop_on_violation && __atomic_load_n(&st->violations, __ATOMIC_SEQ_CST))
			break;
		while (__atomic_load_n(&st->enters_live, __ATOMIC_RELAXED) < i * ST_ENTERS_PER_FLIP &&
		       now_ns() - t0 < ST_HANG_NS)
			sched_yield();
	}
	set_flag(&st->stop);
	for (r = 0; r < ST_READERS; r++)
		pthread_join(t[r], NULL);
	free(st->cur);
	for (i = 0; i < n; i++)
		free(kept[i]);
	free(kept);
}

static void readers_never_use_a_block_after_the_flip_that_drained_it(void **state)
{
	struct stress st;
	u64 t0 = now_ns();

	run_stress(&st, dd_epoch_enter, true, ST_FLIPS, false);
	printf("# %llu flips, %llu enters, %llu re-counts after a flip, %.2f s\n",
	       (unsigned long long)st.flips, (unsigned long long)st.enters,
	       (unsigned long long)(st.incs - st.enters), (double)(now_ns() - t0) / 1e9);
	if (st.violations)
		fail_msg("%llu uses after a drain; first: %s",
			 (unsigned long long)st.violations, st.why);
	assert_int_equal(st.flips, ST_FLIPS);
	assert_true(st.enters >= ST_FLIPS * ST_ENTERS_PER_FLIP);
	assert_true(st.incs > st.enters);	/* the re-count path ran */
}

static void reference_old_enter_fails_the_same_stress(void **state)
{
	struct stress st;
	u64 t0 = now_ns();

	run_stress(&st, old_epoch_enter, false, ST_OLD_MAX_FLIPS, true);
	printf("# reference: %llu uses after a drain in %llu flips, %llu enters, %.2f s; first: %s\n",
	       (unsigned long long)st.violations, (unsigned long long)st.flips,
	       (unsigned long long)st.enters, (double)(now_ns() - t0) / 1e9, st.why);
	assert_true(st.violations > 0);
}

/* ==== the shim itself: a broken scheme fails, it does not hang ==== */

static void *set_flag_later(void *arg)
{
	sleep_ms(20);
	set_flag(arg);				/* and no wake_up() */
	return NULL;
}

/* Runs fn in a child; returns its stderr; the child must die of SIGABRT. */
static void expect_abort(void (*fn)(void), const char *needle)
{
	char buf[1024] = "";
	int pfd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = 0;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("child status %#x, stderr: %s", status, buf);
	if (!strstr(buf, needle))
		fail_msg("stderr lacks \"%s\": %s", needle, buf);
}

static void wait_never_true(void)
{
	wait_queue_head_t wq;
	int never = 0;

	kshim_wait_timeout_ms = 100;
	init_waitqueue_head(&wq);
	wait_event(wq, READ_ONCE(never));
}

static void wait_never_woken(void)
{
	wait_queue_head_t wq;
	int later = 0;
	pthread_t t;

	kshim_wait_timeout_ms = 300;
	init_waitqueue_head(&wq);
	pthread_create(&t, NULL, set_flag_later, &later);
	wait_event(wq, flag(&later));
}

static void wait_event_aborts_instead_of_hanging(void **state)
{
	expect_abort(wait_never_true, "the condition is still false");
	expect_abort(wait_never_woken, "a lost wake-up");
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
		cmocka_unit_test(consecutive_lbns_share_a_page_of_sets_and_groups_spread),
		cmocka_unit_test(two_colliding_keys_both_stay),
		cmocka_unit_test(a_new_key_in_a_full_set_moves_way_0_down_and_evicts_way_1),
		cmocka_unit_test(a_forgotten_or_stale_way_0_takes_a_new_key_without_evicting),
		cmocka_unit_test(a_store_of_an_identical_entry_is_a_no_op),
		cmocka_unit_test(lookup_after_forget_misses),
		cmocka_unit_test(a_read_run_ends_where_the_pbns_stop_being_consecutive),
		cmocka_unit_test(an_in_place_run_stops_at_the_first_block_not_exclusive),
		cmocka_unit_test(an_unmapped_run_stops_at_the_first_mapped_or_missing_block),
		cmocka_unit_test(a_run_ends_at_a_slot_being_rewritten),
		cmocka_unit_test(forget_range_forgets_exactly_that_range_of_that_volume),
		cmocka_unit_test(forget_range_larger_than_the_cache_clears_it),
		cmocka_unit_test(lookup_after_clear_misses),
		cmocka_unit_test(the_clear_at_the_wrap_empties_every_slot_and_restarts_at_1),
		cmocka_unit_test(no_entry_comes_back_after_the_generation_wraps),
		cmocka_unit_test(concurrent_lookups_return_only_whole_live_entries),
		cmocka_unit_test(enter_counts_in_the_current_epoch_and_exit_uncounts),
		cmocka_unit_test(a_flip_waits_until_the_old_epoch_is_empty),
		cmocka_unit_test(enter_across_two_flips_back_to_its_epoch_keeps_a_safe_count),
		cmocka_unit_test(enter_across_one_flip_counts_again_in_the_new_epoch),
		cmocka_unit_test(reference_old_enter_across_one_flip_is_not_waited_for),
		cmocka_unit_test(a_reader_stopped_before_its_count_survives_two_flips),
		cmocka_unit_test(reference_old_enter_lets_the_second_flip_reuse_a_block_in_use),
		cmocka_unit_test(readers_never_use_a_block_after_the_flip_that_drained_it),
		cmocka_unit_test(reference_old_enter_fails_the_same_stress),
		cmocka_unit_test(wait_event_aborts_instead_of_hanging),
	};

	return cmocka_run_group_tests_name("kglue", tests, NULL, NULL);
}
