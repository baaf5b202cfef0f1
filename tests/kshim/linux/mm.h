/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/mm.h>: kvfree() and friends live in linux/slab.h here. */
#ifndef KSHIM_LINUX_MM_H
#define KSHIM_LINUX_MM_H

#include <linux/slab.h>

#endif
