/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace environment of the dm-dedup engine: the same primitives that
 * kernel/dd-env.h provides in the kernel, mapped onto libc.  The
 * engine sources include "dd-env.h" and contain no #ifdef for either side.
 */
#ifndef DD_ENV_USERSPACE_H
#define DD_ENV_USERSPACE_H

#include <endian.h>
#include <errno.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

#define le16_to_cpu(x) le16toh(x)
#define le32_to_cpu(x) le32toh(x)
#define le64_to_cpu(x) le64toh(x)
#define cpu_to_le16(x) htole16(x)
#define cpu_to_le32(x) htole32(x)
#define cpu_to_le64(x) htole64(x)

#ifndef EWOULDBLOCK
#define EWOULDBLOCK EAGAIN
#endif

/* Memory: the engine never allocates on the I/O path of a fast lookup. */
static inline void *dd_alloc(size_t size) { return malloc(size); }
static inline void *dd_zalloc(size_t size) { return calloc(1, size); }
static inline void dd_free(void *p) { free(p); }

u32 dd_crc32c(u32 seed, const void *data, size_t len);

static inline unsigned dd_popcount64(u64 x) { return (unsigned)__builtin_popcountll(x); }

static inline u64 dd_div_u64_rem(u64 n, u32 d, u32 *rem)
{
	*rem = (u32)(n % d);
	return n / d;
}

static inline u64 dd_div64_u64(u64 n, u64 d) { return n / d; }

void dd_random_bytes(void *buf, size_t len);

/* Logging: tools and tests can silence or capture it (see dd_log_hook). */
enum dd_log_level { DD_LOG_ERR, DD_LOG_WARN, DD_LOG_INFO, DD_LOG_DEBUG };
extern void (*dd_log_hook)(enum dd_log_level lvl, const char *msg);
void dd_log(enum dd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define dd_err(fmt, ...) dd_log(DD_LOG_ERR, fmt, ##__VA_ARGS__)
#define dd_warn(fmt, ...) dd_log(DD_LOG_WARN, fmt, ##__VA_ARGS__)
#define dd_info(fmt, ...) dd_log(DD_LOG_INFO, fmt, ##__VA_ARGS__)

/* An engine bug: abort in userspace so tests and fuzzers catch it. */
#define DD_BUG_ON(c) do { if (c) { fprintf(stderr, "dm-dedup BUG at %s:%d: %s\n", \
		__FILE__, __LINE__, #c); abort(); } } while (0)

static inline void dd_cond_resched(void) { }

/* xxHash64, the scanner's block hash: libxxhash here, the kernel's xxh64()
 * there; tests/unit/test_xxh64.c proves they agree. */
static inline u64 dd_xxh64(const void *data, size_t len, u64 seed)
{
	return XXH64(data, len, seed);
}

#endif
