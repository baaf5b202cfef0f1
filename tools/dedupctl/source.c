// SPDX-License-Identifier: GPL-2.0
/*
 * The source of an import: which 4 KiB blocks of a disk, partition or image
 * hold data that must be copied (source.h).
 *
 * Every block starts in use.  Only the free space of an ext2/3/4 filesystem
 * that libblkid recognises and libext2fs opens cleanly (no journal to
 * replay, no errors, no unknown feature, sane group descriptors, a readable
 * block bitmap) is taken out, and only the 4 KiB blocks whose every byte lies
 * in free filesystem blocks.  Tables, gaps, other filesystems and a
 * filesystem that is refused stay in use: a block wrongly called free is
 * data lost, one wrongly called in use is only a block copied.
 */
#include <blkid/blkid.h>
#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

#define SECTOR			512ULL
#define NOTE_LEN		120
/* GPT: protective MBR, header and a 16 KiB entry array, and the backup copy at the end. */
#define GPT_RESERVED		(34 * SECTOR)
#define GPT_BACKUP		(33 * SECTOR)

struct dd_region {
	uint64_t start, end;		/* bytes, end clipped to the source */
	uint64_t sector;		/* start as the table says, in 512-byte sectors */
	int partno;			/* 0: the whole source */
	bool extended;			/* an MBR extended container */
	bool mapped;			/* its free space was taken out of the in-use map */
	char type[24];			/* libblkid's TYPE, "unknown", ... */
	unsigned int fs_bsize;		/* when mapped: the filesystem's block size */
	uint64_t fs_blocks, fs_free;	/* when mapped: in filesystem blocks */
	char note[NOTE_LEN];		/* why all its blocks are in use, or "" */
};

