/* SPDX-License-Identifier: GPL-2.0 */
/* kshim <linux/string.h>: libc's. */
#ifndef KSHIM_LINUX_STRING_H
#define KSHIM_LINUX_STRING_H
#include <string.h>
#endif
