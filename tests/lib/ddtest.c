// SPDX-License-Identifier: GPL-2.0
#include "ddtest.h"
#include "dd-walk.h"

/* ---- hash map ---- */
#define HM_EMPTY (~0ULL)

static u64 hm_hash(u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

void hm_init(struct hmap *m)
{
	memset(m, 0, sizeof(*m));
}

void hm_free(struct hmap *m)
{
	free(m->key);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

void hm_clear(struct hmap *m)
{
	if (m->size)
		memset(m->key, 0xff, m->size * sizeof(u64));
	m->used = 0;
}

static u64 hm_find(const struct hmap *m, u64 k)
{
	u64 i = hm_hash(k) & (m->size - 1);

	while (m->key[i] != HM_EMPTY && m->key[i] != k)
		i = (i + 1) & (m->size - 1);
	return i;
}

bool hm_get(const struct hmap *m, u64 k, u64 *v)
{
	u64 i;

	if (!m->size)
		return false;
	i = hm_find(m, k);
	if (m->key[i] == HM_EMPTY)
		return false;
	if (v)
		*v = m->val[i];
	return true;
}

static void hm_grow(struct hmap *m)
{
	struct hmap n;
	u64 i;

	n.size = m->size ? m->size * 2 : 64;
	n.used = 0;
	n.key = malloc(n.size * sizeof(u64));
	n.val = malloc(n.size * sizeof(u64));
	DD_BUG_ON(!n.key || !n.val);
	memset(n.key, 0xff, n.size * sizeof(u64));
	for (i = 0; i < m->size; i++)
		if (m->key[i] != HM_EMPTY)
			hm_put(&n, m->key[i], m->val[i]);
	free(m->key);
	free(m->val);
	*m = n;
}

void hm_put(struct hmap *m, u64 k, u64 v)
{
	u64 i;

	if ((m->used + 1) * 2 > m->size)
		hm_grow(m);
	i = hm_find(m, k);
	if (m->key[i] == HM_EMPTY) {
		m->key[i] = k;
		m->used++;
	}
	m->val[i] = v;
}

bool hm_del(struct hmap *m, u64 k)
{
	u64 i, j;

	if (!m->size)
		return false;
	i = hm_find(m, k);
	if (m->key[i] == HM_EMPTY)
		return false;
	/* backward-shift deletion keeps probe chains intact */
	m->key[i] = HM_EMPTY;
	m->used--;
	for (j = (i + 1) & (m->size - 1); m->key[j] != HM_EMPTY; j = (j + 1) & (m->size - 1)) {
		u64 k2 = m->key[j], v2 = m->val[j];

		m->key[j] = HM_EMPTY;
		m->used--;
		hm_put(m, k2, v2);
	}
	return true;
}

void hm_copy(struct hmap *dst, const struct hmap *src)
{
	hm_free(dst);
	dst->size = src->size;
	dst->used = src->used;
	if (!src->size)
		return;
	dst->key = malloc(src->size * sizeof(u64));
	dst->val = malloc(src->size * sizeof(u64));
	DD_BUG_ON(!dst->key || !dst->val);
	memcpy(dst->key, src->key, src->size * sizeof(u64));
	memcpy(dst->val, src->val, src->size * sizeof(u64));
}

bool hm_iter(const struct hmap *m, u64 *i, u64 *k, u64 *v)
{
	for (; *i < m->size; (*i)++) {
		if (m->key[*i] != HM_EMPTY) {
			*k = m->key[*i];
			*v = m->val[*i];
			(*i)++;
			return true;
		}
	}
	return false;
}

/* ---- test pools ---- */
static bool tp_is_quiet;

static void tp_log_hook(enum dd_log_level lvl, const char *msg)
{
	if (!tp_is_quiet && lvl <= DD_LOG_WARN)
		fprintf(stderr, "  engine: %s\n", msg);
}

void tp_quiet(bool quiet)
{
	tp_is_quiet = quiet;
	dd_set_log_hook(tp_log_hook);
}

int tp_open(struct tpool *tp)
{
	int r = dd_bm_create(dd_ramdev_dev(tp->rd), &tp->bmo, &tp->bm);

	if (r)
		return r;
	r = dd_pool_open(tp->bm, 0, &tp->hooks, &tp->pool);
	if (r) {
		dd_bm_drop(tp->bm);
		tp->bm = NULL;
		tp->pool = NULL;
	}
	return r;
}

int tp_create(struct tpool *tp, u64 meta_blocks, u64 data_blocks, u32 journal,
	      const struct dd_bm_opts *bmo)
{
	struct dd_bm *bm;
	int r;

	struct dd_pool_hooks hooks = tp->hooks;

	memset(tp, 0, sizeof(*tp));
	tp->hooks = hooks;
	if (bmo)
		tp->bmo = *bmo;
	tp->rd = dd_ramdev_create(meta_blocks);
	if (!tp->rd)
		return -ENOMEM;
	tp->fp.nr_data_blocks = data_blocks;
	tp->fp.data_block_sectors = DD_SECTORS_PER_BLOCK;
	tp->fp.journal_blocks = journal;
	r = dd_bm_create(dd_ramdev_dev(tp->rd), &tp->bmo, &bm);
	if (r)
		return r;
	r = dd_pool_format(bm, &tp->fp);
	dd_bm_destroy(bm);
	if (r)
		return r;
	return tp_open(tp);
}

void tp_close(struct tpool *tp)
{
	if (tp->pool) {
		struct dd_pool_stats st;

		dd_pool_get_stats(tp->pool, &st);
		tp->last_txn = st.txn;
		dd_pool_close(tp->pool);
	}
	if (tp->bm)
		dd_bm_destroy(tp->bm);
	tp->pool = NULL;
	tp->bm = NULL;
}

void tp_crash(struct tpool *tp)
{
	/* The engine's memory is lost with the power: free it without I/O. */
	if (tp->pool)
		dd_pool_drop(tp->pool);
	if (tp->bm)
		dd_bm_drop(tp->bm);
	tp->pool = NULL;
	tp->bm = NULL;
	dd_ramdev_reboot(tp->rd);
}

int tp_reopen(struct tpool *tp)
{
	tp_close(tp);
	return tp_open(tp);
}

void tp_destroy(struct tpool *tp)
{
	tp_close(tp);
	dd_ramdev_free(tp->rd);
	tp->rd = NULL;
}

static void tp_report(void *ctx, enum dd_check_code code, bool error, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "  check %s [%s]: %s\n", error ? "error" : "warning",
		dd_check_code_name(code), msg);
}

u64 tp_check(struct tpool *tp, struct dd_check_result *res)
{
	struct dd_check_result local;
	struct dd_check_opts o = { .report = tp_report };
	struct dd_bm_opts ro = { .read_only = true };
	struct dd_bm *bm;
	bool quiet = tp_is_quiet;

	if (!res)
		res = &local;
	if (dd_bm_create(dd_ramdev_dev(tp->rd), &ro, &bm))
		return 1;
	tp_quiet(false);
	dd_check(bm, &o, res);
	tp_quiet(quiet);
	dd_bm_drop(bm);
	return res->errors;
}

const char *tp_not_writable(struct dd_pool *pool)
{
	struct dd_pool_stats st;

	dd_pool_get_stats(pool, &st);
	if (st.needs_check)
		return "it needs a check (needs_check is set)";
	switch (st.mode) {
	case DD_MODE_RW:
		return NULL;
	case DD_MODE_RO:
		return "it is read-only";
	case DD_MODE_FAIL:
		return "it is in fail mode";
	}
	return "its mode is unknown";
}

static u64 tp_mix(u64 h, u64 v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

u64 tp_digest(struct dd_pool *pool)
{
	struct dd_volume_info info;
	struct dd_pool_stats st;
	u64 h = 0;
	u32 id = 0;

	dd_pool_get_stats(pool, &st);
	h = tp_mix(h, st.nr_data_blocks);
	h = tp_mix(h, st.nr_meta_blocks);
	h = tp_mix(h, st.user_txn);
	h = tp_mix(h, st.data_used);
	h = tp_mix(h, st.mapped_blocks);
	h = tp_mix(h, st.shared_blocks);
	h = tp_mix(h, st.nr_volumes);
	while (!dd_volume_next(pool, &id, true, &info)) {
		struct dd_volume *v;
		struct dd_mapping m;
		u64 lbn = 0;
		/* An interrupted snapshot is deleted when the pool opens. */
		u32 flags = info.flags & DD_VOL_INCOMPLETE ?
			(info.flags & ~DD_VOL_INCOMPLETE) | DD_VOL_DELETING : info.flags;

		h = tp_mix(h, id);
		h = tp_mix(h, flags);
		h = tp_mix(h, info.mapped_blocks);
		if (dd_volume_open_any(pool, id, &v))
			return 0;
		for (; !dd_map_next(v, &lbn, &m); lbn++) {
			struct dd_record rec;

			h = tp_mix(h, lbn);
			h = tp_mix(h, m.pbn | ((u64)m.excl << 63));
			if (!dd_record_get(pool, m.pbn, &rec))
				h = tp_mix(h, rec.refcount);
		}
		dd_volume_close(v);
		id++;
	}
	return h;
}

int tp_write(struct dd_volume *v, u64 lbn, u64 *pbn)
{
	u64 p;
	int r = dd_data_reserve(dd_volume_pool(v), &p);

	if (r)
		return r;
	r = dd_map_insert(v, lbn, p);
	if (r) {
		dd_data_unreserve(dd_volume_pool(v), p);
		return r;
	}
	if (pbn)
		*pbn = p;
	return 0;
}

/* ---- model ---- */
void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->next_token = 1;
}

void model_free(struct model *m)
{
	int i;

	for (i = 0; i < MODEL_MAX_VOLS; i++)
		hm_free(&m->vol[i]);
}

void model_copy(struct model *dst, const struct model *src)
{
	int i;

	for (i = 0; i < MODEL_MAX_VOLS; i++)
		hm_copy(&dst->vol[i], &src->vol[i]);
	memcpy(dst->exists, src->exists, sizeof(dst->exists));
	dst->next_token = src->next_token;
}

u64 model_refs(const struct model *m, u64 token)
{
	u64 n = 0, i, k, v;
	int vol;

	for (vol = 0; vol < MODEL_MAX_VOLS; vol++)
		for (i = 0; hm_iter(&m->vol[vol], &i, &k, &v);)
			n += v == token;
	return n;
}

int model_compare(const struct model *m, struct dd_pool *pool)
{
	struct hmap tok2pbn, pbn2tok, refs, hidden;
	struct dd_volume_info info;
	u64 i, k, tok, total = 0, used_hidden = 0;
	int vol, r, bad = 0;
	u32 id;
	struct dd_walk_info g;
	bool shared;

	dd_walk_get_info(pool, &g);
	shared = g.incompat & DD_INCOMPAT_SHARED_MAPS;
	hm_init(&tok2pbn);
	hm_init(&pbn2tok);
	hm_init(&refs);
	hm_init(&hidden);
	for (vol = 0; vol < MODEL_MAX_VOLS && !bad; vol++) {
		struct dd_volume *v;

		id = (u32)vol;
		r = dd_volume_next(pool, &id, false, &info);
		if (!m->exists[vol]) {
			if (!r && id == (u32)vol) {
				fprintf(stderr, "  model: volume %d exists in the engine only\n", vol);
				bad = 1;
			}
			continue;
		}
		if (r || id != (u32)vol || dd_volume_open(pool, (u32)vol, &v)) {
			fprintf(stderr, "  model: volume %d missing in the engine\n", vol);
			bad = 1;
			break;
		}
		if (dd_volume_mapped(v) != m->vol[vol].used) {
			fprintf(stderr, "  model: volume %d maps %llu blocks, engine %llu\n", vol,
				(unsigned long long)m->vol[vol].used,
				(unsigned long long)dd_volume_mapped(v));
			bad = 1;
		}
		for (i = 0; !bad && hm_iter(&m->vol[vol], &i, &k, &tok);) {
			struct dd_mapping mp;
			u64 p, t, n;

			r = dd_map_lookup(v, k, 0, &mp);
			if (r || !mp.mapped) {
				fprintf(stderr, "  model: volume %d LBN %llu unmapped in the engine (%d)\n",
					vol, (unsigned long long)k, r);
				bad = 1;
				break;
			}
			if (hm_get(&tok2pbn, tok, &p) && p != mp.pbn) {
				fprintf(stderr, "  model: token %llu at two blocks %llu and %llu\n",
					(unsigned long long)tok, (unsigned long long)p,
					(unsigned long long)mp.pbn);
				bad = 1;
			}
			if (hm_get(&pbn2tok, mp.pbn, &t) && t != tok) {
				fprintf(stderr, "  model: block %llu holds two identities (volume %d LBN %llu)\n",
					(unsigned long long)mp.pbn, vol, (unsigned long long)k);
				bad = 1;
			}
			hm_put(&tok2pbn, tok, mp.pbn);
			hm_put(&pbn2tok, mp.pbn, tok);
			n = 0;
			hm_get(&refs, tok, &n);
			hm_put(&refs, tok, n + 1);
			total++;
		}
		dd_volume_close(v);
	}
	/* Deleted volumes not yet reclaimed still hold references. */
	id = 0;
	while (!bad && !dd_volume_next(pool, &id, true, &info)) {
		struct dd_volume *v;
		struct dd_mapping mp;
		u64 lbn = 0, n;

		if (!(info.flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)) ||
		    dd_volume_open_any(pool, id, &v)) {
			id++;
			continue;
		}
		for (; !dd_map_next(v, &lbn, &mp); lbn++) {
			n = 0;
			hm_get(&hidden, mp.pbn, &n);
			hm_put(&hidden, mp.pbn, n + 1);
			total++;
		}
		dd_volume_close(v);
		id++;
	}
	/* Reference counts of every block equal the model's sharing. */
	for (i = 0; !bad && hm_iter(&tok2pbn, &i, &tok, &k);) {
		struct dd_record rec;
		u64 n = 0, h = 0;

		hm_get(&refs, tok, &n);
		hm_get(&hidden, k, &h);
		/* With shared map pages an entry of a shared leaf counts once
		 * for all the volumes that reach it (dedup_check proves the
		 * exact count): between 1 and the entries. */
		if (dd_record_get(pool, k, &rec) ||
		    (shared ? !rec.refcount || rec.refcount > n + h : rec.refcount != n + h)) {
			fprintf(stderr, "  model: block %llu refcount %u, model %llu + %llu hidden\n",
				(unsigned long long)k, rec.refcount, (unsigned long long)n,
				(unsigned long long)h);
			bad = 1;
		}
	}
	for (i = 0; hm_iter(&hidden, &i, &k, &tok);)
		if (!hm_get(&pbn2tok, k, NULL))
			used_hidden++;
	if (!bad) {
		struct dd_pool_stats st;

		dd_pool_get_stats(pool, &st);
		if (st.mapped_blocks != total || st.data_used != tok2pbn.used + used_hidden) {
			fprintf(stderr, "  model: engine maps %llu/uses %llu, model %llu/%llu\n",
				(unsigned long long)st.mapped_blocks, (unsigned long long)st.data_used,
				(unsigned long long)total, (unsigned long long)tok2pbn.used);
			bad = 1;
		}
	}
	hm_free(&tok2pbn);
	hm_free(&pbn2tok);
	hm_free(&refs);
	hm_free(&hidden);
	return bad ? -1 : 0;
}