struct dd_source {
	int fd;
	char *path;
	unsigned int flags;
	uint64_t size;			/* bytes */
	uint64_t nblocks;		/* 4 KiB blocks, the last one maybe partial */
	uint64_t *free_map;		/* bit set: block known free; NULL: all in use */
	uint64_t nfree;
	char table[16];			/* "gpt", "dos", ... or "" for none */
	char note[NOTE_LEN];		/* about the whole source */
	int nregions;
	struct dd_region *regions;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Bits of the free map: [first, last) */
static void map_set(uint64_t *map, uint64_t first, uint64_t last, bool on)
{
	while (first < last && (first & 63)) {
		map[first >> 6] = on ? map[first >> 6] | 1ULL << (first & 63)
				     : map[first >> 6] & ~(1ULL << (first & 63));
		first++;
	}
	if (last - first >= 64 && first < last) {
		memset(&map[first >> 6], on ? 0xff : 0, ((last - first) >> 6) * 8);
		first += (last - first) & ~63ULL;
	}
	for (; first < last; first++)
		map[first >> 6] = on ? map[first >> 6] | 1ULL << (first & 63)
				     : map[first >> 6] & ~(1ULL << (first & 63));
}

static uint64_t map_count(const uint64_t *map, uint64_t first, uint64_t last)
{
	uint64_t n = 0;

	if (!map)
		return 0;
	for (; first < last && (first & 63); first++)
		n += map[first >> 6] >> (first & 63) & 1;
	for (; last - first >= 64 && first < last; first += 64)
		n += (uint64_t)__builtin_popcountll(map[first >> 6]);
	for (; first < last; first++)
		n += map[first >> 6] >> (first & 63) & 1;
	return n;
}

/* Bytes [from, to) are free: the 4 KiB blocks wholly inside become free. */
static void mark_free(struct dd_source *s, uint64_t from, uint64_t to)
{
	uint64_t first = (from + DD_SRC_BLOCK_SIZE - 1) >> DD_SRC_BLOCK_SHIFT;
	uint64_t last = to >> DD_SRC_BLOCK_SHIFT;

	if (last > s->nblocks)
		last = s->nblocks;
	if (first < last)
		map_set(s->free_map, first, last, true);
}

/* Bytes [from, to) must be copied: every 4 KiB block touching them is in use. */
static void keep_in_use(struct dd_source *s, uint64_t from, uint64_t to)
{
	uint64_t first = from >> DD_SRC_BLOCK_SHIFT;
	uint64_t last = (to + DD_SRC_BLOCK_SIZE - 1) >> DD_SRC_BLOCK_SHIFT;

	if (last > s->nblocks)
		last = s->nblocks;
	if (s->free_map && first < last)
		map_set(s->free_map, first, last, false);
}

static bool is_ext(const char *type)
{
	return !strcmp(type, "ext2") || !strcmp(type, "ext3") || !strcmp(type, "ext4") ||
	       !strcmp(type, "ext4dev");
}

/* libblkid's filesystem type of the region, or "unknown" (and, if it could not say, a note). */
static void probe_type(struct dd_source *s, struct dd_region *r)
{
	blkid_probe pr = blkid_new_probe();
	const char *type = NULL;
	int rc;

	snprintf(r->type, sizeof(r->type), "unknown");
	if (!pr) {
		if (!r->note[0])
			snprintf(r->note, sizeof(r->note), "libblkid: out of memory");
		return;
	}
	if (blkid_probe_set_device(pr, s->fd, (blkid_loff_t)r->start,
				   (blkid_loff_t)(r->end - r->start))) {
		if (!r->note[0])
			snprintf(r->note, sizeof(r->note), "libblkid cannot probe it");
		goto out;
	}
	blkid_probe_enable_partitions(pr, 0);
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	rc = blkid_do_safeprobe(pr);
	if (rc == 0 && !blkid_probe_lookup_value(pr, "TYPE", &type, NULL) && type)
		snprintf(r->type, sizeof(r->type), "%s", type);
	else if (rc == -2 && !r->note[0])
		snprintf(r->note, sizeof(r->note), "signatures of more than one filesystem");
	else if (rc < 0 && !r->note[0])
		snprintf(r->note, sizeof(r->note), "libblkid could not read it");
out:
	blkid_free_probe(pr);
}

/*
 * Reads the primary superblock ourselves first: an ext magic that libblkid did
 * not take (a bad checksum) is worth a reason, and a filesystem larger than its
 * region is refused before libext2fs reads group descriptors for all of it.
 */
static int ext_precheck(struct dd_source *s, struct dd_region *r, bool *magic)
{
	struct ext2_super_block sb;
	uint64_t blocks, bsize;
	ssize_t n;

	*magic = false;
	if (r->end - r->start < 2048)
		return -1;
	n = pread(s->fd, &sb, sizeof(sb), (off_t)(r->start + 1024));
	if (n != (ssize_t)sizeof(sb) || le16toh(sb.s_magic) != EXT2_SUPER_MAGIC)
		return -1;
	*magic = true;
	if (le32toh(sb.s_log_block_size) > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE) {
		snprintf(r->note, sizeof(r->note), "bad block size in the superblock");
		return -1;
	}
	bsize = EXT2_MIN_BLOCK_SIZE << le32toh(sb.s_log_block_size);
	blocks = le32toh(sb.s_blocks_count);
	if (le32toh(sb.s_feature_incompat) & EXT4_FEATURE_INCOMPAT_64BIT)
		blocks |= (uint64_t)le32toh(sb.s_blocks_count_hi) << 32;
	if (blocks > (r->end - r->start) / bsize) {
		snprintf(r->note, sizeof(r->note), "filesystem (%" PRIu64 " bytes) larger than %s",
			 blocks * bsize, r->partno ? "its partition" : "the source");
		return -1;
	}
	return 0;
}

/* Why a filesystem libext2fs opened is still not to be trusted, or NULL. */
static const char *ext_refusal(ext2_filsys fs)
{
	struct ext2_super_block *sb = fs->super;

	if (sb->s_feature_incompat & EXT3_FEATURE_INCOMPAT_RECOVER)
		return "its journal needs recovery (mount it or run e2fsck first)";
	if (sb->s_state & EXT2_ERROR_FS)
		return "it has errors (run e2fsck first)";
	if (!(sb->s_state & EXT2_VALID_FS))
		return "it was not cleanly unmounted (run e2fsck first)";
	if (sb->s_feature_incompat & ~EXT2_LIB_FEATURE_INCOMPAT_SUPP)
		return "unknown incompatible features";
	if (sb->s_feature_ro_compat & ~EXT2_LIB_FEATURE_RO_COMPAT_SUPP)
		return "unknown read-only-compatible features";
	if (EXT2_BLOCK_SIZE(sb) < EXT2_MIN_BLOCK_SIZE || EXT2_BLOCK_SIZE(sb) > EXT2_MAX_BLOCK_SIZE)
		return "bad block size";
	return NULL;
}

/* Takes the free blocks of the ext filesystem of region R out of the in-use map. */
static void map_ext(struct dd_source *s, struct dd_region *r, bool blkid_saw_it)
{
	ext2_filsys fs = NULL;
	const char *why;
	char opts[48];
	blk64_t a, b, last;
	errcode_t e;
	bool magic;

	if (ext_precheck(s, r, &magic)) {
		if (!r->note[0])
			snprintf(r->note, sizeof(r->note),
				 "no ext superblock where libblkid saw one");
		return;
	}
	snprintf(opts, sizeof(opts), "offset=%" PRIu64, r->start);
	/* Never EXT2_FLAG_RW; checksums are checked (no EXT2_FLAG_IGNORE_CSUM_ERRORS). */
	e = ext2fs_open2(s->path, opts, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
	if (e) {
		snprintf(r->note, sizeof(r->note), "libext2fs: %s", error_message(e));
		return;
	}
	why = ext_refusal(fs);
	if (!why && !blkid_saw_it)
		why = "an ext superblock that libblkid does not recognise";
	if (!why && ext2fs_blocks_count(fs->super) > (r->end - r->start) / fs->blocksize)
		why = "filesystem larger than its region";
	if (why) {
		snprintf(r->note, sizeof(r->note), "%s", why);
		goto out;
	}
	e = ext2fs_check_desc(fs);
	if (!e)
		e = ext2fs_read_block_bitmap(fs);
	if (e) {
		snprintf(r->note, sizeof(r->note), "libext2fs: %s", error_message(e));
		goto out;
	}

	r->fs_bsize = fs->blocksize;
	r->fs_blocks = ext2fs_blocks_count(fs->super);
	last = r->fs_blocks - 1;
	/* Blocks below s_first_data_block (the 1 KiB boot block) are not in the bitmap: in use. */
	for (a = fs->super->s_first_data_block; a <= last; a = b) {
		if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, a, last, &a))
			break;
		if (ext2fs_find_first_set_block_bitmap2(fs->block_map, a, last, &b))
			b = last + 1;
		if (b <= a)		/* cannot happen; never loop on a broken bitmap */
			break;
		r->fs_free += b - a;
		mark_free(s, r->start + a * fs->blocksize, r->start + b * fs->blocksize);
	}
	r->mapped = true;
out:
	ext2fs_close_free(&fs);
}

