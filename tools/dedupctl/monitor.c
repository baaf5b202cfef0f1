// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl monitor: autoextend of a pool whose data device is an LVM logical
 * volume, as lvm2's dmeventd does for thin pools.  The pool raises a dm event when
 * its free data space falls below the low-water mark (and when its mode changes);
 * the monitor waits for events, and whenever the free space is below the mark it
 * extends the data LV by the configured step (lvextend) and grows the pool over it
 * (pool_resize: the data label at the new end, the pool's label, then the table).
 * docs/dedupctl.md, "LVM: a pool on LVs, autoextend, a PV on a volume".
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dedupctl.h"

/* The /dev/mapper path of the LVM logical volume at PATH, or an error. */
static int lv_of(const char *path, char *out, size_t len)
{
	char sys[128], uuid[160], name[128];
	struct stat st;

	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return err(-ENODEV, "%s: not a block device", path);
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/uuid", major(st.st_rdev),
		 minor(st.st_rdev));
	if (read_line(sys, uuid, sizeof(uuid)) || strncmp(uuid, "LVM-", 4))
		return err(-EINVAL, "the data device %s is not an LVM logical volume: extend it "
			   "and run dedupctl resize", path);
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/dm/name", major(st.st_rdev),
		 minor(st.st_rdev));
	if (read_line(sys, name, sizeof(name)) || !name[0])
		return err(-ENODEV, "%s: no device-mapper name", path);
	snprintf(out, len, "/dev/mapper/%s", name);
	return 0;
}

/* lvextend --size NEW_BYTES LV; its own output goes to our stderr. */
static int lvextend(const char *lv, uint64_t bytes)
{
	char size[32];
	char *argv[] = { "lvextend", "--size", size, (char *)lv, NULL };
	int r;

	snprintf(size, sizeof(size), "%" PRIu64 "b", bytes);
	setenv("LVM_SUPPRESS_FD_WARNINGS", "1", 1);
	r = run_program(argv);
	if (r)
		return err(r < 0 ? r : -EIO, "lvextend --size %s %s failed (%s %d)", size, lv,
			   r < 0 ? "errno" : "exit", r < 0 ? -r : r);
	return 0;
}

/*
 * One look at POOL: if its free data space is below the low-water mark, the data LV
 * grows by STEP bytes (to at most MAX, 0: no limit) and the pool with it, as often as
 * it takes.  *extended counts the extensions.
 */
static int check_once(const char *pool, uint64_t step, uint64_t max, unsigned *extended)
{
	for (;;) {
		struct pool_label pl;
		struct pool_stats s;
		uint64_t low, cur = 0, want;
		char lv[160], a[32], b[32];
		int r;

		r = pool_open_active(pool, &pl);
		if (r)
			return r;
		low = le64toh(pl.hdr.low_water);
		r = read_stats(pool, &s);
		free(s.scan);
		if (!r && s.data_total - s.data_used >= low) {
			label_free(&pl);
			return 0;
		}
		if (!r)
			r = lv_of(pl.data_path, lv, sizeof(lv));
		if (!r)
			r = dev_size(pl.data_path, &cur);
		want = cur + step;
		if (!r && max && want > max)
			want = max;
		if (!r && want <= cur)
			r = err(-ENOSPC, "pool %s: %" PRIu64 " data blocks free, below its low water "
				"(%" PRIu64 "), and %s is at --max", pool, s.data_total - s.data_used,
				low, lv);
		label_free(&pl);
		if (!r)
			r = lvextend(lv, want);
		if (!r)
			r = pool_resize(pool);
		if (r)
			return r;
		(*extended)++;
		human_size(cur, a, sizeof(a));
		human_size(want, b, sizeof(b));
		info("pool %s: %" PRIu64 " data blocks were free (low water %" PRIu64 "): %s "
		     "extended from %s to %s", pool, s.data_total - s.data_used, low, lv, a, b);
	}
}

int cmd_monitor(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "extend-by", required_argument, NULL, 'e' },
		{ "max", required_argument, NULL, 'm' },
		{ "once", no_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t step = 0, max = 0;
	unsigned extended = 0;
	const char *pool;
	bool once = false;
	uint32_t nr;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'e':
			if (parse_size(optarg, &step) || step < BLOCK)
				return err(-EINVAL, "bad --extend-by %s (a size, at least 4K)", optarg);
			break;
		case 'm':
			if (parse_size(optarg, &max) || !max)
				return err(-EINVAL, "bad --max %s (a size)", optarg);
			break;
		case 'o':
			once = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 1 || !step)
		return -EINVAL;
	pool = argv[optind];
	if (once)
		return check_once(pool, step, max, &extended);
	r = dmc_event_nr(pool, &nr);
	if (r <= 0)
		return r < 0 ? r : err(-ENODEV, "pool %s is not active", pool);
	info("pool %s: monitoring (extend the data LV by %" PRIu64 " bytes below low water)",
	     pool, step);
	for (;;) {
		/* The counter first: an event between the check and the wait is not lost. */
		r = dmc_event_nr(pool, &nr);
		if (r <= 0)
			break;
		r = check_once(pool, step, max, &extended);
		if (r)
			return r;
		r = dmc_wait_event(pool, nr);
		if (r <= 0)
			break;
	}
	if (r < 0)
		return r;
	info("pool %s: gone; %u extension(s) made", pool, extended);
	return 0;
}
