// SPDX-License-Identifier: GPL-2.0
/*
 * Encodings of the on-disk structures (include/dm-dedup/format.h,
 * docs/format.md): headers and checksums, roots, records, bitmaps, volume
 * entries, the superblock.  Declared, with the inline accessors of the
 * lookup path, in dd-codec.h.
 */
#include "dd-internal.h"

/* ---- block header ------------------------------------------------------ */

u32 dd_block_csum(const void *block, u32 type)
{
	return dd_crc32c(DD_CSUM_SEED ^ type, (const u8 *)block + 4, DD_BLOCK_SIZE - 4);
}

void dd_block_init(void *block, u32 type, u8 tree, u8 level, u32 owner)
{
	struct dd_disk_header *h = block;

	memset(block, 0, DD_BLOCK_SIZE);
	h->type = cpu_to_le32(type);
	h->tree = tree;
	h->level = level;
	h->owner = cpu_to_le32(owner);
}

void dd_block_seal(void *block, u64 blocknr, u64 txn)
{
	struct dd_disk_header *h = block;

	h->blocknr = cpu_to_le64(blocknr);
	h->txn = cpu_to_le64(txn);
	h->csum = cpu_to_le32(dd_block_csum(block, le32_to_cpu(h->type)));
}

/*
 * Checks a block read from 'blocknr' against what the reader expects.
 * tree/level/owner of 0xff/0xff/DD_NO_VOLUME are not checked.
 */
int dd_block_validate(const void *block, u64 blocknr, u32 type, u8 tree, u8 level, u32 owner)
{
	const struct dd_disk_header *h = block;

	if (le32_to_cpu(h->type) != type)
		return -EILSEQ;
	if (le32_to_cpu(h->csum) != dd_block_csum(block, type))
		return -EILSEQ;
	if (le64_to_cpu(h->blocknr) != blocknr)
		return -EILSEQ;
	if (tree != 0xff && h->tree != tree)
		return -EILSEQ;
	if (level != 0xff && h->level != level)
		return -EILSEQ;
	if (owner != DD_NO_VOLUME && le32_to_cpu(h->owner) != owner)
		return -EILSEQ;
	return 0;
}

/* ---- journal --------------------------------------------------------------- */

u32 dd_journal_csum_add(u32 jcsum, const void *image)
{
	const struct dd_disk_header *h = image;

	return dd_crc32c(jcsum, &h->csum, sizeof(h->csum));
}

int dd_journal_image_check(const void *image, const struct dd_journal_desc *j)
{
	const struct dd_disk_header *h = image;
	u32 type = le32_to_cpu(h->type);
	u64 home = le64_to_cpu(h->blocknr);

	if (le32_to_cpu(h->csum) != dd_block_csum(image, type) || le64_to_cpu(h->txn) != j->txn ||
	    home < j->home_start || home >= j->home_end)
		return -EILSEQ;
	return 0;
}

/* ---- roots ------------------------------------------------------------------ */

void dd_root_decode(const struct dd_disk_root *d, struct dd_root *r)
{
	r->block = le64_to_cpu(d->root);
	r->height = d->height;
	r->hint_block = 0;
}

void dd_root_encode(const struct dd_root *r, struct dd_disk_root *d)
{
	memset(d, 0, sizeof(*d));
	d->root = cpu_to_le64(r->block);
	d->height = r->height;
}

/* ---- records ----------------------------------------------------------------- */

void dd_rec_decode(const struct dd_disk_rec *d, struct dd_record *r)
{
	u64 ol = le64_to_cpu(d->owner_lbn);

	r->refcount = le32_to_cpu(d->refcount);
	r->owned = ol & DD_REC_OWNED;
	r->owner_vol = le32_to_cpu(d->owner_vol);
	r->owner_lbn = ol & DD_REC_LBN_MASK;
	r->domain = (u8)((ol & DD_REC_DOMAIN_MASK) >> DD_REC_DOMAIN_SHIFT);
	r->merged = ol & DD_REC_MERGED;
}

