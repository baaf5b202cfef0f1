/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel environment of the dm-dedup engine: the primitives the engine
 * sources (engine/dd-*.c) use, mapped onto kernel APIs.  Its userspace
 * twin is userspace/dd-env.h; the engine contains no #ifdef for either.
 *
 * The engine allocates with GFP_KERNEL: every caller runs it inside a
 * memalloc_noio_save() scope (worker, constructor, message handler), so
 * reclaim never recurses into the pool's own I/O.
 *
 * Allocations of up to two pages (a shadow block and its bookkeeping) are
 * __GFP_NOFAIL: the engine makes them in the middle of a change, where a
 * failure aborts the open transaction (read-only, needs_check, completed
 * writes dropped).  The kernel does not fail them for want of memory
 * anyway, except in a task that is being killed or was chosen by the OOM
 * killer: vmalloc, kvmalloc's fallback above a page, gives up at once on a
 * fatal signal, and the message handlers run in the caller's task (a
 * SIGKILLed `dmsetup message ... create_snap` under memory pressure did
 * that; tests/vm/41-killed-snapshot.sh).  Larger allocations may fail:
 * their callers fail before changing anything (open, resize, reservation
 * tables) or give up something advisory (discard passdown, scanner marks).
 */
#ifndef DD_ENV_KERNEL_H
#define DD_ENV_KERNEL_H

#include <linux/types.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/crc32c.h>
#include <linux/bitops.h>
#include <linux/math64.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/bug.h>
#include <linux/device-mapper.h>
#include <linux/xxhash.h>

#ifndef DM_MSG_PREFIX
#define DM_MSG_PREFIX "dedup"
#endif

static inline gfp_t dd_gfp(size_t size)
{
	return size <= 2 * PAGE_SIZE ? GFP_KERNEL | __GFP_NOFAIL : GFP_KERNEL;
}

static inline void *dd_alloc(size_t size) { return kvmalloc(size, dd_gfp(size)); }
static inline void *dd_zalloc(size_t size) { return kvzalloc(size, dd_gfp(size)); }
static inline void dd_free(void *p) { kvfree(p); }

static inline u32 dd_crc32c(u32 seed, const void *data, size_t len)
{
	return crc32c(seed, data, len);
}

static inline unsigned int dd_popcount64(u64 x) { return hweight64(x); }

static inline u64 dd_div_u64_rem(u64 n, u32 d, u32 *rem)
{
	return div_u64_rem(n, d, rem);
}

static inline u64 dd_div64_u64(u64 n, u64 d) { return div64_u64(n, d); }

static inline void dd_random_bytes(void *buf, size_t len) { get_random_bytes(buf, len); }

/* Engine messages can be provoked by bad metadata: always rate-limited. */
#define dd_err(fmt, ...)  DMERR_LIMIT(fmt, ##__VA_ARGS__)
#define dd_warn(fmt, ...) DMWARN_LIMIT(fmt, ##__VA_ARGS__)
#define dd_info(fmt, ...) DMINFO(fmt, ##__VA_ARGS__)

#define DD_BUG_ON(c) BUG_ON(c)

static inline void dd_cond_resched(void) { cond_resched(); }

/* xxHash64, the scanner's block hash (userspace: libxxhash, the same values). */
static inline u64 dd_xxh64(const void *data, size_t len, u64 seed)
{
	return xxh64(data, len, seed);
}

#endif
