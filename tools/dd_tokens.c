// SPDX-License-Identifier: GPL-2.0
/*
 * dd_tokens: writes self-describing data to a block device and checks what a
 * device reads back against what may be there (the crash-replay tests).
 *
 *   dd_tokens write DEV JOURNAL --seed S --count N [--dups K] [--no-sync]
 *   dd_tokens verify DEV [--map FILE]... [--journal FILE]... [--zero]
 *                    [--out FILE] [--name NAME]
 *   dd_tokens verify ID --pool META,DATA --sectors N [the same options]
 *   dd_tokens flush DEV
 *
 * Every 512-byte sector written holds a token: a magic, the write's id W, the
 * sector's offset in that write, and bytes derived from both.  A sector read
 * back is therefore one of: zeroes, the token (W, offset), or garbage, and the
 * token says exactly which write it came from.  The data does not name its
 * place, so writes with the same id at two places (--dups: "duplicate" ids
 * from a small shared set, one 4 KiB block each) give byte-identical blocks
 * a deduplicating pool may share; a block that reads back at a place its
 * write never went to is still caught.
 *
 * `write` issues N random writes with O_DIRECT: whole blocks of new data
 * (1-16 blocks, some of 32-64), whole blocks of duplicate data, 512-byte
 * writes anywhere (1-7 sectors, crossing blocks), and whole blocks of zeroes;
 * ids are S * 2^20 + n (S below 2^26).  Before each write it appends a line
 * "FIRST_SECTOR SECTORS W" to JOURNAL (W 0 for zeroes), so the journal holds
 * every write that may have reached the device; then it calls fsync (a flush
 * of the device) unless --no-sync.  A discard is journalled by the caller as
 * a line with W 0.
 *
 * `verify` reads the whole device (O_DIRECT) and accepts a sector when it
 * holds what a --map file says it held (a map `--out` wrote earlier), or the
 * token of a --journal line covering it (zeroes for W 0), or zeroes with
 * --zero.  It prints up to 10 wrong sectors and a count, and exits 1 if any.
 * --out FILE writes the map of what was read (8 bytes per sector: 0 zeroes,
 * W * 2^16 + offset a token, all ones garbage).
 *
 * With --pool, `verify` reads volume ID of the pool on the metadata device (or
 * image) META and the data device DATA through the userspace engine instead of
 * a device.  The pool is opened as the kernel opens it after a crash (writable:
 * the journal replayed, interrupted deletes and snapshots taken up), but every
 * metadata write stays in memory, so a crash image stays as it was; a pool
 * that opens read-only or with needs_check fails (exit 2).  The volume's first
 * N sectors are read (unmapped blocks are zeroes).  Exit 3 when the pool opens
 * but has no volume ID (never created, deleted or incomplete).
 *
 * `flush` calls fsync on DEV.
 * Exit status: 0 ok; 1 wrong sectors (verify); 2 usage or I/O error, or a
 * pool that does not open; 3 no such volume (verify --pool).
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#define TOOL_NAME "dd_tokens"
#include "tool-io.h"
#include "libdmdedup.h"

#define SECTOR		512u
#define BLOCK_SECTORS	8u
#define TOKEN_MAGIC	0x314e454b4f544444ULL	/* "DDTOKEN1" */
#define DUP_FLAG	(1ULL << 46)
#define GARBAGE		UINT64_MAX
#define MAX_FILES	64
#define MAX_WRITE	(64u * BLOCK_SECTORS)