static void map_region(struct dd_source *s, struct dd_region *r)
{
	bool magic = false;

	if (r->extended || r->start >= r->end)
		return;
	probe_type(s, r);	/* for the description, even when the region is already refused */
	if (r->note[0])
		return;
	if (is_ext(r->type)) {
		map_ext(s, r, true);
	} else if (!strcmp(r->type, "unknown") && !ext_precheck(s, r, &magic)) {
		map_ext(s, r, false);	/* only for the reason libblkid did not take it */
	} else if (!strcmp(r->type, "unknown") && magic && !r->note[0]) {
		snprintf(r->note, sizeof(r->note), "an ext superblock libblkid does not recognise");
	}
}

static struct dd_region *add_region(struct dd_source *s, int max)
{
	struct dd_region *r;

	if (s->nregions >= max)
		return NULL;
	r = &s->regions[s->nregions++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* A region from the table's START and LEN (in 512-byte sectors), clipped to the source. */
static void set_extent(struct dd_source *s, struct dd_region *r, int64_t start, int64_t len)
{
	r->sector = start < 0 ? 0 : (uint64_t)start;
	if (start < 0 || len <= 0 || (uint64_t)start > UINT64_MAX / SECTOR ||
	    (uint64_t)len > UINT64_MAX / SECTOR - (uint64_t)start) {
		snprintf(r->note, sizeof(r->note), "bad start or length in the table");
		r->start = r->end = 0;
		return;
	}
	r->start = (uint64_t)start * SECTOR;
	r->end = r->start + (uint64_t)len * SECTOR;
	if (r->start >= s->size) {
		r->start = r->end = s->size;
		snprintf(r->note, sizeof(r->note), "starts beyond the end of the source");
	} else if (r->end > s->size) {
		r->end = s->size;
		snprintf(r->note, sizeof(r->note), "ends beyond the end of the source");
	}
}

/* Reads the partition table; 1 if there is one, 0 if not, -errno. */
static int read_table(struct dd_source *s, char *err, size_t errlen)
{
	blkid_probe pr = blkid_new_probe();
	blkid_partlist ls;
	blkid_parttable tab;
	const char *type;
	int i, n, ret = 0;

	if (!pr) {
		seterr(err, errlen, "%s: out of memory", s->path);
		return -ENOMEM;
	}
	if (blkid_probe_set_device(pr, s->fd, 0, (blkid_loff_t)s->size)) {
		snprintf(s->note, sizeof(s->note), "libblkid cannot probe it");
		goto out;
	}
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	ls = blkid_probe_get_partitions(pr);
	tab = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!tab) {
		/* A protective MBR whose GPT is not valid (cut short, bad CRC): say so. */
		if (!blkid_do_safeprobe(pr) && !blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL))
			snprintf(s->note, sizeof(s->note), "a %s signature but no valid table",
				 type);
		goto out;
	}
	type = blkid_parttable_get_type(tab);
	snprintf(s->table, sizeof(s->table), "%s", type ? type : "table");
	n = blkid_partlist_numof_partitions(ls);
	if (n < 0)
		n = 0;
	s->regions = calloc((size_t)n + 1, sizeof(*s->regions));
	if (!s->regions) {
		seterr(err, errlen, "%s: out of memory", s->path);
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		struct dd_region *r;

		if (!par || !(r = add_region(s, n)))
			continue;
		r->partno = blkid_partition_get_partno(par);
		if (r->partno <= 0)
			r->partno = i + 1;
		r->extended = blkid_partition_is_extended(par);
		snprintf(r->type, sizeof(r->type), r->extended ? "extended" : "unknown");
		set_extent(s, r, blkid_partition_get_start(par), blkid_partition_get_size(par));
	}
	ret = 1;
out:
	blkid_free_probe(pr);
	return ret;
}

