// SPDX-License-Identifier: GPL-2.0
/*
 * A pool with a data device, the kernel's data path and ordering over the
 * engine, and a model of what a guest may read after a crash: see ddsys.h.
 */
#include <stdarg.h>

#include "ddsys.h"
#include "dd-walk.h"
#include "dd-scan.h"

static const u8 sys_zero[DD_BLOCK_SIZE];

/* ---- tokens ---- */

#define TOK_MAGIC 0x6b6f7461746164ddULL

struct tok_hdr {
	u64 magic;
	u64 id;
	u64 lbn;
	u32 vol;
	u32 pad;
};

void tok_fill(void *block, u64 id, u32 vol, u64 lbn)
{
	struct tok_hdr *h = block;
	u64 *w = block, seed = id * 0x2545f4914f6cdd1dULL ^ lbn ^ ((u64)vol << 48);
	u32 i;

	/* Every word depends on the write, so any mix of two writes, a torn
	 * write or a stale block is told apart from each of them. */
	for (i = sizeof(*h) / 8; i < DD_BLOCK_SIZE / 8; i++)
		w[i] = tr_next(&seed);
	h->magic = TOK_MAGIC;
	h->id = id;
	h->lbn = lbn;
	h->vol = vol;
	h->pad = 0;
}

enum tok_kind tok_decode(const void *block, u64 *id, u32 *vol, u64 *lbn)
{
	static u8 want[DD_BLOCK_SIZE];
	const struct tok_hdr *h = block;

	if (!memcmp(block, sys_zero, DD_BLOCK_SIZE))
		return TOK_ZERO;
	if (h->magic != TOK_MAGIC || !h->id)
		return TOK_GARBAGE;
	tok_fill(want, h->id, h->vol, h->lbn);
	if (memcmp(block, want, DD_BLOCK_SIZE))
		return TOK_GARBAGE;
	*id = h->id;
	*vol = h->vol;
	*lbn = h->lbn;
	return TOK_WRITE;
}

/* ---- the system: hooks ---- */

static void sys_violation(struct ddsys *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sys_violation(struct ddsys *s, const char *fmt, ...)
{
	va_list ap;

	if (s->violation[0])
		return;		/* the first one tells */
	va_start(ap, fmt);
	vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
	va_end(ap);
}

static struct dd_dev *sys_ddev(struct ddsys *s)
{
	return dd_ramdev_dev(s->data);
}

/* The kernel's pool_pre_commit: no mapping is durable before its data. */
static int sys_pre_commit(void *ctx)
{
	struct ddsys *s = ctx;

	s->st.commits++;
	if (s->op == SYS_WRITE)
		s->st.commits_in_write++;
	else if (s->op == SYS_DISCARD)
		s->st.commits_in_discard++;
	if (s->on_commit && s->tp.pool)
		s->on_commit(s->ctx, s->tp.pool);
	return dd_dev_flush(sys_ddev(s));
}

/*
 * The kernel's pool_freed: the blocks a commit freed go down as discards,
 * which zero them (as a loop device on tmpfs does).  Passdown must never
 * reach a block that is mapped, or reserved by a write in flight: it would
 * destroy that block's data.
 */
static void sys_freed(void *ctx, u64 start, u64 len)
{
	struct ddsys *s = ctx;
	struct dd_pool *pool = s->tp.pool;
	struct dd_record rec;
	u64 b;
	int r;

	s->st.passdown_ranges++;
	s->st.passdown_blocks += len;
	for (b = start; b < start + len; b++) {
		r = dd_record_get(pool, b, &rec);
		if (r)
			sys_violation(s, "passdown of data block %llu: its record cannot be read (%d)",
				      (unsigned long long)b, r);
		else if (rec.refcount && rec.owned)
			sys_violation(s, "passdown of data block %llu, which is mapped (refcount %u, "
				      "owner volume %u LBN %llu): its data would be discarded",
				      (unsigned long long)b, rec.refcount, rec.owner_vol,
				      (unsigned long long)rec.owner_lbn);
		else if (rec.refcount)
			sys_violation(s, "passdown of data block %llu, which is mapped (refcount %u): "
				      "its data would be discarded",
				      (unsigned long long)b, rec.refcount);
		if (dd_walk_data_reserved(pool, b))
			sys_violation(s, "passdown of data block %llu, which is reserved by a write in flight",
				      (unsigned long long)b);
		if (!s->no_passdown && b < sys_ddev(s)->nr_blocks)
			(void)dd_dev_write(sys_ddev(s), b, sys_zero);	/* fails once the power is out */
	}
}

static void sys_set_hooks(struct ddsys *s)
{
	s->tp.hooks.pre_commit = sys_pre_commit;
	s->tp.hooks.freed = sys_freed;
	s->tp.hooks.ctx = s;
}

/* ---- the system: devices and power ---- */

int sys_create(struct ddsys *s, u64 meta_blocks, u64 data_blocks, u32 journal,
	       const struct dd_bm_opts *bmo)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->data = dd_ramdev_create(data_blocks);
	if (!s->data)
		return -ENOMEM;
	sys_set_hooks(s);
	r = tp_create(&s->tp, meta_blocks, data_blocks, journal, bmo);
	if (s->tp.rd)
		dd_ramdev_share_power(s->tp.rd, s->data);
	return r;
}