void dd_rec_enc_new(struct dd_disk_rec *d, u32 vol, u64 lbn, u8 domain)
{
	d->refcount = cpu_to_le32(1);
	d->owner_vol = cpu_to_le32(vol);
	d->owner_lbn = cpu_to_le64(lbn | ((u64)domain << DD_REC_DOMAIN_SHIFT) | DD_REC_OWNED);
}

void dd_rec_enc_merged(struct dd_disk_rec *d, bool merged)
{
	u64 ol = le64_to_cpu(d->owner_lbn);

	d->owner_lbn = cpu_to_le64(merged ? ol | DD_REC_MERGED : ol & ~DD_REC_MERGED);
}

void dd_ie_encode(struct dd_disk_index_entry *e, u64 hash, u8 domain, u64 pbn)
{
	e->hash = cpu_to_le64(hash);
	e->pbn = cpu_to_le64(((pbn + 1) & DD_IE_PBN_MASK) | ((u64)domain << DD_IE_DOMAIN_SHIFT));
}

bool dd_ie_decode(const struct dd_disk_index_entry *e, u64 *hash, u8 *domain, u64 *pbn)
{
	u64 v = le64_to_cpu(e->pbn);

	if (!(v & DD_IE_PBN_MASK))
		return false;
	*hash = le64_to_cpu(e->hash);
	*domain = (u8)(v >> DD_IE_DOMAIN_SHIFT);
	*pbn = (v & DD_IE_PBN_MASK) - 1;
	return true;
}

void dd_rec_enc_disown(struct dd_disk_rec *d)
{
	d->owner_lbn = cpu_to_le64(le64_to_cpu(d->owner_lbn) & ~DD_REC_OWNED);
}

void dd_rec_enc_owner(struct dd_disk_rec *d, u32 vol, u64 lbn)
{
	d->owner_vol = cpu_to_le32(vol);
	d->owner_lbn = cpu_to_le64((le64_to_cpu(d->owner_lbn) & DD_REC_DOMAIN_MASK) | lbn |
				   DD_REC_OWNED);
}

/* ---- bitmaps ------------------------------------------------------------------ */

void dd_bit_set(__le64 *words, u32 bit)
{
	words[bit / 64] = cpu_to_le64(le64_to_cpu(words[bit / 64]) | (1ULL << (bit % 64)));
}

bool dd_bitmap_change(struct dd_disk_bitmap *bm, u32 bit, bool set)
{
	u64 w = le64_to_cpu(bm->word[bit / 64]);
	u64 mask = 1ULL << (bit % 64);
	bool old = w & mask;

	if (old == set)
		return old;
	w = set ? (w | mask) : (w & ~mask);
	bm->word[bit / 64] = cpu_to_le64(w);
	dd_block_count_add(bm, set ? 1 : -1);
	return old;
}

u32 dd_bitmap_find_zero(const __le64 *a, const __le64 *b, u32 from, u32 nbits)
{
	u32 w = from / 64;
	u64 word;

	for (; w * 64 < nbits; w++) {
		word = le64_to_cpu(a[w]) | (b ? le64_to_cpu(b[w]) : 0);
		if (w == from / 64 && from % 64)
			word |= (1ULL << (from % 64)) - 1;
		if (word != ~0ULL) {
			u32 bit = w * 64 + (u32)__builtin_ctzll(~word);

			return bit < nbits ? bit : nbits;
		}
	}
	return nbits;
}

/* ---- volume table entries -------------------------------------------------------- */

void dd_vol_decode(const struct dd_disk_volume *e, struct dd_volume *v)
{
	v->flags = le32_to_cpu(e->flags);
	v->origin = le32_to_cpu(e->origin);
	dd_root_decode(&e->map, &v->map);
	v->mapped = le64_to_cpu(e->mapped_blocks);
	v->created_txn = le64_to_cpu(e->created_txn);
	v->progress = le64_to_cpu(e->progress);
	v->domain = (u8)le32_to_cpu(e->domain);
	v->family = (v->flags & DD_VOL_FAMILY) ? le32_to_cpu(e->family) : le32_to_cpu(e->id);
}

