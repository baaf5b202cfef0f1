// SPDX-License-Identifier: GPL-2.0
/*
 * The scanner's hash index (contract in dd-index.h): sets of DD_INDEX_WAYS
 * 16-byte slots, two sets per hash chosen by its high bits, a hook chosen by
 * its low bits, least-recently-used replacement by an 8-bit clock.
 */
#include "dd-index.h"

#define DD_IDX_PBN_MASK		((1ULL << 48) - 1)
#define DD_IDX_DOMAIN_SHIFT	48
#define DD_IDX_CLOCK_SHIFT	56

struct dd_index {
	struct dd_index_slot *slot;
	u64 nr_sets;
	u64 entries;
	u32 shift;
	u8 clock;		/* advances every capacity/256 inserts */
	u64 tick;
	u64 lookups, hits, inserts, evictions, removals;
};

static u64 dd_idx_val(u64 pbn, u8 domain, u8 clock)
{
	return ((pbn + 1) & DD_IDX_PBN_MASK) | ((u64)domain << DD_IDX_DOMAIN_SHIFT) |
	       ((u64)clock << DD_IDX_CLOCK_SHIFT);
}

static u64 dd_idx_pbn(u64 val) { return (val & DD_IDX_PBN_MASK) - 1; }
static u8 dd_idx_domain(u64 val) { return (u8)(val >> DD_IDX_DOMAIN_SHIFT); }
static u8 dd_idx_clock(u64 val) { return (u8)(val >> DD_IDX_CLOCK_SHIFT); }
static bool dd_idx_used(u64 val) { return val & DD_IDX_PBN_MASK; }

static u64 dd_idx_sets_for(u64 bytes)
{
	u64 sets = bytes / (sizeof(struct dd_index_slot) * DD_INDEX_WAYS);

	if (sets >= (1ULL << 32))
		sets = (1ULL << 32) - 1;
	return sets ? sets : 1;
}

/*
 * Each hash has two sets, chosen by multiply-shift (any number of sets below
 * 2^32): the first by the high half of the hash, the second by the high half
 * of the hash times an odd constant, which mixes every bit.  An entry lives in
 * either; a set that is full spills into the other one, so a table loses
 * entries only when both of a hash's sets are full (with one set, 1 set in 20
 * overflows at half load).  The low bits, which choose the hooks, are the
 * same in every hook; neither choice depends on them alone.
 */
static u64 dd_idx_set_nr(const struct dd_index *idx, u64 hash, unsigned int which)
{
	u64 h = which ? hash * 0x9e3779b97f4a7c15ULL : hash;

	return ((h >> 32) * idx->nr_sets) >> 32;
}

static struct dd_index_slot *dd_idx_set(const struct dd_index *idx, u64 hash,
					unsigned int which)
{
	return &idx->slot[dd_idx_set_nr(idx, hash, which) * DD_INDEX_WAYS];
}

/* The slot holding (hash, domain) in either of its sets, or NULL. */
static struct dd_index_slot *dd_idx_find(const struct dd_index *idx, u64 hash, u8 domain)
{
	unsigned int which, w;

	for (which = 0; which < 2; which++) {
		struct dd_index_slot *set = dd_idx_set(idx, hash, which);

		for (w = 0; w < DD_INDEX_WAYS; w++) {
			struct dd_index_slot *s = &set[w];

			if (dd_idx_used(s->val) && s->hash == hash &&
			    dd_idx_domain(s->val) == domain)
				return s;
		}
		if (idx->nr_sets == 1)
			break;
	}
	return NULL;
}

static struct dd_index_slot *dd_idx_alloc(u64 nr_sets)
{
	return dd_zalloc(nr_sets * DD_INDEX_WAYS * sizeof(struct dd_index_slot));
}