int sys_attach(struct ddsys *s, struct dd_ramdev *meta, struct dd_ramdev *data,
	       u64 data_blocks, const struct dd_bm_opts *bmo)
{
	memset(s, 0, sizeof(*s));
	s->tp.rd = meta;
	if (bmo)
		s->tp.bmo = *bmo;
	s->tp.fp.nr_data_blocks = data_blocks;
	s->tp.fp.data_block_sectors = DD_SECTORS_PER_BLOCK;
	s->data = data;
	dd_ramdev_share_power(meta, data);
	sys_set_hooks(s);
	return tp_open(&s->tp);
}

int sys_open(struct ddsys *s)
{
	return tp_open(&s->tp);
}

void sys_close(struct ddsys *s)
{
	tp_close(&s->tp);
}

void sys_arm(struct ddsys *s, const struct dd_fault *f)
{
	struct dd_fault mf = *f;
	struct dd_fault df = { .unflushed = f->unflushed, .seed = f->seed * 0x9e3779b97f4a7c15ULL + 1 };

	if (mf.crash_at_write)
		mf.crash_at_write += dd_ramdev_nr_writes(s->tp.rd);
	dd_ramdev_set_fault(s->tp.rd, &mf);
	dd_ramdev_set_fault(s->data, &df);
}

bool sys_power_lost(struct ddsys *s)
{
	return dd_ramdev_crashed(s->tp.rd) || dd_ramdev_crashed(s->data);
}

void sys_crash(struct ddsys *s)
{
	tp_crash(&s->tp);
	dd_ramdev_reboot(s->data);
	s->op = SYS_IDLE;
}

void sys_destroy(struct ddsys *s)
{
	tp_destroy(&s->tp);
	dd_ramdev_free(s->data);
	s->data = NULL;
}

u64 sys_nr_data_blocks(struct ddsys *s)
{
	return sys_ddev(s)->nr_blocks;
}

/* ---- the system: the data path ---- */

static int sys_data_write(struct ddsys *s, u64 pbn, const void *block)
{
	if (pbn >= sys_ddev(s)->nr_blocks) {
		sys_violation(s, "a write to data block %llu, beyond the data device",
			      (unsigned long long)pbn);
		return -EIO;
	}
	s->st.data_writes++;
	return dd_dev_write(sys_ddev(s), pbn, block);
}

#define SYS_INSERT	1	/* data written to *pbn: insert the mapping */
#define SYS_RETRY	2	/* no block, some wait for a commit: commit, retry */

