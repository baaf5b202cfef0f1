/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/errno.h>: the system's (the same numbers as the kernel's). */
#ifndef KSHIM_LINUX_ERRNO_H
#define KSHIM_LINUX_ERRNO_H
#include_next <linux/errno.h>
#endif
