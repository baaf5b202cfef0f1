/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/hash.h>: the kernel's multiplicative hashes (64-bit build). */
#ifndef KSHIM_LINUX_HASH_H
#define KSHIM_LINUX_HASH_H

#include <linux/types.h>

#define GOLDEN_RATIO_32 0x61C88647
#define GOLDEN_RATIO_64 0x61C8864680B583EBull

/* The top 'bits' bits of the product (1 <= bits <= 32). */
static inline u32 hash_32(u32 val, unsigned int bits)
{
	return (val * GOLDEN_RATIO_32) >> (32 - bits);
}

static inline u32 hash_64(u64 val, unsigned int bits)
{
	return val * GOLDEN_RATIO_64 >> (64 - bits);
}

#endif