/* process_write(): everything up to the insert of a new block. */
static int sys_write_start(struct ddsys *s, struct dd_volume *v, u64 lbn, const void *block,
			   u64 *pbn)
{
	struct dd_pool *pool = s->tp.pool;
	struct dd_pool_stats st;
	enum dd_write_plan plan;
	struct dd_mapping m;
	bool excl;
	int r;

	r = dd_map_plan_write(v, lbn, 0, &m, &plan);
	if (r)
		return r;
	if (!memcmp(block, sys_zero, DD_BLOCK_SIZE)) {
		/* zero_detect(): a whole zero block unmaps. */
		if (!m.mapped)
			return 0;
		s->st.zero_unmaps++;
		return dd_map_unmap(v, lbn, 1, DD_UNMAP_ZERO);
	}
	if (plan == DD_WRITE_ASK) {
		r = dd_map_make_exclusive(v, lbn, &excl);
		if (r)
			return r;
		m.excl = excl;
		s->st.made_exclusive += excl;
	}
	if (m.mapped && m.excl) {
		s->st.in_place++;
		/* As map() does (a per-CPU ring the worker drains): the block
		 * changed, the scanner looks at it again. */
		dd_scan_mark_written(pool, m.pbn);
		return sys_data_write(s, m.pbn, block);
	}
	r = dd_data_reserve(pool, pbn);
	if (r == -ENOSPC) {
		/* __handle_no_space(): blocks freed in the open transaction
		 * are usable after a commit. */
		dd_pool_get_stats(pool, &st);
		return st.data_pending_free ? SYS_RETRY : -ENOSPC;
	}
	if (r)
		return r;
	r = sys_data_write(s, *pbn, block);
	if (r) {
		dd_data_unreserve(pool, *pbn);
		return r;
	}
	return SYS_INSERT;
}

/* finish_new_block(): the data is written, map it. */
static int sys_write_finish(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 pbn)
{
	int r = dd_map_insert(v, lbn, pbn);

	if (r)
		dd_data_unreserve(s->tp.pool, pbn);
	else
		s->st.new_blocks++;
	return r;
}

static int sys_write_one(struct ddsys *s, struct dd_volume *v, u64 lbn, const void *block)
{
	int tries, r = 0;
	u64 pbn;

	for (tries = 0; tries < 3; tries++) {
		r = sys_write_start(s, v, lbn, block, &pbn);
		if (r == SYS_INSERT)
			return sys_write_finish(s, v, lbn, pbn);
		if (r != SYS_RETRY)
			break;
		s->st.nospace_commits++;
		r = dd_pool_commit(s->tp.pool);
		if (r)
			return r;
		r = -ENOSPC;
	}
	if (r == -ENOSPC || r == SYS_RETRY) {
		s->st.nospace++;
		r = -ENOSPC;
	}
	return r;
}

int sys_write(struct ddsys *s, struct dd_volume *v, u64 lbn, const void *block)
{
	int r;

	s->op = SYS_WRITE;
	r = sys_write_one(s, v, lbn, block);
	s->op = SYS_IDLE;
	return r;
}

/* __plan_block(): a block's mapping, its exclusive bit settled. */
static int sys_plan_block(struct ddsys *s, struct dd_volume *v, u64 lbn, struct dd_mapping *m)
{
	enum dd_write_plan plan;
	bool excl;
	int r;

	r = dd_map_plan_write(v, lbn, 0, m, &plan);
	if (!r && plan == DD_WRITE_ASK) {
		r = dd_map_make_exclusive(v, lbn, &excl);
		m->excl = excl;
		s->st.made_exclusive += excl;
	}
	return r;
}

/*
 * __next_segment(): the next segment from lbn, up to max blocks.  In place:
 * *len blocks exclusive at consecutive PBNs from *pbn.  New blocks: a run is
 * reserved first (*pbn), the blocks after the first planned while it is
 * held, and the tail beyond the segment given back.
 */
static int sys_plan_segment(struct ddsys *s, struct dd_volume *v, u64 lbn, u32 max, u32 *len,
			    bool *in_place, u64 *pbn)
{
	struct dd_mapping m;
	u32 got;
	int r;

	r = sys_plan_block(s, v, lbn, &m);
	if (r)
		return r;
	*in_place = m.mapped && m.excl;
	*pbn = m.pbn;
	if (!*in_place) {
		r = dd_data_reserve_run(s->tp.pool, max, pbn, &got);
		if (r)
			return r;
		max = got;
	}
	for (*len = 1; *len < max; (*len)++) {
		r = sys_plan_block(s, v, lbn + *len, &m);
		if (r)
			break;
		if (*in_place != (m.mapped && m.excl) || (*in_place && m.pbn != *pbn + *len))
			break;
	}
	if (!*in_place)
		dd_data_unreserve_run(s->tp.pool, *pbn + *len, max - *len);
	if (r && !*in_place)
		dd_data_unreserve_run(s->tp.pool, *pbn, *len);
	return r;
}

