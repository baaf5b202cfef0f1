// SPDX-License-Identifier: GPL-2.0
/*
 * Layer 5s (dd-internal.h): the scanner's side of the engine, beside the
 * volume layer whose maps it changes.  The contract is in dd-scan.h, the
 * reasons in docs/scanner.md.
 *
 *  - Written marks: a set of data blocks in memory, one bitmap chunk per
 *    DD_BITS_PER_BITMAP blocks (the span of one leaf of the written tree),
 *    allocated as regions are written.  'marked' collects the marks since
 *    the pass began, 'todo' is what the pass still has to see.  Their union
 *    is kept in the written tree, a few changed chunks per commit (all at a
 *    clean close), so a crash loses at most the last marks: savings only.
 *  - Pins: blocks a batch compares; dd_map_lookup never calls them
 *    exclusive, dd_map_make_exclusive refuses them, the allocator skips
 *    them (pool->pins, a set like the reservations).
 *  - Predictions: after a verified merge of (A, x) into the block of
 *    (B, y), the block of (A, x + 1) is compared with that of (B, y + 1)
 *    before the index is asked: runs are found from one hook.
 */
#include "dd-internal.h"
#include "dd-scan.h"

#define DD_CHUNK_BITS		DD_BITS_PER_BITMAP
#define DD_CHUNK_WORDS		DD_BITMAP_WORDS
/* Written-tree leaves persisted with each commit (the rest wait). */
#define DD_WRITTEN_PER_COMMIT	8
#define DD_PRED_SLOTS		64

struct dd_wset {
	u64 **chunk;		/* nr_chunks bitmaps, NULL = empty */
	u64 nr_chunks;
	u64 count;
};

struct dd_pred {
	bool valid;
	u32 vol, pvol;
	u64 next_lbn;		/* (vol, next_lbn) is predicted to hold ... */
	u64 plbn;		/* ... what (pvol, plbn) holds */
};

struct dd_scan {
	struct dd_wset marked, todo;
	u64 *dirty;		/* chunks whose union changed since they were persisted */
	u64 nr_dirty;
	bool active, full;
	u64 cursor;
	u64 pass_todo, pass_done;
	struct dd_index *index;
	u32 share_cap;
	u32 batch;
	struct dd_pred pred[DD_PRED_SLOTS];
	u64 scanned, volatile_skipped, false_hits, raced, marks_dropped;
	/* unsharing: the walk's cursor (volume, LBN) and its progress */
	bool u_active;
	u32 u_vol;
	u64 u_lbn;
	u64 u_todo, u_done, u_raced;
};

/* Internal item flags, beside the public DD_SI_* ones. */
#define DD_SI_PINNED		(1u << 16)	/* we pinned D */
#define DD_SI_CAND_PINNED	(1u << 17)	/* we pinned C */
#define DD_SI_HOOK		(1u << 18)	/* D's hash is one the index keeps */
#define DD_SI_CAND_KNOWN	(1u << 19)	/* cand_vol/lbn name an owner of C */
#define DD_SI_REVERSE		(1u << 20)	/* D is shared: C (owned) merges into D */

/* ---- block sets ---------------------------------------------------------- */

static u64 dd_chunks_for(u64 nr_blocks)
{
	return (nr_blocks + DD_CHUNK_BITS - 1) / DD_CHUNK_BITS;
}

static int dd_wset_grow(struct dd_wset *s, u64 nr_chunks)
{
	u64 **n;

	if (nr_chunks <= s->nr_chunks)
		return 0;
	n = dd_zalloc(sizeof(*n) * nr_chunks);
	if (!n)
		return -ENOMEM;
	if (s->nr_chunks)
		memcpy(n, s->chunk, sizeof(*n) * s->nr_chunks);
	dd_free(s->chunk);
	s->chunk = n;
	s->nr_chunks = nr_chunks;
	return 0;
}

static void dd_wset_clear(struct dd_wset *s)
{
	u64 c;

	for (c = 0; c < s->nr_chunks; c++) {
		dd_free(s->chunk[c]);
		s->chunk[c] = NULL;
	}
	s->count = 0;
}

static void dd_wset_destroy(struct dd_wset *s)
{
	dd_wset_clear(s);
	dd_free(s->chunk);
	s->chunk = NULL;
	s->nr_chunks = 0;
}

static bool dd_wset_test(const struct dd_wset *s, u64 pbn)
{
	u32 bit;
	u64 c = dd_div_u64_rem(pbn, DD_CHUNK_BITS, &bit);

	return c < s->nr_chunks && s->chunk[c] && (s->chunk[c][bit / 64] & (1ULL << (bit % 64)));
}

/* Returns 1 if newly set, 0 if it was, -ENOMEM. */
static int dd_wset_set(struct dd_wset *s, u64 pbn)
{
	u32 bit;
	u64 c = dd_div_u64_rem(pbn, DD_CHUNK_BITS, &bit), m = 1ULL << (bit % 64);

	if (c >= s->nr_chunks)
		return -EINVAL;
	if (!s->chunk[c]) {
		s->chunk[c] = dd_zalloc(DD_CHUNK_WORDS * sizeof(u64));
		if (!s->chunk[c])
			return -ENOMEM;
	}
	if (s->chunk[c][bit / 64] & m)
		return 0;
	s->chunk[c][bit / 64] |= m;
	s->count++;
	return 1;
}

static void dd_wset_unset(struct dd_wset *s, u64 pbn)
{
	u32 bit;
	u64 c = dd_div_u64_rem(pbn, DD_CHUNK_BITS, &bit), m = 1ULL << (bit % 64);

	if (c < s->nr_chunks && s->chunk[c] && (s->chunk[c][bit / 64] & m)) {
		s->chunk[c][bit / 64] &= ~m;
		s->count--;
	}
}

/* First member >= *pbn below 'end'; false if none. */
static bool dd_wset_next(const struct dd_wset *s, u64 *pbn, u64 end)
{
	u64 p = *pbn;

	while (p < end) {
		u32 bit;
		u64 c = dd_div_u64_rem(p, DD_CHUNK_BITS, &bit);
		const u64 *w;

		if (c >= s->nr_chunks)
			return false;
		w = s->chunk[c];
		if (!w) {
			p = (c + 1) * DD_CHUNK_BITS;
			continue;
		}
		for (; bit < DD_CHUNK_BITS; bit = (bit | 63) + 1) {
			u64 word = w[bit / 64] >> (bit % 64);

			if (word) {
				p = c * DD_CHUNK_BITS + bit + (u32)__builtin_ctzll(word);
				if (p >= end)
					return false;
				*pbn = p;
				return true;
			}
		}
		p = (c + 1) * DD_CHUNK_BITS;
	}
	return false;
}

static void dd_scan_dirty_chunk(struct dd_scan *sc, u64 c)
{
	u64 m = 1ULL << (c % 64);

	if (!(sc->dirty[c / 64] & m)) {
		sc->dirty[c / 64] |= m;
		sc->nr_dirty++;
	}
}

/* Blocks the next commit's pre-commit step may dirty for the written tree:
 * its leaves, and a new path of nodes for each (dd_tx_room counts them). */
static void dd_scan_room(struct dd_pool *pool)
{
	struct dd_scan *sc = pool->scan;
	u64 n = DD_MIN(sc->nr_dirty, (u64)DD_WRITTEN_PER_COMMIT);

	pool->pre_commit_room = (u32)(n * (1 + DD_MAX_HEIGHT));
}

/* ---- written marks ----------------------------------------------------------- */

