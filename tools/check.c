// SPDX-License-Identifier: GPL-2.0
/*
 * dedup_check's engine: proves that every metadata block is valid and
 * reachable exactly once, that each data block's reference count equals the
 * number of map entries pointing at it, that the allocation bitmaps agree
 * with both, and that owner back-pointers and exclusive bits tell the truth.
 *
 * Reference counting takes 4 bytes per data block; a pool larger than
 * opts->max_memory is checked in windows of data blocks, walking the maps
 * once per window.
 *
 * Shared map pages (docs/snapshots.md): the walk counts, for every metadata
 * block, the parents it is reached from (a root, or the first visit of a
 * node), and proves each equals 1 + its entry in the mrefs tree.  A page is
 * accounted for once however many volumes reach it: its data references
 * are counted on its first visit (a data block under a shared leaf has one
 * reference from that leaf), while every volume's entry count includes it.
 * An exclusive bit reached through a shared page is not trusted by the
 * engine and not checked here; elsewhere the record must name the
 * volume's family and the LBN.
 */
#include "check.h"
#include "dd-walk.h"

#include <stdarg.h>

struct chk {
	struct dd_pool *pool;
	struct dd_walk_info g;		/* geometry and the superblock's counters */
	void *blk;			/* one block, for raw reads */
	const struct dd_check_opts *o;
	struct dd_check_result *res;
	u8 *meta_seen;
	u32 *refs;
	u16 *dom;			/* per block of the window: 0 none, domain + 1, or DOM_MIXED */
	u64 win_start, win_len;
	bool first_pass;
	u64 map_entries;
	u32 cur_vol;
	u32 cur_family;
	u32 cur_domain;
	u64 cur_vol_entries;
	/* parents per metadata block (first pass), extra parents per the mrefs
	 * tree, visited in this pass; along the walk's current path: whether
	 * the block at each level was a first visit, and reached through a
	 * shared page */
	u32 *arrivals, *mref;
	u8 *visited;
	bool first_at[DD_MAX_HEIGHT + 2];
	bool shared_at[DD_MAX_HEIGHT + 2];
	bool leaf_first, leaf_shared;
	/* (id, family) of every volume, for the family checks */
	u32 *fam_id, *fam_of;
	u32 nr_fam, cap_fam;
};

#define DOM_MIXED	0xffffu

static const char *const dd_chk_names[DD_CHK_NR_CODES] = {
	[DD_CHK_OPEN] = "open",
	[DD_CHK_BLOCK] = "bad-block",
	[DD_CHK_TREE] = "tree",
	[DD_CHK_META_SHARED] = "metadata-shared",
	[DD_CHK_META_LEAK] = "metadata-leak",
	[DD_CHK_META_FREE] = "metadata-free-in-use",
	[DD_CHK_MAP_RANGE] = "map-out-of-range",
	[DD_CHK_MAP_FLAGS] = "map-flags",
	[DD_CHK_REFCOUNT] = "refcount",
	[DD_CHK_DATA_LEAK] = "data-leak",
	[DD_CHK_DATA_FREE] = "data-free-in-use",
	[DD_CHK_OWNER] = "owner",
	[DD_CHK_EXCL] = "exclusive-bit",
	[DD_CHK_VOLUME] = "volume",
	[DD_CHK_STATS] = "counters",
	[DD_CHK_DOMAIN] = "domain",
	[DD_CHK_SCAN] = "scanner",
	[DD_CHK_NEEDS_CHECK] = "needs-check",
};

const char *dd_check_code_name(enum dd_check_code code)
{
	return code < DD_CHK_NR_CODES ? dd_chk_names[code] : "?";
}