int sys_write_run(struct ddsys *s, struct dd_volume *v, u64 lbn, u32 n, const void *blocks)
{
	struct dd_pool *pool = s->tp.pool;
	const u8 *b = blocks;
	struct dd_pool_stats st;
	u32 done = 0, len, got, ins, i, tries = 0;
	bool in_place = false;
	u64 pbn = 0;
	int r = 0;

	s->op = SYS_WRITE;
	for (i = 0; i < n; i++)
		DD_BUG_ON(!memcmp(b + (size_t)i * DD_BLOCK_SIZE, sys_zero, DD_BLOCK_SIZE));
	while (done < n && !r) {
		r = sys_plan_segment(s, v, lbn + done, n - done, &len, &in_place, &pbn);
		if (r == -ENOSPC) {
			dd_pool_get_stats(pool, &st);
			if (!st.data_pending_free || ++tries > 3) {
				s->st.nospace++;
				break;
			}
			s->st.nospace_commits++;
			r = dd_pool_commit(pool);
			continue;
		}
		if (r)
			break;
		if (in_place) {
			for (i = 0; i < len && !r; i++) {
				dd_scan_mark_written(pool, pbn + i);
				r = sys_data_write(s, pbn + i, b + (size_t)(done + i) * DD_BLOCK_SIZE);
				s->st.in_place++;
			}
			done += len;
			continue;
		}
		got = len;
		s->st.run_segments++;
		for (i = 0; i < got && !r; i++)
			r = sys_data_write(s, pbn + i, b + (size_t)(done + i) * DD_BLOCK_SIZE);
		ins = 0;
		if (!r)
			r = dd_map_insert_run(v, lbn + done, pbn, got, &ins);
		for (i = ins; i < got; i++)
			dd_data_unreserve(pool, pbn + i);
		s->st.new_blocks += ins;
		done += ins;
	}
	s->op = SYS_IDLE;
	return r;
}

#define SYS_DEFERRED	3	/* waits behind a new block for its LBN (the cell) */

void sys_write_batch(struct ddsys *s, const struct sys_wreq *w, u32 n, int *res)
{
	u64 *pbn = calloc(n ? n : 1, sizeof(*pbn));
	bool retry = false;
	u32 i, j;

	DD_BUG_ON(!pbn);
	s->op = SYS_WRITE;
	/* The worker's pass: lookups, reservations and data writes. */
	for (i = 0; i < n; i++) {
		res[i] = 0;
		for (j = 0; j < i; j++)
			if (res[j] == SYS_INSERT && w[j].v == w[i].v && w[j].lbn == w[i].lbn)
				res[i] = SYS_DEFERRED;
		if (!res[i])
			res[i] = sys_write_start(s, w[i].v, w[i].lbn, w[i].block, &pbn[i]);
		retry |= res[i] == SYS_RETRY;
	}
	/* The completions: inserts, each of which may make the engine commit. */
	for (i = 0; i < n; i++)
		if (res[i] == SYS_INSERT)
			res[i] = sys_write_finish(s, w[i].v, w[i].lbn, pbn[i]);
	/* Writes that waited for space or for their LBN, in order. */
	if (retry) {
		s->st.nospace_commits++;
		(void)dd_pool_commit(s->tp.pool);
	}
	for (i = 0; i < n; i++) {
		if (res[i] == SYS_RETRY || res[i] == SYS_DEFERRED)
			res[i] = sys_write_one(s, w[i].v, w[i].lbn, w[i].block);
		else if (res[i] == -ENOSPC)
			s->st.nospace++;
	}
	s->op = SYS_IDLE;
	free(pbn);
}

int sys_discard(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 nr)
{
	int r;

	s->op = SYS_DISCARD;
	s->st.discards++;
	r = dd_map_unmap(v, lbn, nr, DD_UNMAP_DISCARD);
	s->op = SYS_IDLE;
	return r;
}

int sys_flush(struct ddsys *s)
{
	int r;

	s->op = SYS_FLUSH;
	if (dd_pool_dirty(s->tp.pool))
		r = dd_pool_commit(s->tp.pool);
	else
		r = dd_dev_flush(sys_ddev(s));
	s->op = SYS_IDLE;
	if (!r)
		s->st.flushes++;
	return r;
}