static void usage(void)
{
	fprintf(stderr,
		"usage: %s write DEV JOURNAL --seed S --count N [--dups K] [--no-sync]\n"
		"       %s verify DEV [--map FILE]... [--journal FILE]... [--zero] [--out FILE]"
		" [--name NAME]\n"
		"       %s verify ID --pool META,DATA --sectors N [the same options]\n"
		"       %s flush DEV\n", TOOL_NAME, TOOL_NAME, TOOL_NAME, TOOL_NAME);
	exit(2);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t encode(uint64_t w, uint64_t off)
{
	return w ? (w << 16) | (off & 0xffff) : 0;
}

static void make_token(uint64_t *s, uint64_t w, uint64_t off)
{
	uint64_t x = mix(w * 0x100000001b3ULL ^ off);
	unsigned i;

	s[0] = TOKEN_MAGIC;
	s[1] = w;
	s[2] = off;
	for (i = 3; i < SECTOR / 8; i++)
		s[i] = x = mix(x);
}

/* What a sector read back holds, as a map value. */
static uint64_t decode(const uint64_t *s)
{
	uint64_t t[SECTOR / 8];
	unsigned i;

	for (i = 0; i < SECTOR / 8 && !s[i]; i++)
		;
	if (i == SECTOR / 8)
		return 0;
	if (s[0] != TOKEN_MAGIC || !s[1] || s[1] >= (1ULL << 47) || s[2] > 0xffff)
		return GARBAGE;
	make_token(t, s[1], s[2]);
	if (memcmp(s, t, SECTOR))
		return GARBAGE;
	return encode(s[1], s[2]);
}

static void describe(uint64_t v, char *buf, size_t size)
{
	if (v == 0)
		snprintf(buf, size, "zeroes");
	else if (v == GARBAGE)
		snprintf(buf, size, "garbage");
	else
		snprintf(buf, size, "write %#" PRIx64 "%s offset %" PRIu64, (uint64_t)((v >> 16) & ~DUP_FLAG),
			 ((v >> 16) & DUP_FLAG) ? " (dup)" : "", v & 0xffff);
}

static int open_dev(const char *path, int flags, uint64_t *sectors)
{
	int fd = open(path, flags | O_DIRECT);
	uint64_t bytes;

	if (fd < 0)
		die(2, "%s: %s", path, strerror(errno));
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		off_t end = lseek(fd, 0, SEEK_END);

		if (end < 0)
			die(2, "%s: size: %s", path, strerror(errno));
		bytes = (uint64_t)end;
	}
	*sectors = bytes / SECTOR;
	return fd;
}

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state = mix(rng_state);
	return n ? rng_state % n : 0;
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		die(2, "%s %s: want a number", opt, s);
	return v;
}