void dd_vol_encode(const struct dd_volume *v, struct dd_disk_volume *e)
{
	memset(e, 0, sizeof(*e));
	e->id = cpu_to_le32(v->id);
	e->flags = cpu_to_le32(v->flags);
	dd_root_encode(&v->map, &e->map);
	e->mapped_blocks = cpu_to_le64(v->mapped);
	e->created_txn = cpu_to_le64(v->created_txn);
	e->origin = cpu_to_le32(v->origin);
	e->progress = cpu_to_le64(v->progress);
	e->domain = cpu_to_le32(v->domain);
	if (v->flags & DD_VOL_FAMILY)
		e->family = cpu_to_le32(v->family);
}

void dd_vol_encode_new(struct dd_disk_volume *e, u32 id, u32 flags, u32 origin, u64 created_txn,
		       u8 domain)
{
	memset(e, 0, sizeof(*e));
	e->id = cpu_to_le32(id);
	e->flags = cpu_to_le32(flags);
	e->origin = cpu_to_le32(origin);
	e->created_txn = cpu_to_le64(created_txn);
	e->domain = cpu_to_le32(domain);
}

void dd_vol_info_decode(const struct dd_disk_volume *e, struct dd_volume_info *info)
{
	info->id = le32_to_cpu(e->id);
	info->flags = le32_to_cpu(e->flags);
	info->origin = le32_to_cpu(e->origin);
	info->mapped_blocks = le64_to_cpu(e->mapped_blocks);
	info->created_txn = le64_to_cpu(e->created_txn);
	info->domain = le32_to_cpu(e->domain);
	info->family = (info->flags & DD_VOL_FAMILY) ? le32_to_cpu(e->family) : info->id;
}

/* ---- superblock -------------------------------------------------------------------- */

bool dd_sb_has_magic(const struct dd_disk_superblock *sb)
{
	return le64_to_cpu(sb->magic) == DD_MAGIC;
}

int dd_sb_validate(const struct dd_disk_superblock *sb, u64 slot)
{
	if (!dd_sb_has_magic(sb))
		return -EINVAL;
	if (dd_block_validate(sb, slot, DD_BT_SUPER, 0xff, 0xff, DD_NO_VOLUME))
		return -EILSEQ;
	if (le64_to_cpu(sb->hdr.txn) % DD_SB_SLOTS != slot)
		return -EILSEQ;
	return 0;
}

int dd_sb_check_geometry(const struct dd_disk_superblock *sb, u64 dev_blocks)
{
	u64 nr_meta = le64_to_cpu(sb->nr_meta_blocks);
	u32 j = le32_to_cpu(sb->journal_blocks);
	u64 mstart = le64_to_cpu(sb->mbitmap_start);

	if (le32_to_cpu(sb->version) != DD_VERSION) {
		dd_err("unsupported metadata version %u", le32_to_cpu(sb->version));
		return -EINVAL;
	}
	if (le32_to_cpu(sb->incompat) & ~DD_FEATURE_INCOMPAT_SUPP) {
		dd_err("metadata has unsupported incompatible features %#x",
		       le32_to_cpu(sb->incompat));
		return -EINVAL;
	}
	if (le32_to_cpu(sb->data_block_sectors) != DD_SECTORS_PER_BLOCK ||
	    nr_meta > dev_blocks || nr_meta < DD_META_MIN_BLOCKS ||
	    j < DD_JOURNAL_MIN_BLOCKS || j > DD_JOURNAL_MAX_BLOCKS ||
	    le64_to_cpu(sb->journal_start) != DD_SB_SLOTS ||
	    mstart != DD_SB_SLOTS + (u64)DD_JOURNAL_AREAS * j ||
	    le32_to_cpu(sb->mbitmap_blocks) <
		    (nr_meta + DD_BITS_PER_BITMAP - 1) / DD_BITS_PER_BITMAP ||
	    mstart + le32_to_cpu(sb->mbitmap_blocks) >= nr_meta ||
	    le64_to_cpu(sb->nr_data_blocks) > DD_MAX_ADDR + 1) {
		dd_err("superblock geometry is inconsistent (metadata %llu of %llu blocks)",
		       (unsigned long long)nr_meta, (unsigned long long)dev_blocks);
		return -EINVAL;
	}
	return 0;
}