enum tok_kind sys_read(struct ddsys *s, struct dd_volume *v, u64 lbn, u64 *id, u64 *pbn,
		       bool *mapped)
{
	struct dd_mapping m;
	u32 tvol;
	u64 tlbn;

	*id = 0;
	*pbn = 0;
	*mapped = false;
	if (dd_map_lookup(v, lbn, 0, &m))
		return TOK_GARBAGE;
	if (!m.mapped)
		return TOK_ZERO;
	*mapped = true;
	*pbn = m.pbn;
	return tok_decode(dd_ramdev_block(s->data, m.pbn), id, &tvol, &tlbn);
}

/* ---- the model ---- */

void dm_init(struct dmodel *m)
{
	memset(m, 0, sizeof(*m));
	m->next_id = 1;
}

void dm_free(struct dmodel *m)
{
	int i;

	for (i = 0; i < DM_VOLS; i++) {
		hm_free(&m->vol[i].cur);
		hm_free(&m->vol[i].base);
		hm_free(&m->vol[i].later);
	}
	free(m->node);
	m->node = NULL;
	m->nr_node = m->cap_node = 0;
}

static struct dm_vol *dm_vol(const struct dmodel *m, u32 vol)
{
	DD_BUG_ON(vol >= DM_VOLS);
	return (struct dm_vol *)&m->vol[vol];
}

bool dm_allowed(const struct dmodel *m, u32 vol, u64 lbn, u64 id)
{
	const struct dm_vol *mv = dm_vol(m, vol);
	u64 base = 0, n;

	hm_get(&mv->base, lbn, &base);
	if (base == id)
		return true;
	if (!hm_get(&mv->later, lbn, &n))
		return false;
	for (; n; n = m->node[n - 1].next)
		if (m->node[n - 1].id == id)
			return true;
	return false;
}

void dm_may(struct dmodel *m, u32 vol, u64 lbn, u64 id)
{
	struct dm_vol *mv = dm_vol(m, vol);
	u64 head = 0;

	if (dm_allowed(m, vol, lbn, id))
		return;
	if (m->nr_node == m->cap_node) {
		m->cap_node = m->cap_node ? m->cap_node * 2 : 1024;
		m->node = realloc(m->node, m->cap_node * sizeof(*m->node));
		DD_BUG_ON(!m->node);
	}
	hm_get(&mv->later, lbn, &head);
	m->node[m->nr_node].id = id;
	m->node[m->nr_node].next = head;
	m->nr_node++;
	hm_put(&mv->later, lbn, m->nr_node);
}

/* The keys of h in [lbn, lbn + nr), appended to *keys. */
static void dm_keys_in(const struct hmap *h, u64 lbn, u64 nr, u64 **keys, u64 *n, u64 *cap)
{
	u64 i, k, v;

	for (i = 0; hm_iter(h, &i, &k, &v);) {
		if (k < lbn || k - lbn >= nr)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*keys = realloc(*keys, *cap * sizeof(**keys));
			DD_BUG_ON(!*keys);
		}
		(*keys)[(*n)++] = k;
	}
}

void dm_may_zero_range(struct dmodel *m, u32 vol, u64 lbn, u64 nr)
{
	struct dm_vol *mv = dm_vol(m, vol);
	u64 *keys = NULL, n = 0, cap = 0, i;

	dm_keys_in(&mv->cur, lbn, nr, &keys, &n, &cap);
	dm_keys_in(&mv->base, lbn, nr, &keys, &n, &cap);
	dm_keys_in(&mv->later, lbn, nr, &keys, &n, &cap);
	for (i = 0; i < n; i++)
		dm_may(m, vol, keys[i], 0);
	free(keys);
}

void dm_set(struct dmodel *m, u32 vol, u64 lbn, u64 id)
{
	struct dm_vol *mv = dm_vol(m, vol);

	if (id)
		hm_put(&mv->cur, lbn, id);
	else
		hm_del(&mv->cur, lbn);
}