/* Two partitions sharing bytes: neither one's free space can be trusted. */
static void check_overlaps(struct dd_source *s)
{
	int i, j;

	for (i = 0; i < s->nregions; i++) {
		struct dd_region *a = &s->regions[i];

		for (j = 0; j < s->nregions; j++) {
			struct dd_region *b = &s->regions[j];

			if (i == j || a->extended || b->extended || a->start >= a->end ||
			    b->start >= b->end || a->start >= b->end || b->start >= a->end)
				continue;
			if (!a->note[0])
				snprintf(a->note, sizeof(a->note), "overlaps partition %d",
					 b->partno);
		}
	}
}

static int find_layout(struct dd_source *s, char *err, size_t errlen)
{
	struct dd_region whole = { .end = s->size }, *r;
	int i, ret;

	ret = read_table(s, err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		s->regions = calloc(1, sizeof(*s->regions));
		if (!s->regions) {
			seterr(err, errlen, "%s: out of memory", s->path);
			return -ENOMEM;
		}
		r = add_region(s, 1);
		r->end = s->size;
		map_region(s, r);
		return 0;
	}

	/* A table and a filesystem over the whole source: which one is stale is not ours to say. */
	probe_type(s, &whole);
	if (strcmp(whole.type, "unknown")) {
		snprintf(s->note, sizeof(s->note),
			 "also a whole-source %s signature: all blocks in use", whole.type);
		for (i = 0; i < s->nregions; i++) {
			if (!s->regions[i].note[0] && !s->regions[i].extended)
				snprintf(s->regions[i].note, sizeof(s->regions[i].note),
					 "the table is ambiguous");
		}
	}
	check_overlaps(s);
	for (i = 0; i < s->nregions; i++)
		map_region(s, &s->regions[i]);
	/* The table itself, even where a partition claims to cover it. */
	keep_in_use(s, 0, GPT_RESERVED);
	if (!strcmp(s->table, "gpt") && s->size > GPT_BACKUP)
		keep_in_use(s, s->size - GPT_BACKUP, s->size);
	return 0;
}

