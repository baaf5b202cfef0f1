/* SPDX-License-Identifier: GPL-2.0 */
/* kshim: the kernel's asm/barrier.h (smp_* barriers, smp_load_acquire) come with
 * linux/compiler.h here. */
#ifndef KSHIM_ASM_BARRIER_H
#define KSHIM_ASM_BARRIER_H
#include <linux/compiler.h>
#endif