int dd_index_create(u64 bytes, struct dd_index **out)
{
	struct dd_index *idx;

	if (bytes < DD_INDEX_MIN_BYTES)
		bytes = DD_INDEX_MIN_BYTES;
	idx = dd_zalloc(sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->nr_sets = dd_idx_sets_for(bytes);
	idx->slot = dd_idx_alloc(idx->nr_sets);
	if (!idx->slot) {
		dd_free(idx);
		return -ENOMEM;
	}
	*out = idx;
	return 0;
}

void dd_index_destroy(struct dd_index *idx)
{
	if (!idx)
		return;
	dd_free(idx->slot);
	dd_free(idx);
}

static u64 dd_idx_capacity(const struct dd_index *idx)
{
	return idx->nr_sets * DD_INDEX_WAYS;
}

/* How long ago (in clock ticks) an entry was last used. */
static u8 dd_idx_age(const struct dd_index *idx, u64 val)
{
	return (u8)(idx->clock - dd_idx_clock(val));
}

static void dd_idx_advance(struct dd_index *idx)
{
	u64 period = dd_idx_capacity(idx) / 256;

	if (++idx->tick >= (period ? period : 1)) {
		idx->tick = 0;
		idx->clock++;
	}
}

static unsigned int dd_idx_free_ways(const struct dd_index_slot *set)
{
	unsigned int w, n = 0;

	for (w = 0; w < DD_INDEX_WAYS; w++)
		n += !dd_idx_used(set[w].val);
	return n;
}

/* Puts an entry into one of its sets: refreshes a match, else fills a free
 * slot of the emptier set, else replaces the least recently used entry of
 * the two sets.  Returns true if it evicted. */
static bool dd_idx_put(struct dd_index *idx, u64 hash, u8 domain, u64 pbn, u8 clock)
{
	struct dd_index_slot *victim = dd_idx_find(idx, hash, domain), *set[2];
	unsigned int which, w;
	bool evicted;

	if (victim) {
		victim->val = dd_idx_val(pbn, domain, clock);
		return false;
	}
	set[0] = dd_idx_set(idx, hash, 0);
	set[1] = dd_idx_set(idx, hash, 1);
	if (dd_idx_free_ways(set[1]) > dd_idx_free_ways(set[0])) {
		set[1] = set[0];
		set[0] = dd_idx_set(idx, hash, 1);
	}
	for (which = 0; which < 2; which++) {
		for (w = 0; w < DD_INDEX_WAYS; w++) {
			struct dd_index_slot *s = &set[which][w];

			if (!dd_idx_used(s->val)) {
				victim = s;
				goto fill;
			}
			if (!victim || dd_idx_age(idx, s->val) > dd_idx_age(idx, victim->val))
				victim = s;
		}
	}
fill:
	evicted = dd_idx_used(victim->val);
	victim->hash = hash;
	victim->val = dd_idx_val(pbn, domain, clock);
	if (!evicted)
		idx->entries++;
	return evicted;
}

int dd_index_resize(struct dd_index *idx, u64 bytes)
{
	struct dd_index old = *idx;
	u64 i, n, nr_sets;
	int age;

	if (bytes < DD_INDEX_MIN_BYTES)
		bytes = DD_INDEX_MIN_BYTES;
	nr_sets = dd_idx_sets_for(bytes);
	if (nr_sets == idx->nr_sets)
		return 0;
	idx->slot = dd_idx_alloc(nr_sets);
	if (!idx->slot) {
		idx->slot = old.slot;
		return -ENOMEM;
	}
	idx->nr_sets = nr_sets;
	idx->entries = 0;
	n = old.nr_sets * DD_INDEX_WAYS;
	/* Oldest first: when the new table is smaller, the newest entries win. */
	for (age = 255; age >= 0; age--) {
		for (i = 0; i < n; i++) {
			struct dd_index_slot *s = &old.slot[i];

			if (!dd_idx_used(s->val) || dd_idx_age(&old, s->val) != age)
				continue;
			if (dd_idx_put(idx, s->hash, dd_idx_domain(s->val), dd_idx_pbn(s->val),
				       dd_idx_clock(s->val)))
				idx->evictions++;
		}
		dd_cond_resched();
	}
	dd_free(old.slot);
	return 0;
}

void dd_index_set_shift(struct dd_index *idx, u32 shift)
{
	idx->shift = shift > 32 ? 32 : shift;
}

u32 dd_index_shift(const struct dd_index *idx)
{
	return idx->shift;
}

void dd_index_tune(struct dd_index *idx, u64 nr_blocks)
{
	u64 room = dd_idx_capacity(idx) / 2;
	u32 shift = 0;

	while (shift < 32 && (nr_blocks >> shift) > room)
		shift++;
	idx->shift = shift;
}

bool dd_index_is_hook(const struct dd_index *idx, u64 hash)
{
	return !idx->shift || !(hash & ((1ULL << idx->shift) - 1));
}

bool dd_index_lookup(struct dd_index *idx, u64 hash, u8 domain, u64 *pbn)
{
	struct dd_index_slot *s = dd_idx_find(idx, hash, domain);

	idx->lookups++;
	if (!s)
		return false;
	*pbn = dd_idx_pbn(s->val);
	/* A hit keeps the entry young. */
	s->val = dd_idx_val(*pbn, domain, idx->clock);
	idx->hits++;
	return true;
}

void dd_index_insert(struct dd_index *idx, u64 hash, u8 domain, u64 pbn)
{
	idx->inserts++;
	if (dd_idx_put(idx, hash, domain, pbn, idx->clock))
		idx->evictions++;
	dd_idx_advance(idx);
}

void dd_index_remove(struct dd_index *idx, u64 hash, u8 domain, u64 pbn)
{
	struct dd_index_slot *s = dd_idx_find(idx, hash, domain);

	if (!s || dd_idx_pbn(s->val) != pbn)
		return;
	s->hash = 0;
	s->val = 0;
	idx->entries--;
	idx->removals++;
}

void dd_index_clear(struct dd_index *idx)
{
	memset(idx->slot, 0, dd_idx_capacity(idx) * sizeof(*idx->slot));
	idx->entries = 0;
}

void dd_index_get_stats(const struct dd_index *idx, struct dd_index_stats *st)
{
	st->capacity = dd_idx_capacity(idx);
	st->entries = idx->entries;
	st->bytes = st->capacity * sizeof(struct dd_index_slot);
	st->sample_shift = idx->shift;
	st->lookups = idx->lookups;
	st->hits = idx->hits;
	st->inserts = idx->inserts;
	st->evictions = idx->evictions;
	st->removals = idx->removals;
}

bool dd_index_next(const struct dd_index *idx, u64 *pos, u64 *hash, u8 *domain, u64 *pbn)
{
	u64 n = dd_idx_capacity(idx);

	for (; *pos < n; (*pos)++) {
		const struct dd_index_slot *s = &idx->slot[*pos];

		if (dd_idx_used(s->val)) {
			*hash = s->hash;
			*domain = dd_idx_domain(s->val);
			*pbn = dd_idx_pbn(s->val);
			(*pos)++;
			return true;
		}
	}
	return false;
}