void dd_scan_mark_written(struct dd_pool *pool, u64 pbn)
{
	struct dd_scan *sc = pool->scan;
	int r;

	if (!sc || pbn >= pool->nr_data_blocks)
		return;
	r = dd_wset_set(&sc->marked, pbn);
	if (r < 0) {
		sc->marks_dropped++;	/* costs the savings of this block, no more */
		return;
	}
	if (r && !dd_wset_test(&sc->todo, pbn)) {
		dd_scan_dirty_chunk(sc, pbn / DD_CHUNK_BITS);
		dd_scan_room(pool);
	}
}

static void dd_scan_union(const struct dd_scan *sc, u64 c, __le64 *out, u32 *count)
{
	const u64 *a = c < sc->marked.nr_chunks ? sc->marked.chunk[c] : NULL;
	const u64 *b = c < sc->todo.nr_chunks ? sc->todo.chunk[c] : NULL;
	u32 w;

	*count = 0;
	for (w = 0; w < DD_CHUNK_WORDS; w++) {
		u64 v = (a ? a[w] : 0) | (b ? b[w] : 0);

		out[w] = cpu_to_le64(v);
		*count += dd_popcount64(v);
	}
}

/* Writes chunk c's union into its written-tree leaf (or removes the leaf). */
static int dd_scan_persist_chunk(struct dd_pool *pool, u64 c)
{
	struct dd_tree t = dd_written_tree(pool);
	struct dd_disk_bitmap *bm;
	struct dd_buf *leaf;
	u32 count;
	int r;

	bm = pool->scratch;
	dd_scan_union(pool->scan, c, bm->word, &count);
	if (!count) {
		r = dd_tree_remove(pool, &t, c);
		return r == -ENODATA ? 0 : r;
	}
	/* No room to grow the tree: keep the marks in memory only. */
	if (dd_meta_free_blocks(pool) < 2 * DD_OP_MAX_DIRTY)
		return -ENOSPC;
	r = dd_tree_find_dirty(pool, &t, c, true, &leaf);
	if (r)
		return r;
	bm = dd_data(leaf);
	dd_scan_union(pool->scan, c, bm->word, &count);
	bm->hdr.count = cpu_to_le16((u16)count);
	dd_blk_put(leaf);
	return 0;
}

/* Persists up to 'max' changed chunks (the pre-commit step). */
static int dd_scan_persist(struct dd_pool *pool, u64 max)
{
	struct dd_scan *sc = pool->scan;
	u64 i, c, n = 0;
	int r;

	if (!sc || !sc->nr_dirty || !dd_writable(pool))
		return 0;
	for (i = 0; i < (sc->marked.nr_chunks + 63) / 64 && n < max; i++) {
		while (sc->dirty[i] && n < max) {
			c = i * 64 + (u64)__builtin_ctzll(sc->dirty[i]);
			r = dd_scan_persist_chunk(pool, c);
			if (r == -ENOSPC)
				return 0;
			if (r)
				return r;
			sc->dirty[i] &= sc->dirty[i] - 1;
			sc->nr_dirty--;
			n++;
		}
	}
	dd_scan_room(pool);
	return 0;
}

int dd_scan_pre_commit(struct dd_pool *pool)
{
	return dd_scan_persist(pool, DD_WRITTEN_PER_COMMIT);
}

/* Loads the written tree into 'marked'. */
static int dd_scan_load_marks(struct dd_pool *pool)
{
	struct dd_tree t = dd_written_tree(pool);
	struct dd_scan *sc = pool->scan;
	u64 li = 0, found;
	int r;

	for (;; li = found + 1) {
		const struct dd_disk_bitmap *bm;
		struct dd_buf *leaf;
		u32 w;

		r = dd_tree_next(pool, &t, li, &found);
		if (r == -ENODATA)
			return 0;
		if (r)
			return r;
		if (found >= sc->marked.nr_chunks)
			return -EILSEQ;
		r = dd_tree_find(pool, &t, found, 0, &leaf);
		if (r)
			return r;
		bm = dd_data(leaf);
		if (!sc->marked.chunk[found])
			sc->marked.chunk[found] = dd_zalloc(DD_CHUNK_WORDS * sizeof(u64));
		if (!sc->marked.chunk[found]) {
			dd_blk_put(leaf);
			return -ENOMEM;
		}
		for (w = 0; w < DD_CHUNK_WORDS; w++) {
			u64 v = le64_to_cpu(bm->word[w]);

			/* Bits past the data device (damage) are dropped. */
			if ((found * DD_CHUNK_BITS + w * 64) >= pool->nr_data_blocks)
				v = 0;
			sc->marked.chunk[found][w] = v;
			sc->marked.count += dd_popcount64(v);
		}
		dd_blk_put(leaf);
	}
}

/* ---- the index, saved at a clean close ----------------------------------------- */

/* Frees the saved index tree (it is reloaded into memory). */
static int dd_scan_drop_saved_index(struct dd_pool *pool)
{
	struct dd_tree t = dd_index_tree(pool);
	u64 found;
	int r;

	while (pool->index_root.block) {
		r = dd_tree_next(pool, &t, 0, &found);
		if (r)
			return r == -ENODATA ? 0 : r;
		r = dd_tx_room(pool, DD_OP_MAX_DIRTY);
		if (r)
			return r;
		r = dd_tree_remove(pool, &t, found);
		if (r)
			return r;
	}
	return 0;
}

static int dd_scan_load_index(struct dd_pool *pool)
{
	struct dd_tree t = dd_index_tree(pool);
	struct dd_scan *sc = pool->scan;
	u64 li = 0, found;
	int r;

	for (;; li = found + 1) {
		const struct dd_disk_index_leaf *l;
		struct dd_buf *leaf;
		u32 i;

		r = dd_tree_next(pool, &t, li, &found);
		if (r == -ENODATA)
			return 0;
		if (r)
			return r;
		r = dd_tree_find(pool, &t, found, 0, &leaf);
		if (r)
			return r;
		l = dd_data(leaf);
		for (i = 0; i < DD_INDEX_PER_LEAF; i++) {
			u64 hash, pbn;
			u8 domain;

			if (dd_ie_decode(&l->entry[i], &hash, &domain, &pbn) &&
			    pbn < pool->nr_data_blocks)
				dd_index_insert(sc->index, hash, domain, pbn);
		}
		dd_blk_put(leaf);
	}
}

int dd_scan_save(struct dd_pool *pool)
{
	struct dd_tree t = dd_index_tree(pool);
	struct dd_scan *sc = pool->scan;
	u64 pos = 0, li = 0, hash, pbn;
	struct dd_buf *leaf = NULL;
	struct dd_disk_index_leaf *l = NULL;
	u32 n = 0;
	u8 domain;
	int r = 0;

	if (!sc || !dd_writable(pool))
		return 0;
	/* Every written mark, however many commits it takes. */
	while (sc->nr_dirty) {
		r = dd_tx_room(pool, (u32)((1 + DD_MAX_HEIGHT) * DD_WRITTEN_PER_COMMIT));
		if (!r)
			r = dd_scan_persist(pool, DD_WRITTEN_PER_COMMIT);
		if (r)
			return dd_pool_settle(pool, dd_tx_fail(pool, r, "saving the written marks"));
		if (dd_meta_free_blocks(pool) < 2 * DD_OP_MAX_DIRTY)
			break;
	}
	r = dd_scan_drop_saved_index(pool);
	if (r)
		return dd_pool_settle(pool, dd_tx_fail(pool, r, "saving the scanner's index"));
	while (dd_index_next(sc->index, &pos, &hash, &domain, &pbn)) {
		if (!leaf) {
			/* Keep a quarter of the metadata device free: the index
			 * is only savings, and what does not fit is rebuilt. */
			if (dd_meta_free_blocks(pool) < pool->nr_meta_blocks / 4 + DD_OP_MAX_DIRTY)
				break;
			r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
			if (!r)
				r = dd_tree_find_dirty(pool, &t, li, true, &leaf);
			if (r)
				break;
			l = dd_data(leaf);
			n = 0;
		}
		dd_ie_encode(&l->entry[n], hash, domain, pbn);
		if (++n == DD_INDEX_PER_LEAF) {
			l->hdr.count = cpu_to_le16((u16)n);
			dd_blk_put(leaf);
			leaf = NULL;
			li++;
		}
	}
	if (leaf) {
		l->hdr.count = cpu_to_le16((u16)n);
		dd_blk_put(leaf);
	}
	if (r == -ENOSPC)
		r = 0;		/* the rest of the index is lost: savings only */
	return dd_pool_settle(pool, r ? dd_tx_fail(pool, r, "saving the scanner's index") : 0);
}