void dm_zero_range(struct dmodel *m, u32 vol, u64 lbn, u64 nr)
{
	struct dm_vol *mv = dm_vol(m, vol);
	u64 *keys = NULL, n = 0, cap = 0, i;

	dm_keys_in(&mv->cur, lbn, nr, &keys, &n, &cap);
	for (i = 0; i < n; i++)
		hm_del(&mv->cur, keys[i]);
	free(keys);
}

void dm_create(struct dmodel *m, u32 vol)
{
	struct dm_vol *mv = dm_vol(m, vol);

	DD_BUG_ON(mv->state != DM_NEVER);	/* the tests never reuse an id */
	mv->state = DM_LIVE;
	mv->since = true;
	hm_clear(&mv->cur);
	hm_clear(&mv->base);
	hm_clear(&mv->later);
}

/* A snapshot holds the origin's present: a commit that makes the snapshot
 * durable makes the mappings it copied durable, with their data. */
void dm_snapshot(struct dmodel *m, u32 vol, u32 origin)
{
	dm_create(m, vol);
	hm_copy(&dm_vol(m, vol)->cur, &dm_vol(m, origin)->cur);
	hm_copy(&dm_vol(m, vol)->base, &dm_vol(m, origin)->cur);
}

void dm_delete(struct dmodel *m, u32 vol)
{
	dm_vol(m, vol)->state = DM_DELETED;
}

void dm_flushed(struct dmodel *m)
{
	int i;

	for (i = 0; i < DM_VOLS; i++) {
		struct dm_vol *mv = &m->vol[i];

		if (mv->state == DM_LIVE)
			hm_copy(&mv->base, &mv->cur);
		mv->at_flush = mv->state == DM_LIVE;
		mv->since = false;
		hm_clear(&mv->later);
	}
	m->nr_node = 0;
}

/* "write #12 (flushed), #40, zeroes" */
static void dm_describe(const struct dmodel *m, u32 vol, u64 lbn, bool exact, char *buf,
			size_t len)
{
	const struct dm_vol *mv = dm_vol(m, vol);
	u64 id = 0, n;
	size_t at = 0;
	int shown = 0;

#define DM_PUT(...) do { if (at < len) at += (size_t)snprintf(buf + at, len - at, __VA_ARGS__); } while (0)
	hm_get(exact ? &mv->cur : &mv->base, lbn, &id);
	if (id)
		DM_PUT("write #%llu", (unsigned long long)id);
	else
		DM_PUT("zeroes");
	DM_PUT(exact ? " (written last)" : " (at the last flush)");
	if (exact || !hm_get(&mv->later, lbn, &n))
		return;
	for (; n && shown < 8; n = m->node[n - 1].next, shown++) {
		if (m->node[n - 1].id)
			DM_PUT(", write #%llu", (unsigned long long)m->node[n - 1].id);
		else
			DM_PUT(", zeroes");
	}
	if (n)
		DM_PUT(", ...");
	DM_PUT(" (written after it)");
#undef DM_PUT
}

static int dm_check_lbn(const struct dmodel *m, struct ddsys *s, struct dd_volume *v, u32 vol,
			u64 lbn, bool exact, char *why, size_t len)
{
	char allowed[256];
	enum tok_kind kind;
	u64 id, pbn, want = 0;
	bool mapped, ok;

	kind = sys_read(s, v, lbn, &id, &pbn, &mapped);
	if (kind == TOK_GARBAGE || (mapped && kind == TOK_ZERO)) {
		dm_describe(m, vol, lbn, exact, allowed, sizeof(allowed));
		snprintf(why, len, "volume %u LBN %llu maps data block %llu, which holds %s "
			 "(a mapping without its data); allowed: %s", vol, (unsigned long long)lbn,
			 (unsigned long long)pbn, kind == TOK_ZERO ? "zeroes" : "no write's contents",
			 allowed);
		return -1;
	}
	if (exact) {
		hm_get(&dm_vol(m, vol)->cur, lbn, &want);
		ok = want == id;
	} else {
		ok = dm_allowed(m, vol, lbn, id);
	}
	if (ok)
		return 0;
	dm_describe(m, vol, lbn, exact, allowed, sizeof(allowed));
	if (mapped)
		snprintf(why, len, "volume %u LBN %llu reads write #%llu (data block %llu); allowed: %s",
			 vol, (unsigned long long)lbn, (unsigned long long)id,
			 (unsigned long long)pbn, allowed);
	else
		snprintf(why, len, "volume %u LBN %llu reads zeroes (unmapped); allowed: %s", vol,
			 (unsigned long long)lbn, allowed);
	return -1;
}