static int cmd_write(int argc, char **argv)
{
	const char *dev, *jpath;
	uint64_t seed = 0, count = 0, dups = 0, sectors, n, id = 0;
	bool sync = true, have_seed = false;
	uint64_t *buf;
	FILE *j;
	int fd, i;

	if (argc < 2)
		usage();
	dev = argv[0];
	jpath = argv[1];
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = parse_u64("--seed", argv[++i]);
			have_seed = true;
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = parse_u64("--count", argv[++i]);
		} else if (!strcmp(argv[i], "--dups") && i + 1 < argc) {
			dups = parse_u64("--dups", argv[++i]);
		} else if (!strcmp(argv[i], "--no-sync")) {
			sync = false;
		} else {
			usage();
		}
	}
	if (!have_seed || seed == 0 || seed >= (1ULL << 26))
		die(2, "--seed: want 1 .. 2^26-1 (ids must be unique over a test)");
	if (count >= (1ULL << 20))
		die(2, "--count: at most 2^20-1 writes");
	fd = open_dev(dev, O_RDWR, &sectors);
	if (sectors < MAX_WRITE * 2)
		die(2, "%s: %" PRIu64 " sectors: too small", dev, sectors);
	j = fopen(jpath, "a");
	if (!j)
		die(2, "%s: %s", jpath, strerror(errno));
	if (posix_memalign((void **)&buf, 4096, MAX_WRITE * SECTOR))
		die(2, "out of memory");
	rng_state = mix(seed);

	for (n = 0; n < count; n++) {
		uint64_t kind = rnd(100), blocks = sectors / BLOCK_SECTORS, first, nr, w, s;

		if (kind < 50 || (kind < 65 && !dups)) {		/* new data, whole blocks */
			nr = (1 + rnd(16)) * BLOCK_SECTORS;
			first = rnd(blocks - nr / BLOCK_SECTORS + 1) * BLOCK_SECTORS;
		} else if (kind < 65) {					/* duplicate blocks */
			nr = (1 + rnd(4)) * BLOCK_SECTORS;
			first = rnd(blocks - nr / BLOCK_SECTORS + 1) * BLOCK_SECTORS;
		} else if (kind < 82) {					/* 512-byte writes */
			nr = 1 + rnd(7);
			first = rnd(sectors - nr + 1);
		} else if (kind < 93) {					/* zeroes */
			nr = (1 + rnd(4)) * BLOCK_SECTORS;
			first = rnd(blocks - nr / BLOCK_SECTORS + 1) * BLOCK_SECTORS;
		} else {						/* long writes */
			nr = (32 + rnd(33)) * BLOCK_SECTORS;
			first = rnd(blocks - nr / BLOCK_SECTORS + 1) * BLOCK_SECTORS;
		}

		if (kind >= 65 && kind < 82) {
			w = (seed << 20) | ++id;
			for (s = 0; s < nr; s++)
				make_token(buf + s * (SECTOR / 8), w, s);
			fprintf(j, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", first, nr, w);
		} else if (kind >= 82 && kind < 93) {
			memset(buf, 0, nr * SECTOR);
			fprintf(j, "%" PRIu64 " %" PRIu64 " 0\n", first, nr);
		} else if (kind >= 50 && kind < 65 && dups) {
			/* Each block a duplicate id of its own, with offsets 0-7. */
			for (s = 0; s < nr; s += BLOCK_SECTORS) {
				uint64_t b;

				w = DUP_FLAG | (1 + rnd(dups));
				for (b = 0; b < BLOCK_SECTORS; b++)
					make_token(buf + (s + b) * (SECTOR / 8), w, b);
				fprintf(j, "%" PRIu64 " %u %" PRIu64 "\n", first + s, BLOCK_SECTORS, w);
			}
		} else {
			w = (seed << 20) | ++id;
			for (s = 0; s < nr; s++)
				make_token(buf + s * (SECTOR / 8), w, s);
			fprintf(j, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", first, nr, w);
		}
		/* The journal line is on its way before the write can be. */
		if (fflush(j))
			die(2, "%s: %s", jpath, strerror(errno));
		write_all(fd, buf, nr * SECTOR, first * SECTOR, dev);
	}
	if (fclose(j))
		die(2, "%s: %s", jpath, strerror(errno));
	if (sync && fsync(fd))
		die(2, "%s: fsync: %s", dev, strerror(errno));
	close(fd);
	return 0;
}

struct jline {
	uint64_t first, nr, w;
};

struct allowed {
	uint64_t *maps[MAX_FILES];
	uint64_t map_sectors[MAX_FILES];
	const char *map_path[MAX_FILES];
	int nmaps;
	struct jline *lines;
	size_t nlines, cap;
	bool zero;
};

static void load_map(struct allowed *a, const char *path)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (a->nmaps == MAX_FILES)
		die(2, "at most %d maps", MAX_FILES);
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die(2, "%s: %s", path, strerror(errno));
	a->maps[a->nmaps] = malloc((size_t)len + 8);
	if (!a->maps[a->nmaps] || fread(a->maps[a->nmaps], 1, (size_t)len, f) != (size_t)len)
		die(2, "%s: cannot read", path);
	fclose(f);
	a->map_sectors[a->nmaps] = (uint64_t)len / 8;
	a->map_path[a->nmaps++] = path;
}

static void load_journal(struct allowed *a, const char *path)
{
	FILE *f = fopen(path, "r");
	struct jline l;
	char line[256];
	unsigned ln = 0;

	if (!f)
		die(2, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		ln++;
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64, &l.first, &l.nr, &l.w) != 3)
			die(2, "%s:%u: want FIRST SECTORS W", path, ln);
		if (a->nlines == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 256;
			a->lines = realloc(a->lines, a->cap * sizeof(*a->lines));
			if (!a->lines)
				die(2, "out of memory");
		}
		a->lines[a->nlines++] = l;
	}
	fclose(f);
}

