/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/types.h>: the system's UAPI header plus the kernel's short types. */
#ifndef KSHIM_LINUX_TYPES_H
#define KSHIM_LINUX_TYPES_H

#include_next <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The same types as userspace/dd-env.h, which dd-engine.h pulls in (C11
 * accepts an identical typedef twice).  u64 is uint64_t there, not the UAPI
 * __u64 (unsigned long long): both headers must name the same type.
 */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

#endif