int dd_source_open(const char *path, unsigned int flags, struct dd_source **out,
		   char *err, size_t errlen)
{
	struct dd_source *s;
	struct stat st;
	int ret;

	*out = NULL;
	seterr(err, errlen, "no error");
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		seterr(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	s->flags = flags;
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto bad;
	}
	if (fstat(s->fd, &st)) {
		ret = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto bad;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(s->fd, BLKGETSIZE64, &s->size)) {
			ret = -errno;
			seterr(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(errno));
			goto bad;
		}
	} else if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
	} else {
		ret = -EINVAL;
		seterr(err, errlen, "%s: not a block device or a regular file", path);
		goto bad;
	}
	s->nblocks = (s->size + DD_SRC_BLOCK_SIZE - 1) >> DD_SRC_BLOCK_SHIFT;
	if (!(flags & DD_SRC_ALL) && s->size) {
		s->free_map = calloc((size_t)(s->nblocks / 64 + 1), sizeof(uint64_t));
		if (!s->free_map) {
			ret = -ENOMEM;
			seterr(err, errlen, "%s: no memory for the map of %" PRIu64 " blocks",
			       path, s->nblocks);
			goto bad;
		}
		initialize_ext2_error_table();
		ret = find_layout(s, err, errlen);
		if (ret)
			goto bad;
		s->nfree = map_count(s->free_map, 0, s->nblocks);
	}
	*out = s;
	return 0;
bad:
	dd_source_close(s);
	return ret;
}

void dd_source_close(struct dd_source *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->regions);
	free(s->free_map);
	free(s->path);
	free(s);
}

uint64_t dd_source_blocks(const struct dd_source *s)
{
	return s->nblocks;
}

uint64_t dd_source_size(const struct dd_source *s)
{
	return s->size;
}

int dd_source_fd(const struct dd_source *s)
{
	return s->fd;
}

int dd_source_in_use(const struct dd_source *s, uint64_t b)
{
	if (!s->free_map || b >= s->nblocks)
		return 1;
	return !(s->free_map[b >> 6] >> (b & 63) & 1);
}

uint64_t dd_source_free_blocks(const struct dd_source *s)
{
	return s->nfree;
}

static void describe_region(const struct dd_source *s, const struct dd_region *r, FILE *f)
{
	uint64_t first = r->start >> DD_SRC_BLOCK_SHIFT;
	uint64_t last = (r->end + DD_SRC_BLOCK_SIZE - 1) >> DD_SRC_BLOCK_SHIFT;
	uint64_t n = last > first ? last - first : 0;
	uint64_t used = n - map_count(s->free_map, first, first + n);

	if (r->partno)
		fprintf(f, "p%d %s at sector %" PRIu64 "%s", r->partno, r->type, r->sector,
			r->start & (DD_SRC_BLOCK_SIZE - 1) ? " (not 4 KiB aligned)" : "");
	else
		fprintf(f, "disk %s", r->type);
	if (r->mapped)
		fprintf(f, ", %u-byte fs blocks, %" PRIu64 " of %" PRIu64 " free", r->fs_bsize,
			r->fs_free, r->fs_blocks);
	fprintf(f, ": %" PRIu64 " blocks, %" PRIu64 " in use", n, used);
	if (r->note[0])
		fprintf(f, " (all in use: %s)", r->note);
	else if (!r->mapped && used == n)
		fprintf(f, " (all)");
	fputc('\n', f);
}

void dd_source_describe(const struct dd_source *s, FILE *f)
{
	int i;

	if (s->flags & DD_SRC_ALL) {
		fprintf(f, "source: %" PRIu64 " bytes, %" PRIu64 " blocks, all in use"
			" (no filesystem awareness)\n", s->size, s->nblocks);
		return;
	}
	fprintf(f, "source: %" PRIu64 " bytes, %" PRIu64 " blocks, %" PRIu64 " in use\n",
		s->size, s->nblocks, s->nblocks - s->nfree);
	if (s->table[0])
		fprintf(f, "%s: %d partitions%s%s\n", s->table, s->nregions,
			s->note[0] ? "; " : "", s->note);
	else if (s->size)
		fprintf(f, "no partition table%s%s\n", s->note[0] ? "; " : "", s->note);
	for (i = 0; i < s->nregions; i++)
		describe_region(s, &s->regions[i], f);
}
