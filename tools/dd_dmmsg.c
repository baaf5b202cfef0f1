// SPDX-License-Identifier: GPL-2.0
/*
 * dd_dmmsg [-s DEVICE] POOL MESSAGE...: send a target message to the dm device POOL
 * (sector 0) through the device-mapper ioctl, and print how long it took in
 * microseconds.  With -s, DEVICE is suspended first and resumed after, and two
 * numbers are printed: the message's time and that of suspend + message + resume.
 * For the benchmarks (bench/guest/bench-snapshot.sh): the guest's busybox date has
 * no sub-second format, and dmsetup's own start-up would be most of what it timed.
 * Exit status: 0, or 1 with one line on stderr naming the step that failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/dm-ioctl.h>

#define BUF_SIZE 16384

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void dm_init(struct dm_ioctl *io, const char *name, size_t size)
{
	memset(io, 0, size);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = (uint32_t)size;
	io->data_start = sizeof(*io);
	snprintf(io->name, sizeof(io->name), "%s", name);
}

static int suspend_resume(int fd, const char *name, int suspend)
{
	struct dm_ioctl io;

	dm_init(&io, name, sizeof(io));
	if (suspend)
		io.flags = DM_SUSPEND_FLAG;
	if (ioctl(fd, DM_DEV_SUSPEND, &io) == 0)
		return 0;
	fprintf(stderr, "dd_dmmsg: %s %s: %s\n", suspend ? "suspend" : "resume", name,
		strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	static union {
		struct dm_ioctl io;
		char bytes[BUF_SIZE];
	} buf;
	const char *dev = NULL, *pool;
	struct dm_target_msg *msg;
	size_t room, len = 0;
	uint64_t t0, t1, t2, t3;
	int fd, i, r;

	if (argc > 2 && strcmp(argv[1], "-s") == 0) {
		dev = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: dd_dmmsg [-s DEVICE] POOL MESSAGE...\n");
		return 2;
	}
	pool = argv[1];
	dm_init(&buf.io, pool, sizeof(buf));
	buf.io.flags = 0;
	msg = (struct dm_target_msg *)(buf.bytes + sizeof(buf.io));
	msg->sector = 0;
	room = sizeof(buf) - sizeof(buf.io) - sizeof(*msg);
	for (i = 2; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (len + n + 2 > room) {
			fprintf(stderr, "dd_dmmsg: message too long\n");
			return 1;
		}
		if (len)
			msg->message[len++] = ' ';
		memcpy(msg->message + len, argv[i], n);
		len += n;
	}
	msg->message[len] = '\0';

	fd = open("/dev/mapper/control", O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "dd_dmmsg: /dev/mapper/control: %s\n", strerror(errno));
		return 1;
	}
	t0 = now_us();
	if (dev && suspend_resume(fd, dev, 1))
		return 1;
	t1 = now_us();
	r = ioctl(fd, DM_TARGET_MSG, &buf.io);
	t2 = now_us();
	if (r) {
		fprintf(stderr, "dd_dmmsg: message '%s' to %s: %s\n", msg->message, pool,
			strerror(errno));
		if (dev)
			suspend_resume(fd, dev, 0);
		return 1;
	}
	if (dev && suspend_resume(fd, dev, 0))
		return 1;
	t3 = now_us();
	close(fd);
	if (dev)
		printf("%llu %llu\n", (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t0));
	else
		printf("%llu\n", (unsigned long long)(t2 - t1));
	return 0;
}
