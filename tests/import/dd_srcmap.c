// SPDX-License-Identifier: GPL-2.0
/*
 * dd_srcmap: what the import would copy of a source (tools/dedupctl/source.h),
 * for tests/scripts/test-import-source.sh.
 *
 *   dd_srcmap [--all] [--list] [--copy OUT [--buffered]] SOURCE
 *
 * Prints dd_source_describe()'s lines, then
 *
 *   blocks <n> in_use <n> free <n>
 *
 * and with --list one line per run of in-use 4 KiB blocks, "FIRST-LAST" (or
 * "FIRST" for one block).  --copy OUT reads SOURCE through the import's reader
 * thread (tools/dedupctl/reader.h; O_DIRECT unless --buffered) and writes its data
 * blocks into OUT (made SOURCE's size, zeroes elsewhere), checking each block's
 * kind and hash, then prints
 *
 *   copy data <n> zero <n> free <n> read <bytes> O_DIRECT|buffered
 *
 * Exit status 1 with one line on stderr on error, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <unistd.h>
#include <xxhash.h>

#include "dedupctl/reader.h"
#include "dedupctl/source.h"

#define SEED 0x5eedULL
#define BS DD_SRC_BLOCK_SIZE

static bool zero_block(const char *p)
{
	for (size_t i = 0; i < BS; i++)
		if (p[i])
			return false;
	return true;
}

/* Each block's kind and hash checked against the map and the bytes, the data written. */
static int copy_through_reader(struct dd_source *s, const char *out, bool buffered)
{
	struct dd_reader *r;
	struct dd_reader_stats st;
	struct dd_chunk *c;
	uint64_t cnt[3] = { 0 }, bytes = 0, next = 0;
	int fd, e, ret = 0;

	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)dd_source_size(s))) {
		fprintf(stderr, "dd_srcmap: %s: %s\n", out, strerror(errno));
		return 1;
	}
	e = dd_reader_start(s, 0, (buffered ? 0 : DD_READER_DIRECT) | DD_READER_HASH, SEED, &r);
	if (e) {
		fprintf(stderr, "dd_srcmap: reader: %s\n", strerror(-e));
		close(fd);
		return 1;
	}
	while (!ret && (c = dd_reader_next(r))) {
		if (c->err) {
			fprintf(stderr, "dd_srcmap: read at byte %" PRIu64 ": %s\n", c->err_at,
				strerror(-c->err));
			ret = 1;
			break;
		}
		if (c->first != next) {
			fprintf(stderr, "dd_srcmap: chunk at block %" PRIu64 ", wanted %" PRIu64 "\n",
				c->first, next);
			ret = 1;
			break;
		}
		for (uint64_t i = 0; !ret && i < c->n; i++) {
			const char *b = c->buf + i * BS;
			int want = !dd_source_in_use(s, c->first + i) ? DD_BLK_FREE :
				   zero_block(b) ? DD_BLK_ZERO : DD_BLK_DATA;

			if (c->kind[i] != want ||
			    (want == DD_BLK_DATA && c->hash[i] != XXH64(b, BS, SEED))) {
				fprintf(stderr, "dd_srcmap: block %" PRIu64 ": kind %d (want %d) or"
					" its hash is wrong\n", c->first + i, c->kind[i], want);
				ret = 1;
			} else if (want == DD_BLK_DATA &&
				   pwrite(fd, b, BS, (off_t)((c->first + i) * BS)) != BS) {
				fprintf(stderr, "dd_srcmap: %s: %s\n", out, strerror(errno));
				ret = 1;
			}
			cnt[c->kind[i]]++;
		}
		bytes += c->read_bytes;
		next += c->n;
		dd_reader_put(r, c);
	}
	if (!ret && next != dd_source_blocks(s)) {
		fprintf(stderr, "dd_srcmap: the reader ended at block %" PRIu64 "\n", next);
		ret = 1;
	}
	dd_reader_stats(r, &st);
	dd_reader_stop(r);
	/* the last block may be partial: OUT keeps the source's size */
	if (ftruncate(fd, (off_t)dd_source_size(s)) || close(fd))
		ret = 1;
	if (!ret)
		printf("copy data %" PRIu64 " zero %" PRIu64 " free %" PRIu64 " read %" PRIu64
		       " %s\n", cnt[DD_BLK_DATA], cnt[DD_BLK_ZERO], cnt[DD_BLK_FREE], bytes,
		       st.direct ? "O_DIRECT" : "buffered");
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: dd_srcmap [--all] [--list] SOURCE\n");
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	const char *path = NULL, *copy = NULL;
	bool buffered = false;
	struct dd_source *s;
	uint64_t b, n, run = 0, used = 0;
	char err[256];
	int i, list = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			flags |= DD_SRC_ALL;
		} else if (!strcmp(argv[i], "--list")) {
			list = 1;
		} else if (!strcmp(argv[i], "--copy") && i + 1 < argc) {
			copy = argv[++i];
		} else if (!strcmp(argv[i], "--buffered")) {
			buffered = true;
		} else if (argv[i][0] == '-' || path) {
			usage();
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		usage();
		return 2;
	}
	if (dd_source_open(path, flags, &s, err, sizeof(err))) {
		fprintf(stderr, "dd_srcmap: %s\n", err);
		return 1;
	}
	dd_source_describe(s, stdout);
	n = dd_source_blocks(s);
	for (b = 0; b < n; b++)
		used += dd_source_in_use(s, b);
	if (used + dd_source_free_blocks(s) != n) {
		fprintf(stderr, "dd_srcmap: %s: in use %" PRIu64 " + free %" PRIu64
			" != %" PRIu64 " blocks\n", path, used, dd_source_free_blocks(s), n);
		dd_source_close(s);
		return 1;
	}
	printf("blocks %" PRIu64 " in_use %" PRIu64 " free %" PRIu64 "\n", n, used, n - used);
	for (b = 0; list && b <= n; b++) {
		if (b < n && dd_source_in_use(s, b)) {
			run++;
			continue;
		}
		if (run == 1)
			printf("%" PRIu64 "\n", b - 1);
		else if (run)
			printf("%" PRIu64 "-%" PRIu64 "\n", b - run, b - 1);
		run = 0;
	}
	i = copy ? copy_through_reader(s, copy, buffered) : 0;
	dd_source_close(s);
	return i;
}
