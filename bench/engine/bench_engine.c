// SPDX-License-Identifier: GPL-2.0
/*
 * Engine benchmarks (docs/benchmarks-engine.md): the userspace build of the
 * metadata engine over a sparse metadata file, single-threaded and pinned to
 * one CPU.  Prints numbers; nothing here asserts a speed.
 *
 *   bench_engine [-r reps] [-n blocks] [-s blocks] [-c commit_every] [-l lookups] [-d dir]
 *                [-p seq,dense,sparse,commit] [-q]
 *
 * Every measurement runs -r times (default 5), each time on a freshly
 * formatted pool, and is printed as the median and the spread (min - max).
 * The pool is 1 TiB: 2^28 data blocks of 4 KiB.  Only metadata is written:
 * the engine never touches the data device.
 */
#include "libdmdedup.h"
#include <dm-dedup/format.h>

#include <fcntl.h>
#include <stdarg.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define DATA_SHIFT	28
#define DATA_BLOCKS	(1ULL << DATA_SHIFT)	/* 1 TiB of 4 KiB blocks */
#define META_BYTES	(4ULL << 30)		/* sparse metadata file */
#define CACHE_LARGE	262144			/* blocks: 1 GiB, holds every map here */
#define CACHE_SMALL	16			/* blocks: every leaf read misses */
#define MAX_REPS	32
#define NO_COMMIT	(~0ULL)

static unsigned opt_reps = 5;
static u64 opt_n = 1ULL << 20;			/* blocks per dense run (4 GiB) */
static u64 opt_sparse = 1ULL << 16;		/* blocks per sparse run */
static u64 opt_commit_every = 16384;		/* inserts between commits */
static u64 opt_lookups = 1ULL << 20;
static const char *opt_dir = "build/bench";
static const char *opt_only = "seq,dense,sparse,commit";
static bool opt_quiet;

/* ---- time, random numbers, statistics -------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static u64 rng_state;

static u64 rng(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A bijection on [0, 2^bits): distinct indexes scattered over the range
 * (xor-shifts and odd multipliers are each invertible modulo 2^bits). */
static u64 scatter(u64 x, unsigned bits)
{
	const u64 m = (1ULL << bits) - 1;

	x &= m;
	x ^= x >> (bits / 2);
	x = (x * 0x9e3779b97f4a7c15ULL) & m;
	x ^= x >> (bits / 2 + 1);
	x = (x * 0xc2b2ae3d27d4eb4fULL) & m;
	x ^= x >> (bits / 2);
	return x;
}

struct series {
	char name[96];
	const char *unit;
	double v[MAX_REPS];
	unsigned n;
};

enum {
	S_INS_SEQ, S_INS_SEQ_NC, S_INS_SEQ_SHARE, S_INS_SEQ_COMMITS, S_INS_SEQ_W,
	S_INS_SEQ_LAZY, S_INS_SEQ_LAZY_COMMITS, S_INS_SEQ_LAZY_W,
	S_INS_DENSE, S_INS_DENSE_NC, S_INS_DENSE_COMMITS, S_INS_DENSE_W,
	S_INS_DENSE4K, S_INS_DENSE4K_COMMITS, S_INS_DENSE4K_W,
	S_INS_SPARSE, S_INS_SPARSE_NC, S_INS_SPARSE_COMMITS, S_INS_SPARSE_W,
	S_LK_SEQ_WARM, S_LK_SEQ_COLD, S_LK_SPARSE_WARM, S_LK_SPARSE_COLD,
	S_META_SEQ, S_META_SEQ_NF, S_META_DENSE, S_META_SNAP,
	S_META_FILL0,		/* + one per fill level */
	S_SNAP_TIME = S_META_FILL0 + 8, S_SNAP_BLOCKS, S_SNAP_COMMITS, S_SNAP_W,
	S_SNAP_DENSE_TIME, S_SNAP_DENSE_BLOCKS, S_SNAP_DENSE_COMMITS, S_SNAP_DENSE_W,
	S_SNAP_DENSE4K_TIME, S_SNAP_DENSE4K_COMMITS, S_SNAP_DENSE4K_W,
	S_C1K, S_C1K_DIRTY, S_C1K_SHM,
	S_C10K, S_C10K_DIRTY, S_C10K_N, S_C10K_MAX, S_C10K_MAXDIRTY, S_C10K_SHM,
	S_UNUSED,		/* values nobody prints */
	S_NR
};

