// SPDX-License-Identifier: GPL-2.0
/* Userspace block devices: file/block device and fault-injecting RAM. */
#include "dd-dev.h"
#include <dm-dedup/format.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file / block device ---------------------------------------------------- */

struct dd_filedev {
	struct dd_dev dev;
	int fd;
};

static int dd_file_read(struct dd_dev *d, u64 b, void *buf)
{
	struct dd_filedev *f = (struct dd_filedev *)d;
	ssize_t n = pread(f->fd, buf, DD_BLOCK_SIZE, (off_t)(b << DD_BLOCK_SHIFT));

	if (n == DD_BLOCK_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

static int dd_file_write(struct dd_dev *d, u64 b, const void *buf)
{
	struct dd_filedev *f = (struct dd_filedev *)d;
	ssize_t n = pwrite(f->fd, buf, DD_BLOCK_SIZE, (off_t)(b << DD_BLOCK_SHIFT));

	if (n == DD_BLOCK_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

static int dd_file_flush(struct dd_dev *d)
{
	struct dd_filedev *f = (struct dd_filedev *)d;

	return fdatasync(f->fd) ? -errno : 0;
}

static void dd_file_destroy(struct dd_dev *d)
{
	struct dd_filedev *f = (struct dd_filedev *)d;

	close(f->fd);
	free(f);
}

static const struct dd_dev_ops dd_file_ops = {
	.read = dd_file_read,
	.write = dd_file_write,
	.flush = dd_file_flush,
	.destroy = dd_file_destroy,
};

int dd_dev_file_open(const char *path, bool read_only, struct dd_dev **out)
{
	struct dd_filedev *f;
	struct stat st;
	u64 bytes;
	int fd, r;

	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		goto bad;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes)) {
			r = -errno;
			goto bad;
		}
	} else if (S_ISREG(st.st_mode)) {
		bytes = (u64)st.st_size;
	} else {
		r = -ENOTBLK;
		goto bad;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		r = -ENOMEM;
		goto bad;
	}
	f->fd = fd;
	f->dev.ops = &dd_file_ops;
	f->dev.nr_blocks = bytes >> DD_BLOCK_SHIFT;
	*out = &f->dev;
	return 0;
bad:
	close(fd);
	return r;
}

/* ---- RAM device --------------------------------------------------------------
 * 'img' is what reads see, 'dur' what a power cut keeps; both are sparse
 * (a missing block reads as zeroes).  Writes since the last flush are also
 * kept in order in 'pending' so that a crash can keep any subset of them.
 */

struct dd_pending {
	u64 b;
	u8 *data;
};

struct dd_ramdev {
	struct dd_dev dev;
	u8 **img, **dur;
	struct dd_pending *pending;
	u64 nr_pending, cap_pending;
	struct dd_fault fault;
	u64 nwrites, nreads;
	bool crashed, failed;
	u64 rng;
	struct dd_ramdev *peer;		/* on the same power supply, or NULL */
};

static const u8 dd_zero[DD_BLOCK_SIZE];

static u64 dd_rng(u64 *s)
{
	/* splitmix64: deterministic per seed, good enough for fault choices */
	u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const u8 *dd_rd_get(u8 **img, u64 b)
{
	return img[b] ? img[b] : dd_zero;
}

static int dd_rd_set(u8 **img, u64 b, const void *data)
{
	if (!img[b]) {
		img[b] = malloc(DD_BLOCK_SIZE);
		if (!img[b])
			return -ENOMEM;
	}
	memcpy(img[b], data, DD_BLOCK_SIZE);
	return 0;
}

static int dd_ram_read(struct dd_dev *d, u64 b, void *buf)
{
	struct dd_ramdev *rd = (struct dd_ramdev *)d;

	rd->nreads++;
	if (rd->crashed || rd->failed)
		return -EIO;
	if (rd->fault.fail_read_at && rd->nreads == rd->fault.fail_read_at) {
		rd->failed = rd->fault.fail_sticky;
		return -EIO;
	}
	if (b >= d->nr_blocks)
		return -EIO;
	memcpy(buf, dd_rd_get(rd->img, b), DD_BLOCK_SIZE);
	return 0;
}

static int dd_ram_pend(struct dd_ramdev *rd, u64 b, const void *buf)
{
	struct dd_pending *p;

	if (rd->nr_pending == rd->cap_pending) {
		u64 cap = rd->cap_pending ? rd->cap_pending * 2 : 64;

		p = realloc(rd->pending, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		rd->pending = p;
		rd->cap_pending = cap;
	}
	p = &rd->pending[rd->nr_pending];
	p->data = malloc(DD_BLOCK_SIZE);
	if (!p->data)
		return -ENOMEM;
	memcpy(p->data, buf, DD_BLOCK_SIZE);
	p->b = b;
	rd->nr_pending++;
	return 0;
}

static int dd_ram_write(struct dd_dev *d, u64 b, const void *buf)
{
	struct dd_ramdev *rd = (struct dd_ramdev *)d;
	int r;

	rd->nwrites++;
	if (rd->crashed || rd->failed)
		return -EIO;
	if (b >= d->nr_blocks)
		return -EIO;
	if (rd->fault.fail_write_at && rd->nwrites == rd->fault.fail_write_at) {
		rd->failed = rd->fault.fail_sticky;
		return -EIO;
	}
	if (rd->fault.crash_at_write && rd->nwrites == rd->fault.crash_at_write) {
		if (rd->fault.tear) {
			/* 1..7 of the 8 sectors of the new contents land. */
			u32 sectors = 1 + (u32)(dd_rng(&rd->rng) % (DD_SECTORS_PER_BLOCK - 1));
			u8 torn[DD_BLOCK_SIZE];

			memcpy(torn, dd_rd_get(rd->img, b), DD_BLOCK_SIZE);
			memcpy(torn, buf, sectors << DD_SECTOR_SHIFT);
			r = dd_ram_pend(rd, b, torn);
			if (!r)
				r = dd_rd_set(rd->img, b, torn);
			if (r)
				return r;
		}
		rd->crashed = true;
		/* The same instant for a device on the same supply: nothing
		 * issued to it from now on lands. */
		if (rd->peer)
			rd->peer->crashed = true;
		return -EIO;
	}
	r = dd_ram_pend(rd, b, buf);
	if (!r)
		r = dd_rd_set(rd->img, b, buf);
	return r;
}

static void dd_ram_clear_pending(struct dd_ramdev *rd)
{
	u64 i;

	for (i = 0; i < rd->nr_pending; i++)
		free(rd->pending[i].data);
	rd->nr_pending = 0;
}

static int dd_ram_flush(struct dd_dev *d)
{
	struct dd_ramdev *rd = (struct dd_ramdev *)d;
	u64 i;
	int r;

	if (rd->crashed || rd->failed)
		return -EIO;
	for (i = 0; i < rd->nr_pending; i++) {
		r = dd_rd_set(rd->dur, rd->pending[i].b, rd->pending[i].data);
		if (r)
			return r;
	}
	dd_ram_clear_pending(rd);
	return 0;
}

static void dd_ram_destroy(struct dd_dev *d)
{
	(void)d;	/* owned by the dd_ramdev; freed by dd_ramdev_free */
}

static const struct dd_dev_ops dd_ram_ops = {
	.read = dd_ram_read,
	.write = dd_ram_write,
	.flush = dd_ram_flush,
	.destroy = dd_ram_destroy,
};

struct dd_ramdev *dd_ramdev_create(u64 nr_blocks)
{
	struct dd_ramdev *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return NULL;
	rd->img = calloc(nr_blocks, sizeof(u8 *));
	rd->dur = calloc(nr_blocks, sizeof(u8 *));
	if (!rd->img || !rd->dur) {
		dd_ramdev_free(rd);
		return NULL;
	}
	rd->dev.ops = &dd_ram_ops;
	rd->dev.nr_blocks = nr_blocks;
	return rd;
}

int dd_ramdev_grow(struct dd_ramdev *rd, u64 nr_blocks)
{
	u64 old = rd->dev.nr_blocks;
	u8 **img, **dur;

	if (nr_blocks < old)
		return -EINVAL;
	img = realloc(rd->img, nr_blocks * sizeof(u8 *));
	if (!img)
		return -ENOMEM;
	rd->img = img;
	dur = realloc(rd->dur, nr_blocks * sizeof(u8 *));
	if (!dur)
		return -ENOMEM;
	rd->dur = dur;
	memset(img + old, 0, (nr_blocks - old) * sizeof(u8 *));
	memset(dur + old, 0, (nr_blocks - old) * sizeof(u8 *));
	rd->dev.nr_blocks = nr_blocks;
	return 0;
}

static int dd_rd_copy_image(u8 **dst, u8 **src, u64 n)
{
	u64 b;

	for (b = 0; b < n; b++) {
		if (src[b]) {
			if (dd_rd_set(dst, b, src[b]))
				return -ENOMEM;
		} else if (dst[b]) {
			free(dst[b]);
			dst[b] = NULL;
		}
	}
	return 0;
}

struct dd_ramdev *dd_ramdev_clone(struct dd_ramdev *src)
{
	struct dd_ramdev *rd = dd_ramdev_create(src->dev.nr_blocks);
	u64 i;

	if (!rd)
		return NULL;
	if (dd_rd_copy_image(rd->img, src->img, src->dev.nr_blocks) ||
	    dd_rd_copy_image(rd->dur, src->dur, src->dev.nr_blocks))
		goto bad;
	for (i = 0; i < src->nr_pending; i++)
		if (dd_ram_pend(rd, src->pending[i].b, src->pending[i].data))
			goto bad;
	return rd;
bad:
	dd_ramdev_free(rd);
	return NULL;
}

struct dd_dev *dd_ramdev_dev(struct dd_ramdev *rd)
{
	return &rd->dev;
}

void dd_ramdev_set_fault(struct dd_ramdev *rd, const struct dd_fault *f)
{
	rd->fault = *f;
	rd->rng = f->seed;
}

void dd_ramdev_share_power(struct dd_ramdev *a, struct dd_ramdev *b)
{
	if (a->peer)
		a->peer->peer = NULL;
	if (b->peer)
		b->peer->peer = NULL;
	a->peer = b;
	b->peer = a;
}

bool dd_ramdev_crashed(struct dd_ramdev *rd)
{
	return rd->crashed;
}

u64 dd_ramdev_nr_writes(struct dd_ramdev *rd)
{
	return rd->nwrites;
}

void dd_ramdev_reboot(struct dd_ramdev *rd)
{
	u64 i;

	/* Allocation failures here would leave a half-rebooted test device:
	 * tests run with plenty of memory, so treat them as fatal. */
	DD_BUG_ON(dd_rd_copy_image(rd->img, rd->dur, rd->dev.nr_blocks));
	for (i = 0; i < rd->nr_pending; i++) {
		bool keep = rd->fault.unflushed == DD_UNFLUSHED_KEEP ||
			    (rd->fault.unflushed == DD_UNFLUSHED_RANDOM && (dd_rng(&rd->rng) & 1));

		/* A torn write (the last pending one) always lands torn. */
		if (rd->fault.tear && rd->crashed && i == rd->nr_pending - 1)
			keep = true;
		if (keep)
			DD_BUG_ON(dd_rd_set(rd->img, rd->pending[i].b, rd->pending[i].data));
	}
	DD_BUG_ON(dd_rd_copy_image(rd->dur, rd->img, rd->dev.nr_blocks));
	dd_ram_clear_pending(rd);
	memset(&rd->fault, 0, sizeof(rd->fault));
	rd->crashed = rd->failed = false;
	rd->nwrites = rd->nreads = 0;
}

const void *dd_ramdev_block(struct dd_ramdev *rd, u64 b)
{
	return dd_rd_get(rd->img, b);
}

void dd_ramdev_poke(struct dd_ramdev *rd, u64 b, const void *data)
{
	DD_BUG_ON(dd_rd_set(rd->img, b, data) || dd_rd_set(rd->dur, b, data));
}

static void dd_rd_free_image(u8 **img, u64 n)
{
	u64 b;

	if (!img)
		return;
	for (b = 0; b < n; b++)
		free(img[b]);
	free(img);
}

void dd_ramdev_free(struct dd_ramdev *rd)
{
	if (!rd)
		return;
	if (rd->peer)
		rd->peer->peer = NULL;
	dd_ram_clear_pending(rd);
	free(rd->pending);
	dd_rd_free_image(rd->img, rd->dev.nr_blocks);
	dd_rd_free_image(rd->dur, rd->dev.nr_blocks);
	free(rd);
}
