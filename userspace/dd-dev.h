/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace block devices under the block manager: a file or block device
 * (pread/pwrite/fdatasync) and a RAM device that injects faults: a power cut
 * at write number k that loses unflushed writes, a torn write, a failed I/O.
 */
#ifndef DD_DEV_H
#define DD_DEV_H

#include "dd-env.h"

struct dd_dev;

struct dd_dev_ops {
	int (*read)(struct dd_dev *dev, u64 b, void *buf);
	int (*write)(struct dd_dev *dev, u64 b, const void *buf);
	int (*flush)(struct dd_dev *dev);
	void (*destroy)(struct dd_dev *dev);
};

struct dd_dev {
	const struct dd_dev_ops *ops;
	u64 nr_blocks;		/* in DD_BLOCK_SIZE units */
	u64 reads, writes, flushes;
};

static inline int dd_dev_read(struct dd_dev *d, u64 b, void *buf)
{
	d->reads++;
	return d->ops->read(d, b, buf);
}

static inline int dd_dev_write(struct dd_dev *d, u64 b, const void *buf)
{
	d->writes++;
	return d->ops->write(d, b, buf);
}

static inline int dd_dev_flush(struct dd_dev *d)
{
	d->flushes++;
	return d->ops->flush(d);
}

static inline void dd_dev_destroy(struct dd_dev *d)
{
	d->ops->destroy(d);
}

/* A regular file or a block device; read_only opens O_RDONLY. */
int dd_dev_file_open(const char *path, bool read_only, struct dd_dev **out);

/* ---- RAM device with fault injection ---- */

enum dd_unflushed {
	DD_UNFLUSHED_DROP,	/* a power cut loses every write since the last flush */
	DD_UNFLUSHED_KEEP,	/* ... keeps them all */
	DD_UNFLUSHED_RANDOM,	/* ... keeps a random subset (the disk reordered) */
};

struct dd_fault {
	u64 crash_at_write;	/* 1-based; the power fails as this write is issued */
	bool tear;		/* the crashing write lands partly (a sector prefix) */
	enum dd_unflushed unflushed;
	u64 fail_write_at;	/* 1-based: this write returns -EIO (nothing written) */
	u64 fail_read_at;	/* 1-based: this read returns -EIO */
	bool fail_sticky;	/* every I/O after the failed one fails too */
	u64 seed;
};

struct dd_ramdev;
struct dd_ramdev *dd_ramdev_create(u64 nr_blocks);
struct dd_ramdev *dd_ramdev_clone(struct dd_ramdev *rd);	/* durable + volatile state */
struct dd_dev *dd_ramdev_dev(struct dd_ramdev *rd);
/* The device grows at its end (as an LV does): new blocks read as zeroes. */
int dd_ramdev_grow(struct dd_ramdev *rd, u64 nr_blocks);
void dd_ramdev_set_fault(struct dd_ramdev *rd, const struct dd_fault *f);
/*
 * One power supply for two devices (a pool's metadata and data devices):
 * when either reaches its crash write, both lose power at that instant;
 * each then keeps its unflushed writes per its own fault's policy when it
 * is rebooted.  Freeing either device unlinks them.
 */
void dd_ramdev_share_power(struct dd_ramdev *a, struct dd_ramdev *b);
bool dd_ramdev_crashed(struct dd_ramdev *rd);
u64 dd_ramdev_nr_writes(struct dd_ramdev *rd);	/* writes issued since create/reboot */
/* Power cycle: what survives becomes the contents, faults are cleared. */
void dd_ramdev_reboot(struct dd_ramdev *rd);
const void *dd_ramdev_block(struct dd_ramdev *rd, u64 b);	/* current contents */
/* Overwrites a block as if it had always been so (corruption tests). */
void dd_ramdev_poke(struct dd_ramdev *rd, u64 b, const void *data);
void dd_ramdev_free(struct dd_ramdev *rd);

#endif
