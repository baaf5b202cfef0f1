/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-dedup on-disk format.  This is the only definition of the format:
 * the kernel target, the engine, the tools and the tests all include it.
 * docs/format.md explains every structure and the commit protocol; the
 * engine's encoders and decoders are all in engine/dd-codec.[ch].
 *
 * Rules: little-endian fixed-width fields, natural alignment, packed,
 * the size of every structure and the offset of every field asserted at
 * compile time (at the end of this file).  Every metadata block is
 * DD_BLOCK_SIZE bytes and starts with struct dd_disk_header, whose checksum
 * is salted with the block type.
 */
#ifndef DM_DEDUP_FORMAT_H
#define DM_DEDUP_FORMAT_H

#include <linux/types.h>

/* Every structure is a multiple of 8 bytes with naturally aligned fields:
 * packed guarantees no padding, aligned(8) keeps member pointers aligned. */
#define DD_PACKED __attribute__((packed, aligned(8)))

/* ---- geometry -------------------------------------------------------- */

#define DD_BLOCK_SHIFT		12
#define DD_BLOCK_SIZE		(1u << DD_BLOCK_SHIFT)	/* metadata and data */
#define DD_SECTOR_SHIFT		9
#define DD_SECTORS_PER_BLOCK	(DD_BLOCK_SIZE >> DD_SECTOR_SHIFT)

#define DD_MAGIC		0x7075646564646d64ULL	/* bytes "dmddedup" on disk */
#define DD_VERSION		1

/* Feature words: an unknown incompat bit refuses to open, an unknown
 * ro_compat bit opens read-only, an unknown compat bit is ignored. */
#define DD_FEATURE_COMPAT_SUPP		0u
/* The scanner's written and index trees are in use: an engine that does not
 * know them would count their blocks as leaked (read-only for it). */
#define DD_RO_COMPAT_SCANNER		(1u << 0)
#define DD_FEATURE_RO_COMPAT_SUPP	DD_RO_COMPAT_SCANNER
/* Map pages may be shared between the volumes of a snapshot family: the
 * mrefs tree counts their extra parents, map page headers carry the family
 * id, records name families (docs/snapshots.md).  Set by the first shared
 * snapshot; an engine that does not know it would free shared pages. */
#define DD_INCOMPAT_SHARED_MAPS		(1u << 0)
#define DD_FEATURE_INCOMPAT_SUPP	DD_INCOMPAT_SHARED_MAPS

/* Superblock flags */
#define DD_SB_NEEDS_CHECK	(1u << 0)	/* metadata error seen: check before rw */

/* Limits */
#define DD_ADDR_BITS		48
#define DD_MAX_ADDR		((1ULL << DD_ADDR_BITS) - 1)	/* max LBN / PBN */
#define DD_MAX_VOLUME_ID	((1u << 24) - 1)		/* user-visible ids */
#define DD_NO_VOLUME		0xffffffffu

/* Layout of the metadata device */
#define DD_SB_SLOTS		2	/* superblock of txn t lives in block t % 2 */
#define DD_JOURNAL_AREAS	2	/* txn t is journalled in area t % 2 */
#define DD_JOURNAL_MIN_BLOCKS	128	/* per area */
#define DD_JOURNAL_MAX_BLOCKS	4096	/* per area */
#define DD_META_MIN_BLOCKS	512	/* 2 MiB */
/*
 * Metadata bitmap pages a format reserves by default beyond those its size
 * needs, so that the metadata space can grow in place: enough for 16 GiB of
 * metadata (2^22 blocks), at most 1/64 of the device, and at least 16 times
 * the pages the device needs (docs/format.md, section 1).
 */
#define DD_MBITMAP_RESERVE	130

/* ---- block types: checksum salt and type check ------------------------ */

#define DD_FOURCC(a, b, c, d) \
	((__u32)(a) | ((__u32)(b) << 8) | ((__u32)(c) << 16) | ((__u32)(d) << 24))

