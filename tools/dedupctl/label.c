// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl: the label on a pool's devices (include/dm-dedup/label.h).  An update
 * writes the slot that is not current with seq + 1 and makes it durable (O_DIRECT
 * and O_DSYNC, then fsync) before anything relies on it: a crash during the write
 * leaves the other slot, which is the previous label.
 *
 * Updates are serialised by the pool's lock: an exclusive flock() on the metadata
 * device's own /dev node (the name sysfs gives it, so that /dev/mapper/X, /dev/dm-N,
 * /dev/VG/LV and by-id links all meet on one inode).  It needs no directory of its
 * own (no /run), lives exactly as long as the device, and is the lock udev already
 * honours for a device whose contents a tool is changing.  Whoever holds it re-reads
 * the label, applies its one change, writes it, and lets go.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dedupctl.h"
#include "dm-dedup/format.h"

uint32_t dd_crc32c(uint32_t seed, const void *data, size_t len);	/* libdmdedup */

static uint32_t csum(const void *p, size_t len)
{
	return dd_crc32c(DDL_CSUM_SEED, (const char *)p + 12, len - 12);
}

static void *balloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, BLOCK, len))
		return NULL;
	memset(p, 0, len);
	return p;
}

static int xio(bool wr, int fd, void *buf, size_t len, uint64_t off, const char *path)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = wr ? pwrite(fd, (char *)buf + done, len - done, (off_t)(off + done))
		       : pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err(n < 0 ? -errno : -EIO, "%s: %s at byte %llu: %s", path,
				   wr ? "write" : "read", (unsigned long long)(off + done),
				   n < 0 ? strerror(errno) : "end of device");
		done += (size_t)n;
	}
	return 0;
}

static int open_dev(const char *path, bool wr)
{
	int fd = open(path, (wr ? O_RDWR | O_DIRECT | O_DSYNC : O_RDONLY | O_DIRECT) | O_CLOEXEC);

	if (fd < 0)
		return err(-errno, "%s: %s", path, strerror(errno));
	return fd;
}

int dev_size(const char *path, uint64_t *bytes)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return err(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st))
		r = err(-errno, "%s: %s", path, strerror(errno));
	else if (!S_ISBLK(st.st_mode))
		r = err(-ENOTBLK, "%s: not a block device", path);
	else if (ioctl(fd, BLKGETSIZE64, bytes))
		r = err(-errno, "%s: cannot read its size: %s", path, strerror(errno));
	close(fd);
	return r;
}