#define NR_FILLS 6
static const unsigned fill_shift[NR_FILLS] = { 0, 2, 4, 6, 8, 0xff };	/* V = s << shift */

static struct series S[S_NR];

static void name(int i, const char *unit, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void name(int i, const char *unit, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(S[i].name, sizeof(S[i].name), fmt, ap);
	va_end(ap);
	S[i].unit = unit;
}

static void add(int i, double v)
{
	if (S[i].n < MAX_REPS)
		S[i].v[S[i].n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *fmt(char *buf, double v)
{
	if (v >= 1e6)
		sprintf(buf, "%.2f M", v / 1e6);
	else if (v >= 1e4)
		sprintf(buf, "%.1f k", v / 1e3);
	else if (v >= 100)
		sprintf(buf, "%.0f", v);
	else
		sprintf(buf, "%.3g", v);
	return buf;
}

static void print_row(int i)
{
	struct series *s = &S[i];
	double sorted[MAX_REPS], med;
	char a[32], b[32], c[32], range[80];

	if (!s->n)
		return;
	memcpy(sorted, s->v, s->n * sizeof(double));
	qsort(sorted, s->n, sizeof(double), cmp_double);
	med = s->n % 2 ? sorted[s->n / 2] : (sorted[s->n / 2 - 1] + sorted[s->n / 2]) / 2;
	snprintf(range, sizeof(range), "%s - %s", fmt(b, sorted[0]), fmt(c, sorted[s->n - 1]));
	printf("| %-62s | %10s | %-21s | %-11s | %u |\n", s->name, fmt(a, med), range, s->unit,
	       s->n);
}

static void print_table(const char *title, int first, int last)
{
	int i;

	printf("\n%s\n\n", title);
	printf("| %-62s | %10s | %-21s | %-11s | n |\n", "measurement", "median", "min - max",
	       "unit");
	printf("|%.64s|%.12s|%.23s|%.13s|---|\n",
	       "----------------------------------------------------------------------",
	       "--------------", "--------------------------", "---------------");
	for (i = first; i <= last; i++)
		print_row(i);
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_engine: %s failed: %d (%s)\n", what, r, strerror(r < 0 ? -r : r));
	exit(1);
}

#define TRY(x) do { int __r = (x); if (__r) die(#x, __r); } while (0)

static double gib(u64 blocks)
{
	return (double)blocks * DD_BLOCK_SIZE / (1ULL << 30);
}

/* ---- a device that times commits -----------------------------------------
 * Wraps the file device.  A commit flushes twice (journal and home copies,
 * then the superblock; engine/dd-block.c): the pre-commit hook starts
 * the clock, the second flush stops it.  Commits the engine makes on its
 * own (journal full) are timed the same way. */

struct tdev {
	struct dd_dev dev;
	struct dd_dev *inner;
	struct dd_pool *pool;
	bool in_commit;
	unsigned flushes;
	double t0;
	u64 commits, dirty_committed, max_dirty;
	double commit_time, max_commit;
};

static int tdev_read(struct dd_dev *d, u64 b, void *buf)
{
	return dd_dev_read(((struct tdev *)d)->inner, b, buf);
}

static int tdev_write(struct dd_dev *d, u64 b, const void *buf)
{
	return dd_dev_write(((struct tdev *)d)->inner, b, buf);
}

static int tdev_flush(struct dd_dev *d)
{
	struct tdev *t = (struct tdev *)d;
	int r = dd_dev_flush(t->inner);

	if (t->in_commit && ++t->flushes == 2) {
		double dt = now() - t->t0;

		t->in_commit = false;
		t->commits++;
		t->commit_time += dt;
		if (dt > t->max_commit)
			t->max_commit = dt;
	}
	return r;
}

static void tdev_destroy(struct dd_dev *d)
{
	(void)d;
}

static const struct dd_dev_ops tdev_ops = {
	.read = tdev_read, .write = tdev_write, .flush = tdev_flush, .destroy = tdev_destroy,
};

static int tdev_pre_commit(void *ctx)
{
	struct tdev *t = ctx;
	struct dd_pool_stats st;

	dd_pool_get_stats(t->pool, &st);
	t->dirty_committed += st.nr_dirty;
	if (st.nr_dirty > t->max_dirty)
		t->max_dirty = st.nr_dirty;
	t->in_commit = true;
	t->flushes = 0;
	t->t0 = now();
	return 0;
}

static void tdev_reset(struct tdev *t)
{
	t->commits = t->dirty_committed = t->max_dirty = 0;
	t->commit_time = t->max_commit = 0;
}

/* ---- pools on a sparse metadata file ------------------------------------------ */

struct bpool {
	char path[512];
	struct tdev td;
	struct dd_bm *bm;
	struct dd_pool *pool;
};

static void bp_open(struct bpool *bp, u32 capacity)
{
	struct dd_bm_opts bo = { .capacity = capacity };
	struct dd_pool_hooks hooks = { .pre_commit = tdev_pre_commit, .ctx = &bp->td };

	TRY(dd_dev_file_open(bp->path, false, &bp->td.inner));
	bp->td.dev.ops = &tdev_ops;
	bp->td.dev.nr_blocks = bp->td.inner->nr_blocks;
	TRY(dd_bm_create(&bp->td.dev, &bo, &bp->bm));
	TRY(dd_pool_open(bp->bm, 0, &hooks, &bp->pool));
	bp->td.pool = bp->pool;
	tdev_reset(&bp->td);
}

static void bp_close(struct bpool *bp)
{
	dd_pool_close(bp->pool);
	TRY(dd_bm_destroy(bp->bm));
	dd_dev_destroy(bp->td.inner);
	bp->pool = NULL;
}

/* A new sparse metadata file, formatted (journal 0: the engine's default). */
static void bp_create(struct bpool *bp, const char *dir, const char *tag, u32 journal, u32 capacity)
{
	struct dd_format_params fp = {
		.nr_data_blocks = DATA_BLOCKS,
		.data_block_sectors = DD_SECTORS_PER_BLOCK,
		.journal_blocks = journal,
	};
	struct dd_bm_opts bo = { 0 };
	struct dd_dev *dev;
	struct dd_bm *bm;
	int fd;

	memset(bp, 0, sizeof(*bp));
	snprintf(bp->path, sizeof(bp->path), "%s/bench-%s.meta", dir, tag);
	fd = open(bp->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)META_BYTES) || close(fd))
		die(bp->path, -errno);
	TRY(dd_dev_file_open(bp->path, false, &dev));
	TRY(dd_bm_create(dev, &bo, &bm));
	TRY(dd_pool_format(bm, &fp));
	TRY(dd_bm_destroy(bm));
	dd_dev_destroy(dev);
	bp_open(bp, capacity);
}

static void bp_destroy(struct bpool *bp)
{
	if (bp->pool)
		bp_close(bp);
	unlink(bp->path);
}

/* Metadata per data block, in percent; optionally without the fixed region
 * (superblocks, two journal areas, metadata bitmap), which does not grow. */
static double meta_ratio(struct dd_pool *pool, bool without_fixed)
{
	struct dd_pool_stats st;
	u64 fixed;

	dd_pool_get_stats(pool, &st);
	fixed = DD_SB_SLOTS + 2ULL * st.journal_blocks +
		(st.nr_meta_blocks + DD_BITS_PER_BITMAP - 1) / DD_BITS_PER_BITMAP;
	return 100.0 * (double)(st.meta_used - (without_fixed ? fixed : 0)) / (double)st.data_used;
}

/* ---- workloads ------------------------------------------------------------- */

/* The LBN of the i-th write: 'bits' < 0 sequential, else scattered over 2^bits. */
struct order {
	int bits;
	u64 *perm;		/* dense random: a shuffled [0, n) */
};

static u64 lbn_of(const struct order *o, u64 i)
{
	if (o->perm)
		return o->perm[i];
	return o->bits < 0 ? i : scatter(i, (unsigned)o->bits);
}

static void write_block(struct dd_volume *v, struct dd_pool *pool, u64 lbn)
{
	u64 pbn;

	TRY(dd_data_reserve(pool, &pbn));
	TRY(dd_map_insert(v, lbn, pbn));
}

static u64 fill_writes;		/* metadata blocks written by the last fill */

/* n writes into a new volume 1, a commit every 'every'; seconds taken. */
static double fill(struct bpool *bp, const struct order *o, u64 n, u64 every)
{
	struct dd_volume *v;
	double t;
	u64 i, w;

	TRY(dd_volume_create(bp->pool, 1));
	TRY(dd_pool_commit(bp->pool));
	TRY(dd_volume_open(bp->pool, 1, &v));
	tdev_reset(&bp->td);
	w = bp->td.inner->writes;
	t = now();
	for (i = 0; i < n; i++) {
		write_block(v, bp->pool, lbn_of(o, i));
		if (every != NO_COMMIT && i % every == every - 1)
			TRY(dd_pool_commit(bp->pool));
	}
	TRY(dd_pool_commit(bp->pool));
	t = now() - t;
	fill_writes = bp->td.inner->writes - w;
	dd_volume_close(v);
	return t;
}

static void fill_stats(struct bpool *bp, double t, u64 n, int s_rate, int s_nc, int s_commits,
		       int s_writes)
{
	add(s_rate, (double)n / t);
	add(s_writes, (double)fill_writes * DD_BLOCK_SIZE / 1024 / (double)n);
	if (s_nc >= 0)
		add(s_nc, (double)n / (t - bp->td.commit_time));
	if (s_commits >= 0)
		add(s_commits, (double)bp->td.commits);
}

/* opt_lookups lookups of random written LBNs; lookups per second. */
static double lookups(struct bpool *bp, const struct order *o, u64 n, bool warm)
{
	struct dd_volume *v;
	struct dd_mapping m;
	u64 i, unmapped = 0;
	double t;

	TRY(dd_volume_open(bp->pool, 1, &v));
	if (warm)
		for (i = 0; i < n; i++)		/* every leaf into the cache */
			TRY(dd_map_lookup(v, lbn_of(o, i), 0, &m));
	t = now();
	for (i = 0; i < opt_lookups; i++) {
		TRY(dd_map_lookup(v, lbn_of(o, rng() % n), 0, &m));
		unmapped += !m.mapped;
	}
	t = now() - t;
	dd_volume_close(v);
	if (unmapped)
		die("a written LBN reads as unmapped", (int)unmapped);
	return (double)opt_lookups / t;
}

static void snapshot(struct bpool *bp, u64 n, int s_time, int s_blocks, int s_commits,
		     int s_writes)
{
	struct dd_pool_stats a, b;
	u64 w = bp->td.inner->writes;
	double t;

	dd_pool_get_stats(bp->pool, &a);
	tdev_reset(&bp->td);
	t = now();
	TRY(dd_snapshot_create(bp->pool, 2, 1));
	TRY(dd_pool_commit(bp->pool));
	t = now() - t;
	dd_pool_get_stats(bp->pool, &b);
	add(s_time, t / gib(n));
	add(s_blocks, (double)(b.meta_used - a.meta_used) / gib(n));
	add(s_commits, (double)bp->td.commits / gib(n));
	add(s_writes, gib(bp->td.inner->writes - w) / gib(n));
}

/* ---- the runs ----------------------------------------------------------------- */

static void run_sequential(void)
{
	struct order seq = { .bits = -1 };
	struct bpool bp;
	double t;

	bp_create(&bp, opt_dir, "seq", 0, CACHE_LARGE);
	t = fill(&bp, &seq, opt_n, opt_commit_every);
	fill_stats(&bp, t, opt_n, S_INS_SEQ, S_INS_SEQ_NC, S_INS_SEQ_COMMITS, S_INS_SEQ_W);
	add(S_INS_SEQ_SHARE, 100.0 * bp.td.commit_time / t);
	add(S_META_SEQ, meta_ratio(bp.pool, false));
	add(S_META_SEQ_NF, meta_ratio(bp.pool, true));
	bp_close(&bp);

	bp_open(&bp, CACHE_LARGE);
	add(S_LK_SEQ_WARM, lookups(&bp, &seq, opt_n, true));
	bp_close(&bp);
	bp_open(&bp, CACHE_SMALL);
	add(S_LK_SEQ_COLD, lookups(&bp, &seq, opt_n, false));
	bp_close(&bp);

	bp_open(&bp, CACHE_LARGE);
	snapshot(&bp, opt_n, S_SNAP_TIME, S_SNAP_BLOCKS, S_SNAP_COMMITS, S_SNAP_W);
	add(S_META_SNAP, meta_ratio(bp.pool, true));
	bp_destroy(&bp);

	/* Commits only when the journal fills (and once at the end). */
	bp_create(&bp, opt_dir, "seq-lazy", 0, CACHE_LARGE);
	t = fill(&bp, &seq, opt_n, NO_COMMIT);
	fill_stats(&bp, t, opt_n, S_INS_SEQ_LAZY, -1, S_INS_SEQ_LAZY_COMMITS, S_INS_SEQ_LAZY_W);
	bp_destroy(&bp);
}

/* Random order over [0, n): with the default journal (nr_meta / 32: the
 * largest, 4096 blocks, for this 4 GiB metadata file) and with 4096 asked
 * for explicitly.  The journal bounds how many map leaves one transaction
 * may dirty. */
static void run_dense(void)
{
	struct order dense = { .bits = -1 };
	struct bpool bp;
	double t;
	u64 i;

	dense.perm = malloc(opt_n * sizeof(u64));
	if (!dense.perm)
		die("malloc", -ENOMEM);
	for (i = 0; i < opt_n; i++)
		dense.perm[i] = i;
	for (i = opt_n - 1; i > 0; i--) {
		u64 j = rng() % (i + 1), x = dense.perm[i];

		dense.perm[i] = dense.perm[j];
		dense.perm[j] = x;
	}
	bp_create(&bp, opt_dir, "dense", 0, CACHE_LARGE);
	t = fill(&bp, &dense, opt_n, opt_commit_every);
	fill_stats(&bp, t, opt_n, S_INS_DENSE, S_INS_DENSE_NC, S_INS_DENSE_COMMITS, S_INS_DENSE_W);
	add(S_META_DENSE, meta_ratio(bp.pool, true));
	snapshot(&bp, opt_n, S_SNAP_DENSE_TIME, S_SNAP_DENSE_BLOCKS, S_SNAP_DENSE_COMMITS,
		 S_SNAP_DENSE_W);
	bp_destroy(&bp);

	bp_create(&bp, opt_dir, "dense4k", DD_JOURNAL_MAX_BLOCKS, CACHE_LARGE);
	t = fill(&bp, &dense, opt_n, opt_commit_every);
	fill_stats(&bp, t, opt_n, S_INS_DENSE4K, -1, S_INS_DENSE4K_COMMITS, S_INS_DENSE4K_W);
	snapshot(&bp, opt_n, S_SNAP_DENSE4K_TIME, S_UNUSED, S_SNAP_DENSE4K_COMMITS,
		 S_SNAP_DENSE4K_W);
	bp_destroy(&bp);
	free(dense.perm);
}

static unsigned log2u(u64 x)
{
	unsigned b = 0;

	while ((1ULL << (b + 1)) <= x)
		b++;
	return b;
}

/* opt_sparse random writes over volumes of growing size: metadata per data
 * block against how full the volume is; over the whole 1 TiB also the
 * insert and lookup rates. */
static void run_sparse(void)
{
	unsigned f, sbits = log2u(opt_sparse);
	struct bpool bp;
	double t;

	for (f = 0; f < NR_FILLS; f++) {
		bool whole = fill_shift[f] == 0xff;
		struct order o = { .bits = whole ? DATA_SHIFT : (int)(sbits + fill_shift[f]) };

		if (o.bits > DATA_SHIFT)
			continue;
		bp_create(&bp, opt_dir, "sparse", 0, CACHE_LARGE);
		t = fill(&bp, &o, opt_sparse, opt_commit_every);
		add(S_META_FILL0 + (int)f, meta_ratio(bp.pool, true));
		if (!whole) {
			bp_destroy(&bp);
			continue;
		}
		fill_stats(&bp, t, opt_sparse, S_INS_SPARSE, S_INS_SPARSE_NC, S_INS_SPARSE_COMMITS,
			   S_INS_SPARSE_W);
		bp_close(&bp);
		bp_open(&bp, CACHE_LARGE);
		add(S_LK_SPARSE_WARM, lookups(&bp, &o, opt_sparse, true));
		bp_close(&bp);
		bp_open(&bp, CACHE_SMALL);
		add(S_LK_SPARSE_COLD, lookups(&bp, &o, opt_sparse, false));
		bp_destroy(&bp);
	}
}

/*
 * Commit latency.  Each write at LBN k * 508 starts a new map leaf, so a
 * transaction of D dirty blocks is about D writes.  A commit writes its D
 * journal images and the home copies of the transaction before it, so the
 * measured commit follows one of the same size.  A journal area holds at
 * most 4096 blocks: to make 10k blocks durable the engine commits on its
 * own when the area is nearly full, and every one of those commits counts.
 */
static void dirty_until(struct bpool *bp, struct dd_volume *v, u64 *k, u64 target)
{
	struct dd_pool_stats st;

	for (;;) {
		dd_pool_get_stats(bp->pool, &st);
		if (bp->td.dirty_committed + st.nr_dirty >= target)
			return;
		write_block(v, bp->pool, (*k)++ * DD_MAP_ENTRIES);
	}
}

static void run_commit(const char *dir, bool shm)
{
	static const u64 sizes[2] = { 1000, 10000 };
	struct dd_volume *v;
	struct bpool bp;
	u64 k = 0;
	unsigned i;

	bp_create(&bp, dir, shm ? "commit-shm" : "commit", DD_JOURNAL_MAX_BLOCKS, CACHE_LARGE);
	TRY(dd_volume_create(bp.pool, 1));
	TRY(dd_pool_commit(bp.pool));
	TRY(dd_volume_open(bp.pool, 1, &v));
	for (i = 0; i < 2; i++) {
		tdev_reset(&bp.td);
		dirty_until(&bp, v, &k, sizes[i]);
		TRY(dd_pool_commit(bp.pool));
		tdev_reset(&bp.td);
		dirty_until(&bp, v, &k, sizes[i]);
		TRY(dd_pool_commit(bp.pool));
		if (i == 0) {
			add(shm ? S_C1K_SHM : S_C1K, bp.td.commit_time * 1e3);
			if (!shm)
				add(S_C1K_DIRTY, (double)bp.td.dirty_committed);
		} else if (shm) {
			add(S_C10K_SHM, bp.td.commit_time * 1e3);
		} else {
			add(S_C10K, bp.td.commit_time * 1e3);
			add(S_C10K_DIRTY, (double)bp.td.dirty_committed);
			add(S_C10K_N, (double)bp.td.commits);
			add(S_C10K_MAX, bp.td.max_commit * 1e3);
			add(S_C10K_MAXDIRTY, (double)bp.td.max_dirty);
		}
	}
	dd_volume_close(v);
	bp_destroy(&bp);
}

/* ---- main ---------------------------------------------------------------------- */

static void setup_names(void)
{
	unsigned f, sbits = log2u(opt_sparse);
	const char *c = "commits";

	name(S_INS_SEQ, "inserts/s", "insert, sequential LBNs, commit every %llu",
	     (unsigned long long)opt_commit_every);
	name(S_INS_SEQ_NC, "inserts/s", "  the same, time in commits left out");
	name(S_INS_SEQ_SHARE, "%", "  share of the time spent in commits");
	name(S_INS_SEQ_COMMITS, c, "  commits");
	name(S_INS_SEQ_W, "KiB/insert", "  metadata written per insert (journal + home copies)");
	name(S_INS_SEQ_LAZY, "inserts/s", "insert, sequential LBNs, commit only when the journal fills");
	name(S_INS_SEQ_LAZY_COMMITS, c, "  commits (default journal area)");
	name(S_INS_SEQ_LAZY_W, "KiB/insert", "  metadata written per insert");
	name(S_INS_DENSE, "inserts/s", "insert, random order over [0, n), commit every %llu",
	     (unsigned long long)opt_commit_every);
	name(S_INS_DENSE_NC, "inserts/s", "  the same, time in commits left out");
	name(S_INS_DENSE_COMMITS, c, "  commits (nearly all forced by a full journal)");
	name(S_INS_DENSE_W, "KiB/insert", "  metadata written per insert");
	name(S_INS_DENSE4K, "inserts/s", "  the same with the largest journal (4096 blocks)");
	name(S_INS_DENSE4K_COMMITS, c, "  commits with it");
	name(S_INS_DENSE4K_W, "KiB/insert", "  metadata written per insert with it");
	name(S_INS_SPARSE, "inserts/s", "insert, random LBNs over the whole 1 TiB volume");
	name(S_INS_SPARSE_NC, "inserts/s", "  the same, time in commits left out");
	name(S_INS_SPARSE_COMMITS, c, "  commits (nearly all forced by a full journal)");
	name(S_INS_SPARSE_W, "KiB/insert", "  metadata written per insert");
	name(S_LK_SEQ_WARM, "lookups/s", "lookup, dense volume, warm cache (%u blocks)", CACHE_LARGE);
	name(S_LK_SEQ_COLD, "lookups/s", "lookup, dense volume, cold cache (%u blocks)", CACHE_SMALL);
	name(S_LK_SPARSE_WARM, "lookups/s", "lookup, sparse 1 TiB volume, warm cache");
	name(S_LK_SPARSE_COLD, "lookups/s", "lookup, sparse 1 TiB volume, cold cache");
	name(S_META_SEQ, "%", "sequentially written volume, fixed region included");
	name(S_META_SEQ_NF, "%", "sequentially written volume");
	name(S_META_DENSE, "%", "volume written in random order (every LBN once)");
	name(S_META_SNAP, "%", "sequentially written volume + 1 snapshot of it");
	for (f = 0; f < NR_FILLS; f++) {
		if (fill_shift[f] == 0xff)
			name(S_META_FILL0 + (int)f, "%",
			     "%llu random LBNs over the whole 1 TiB (%.3f %% full)",
			     (unsigned long long)opt_sparse, 100.0 * (double)opt_sparse / DATA_BLOCKS);
		else
			name(S_META_FILL0 + (int)f, "%", "%llu random LBNs over 2^%u (%.3g %% full)",
			     (unsigned long long)opt_sparse, sbits + fill_shift[f],
			     100.0 / (double)(1ULL << fill_shift[f]));
	}
	name(S_SNAP_TIME, "s/GiB", "snapshot of a sequentially written volume: time");
	name(S_SNAP_BLOCKS, "blocks/GiB", "  metadata blocks added");
	name(S_SNAP_COMMITS, "commits/GiB", "  commits during the copy (default journal)");
	name(S_SNAP_W, "GiB/GiB", "  metadata written (journal + home copies)");
	name(S_SNAP_DENSE_TIME, "s/GiB", "snapshot of a volume written in random order: time");
	name(S_SNAP_DENSE_BLOCKS, "blocks/GiB", "  metadata blocks added");
	name(S_SNAP_DENSE_COMMITS, "commits/GiB", "  commits during the copy (default journal)");
	name(S_SNAP_DENSE_W, "GiB/GiB", "  metadata written");
	name(S_SNAP_DENSE4K_TIME, "s/GiB", "  time with the largest journal (4096 blocks)");
	name(S_SNAP_DENSE4K_COMMITS, "commits/GiB", "  commits with it");
	name(S_SNAP_DENSE4K_W, "GiB/GiB", "  metadata written with it");
	name(S_C1K, "ms", "commit of ~1000 dirty blocks (file + fdatasync)");
	name(S_C1K_DIRTY, "blocks", "  dirty blocks in it");
	name(S_C1K_SHM, "ms", "commit of ~1000 dirty blocks (tmpfs: no device flush)");
	name(S_C10K, "ms", "10k dirty blocks made durable: time in commits (file)");
	name(S_C10K_DIRTY, "blocks", "  dirty blocks committed");
	name(S_C10K_N, c, "  commits it took (journal area of 4096 blocks)");
	name(S_C10K_MAX, "ms", "  the longest of them (a nearly full journal area)");
	name(S_C10K_MAXDIRTY, "blocks", "  dirty blocks in that one");
	name(S_C10K_SHM, "ms", "10k dirty blocks: time in commits (tmpfs)");
}

static void print_load(const char *when)
{
	char buf[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			strcpy(buf, "?");
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	printf("load average %s: %s\n", when, buf);
}

static void machine(void)
{
	char line[256], model[256] = "?";
	struct statfs sf;
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && p) {
			snprintf(model, sizeof(model), "%s", p + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	uname(&u);
	printf("machine: %ld CPUs online, %s; %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
	       u.sysname, u.release);
	if (!statfs(opt_dir, &sf))
		printf("metadata files in %s (filesystem magic %#lx)\n", opt_dir, (unsigned long)sf.f_type);
}

static void log_hook(enum dd_log_level lvl, const char *msg)
{
	if (lvl <= DD_LOG_WARN)
		fprintf(stderr, "engine: %s\n", msg);
}

int main(int argc, char **argv)
{
	cpu_set_t cpus;
	unsigned rep;
	int c;

	while ((c = getopt(argc, argv, "r:n:s:c:l:d:p:q")) != -1) {
		switch (c) {
		case 'r': opt_reps = (unsigned)atoi(optarg); break;
		case 'n': opt_n = strtoull(optarg, NULL, 0); break;
		case 's': opt_sparse = strtoull(optarg, NULL, 0); break;
		case 'c': opt_commit_every = strtoull(optarg, NULL, 0); break;
		case 'l': opt_lookups = strtoull(optarg, NULL, 0); break;
		case 'd': opt_dir = optarg; break;
		case 'p': opt_only = optarg; break;
		case 'q': opt_quiet = true; break;
		default:
			fprintf(stderr, "usage: %s [-r reps] [-n blocks] [-s blocks] [-c commit_every] "
				"[-l lookups] [-d dir] [-p seq,dense,sparse,commit] [-q]\n", argv[0]);
			return 2;
		}
	}
	if (!opt_reps || opt_reps > MAX_REPS || opt_n < 2 || opt_sparse < 2 || !opt_commit_every ||
	    opt_n > (1ULL << 26) || opt_sparse > (1ULL << 24)) {
		fprintf(stderr, "bench_engine: bad options\n");
		return 2;
	}
	opt_sparse = 1ULL << log2u(opt_sparse);		/* a power of two */
	dd_set_log_hook(log_hook);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		perror("sched_setaffinity (running unpinned)");
	mkdir(opt_dir, 0755);
	setup_names();

	machine();
	printf("pool: 1 TiB (2^28 data blocks); metadata: %llu GiB sparse file; one thread on CPU 0\n",
	       (unsigned long long)(META_BYTES >> 30));
	printf("runs: %u; dense runs write %llu blocks (%.2f GiB), sparse runs %llu (%.3f GiB); "
	       "%llu lookups per lookup run\n", opt_reps, (unsigned long long)opt_n, gib(opt_n),
	       (unsigned long long)opt_sparse, gib(opt_sparse), (unsigned long long)opt_lookups);
	print_load("at start");
	fflush(stdout);

	for (rep = 0; rep < opt_reps; rep++) {
		rng_state = 0x5eed + rep;
		if (!opt_quiet)
			fprintf(stderr, "run %u/%u:", rep + 1, opt_reps);
		if (strstr(opt_only, "seq")) {
			if (!opt_quiet)
				fprintf(stderr, " sequential");
			run_sequential();
		}
		if (strstr(opt_only, "dense")) {
			if (!opt_quiet)
				fprintf(stderr, " random-order");
			run_dense();
		}
		if (strstr(opt_only, "sparse")) {
			if (!opt_quiet)
				fprintf(stderr, " sparse");
			run_sparse();
		}
		if (strstr(opt_only, "commit")) {
			if (!opt_quiet)
				fprintf(stderr, " commits");
			run_commit(opt_dir, false);
			run_commit("/dev/shm", true);
		}
		if (!opt_quiet)
			fprintf(stderr, "\n");
	}

	print_table("Map inserts and lookups (volume 1 of a 1 TiB pool)", S_INS_SEQ, S_LK_SPARSE_COLD);
	print_table("Metadata per data block: (meta_used - fixed region) / data_used", S_META_SEQ,
		    S_META_FILL0 + NR_FILLS - 1);
	print_table("Snapshot (shares the map: this pool's journal holds a page-copy step), per GiB of origin",
		    S_SNAP_TIME, S_SNAP_DENSE4K_W);
	print_table("Commit latency", S_C1K, S_C10K_SHM);
	printf("\n");
	print_load("at end");
	return 0;
}
