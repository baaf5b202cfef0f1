// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl import SOURCE POOL VOLUME: copies a disk, a partition or a raw image (a
 * physical machine's disk: P2V) into a new volume of the pool.  The source is opened
 * read-only.  Blocks of zeroes are not written (a new volume reads zeroes already),
 * nor blocks in the free space of an ext2/3/4 filesystem (source.c) unless
 * --all-blocks.  The rest goes to the volume in runs, with O_DIRECT.  A qcow2, vmdk,
 * vdi, vhdx or vpc image is attached read-only through qemu-nbd first (nbd.c).
 *
 * Dedup at import: before each chunk is written, the hashes of its blocks go to the
 * pool (the import_hint message, docs/dm-dedup.rst); the pool holds the write of each
 * block it holds a copy of, compares the bytes and maps the block to that copy instead
 * of writing it.  import_done ends it and says how many blocks were shared.
 *
 * Reads: a thread of their own (reader.c) reads the source a few chunks ahead, only
 * the span of each chunk that holds blocks in use (a chunk of free blocks is not read
 * at all), O_DIRECT where it can (DEDUPCTL_IMPORT_DIRECT=0: buffered), and sorts and
 * hashes the blocks, so that reading overlaps the hints and the writes.
 * DEDUPCTL_PROFILE=1 in the environment prints where the time went at the end.
 *
 * Resumable: the volume's label record is IMPORTING with import_next, the source
 * block before which everything is durable.  Every CHECKPOINT_BYTES (or 5 s) the
 * volume is flushed (a completed flush is durable in the pool) and then import_next
 * is written to the label; after a kill or a crash the same command starts again at
 * import_next, rewriting at most the blocks after it, which is harmless.
 *
 * The pool's lock (label_begin) is held while the volume is made, at each checkpoint
 * and for the final record, never across the copy: each takes the lock, re-reads the
 * label (other commands change it meanwhile), updates this volume's record (by id:
 * it may have been renamed) and writes it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dedupctl.h"
#include "reader.h"
#include "source.h"
#include "dm-dedup/format.h"

#define CHUNK_BLOCKS		DD_CHUNK_BLOCKS		/* read 1 MiB at a time */
#define CHECKPOINT_BYTES	(256ULL << 20)
#define CHECKPOINT_SECONDS	5.0