static bool is_allowed(const struct allowed *a, uint64_t x, uint64_t v)
{
	size_t i;
	int m;

	if (v == 0 && a->zero)
		return true;
	for (m = 0; m < a->nmaps; m++)
		if (x < a->map_sectors[m] && a->maps[m][x] == v)
			return true;
	if (v == GARBAGE)
		return false;
	for (i = 0; i < a->nlines; i++) {
		const struct jline *l = &a->lines[i];

		if (x >= l->first && x < l->first + l->nr && encode(l->w, x - l->first) == v)
			return true;
	}
	return false;
}

/* What verify reads: a device or file, or a volume of a pool through the engine. */
struct source {
	int fd;			/* the device, or the pool's data device */
	const char *what;
	struct dd_dev *mdev;	/* the pool's metadata, or NULL for a device */
	struct dd_bm *bm;
	struct dd_pool *pool;
	struct dd_volume *vol;
	char *block;		/* one 4 KiB block (a partial last block) */
};

static void quiet_engine(enum dd_log_level lvl, const char *msg)
{
	(void)lvl;
	(void)msg;
}

/* Opens volume ID of the pool on META,DATA read-only; exit 3 if it has none. */
static void source_open_pool(struct source *s, const char *pool, const char *id_str)
{
	struct dd_bm_opts ro = { .read_only = true };
	char *meta = strdup(pool), *data, *end;
	struct dd_pool_stats st;
	unsigned long id;
	int r;

	if (!meta)
		die(2, "out of memory");
	data = strchr(meta, ',');
	if (!data)
		die(2, "--pool %s: want META,DATA", pool);
	*data++ = 0;
	errno = 0;
	id = strtoul(id_str, &end, 10);
	if (errno || *end || end == id_str || id > UINT32_MAX)
		die(2, "verify --pool: '%s' is not a volume id", id_str);
	dd_set_log_hook(quiet_engine);
	r = dd_dev_file_open(meta, true, &s->mdev);
	if (r)
		die(2, "%s: %s", meta, strerror(-r));
	r = dd_bm_create(s->mdev, &ro, &s->bm);
	if (r)
		die(2, "%s: %s", meta, strerror(-r));
	/* A writable open, as the kernel's after a crash: the journal replayed, the
	 * deletes and snapshots a crash interrupted taken up, the scanner's state
	 * read; the block manager keeps what it writes in memory. */
	r = dd_pool_open(s->bm, 0, NULL, &s->pool);
	if (r)
		die(2, "%s: the pool does not open: %s", meta, strerror(-r));
	dd_pool_get_stats(s->pool, &st);
	if (st.mode != DD_MODE_RW || st.needs_check)
		die(2, "%s: the pool opens %s%s, not read-write", meta,
		    st.mode == DD_MODE_RW ? "read-write" : "read-only or failed",
		    st.needs_check ? " with needs_check" : "");
	r = dd_volume_open(s->pool, (u32)id, &s->vol);
	if (r == -ENOENT) {
		printf("verify: the pool on %s has no volume %lu\n", meta, id);
		exit(3);
	}
	if (r)
		die(2, "%s: volume %lu does not open: %s", meta, id, strerror(-r));
	s->fd = open(data, O_RDONLY);
	if (s->fd < 0)
		die(2, "%s: %s", data, strerror(errno));
	s->what = data;
	if (posix_memalign((void **)&s->block, 4096, 4096))
		die(2, "out of memory");
	free(meta);
}

static void source_close(struct source *s)
{
	close(s->fd);
	if (!s->mdev)
		return;
	dd_volume_close(s->vol);
	dd_pool_close(s->pool);
	dd_bm_destroy(s->bm);
	dd_dev_destroy(s->mdev);
	free(s->block);
}