#define DD_BT_SUPER	DD_FOURCC('S', 'U', 'P', 'R')	/* superblock */
#define DD_BT_NODE	DD_FOURCC('N', 'O', 'D', 'E')	/* radix interior node */
#define DD_BT_MAP	DD_FOURCC('L', 'M', 'A', 'P')	/* LBN -> PBN leaf */
#define DD_BT_REFS	DD_FOURCC('R', 'E', 'F', 'S')	/* per-PBN records */
#define DD_BT_DBITMAP	DD_FOURCC('D', 'B', 'M', 'P')	/* data allocation bits */
#define DD_BT_MBITMAP	DD_FOURCC('M', 'B', 'M', 'P')	/* metadata allocation bits */
#define DD_BT_VOLS	DD_FOURCC('V', 'O', 'L', 'S')	/* volume table leaf */
#define DD_BT_WRITTEN	DD_FOURCC('W', 'B', 'M', 'P')	/* written-since-scan bits */
#define DD_BT_INDEX	DD_FOURCC('I', 'N', 'D', 'X')	/* scanner hash index */
#define DD_BT_MREFS	DD_FOURCC('M', 'R', 'E', 'F')	/* extra parents of map pages */

#define DD_CSUM_SEED	0x5eedd0d0u

/* Which tree a radix block belongs to (header.tree) */
enum dd_tree_id {
	DD_TREE_NONE = 0,
	DD_TREE_VOLS = 1,
	DD_TREE_MAP = 2,
	DD_TREE_REFS = 3,
	DD_TREE_DALLOC = 4,
	DD_TREE_WRITTEN = 5,
	DD_TREE_INDEX = 6,
	DD_TREE_MREFS = 7,
	DD_TREE_MAX
};

/* ---- common block header --------------------------------------------- */

struct dd_disk_header {
	__le32 csum;	/* crc32c(DD_CSUM_SEED ^ type) of bytes [4, DD_BLOCK_SIZE) */
	__le32 type;	/* DD_BT_* */
	__le64 blocknr;	/* home location of this block (misdirected-write check) */
	__le64 txn;	/* transaction that last wrote this block */
	__le16 count;	/* live entries (children, mappings, records, set bits) */
	__u8 level;	/* radix: 0 = leaf, else height above the leaves */
	__u8 tree;	/* enum dd_tree_id */
	__le32 owner;	/* map trees: the volume's family id; else 0 */
} DD_PACKED;

#define DD_PAYLOAD_SIZE		(DD_BLOCK_SIZE - sizeof(struct dd_disk_header))

/* ---- radix trees -------------------------------------------------------
 * All growable structures are radix trees of 4 KiB blocks keyed by a leaf
 * index: interior nodes hold DD_NODE_FANOUT child block numbers (0 = none),
 * a tree of height h addresses DD_NODE_FANOUT^h leaves.  A missing leaf
 * reads as all zero (unmapped, refcount 0, free).
 */
#define DD_NODE_FANOUT		(DD_PAYLOAD_SIZE / 8)		/* 508 */
/* Interior levels a root may claim: 508^6 leaves cover every 48-bit address
 * (format.md, section 3); a taller root is damage. */
#define DD_MAX_HEIGHT		6

struct dd_disk_node {
	struct dd_disk_header hdr;
	__le64 child[DD_NODE_FANOUT];
} DD_PACKED;

struct dd_disk_root {
	__le64 root;	/* block of the root node or leaf, 0 = empty tree */
	__u8 height;	/* number of interior levels above the leaves */
	__u8 pad[7];
} DD_PACKED;

/* ---- LBN -> PBN map leaf ---------------------------------------------- */

#define DD_MAP_ENTRIES		(DD_PAYLOAD_SIZE / 8)		/* 508 */
#define DD_ME_PBN_MASK		DD_MAX_ADDR
#define DD_ME_EXCL		(1ULL << 62)	/* in-place write allowed, see format.md */
#define DD_ME_MAPPED		(1ULL << 63)
#define DD_ME_KNOWN		(DD_ME_PBN_MASK | DD_ME_EXCL | DD_ME_MAPPED)

struct dd_disk_map_leaf {
	struct dd_disk_header hdr;	/* count = mapped entries */
	__le64 entry[DD_MAP_ENTRIES];
} DD_PACKED;

/* ---- per-PBN records (reference count + owner back-pointer) ------------ */

#define DD_REC_LBN_MASK		DD_MAX_ADDR
#define DD_REC_DOMAIN_SHIFT	48		/* 8 bits: the dedup domain of every referrer */
#define DD_REC_DOMAIN_MASK	(0xffULL << DD_REC_DOMAIN_SHIFT)
#define DD_REC_OWNED		(1ULL << 56)	/* owner_vol/lbn is the only referrer */
#define DD_REC_MERGED		(1ULL << 57)	/* shared through a scanner merge */
#define DD_REC_KNOWN_FLAGS	(DD_REC_OWNED | DD_REC_MERGED)
#define DD_MAX_DOMAIN		255

