// SPDX-License-Identifier: GPL-2.0
/*
 * The import's reader thread (reader.h).  A ring of DD_READER_CHUNKS buffers, each
 * FREE (the thread may fill it), FULL (read, waiting for the copy) or taken by the
 * copy; the thread fills them in order and the copy takes them in order, so one
 * mutex and two condition variables are the whole protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "reader.h"

#define BLK			((uint64_t)DD_SRC_BLOCK_SIZE)
#define READ_AHEAD_CHUNKS	4	/* buffered reads: asked for beyond the one read */

struct dd_reader {
	struct dd_source *src;
	int fd;				/* the source's, or our O_DIRECT one */
	int direct_fd;			/* -1 if O_DIRECT is not used (any more) */
	uint64_t seed;
	uint64_t next;			/* the first block of the next chunk to read */
	uint64_t ra_next;		/* buffered: POSIX_FADV_WILLNEED asked up to here */
	bool hash;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t filled, freed;
	bool stop, ended;		/* ended: the thread has published its last chunk */
	unsigned int head, tail;	/* chunks published, chunks taken */
	unsigned int put;		/* chunks given back */
	struct dd_chunk chunk[DD_READER_CHUNKS];

	double busy, t_hash;		/* the thread's own */
	struct dd_reader_stats stats;	/* under the lock: a copy at each chunk */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool all_zero(const char *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* The blocks of [b, b + n) from the first to the last in use: [*lo, *hi), empty if none. */
static void in_use_span(const struct dd_source *src, uint64_t b, uint64_t n, uint64_t *lo,
			uint64_t *hi)
{
	uint64_t i = 0, j = n;

	while (i < n && !dd_source_in_use(src, b + i))
		i++;
	while (j > i && !dd_source_in_use(src, b + j - 1))
		j--;
	*lo = i;
	*hi = j;
}

static uint64_t chunk_len(const struct dd_reader *r, uint64_t b)
{
	uint64_t left = dd_source_blocks(r->src) - b;

	return left < DD_CHUNK_BLOCKS ? left : DD_CHUNK_BLOCKS;
}

/* Buffered reads: the spans in use of the chunks before block UPTO are asked for, so
 * that the disk works while this thread hashes. */
static void read_ahead(struct dd_reader *r, uint64_t upto)
{
	uint64_t blocks = dd_source_blocks(r->src);

	if (upto > blocks)
		upto = blocks;
	if (r->ra_next < r->next)
		r->ra_next = r->next;
	while (r->ra_next < upto) {
		uint64_t n = chunk_len(r, r->ra_next), lo, hi;

		in_use_span(r->src, r->ra_next, n, &lo, &hi);
		if (hi > lo)
			(void)posix_fadvise(r->fd, (off_t)((r->ra_next + lo) * BLK),
					    (off_t)((hi - lo) * BLK), POSIX_FADV_WILLNEED);
		r->ra_next += n;
	}
}

/* O_DIRECT refused (EINVAL: a file system without it, an unaligned request): from
 * now on the source's own buffered descriptor. */
static void drop_direct(struct dd_reader *r)
{
	close(r->direct_fd);
	r->direct_fd = -1;
	r->fd = dd_source_fd(r->src);
}

/* Reads bytes [off, off + want) into P; the length asked is rounded up to whole
 * blocks for O_DIRECT (the source ends inside the last one: a short read). */
static int read_span(struct dd_reader *r, char *p, uint64_t off, size_t want, size_t *got,
		     uint64_t *err_at)
{
	size_t asked = (want + BLK - 1) / BLK * BLK;

	*got = 0;
	while (*got < want) {
		ssize_t k = pread(r->fd, p + *got, asked - *got, (off_t)(off + *got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL && r->direct_fd >= 0) {
			drop_direct(r);
			continue;
		}
		if (k <= 0) {
			*err_at = off + *got;
			return k < 0 ? -errno : -ENODATA;
		}
		*got += (size_t)k;
	}
	return 0;
}

/* Reads and sorts the chunk at r->next into C. */
static void fill(struct dd_reader *r, struct dd_chunk *c)
{
	uint64_t n = chunk_len(r, r->next), lo, hi, size = dd_source_size(r->src);
	size_t want, got = 0;
	double t;

	c->first = r->next;
	c->n = n;
	c->err = 0;
	in_use_span(r->src, c->first, n, &lo, &hi);
	if (r->direct_fd < 0)
		read_ahead(r, r->next + (1 + READ_AHEAD_CHUNKS) * DD_CHUNK_BLOCKS);
	if (hi > lo) {
		want = size - (c->first + lo) * BLK;
		if (want > (hi - lo) * BLK)
			want = (hi - lo) * BLK;
		/* the last block may be partial: its tail reads zero */
		if (want % BLK)
			memset(c->buf + lo * BLK + want / BLK * BLK, 0, BLK);
		c->err = read_span(r, c->buf + lo * BLK, (c->first + lo) * BLK, want, &got,
				   &c->err_at);
	}
	c->read_blocks = hi - lo;
	c->read_bytes = got;
	t = now();
	for (uint64_t i = 0; i < n; i++) {
		const char *b = c->buf + i * BLK;

		if (i < lo || i >= hi || !dd_source_in_use(r->src, c->first + i)) {
			c->kind[i] = DD_BLK_FREE;
		} else if (all_zero(b, BLK)) {
			c->kind[i] = DD_BLK_ZERO;
		} else {
			c->kind[i] = DD_BLK_DATA;
			if (__atomic_load_n(&r->hash, __ATOMIC_RELAXED))
				c->hash[i] = XXH64(b, BLK, r->seed);
		}
	}
	r->t_hash += now() - t;
}

static void *reader_main(void *arg)
{
	struct dd_reader *r = arg;
	uint64_t blocks = dd_source_blocks(r->src);
	bool last = false;

	while (!last) {
		struct dd_chunk *c;
		double t;

		pthread_mutex_lock(&r->lock);
		while (!r->stop && r->head - r->put == DD_READER_CHUNKS)
			pthread_cond_wait(&r->freed, &r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		c = &r->chunk[r->head % DD_READER_CHUNKS];
		pthread_mutex_unlock(&r->lock);

		t = now();
		fill(r, c);
		r->busy += now() - t;
		r->next += c->n;
		last = c->err || r->next >= blocks;

		pthread_mutex_lock(&r->lock);
		r->head++;
		r->stats.busy = r->busy;
		r->stats.hash = r->t_hash;
		r->stats.direct = r->direct_fd >= 0;
		pthread_cond_signal(&r->filled);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_lock(&r->lock);
	r->ended = true;
	pthread_cond_signal(&r->filled);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The source again, O_DIRECT (a new open file description of the same file). */
static int open_direct(const struct dd_source *src)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dd_source_fd(src));
	return open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

int dd_reader_start(struct dd_source *src, uint64_t from, unsigned int flags, uint64_t seed,
		    struct dd_reader **out)
{
	struct dd_reader *r = calloc(1, sizeof(*r));
	sigset_t all, old;
	int i, e;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->src = src;
	r->next = r->ra_next = from;
	r->seed = seed;
	r->hash = flags & DD_READER_HASH;
	r->direct_fd = flags & DD_READER_DIRECT ? open_direct(src) : -1;
	r->fd = r->direct_fd >= 0 ? r->direct_fd : dd_source_fd(src);
	r->stats.direct = r->direct_fd >= 0;
	for (i = 0; i < DD_READER_CHUNKS; i++) {
		if (posix_memalign((void **)&r->chunk[i].buf, BLK, DD_CHUNK_BLOCKS * BLK)) {
			e = -ENOMEM;
			goto bad;
		}
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->filled, NULL);
	pthread_cond_init(&r->freed, NULL);
	/* Signals go to the copy, which stops at the next chunk. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = -pthread_create(&r->thread, NULL, reader_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pthread_cond_destroy(&r->freed);
		pthread_cond_destroy(&r->filled);
		pthread_mutex_destroy(&r->lock);
		goto bad;
	}
	*out = r;
	return 0;
bad:
	for (i = 0; i < DD_READER_CHUNKS; i++)
		free(r->chunk[i].buf);
	if (r->direct_fd >= 0)
		close(r->direct_fd);
	free(r);
	return e;
}

struct dd_chunk *dd_reader_next(struct dd_reader *r)
{
	struct dd_chunk *c = NULL;

	pthread_mutex_lock(&r->lock);
	while (r->tail == r->head && !r->ended)
		pthread_cond_wait(&r->filled, &r->lock);
	if (r->tail != r->head)
		c = &r->chunk[r->tail++ % DD_READER_CHUNKS];
	pthread_mutex_unlock(&r->lock);
	return c;
}

void dd_reader_put(struct dd_reader *r, struct dd_chunk *c)
{
	(void)c;	/* in order: the oldest taken */
	pthread_mutex_lock(&r->lock);
	r->put++;
	pthread_cond_signal(&r->freed);
	pthread_mutex_unlock(&r->lock);
}

void dd_reader_no_hash(struct dd_reader *r)
{
	__atomic_store_n(&r->hash, false, __ATOMIC_RELAXED);
}

void dd_reader_stop(struct dd_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->freed);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->freed);
	pthread_cond_destroy(&r->filled);
	pthread_mutex_destroy(&r->lock);
	for (int i = 0; i < DD_READER_CHUNKS; i++)
		free(r->chunk[i].buf);
	if (r->direct_fd >= 0)
		close(r->direct_fd);
	free(r);
}

void dd_reader_stats(struct dd_reader *r, struct dd_reader_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->stats;		/* as of the last chunk published */
	pthread_mutex_unlock(&r->lock);
}