struct import {
	struct dd_source *src;
	int vol_fd;
	const char *pool;		/* the pool's dm name */
	uint32_t vol_id;
	bool hints;			/* dedup at import: import_hint before each chunk */
	uint64_t shared;		/* blocks the pool shared instead of writing */
	char *msg;			/* the import_hint message */
	uint64_t blocks, next;		/* source blocks, the next one to look at */
	uint64_t read, written, zero, free_skipped;
	uint64_t rate;			/* bytes/s read, 0 = unlimited */
	double start, last_progress;
	uint64_t start_block;
	struct dd_reader *reader;	/* the source's reader thread, during copy() */
	struct dd_reader_stats rst;	/* its figures, at the end */
	uint64_t read_bytes;		/* bytes read from the source */
	double t_read, t_hint, t_write, t_flush;	/* DEDUPCTL_PROFILE; t_read: waits */
	bool tty;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(struct import *im, bool last)
{
	double t = now(), el = t - im->start;
	double done = (double)(im->next - im->start_block), todo = (double)(im->blocks - im->next);
	double rate = el > 0 ? done * BLOCK / el : 0;
	char a[32], b[32], c[32];

	if (!last && t - im->last_progress < (im->tty ? 0.5 : 5.0))
		return;
	im->last_progress = t;
	if (opt_quiet || opt_json)
		return;
	human_size(im->next * BLOCK, a, sizeof(a));
	human_size(im->blocks * BLOCK, b, sizeof(b));
	human_size((uint64_t)rate, c, sizeof(c));
	if (rate > 0 && !last) {
		long eta = (long)(todo * BLOCK / rate);

		printf("%simport: %5.1f %%  %s of %s  %s/s  ETA %ld:%02ld:%02ld%s",
		       im->tty ? "\r" : "", 100.0 * (double)im->next / (double)im->blocks, a, b, c,
		       eta / 3600, eta / 60 % 60, eta % 60, im->tty ? "  " : "\n");
	} else {
		printf("%simport: %5.1f %%  %s of %s  %s/s%s", im->tty ? "\r" : "",
		       100.0 * (double)im->next / (double)im->blocks, a, b, c,
		       im->tty ? (last ? "\n" : "  ") : "\n");
	}
	fflush(stdout);
}

/* Sleeps as long as reading BYTES more may take at the rate limit. */
static void throttle(struct import *im)
{
	double want, el;

	if (!im->rate)
		return;
	want = (double)im->read * BLOCK / (double)im->rate;
	el = now() - im->start;
	if (want > el)
		usleep((useconds_t)((want - el) * 1e6));
}

/* Under the lock, from the label the device holds: this import's record, updated to
 * IMPORTING at NEXT (import_bytes kept), or finished (OK). */
static int record(struct import *im, struct pool_label *pl, const char *name, bool done)
{
	struct ddl_vol *v;
	int r = label_begin(pl);

	if (r)
		return r;
	v = label_find_id(pl, im->vol_id);
	if (!v || le32toh(v->state) != DDL_VOL_IMPORTING) {
		r = err(-ENOENT, "import of %s: its volume (id %u) is no longer importing in the "
			"label of pool %s", name, im->vol_id, pl->hdr.name);
	} else {
		v->import_next = htole64(done ? 0 : im->next);
		if (done) {
			v->state = htole32(DDL_VOL_OK);
			v->import_bytes = 0;
		}
		r = label_write(pl);
	}
	label_end(pl);
	return r;
}

static int flush_and_record(struct import *im, struct pool_label *pl, const char *name)
{
	if (fdatasync(im->vol_fd))
		return err(-errno, "volume %s: flush: %s", name, strerror(errno));
	return record(im, pl, name, false);
}

/* SIGINT, SIGTERM, SIGHUP: stop at the next chunk, so that an image's qemu-nbd is
 * detached; the last checkpoint stays, and the same command resumes there. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* "hinted H shared S missed M": S, the blocks shared at import so far. */
static void hint_reply(struct import *im, const char *resp)
{
	const char *p = resp ? strstr(resp, "shared ") : NULL;

	if (p)
		im->shared = strtoull(p + 7, NULL, 10);
}

/* Names the hashes (the reader's) of the chunk's blocks to be written (the others "-"). */
static void send_hints(struct import *im, const struct dd_chunk *c)
{
	static const char hex[] = "0123456789abcdef";
	char *resp = NULL, *p = im->msg;
	int r;

	if (!im->hints)
		return;
	p += sprintf(p, "import_hint %u %" PRIu64, im->vol_id, c->first);
	for (uint64_t i = 0; i < c->n; i++) {
		*p++ = ' ';
		if (c->kind[i] != DD_BLK_DATA) {
			*p++ = '-';
			continue;
		}
		for (int s = 60; s >= 0; s -= 4)
			*p++ = hex[c->hash[i] >> s & 15];
	}
	*p = 0;
	r = dmc_message(im->pool, im->msg, &resp);
	if (r) {
		/* Savings only: the blocks are written as they are. */
		info("import: the pool does not share at import (%s): writing every block",
		     strerror(-r));
		im->hints = false;
		dd_reader_no_hash(im->reader);
	}
	hint_reply(im, resp);
	free(resp);
}

/* Ends the pool's side of the import (after the last write). */
static void end_hints(struct import *im)
{
	char msg[64], *resp = NULL;

	if (!im->hints)
		return;
	snprintf(msg, sizeof(msg), "import_done %u", im->vol_id);
	if (!dmc_message(im->pool, msg, &resp))
		hint_reply(im, resp);
	free(resp);
	im->hints = false;
}

/* Writes the chunk's data blocks, in runs. */
static int write_chunk(struct import *im, const struct dd_chunk *c, const char *vdev)
{
	for (uint64_t i = 0, j; i < c->n; i = j) {
		if (c->kind[i] != DD_BLK_DATA) {
			if (c->kind[i] == DD_BLK_FREE)
				im->free_skipped++;
			else
				im->zero++;
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < c->n && c->kind[j] == DD_BLK_DATA; j++)
			;
		for (size_t off = 0; off < (j - i) * BLOCK;) {
			ssize_t k = pwrite(im->vol_fd, c->buf + i * BLOCK + off,
					   (j - i) * BLOCK - off, (off_t)((c->first + i) * BLOCK + off));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return err(k < 0 ? -errno : -EIO, "%s: write at byte %" PRIu64 ": %s",
					   vdev, (c->first + i) * BLOCK + off,
					   k < 0 ? strerror(errno) : "short write");
			off += (size_t)k;
		}
		im->written += j - i;
	}
	return 0;
}

static int copy(struct import *im, struct pool_label *pl, const char *name, const char *vdev)
{
	const char *d = getenv("DEDUPCTL_IMPORT_DIRECT");
	unsigned int flags = (d && !strcmp(d, "0") ? 0 : DD_READER_DIRECT) |
			     (im->hints ? DD_READER_HASH : 0);
	double last_cp = now();
	uint64_t since_cp = 0;
	int r;

	r = dd_reader_start(im->src, im->next, flags, DD_INDEX_SEED, &im->reader);
	if (r)
		return err(r, "source: the reader thread: %s", strerror(-r));
	while (!r && im->next < im->blocks) {
		struct dd_chunk *c;
		double t0 = now(), t1;

		if (stop_signal) {
			r = err(-EINTR, "import of %s stopped by signal %d: run the same command "
				"to resume", name, (int)stop_signal);
			break;
		}
		c = dd_reader_next(im->reader);
		t1 = now();
		im->t_read += t1 - t0;
		if (!c || c->first != im->next) {	/* cannot happen: the chunks come in order */
			r = err(-EIO, "source: the reader stopped before block %" PRIu64, im->next);
			break;
		}
		if (c->err) {
			r = err(c->err, "source: read at byte %" PRIu64 ": %s", c->err_at,
				c->err == -ENODATA ? "end of file" : strerror(-c->err));
			break;
		}
		im->read += c->read_blocks;	/* blocks read, as --rate counts them */
		im->read_bytes += c->read_bytes;
		send_hints(im, c);
		t0 = now();
		im->t_hint += t0 - t1;
		r = write_chunk(im, c, vdev);
		t1 = now();
		im->t_write += t1 - t0;
		dd_reader_put(im->reader, c);
		if (r)
			break;
		im->next += c->n;
		since_cp += c->n * BLOCK;
		if (since_cp >= CHECKPOINT_BYTES || t1 - last_cp >= CHECKPOINT_SECONDS) {
			r = flush_and_record(im, pl, name);
			since_cp = 0;
			last_cp = now();
			im->t_flush += last_cp - t1;
		}
		progress(im, false);
		throttle(im);
	}
	dd_reader_stats(im->reader, &im->rst);
	dd_reader_stop(im->reader);
	im->reader = NULL;
	return r;
}

int cmd_import(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "all-blocks", no_argument, NULL, 'a' },
		{ "domain", required_argument, NULL, 'd' },
		{ "raw", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	struct import im = { .vol_fd = -1 };
	struct pool_label pl;
	struct ddl_vol *v;
	char serr[256], vdev[200], a[32];
	const char *name, *source, *fmt = NULL;
	char nbd[32] = "";
	bool raw = false;
	unsigned int flags = 0;
	uint64_t rate = 0, dom = 0;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == 'r') {
			if (parse_size(optarg, &rate))
				return err(-EINVAL, "bad --rate %s (MiB/s)", optarg);
		} else if (o == 'a') {
			flags |= DD_SRC_ALL;
		} else if (o == 'd') {
			if (parse_size(optarg, &dom) || dom > 255)
				return err(-EINVAL, "bad --domain %s (0..255)", optarg);
		} else if (o == 'R') {
			raw = true;
		} else {
			return -EINVAL;
		}
	}
	if (argc - optind != 3)
		return -EINVAL;
	name = argv[optind + 2];
	im.rate = rate << 20;
	{
		struct sigaction sa = { .sa_handler = on_stop };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	/* A qcow2, vmdk, ... image is read through qemu-nbd (nbd.c), unless --raw. */
	source = argv[optind];
	if (!raw)
		fmt = image_format(source);
	if (fmt) {
		r = nbd_attach(source, fmt, nbd, sizeof(nbd));
		if (r)
			return r;
		source = nbd;
	}
	r = dd_source_open(source, flags, &im.src, serr, sizeof(serr));
	if (r) {
		r = err(r, "%s", serr);
		goto out_nbd;
	}
	im.blocks = dd_source_blocks(im.src);
	r = pool_open_active(argv[optind + 1], &pl);
	if (r) {
		label_free(&pl);
		goto out_src;
	}
	/* locked from the look-up to the open of the volume; label_free() lets it go */
	r = label_begin(&pl);
	if (r)
		goto out;
	v = label_find(&pl, name);
	if (v && (le32toh(v->state) != DDL_VOL_IMPORTING ||
		  le64toh(v->import_bytes) != dd_source_size(im.src))) {
		r = err(-EEXIST, "pool %s has a volume %s already (and it is not an unfinished "
			"import of a source of this size)", pl.hdr.name, name);
		goto out;
	}
	if (v) {
		im.next = le64toh(v->import_next);
		human_size(im.next * BLOCK, a, sizeof(a));
		info("import: resuming %s at %s", name, a);
	} else {
		if (!im.blocks) {
			r = err(-EINVAL, "%s is empty", argv[optind]);
			goto out;
		}
		r = volume_new(&pl, name, im.blocks * (BLOCK / SECTOR), (uint32_t)dom, NULL,
			       DDL_VOL_IMPORTING, true);
		if (r)
			goto out;
		v = label_find(&pl, name);
		v->import_bytes = htole64(dd_source_size(im.src));
		v->import_next = 0;
		r = label_write(&pl);
		if (r)
			goto out;
	}
	if (!opt_quiet && !opt_json)
		dd_source_describe(im.src, stdout);
	r = volume_activate(&pl, v);
	if (r)
		goto out;
	volume_dm_name(&pl, v, vdev + 12, sizeof(vdev) - 12);
	memcpy(vdev, "/dev/mapper/", 12);
	im.vol_fd = open(vdev, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (im.vol_fd < 0) {
		r = err(-errno, "%s: %s", vdev, strerror(errno));
		goto out;
	}
	im.pool = pl.hdr.name;
	im.vol_id = le32toh(v->id);
	label_end(&pl);		/* v is stale after the next label_begin() */
	v = NULL;
	im.msg = malloc(64 + CHUNK_BLOCKS * 17);
	im.hints = im.msg != NULL;
	if (im.hints) {
		/* An import killed before its end left its hints: forget them. */
		char msg[64];

		snprintf(msg, sizeof(msg), "import_done %u", im.vol_id);
		(void)dmc_message(im.pool, msg, NULL);
	}
	im.tty = isatty(STDOUT_FILENO);
	im.start = now();
	im.start_block = im.next;
	r = copy(&im, &pl, name, vdev);
	end_hints(&im);
	if (!r && fdatasync(im.vol_fd))
		r = err(-errno, "%s: flush: %s", vdev, strerror(errno));
	if (!r)
		r = record(&im, &pl, name, true);
	if (!r) {
		double el = now() - im.start;

		progress(&im, true);
		if (opt_json)
			printf("{\"volume\": \"%s\", \"blocks\": %" PRIu64 ", \"read\": %" PRIu64
			       ", \"written\": %" PRIu64 ", \"skipped_zero\": %" PRIu64
			       ", \"skipped_free\": %" PRIu64 ", \"shared_at_import\": %" PRIu64
			       ", \"seconds\": %.2f}\n", json_esc(name), im.blocks, im.read,
			       im.written - im.shared, im.zero, im.free_skipped, im.shared, el);
		else
			info("import: %s done in %.1f s: blocks read %" PRIu64 ", written %" PRIu64
			     ", skipped as zero %" PRIu64 ", skipped as free %" PRIu64
			     ", shared at import %" PRIu64, name, el, im.read,
			     im.written - im.shared, im.zero, im.free_skipped, im.shared);
		if (getenv("DEDUPCTL_PROFILE"))
			fprintf(stderr, "import profile: %.2f s: read waits %.2f s (%" PRIu64
				" bytes; reader thread busy %.2f s, of which sorting and hashes"
				" %.2f s; %s), hints %.2f s, writes %.2f s, checkpoints %.2f s,"
				" the rest %.2f s\n", el, im.t_read, im.read_bytes, im.rst.busy,
				im.rst.hash, im.rst.direct ? "O_DIRECT" : "buffered", im.t_hint,
				im.t_write, im.t_flush,
				el - im.t_read - im.t_hint - im.t_write - im.t_flush);
	}
out:
	end_hints(&im);
	free(im.msg);
	if (im.vol_fd >= 0)
		close(im.vol_fd);
	label_free(&pl);
out_src:
	dd_source_close(im.src);
out_nbd:
	if (nbd[0])
		nbd_detach(nbd);
	return r;
}
