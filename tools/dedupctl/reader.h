/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The import's reader: a thread that reads the source ahead of the copy into a small
 * ring of chunk buffers (DD_READER_CHUNKS of DD_CHUNK_BLOCKS blocks), so that reading
 * overlaps the hashing, the hints and the writes.  Of each chunk it reads only the
 * span from the first to the last block in use (source.h), with O_DIRECT where the
 * source takes it (buffered with POSIX_FADV_WILLNEED otherwise), and sorts each block
 * into free, zero or data, with the XXH64 of the data blocks when asked.
 *
 * The chunks come out in order.  A read error ends the stream with a chunk whose err
 * is set (the caller prints the line); the thread never prints and never takes a
 * signal (they are blocked in it).  Memory: DD_READER_CHUNKS MiB and a few KiB.
 *
 * Link with -pthread -lxxhash.
 */
#ifndef DD_READER_H
#define DD_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "source.h"

#define DD_CHUNK_BLOCKS		256	/* 1 MiB */
#define DD_READER_CHUNKS	4	/* buffers in the ring */

enum dd_block_kind { DD_BLK_FREE, DD_BLK_ZERO, DD_BLK_DATA };

struct dd_chunk {
	char *buf;			/* DD_CHUNK_BLOCKS blocks, 4 KiB aligned */
	uint64_t first, n;		/* source blocks [first, first + n) */
	uint64_t read_blocks;		/* blocks of the span read (--rate counts them) */
	uint64_t read_bytes;		/* bytes of it (the last block may be partial) */
	uint8_t kind[DD_CHUNK_BLOCKS];	/* enum dd_block_kind; buf holds only the data */
	uint64_t hash[DD_CHUNK_BLOCKS];	/* of the data blocks, if hashes were asked for */
	int err;			/* 0, or -errno: nothing after this chunk */
	uint64_t err_at;		/* the byte the read failed at */
};

struct dd_reader;

/* DD_READER_DIRECT: try O_DIRECT first (falls back to buffered reads by itself). */
#define DD_READER_DIRECT	(1u << 0)
#define DD_READER_HASH		(1u << 1)	/* XXH64 (seed) of every data block */

/*
 * Starts the thread at block FROM.  Returns 0, or -errno (the caller's message).
 * SRC must stay open until dd_reader_stop().
 */
int dd_reader_start(struct dd_source *src, uint64_t from, unsigned int flags, uint64_t seed,
		    struct dd_reader **out);
/* The next chunk, waiting for it; NULL after the last one (or after one with err). */
struct dd_chunk *dd_reader_next(struct dd_reader *r);
/* Gives the chunk of the last dd_reader_next() back to the ring. */
void dd_reader_put(struct dd_reader *r, struct dd_chunk *c);
/* Stops hashing from the next chunk on (the hashes are not wanted any more). */
void dd_reader_no_hash(struct dd_reader *r);
/* Stops the thread (at most one read still finishes), waits for it and frees R. */
void dd_reader_stop(struct dd_reader *r);

struct dd_reader_stats {
	double busy;			/* seconds the thread spent reading and hashing */
	double hash;			/* of which hashing and the zero checks */
	bool direct;			/* the reads were O_DIRECT (to the end) */
};
void dd_reader_stats(struct dd_reader *r, struct dd_reader_stats *st);

#endif /* DD_READER_H */
