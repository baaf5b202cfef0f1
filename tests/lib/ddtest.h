/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the unit, crash and fuzz tests. */
#ifndef DDTEST_H
#define DDTEST_H

#include "libdmdedup.h"
#include "check.h"

/* ---- deterministic random numbers ---- */
static inline u64 tr_next(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline u64 tr_below(u64 *s, u64 n)
{
	return n ? tr_next(s) % n : 0;
}

/* ---- u64 -> u64 hash map (open addressing, key ~0 reserved) ---- */
struct hmap {
	u64 *key, *val;
	u64 size, used;
};
void hm_init(struct hmap *m);
void hm_free(struct hmap *m);
void hm_clear(struct hmap *m);
bool hm_get(const struct hmap *m, u64 k, u64 *v);
void hm_put(struct hmap *m, u64 k, u64 v);
bool hm_del(struct hmap *m, u64 k);
void hm_copy(struct hmap *dst, const struct hmap *src);
/* Iterate: for (i = 0; hm_iter(m, &i, &k, &v);) */
bool hm_iter(const struct hmap *m, u64 *i, u64 *k, u64 *v);

/* ---- a pool on a fault-injecting RAM device ---- */
struct tpool {
	struct dd_ramdev *rd;
	struct dd_bm *bm;
	struct dd_pool *pool;
	struct dd_bm_opts bmo;
	struct dd_format_params fp;
	struct dd_pool_hooks hooks;	/* passed to every open */
	u64 last_txn;			/* committed txn when tp_close() ran */
};

int tp_create(struct tpool *tp, u64 meta_blocks, u64 data_blocks, u32 journal,
	      const struct dd_bm_opts *bmo);
int tp_open(struct tpool *tp);		/* bm + pool over tp->rd */
void tp_close(struct tpool *tp);	/* clean close */
void tp_crash(struct tpool *tp);	/* drop everything cached, power cycle the device */
int tp_reopen(struct tpool *tp);	/* clean close + open */
void tp_destroy(struct tpool *tp);
/* Runs dedup_check on the device; returns the number of errors (prints them). */
u64 tp_check(struct tpool *tp, struct dd_check_result *res);
/* Writes one block: reserve + insert. */
int tp_write(struct dd_volume *v, u64 lbn, u64 *pbn);

void tp_quiet(bool quiet);	/* silence engine log lines (expected errors) */

/*
 * NULL if a (recovered) pool is fit for work: read-write, needs_check clear.
 * Otherwise why not, e.g. "it needs a check (needs_check is set)".  A crash
 * must never leave a pool that comes back read-only.
 */
const char *tp_not_writable(struct dd_pool *pool);

/* A digest of everything a user can observe (volumes, mappings with their
 * exclusive bits, counters) and the reference counts; 0 if a read fails.
 * An interrupted snapshot digests as the deleted volume opening makes it. */
u64 tp_digest(struct dd_pool *pool);

/* ---- the model: what each volume maps, by block identity (token) ---- */
#define MODEL_MAX_VOLS 64

struct model {
	struct hmap vol[MODEL_MAX_VOLS];	/* lbn -> token */
	bool exists[MODEL_MAX_VOLS];
	u64 next_token;
};

void model_init(struct model *m);
void model_free(struct model *m);
void model_copy(struct model *dst, const struct model *src);
u64 model_refs(const struct model *m, u64 token);	/* entries holding token */
/* Compares the engine with the model: mappings, sharing, counts.  Returns 0
 * or prints the first difference and returns -1. */
int model_compare(const struct model *m, struct dd_pool *pool);

#endif
