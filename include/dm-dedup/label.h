/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-dedup: the label dedupctl keeps with a pool's devices, so that a pool can be
 * activated on any host from its devices alone (the way LVM keeps its metadata on
 * the PVs).  The kernel never reads it.  docs/dedupctl.md explains the layout and
 * the update protocol; this header defines it.  All fields are little-endian.
 *
 * Metadata device (the raw device dedupctl was given):
 *
 *   [0, 4 KiB)                     struct ddl_id: written once, by `dedupctl create`
 *   [DDL_SLOT_OFFSET(i), +DDL_SLOT_BYTES)  slot i = 0, 1: struct ddl_hdr, then
 *                                  struct ddl_vol[nr_vols]; the valid slot with the
 *                                  higher seq is the label, the other is rewritten
 *   [DDL_META_OFFSET, end)         the pool's metadata (a dm-linear device,
 *                                  "<pool>_tmeta", is what the dedup-pool target gets)
 *
 * Data device: the pool's data blocks from its start; the 4 KiB block just after the
 * data space (byte hdr.data_blocks * 4096) holds struct ddl_data, which names the
 * pool the device belongs to.
 */
#ifndef DM_DEDUP_LABEL_H
#define DM_DEDUP_LABEL_H

#include <linux/types.h>

#define DDL_ID_MAGIC		0x4449706c64646464ULL	/* "ddddlpID" on disk */
#define DDL_HDR_MAGIC		0x5248706c64646464ULL	/* "ddddlpHR" */
#define DDL_DATA_MAGIC		0x5441706c64646464ULL	/* "ddddlpAT" */
#define DDL_VERSION		1

#define DDL_META_OFFSET		(4ULL << 20)		/* the pool's metadata starts here */
#define DDL_SLOT_BYTES		((2ULL << 20) - 4096)	/* one copy of the label */
#define DDL_SLOT_OFFSET(i)	(4096ULL + (__u64)(i) * DDL_SLOT_BYTES)
#define DDL_NAME_MAX		63			/* bytes of a name, NUL excluded */
#define DDL_FEATURES_MAX	191			/* bytes of the pool's feature args */

/* Checksums: crc32c, seed DDL_CSUM_SEED, of every byte after the csum field. */
#define DDL_CSUM_SEED		0x64646c70u

struct ddl_id {				/* 4096 bytes, block 0 of the metadata device */
	__le64 magic;			/* DDL_ID_MAGIC */
	__le32 csum;			/* of bytes [12, 4096) */
	__le32 version;
	__u8 uuid[16];			/* the pool's identity */
	__le64 created;			/* seconds since the epoch */
	__u8 reserved[4096 - 40];
} __attribute__((packed));

struct ddl_hdr {			/* start of a slot */
	__le64 magic;			/* DDL_HDR_MAGIC */
	__le32 csum;			/* of bytes [12, bytes) */
	__le32 bytes;			/* header and volume records */
	__le64 seq;			/* +1 on each update; the higher valid slot wins */
	__u8 uuid[16];			/* as in struct ddl_id */
	__le32 version;
	__le32 nr_vols;
	char name[DDL_NAME_MAX + 1];	/* the pool's name (its dm device) */
	__le64 data_blocks;		/* the pool's data space; ddl_data sits right after */
	__le64 prev_data_blocks;	/* before the last resize (its ddl_data may be the one) */
	__le64 low_water;		/* blocks */
	__le64 meta_bytes;		/* size of the metadata device when formatted */
	char features[DDL_FEATURES_MAX + 1];	/* feature args, space-separated */
	__u8 reserved[176];
} __attribute__((packed));

enum ddl_vol_state {
	DDL_VOL_OK = 0,
	DDL_VOL_CREATING = 1,		/* recorded before create_volume / create_snap */
	DDL_VOL_DELETING = 2,		/* recorded before delete_volume */
	DDL_VOL_IMPORTING = 3,		/* `dedupctl import` has not finished: it resumes */
};

struct ddl_vol {
	__le32 id;			/* the pool's volume id */
	__le32 state;			/* enum ddl_vol_state */
	__le32 origin;			/* for DDL_VOL_CREATING snapshots; else 0xffffffff */
	__le32 domain;
	__le64 sectors;			/* the volume's size (its table length) */
	__le64 import_next;		/* IMPORTING: every source block before it is durable */
	__le64 import_bytes;		/* IMPORTING: the size of the source */
	char name[DDL_NAME_MAX + 1];
} __attribute__((packed));

struct ddl_data {			/* 4096 bytes after the data space */
	__le64 magic;			/* DDL_DATA_MAGIC */
	__le32 csum;			/* of bytes [12, 4096) */
	__le32 version;
	__u8 uuid[16];
	__le64 data_blocks;		/* where this label sits, in 4 KiB blocks */
	__u8 reserved[4096 - 40];
} __attribute__((packed));

#define DDL_MAX_VOLS ((DDL_SLOT_BYTES - sizeof(struct ddl_hdr)) / sizeof(struct ddl_vol))

_Static_assert(sizeof(struct ddl_id) == 4096, "sizeof(struct ddl_id)");
_Static_assert(sizeof(struct ddl_hdr) == 512, "sizeof(struct ddl_hdr)");
_Static_assert(sizeof(struct ddl_vol) == 104, "sizeof(struct ddl_vol)");
_Static_assert(sizeof(struct ddl_data) == 4096, "sizeof(struct ddl_data)");
_Static_assert(DDL_SLOT_OFFSET(2) <= DDL_META_OFFSET, "label slots overlap the metadata");

#endif
