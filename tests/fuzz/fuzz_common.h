/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the libFuzzer targets and the seed generator: valid base pool
 * images (built once per process, on the RAM device), the patch language
 * that turns fuzzer input into a damaged copy of one, and read-only walks.
 *
 * Input of fuzz_open and fuzz_check (tests/fuzz/README.md):
 *   byte 0   image number (low 2 bits), bm cache small (bit 4), check window
 *            small (bit 5), bm eager (bit 6)
 *   byte 1   flags FZ_F_*
 *   byte 2   fault parameter (rw phase of fuzz_open)
 *   byte 3   number of operations n (fuzz_open, at most FZ_MAX_OPS)
 *   n * 4    operations: opcode, volume, 16-bit argument
 *   rest     patches, each: u16 block, u16 offset, u8 mode, payload
 */
#ifndef DD_FUZZ_COMMON_H
#define DD_FUZZ_COMMON_H

#include "ddtest.h"
#include "dd-walk.h"

#define FZ_NR_IMAGES	4
#define FZ_MAX_PATCHES	64
#define FZ_MAX_OPS	24
/* The checker is linear in the data device (about 1 us per block here):
 * images claiming more are not checked. */
#define FZ_MAX_DATA	4096

/* byte 1 */
#define FZ_F_FIX_JOURNAL	(1u << 0)	/* recompute journal + superblock checksums */
#define FZ_F_RW			(1u << 1)	/* fuzz_open: also open read-write */
#define FZ_F_IGNORE_CHECK	(1u << 2)	/* rw open with DD_OPEN_IGNORE_CHECK */
#define FZ_F_ORACLE		(1u << 3)	/* check before and after the rw phase */
#define FZ_F_FAULT_SHIFT	4		/* bits 4-5: none, fail read, fail write, crash */
#define FZ_F_STICKY		(1u << 6)
#define FZ_F_ABORT		(1u << 7)	/* abort instead of the final commit */

/* patch mode */
#define FZ_P_SET	0
#define FZ_P_XOR	1
#define FZ_P_ADD	2	/* little-endian add of the payload (1..8 bytes) */
#define FZ_P_COPY	3	/* payload: u16 selector of the source block */
#define FZ_P_OP_MASK	3
#define FZ_P_FIX_CSUM	(1u << 2)
#define FZ_P_FIX_HOME	(1u << 3)	/* header.blocknr = this block */
#define FZ_P_LEN_SHIFT	4		/* payload length - 1 (1..16) */

struct fz_image {
	const char *name;
	struct dd_ramdev *rd;
	u64 nr_blocks;
	u32 nr_used;		/* blocks that are not all zero */
	u32 *used;
};

const struct fz_image *fz_image(unsigned i);

struct fz_in {
	const u8 *p;
	size_t n;
};

static inline u8 fz_u8(struct fz_in *in)
{
	u8 v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static inline u16 fz_u16(struct fz_in *in)
{
	u16 lo = fz_u8(in);

	return (u16)(lo | (fz_u8(in) << 8));
}

/* Silences engine log lines (the fuzzer provokes thousands), unless
 * FZ_VERBOSE is set in the environment (reproducing a crash). */
void fz_quiet(void);
bool fz_verbose(void);

/*
 * A patched image: a copy-on-write overlay over a base image (copying the
 * whole RAM device for every input would cost more than the test).  Its
 * device is writable; fz_ovl_ramdev() makes a full RAM device copy when a
 * fault must be injected.
 */
struct fz_ovl;
struct fz_ovl *fz_patched(const struct fz_image *img, struct fz_in *in, bool fix_journal);
struct dd_dev *fz_ovl_dev(struct fz_ovl *o);
struct dd_ramdev *fz_ovl_ramdev(struct fz_ovl *o);
void fz_ovl_free(struct fz_ovl *o);

/* False if either superblock slot claims a data device over FZ_MAX_DATA. */
bool fz_sane(struct dd_dev *dev);
/* dd_check over the device (read-only); returns the number of errors. */
u64 fz_check(struct dd_dev *dev, u64 max_memory, struct dd_check_result *res);
/* Reads everything reachable through the API, each loop bounded.  Returns
 * the first error that a consistent pool would never return, else 0. */
int fz_walk(struct dd_pool *pool, u32 max_entries);

/* Seeds: writes one file per interesting input into dir (gen_seeds). */
void fz_seed_patches(void (*emit)(void *ctx, const u8 *data, size_t len), void *ctx);

#define FZ_DIE(...) do { fprintf(stderr, "fuzz oracle: " __VA_ARGS__); \
		fprintf(stderr, "\n"); abort(); } while (0)

#endif