void uuid_str(const uint8_t uuid[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", uuid[i]);
}

int label_probe(const char *meta_path, uint8_t uuid[16])
{
	struct ddl_id *id = balloc(BLOCK);
	int fd, r;

	if (!id)
		return err(-ENOMEM, "out of memory");
	fd = open(meta_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	r = fd < 0 ? err(-errno, "%s: %s", meta_path, strerror(errno))
		   : xio(false, fd, id, BLOCK, 0, meta_path);
	if (fd >= 0)
		close(fd);
	if (!r)
		r = le64toh(id->magic) == DDL_ID_MAGIC && le32toh(id->csum) == csum(id, BLOCK);
	if (r == 1 && uuid)
		memcpy(uuid, id->uuid, 16);
	free(id);
	return r;
}

/* The slot at OFF if it is valid and belongs to UUID: its seq, else 0. */
static uint64_t slot_valid(const struct ddl_hdr *h, const uint8_t uuid[16])
{
	uint32_t bytes = le32toh(h->bytes);

	if (le64toh(h->magic) != DDL_HDR_MAGIC || bytes < sizeof(*h) || bytes > DDL_SLOT_BYTES ||
	    le32toh(h->csum) != csum(h, bytes) || memcmp(h->uuid, uuid, 16) ||
	    le32toh(h->nr_vols) != (bytes - sizeof(*h)) / sizeof(struct ddl_vol) ||
	    h->name[DDL_NAME_MAX] || h->features[DDL_FEATURES_MAX])
		return 0;
	return le64toh(h->seq);
}

int label_read(const char *meta_path, struct pool_label *pl)
{
	uint8_t uuid[16];
	char *slot[2] = { NULL, NULL };
	uint64_t seq[2] = { 0, 0 };
	int fd, r, best;
	struct ddl_hdr *h;

	memset(pl, 0, sizeof(*pl));
	r = label_probe(meta_path, uuid);
	if (r <= 0)
		return r < 0 ? r : err(-EINVAL, "%s: not a dedup pool's metadata device (no label)",
				       meta_path);
	fd = open_dev(meta_path, false);
	if (fd < 0)
		return fd;
	for (int i = 0; i < 2; i++) {
		slot[i] = balloc(DDL_SLOT_BYTES);
		if (!slot[i]) {
			r = err(-ENOMEM, "out of memory");
			goto out;
		}
		r = xio(false, fd, slot[i], DDL_SLOT_BYTES, DDL_SLOT_OFFSET(i), meta_path);
		if (r)
			goto out;
		seq[i] = slot_valid((struct ddl_hdr *)slot[i], uuid);
	}
	if (!seq[0] && !seq[1]) {
		r = err(-EUCLEAN, "%s: both copies of the pool label are damaged", meta_path);
		goto out;
	}
	best = seq[1] > seq[0];
	h = (struct ddl_hdr *)slot[best];
	pl->hdr = *h;
	pl->vols = calloc(le32toh(h->nr_vols) + 1, sizeof(*pl->vols));
	if (!pl->vols) {
		r = err(-ENOMEM, "out of memory");
		goto out;
	}
	memcpy(pl->vols, h + 1, le32toh(h->nr_vols) * sizeof(*pl->vols));
	snprintf(pl->meta_path, sizeof(pl->meta_path), "%s", meta_path);
out:
	close(fd);
	free(slot[0]);
	free(slot[1]);
	return r;
}

static int write_slot(struct pool_label *pl, int fd, unsigned int i)
{
	uint32_t n = le32toh(pl->hdr.nr_vols);
	size_t bytes = sizeof(pl->hdr) + n * sizeof(struct ddl_vol);
	size_t len = (bytes + BLOCK - 1) / BLOCK * BLOCK;
	struct ddl_hdr *h;
	int r;

	if (n > DDL_MAX_VOLS)
		return err(-ENOSPC, "the pool label holds at most %zu volumes", (size_t)DDL_MAX_VOLS);
	h = balloc(len);
	if (!h)
		return err(-ENOMEM, "out of memory");
	*h = pl->hdr;
	memcpy(h + 1, pl->vols, n * sizeof(struct ddl_vol));
	h->magic = htole64(DDL_HDR_MAGIC);
	h->version = htole32(DDL_VERSION);
	h->bytes = htole32((uint32_t)bytes);
	h->csum = htole32(csum(h, bytes));
	r = xio(true, fd, h, len, DDL_SLOT_OFFSET(i), pl->meta_path);
	if (!r && fsync(fd))
		r = err(-errno, "%s: flush: %s", pl->meta_path, strerror(errno));
	free(h);
	return r;
}

int label_write(struct pool_label *pl)
{
	uint64_t seq = le64toh(pl->hdr.seq) + 1;
	int fd, r;

	if (!pl->lock_depth)
		return err(-EPERM, "internal error: the label of pool %s written without its lock",
			   pl->hdr.name);
	fd = open_dev(pl->meta_path, true);
	if (fd < 0)
		return fd;
	pl->hdr.seq = htole64(seq);
	r = write_slot(pl, fd, seq & 1);
	close(fd);
	return r;
}

int label_format(struct pool_label *pl)
{
	struct ddl_id *id = balloc(BLOCK);
	void *zero = balloc(1 << 20);
	int fd = -1, r;

	if (!id || !zero) {
		r = err(-ENOMEM, "out of memory");
		goto out;
	}
	if (getrandom(pl->hdr.uuid, 16, 0) != 16) {
		r = err(-EIO, "no random bytes for the pool's uuid");
		goto out;
	}
	fd = open_dev(pl->meta_path, true);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	/* The metadata first: a zeroed start is what the target formats. */
	r = xio(true, fd, zero, 1 << 20, DDL_META_OFFSET, pl->meta_path);
	if (r)
		goto out;
	pl->hdr.seq = htole64(1);
	r = write_slot(pl, fd, 1);
	if (!r)
		r = xio(true, fd, zero, BLOCK, DDL_SLOT_OFFSET(0), pl->meta_path);
	if (r)
		goto out;
	id->magic = htole64(DDL_ID_MAGIC);
	id->version = htole32(DDL_VERSION);
	memcpy(id->uuid, pl->hdr.uuid, 16);
	id->created = htole64((uint64_t)time(NULL));
	id->csum = htole32(csum(id, BLOCK));
	r = xio(true, fd, id, BLOCK, 0, pl->meta_path);
	if (!r && fsync(fd))
		r = err(-errno, "%s: flush: %s", pl->meta_path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	free(id);
	free(zero);
	return r;
}

void label_free(struct pool_label *pl)
{
	if (pl->lock_depth) {
		pl->lock_depth = 1;
		label_end(pl);
	}
	free(pl->vols);
	pl->vols = NULL;
}

/* The /dev node the kernel names the block device at PATH (else PATH itself). */
static void lock_node(const char *path, char *out, size_t len)
{
	char sys[96], line[256], node[300];
	struct stat st, st2;
	FILE *f;

	snprintf(out, len, "%s", path);
	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/uevent", major(st.st_rdev),
		 minor(st.st_rdev));
	f = fopen(sys, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEVNAME=", 8))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(node, sizeof(node), "/dev/%s", line + 8);
		if (!stat(node, &st2) && S_ISBLK(st2.st_mode) && st2.st_rdev == st.st_rdev)
			snprintf(out, len, "%s", node);
	}
	fclose(f);
}

/* The pid holding a flock on FD's inode (/proc/locks), 0 if not known. */
static int lock_holder(int fd)
{
	char line[256], type[16];
	unsigned int ma, mi;
	unsigned long ino;
	struct stat st;
	int pid = 0, p;
	FILE *f;

	if (fstat(fd, &st))
		return 0;
	f = fopen("/proc/locks", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strstr(line, "->") &&
		    sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", type, &p, &ma, &mi, &ino) == 5 &&
		    !strcmp(type, "FLOCK") && ma == major(st.st_dev) && mi == minor(st.st_dev) &&
		    ino == st.st_ino)
			pid = p;
	fclose(f);
	return pid;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* For the tests: DEDUPCTL_FAULT=locked holds the lock, once taken, until the file
 * DEDUPCTL_FAULT_WAIT names is removed (FILE.locked is made when it is taken). */
static void fault_locked(void)
{
	const char *f = getenv("DEDUPCTL_FAULT"), *w = getenv("DEDUPCTL_FAULT_WAIT");
	char path[512];
	int fd;

	if (!f || strcmp(f, "locked") || !w)
		return;
	snprintf(path, sizeof(path), "%s.locked", w);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	while (!access(w, F_OK))
		usleep(20000);
}

int label_begin(struct pool_label *pl)
{
	const char *t = getenv("DEDUPCTL_LOCK_TIMEOUT");
	struct pool_label cur;
	double limit = 60, deadline;
	char node[300];
	int fd, r;

	if (pl->lock_depth) {	/* held already: the copy is the label */
		pl->lock_depth++;
		return 0;
	}
	if (t && *t) {
		char *end;

		limit = strtod(t, &end);
		if (*end || limit < 0)
			return err(-EINVAL, "bad DEDUPCTL_LOCK_TIMEOUT %s (seconds)", t);
	}
	lock_node(pl->meta_path, node, sizeof(node));
	fd = open(node, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err(-errno, "%s: cannot open it to lock pool %s: %s", node, pl->hdr.name,
			   strerror(errno));
	deadline = mono() + limit;
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			r = err(-errno, "%s: cannot lock pool %s: %s", node, pl->hdr.name,
				strerror(errno));
			close(fd);
			return r;
		}
		if (mono() >= deadline) {
			int pid = lock_holder(fd);
			char who[32] = "";

			if (pid)
				snprintf(who, sizeof(who), " (pid %d)", pid);
			r = err(-ETIMEDOUT, "pool %s: another dedupctl%s has held its lock (flock "
				"on %s) for more than %g s; try again when it has finished",
				pl->hdr.name, who, node, limit);
			close(fd);
			return r;
		}
		usleep(20000);
	}
	fault_locked();
	/* what the device holds now, not the copy read before the lock */
	r = label_read(pl->meta_path, &cur);
	if (!r && memcmp(cur.hdr.uuid, pl->hdr.uuid, 16))
		r = err(-ESTALE, "%s: holds another pool's label now", pl->meta_path);
	if (r) {
		label_free(&cur);
		close(fd);
		return r;
	}
	free(pl->vols);
	pl->hdr = cur.hdr;
	pl->vols = cur.vols;
	pl->lock_fd = fd;
	pl->lock_depth = 1;
	return 0;
}

void label_end(struct pool_label *pl)
{
	if (!pl->lock_depth || --pl->lock_depth)
		return;
	close(pl->lock_fd);	/* which releases the flock */
}

int data_label_write(const char *data_path, const uint8_t uuid[16], uint64_t blocks)
{
	struct ddl_data *d = balloc(BLOCK);
	int fd, r;

	if (!d)
		return err(-ENOMEM, "out of memory");
	d->magic = htole64(DDL_DATA_MAGIC);
	d->version = htole32(DDL_VERSION);
	memcpy(d->uuid, uuid, 16);
	d->data_blocks = htole64(blocks);
	d->csum = htole32(csum(d, BLOCK));
	fd = open_dev(data_path, true);
	r = fd < 0 ? fd : xio(true, fd, d, BLOCK, blocks * BLOCK, data_path);
	if (fd >= 0 && !r && fsync(fd))
		r = err(-errno, "%s: flush: %s", data_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(d);
	return r;
}

int data_label_check(const char *data_path, const uint8_t uuid[16], uint64_t blocks)
{
	struct ddl_data *d;
	uint64_t size;
	int fd, r;

	if (dev_size(data_path, &size) || size < (blocks + 1) * BLOCK)
		return 0;
	d = balloc(BLOCK);
	if (!d)
		return err(-ENOMEM, "out of memory");
	fd = open(data_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	r = fd < 0 ? -errno : xio(false, fd, d, BLOCK, blocks * BLOCK, data_path);
	if (fd >= 0)
		close(fd);
	if (!r)
		r = le64toh(d->magic) == DDL_DATA_MAGIC && le32toh(d->csum) == csum(d, BLOCK) &&
		    !memcmp(d->uuid, uuid, 16) && le64toh(d->data_blocks) == blocks;
	free(d);
	return r;
}

int superblock_data_blocks(const char *meta_path, uint64_t *blocks)
{
	struct dd_disk_superblock *sb = balloc(2 * BLOCK);
	uint64_t best_txn = 0;
	bool found = false;
	int fd, r;

	if (!sb)
		return err(-ENOMEM, "out of memory");
	fd = open_dev(meta_path, false);
	r = fd < 0 ? fd : xio(false, fd, sb, 2 * BLOCK, DDL_META_OFFSET, meta_path);
	if (fd >= 0)
		close(fd);
	for (int i = 0; !r && i < 2; i++) {
		const struct dd_disk_superblock *s = &sb[i];
		uint32_t c = dd_crc32c(DD_CSUM_SEED ^ DD_BT_SUPER, (const char *)s + 4, BLOCK - 4);

		if (le64toh(s->magic) != DD_MAGIC || le32toh(s->hdr.csum) != c ||
		    (found && le64toh(s->hdr.txn) <= best_txn))
			continue;
		found = true;
		best_txn = le64toh(s->hdr.txn);
		*blocks = le64toh(s->nr_data_blocks);
	}
	free(sb);
	if (!r && !found)
		return 1;	/* never formatted (a pool created but not yet opened) */
	return r;
}

struct ddl_vol *label_find(struct pool_label *pl, const char *name)
{
	for (uint32_t i = 0; i < le32toh(pl->hdr.nr_vols); i++)
		if (!strcmp(pl->vols[i].name, name))
			return &pl->vols[i];
	return NULL;
}

struct ddl_vol *label_find_id(struct pool_label *pl, uint32_t id)
{
	for (uint32_t i = 0; i < le32toh(pl->hdr.nr_vols); i++)
		if (le32toh(pl->vols[i].id) == id)
			return &pl->vols[i];
	return NULL;
}

struct ddl_vol *label_add(struct pool_label *pl)
{
	uint32_t n = le32toh(pl->hdr.nr_vols);
	struct ddl_vol *v = realloc(pl->vols, (n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	pl->vols = v;
	memset(&v[n], 0, sizeof(v[n]));
	v[n].origin = htole32(DD_NO_VOLUME);
	pl->hdr.nr_vols = htole32(n + 1);
	return &v[n];
}

void label_del(struct pool_label *pl, struct ddl_vol *v)
{
	uint32_t n = le32toh(pl->hdr.nr_vols);
	size_t i = (size_t)(v - pl->vols);

	memmove(&pl->vols[i], &pl->vols[i + 1], (n - i - 1) * sizeof(*v));
	pl->hdr.nr_vols = htole32(n - 1);
}
