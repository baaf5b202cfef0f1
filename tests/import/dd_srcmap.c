// SPDX-License-Identifier: GPL-2.0
/*
 * dd_srcmap: what the import would copy of a source (tools/dedupctl/source.h),
 * for tests/scripts/test-import-source.sh.
 *
 *   dd_srcmap [--all] [--list] SOURCE
 *
 * Prints dd_source_describe()'s lines, then
 *
 *   blocks <n> in_use <n> free <n>
 *
 * and with --list one line per run of in-use 4 KiB blocks, "FIRST-LAST" (or
 * "FIRST" for one block).  Exit status 1 with one line on stderr on error, 2
 * on bad usage.
 */
#include <stdio.h>
#include <string.h>
#include <inttypes.h>

#include "dedupctl/source.h"

static void usage(void)
{
	fprintf(stderr, "usage: dd_srcmap [--all] [--list] SOURCE\n");
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	const char *path = NULL;
	struct dd_source *s;
	uint64_t b, n, run = 0, used = 0;
	char err[256];
	int i, list = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			flags |= DD_SRC_ALL;
		} else if (!strcmp(argv[i], "--list")) {
			list = 1;
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
	dd_source_close(s);
	return 0;
}