static int dm_check_keys(const struct dmodel *m, struct ddsys *s, struct dd_volume *v, u32 vol,
			 const struct hmap *h, bool exact, char *why, size_t len)
{
	u64 i, k, val;

	for (i = 0; hm_iter(h, &i, &k, &val);)
		if (dm_check_lbn(m, s, v, vol, k, exact, why, len))
			return -1;
	return 0;
}

static int dm_verify_vol(const struct dmodel *m, struct ddsys *s, u32 vol, bool exact, char *why,
			 size_t len)
{
	const struct dm_vol *mv = dm_vol(m, vol);
	struct dd_mapping mp;
	struct dd_volume *v;
	bool must, may;
	u64 lbn;
	int r;

	must = exact ? mv->state == DM_LIVE : mv->at_flush && mv->state == DM_LIVE;
	may = exact ? mv->state == DM_LIVE : mv->at_flush || mv->since;
	r = dd_volume_open(s->tp.pool, vol, &v);
	if (r == -ENOENT) {
		if (!must)
			return 0;
		snprintf(why, len, "volume %u is missing, but it %s", vol,
			 exact ? "exists" : "existed at the last flush and was not deleted");
		return -1;
	}
	if (r) {
		snprintf(why, len, "volume %u cannot be opened (%d)", vol, r);
		return -1;
	}
	if (!may) {
		snprintf(why, len, "volume %u exists, but it %s", vol,
			 mv->state == DM_NEVER ? "was never created" :
			 "was deleted before the last flush");
		dd_volume_close(v);
		return -1;
	}
	r = 0;
	if (exact) {
		r = dm_check_keys(m, s, v, vol, &mv->cur, true, why, len);
	} else {
		r = dm_check_keys(m, s, v, vol, &mv->base, false, why, len);
		if (!r)
			r = dm_check_keys(m, s, v, vol, &mv->later, false, why, len);
	}
	/* Every LBN the pool maps, the model's or not. */
	for (lbn = 0; !r; lbn++) {
		int e = dd_map_next(v, &lbn, &mp);

		if (e == -ENODATA)
			break;
		if (e) {
			snprintf(why, len, "volume %u: walking its map fails (%d)", vol, e);
			r = -1;
			break;
		}
		r = dm_check_lbn(m, s, v, vol, lbn, exact, why, len);
	}
	dd_volume_close(v);
	return r;
}

int dm_verify(const struct dmodel *m, struct ddsys *s, bool exact, char *why, size_t len)
{
	struct dd_volume_info info;
	u32 vol, id = DM_VOLS;

	for (vol = 0; vol < DM_VOLS; vol++)
		if (dm_verify_vol(m, s, vol, exact, why, len))
			return -1;
	if (!dd_volume_next(s->tp.pool, &id, false, &info)) {
		snprintf(why, len, "volume %u exists, but no test volume has that id", id);
		return -1;
	}
	return 0;
}

int dm_from_pool(struct dmodel *m, struct ddsys *s)
{
	u64 next_id = m->next_id;
	u32 vol;

	dm_free(m);
	dm_init(m);
	m->next_id = next_id;
	for (vol = 0; vol < DM_VOLS; vol++) {
		struct dm_vol *mv = &m->vol[vol];
		struct dd_volume *v;
		struct dd_mapping mp;
		u64 lbn, id, pbn;
		bool mapped;

		if (dd_volume_open(s->tp.pool, vol, &v))
			continue;
		mv->state = DM_LIVE;
		mv->at_flush = true;
		for (lbn = 0; !dd_map_next(v, &lbn, &mp); lbn++) {
			if (sys_read(s, v, lbn, &id, &pbn, &mapped) != TOK_WRITE) {
				dd_volume_close(v);
				return -1;
			}
			hm_put(&mv->cur, lbn, id);
		}
		hm_copy(&mv->base, &mv->cur);
		dd_volume_close(v);
	}
	return 0;
}
