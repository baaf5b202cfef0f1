/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source side of `dedupctl import SOURCE POOL VOLUME`: a disk, a
 * partition or a raw image, opened read-only, and which of its 4 KiB blocks
 * must be copied.  Blocks inside the free space of an ext2/3/4 filesystem
 * that libext2fs opens cleanly are free; everything else (partition tables,
 * gaps, other filesystems, swap, a filesystem it refuses) is in use.
 *
 * The source must not change while an import reads it (unmounted, or
 * mounted read-only): the free map is taken once, at dd_source_open().
 *
 * Link with -lext2fs -lcom_err -lblkid.
 */
#ifndef DD_SOURCE_H
#define DD_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DD_SRC_BLOCK_SHIFT	12
#define DD_SRC_BLOCK_SIZE	(1u << DD_SRC_BLOCK_SHIFT)

/* dd_source_open() flags */
#define DD_SRC_ALL		(1u << 0)	/* every block in use: no filesystem awareness */

struct dd_source;

/*
 * Opens PATH O_RDONLY (a regular file or a block device; it never writes);
 * the size comes from BLKGETSIZE64 or st_size.  Returns 0, or -errno with a
 * one-line message in ERR.
 */
int dd_source_open(const char *path, unsigned int flags, struct dd_source **out,
		   char *err, size_t errlen);
void dd_source_close(struct dd_source *s);

/* 4 KiB blocks; the last one is partial if the size is not a multiple (read it zero-padded). */
uint64_t dd_source_blocks(const struct dd_source *s);
uint64_t dd_source_size(const struct dd_source *s);	/* bytes */
/* Read it with pread(): libblkid moves the file offset while probing. */
int dd_source_fd(const struct dd_source *s);

/* 1 if block B may hold data that must be copied, 0 if it is known free (and B < blocks). */
int dd_source_in_use(const struct dd_source *s, uint64_t b);
/* The number of blocks dd_source_in_use() says 0 for. */
uint64_t dd_source_free_blocks(const struct dd_source *s);

/* The layout found: one line for the table (or the whole device), one per region. */
void dd_source_describe(const struct dd_source *s, FILE *f);

#endif /* DD_SOURCE_H */