/* ---- setup --------------------------------------------------------------------- */

/* Dense (one entry per data block) up to DD_SCAN_DEFAULT_INDEX_BYTES. */
static u64 dd_scan_default_index(struct dd_pool *pool)
{
	u64 dense = pool->nr_data_blocks * sizeof(struct dd_index_slot);

	return DD_MIN(dense, DD_SCAN_DEFAULT_INDEX_BYTES);
}

int dd_scan_open(struct dd_pool *pool)
{
	struct dd_scan *sc;
	u64 nr = dd_chunks_for(pool->nr_data_blocks);
	int r;

	sc = dd_zalloc(sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->share_cap = pool->scan_cfg.share_cap ? pool->scan_cfg.share_cap :
			DD_SCAN_DEFAULT_SHARE_CAP;
	sc->batch = DD_SCAN_DEFAULT_BATCH;
	r = dd_index_create(pool->scan_cfg.index_bytes ? pool->scan_cfg.index_bytes :
			    dd_scan_default_index(pool), &sc->index);
	if (r)
		goto bad;
	r = -ENOMEM;
	sc->dirty = dd_zalloc(sizeof(u64) * ((nr + 63) / 64 + 1));
	if (!sc->dirty || dd_wset_grow(&sc->marked, nr) || dd_wset_grow(&sc->todo, nr))
		goto bad;
	pool->scan = sc;
	r = dd_scan_load_marks(pool);
	if (!r)
		r = dd_scan_load_index(pool);
	if (!r) {
		r = dd_scan_drop_saved_index(pool);
		/* A change of the metadata (the metadata bitmap, the index's
		 * nodes) that failed: the error ladder, as any other change
		 * (dd_pool_open() settles it).  The scanner stays off. */
		if (r && r != -ENOMEM) {
			dd_err("cannot free the saved scanner index (%d): no deduplication", r);
			dd_tx_fail(pool, r, "freeing the saved scanner index");
		}
	} else if (r != -ENOMEM) {
		/* Losing it costs savings only: the scanner stays off for this
		 * open and leaves the damage for dedup_check to report. */
		dd_err("scanner state unreadable (%d): no deduplication until it is checked", r);
	}
	if (r) {
		pool->scan = NULL;
		dd_index_destroy(sc->index);
		dd_wset_destroy(&sc->marked);
		dd_wset_destroy(&sc->todo);
		dd_free(sc->dirty);
		dd_free(sc);
		return r == -ENOMEM ? r : 0;
	}
	dd_index_tune(sc->index, pool->st.data_used);
	return 0;
bad:
	pool->scan = NULL;
	if (sc) {
		dd_index_destroy(sc->index);
		dd_wset_destroy(&sc->marked);
		dd_wset_destroy(&sc->todo);
		dd_free(sc->dirty);
		dd_free(sc);
	}
	return r;
}

void dd_scan_close(struct dd_pool *pool)
{
	struct dd_scan *sc = pool->scan;

	dd_import_close(pool);
	if (!sc)
		return;
	dd_index_destroy(sc->index);
	dd_wset_destroy(&sc->marked);
	dd_wset_destroy(&sc->todo);
	dd_free(sc->dirty);
	dd_free(sc);
	pool->scan = NULL;
	dd_resv_destroy(&pool->pins);
}

/* After a resize of the data device. */
int dd_scan_resize(struct dd_pool *pool)
{
	struct dd_scan *sc = pool->scan;
	u64 nr, old, *d;

	if (!sc)
		return 0;
	nr = dd_chunks_for(pool->nr_data_blocks);
	old = sc->marked.nr_chunks;
	if (nr <= old)
		return 0;
	/* The dirty-chunk bits first, copied at the old length: the sets
	 * never name a chunk it has no bit for, whichever grows. */
	d = dd_zalloc(sizeof(u64) * ((nr + 63) / 64 + 1));
	if (!d)
		return -ENOMEM;
	memcpy(d, sc->dirty, sizeof(u64) * ((old + 63) / 64 + 1));
	dd_free(sc->dirty);
	sc->dirty = d;
	if (dd_wset_grow(&sc->marked, nr) || dd_wset_grow(&sc->todo, nr))
		return -ENOMEM;	/* marks past the old end are dropped (savings) */
	return 0;
}

int dd_scan_configure(struct dd_pool *pool, const struct dd_scan_config *cfg)
{
	struct dd_scan *sc = pool->scan;
	int r;

	if (!sc)
		return -EROFS;
	if (cfg->batch > DD_SCAN_BATCH_MAX || cfg->share_cap == 1)
		return -EINVAL;
	if (cfg->index_bytes) {
		r = dd_index_resize(sc->index, cfg->index_bytes);
		if (r)
			return r;
		dd_index_tune(sc->index, pool->st.data_used);
		pool->scan_cfg.index_bytes = cfg->index_bytes;
	}
	if (cfg->share_cap) {
		sc->share_cap = cfg->share_cap;
		pool->scan_cfg.share_cap = cfg->share_cap;
	}
	if (cfg->batch)
		sc->batch = cfg->batch;
	pool->sb_dirty = true;
	return 0;
}

void dd_scan_get_settings(struct dd_pool *pool, u32 *run, u32 *rate_mib)
{
	*run = pool->scan_cfg.run;
	*rate_mib = pool->scan_cfg.rate_mib;
}

int dd_scan_set_settings(struct dd_pool *pool, u32 run, u32 rate_mib)
{
	if (!dd_writable(pool))
		return -EROFS;
	pool->scan_cfg.run = run;
	pool->scan_cfg.rate_mib = rate_mib;
	pool->sb_dirty = true;
	return 0;
}

/* ---- passes -------------------------------------------------------------------- */

int dd_scan_start_pass(struct dd_pool *pool, bool full)
{
	struct dd_scan *sc = pool->scan;
	struct dd_wset t;

	if (!sc)
		return -EROFS;
	if (sc->active || sc->u_active)
		return -EBUSY;
	/* The marks so far become the pass's work; new ones wait for the next. */
	dd_wset_clear(&sc->todo);
	t = sc->todo;
	sc->todo = sc->marked;
	sc->marked = t;
	sc->full = full;
	sc->cursor = 0;
	sc->pass_done = 0;
	sc->pass_todo = full ? pool->st.data_used : sc->todo.count;
	sc->active = true;
	memset(sc->pred, 0, sizeof(sc->pred));
	dd_index_tune(sc->index, pool->st.data_used);
	return 0;
}

static void dd_scan_end_pass(struct dd_pool *pool)
{
	struct dd_scan *sc = pool->scan;

	sc->active = false;
	pool->st.scan_passes++;
	if (sc->full)
		pool->st.scan_full_passes++;
	pool->sb_dirty = true;
}

/* Next block of the pass at or after the cursor, or false at its end. */
static int dd_scan_next_block(struct dd_pool *pool, u64 *pbn)
{
	struct dd_scan *sc = pool->scan;
	bool open_used, committed_used;
	int r;

	if (!sc->full)
		return dd_wset_next(&sc->todo, &sc->cursor, pool->nr_data_blocks) ?
		       (*pbn = sc->cursor, 0) : -ENODATA;
	/* Full pass: every allocated block (the data bitmap is the truth). */
	for (; sc->cursor < pool->nr_data_blocks; sc->cursor++) {
		r = dd_dalloc_test(pool, sc->cursor, &open_used, &committed_used);
		if (r)
			return r;
		if (open_used) {
			*pbn = sc->cursor;
			return 0;
		}
	}
	return -ENODATA;
}

/* ---- batches -------------------------------------------------------------------- */

static bool dd_pinned(struct dd_pool *pool, u64 pbn)
{
	return dd_resv_contains(&pool->pins, pbn);
}

static int dd_pin(struct dd_pool *pool, u64 pbn)
{
	return dd_resv_add(&pool->pins, pbn);
}

static void dd_unpin(struct dd_pool *pool, u64 pbn)
{
	dd_resv_remove(&pool->pins, pbn);
}

void dd_scan_release(struct dd_pool *pool, struct dd_scan_batch *b)
{
	u32 i;

	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];

		if (it->flags & DD_SI_PINNED)
			dd_unpin(pool, it->pbn);
		if (it->flags & DD_SI_CAND_PINNED)
			dd_unpin(pool, it->cand);
		it->flags &= ~(DD_SI_PINNED | DD_SI_CAND_PINNED);
	}
}

