// SPDX-License-Identifier: GPL-2.0
/*
 * The scanner's CPU work per byte, natively: what a batch costs besides the
 * I/O and the engine calls.  For every 4 KiB block it reads the scanner
 * hashes it (xxh64, seed 0, as the kernel's xxh64() computes it), checks it
 * for zeroes, and for every candidate compares two blocks word by word
 * (kernel/dm-dedup-scan.c, blocks_equal).  Prints GiB/s per core for each,
 * medians of -r repetitions with min-max.  Under the test guest's TCG these
 * run emulated, many times slower: docs/benchmarks-scanner.md.
 *   bench_scan_cpu [-m MiB] [-r reps]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define BLK 4096

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool blocks_equal(const void *a, const void *b)
{
	const unsigned long *x = a, *y = b;
	unsigned int i;

	for (i = 0; i < BLK / sizeof(long); i += 4)
		if ((x[i] ^ y[i]) | (x[i + 1] ^ y[i + 1]) | (x[i + 2] ^ y[i + 2]) |
		    (x[i + 3] ^ y[i + 3]))
			return false;
	return true;
}

static bool all_zero(const void *a)
{
	const unsigned long *x = a;
	unsigned int i;

	for (i = 0; i < BLK / sizeof(long); i++)
		if (x[i])
			return false;
	return true;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int reps, double gib)
{
	qsort(t, reps, sizeof(*t), cmp_d);
	printf("%-34s %7.2f GiB/s (%.2f-%.2f)\n", what, gib / t[reps / 2], gib / t[reps - 1],
	       gib / t[0]);
}

int main(int argc, char **argv)
{
	size_t mib = 256, n, i;
	int reps = 5, r, c;
	unsigned char *a, *b;
	double th[64], tz[64], tc[64];
	volatile uint64_t sink = 0;

	while ((c = getopt(argc, argv, "m:r:")) != -1) {
		if (c == 'm')
			mib = strtoul(optarg, NULL, 10);
		else if (c == 'r')
			reps = atoi(optarg);
		else
			return fprintf(stderr, "usage: bench_scan_cpu [-m MiB] [-r reps]\n"), 2;
	}
	if (reps < 1 || reps > 64 || !mib)
		return fprintf(stderr, "bench_scan_cpu: -r 1..64, -m > 0\n"), 2;
	n = mib * 256;
	a = malloc(n * BLK);
	b = malloc(n * BLK);
	if (!a || !b)
		return fprintf(stderr, "bench_scan_cpu: out of memory\n"), 1;
	srand(1);
	for (i = 0; i < n * BLK; i++)
		a[i] = (unsigned char)rand();
	memcpy(b, a, n * BLK);	/* the candidates: equal, so every compare runs to the end */
	for (r = 0; r < reps; r++) {
		double t0 = now();

		for (i = 0; i < n; i++)
			sink += XXH64(a + i * BLK, BLK, 0);
		th[r] = now() - t0;
		t0 = now();
		for (i = 0; i < n; i++)
			sink += all_zero(a + i * BLK);
		tz[r] = now() - t0;
		t0 = now();
		for (i = 0; i < n; i++)
			sink += blocks_equal(a + i * BLK, b + i * BLK);
		tc[r] = now() - t0;
	}
	printf("scanner CPU work on %zu MiB of 4 KiB blocks, %d repetitions, one core:\n", mib, reps);
	report("xxh64 (seed 0)", th, reps, mib / 1024.0);
	report("zero check", tz, reps, mib / 1024.0);
	report("byte compare (equal blocks)", tc, reps, mib / 1024.0);
	free(a);
	free(b);
	return sink == 42 ? 3 : 0;
}
