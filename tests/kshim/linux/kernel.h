/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/kernel.h>: min(), max() and clamp() (the kernel's linux/minmax.h). */
#ifndef KSHIM_LINUX_KERNEL_H
#define KSHIM_LINUX_KERNEL_H

#include <linux/compiler.h>

/* Each argument once; arguments of different types do not compile, as in the kernel. */
#define __kshim_cmp(x, y, op) ({				\
	__auto_type __x = (x);					\
	__auto_type __y = (y);					\
	(void)(&__x == &__y);					\
	__x op __y ? __x : __y; })
#define min(x, y)	__kshim_cmp(x, y, <)
#define max(x, y)	__kshim_cmp(x, y, >)
#define clamp(v, lo, hi)	min(max(v, lo), hi)

#endif
