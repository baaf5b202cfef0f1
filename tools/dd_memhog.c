// SPDX-License-Identifier: GPL-2.0
/*
 * dd_memhog: take anonymous memory away from the rest of the guest, for the
 * memory-pressure guest test (tests/vm/40-memory-pressure.sh).  Without swap
 * anonymous pages cannot be reclaimed: what the hog holds, the page cache,
 * its dirty pages and the kernel's own allocations must do without.
 *
 *   dd_memhog leave MIB    grow until MemAvailable (/proc/meminfo) is at most
 *                          MIB MiB, then hold, growing again whenever it
 *                          rises 4 MiB above; runs until killed
 *   dd_memhog grow         grow 1 MiB at a time until killed (the OOM killer)
 *
 * Every page it takes is written (a non-zero pattern), so it is really held.
 * It prints one line when it first reaches its level ("# dd_memhog: holding
 * N MiB, MemAvailable M MiB"); the caller may wait for that line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK (1UL << 20)

static long mem_available_mib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib < 0 ? -1 : kib / 1024;
}

/* One more MiB, every page written; 0 when mmap refused it. */
static int take_chunk(void)
{
	char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	memset(p, 0x5a, CHUNK);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: dd_memhog leave MIB | dd_memhog grow\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long held = 0;
	long leave = -1, avail;
	int announced = 0;

	if (argc == 3 && !strcmp(argv[1], "leave")) {
		char *end;

		leave = strtol(argv[2], &end, 10);
		if (*end || leave < 0)
			usage();
	} else if (argc != 2 || strcmp(argv[1], "grow")) {
		usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		if (leave >= 0) {
			avail = mem_available_mib();
			if (avail < 0) {
				fprintf(stderr, "dd_memhog: cannot read MemAvailable\n");
				return 1;
			}
			if (avail <= leave + (announced ? 4 : 0)) {
				if (!announced) {
					printf("# dd_memhog: holding %lu MiB, MemAvailable %ld MiB\n",
					       held, avail);
					announced = 1;
				}
				usleep(50000);
				continue;
			}
		}
		if (!take_chunk()) {
			/* (overcommit refused it: try again, the OOM killer decides) */
			usleep(10000);
			continue;
		}
		held++;
	}
}
