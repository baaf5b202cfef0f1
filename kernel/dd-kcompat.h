/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dd-kcompat.h: kernel-API differences between the kernels dm-dedup is built for.
 *
 * The module is built and tested against Debian's 6.1 kernel; Debian's backports carry
 * 6.12, which has dm-vdo.  Every kernel call whose signature or types differ between
 * the two goes through a wrapper here, so the target files contain no version checks.
 *
 *  - 6.5 replaced fmode_t with blk_mode_t (FMODE_READ/WRITE -> BLK_OPEN_READ/WRITE)
 *    in dm_get_device() and dm_table_get_mode().
 *  - 6.10 turned max_discard_sectors into a value the block layer derives from
 *    max_hw_discard_sectors (which stacked drivers set).
 */
#ifndef DD_KCOMPAT_H
#define DD_KCOMPAT_H

#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
typedef blk_mode_t dd_open_mode_t;
#define DD_OPEN_READ	BLK_OPEN_READ
#define DD_OPEN_WRITE	BLK_OPEN_WRITE
#else
typedef fmode_t dd_open_mode_t;
#define DD_OPEN_READ	FMODE_READ
#define DD_OPEN_WRITE	FMODE_WRITE
#endif

/* Open a table device read-only or read-write. */
static inline int dd_get_device(struct dm_target *ti, const char *path,
				bool writable, struct dm_dev **result)
{
	dd_open_mode_t mode = DD_OPEN_READ | (writable ? DD_OPEN_WRITE : 0);

	return dm_get_device(ti, path, mode, result);
}

/* Open a table device with the mode of the table being loaded. */
static inline int dd_get_device_table_mode(struct dm_target *ti, const char *path,
					   struct dm_dev **result)
{
	return dm_get_device(ti, path, dm_table_get_mode(ti->table), result);
}

/* Size of a table device in 512-byte sectors. */
static inline sector_t dd_dev_sectors(struct dm_dev *dev)
{
	return bdev_nr_sectors(dev->bdev);
}

/* dev_t of a table device (registries compare devices by number, not pointer). */
static inline dev_t dd_dev_t(struct dm_dev *dev)
{
	return dev->bdev->bd_dev;
}

/* Discard limits a stacked target advertises. */
static inline void dd_set_discard_limits(struct queue_limits *limits, unsigned int granularity,
					 unsigned int max_sectors)
{
	limits->discard_granularity = granularity;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	limits->max_hw_discard_sectors = max_sectors;
#else
	limits->max_discard_sectors = max_sectors;
#endif
}

#endif /* DD_KCOMPAT_H */