int dd_scan_prepare(struct dd_pool *pool, struct dd_scan_batch *b)
{
	struct dd_scan *sc = pool->scan;
	struct dd_disk_rec rec;
	struct dd_record d;
	u64 pbn;
	int r;

	b->nr = 0;
	if (!sc || !dd_writable(pool))
		return -EROFS;
	if (!sc->active)
		return 0;
	while (b->nr < sc->batch) {
		struct dd_scan_item *it;

		r = dd_scan_next_block(pool, &pbn);
		if (r == -ENODATA) {
			if (!b->nr)
				dd_scan_end_pass(pool);
			break;
		}
		if (r)
			goto bad;
		sc->cursor = pbn + 1;
		sc->pass_done++;
		if (!sc->full) {
			dd_wset_unset(&sc->todo, pbn);
			dd_scan_dirty_chunk(sc, pbn / DD_CHUNK_BITS);
		}
		/* Written again since the pass began: it changes, leave it for later. */
		if (dd_wset_test(&sc->marked, pbn)) {
			sc->volatile_skipped++;
			continue;
		}
		if (dd_pinned(pool, pbn))
			continue;
		r = dd_rec_read(pool, pbn, 0, &rec);
		if (r)
			goto bad;
		dd_rec_decode(&rec, &d);
		if (!d.refcount)
			continue;	/* freed since it was marked */
		r = dd_pin(pool, pbn);
		if (r)
			goto bad;
		it = &b->item[b->nr++];
		memset(it, 0, sizeof(*it));
		it->pbn = pbn;
		it->domain = d.domain;
		it->flags = DD_SI_READ | DD_SI_PINNED;
		if (d.refcount == 1 && d.owned) {
			it->flags |= DD_SI_OWNED;
			it->vol = d.owner_vol;
			it->lbn = d.owner_lbn;
		}
	}
	dd_scan_room(pool);
	return (int)b->nr;
bad:
	dd_scan_release(pool, b);
	b->nr = 0;
	return dd_pool_settle(pool, r);
}

static struct dd_pred *dd_pred_slot(struct dd_scan *sc, u32 vol)
{
	return &sc->pred[vol % DD_PRED_SLOTS];
}

/* The block (vol, lbn) maps, if mapped; never fails the batch. */
static bool dd_scan_lookup(struct dd_pool *pool, u32 vol, u64 lbn, u64 *pbn)
{
	struct dd_volume *v;
	struct dd_mapping m;
	bool ok;

	if (lbn > DD_MAX_ADDR || dd_volume_open(pool, vol, &v))
		return false;
	ok = !dd_map_lookup(v, lbn, 0, &m) && m.mapped;
	dd_volume_close(v);
	*pbn = m.pbn;
	return ok;
}

/* Merges into c that earlier items of the batch already plan. */
static u32 dd_scan_planned(const struct dd_scan_batch *b, const struct dd_scan_item *upto, u64 c)
{
	const struct dd_scan_item *it;
	u32 n = 0;

	for (it = b->item; it < upto; it++)
		n += (it->flags & DD_SI_CAND) && it->cand == c;
	return n;
}

/* Pins a candidate C for the item, unless C is pinned already (by this batch,
 * as another item's D or candidate); false if no pin can be had. */
static bool dd_scan_pin_cand(struct dd_pool *pool, struct dd_scan_item *it, u64 c)
{
	if (dd_pinned(pool, c))
		return true;
	if (dd_pin(pool, c))
		return false;
	it->flags |= DD_SI_CAND_PINNED;
	return true;
}

/*
 * May C be D's canonical block (referenced, same domain, below the sharing
 * cap counting the merges the batch already plans into it)?  Pins C and
 * names an owner of C, if one is known, for the prediction.
 */
static bool dd_scan_take_cand(struct dd_pool *pool, struct dd_scan_batch *b,
			      struct dd_scan_item *it, u64 c)
{
	struct dd_scan *sc = pool->scan;
	struct dd_record d;
	u64 hint;

	if (c == it->pbn || dd_record_get(pool, c, &d))
		return false;
	if (!d.refcount || d.domain != it->domain ||
	    (u64)d.refcount + dd_scan_planned(b, it, c) >= sc->share_cap)
		return false;
	if (!dd_scan_pin_cand(pool, it, c))
		return false;
	it->cand = c;
	it->flags |= DD_SI_CAND;
	if (d.refcount == 1 && d.owned) {
		it->flags |= DD_SI_CAND_OWNED | DD_SI_CAND_KNOWN;
		it->cand_vol = d.owner_vol;
		it->cand_lbn = d.owner_lbn;
	} else if (dd_scan_lookup(pool, d.owner_vol, d.owner_lbn, &hint) && hint == c) {
		/* Shared: the last owner still maps it, good enough to predict. */
		it->flags |= DD_SI_CAND_KNOWN;
		it->cand_vol = d.owner_vol;
		it->cand_lbn = d.owner_lbn;
	}
	return true;
}

/*
 * D is shared (it cannot merge away) and the index names another block C
 * with its bytes, owned by one LBN: C merges into D instead, so the sharing
 * that exists already (a snapshot's, an earlier merge's) is what the copies
 * join.  C is pinned and its owner named, as for any candidate; apply checks
 * C's owner again and D's room below the cap.
 */
static bool dd_scan_take_reverse(struct dd_pool *pool, struct dd_scan_batch *b,
				 struct dd_scan_item *it)
{
	struct dd_scan *sc = pool->scan;
	struct dd_record d;
	u64 c;

	if (!(it->flags & DD_SI_HOOK) ||
	    !dd_index_lookup(sc->index, it->hash, it->domain, &c) || c == it->pbn ||
	    dd_record_get(pool, c, &d))
		return false;
	if (d.refcount != 1 || !d.owned || d.domain != it->domain)
		return false;
	if (!dd_scan_pin_cand(pool, it, c))
		return false;
	it->cand = c;
	it->cand_vol = d.owner_vol;
	it->cand_lbn = d.owner_lbn;
	it->flags |= DD_SI_CAND | DD_SI_CAND_OWNED | DD_SI_REVERSE;
	return true;
}

