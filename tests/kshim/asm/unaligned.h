/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <asm/unaligned.h>: little-endian loads at any alignment. */
#ifndef KSHIM_ASM_UNALIGNED_H
#define KSHIM_ASM_UNALIGNED_H

#include <endian.h>
#include <string.h>
#include <linux/types.h>

static inline u32 get_unaligned_le32(const void *p)
{
	u32 v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline u64 get_unaligned_le64(const void *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

#endif