static void dd_stats_encode(const struct dd_stats *s, struct dd_disk_stats *d)
{
	memset(d, 0, sizeof(*d));
	d->data_used = cpu_to_le64(s->data_used);
	d->meta_used = cpu_to_le64(s->meta_used);
	d->shared_blocks = cpu_to_le64(s->shared_blocks);
	d->mapped_blocks = cpu_to_le64(s->mapped_blocks);
	d->zero_elided = cpu_to_le64(s->zero_elided);
	d->discarded = cpu_to_le64(s->discarded);
	d->cow_splits = cpu_to_le64(s->cow_splits);
	d->scan_merged = cpu_to_le64(s->scan_merged);
	d->scan_zero = cpu_to_le64(s->scan_zero);
	d->scan_cow_breaks = cpu_to_le64(s->scan_cow_breaks);
	d->scan_passes = cpu_to_le64(s->scan_passes);
	d->scan_full_passes = cpu_to_le64(s->scan_full_passes);
	d->scan_unshared = cpu_to_le64(s->scan_unshared);
}

static void dd_stats_decode(const struct dd_disk_stats *d, struct dd_stats *s)
{
	s->data_used = le64_to_cpu(d->data_used);
	s->meta_used = le64_to_cpu(d->meta_used);
	s->shared_blocks = le64_to_cpu(d->shared_blocks);
	s->mapped_blocks = le64_to_cpu(d->mapped_blocks);
	s->zero_elided = le64_to_cpu(d->zero_elided);
	s->discarded = le64_to_cpu(d->discarded);
	s->cow_splits = le64_to_cpu(d->cow_splits);
	s->scan_merged = le64_to_cpu(d->scan_merged);
	s->scan_zero = le64_to_cpu(d->scan_zero);
	s->scan_cow_breaks = le64_to_cpu(d->scan_cow_breaks);
	s->scan_passes = le64_to_cpu(d->scan_passes);
	s->scan_full_passes = le64_to_cpu(d->scan_full_passes);
	s->scan_unshared = le64_to_cpu(d->scan_unshared);
}

void dd_sb_encode(const struct dd_pool *pool, struct dd_disk_superblock *sb, u64 txn,
		  u32 nr_journal, u32 journal_csum)
{
	memset(sb, 0, sizeof(*sb));
	sb->hdr.type = cpu_to_le32(DD_BT_SUPER);
	sb->magic = cpu_to_le64(DD_MAGIC);
	sb->version = cpu_to_le32(DD_VERSION);
	sb->flags = cpu_to_le32(pool->needs_check ? DD_SB_NEEDS_CHECK : 0);
	sb->data_block_sectors = cpu_to_le32(pool->data_block_sectors);
	memcpy(sb->uuid, pool->uuid, sizeof(sb->uuid));
	sb->user_txn_id = cpu_to_le64(pool->user_txn);
	sb->nr_meta_blocks = cpu_to_le64(pool->nr_meta_blocks);
	sb->nr_data_blocks = cpu_to_le64(pool->nr_data_blocks);
	sb->journal_start = cpu_to_le64(pool->journal_start);
	sb->journal_blocks = cpu_to_le32(pool->journal_blocks);
	sb->mbitmap_blocks = cpu_to_le32(pool->mbitmap_blocks);
	sb->mbitmap_start = cpu_to_le64(pool->mbitmap_start);
	sb->nr_volumes = cpu_to_le32(pool->nr_volumes);
	sb->journal.txn = cpu_to_le64(txn);
	sb->journal.nr_blocks = cpu_to_le32(nr_journal);
	sb->journal.csum = cpu_to_le32(journal_csum);
	dd_root_encode(&pool->vols_root, &sb->vols);
	dd_root_encode(&pool->refs_root, &sb->refs);
	dd_root_encode(&pool->dalloc_root, &sb->dalloc);
	dd_root_encode(&pool->written_root, &sb->written);
	dd_root_encode(&pool->index_root, &sb->index);
	dd_root_encode(&pool->mrefs_root, &sb->mrefs);
	sb->incompat = cpu_to_le32(pool->incompat);
	dd_stats_encode(&pool->st, &sb->stats);
	sb->scan.index_bytes = cpu_to_le64(pool->scan_cfg.index_bytes);
	sb->scan.run = cpu_to_le32(pool->scan_cfg.run);
	sb->scan.rate_mib = cpu_to_le32(pool->scan_cfg.rate_mib);
	sb->scan.share_cap = cpu_to_le32(pool->scan_cfg.share_cap);
	/* An engine without the scanner would count these trees' blocks leaked. */
	if (pool->written_root.block || pool->index_root.block)
		sb->ro_compat = cpu_to_le32(DD_RO_COMPAT_SCANNER);
	dd_block_seal(sb, txn % DD_SB_SLOTS, txn);
}