struct dd_disk_rec {
	__le32 refcount;	/* number of map entries that point here */
	__le32 owner_vol;	/* valid if DD_REC_OWNED, else the last owner (a hint) */
	__le64 owner_lbn;	/* LBN | domain | flags */
} DD_PACKED;

#define DD_RECS_PER_LEAF	(DD_PAYLOAD_SIZE / sizeof(struct dd_disk_rec))	/* 254 */

struct dd_disk_refs_leaf {
	struct dd_disk_header hdr;	/* count = records with refcount > 0 */
	struct dd_disk_rec rec[DD_RECS_PER_LEAF];
} DD_PACKED;

/* ---- metadata page reference counts (shared map pages) ------------------
 * Leaf i holds, for metadata blocks [i * 1016, (i + 1) * 1016), the number
 * of parents beyond the first (0 = one parent, the usual case: only map
 * pages reachable from more than one parent have a non-zero entry).
 */
#define DD_MREFS_PER_LEAF	(DD_PAYLOAD_SIZE / 4)		/* 1016 */

struct dd_disk_mrefs_leaf {
	struct dd_disk_header hdr;	/* count = non-zero entries */
	__le32 extra[DD_MREFS_PER_LEAF];
} DD_PACKED;

/* ---- bitmaps (data allocation, written-since-scan, metadata) ------------ */

#define DD_BITMAP_WORDS		(DD_PAYLOAD_SIZE / 8)		/* 508 */
#define DD_BITS_PER_BITMAP	(DD_BITMAP_WORDS * 64)		/* 32512 */

struct dd_disk_bitmap {
	struct dd_disk_header hdr;	/* count = bits set (<= 32512) */
	__le64 word[DD_BITMAP_WORDS];	/* bit i of word w = block w * 64 + i */
} DD_PACKED;

/* ---- volume table ---------------------------------------------------- */