__attribute__((format(printf, 4, 5)))
static void chk_report(struct chk *c, enum dd_check_code code, bool error, const char *fmt, ...)
{
	u64 limit = c->o->max_reports ? c->o->max_reports : 10;
	char msg[512];
	va_list ap;

	if (error)
		c->res->errors++;
	else
		c->res->warnings++;
	if (c->res->count[code]++ >= limit || !c->o->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->o->report(c->o->ctx, code, error, msg);
}

static u64 chk_min(u64 a, u64 b)
{
	return a < b ? a : b;
}

static u64 chk_max(u64 a, u64 b)
{
	return a > b ? a : b;
}

static const char *chk_tree_name(u8 id)
{
	switch (id) {
	case DD_TREE_VOLS: return "volume table";
	case DD_TREE_MAP: return "map";
	case DD_TREE_REFS: return "record tree";
	case DD_TREE_DALLOC: return "data bitmap";
	case DD_TREE_WRITTEN: return "written marks";
	case DD_TREE_INDEX: return "saved index";
	case DD_TREE_MREFS: return "page reference tree";
	default: return "tree";
	}
}

/* Says precisely why a block fails validation. */
static void chk_explain(struct chk *c, u64 b, const void *data, u32 type, u8 tree, u8 level,
			u32 owner)
{
	const struct dd_disk_header *h = data;

	if (le32_to_cpu(h->type) != type)
		chk_report(c, DD_CHK_BLOCK, true, "block %llu: type %#x, expected %#x",
			   (unsigned long long)b, le32_to_cpu(h->type), type);
	else if (le32_to_cpu(h->csum) != dd_walk_block_csum(data, type))
		chk_report(c, DD_CHK_BLOCK, true, "block %llu: checksum mismatch",
			   (unsigned long long)b);
	else if (le64_to_cpu(h->blocknr) != b)
		chk_report(c, DD_CHK_BLOCK, true, "block %llu: claims to be block %llu",
			   (unsigned long long)b, (unsigned long long)le64_to_cpu(h->blocknr));
	else
		chk_report(c, DD_CHK_BLOCK, true,
			   "block %llu: tree/level/owner %u/%u/%u, expected %u/%u/%u",
			   (unsigned long long)b, h->tree, h->level, le32_to_cpu(h->owner), tree,
			   level, owner);
}

typedef void (*chk_leaf_fn)(struct chk *c, u64 idx, const void *leaf);

struct chk_walk {
	struct chk *c;
	chk_leaf_fn fn;
};

/* Accounts for a block the walk found (its parent edge on the first pass,
 * when the parent itself was visited for the first time) and reports why it
 * cannot be used; false if its contents are not to be used. */
static bool chk_block(struct chk *c, const struct dd_walk_block *blk)
{
	u64 b = blk->blocknr;
	bool top = !blk->parent, edge, first;

	c->first_at[blk->level] = false;
	c->shared_at[blk->level] = top ? false : c->shared_at[blk->level + 1];
	if (blk->error == -ERANGE) {
		if (c->first_pass)
			chk_report(c, DD_CHK_TREE, true, "%s points at block %llu, outside the metadata area",
				   chk_tree_name(blk->tree), (unsigned long long)b);
		return false;
	}
	edge = top || c->first_at[blk->level + 1];
	first = !(c->visited[b / 8] & (1u << (b % 8)));
	c->visited[b / 8] |= 1u << (b % 8);
	if (c->first_pass) {
		if (edge && c->arrivals[b] != 0xffffffffu)
			c->arrivals[b]++;
		if (!(c->meta_seen[b / 8] & (1u << (b % 8)))) {
			c->meta_seen[b / 8] |= 1u << (b % 8);
			c->res->meta_blocks_seen++;
		}
	}
	c->first_at[blk->level] = first;
	if (c->mref[b])
		c->shared_at[blk->level] = true;
	/* Only map pages are shared; a block of another tree is used once. */
	if (!first && blk->tree != DD_TREE_MAP)
		return false;
	if (!blk->data.raw) {
		if (c->first_pass && first)
			chk_report(c, DD_CHK_BLOCK, true, "block %llu: read error %d",
				   (unsigned long long)b, blk->error);
		return false;
	}
	if (blk->error) {
		if (c->first_pass && first)
			chk_explain(c, b, blk->data.raw, blk->type, blk->tree, blk->level, blk->owner);
		return false;
	}
	return true;
}

static int chk_visit(void *ctx, const struct dd_walk_block *blk)
{
	struct chk_walk *w = ctx;
	struct chk *c = w->c;
	const struct dd_disk_node *n = blk->data.node;
	u32 i, count = 0;

	if (!chk_block(c, blk))
		return DD_WALK_SKIP;
	if (!blk->level) {
		c->leaf_first = c->first_at[0];
		c->leaf_shared = c->shared_at[0];
		w->fn(c, blk->first_leaf, blk->data.raw);
		return 0;
	}
	if (!c->first_pass || !c->first_at[blk->level])
		return 0;
	for (i = 0; i < DD_NODE_FANOUT; i++)
		count += !!n->child[i];
	if (count != le16_to_cpu(n->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "%s node %llu: %u children, header says %u",
			   chk_tree_name(blk->tree), (unsigned long long)blk->blocknr, count,
			   le16_to_cpu(n->hdr.count));
	if (!count)
		chk_report(c, DD_CHK_TREE, true, "%s node %llu is empty", chk_tree_name(blk->tree),
			   (unsigned long long)blk->blocknr);
	return 0;
}

/* Walks one tree (vol: the volume of a map), fn on each valid leaf. */
static void chk_tree(struct chk *c, enum dd_tree_id tree, u32 vol, chk_leaf_fn fn)
{
	struct chk_walk w = { c, fn };
	struct dd_walk_root root;

	if (dd_walk_root(c->pool, tree, vol, &root) || !root.block)
		return;
	if (root.height > DD_MAX_HEIGHT) {
		if (c->first_pass)
			chk_report(c, DD_CHK_TREE, true, "%s has height %u", chk_tree_name(tree),
				   root.height);
		return;
	}
	dd_walk_tree(c->pool, tree, vol, chk_visit, &w);
}

/* ---- maps --------------------------------------------------------------- */

static void chk_excl(struct chk *c, u64 lbn, u64 pbn)
{
	struct dd_disk_rec d;
	struct dd_record rec;

	if (dd_walk_record(c->pool, pbn, &d))
		return;
	dd_record_decode(&d, &rec);
	if (rec.refcount != 1 || !rec.owned || rec.owner_vol != c->cur_family || rec.owner_lbn != lbn)
		chk_report(c, DD_CHK_EXCL, true,
			   "volume %u LBN %llu: exclusive bit on block %llu (refcount %u, owner %s%u/%llu)",
			   c->cur_vol, (unsigned long long)lbn, (unsigned long long)pbn, rec.refcount,
			   rec.owned ? "" : "unknown ", rec.owner_vol,
			   (unsigned long long)rec.owner_lbn);
}

static void chk_map_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_map_leaf *l = data;
	u32 slot, count = 0;

	if (!c->leaf_first) {
		/* A shared leaf seen before: its entries are this volume's too,
		 * its references were counted at its first visit. */
		for (slot = 0; c->first_pass && slot < DD_MAP_ENTRIES; slot++)
			if (le64_to_cpu(l->entry[slot]) & DD_ME_MAPPED)
				c->cur_vol_entries++;
		return;
	}
	for (slot = 0; slot < DD_MAP_ENTRIES; slot++) {
		u64 e = le64_to_cpu(l->entry[slot]);
		u64 lbn = idx * DD_MAP_ENTRIES + slot, pbn;
		struct dd_mapping m;

		dd_map_entry_decode(e, &m);
		if (!m.mapped) {
			if (e && c->first_pass)
				chk_report(c, DD_CHK_MAP_FLAGS, true,
					   "volume %u LBN %llu: unmapped entry holds %#llx", c->cur_vol,
					   (unsigned long long)lbn, (unsigned long long)e);
			continue;
		}
		count++;
		pbn = m.pbn;
		if (c->first_pass) {
			c->cur_vol_entries++;
			if (e & ~DD_ME_KNOWN)
				chk_report(c, DD_CHK_MAP_FLAGS, true,
					   "volume %u LBN %llu: unknown bits %#llx", c->cur_vol,
					   (unsigned long long)lbn, (unsigned long long)(e & ~DD_ME_KNOWN));
		}
		if (pbn >= c->g.nr_data_blocks) {
			if (c->first_pass)
				chk_report(c, DD_CHK_MAP_RANGE, true,
					   "volume %u LBN %llu: maps block %llu beyond the data device (%llu blocks)",
					   c->cur_vol, (unsigned long long)lbn, (unsigned long long)pbn,
					   (unsigned long long)c->g.nr_data_blocks);
			continue;
		}
		if (c->first_pass && m.excl && !c->leaf_shared)
			chk_excl(c, lbn, pbn);
		if (pbn >= c->win_start && pbn - c->win_start < c->win_len) {
			u16 *d = &c->dom[pbn - c->win_start];

			if (c->refs[pbn - c->win_start] != 0xffffffffu)
				c->refs[pbn - c->win_start]++;
			if (!*d)
				*d = (u16)(c->cur_domain + 1);
			else if (*d != c->cur_domain + 1)
				*d = DOM_MIXED;
		}
	}
	if (c->first_pass && count != le16_to_cpu(l->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "volume %u map leaf %llu: %u entries, header says %u",
			   c->cur_vol, (unsigned long long)idx, count, le16_to_cpu(l->hdr.count));
	if (c->first_pass && !count)
		chk_report(c, DD_CHK_TREE, true, "volume %u map leaf %llu is empty", c->cur_vol,
			   (unsigned long long)idx);
}

static void chk_family_add(struct chk *c, u32 id, u32 family)
{
	if (c->nr_fam == c->cap_fam) {
		u32 cap = c->cap_fam ? 2 * c->cap_fam : 64;
		u32 *a = realloc(c->fam_id, cap * sizeof(u32)), *b;

		if (!a)
			return;
		c->fam_id = a;
		b = realloc(c->fam_of, cap * sizeof(u32));
		if (!b)
			return;
		c->fam_of = b;
		c->cap_fam = cap;
	}
	c->fam_id[c->nr_fam] = id;
	c->fam_of[c->nr_fam++] = family;
}

/* A family's id is a volume id that no volume outside the family has: map
 * page headers and records name it. */
static void chk_families(struct chk *c)
{
	u32 i, j;

	for (i = 0; i < c->nr_fam; i++) {
		if (c->fam_of[i] == c->fam_id[i])
			continue;
		if (c->fam_of[i] > DD_MAX_VOLUME_ID)
			chk_report(c, DD_CHK_VOLUME, true, "volume %u: family %u out of range",
				   c->fam_id[i], c->fam_of[i]);
		for (j = 0; j < c->nr_fam; j++)
			if (c->fam_id[j] == c->fam_of[i] && c->fam_of[j] != c->fam_of[i])
				chk_report(c, DD_CHK_VOLUME, true,
					   "volume %u is in family %u, but volume %u is not",
					   c->fam_id[i], c->fam_of[i], c->fam_id[j]);
	}
}

/* Walks every volume's map (pass: count references in the window). */
static void chk_maps(struct chk *c, u64 *nr_user_volumes)
{
	struct dd_volume_info info;
	struct dd_volume *v;
	u32 id = 0;
	int r;

	*nr_user_volumes = 0;
	for (;;) {
		r = dd_volume_next(c->pool, &id, true, &info);
		if (r) {
			if (r != -ENOENT && c->first_pass)
				chk_report(c, DD_CHK_VOLUME, true, "volume table unreadable (%d)", r);
			return;
		}
		if (!(info.flags & (DD_VOL_DELETING | DD_VOL_INCOMPLETE)))
			(*nr_user_volumes)++;
		if (dd_volume_open_any(c->pool, id, &v)) {
			id++;
			continue;
		}
		c->cur_vol = id;
		c->cur_family = info.family;
		c->cur_domain = info.domain;
		if (c->first_pass)
			chk_family_add(c, id, info.family);
		c->cur_vol_entries = 0;
		if (c->first_pass && info.domain > DD_MAX_DOMAIN)
			chk_report(c, DD_CHK_DOMAIN, true, "volume %u: domain %u out of range", id,
				   info.domain);
		chk_tree(c, DD_TREE_MAP, id, chk_map_leaf);
		if (c->first_pass) {
			c->map_entries += c->cur_vol_entries;
			if (c->cur_vol_entries != dd_volume_mapped(v))
				chk_report(c, DD_CHK_STATS, true,
					   "volume %u: %llu map entries, table says %llu", id,
					   (unsigned long long)c->cur_vol_entries,
					   (unsigned long long)dd_volume_mapped(v));
		}
		dd_volume_close(v);
		id++;
	}
}

/* ---- volume table ------------------------------------------------------- */

static void chk_vols_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_vols_leaf *l = data;
	u32 slot, count = 0;

	for (slot = 0; slot < DD_VOLS_PER_LEAF; slot++) {
		const struct dd_disk_volume *e = &l->vol[slot];
		u32 flags = le32_to_cpu(e->flags);
		u64 id = idx * DD_VOLS_PER_LEAF + slot;

		if (!(flags & DD_VOL_VALID))
			continue;
		count++;
		if (le32_to_cpu(e->id) != id)
			chk_report(c, DD_CHK_VOLUME, true, "volume table slot %llu holds id %u",
				   (unsigned long long)id, le32_to_cpu(e->id));
		if (flags & ~DD_VOL_KNOWN_FLAGS)
			chk_report(c, DD_CHK_VOLUME, true, "volume %llu: unknown flags %#x",
				   (unsigned long long)id, flags);
		if ((flags & DD_VOL_FAMILY) && !(c->g.incompat & DD_INCOMPAT_SHARED_MAPS))
			chk_report(c, DD_CHK_VOLUME, true,
				   "volume %llu is in a snapshot family without the shared-maps feature",
				   (unsigned long long)id);
		if (id > DD_MAX_VOLUME_ID)
			chk_report(c, DD_CHK_VOLUME, true, "volume id %llu out of range",
				   (unsigned long long)id);
	}
	if (count != le16_to_cpu(l->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "volume table leaf %llu: %u volumes, header says %u",
			   (unsigned long long)idx, count, le16_to_cpu(l->hdr.count));
}

/* ---- structural walks of the pool-wide trees (first pass) --------------- */

static void chk_count_leaf_refs(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_refs_leaf *l = data;
	u32 slot, count = 0;

	for (slot = 0; slot < DD_RECS_PER_LEAF; slot++)
		count += !!l->rec[slot].refcount;
	if (count != le16_to_cpu(l->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "record leaf %llu: %u records in use, header says %u",
			   (unsigned long long)idx, count, le16_to_cpu(l->hdr.count));
	if (!count)
		chk_report(c, DD_CHK_TREE, true, "record leaf %llu is empty", (unsigned long long)idx);
}

static u32 chk_popcount(const struct dd_disk_bitmap *bm)
{
	u32 w, n = 0;

	for (w = 0; w < DD_BITMAP_WORDS; w++)
		n += dd_popcount64(le64_to_cpu(bm->word[w]));
	return n;
}

static void chk_dalloc_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_bitmap *bm = data;
	u64 base = idx * DD_BITS_PER_BITMAP;
	u32 bit, count = chk_popcount(bm);

	if (count != le16_to_cpu(bm->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "data bitmap leaf %llu: %u bits set, header says %u",
			   (unsigned long long)idx, count, le16_to_cpu(bm->hdr.count));
	for (bit = 0; bit < DD_BITS_PER_BITMAP; bit++) {
		if (base + bit < c->g.nr_data_blocks)
			continue;
		if (le64_to_cpu(bm->word[bit / 64]) & (1ULL << (bit % 64))) {
			chk_report(c, DD_CHK_DATA_LEAK, true,
				   "data bitmap marks block %llu beyond the data device",
				   (unsigned long long)(base + bit));
			break;
		}
	}
}

/* The written marks: a bitmap leaf per region of the data device. */
static void chk_written_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_bitmap *bm = data;
	u64 base = idx * DD_BITS_PER_BITMAP;
	u32 bit, count = chk_popcount(bm);

	if (count != le16_to_cpu(bm->hdr.count))
		chk_report(c, DD_CHK_SCAN, true, "written-marks leaf %llu: %u bits set, header says %u",
			   (unsigned long long)idx, count, le16_to_cpu(bm->hdr.count));
	if (!count)
		chk_report(c, DD_CHK_SCAN, true, "written-marks leaf %llu is empty",
			   (unsigned long long)idx);
	for (bit = 0; bit < DD_BITS_PER_BITMAP; bit++) {
		if (base + bit < c->g.nr_data_blocks)
			continue;
		if (le64_to_cpu(bm->word[bit / 64]) & (1ULL << (bit % 64))) {
			chk_report(c, DD_CHK_SCAN, true,
				   "written marks name block %llu beyond the data device",
				   (unsigned long long)(base + bit));
			break;
		}
	}
}

/* The index saved at a clean close: hints only, but well formed. */
static void chk_index_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_index_leaf *l = data;
	u32 i, used = 0;

	for (i = 0; i < DD_INDEX_PER_LEAF; i++) {
		u64 v = le64_to_cpu(l->entry[i].pbn);

		if (!(v & DD_IE_PBN_MASK))
			continue;
		used++;
		if ((v & DD_IE_PBN_MASK) - 1 >= c->g.nr_data_blocks) {
			chk_report(c, DD_CHK_SCAN, true, "index leaf %llu: entry %u names block %llu beyond the data device",
				   (unsigned long long)idx, i,
				   (unsigned long long)((v & DD_IE_PBN_MASK) - 1));
			break;
		}
	}
	if (used != le16_to_cpu(l->hdr.count))
		chk_report(c, DD_CHK_SCAN, true, "index leaf %llu: %u entries, header says %u",
			   (unsigned long long)idx, used, le16_to_cpu(l->hdr.count));
}

/* The extra parents of shared pages: kept for the walk of the maps. */
static void chk_mrefs_leaf(struct chk *c, u64 idx, const void *data)
{
	const struct dd_disk_mrefs_leaf *l = data;
	u32 slot, count = 0;

	for (slot = 0; slot < DD_MREFS_PER_LEAF; slot++) {
		u32 v = le32_to_cpu(l->extra[slot]);
		u64 b = idx * DD_MREFS_PER_LEAF + slot;

		if (!v)
			continue;
		count++;
		if (b >= c->g.nr_meta_blocks) {
			chk_report(c, DD_CHK_META_SHARED, true,
				   "page reference tree names block %llu beyond the metadata device",
				   (unsigned long long)b);
			continue;
		}
		c->mref[b] = v;
	}
	if (count != le16_to_cpu(l->hdr.count))
		chk_report(c, DD_CHK_TREE, true, "page reference leaf %llu: %u entries, header says %u",
			   (unsigned long long)idx, count, le16_to_cpu(l->hdr.count));
	if (!count)
		chk_report(c, DD_CHK_TREE, true, "page reference leaf %llu is empty",
			   (unsigned long long)idx);
}

/* Every block is reached from 1 + (its mrefs entry) parents. */
static void chk_parents(struct chk *c)
{
	u64 b;

	for (b = 0; b < c->g.nr_meta_blocks; b++) {
		u64 want = (u64)c->mref[b] + 1;

		if (!c->arrivals[b] && !c->mref[b])
			continue;
		if (!c->arrivals[b])
			chk_report(c, DD_CHK_META_SHARED, true,
				   "metadata block %llu: %llu parents recorded, but it is unreachable",
				   (unsigned long long)b, (unsigned long long)want);
		else if (c->arrivals[b] == 2 && !c->mref[b])
			chk_report(c, DD_CHK_META_SHARED, true, "metadata block %llu is reachable twice",
				   (unsigned long long)b);
		else if (c->arrivals[b] != want && !c->mref[b])
			chk_report(c, DD_CHK_META_SHARED, true, "metadata block %llu is reachable %u times",
				   (unsigned long long)b, c->arrivals[b]);
		else if (c->arrivals[b] != want)
			chk_report(c, DD_CHK_META_SHARED, true,
				   "metadata block %llu: reached from %u parents, the page reference tree says %llu",
				   (unsigned long long)b, c->arrivals[b], (unsigned long long)want);
	}
}

/* ---- data blocks of one window: records vs references vs bitmap --------- */

/* Does volume id map lbn to pbn?  1 yes, 0 no (*got: what it maps, or ~0),
 * < 0 the volume does not exist or its map is unreadable. */
static int chk_maps_to(struct chk *c, u32 id, u64 lbn, u64 pbn, u64 *got)
{
	struct dd_volume *v;
	struct dd_mapping m;
	int r;

	*got = ~0ULL;
	if (dd_volume_open_any(c->pool, id, &v))
		return -ENOENT;
	r = dd_map_lookup(v, lbn, 0, &m);
	dd_volume_close(v);
	if (r)
		return r;
	if (m.mapped)
		*got = m.pbn;
	return m.mapped && m.pbn == pbn;
}

/* The owner names a family (a volume's own id outside families) and an LBN:
 * a volume of that family maps the LBN to the block. */
static void chk_owner(struct chk *c, u64 pbn, const struct dd_record *rec)
{
	u64 got = ~0ULL, other;
	u32 i;
	int r;

	if (rec->refcount != 1) {
		chk_report(c, DD_CHK_OWNER, true, "block %llu: owner set but refcount is %u",
			   (unsigned long long)pbn, rec->refcount);
		return;
	}
	r = chk_maps_to(c, rec->owner_vol, rec->owner_lbn, pbn, &got);
	if (r == 1)
		return;
	if (r < 0 && r != -ENOENT) {
		chk_report(c, DD_CHK_OWNER, true, "block %llu: the map of its owner %u/%llu is unreadable (error %d)",
			   (unsigned long long)pbn, rec->owner_vol,
			   (unsigned long long)rec->owner_lbn, r);
		return;
	}
	for (i = 0; i < c->nr_fam; i++) {
		if (c->fam_of[i] != rec->owner_vol || c->fam_id[i] == rec->owner_vol)
			continue;
		if (chk_maps_to(c, c->fam_id[i], rec->owner_lbn, pbn, &other) == 1)
			return;
	}
	if (r == -ENOENT)
		chk_report(c, DD_CHK_OWNER, true, "block %llu: owner volume %u does not exist",
			   (unsigned long long)pbn, rec->owner_vol);
	else if (got == ~0ULL)
		chk_report(c, DD_CHK_OWNER, true,
			   "block %llu: owner %u/%llu does not map it (maps nothing)",
			   (unsigned long long)pbn, rec->owner_vol, (unsigned long long)rec->owner_lbn);
	else
		chk_report(c, DD_CHK_OWNER, true,
			   "block %llu: owner %u/%llu does not map it (maps %llu)",
			   (unsigned long long)pbn, rec->owner_vol, (unsigned long long)rec->owner_lbn,
			   (unsigned long long)got);
}

static void chk_window(struct chk *c, u64 *used, u64 *shared)
{
	u64 pbn, end = c->win_start + c->win_len;

	for (pbn = c->win_start; pbn < end; pbn++) {
		u32 counted = c->refs[pbn - c->win_start];
		struct dd_disk_rec d;
		struct dd_record rec;
		bool open_used, committed_used;

		if (dd_walk_record(c->pool, pbn, &d)) {
			chk_report(c, DD_CHK_BLOCK, true, "record of block %llu unreadable",
				   (unsigned long long)pbn);
			continue;
		}
		dd_record_decode(&d, &rec);
		if (dd_walk_data_bit(c->pool, pbn, &open_used, &committed_used)) {
			chk_report(c, DD_CHK_BLOCK, true, "bitmap of block %llu unreadable",
				   (unsigned long long)pbn);
			continue;
		}
		if (rec.refcount)
			(*used)++;
		if (rec.refcount > 1)
			(*shared)++;
		if (counted)
			c->res->data_blocks_seen++;
		if (rec.refcount != counted)
			chk_report(c, DD_CHK_REFCOUNT, true,
				   "block %llu: refcount %u, but %u map entries point to it",
				   (unsigned long long)pbn, rec.refcount, counted);
		if (counted && !open_used)
			chk_report(c, DD_CHK_DATA_FREE, true,
				   "block %llu is both free and mapped (%u map entries)",
				   (unsigned long long)pbn, counted);
		else if (!counted && open_used)
			chk_report(c, DD_CHK_DATA_LEAK, true,
				   "block %llu is allocated but no map entry points to it",
				   (unsigned long long)pbn);
		if (counted && c->dom[pbn - c->win_start] == DOM_MIXED)
			chk_report(c, DD_CHK_DOMAIN, true,
				   "block %llu is referenced from volumes of different domains",
				   (unsigned long long)pbn);
		else if (counted && c->dom[pbn - c->win_start] != rec.domain + 1)
			chk_report(c, DD_CHK_DOMAIN, true,
				   "block %llu: its record says domain %u, its volume is in domain %u",
				   (unsigned long long)pbn, rec.domain, c->dom[pbn - c->win_start] - 1);
		if (rec.merged && rec.refcount < 2)
			chk_report(c, DD_CHK_SCAN, true, "block %llu: merged, but referenced %u times",
				   (unsigned long long)pbn, rec.refcount);
		if (!rec.refcount && (d.owner_vol || d.owner_lbn))
			chk_report(c, DD_CHK_OWNER, true, "free block %llu has an owner record",
				   (unsigned long long)pbn);
		if (le64_to_cpu(d.owner_lbn) & ~(DD_REC_LBN_MASK | DD_REC_DOMAIN_MASK | DD_REC_KNOWN_FLAGS))
			chk_report(c, DD_CHK_OWNER, true, "block %llu: unknown record flags",
				   (unsigned long long)pbn);
		if (rec.owned)
			chk_owner(c, pbn, &rec);
	}
}

/* ---- metadata space -------------------------------------------------------- */

static void chk_meta_space(struct chk *c)
{
	const struct dd_walk_info *g = &c->g;
	const struct dd_disk_bitmap *bm = c->blk;
	u64 b, used = 0;
	u32 page;

	for (page = 0; page < g->mbitmap_blocks; page++) {
		u64 base = (u64)page * DD_BITS_PER_BITMAP;
		u32 bit;

		b = g->mbitmap_start + page;
		if (dd_walk_read_block(c->pool, b, c->blk)) {
			chk_report(c, DD_CHK_BLOCK, true, "metadata bitmap %u unreadable", page);
			continue;
		}
		if (dd_walk_block_check(bm, b, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0)) {
			chk_explain(c, b, bm, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0);
			continue;
		}
		if (chk_popcount(bm) != le16_to_cpu(bm->hdr.count))
			chk_report(c, DD_CHK_TREE, true, "metadata bitmap %u: %u bits set, header says %u",
				   page, chk_popcount(bm), le16_to_cpu(bm->hdr.count));
		for (bit = 0; bit < DD_BITS_PER_BITMAP; bit++) {
			u64 mb = base + bit;
			bool alloc = le64_to_cpu(bm->word[bit / 64]) & (1ULL << (bit % 64));
			bool seen;

			if (mb >= g->nr_meta_blocks) {
				if (!alloc)
					chk_report(c, DD_CHK_TREE, true,
						   "metadata bitmap: block %llu past the end is free",
						   (unsigned long long)mb);
				continue;
			}
			used += alloc;
			if (mb < g->first_tree_block) {
				if (!alloc)
					chk_report(c, DD_CHK_META_FREE, true,
						   "fixed metadata block %llu marked free",
						   (unsigned long long)mb);
				continue;
			}
			seen = c->meta_seen[mb / 8] & (1u << (mb % 8));
			if (alloc && !seen)
				chk_report(c, DD_CHK_META_LEAK, true,
					   "metadata block %llu is allocated but unreachable",
					   (unsigned long long)mb);
			else if (!alloc && seen)
				chk_report(c, DD_CHK_META_FREE, true,
					   "metadata block %llu is in use but marked free",
					   (unsigned long long)mb);
		}
	}
	if (used != g->meta_used)
		chk_report(c, DD_CHK_STATS, true, "superblock: %llu metadata blocks used, bitmap says %llu",
			   (unsigned long long)g->meta_used, (unsigned long long)used);
}

static void chk_stat(struct chk *c, const char *what, u64 recorded, u64 actual)
{
	if (recorded != actual)
		chk_report(c, DD_CHK_STATS, true, "superblock: %s is %llu, actual %llu", what,
			   (unsigned long long)recorded, (unsigned long long)actual);
}

int dd_check(struct dd_bm *bm, const struct dd_check_opts *opts, struct dd_check_result *res)
{
	struct chk c = { .o = opts, .res = res };
	u64 used = 0, shared = 0, nr_user_volumes = 0, max_mem;
	struct dd_pool *pool;
	int r;

	memset(res, 0, sizeof(*res));
	r = dd_pool_open(bm, DD_OPEN_READ_ONLY | DD_OPEN_IGNORE_CHECK, NULL, &pool);
	if (r) {
		chk_report(&c, DD_CHK_OPEN, true, "cannot open the pool: %s",
			   r == -EINVAL ? "no valid superblock or bad geometry" :
			   r == -EILSEQ ? "journal or superblock damaged" : strerror(-r));
		return 0;
	}
	c.pool = pool;
	dd_walk_get_info(pool, &c.g);
	if (c.g.needs_check)
		chk_report(&c, DD_CHK_NEEDS_CHECK, false, "the needs_check flag is set");

	c.meta_seen = calloc((c.g.nr_meta_blocks + 7) / 8, 1);
	c.visited = calloc((c.g.nr_meta_blocks + 7) / 8, 1);
	c.arrivals = calloc(c.g.nr_meta_blocks, sizeof(u32));
	c.mref = calloc(c.g.nr_meta_blocks, sizeof(u32));
	c.blk = malloc(DD_BLOCK_SIZE);
	max_mem = opts->max_memory ? opts->max_memory : (1ULL << 30);
	c.win_len = chk_min(chk_max(max_mem / (sizeof(u32) + sizeof(u16)), 1),
			    chk_max(c.g.nr_data_blocks, 1));
	c.refs = malloc(c.win_len * sizeof(u32));
	c.dom = malloc(c.win_len * sizeof(u16));
	if (!c.meta_seen || !c.blk || !c.refs || !c.dom || !c.visited || !c.arrivals || !c.mref) {
		r = -ENOMEM;
		goto out;
	}

	if (c.g.incompat & ~DD_FEATURE_INCOMPAT_SUPP)
		chk_report(&c, DD_CHK_OPEN, true, "unknown incompatible features %#x",
			   c.g.incompat & ~DD_FEATURE_INCOMPAT_SUPP);
	c.first_pass = true;
	chk_tree(&c, DD_TREE_MREFS, 0, chk_mrefs_leaf);
	if (!(c.g.incompat & DD_INCOMPAT_SHARED_MAPS)) {
		struct dd_walk_root mr;

		if (!dd_walk_root(pool, DD_TREE_MREFS, 0, &mr) && mr.block)
			chk_report(&c, DD_CHK_META_SHARED, true,
				   "page references without the shared-maps feature");
	}
	chk_tree(&c, DD_TREE_VOLS, 0, chk_vols_leaf);
	chk_tree(&c, DD_TREE_REFS, 0, chk_count_leaf_refs);
	chk_tree(&c, DD_TREE_DALLOC, 0, chk_dalloc_leaf);
	chk_tree(&c, DD_TREE_WRITTEN, 0, chk_written_leaf);
	chk_tree(&c, DD_TREE_INDEX, 0, chk_index_leaf);
	for (c.win_start = 0; c.win_start < c.g.nr_data_blocks || c.first_pass;
	     c.win_start += c.win_len) {
		u64 len = c.win_len;

		c.win_len = chk_min(len, c.g.nr_data_blocks - c.win_start);
		memset(c.refs, 0, c.win_len * sizeof(u32));
		memset(c.dom, 0, c.win_len * sizeof(u16));
		if (!c.first_pass)
			memset(c.visited, 0, (c.g.nr_meta_blocks + 7) / 8);
		chk_maps(&c, &nr_user_volumes);
		if (c.first_pass) {
			chk_parents(&c);
			chk_families(&c);
			chk_meta_space(&c);
			chk_stat(&c, "mapped blocks", c.g.mapped_blocks, c.map_entries);
			chk_stat(&c, "volume count", c.g.nr_volumes, nr_user_volumes);
		}
		c.first_pass = false;
		chk_window(&c, &used, &shared);
		c.win_len = len;
		if (!c.g.nr_data_blocks)
			break;
	}
	chk_stat(&c, "data blocks used", c.g.data_used, used);
	chk_stat(&c, "shared blocks", c.g.shared_blocks, shared);
	res->map_entries_seen = c.map_entries;
	r = 0;
out:
	free(c.meta_seen);
	free(c.visited);
	free(c.arrivals);
	free(c.mref);
	free(c.fam_id);
	free(c.fam_of);
	free(c.blk);
	free(c.refs);
	free(c.dom);
	dd_pool_close(pool);
	return r;
}