void dd_sb_decode_geometry(const struct dd_disk_superblock *sb, struct dd_pool *pool)
{
	pool->nr_meta_blocks = le64_to_cpu(sb->nr_meta_blocks);
	pool->nr_data_blocks = le64_to_cpu(sb->nr_data_blocks);
	pool->journal_start = le64_to_cpu(sb->journal_start);
	pool->journal_blocks = le32_to_cpu(sb->journal_blocks);
	pool->mbitmap_start = le64_to_cpu(sb->mbitmap_start);
	pool->mbitmap_blocks = le32_to_cpu(sb->mbitmap_blocks);
	pool->data_block_sectors = le32_to_cpu(sb->data_block_sectors);
	memcpy(pool->uuid, sb->uuid, sizeof(pool->uuid));
}

void dd_sb_decode_state(const struct dd_disk_superblock *sb, struct dd_pool *pool)
{
	pool->committed_txn = le64_to_cpu(sb->hdr.txn);
	pool->user_txn = le64_to_cpu(sb->user_txn_id);
	pool->nr_volumes = le32_to_cpu(sb->nr_volumes);
	pool->needs_check = le32_to_cpu(sb->flags) & DD_SB_NEEDS_CHECK;
	dd_root_decode(&sb->vols, &pool->vols_root);
	dd_root_decode(&sb->refs, &pool->refs_root);
	dd_root_decode(&sb->dalloc, &pool->dalloc_root);
	dd_root_decode(&sb->written, &pool->written_root);
	dd_root_decode(&sb->index, &pool->index_root);
	dd_root_decode(&sb->mrefs, &pool->mrefs_root);
	pool->incompat = le32_to_cpu(sb->incompat);
	dd_stats_decode(&sb->stats, &pool->st);
	pool->scan_cfg.index_bytes = le64_to_cpu(sb->scan.index_bytes);
	pool->scan_cfg.run = le32_to_cpu(sb->scan.run);
	pool->scan_cfg.rate_mib = le32_to_cpu(sb->scan.rate_mib);
	pool->scan_cfg.share_cap = le32_to_cpu(sb->scan.share_cap);
	if (le32_to_cpu(sb->ro_compat) & ~DD_FEATURE_RO_COMPAT_SUPP)
		pool->open_flags |= DD_OPEN_READ_ONLY;
}

void dd_sb_decode_journal(const struct dd_disk_superblock *sb, struct dd_journal_desc *j)
{
	j->txn = le64_to_cpu(sb->journal.txn);
	j->sb_txn = le64_to_cpu(sb->hdr.txn);
	j->nr_blocks = le32_to_cpu(sb->journal.nr_blocks);
	j->csum = le32_to_cpu(sb->journal.csum);
	j->area_blocks = le32_to_cpu(sb->journal_blocks);
	j->area = le64_to_cpu(sb->journal_start) + (j->txn % DD_JOURNAL_AREAS) * j->area_blocks;
	j->home_start = le64_to_cpu(sb->mbitmap_start);
	j->home_end = le64_to_cpu(sb->nr_meta_blocks);
}
