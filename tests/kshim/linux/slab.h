/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/slab.h>: the allocators over libc. */
#ifndef KSHIM_LINUX_SLAB_H
#define KSHIM_LINUX_SLAB_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kernel.h>	/* max(): the kernel's headers bring it in too */
#include <linux/types.h>

typedef unsigned int gfp_t;
#define GFP_KERNEL	0x0cc0u
#define GFP_NOIO	0x0c00u
#define __GFP_ZERO	0x100u

/* What the kernel returns for a zero-byte allocation: not NULL, not usable. */
#define ZERO_SIZE_PTR		((void *)16)
#define ZERO_OR_NULL_PTR(p)	((unsigned long)(p) <= (unsigned long)ZERO_SIZE_PTR)

/* Page-aligned, as a large kvmalloc is. */
static inline void *kvmalloc(size_t size, gfp_t flags)
{
	void *p;

	if (!size)
		return ZERO_SIZE_PTR;
	if (posix_memalign(&p, 4096, size))
		return NULL;
	if (flags & __GFP_ZERO)
		memset(p, 0, size);
	return p;
}

static inline void *kvcalloc(size_t n, size_t size, gfp_t flags)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kvmalloc(n * size, flags | __GFP_ZERO);
}

static inline void kvfree(const void *p)
{
	if (!ZERO_OR_NULL_PTR(p))
		free((void *)p);
}

static inline void *kmalloc(size_t size, gfp_t flags) { return kvmalloc(size, flags); }
static inline void *kzalloc(size_t size, gfp_t flags) { return kvmalloc(size, flags | __GFP_ZERO); }
static inline void kfree(const void *p) { kvfree(p); }

#endif