/* After a candidate for (vol, lbn): the next LBN is predicted to match the
 * next LBN of C's owner (verified later, like any candidate). */
static void dd_scan_predict(struct dd_scan *sc, const struct dd_scan_item *it)
{
	struct dd_pred *p = dd_pred_slot(sc, it->vol);

	p->valid = (it->flags & DD_SI_OWNED) && (it->flags & DD_SI_CAND_KNOWN) &&
		   !(it->cand_vol == it->vol && it->cand_lbn == it->lbn + 1);
	if (!p->valid)
		return;
	p->vol = it->vol;
	p->next_lbn = it->lbn + 1;
	p->pvol = it->cand_vol;
	p->plbn = it->cand_lbn + 1;
}

int dd_scan_match(struct dd_pool *pool, struct dd_scan_batch *b)
{
	struct dd_scan *sc = pool->scan;
	u32 i, n = 0;

	if (!sc || !dd_writable(pool))
		return -EROFS;
	for (i = 0; i < b->nr; i++) {
		struct dd_scan_item *it = &b->item[i];
		bool indexed = false;
		struct dd_pred *p;
		u64 c;

		if (!(it->flags & DD_SI_READ) || (it->flags & DD_SI_ZERO))
			continue;
		sc->scanned++;
		if (dd_index_is_hook(sc->index, it->hash))
			it->flags |= DD_SI_HOOK;
		/* Only a block owned by one LBN merges away; a shared one can be
		 * a canonical block. */
		if (!(it->flags & DD_SI_OWNED)) {
			if (dd_scan_take_reverse(pool, b, it))
				n++;
			goto unique;
		}
		/* 1. The index, for a hook: what was seen beats a guess. */
		if ((it->flags & DD_SI_HOOK) &&
		    dd_index_lookup(sc->index, it->hash, it->domain, &c)) {
			if (c == it->pbn)
				continue;	/* canonical already */
			if (dd_scan_take_cand(pool, b, it, c)) {
				it->flags |= DD_SI_FROM_INDEX;
				dd_scan_predict(sc, it);
				n++;
				continue;
			}
			/* Gone, full, or another domain now: a stale hint. */
			dd_index_remove(sc->index, it->hash, it->domain, c);
		}
		/* 2. The prediction along a verified run. */
		p = dd_pred_slot(sc, it->vol);
		if (p->valid && p->vol == it->vol && p->next_lbn == it->lbn &&
		    dd_scan_lookup(pool, p->pvol, p->plbn, &c)) {
			/* A hook the index did not know is indexed now: if the
			 * guess is wrong, the block is canonical for what follows
			 * (a merge puts C in its place). */
			if (it->flags & DD_SI_HOOK) {
				dd_index_insert(sc->index, it->hash, it->domain, it->pbn);
				indexed = true;
			}
			if (dd_scan_take_cand(pool, b, it, c)) {
				dd_scan_predict(sc, it);
				n++;
				continue;
			}
		}
unique:
		/* Unique so far: a canonical block for what follows, in this
		 * batch too (it is pinned: its bytes are the ones hashed). */
		if ((it->flags & DD_SI_HOOK) && !indexed &&
		    !dd_index_lookup(sc->index, it->hash, it->domain, &c))
			dd_index_insert(sc->index, it->hash, it->domain, it->pbn);
	}
	return (int)n;
}

/* The map entry of (vol, lbn) still names pbn, which it alone references
 * (through no shared map page). */
static int dd_scan_owned_by(struct dd_pool *pool, struct dd_volume *v, u64 lbn, u64 pbn,
			    bool *ok)
{
	struct dd_mapping m;
	int r;

	r = dd_vol_lookup_owned(v, lbn, &m, ok);
	if (!r && *ok && m.pbn != pbn)
		*ok = false;
	return r;
}

/* Remaps (v, lbn) from D to C: C gains a reference (and loses its owner's
 * exclusive bit), D loses its last.  Caller checked both.  1, nothing
 * changed: C is owned by a snapshot family (not a canonical block). */
static int dd_scan_merge_one(struct dd_pool *pool, struct dd_volume *v, u64 lbn, u64 dpbn,
			     u64 cpbn)
{
	struct dd_disk_rec rec;
	struct dd_record c;
	bool was_shared, ok;
	int r;

	r = dd_rec_read(pool, cpbn, 0, &rec);
	if (r)
		return r;
	dd_rec_decode(&rec, &c);
	/* C's owner must stop writing in place: it is shared now.  An owner
	 * that is a snapshot family cannot be named: C is not used. */
	r = dd_vol_owner_clear_excl(pool, cpbn, &c, &ok);
	if (r)
		return r;
	if (!ok)
		return 1;
	r = dd_rec_inc(pool, cpbn);
	if (r)
		return r;
	r = dd_rec_set_merged(pool, cpbn, true);
	if (r)
		return r;
	r = dd_vol_remap(v, lbn, cpbn);
	if (r)
		return r;
	return dd_rec_dec(pool, dpbn, &was_shared, NULL);
}

/*
 * C is the D of another item of the batch whose bytes equal its own C (a
 * prediction along identical neighbours names the block before; the index
 * names a block that took a guess in the same batch): that D merges away, or
 * has already, so this D's canonical block is that C.  Every pair was
 * compared, and every block of the chain is pinned, so the bytes are equal
 * along it.  Returns D's own pbn for a chain that comes back to it.
 */
static u64 dd_scan_redirect(const struct dd_scan_batch *b, const struct dd_scan_item *it)
{
	u64 c = it->cand;
	u32 i, hops = 0;

	for (i = 0; i < b->nr; i++) {
		const struct dd_scan_item *k = &b->item[i];

		if (k == it || (k->flags & (DD_SI_CAND | DD_SI_SAME | DD_SI_ZERO)) !=
		    (DD_SI_CAND | DD_SI_SAME))
			continue;
		if (k->flags & DD_SI_REVERSE) {
			/* k's C merges into k's D: C's canonical block is D. */
			if (k->cand != c)
				continue;
			c = k->pbn;
		} else {
			if (k->pbn != c || !(k->flags & DD_SI_OWNED))
				continue;
			c = k->cand;
		}
		if (c == it->pbn || ++hops == b->nr)
			return it->pbn;
		i = (u32)-1;	/* again, for the new c */
	}
	return c;
}

/* C, owned by (cand_vol, cand_lbn), merges into the shared D (see
 * dd_scan_take_reverse); a write to C's LBN since drops the pair. */
static int dd_scan_merge_reverse(struct dd_pool *pool, struct dd_scan_item *it)
{
	struct dd_scan *sc = pool->scan;
	struct dd_disk_rec rec;
	struct dd_volume *v;
	struct dd_record d;
	bool ok;
	int r;

	r = dd_vol_handle(pool, it->cand_vol, &v);
	if (r)
		return r == -ENOENT ? 0 : r;
	if (v->flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)) {
		dd_volume_close(v);
		return 0;
	}
	r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
	if (!r)
		r = dd_scan_owned_by(pool, v, it->cand_lbn, it->cand, &ok);
	if (!r && ok)
		r = dd_rec_read(pool, it->pbn, 0, &rec);
	if (!r && ok) {
		dd_rec_decode(&rec, &d);
		ok = d.refcount && d.refcount < sc->share_cap && d.domain == it->domain;
	}
	if (!r && ok) {
		r = dd_scan_merge_one(pool, v, it->cand_lbn, it->cand, it->pbn);
		if (r > 0) {
			r = 0;
			sc->raced++;
		} else if (r) {
			dd_tx_fail(pool, r, "merging blocks");	/* half-done */
		} else {
			pool->st.scan_merged++;
			it->flags |= DD_SI_MERGED;
			dd_index_insert(sc->index, it->hash, it->domain, it->pbn);
		}
	} else if (!r) {
		sc->raced++;
	}
	dd_volume_close(v);
	return r;
}

