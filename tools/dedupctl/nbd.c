// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl import of virtual-disk images (qcow2, vmdk, vdi, vhdx, vpc): the image is
 * attached read-only to a free /dev/nbdN by qemu-nbd, imported from there as a disk,
 * and detached again.  Raw images and block devices are read directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "dedupctl.h"

/* The qemu format name of the image at PATH by its magic, or NULL (raw, a device). */
const char *image_format(const char *path)
{
	unsigned char b[512];
	struct stat st;
	ssize_t n;
	int fd;

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n < 72)
		return NULL;
	if (!memcmp(b, "QFI\xfb", 4))
		return "qcow2";
	if (!memcmp(b, "KDMV", 4) || !memcmp(b, "# Disk DescriptorFile", 21))
		return "vmdk";
	if (b[64] == 0x7f && b[65] == 0x10 && b[66] == 0xda && b[67] == 0xbe)
		return "vdi";
	if (!memcmp(b, "vhdxfile", 8))
		return "vhdx";
	if (!memcmp(b, "conectix", 8))
		return "vpc";
	return NULL;
}

static long sys_long(const char *path)
{
	char buf[32];

	return read_line(path, buf, sizeof(buf)) || !buf[0] ? -1 : strtol(buf, NULL, 10);
}

int nbd_attach(const char *image, const char *fmt, char *dev, size_t len)
{
	char sys[64], fmtarg[32];
	int i, r;

	if (access("/sys/block/nbd0", F_OK)) {
		char *mp[] = { "modprobe", "nbd", NULL };

		r = run_program(mp);
		if (r)
			return err(r < 0 ? r : -ENODEV, "%s is a %s image: it is read through "
				   "qemu-nbd, and the nbd module does not load", image, fmt);
	}
	for (i = 0; i < 256; i++) {
		long size;

		snprintf(sys, sizeof(sys), "/sys/block/nbd%d/size", i);
		size = sys_long(sys);
		if (size < 0)
			break;
		if (size > 0)
			continue;	/* in use */
		snprintf(sys, sizeof(sys), "/sys/block/nbd%d/pid", i);
		if (!access(sys, F_OK))
			continue;	/* connected (a server is there) */
		snprintf(dev, len, "/dev/nbd%d", i);
		snprintf(fmtarg, sizeof(fmtarg), "--format=%s", fmt);
		{
			char *qa[] = { "qemu-nbd", "--read-only", "--fork", fmtarg, "--connect",
				       dev, (char *)image, NULL };

			r = run_program(qa);
		}
		if (r)
			return err(r < 0 ? r : -EIO, "qemu-nbd --read-only --connect %s %s (%s) "
				   "failed (%s)", dev, image, fmt,
				   r == 127 ? "is qemu-utils installed?" : "its message is above");
		/* --fork returns once the device is set up; its size comes with it. */
		snprintf(sys, sizeof(sys), "/sys/block/nbd%d/size", i);
		for (int t = 0; t < 100 && sys_long(sys) <= 0; t++) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		if (sys_long(sys) <= 0) {
			nbd_detach(dev);
			return err(-EIO, "%s: no size after qemu-nbd connected %s", dev, image);
		}
		info("import: %s is a %s image, read through qemu-nbd on %s", image, fmt, dev);
		return 0;
	}
	return err(-EBUSY, "no free nbd device for %s (load nbd with more nbds_max)", image);
}

void nbd_detach(const char *dev)
{
	char *qa[] = { "qemu-nbd", "--disconnect", (char *)dev, NULL };
	int r = run_program(qa);

	if (r)	/* (the import's own result is the one main reports) */
		fprintf(stderr, "dedupctl: warning: qemu-nbd --disconnect %s failed\n", dev);
}