/* Reads NR sectors from sector X (X a multiple of a block). */
static void source_read(struct source *s, char *buf, uint64_t nr, uint64_t x)
{
	uint64_t done;

	if (!s->vol) {
		read_all(s->fd, buf, nr * SECTOR, x * SECTOR, s->what);
		return;
	}
	for (done = 0; done < nr; done += BLOCK_SECTORS) {
		uint64_t n = nr - done < BLOCK_SECTORS ? nr - done : BLOCK_SECTORS;
		uint64_t lbn = (x + done) / BLOCK_SECTORS;
		struct dd_mapping m;
		int r = dd_map_lookup(s->vol, lbn, 0, &m);

		if (r)
			die(2, "volume %u, block %" PRIu64 ": lookup: %s", dd_volume_id(s->vol),
			    lbn, strerror(-r));
		if (!m.mapped) {
			memset(buf + done * SECTOR, 0, n * SECTOR);
			continue;
		}
		read_all(s->fd, s->block, 4096, m.pbn * 4096, s->what);
		memcpy(buf + done * SECTOR, s->block, n * SECTOR);
	}
}

static int cmd_verify(int argc, char **argv)
{
	struct allowed a = { .nmaps = 0 };
	const char *dev, *out = NULL, *name = NULL, *pool = NULL;
	uint64_t sectors = 0, x, bad = 0, *buf, *map;
	const uint64_t chunk = 2048;	/* sectors per read */
	struct source src = { .fd = -1 };
	int i;

	if (argc < 1)
		usage();
	dev = name = argv[0];
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--map") && i + 1 < argc)
			load_map(&a, argv[++i]);
		else if (!strcmp(argv[i], "--journal") && i + 1 < argc)
			load_journal(&a, argv[++i]);
		else if (!strcmp(argv[i], "--zero"))
			a.zero = true;
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--pool") && i + 1 < argc)
			pool = argv[++i];
		else if (!strcmp(argv[i], "--sectors") && i + 1 < argc)
			sectors = parse_u64("--sectors", argv[++i]);
		else
			usage();
	}
	if (!pool && sectors)
		die(2, "verify: --sectors is for --pool only (a device has its own size)");
	if (pool) {
		if (!sectors || sectors > (UINT64_C(1) << 40))
			die(2, "verify --pool: --sectors N (the volume's size, at most 2^40) is needed");
		source_open_pool(&src, pool, dev);
	} else {
		src.fd = open_dev(dev, O_RDONLY, &sectors);
		src.what = dev;
	}
	if (posix_memalign((void **)&buf, 4096, chunk * SECTOR))
		die(2, "out of memory");
	map = malloc(sectors * 8 + 8);
	if (!map)
		die(2, "out of memory");
	for (x = 0; x < sectors; x += chunk) {
		uint64_t n = sectors - x < chunk ? sectors - x : chunk, s;

		source_read(&src, (char *)buf, n, x);
		for (s = 0; s < n; s++) {
			uint64_t v = decode(buf + s * (SECTOR / 8));

			map[x + s] = v;
			if (is_allowed(&a, x + s, v))
				continue;
			if (bad++ < 10) {
				char got[96], want[96] = "nothing";
				int m;

				describe(v, got, sizeof(got));
				for (m = 0; m < a.nmaps; m++)
					if (x + s < a.map_sectors[m]) {
						describe(a.maps[m][x + s], want, sizeof(want));
						break;
					}
				printf("verify %s: sector %" PRIu64 " (block %" PRIu64 "): read %s; "
				       "the map before held %s%s\n", name, x + s, (x + s) / BLOCK_SECTORS,
				       got, want, a.nlines ? " (no journalled write matches)" : "");
			}
		}
	}
	source_close(&src);
	if (out) {
		FILE *f = fopen(out, "wb");

		if (!f || fwrite(map, 8, sectors, f) != sectors || fclose(f))
			die(2, "%s: %s", out, strerror(errno));
	}
	if (bad) {
		printf("verify %s: %" PRIu64 " of %" PRIu64 " sectors wrong\n", name, bad, sectors);
		return 1;
	}
	return 0;
}

static int cmd_flush(const char *dev)
{
	uint64_t sectors;
	int fd = open_dev(dev, O_RDWR, &sectors);

	if (fsync(fd))
		die(2, "%s: fsync: %s", dev, strerror(errno));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "write"))
		return cmd_write(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	if (!strcmp(argv[1], "flush") && argc == 3)
		return cmd_flush(argv[2]);
	usage();
}