static int dd_item_cmp(const struct dd_scan_item *a, const struct dd_scan_item *b)
{
	if (a->vol != b->vol)
		return a->vol < b->vol ? -1 : 1;
	return a->lbn < b->lbn ? -1 : a->lbn > b->lbn;
}

/* Insertion sort of the items' order by (volume, LBN): small batches. */
static void dd_scan_order(const struct dd_scan_batch *b, u16 *ord)
{
	u32 i, j;

	for (i = 0; i < b->nr; i++) {
		u16 k = (u16)i;

		for (j = i; j > 0 && dd_item_cmp(&b->item[ord[j - 1]], &b->item[k]) > 0; j--)
			ord[j] = ord[j - 1];
		ord[j] = k;
	}
}

int dd_scan_apply(struct dd_pool *pool, struct dd_scan_batch *b)
{
	struct dd_scan *sc = pool->scan;
	u16 ord[DD_SCAN_BATCH_MAX];
	u32 i;
	int r = 0;

	if (!sc || !dd_writable(pool)) {
		dd_scan_release(pool, b);
		return -EROFS;
	}
	dd_scan_order(b, ord);
	for (i = 0; i < b->nr && !r; i++) {
		struct dd_scan_item *it = &b->item[ord[i]];
		struct dd_volume *v;
		struct dd_pred *p;
		bool ok;

		if (!(it->flags & DD_SI_READ))
			continue;
		if ((it->flags & DD_SI_CAND) && !(it->flags & DD_SI_SAME)) {
			/* Equal hashes, different bytes (or a prediction that did not hold). */
			if (it->flags & DD_SI_FROM_INDEX) {
				sc->false_hits++;
				dd_index_remove(sc->index, it->hash, it->domain, it->cand);
			}
			p = dd_pred_slot(sc, it->vol);
			if (p->valid && p->vol == it->vol && p->next_lbn == it->lbn + 1)
				p->valid = false;
		}
		if ((it->flags & (DD_SI_REVERSE | DD_SI_SAME)) == (DD_SI_REVERSE | DD_SI_SAME)) {
			r = dd_scan_merge_reverse(pool, it);
			continue;
		}
		if (!(it->flags & DD_SI_OWNED) || !(it->flags & (DD_SI_ZERO | DD_SI_SAME)))
			continue;	/* unique so far (indexed by dd_scan_match), or shared */
		/* Errors before an item changes anything are refusals (no
		 * memory, no metadata space): the batch stops, the open
		 * transaction stays whole. */
		r = dd_vol_handle(pool, it->vol, &v);
		if (r) {
			r = r == -ENOENT ? 0 : r;
			continue;
		}
		if (v->flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)) {
			dd_volume_close(v);
			continue;
		}
		r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
		if (!r)
			r = dd_scan_owned_by(pool, v, it->lbn, it->pbn, &ok);
		if (!r && !ok)
			sc->raced++;	/* a write came in between: nothing to do */
		if (!r && ok && (it->flags & DD_SI_ZERO)) {
			r = dd_vol_map_unmap(v, it->lbn, 1, DD_UNMAP_OTHER);
			if (!r) {
				pool->st.scan_zero++;
				it->flags |= DD_SI_MERGED;
			} else {
				dd_tx_fail(pool, r, "unmapping a block of zeroes");
			}
		} else if (!r && ok) {
			struct dd_disk_rec rec;
			struct dd_record c;

			u64 to = dd_scan_redirect(b, it);
			bool fits = false;

			/* C still the same domain, referenced, below the cap. */
			if (to != it->pbn) {
				r = dd_rec_read(pool, to, 0, &rec);
				if (!r) {
					dd_rec_decode(&rec, &c);
					fits = c.refcount && c.refcount < sc->share_cap &&
					       c.domain == it->domain;
				}
			}
			if (!r && fits) {
				it->cand = to;
				r = dd_scan_merge_one(pool, v, it->lbn, it->pbn, it->cand);
				if (r > 0) {
					r = 0;
					sc->raced++;
				} else if (r) {
					dd_tx_fail(pool, r, "merging blocks");	/* half-done */
				} else {
					pool->st.scan_merged++;
					it->flags |= DD_SI_MERGED;
					if (it->flags & DD_SI_HOOK)
						dd_index_insert(sc->index, it->hash, it->domain,
								it->cand);
				}
			} else if (!r) {
				sc->raced++;
			}
		}
		dd_volume_close(v);
		dd_cond_resched();
	}
	dd_scan_release(pool, b);
	return dd_pool_settle(pool, r);
}

void dd_scan_get_stats(struct dd_pool *pool, struct dd_scan_stats *st)
{
	struct dd_scan *sc = pool->scan;

	memset(st, 0, sizeof(*st));
	st->pass = pool->st.scan_passes + (sc && sc->active);
	st->full_passes = pool->st.scan_full_passes;
	st->merged = pool->st.scan_merged;
	st->zero_unmapped = pool->st.scan_zero;
	st->cow_breaks = pool->st.scan_cow_breaks;
	st->unshared = pool->st.scan_unshared;
	if (st->merged > st->cow_breaks + st->unshared)
		st->freed = st->merged - st->cow_breaks - st->unshared;
	if (!sc)
		return;
	st->unshare_active = sc->u_active;
	st->unshare_todo = sc->u_todo;
	st->unshare_done = DD_MIN(sc->u_done, sc->u_todo);
	st->unshare_raced = sc->u_raced;
	st->pass_active = sc->active;
	st->pass_todo = sc->pass_todo;
	st->pass_done = sc->pass_done;
	st->scanned = sc->scanned;
	st->volatile_skipped = sc->volatile_skipped;
	st->false_hits = sc->false_hits;
	st->raced = sc->raced;
	st->marks_dropped = sc->marks_dropped;
	st->marked = sc->marked.count;
	st->share_cap = sc->share_cap;
	dd_index_get_stats(sc->index, &st->index);
	dd_import_get_stats(pool, st);
}

struct dd_index *dd_scan_index(struct dd_pool *pool)
{
	return pool->scan ? pool->scan->index : NULL;
}

u32 dd_scan_share_cap(struct dd_pool *pool)
{
	return pool->scan ? pool->scan->share_cap : DD_SCAN_DEFAULT_SHARE_CAP;
}

/* ---- unsharing ------------------------------------------------------------------
 * A merged block's referrers are found by walking the maps; owner pointers
 * name only one.  Its sharing that snapshots made is told from the sharing
 * that merges made by the LBN: a snapshot shares a block at the same LBN of
 * volumes related through their origins (a family), a merge anywhere.  So
 * the referrers of a merged block fall into groups, one per (family, LBN);
 * each group but one gets a block of its own, which its members share, and
 * the last keeps the old block.
 */

/* Map entries one prepare call looks at (the pool lock is held). */
#define DD_UNSHARE_WALK		4096

/* Internal item flags, beside the public DD_UI_* ones. */
#define DD_UI_FIRST		(1u << 16)	/* a group's first item */
#define DD_UI_RESERVED		(1u << 17)	/* new_pbn is reserved by us */
#define DD_UI_PINNED		(1u << 18)	/* we pinned old_pbn */
#define DD_UI_STILL		(1u << 19)	/* apply: (vol, lbn) still maps old_pbn */

