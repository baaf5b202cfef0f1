/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kshim <linux/log2.h>: ilog2() and roundup_pow_of_two() with the kernel's
 * run-time semantics (ilog2(0) is -1; roundup_pow_of_two() computes in
 * unsigned long).
 */
#ifndef KSHIM_LINUX_LOG2_H
#define KSHIM_LINUX_LOG2_H

#include <linux/types.h>

static inline int kshim_fls64(u64 x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}

#define ilog2(n)		(kshim_fls64((u64)(n)) - 1)
#define is_power_of_2(n)	((n) != 0 && (((n) & ((n) - 1)) == 0))

static inline unsigned long roundup_pow_of_two(unsigned long n)
{
	return 1UL << kshim_fls64(n - 1);
}

static inline unsigned long rounddown_pow_of_two(unsigned long n)
{
	return 1UL << (kshim_fls64(n) - 1);
}

#endif
