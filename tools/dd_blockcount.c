// SPDX-License-Identifier: GPL-2.0
/*
 * dd_blockcount: count the blocks, zero blocks, non-zero blocks and distinct
 * non-zero blocks of files or block devices, exactly, independently of
 * dm-dedup.  The guest tests compare a pool's data-used count with it.
 *
 *   dd_blockcount [-b BLOCK_SIZE] FILE...
 *
 * Prints one line per file (distinct blocks within that file) and a last line
 * for all of them together (distinct blocks over all files):
 *
 *   <file> blocks <n> zero <n> nonzero <n> distinct <n>
 *   total blocks <n> zero <n> nonzero <n> distinct <n>
 *
 * Not the scanner's xxHash and not a trusted hash either: a 64-bit word hash
 * only finds candidates, and two blocks count as one only when their bytes
 * were compared equal (the earlier block is read back with pread).  A short
 * last block is padded with zeroes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
	uint64_t hash;
	uint64_t off;		/* byte offset of the first block with these bytes */
	uint32_t file;		/* index into files[], +1 (0: empty slot) */
};

struct table {
	struct entry *e;
	size_t cap;		/* a power of two */
	size_t used;
};

struct count {
	uint64_t blocks, zero, nonzero;
};

static const char **files;
static int *fds;
static size_t bs = 4096;
static unsigned char *cmpbuf;

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p) {
		fprintf(stderr, "dd_blockcount: out of memory\n");
		exit(2);
	}
	return p;
}

/* A word-at-a-time multiply-xor hash (bs is a multiple of 8). */
static uint64_t block_hash(const unsigned char *b)
{
	uint64_t h = 0x9e3779b97f4a7c15ull, w;
	size_t i;

	for (i = 0; i < bs; i += 8) {
		memcpy(&w, b + i, 8);
		h ^= w;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	return h ^ (h >> 32);
}

static int is_zero(const unsigned char *b)
{
	size_t i;

	for (i = 0; i < bs; i++)
		if (b[i])
			return 0;
	return 1;
}

static void read_block(uint32_t file, uint64_t off, unsigned char *buf)
{
	ssize_t n;
	size_t got = 0;

	while (got < bs) {
		n = pread(fds[file], buf + got, bs - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror(files[file]);
			exit(2);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	memset(buf + got, 0, bs - got);
}

static void table_init(struct table *t)
{
	t->cap = 1u << 16;
	t->used = 0;
	t->e = xcalloc(t->cap, sizeof(*t->e));
}

static void table_insert_slot(struct table *t, const struct entry *in)
{
	size_t i = in->hash & (t->cap - 1);

	while (t->e[i].file)
		i = (i + 1) & (t->cap - 1);
	t->e[i] = *in;
}

static void table_grow(struct table *t)
{
	struct entry *old = t->e;
	size_t oldcap = t->cap, i;

	t->cap *= 2;
	t->e = xcalloc(t->cap, sizeof(*t->e));
	for (i = 0; i < oldcap; i++)
		if (old[i].file)
			table_insert_slot(t, &old[i]);
	free(old);
}

/* Adds the block (its bytes in b); returns 1 if no earlier block had them. */
static int table_add(struct table *t, uint64_t h, uint32_t file, uint64_t off,
		     const unsigned char *b)
{
	size_t i;
	struct entry e;

	if ((t->used + 1) * 10 > t->cap * 7)
		table_grow(t);
	for (i = h & (t->cap - 1); t->e[i].file; i = (i + 1) & (t->cap - 1)) {
		if (t->e[i].hash != h)
			continue;
		read_block(t->e[i].file - 1, t->e[i].off, cmpbuf);
		if (!memcmp(cmpbuf, b, bs))
			return 0;
	}
	e.hash = h;
	e.off = off;
	e.file = file + 1;
	t->e[i] = e;
	t->used++;
	return 1;
}

static void print_line(const char *name, const struct count *c, size_t distinct)
{
	printf("%s blocks %" PRIu64 " zero %" PRIu64 " nonzero %" PRIu64 " distinct %zu\n",
	       name, c->blocks, c->zero, c->nonzero, distinct);
}

int main(int argc, char **argv)
{
	struct table all, one;
	struct count call = { 0 }, c;
	unsigned char *buf;
	size_t chunk, fill, pos;
	ssize_t n;
	int opt, f, nfiles;
	uint64_t off;

	while ((opt = getopt(argc, argv, "b:")) != -1) {
		if (opt == 'b') {
			bs = strtoul(optarg, NULL, 0);
			if (bs < 512 || bs % 512) {
				fprintf(stderr, "dd_blockcount: the block size must be a multiple of 512\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: dd_blockcount [-b BLOCK_SIZE] FILE...\n");
			return 2;
		}
	}
	nfiles = argc - optind;
	if (nfiles < 1) {
		fprintf(stderr, "usage: dd_blockcount [-b BLOCK_SIZE] FILE...\n");
		return 2;
	}
	files = (const char **)argv + optind;
	fds = xcalloc((size_t)nfiles, sizeof(*fds));
	chunk = bs * 256;
	buf = xcalloc(1, chunk);
	cmpbuf = xcalloc(1, bs);
	table_init(&all);

	for (f = 0; f < nfiles; f++) {
		fds[f] = open(files[f], O_RDONLY);
		if (fds[f] < 0) {
			perror(files[f]);
			return 2;
		}
		table_init(&one);
		memset(&c, 0, sizeof(c));
		off = 0;
		for (;;) {
			fill = 0;
			while (fill < chunk) {
				n = read(fds[f], buf + fill, chunk - fill);
				if (n < 0) {
					if (errno == EINTR)
						continue;
					perror(files[f]);
					return 2;
				}
				if (n == 0)
					break;
				fill += (size_t)n;
			}
			if (!fill)
				break;
			if (fill % bs) {
				memset(buf + fill, 0, bs - fill % bs);
				fill += bs - fill % bs;
			}
			for (pos = 0; pos < fill; pos += bs, off += bs) {
				const unsigned char *b = buf + pos;
				uint64_t h;

				c.blocks++;
				if (is_zero(b)) {
					c.zero++;
					continue;
				}
				c.nonzero++;
				h = block_hash(b);
				table_add(&one, h, (uint32_t)f, off, b);
				table_add(&all, h, (uint32_t)f, off, b);
			}
			if (fill < chunk)
				break;
		}
		print_line(files[f], &c, one.used);
		free(one.e);
		call.blocks += c.blocks;
		call.zero += c.zero;
		call.nonzero += c.nonzero;
	}
	print_line("total", &call, all.used);
	return 0;
}