struct dd_ufam {
	u32 id, origin;
	u64 created;
	u64 key;		/* the family: equal keys, related by origins */
	bool live;		/* neither deleting nor incomplete */
};

struct dd_utab {
	struct dd_ufam *v;	/* by id, ascending */
	u32 nr, cap;
};

static struct dd_ufam *dd_utab_find(const struct dd_utab *t, u32 id)
{
	u32 lo = 0, hi = t->nr;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (t->v[mid].id == id)
			return &t->v[mid];
		if (t->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The family key: the root of the origin chain, or the id of a missing
 * origin (siblings whose origin is gone stay related), tagged so it never
 * equals a live volume's own id.  An origin created after its snapshot is
 * another volume that took a freed id: the chain ends there.
 */
static void dd_utab_keys(struct dd_utab *t)
{
	u32 i, depth;

	for (i = 0; i < t->nr; i++) {
		const struct dd_ufam *cur = &t->v[i], *o;
		u64 key = (2ULL << 32) | t->v[i].id;	/* a cycle (damage): alone */

		for (depth = 0; depth <= t->nr; depth++) {
			if (cur->origin == DD_NO_VOLUME) {
				key = cur->id;
				break;
			}
			o = dd_utab_find(t, cur->origin);
			if (!o || o->created > cur->created) {
				key = (1ULL << 32) | cur->origin;
				break;
			}
			cur = o;
		}
		t->v[i].key = key;
	}
}

static int dd_utab_build(struct dd_pool *pool, struct dd_utab *t, u64 *mapped)
{
	struct dd_volume_info info;
	u32 id = 0;
	int r;

	t->nr = 0;
	if (mapped)
		*mapped = 0;
	for (;;) {
		r = dd_volume_next(pool, &id, true, &info);
		if (r == -ENOENT)
			break;
		if (r)
			return r;
		if (t->nr == t->cap) {
			u32 cap = t->cap ? t->cap * 2 : 16;
			struct dd_ufam *n = dd_zalloc(sizeof(*n) * cap);

			if (!n)
				return -ENOMEM;
			if (t->nr)
				memcpy(n, t->v, sizeof(*n) * t->nr);
			dd_free(t->v);
			t->v = n;
			t->cap = cap;
		}
		t->v[t->nr].id = info.id;
		t->v[t->nr].origin = info.origin;
		t->v[t->nr].created = info.created_txn;
		t->v[t->nr].live = !(info.flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE));
		if (mapped && t->v[t->nr].live)
			*mapped += info.mapped_blocks;
		t->nr++;
		if (id >= DD_MAX_VOLUME_ID)
			break;
		id++;
	}
	dd_utab_keys(t);
	return 0;
}

/* Folds the pass's remaining work back into the marks and ends it
 * (not counted as a finished pass). */
static void dd_scan_stop_pass(struct dd_scan *sc)
{
	u64 c, count = 0;
	u32 w;

	for (c = 0; c < sc->todo.nr_chunks; c++) {
		u64 *t = sc->todo.chunk[c];

		if (!t)
			continue;
		if (!sc->marked.chunk[c]) {
			sc->marked.chunk[c] = t;
			sc->todo.chunk[c] = NULL;
		} else {
			for (w = 0; w < DD_CHUNK_WORDS; w++)
				sc->marked.chunk[c][w] |= t[w];
		}
	}
	for (c = 0; c < sc->marked.nr_chunks; c++)
		if (sc->marked.chunk[c])
			for (w = 0; w < DD_CHUNK_WORDS; w++)
				count += dd_popcount64(sc->marked.chunk[c][w]);
	sc->marked.count = count;
	dd_wset_clear(&sc->todo);
	sc->active = false;
}

int dd_unshare_start(struct dd_pool *pool)
{
	struct dd_scan *sc = pool->scan;
	struct dd_utab t = { NULL, 0, 0 };
	u64 mapped;
	int r;

	if (!sc || !dd_writable(pool))
		return -EROFS;
	if (sc->u_active)
		return -EBUSY;
	r = dd_utab_build(pool, &t, &mapped);
	dd_free(t.v);
	if (r)
		return r;
	if (sc->active)
		dd_scan_stop_pass(sc);
	sc->u_active = true;
	sc->u_vol = 0;
	sc->u_lbn = 0;
	sc->u_todo = mapped;
	sc->u_done = 0;
	sc->u_raced = 0;
	return 0;
}

void dd_scan_unshare_stop(struct dd_pool *pool)
{
	if (pool->scan)
		pool->scan->u_active = false;
}

void dd_scan_unshare_release(struct dd_pool *pool, struct dd_unshare_batch *b)
{
	u32 i;

	for (i = 0; i < b->nr; i++) {
		struct dd_unshare_item *it = &b->item[i];

		if (it->flags & DD_UI_RESERVED)
			dd_data_unreserve(pool, it->new_pbn);
		if (it->flags & DD_UI_PINNED)
			dd_unpin(pool, it->old_pbn);
		it->flags &= ~(DD_UI_RESERVED | DD_UI_PINNED);
	}
}

static bool dd_unshare_listed(const struct dd_unshare_batch *b, u32 vol, u64 lbn)
{
	u32 i;

	for (i = 0; i < b->nr; i++)
		if (b->item[i].vol == vol && b->item[i].lbn == lbn)
			return true;
	return false;
}

/* References to pbn that the copy groups of b already take away. */
static u32 dd_unshare_planned(const struct dd_unshare_batch *b, u64 pbn)
{
	u32 i, n = 0;

	for (i = 0; i < b->nr; i++)
		n += b->item[i].old_pbn == pbn && !(b->item[i].flags & DD_UI_KEEP);
	return n;
}

/*
 * The group of (v, lbn), which maps the merged block pbn: the live volumes
 * of its family that map pbn at the same LBN and are not listed yet, v
 * first; at most 'max'.  Returns the number, or an error.
 */
static int dd_unshare_group(struct dd_pool *pool, const struct dd_utab *t,
			    const struct dd_unshare_batch *b, const struct dd_ufam *f, u64 lbn,
			    u64 pbn, u32 *mem, u32 max)
{
	u32 i, n = 0;
	int r;

	mem[n++] = f->id;
	for (i = 0; i < t->nr && n < max; i++) {
		const struct dd_ufam *g = &t->v[i];
		struct dd_volume *w;
		struct dd_mapping m;

		if (g == f || !g->live || g->key != f->key || dd_unshare_listed(b, g->id, lbn))
			continue;
		r = dd_vol_handle(pool, g->id, &w);
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		r = dd_map_lookup(w, lbn, 0, &m);
		dd_volume_close(w);
		if (r)
			return r;
		if (m.mapped && m.pbn == pbn)
			mem[n++] = g->id;
	}
	return (int)n;
}

int dd_unshare_prepare(struct dd_pool *pool, struct dd_unshare_batch *b)
{
	struct dd_scan *sc = pool->scan;
	struct dd_utab t = { NULL, 0, 0 };
	u32 mem[DD_SCAN_BATCH_MAX];
	u32 walked = 0;
	int r;

	b->nr = 0;
	if (!sc || !dd_writable(pool))
		return -EROFS;
	if (!sc->u_active)
		return 0;
	r = dd_utab_build(pool, &t, NULL);
	if (r)
		goto bad;
	while (b->nr < sc->batch && walked < DD_UNSHARE_WALK) {
		const struct dd_ufam *f = NULL;
		struct dd_unshare_item *it;
		struct dd_disk_rec rec;
		struct dd_record d;
		struct dd_volume *v;
		struct dd_mapping m;
		u64 lbn, npbn = 0;
		u32 i, k, planned;

		/* The first live volume at or after the cursor. */
		for (i = 0; i < t.nr; i++)
			if (t.v[i].id >= sc->u_vol && t.v[i].live) {
				f = &t.v[i];
				break;
			}
		if (!f) {
			sc->u_active = false;	/* the walk is over */
			break;
		}
		if (f->id != sc->u_vol) {
			sc->u_vol = f->id;
			sc->u_lbn = 0;
		}
		r = dd_vol_handle(pool, f->id, &v);
		if (r)
			goto bad;
		lbn = sc->u_lbn;
		r = dd_map_next(v, &lbn, &m);
		dd_volume_close(v);
		if (r == -ENODATA) {
			if (f->id >= DD_MAX_VOLUME_ID) {
				sc->u_active = false;
				break;
			}
			sc->u_vol = f->id + 1;
			sc->u_lbn = 0;
			continue;
		}
		if (r)
			goto bad;
		r = dd_rec_read(pool, m.pbn, 0, &rec);
		if (r)
			goto bad;
		dd_rec_decode(&rec, &d);
		/* Shared through merges: copies.  With one referrer and no
		 * owner (the others moved away, here or in an earlier batch):
		 * this LBN is it, and apply makes it the owner again. */
		if (!d.refcount || dd_unshare_listed(b, f->id, lbn) ||
		    (d.refcount == 1 && d.owned) || (d.refcount >= 2 && !d.merged))
			goto next;
		r = dd_unshare_group(pool, &t, b, f, lbn, m.pbn, mem, sc->batch);
		if (r < 0)
			goto bad;
		k = (u32)r;
		if (k > sc->batch - b->nr) {
			if (b->nr)
				break;		/* the next batch starts with it */
			k = sc->batch;		/* a huge family: the rest gets a block of its own */
		}
		planned = dd_unshare_planned(b, m.pbn);
		if (d.refcount > planned + k) {
			/* Others share the block: this group gets its own. */
			r = dd_rec_reserve(pool, &npbn);
			if (r == -ENOSPC && b->nr)
				break;		/* the cursor stays here */
			if (r)
				goto bad;
		}
		/* Else the group keeps the block (the last referrers: dd_rec_dec
		 * unmarks it; apply names the owner if one LBN is left). */
		for (i = 0; i < k; i++) {
			it = &b->item[b->nr++];
			it->vol = mem[i];
			it->lbn = lbn;
			it->old_pbn = m.pbn;
			it->new_pbn = npbn;
			it->flags = npbn ? 0 : DD_UI_KEEP;
			if (!i) {
				it->flags |= DD_UI_FIRST;
				if (npbn)
					it->flags |= DD_UI_COPY | DD_UI_RESERVED;
			}
		}
		if (npbn && !dd_pinned(pool, m.pbn)) {
			it = &b->item[b->nr - k];
			r = dd_pin(pool, m.pbn);
			if (r)
				goto bad;
			it->flags |= DD_UI_PINNED;
		}
next:
		sc->u_lbn = lbn + 1;
		sc->u_done++;
		walked++;
		if (lbn >= DD_MAX_ADDR) {
			sc->u_vol = f->id + 1;
			sc->u_lbn = 0;
		}
	}
	dd_free(t.v);
	if (b->nr)
		return (int)b->nr;
	return sc->u_active ? -EAGAIN : 0;
bad:
	dd_free(t.v);
	dd_scan_unshare_release(pool, b);
	b->nr = 0;
	return r;
}

/* Applies one group, items [i, j).  Returns 0 or an error (-ENOSPC: a
 * refusal before a change). */
static int dd_unshare_group_apply(struct dd_pool *pool, struct dd_unshare_batch *b, u32 i, u32 j)
{
	struct dd_scan *sc = pool->scan;
	struct dd_unshare_item *first = &b->item[i];
	struct dd_disk_rec rec;
	struct dd_record d;
	u32 s = 0, x;
	bool made = false;
	int r;

	for (x = i; x < j; x++) {
		struct dd_unshare_item *it = &b->item[x];
		struct dd_volume *v;
		struct dd_mapping m;

		r = dd_vol_handle(pool, it->vol, &v);
		if (r == -ENOENT)
			continue;
		if (r)
			return r;
		/* A family volume's entry may be in a shared page: it keeps the
		 * block (unsharing would copy the page, in the middle of a group). */
		if (!(v->flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE | DD_VOL_FAMILY))) {
			r = dd_map_lookup(v, it->lbn, 0, &m);
			if (!r && m.mapped && m.pbn == it->old_pbn) {
				it->flags |= DD_UI_STILL;
				s++;
			}
		}
		dd_volume_close(v);
		if (r)
			return r;
	}
	r = dd_rec_read(pool, first->old_pbn, 0, &rec);
	if (r)
		return r;
	dd_rec_decode(&rec, &d);
	if ((first->flags & DD_UI_KEEP) || !s || d.refcount <= s) {
		/* Nobody else shares it (any more): the group keeps it. */
		if (first->flags & DD_UI_COPY)
			sc->u_raced += j - i - s;
		/* One referrer left: it owns the block again, so a later pass
		 * can merge it (a block without a known owner is never merged
		 * away). */
		if (s == 1 && d.refcount == 1 && !d.owned) {
			r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
			for (x = i; !r && x < j; x++)
				if (b->item[x].flags & DD_UI_STILL)
					r = dd_rec_set_owner(pool, first->old_pbn, b->item[x].vol,
							     b->item[x].lbn);
			if (r)
				return r;
		}
		if (s && d.refcount == s && d.merged) {
			r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
			if (!r)
				r = dd_rec_set_merged(pool, first->old_pbn, false);
			if (r)
				return r;
			if (first->flags & DD_UI_KEEP)
				for (x = i; x < j; x++)
					b->item[x].flags |= DD_UI_DONE;
		}
		return 0;	/* the new block, if any, is released with the batch */
	}
	for (x = i; x < j; x++) {
		struct dd_unshare_item *it = &b->item[x];
		struct dd_volume *v;

		if (!(it->flags & DD_UI_STILL))
			continue;
		r = dd_tx_reserve(pool, DD_OP_MAX_DIRTY);
		if (r)
			return r;
		r = dd_vol_handle(pool, it->vol, &v);
		if (r)
			return r;
		r = dd_vol_unshare_one(v, it->lbn, it->old_pbn, it->new_pbn, !made, s == 1);
		dd_volume_close(v);
		if (r)
			return r;
		if (!made) {
			made = true;
			first->flags &= ~DD_UI_RESERVED;	/* consumed */
			pool->st.scan_unshared++;
		}
		it->flags |= DD_UI_DONE;
	}
	sc->u_raced += j - i - s;
	return 0;
}

int dd_unshare_apply(struct dd_pool *pool, struct dd_unshare_batch *b)
{
	u32 i, j;
	int r = 0;

	if (!pool->scan || !dd_writable(pool)) {
		dd_scan_unshare_release(pool, b);
		return -EROFS;
	}
	for (i = 0; i < b->nr && !r; i = j) {
		for (j = i + 1; j < b->nr && !(b->item[j].flags & DD_UI_FIRST); j++)
			;
		r = dd_unshare_group_apply(pool, b, i, j);
		dd_cond_resched();
	}
	dd_scan_unshare_release(pool, b);
	if (r && r != -ENOSPC)
		return dd_tx_fail(pool, r, "unsharing blocks");
	return r;
}