#define DD_VOL_VALID		(1u << 0)
#define DD_VOL_INCOMPLETE	(1u << 1)	/* snapshot being copied: dropped on open */
#define DD_VOL_DELETING		(1u << 2)	/* deleted, blocks being freed */
#define DD_VOL_FAMILY		(1u << 3)	/* in a snapshot family: its map pages may be
						 * shared, their owner (and its records') is 'family' */
#define DD_VOL_KNOWN_FLAGS	(DD_VOL_VALID | DD_VOL_INCOMPLETE | DD_VOL_DELETING | DD_VOL_FAMILY)

struct dd_disk_volume {
	__le32 id;
	__le32 flags;
	struct dd_disk_root map;
	__le64 mapped_blocks;
	__le64 created_txn;
	__le32 origin;		/* snapshot origin id, DD_NO_VOLUME if none */
	__le32 domain;		/* dedup domain (0 = default) */
	__le64 progress;	/* INCOMPLETE / DELETING: next LBN to process */
	__le32 family;		/* DD_VOL_FAMILY: the family id (else 0: the volume's own id) */
	__le32 reserved;
} DD_PACKED;

#define DD_VOLS_PER_LEAF	(DD_PAYLOAD_SIZE / sizeof(struct dd_disk_volume))	/* 63 */

struct dd_disk_vols_leaf {
	struct dd_disk_header hdr;	/* count = valid entries */
	struct dd_disk_volume vol[DD_VOLS_PER_LEAF];
	__u8 pad[DD_PAYLOAD_SIZE - DD_VOLS_PER_LEAF * sizeof(struct dd_disk_volume)];
} DD_PACKED;

/* ---- scanner index (saved at a clean close, loaded at open) ------------ */

#define DD_IE_PBN_MASK		DD_MAX_ADDR	/* pbn + 1; 0 = empty */
#define DD_IE_DOMAIN_SHIFT	48

struct dd_disk_index_entry {
	__le64 hash;		/* xxh64 of the block, seed DD_INDEX_SEED */
	__le64 pbn;		/* (candidate canonical PBN + 1) | domain << 48; 0 = empty */
} DD_PACKED;

#define DD_INDEX_SEED		0
#define DD_INDEX_PER_LEAF	(DD_PAYLOAD_SIZE / sizeof(struct dd_disk_index_entry))	/* 254 */

struct dd_disk_index_leaf {
	struct dd_disk_header hdr;	/* count = entries in use, from the start */
	struct dd_disk_index_entry entry[DD_INDEX_PER_LEAF];
} DD_PACKED;

/* ---- superblock -------------------------------------------------------- */

struct dd_disk_journal_desc {
	__le64 txn;		/* transaction whose block images the area holds */
	__le32 nr_blocks;	/* images in the area, 0 = nothing to replay */
	__le32 csum;		/* crc32c over the images' header csums, in order */
} DD_PACKED;

struct dd_disk_stats {
	__le64 data_used;	/* PBNs with refcount > 0 */
	__le64 meta_used;	/* allocated metadata blocks */
	__le64 shared_blocks;	/* PBNs with refcount > 1 */
	__le64 mapped_blocks;	/* map entries over all volumes */
	__le64 zero_elided;	/* whole-block zero writes turned into unmaps */
	__le64 discarded;	/* blocks unmapped by discard */
	__le64 cow_splits;	/* writes that broke sharing */
	__le64 scan_merged;	/* blocks the scanner merged away */
	__le64 scan_zero;	/* blocks of zeroes the scanner unmapped */
	__le64 scan_cow_breaks;	/* writes that broke a sharing made by a merge */
	__le64 scan_passes;	/* scanner passes finished */
	__le64 scan_full_passes;	/* of them, over every mapped block */
	__le64 scan_unshared;	/* blocks copied by unsharing (scan run 2) */
	__le64 reserved[3];
} DD_PACKED;

/* The scanner's settings, kept with the pool (0 = the default). */
struct dd_disk_scan {
	__le64 index_bytes;	/* memory of the hash index */
	__le32 run;		/* 0 stopped, 1 running (the unshare mode is not kept) */
	__le32 rate_mib;	/* MiB/s the scanner may read */
	__le32 share_cap;	/* most references a canonical block takes */
	__le32 reserved0;
	__le64 reserved1;
} DD_PACKED;

/* Bytes of the superblock before 'reserved': asserted against offsetof below,
 * so a field added without shrinking the padding fails to compile. */
#define DD_SB_USED		416

struct dd_disk_superblock {
	struct dd_disk_header hdr;	/* hdr.txn = committed transaction */
	__le64 magic;
	__le32 version;
	__le32 flags;			/* DD_SB_* */
	__le32 compat;
	__le32 ro_compat;
	__le32 incompat;
	__le32 data_block_sectors;	/* 8 in version 1 */
	__u8 uuid[16];
	__le64 user_txn_id;		/* set_transaction_id message */
	__le64 nr_meta_blocks;
	__le64 nr_data_blocks;
	__le64 journal_start;		/* area a starts at journal_start + a * journal_blocks */
	__le32 journal_blocks;		/* per area */
	__le32 mbitmap_blocks;		/* pages reserved: the metadata space may grow to
					 * mbitmap_blocks * DD_BITS_PER_BITMAP blocks */
	__le64 mbitmap_start;
	__le64 reserved1;
	__le32 nr_volumes;		/* valid, user-visible volumes */
	__le32 pad0;
	struct dd_disk_journal_desc journal;	/* images to replay on open */
	struct dd_disk_root vols;
	struct dd_disk_root refs;
	struct dd_disk_root dalloc;
	struct dd_disk_root written;	/* blocks written since the scanner saw them */
	struct dd_disk_root index;	/* the scanner's index, saved at a clean close */
	struct dd_disk_stats stats;
	struct dd_disk_scan scan;
	struct dd_disk_root mrefs;	/* extra parents of shared map pages (SHARED_MAPS) */
	__u8 reserved[DD_BLOCK_SIZE - DD_SB_USED];
} DD_PACKED;

/* ---- compile-time size and offset checks (xfs_ondisk.h style) ----------
 * __builtin_offsetof (GCC, clang, sparse) instead of offsetof(), so that this
 * header needs neither <stddef.h> nor <linux/stddef.h>.
 */

#define DD_CHECK_SIZE(s, size) \
	_Static_assert(sizeof(struct s) == (size), "sizeof(struct " #s ") != " #size)
#define DD_CHECK_OFFSET(s, f, off) \
	_Static_assert(__builtin_offsetof(struct s, f) == (off), \
		       "offsetof(struct " #s ", " #f ") != " #off)

DD_CHECK_SIZE(dd_disk_header, 32);
DD_CHECK_OFFSET(dd_disk_header, csum, 0);
DD_CHECK_OFFSET(dd_disk_header, type, 4);
DD_CHECK_OFFSET(dd_disk_header, blocknr, 8);
DD_CHECK_OFFSET(dd_disk_header, txn, 16);
DD_CHECK_OFFSET(dd_disk_header, count, 24);
DD_CHECK_OFFSET(dd_disk_header, level, 26);
DD_CHECK_OFFSET(dd_disk_header, tree, 27);
DD_CHECK_OFFSET(dd_disk_header, owner, 28);

DD_CHECK_SIZE(dd_disk_node, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_node, hdr, 0);
DD_CHECK_OFFSET(dd_disk_node, child, 32);

DD_CHECK_SIZE(dd_disk_root, 16);
DD_CHECK_OFFSET(dd_disk_root, root, 0);
DD_CHECK_OFFSET(dd_disk_root, height, 8);
DD_CHECK_OFFSET(dd_disk_root, pad, 9);

DD_CHECK_SIZE(dd_disk_map_leaf, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_map_leaf, hdr, 0);
DD_CHECK_OFFSET(dd_disk_map_leaf, entry, 32);

DD_CHECK_SIZE(dd_disk_rec, 16);
DD_CHECK_OFFSET(dd_disk_rec, refcount, 0);
DD_CHECK_OFFSET(dd_disk_rec, owner_vol, 4);
DD_CHECK_OFFSET(dd_disk_rec, owner_lbn, 8);

DD_CHECK_SIZE(dd_disk_refs_leaf, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_refs_leaf, hdr, 0);
DD_CHECK_OFFSET(dd_disk_refs_leaf, rec, 32);

DD_CHECK_SIZE(dd_disk_mrefs_leaf, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_mrefs_leaf, hdr, 0);
DD_CHECK_OFFSET(dd_disk_mrefs_leaf, extra, 32);

DD_CHECK_SIZE(dd_disk_bitmap, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_bitmap, hdr, 0);
DD_CHECK_OFFSET(dd_disk_bitmap, word, 32);

DD_CHECK_SIZE(dd_disk_volume, 64);
DD_CHECK_OFFSET(dd_disk_volume, id, 0);
DD_CHECK_OFFSET(dd_disk_volume, flags, 4);
DD_CHECK_OFFSET(dd_disk_volume, map, 8);
DD_CHECK_OFFSET(dd_disk_volume, mapped_blocks, 24);
DD_CHECK_OFFSET(dd_disk_volume, created_txn, 32);
DD_CHECK_OFFSET(dd_disk_volume, origin, 40);
DD_CHECK_OFFSET(dd_disk_volume, domain, 44);
DD_CHECK_OFFSET(dd_disk_volume, progress, 48);
DD_CHECK_OFFSET(dd_disk_volume, family, 56);
DD_CHECK_OFFSET(dd_disk_volume, reserved, 60);

DD_CHECK_SIZE(dd_disk_vols_leaf, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_vols_leaf, hdr, 0);
DD_CHECK_OFFSET(dd_disk_vols_leaf, vol, 32);
DD_CHECK_OFFSET(dd_disk_vols_leaf, pad, 32 + 63 * 64);

DD_CHECK_SIZE(dd_disk_index_entry, 16);
DD_CHECK_OFFSET(dd_disk_index_entry, hash, 0);
DD_CHECK_OFFSET(dd_disk_index_entry, pbn, 8);

DD_CHECK_SIZE(dd_disk_journal_desc, 16);
DD_CHECK_OFFSET(dd_disk_journal_desc, txn, 0);
DD_CHECK_OFFSET(dd_disk_journal_desc, nr_blocks, 8);
DD_CHECK_OFFSET(dd_disk_journal_desc, csum, 12);

DD_CHECK_SIZE(dd_disk_stats, 128);
DD_CHECK_OFFSET(dd_disk_stats, data_used, 0);
DD_CHECK_OFFSET(dd_disk_stats, meta_used, 8);
DD_CHECK_OFFSET(dd_disk_stats, shared_blocks, 16);
DD_CHECK_OFFSET(dd_disk_stats, mapped_blocks, 24);
DD_CHECK_OFFSET(dd_disk_stats, zero_elided, 32);
DD_CHECK_OFFSET(dd_disk_stats, discarded, 40);
DD_CHECK_OFFSET(dd_disk_stats, cow_splits, 48);
DD_CHECK_OFFSET(dd_disk_stats, scan_merged, 56);
DD_CHECK_OFFSET(dd_disk_stats, scan_zero, 64);
DD_CHECK_OFFSET(dd_disk_stats, scan_cow_breaks, 72);
DD_CHECK_OFFSET(dd_disk_stats, scan_passes, 80);
DD_CHECK_OFFSET(dd_disk_stats, scan_full_passes, 88);
DD_CHECK_OFFSET(dd_disk_stats, scan_unshared, 96);
DD_CHECK_OFFSET(dd_disk_stats, reserved, 104);

DD_CHECK_SIZE(dd_disk_index_leaf, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_index_leaf, hdr, 0);
DD_CHECK_OFFSET(dd_disk_index_leaf, entry, 32);

DD_CHECK_SIZE(dd_disk_scan, 32);
DD_CHECK_OFFSET(dd_disk_scan, index_bytes, 0);
DD_CHECK_OFFSET(dd_disk_scan, run, 8);
DD_CHECK_OFFSET(dd_disk_scan, rate_mib, 12);
DD_CHECK_OFFSET(dd_disk_scan, share_cap, 16);
DD_CHECK_OFFSET(dd_disk_scan, reserved0, 20);
DD_CHECK_OFFSET(dd_disk_scan, reserved1, 24);

DD_CHECK_SIZE(dd_disk_superblock, DD_BLOCK_SIZE);
DD_CHECK_OFFSET(dd_disk_superblock, hdr, 0);
DD_CHECK_OFFSET(dd_disk_superblock, magic, 32);
DD_CHECK_OFFSET(dd_disk_superblock, version, 40);
DD_CHECK_OFFSET(dd_disk_superblock, flags, 44);
DD_CHECK_OFFSET(dd_disk_superblock, compat, 48);
DD_CHECK_OFFSET(dd_disk_superblock, ro_compat, 52);
DD_CHECK_OFFSET(dd_disk_superblock, incompat, 56);
DD_CHECK_OFFSET(dd_disk_superblock, data_block_sectors, 60);
DD_CHECK_OFFSET(dd_disk_superblock, uuid, 64);
DD_CHECK_OFFSET(dd_disk_superblock, user_txn_id, 80);
DD_CHECK_OFFSET(dd_disk_superblock, nr_meta_blocks, 88);
DD_CHECK_OFFSET(dd_disk_superblock, nr_data_blocks, 96);
DD_CHECK_OFFSET(dd_disk_superblock, journal_start, 104);
DD_CHECK_OFFSET(dd_disk_superblock, journal_blocks, 112);
DD_CHECK_OFFSET(dd_disk_superblock, mbitmap_blocks, 116);
DD_CHECK_OFFSET(dd_disk_superblock, mbitmap_start, 120);
DD_CHECK_OFFSET(dd_disk_superblock, reserved1, 128);
DD_CHECK_OFFSET(dd_disk_superblock, nr_volumes, 136);
DD_CHECK_OFFSET(dd_disk_superblock, pad0, 140);
DD_CHECK_OFFSET(dd_disk_superblock, journal, 144);
DD_CHECK_OFFSET(dd_disk_superblock, vols, 160);
DD_CHECK_OFFSET(dd_disk_superblock, refs, 176);
DD_CHECK_OFFSET(dd_disk_superblock, dalloc, 192);
DD_CHECK_OFFSET(dd_disk_superblock, written, 208);
DD_CHECK_OFFSET(dd_disk_superblock, index, 224);
DD_CHECK_OFFSET(dd_disk_superblock, stats, 240);
DD_CHECK_OFFSET(dd_disk_superblock, scan, 368);
DD_CHECK_OFFSET(dd_disk_superblock, mrefs, 400);
DD_CHECK_OFFSET(dd_disk_superblock, reserved, DD_SB_USED);

_Static_assert(DD_NODE_FANOUT == 508 && DD_RECS_PER_LEAF == 254 &&
	       DD_BITS_PER_BITMAP == 32512 && DD_VOLS_PER_LEAF == 63 &&
	       DD_MREFS_PER_LEAF == 1016, "fan-outs");

#endif /* DM_DEDUP_FORMAT_H */
