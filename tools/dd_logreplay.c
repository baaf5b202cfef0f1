// SPDX-License-Identifier: GPL-2.0
/*
 * dd_logreplay: replays a dm-log-writes log onto block devices, stopping at
 * the flush and FUA entries to run a check there (the crash-replay tests).
 *
 *   dd_logreplay list LOG
 *   dd_logreplay replay LOG [--at flush|fua|mark|write] [--stride N]
 *                [--offset N] [--exec CMD] TARGET...
 *
 * LOG is the log device (or an image of it) that a log-writes target wrote,
 * in the format of the kernel's Documentation/admin-guide/device-mapper/
 * log-writes.rst: a super sector (magic, version, entry count, sector size)
 * and then, per entry, one sector holding the entry header (sector, sector
 * count, flags, data length; a mark's name follows the header) and, for a
 * write, its data.  The log records writes in the order they reached stable
 * storage: a write appears at the first flush that followed its completion
 * (or at its own completion if it was FUA), so replaying the entries up to a
 * flush gives the devices as an honest disk could have held them after a
 * power cut right then.
 *
 * `list` prints one line per entry: index, flags (F flush, U fua, D discard,
 * M mark, m metadata), first sector, sector count and a mark's name.
 *
 * `replay` writes every entry, in order, to the TARGETs (O_DIRECT where the
 * target allows it: devices, or image files), each
 * given as DEV:FIRST:COUNT (in 512-byte sectors of the logged device: the
 * part [FIRST, FIRST+COUNT) of it goes to the start of DEV), so the two
 * slices of one logged device can be replayed onto two devices.  A discard
 * is replayed as a fill of 0xdb bytes: a discarded block holds nothing a
 * reader may rely on, and a pool that returned it would show it.  After
 * each entry that is a check point (--at: flush = entries with a flush or
 * FUA, the default; fua = FUA only; mark = marks only; write = every entry),
 * every N-th of them (--stride, starting at the --offset-th), and after
 * every mark, it runs CMD with /bin/sh, with the environment:
 *   DD_REPLAY_INDEX  the index of the last entry written
 *   DD_REPLAY_MARK   the name of the last mark passed ("" before the first)
 *   DD_REPLAY_POINT  the number of this check point, from 1
 * and stops at the first CMD that exits non-zero.  It prints a progress line
 * every 100 points and, at the end:
 *   replay: <entries> entries, <points> points checked, <failed> failed
 * Exit status: 0 every check passed; 1 a check failed; 2 usage, a device or
 * a malformed log.
 */
#include <fcntl.h>

#define TOOL_NAME "dd_logreplay"
#include "tool-io.h"

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL
#define LW_FLUSH	(1ULL << 0)
#define LW_FUA		(1ULL << 1)
#define LW_DISCARD	(1ULL << 2)
#define LW_MARK		(1ULL << 3)
#define LW_META		(1ULL << 4)

#define SECTOR		512u
#define MAX_TARGETS	8
#define CHUNK		(1u << 20)	/* bytes copied per read/write */

/* The log's on-disk structures: all little-endian (x86 guests and hosts). */
struct lw_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct lw_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

struct target {
	const char *path;
	int fd;
	uint64_t first;		/* 512-byte sectors of the logged device */
	uint64_t count;
};



static void usage(void)
{
	fprintf(stderr,
		"usage: %s list LOG\n"
		"       %s replay LOG [--at flush|fua|mark|write] [--stride N] [--offset N]\n"
		"                     [--exec CMD] DEV:FIRST:COUNT...\n", TOOL_NAME, TOOL_NAME);
	exit(2);
}

struct log {
	int fd;
	const char *path;
	uint64_t nr_entries;
	uint32_t ss;		/* the log's sector size */
	uint64_t pos;		/* byte offset of the next entry */
	uint64_t index;		/* index of the next entry */
	char *hdr;		/* one log sector */
};

static void log_open(struct log *lg, const char *path)
{
	struct lw_super sb;
	char first[SECTOR];

	lg->path = path;
	lg->fd = open(path, O_RDONLY);
	if (lg->fd < 0)
		die(2, "%s: %s", path, strerror(errno));
	read_all(lg->fd, first, sizeof(first), 0, path);
	memcpy(&sb, first, sizeof(sb));
	if (sb.magic != LW_MAGIC)
		die(2, "%s: not a dm-log-writes log (magic %#" PRIx64 ")", path, sb.magic);
	if (sb.version != LW_VERSION)
		die(2, "%s: log version %" PRIu64 ", only %llu is known", path, sb.version,
		    (unsigned long long)LW_VERSION);
	if (sb.sectorsize < SECTOR || sb.sectorsize > 65536 || sb.sectorsize % SECTOR)
		die(2, "%s: log sector size %u", path, sb.sectorsize);
	lg->nr_entries = sb.nr_entries;
	lg->ss = sb.sectorsize;
	lg->pos = sb.sectorsize;	/* the first entry follows the super sector */
	lg->index = 0;
	lg->hdr = malloc(lg->ss);
	if (!lg->hdr)
		die(2, "out of memory");
}

/* Reads the next entry's header; false at the end of the log. */
static bool log_next(struct log *lg, struct lw_entry *e, char *mark, size_t mark_size)
{
	if (lg->index >= lg->nr_entries)
		return false;
	read_all(lg->fd, lg->hdr, lg->ss, lg->pos, lg->path);
	memcpy(e, lg->hdr, sizeof(*e));
	mark[0] = 0;
	if (e->flags & LW_MARK) {
		size_t n = e->data_len;

		if (n > lg->ss - sizeof(*e))
			die(2, "%s: entry %" PRIu64 ": mark of %zu bytes", lg->path, lg->index, n);
		if (n >= mark_size)
			n = mark_size - 1;
		memcpy(mark, lg->hdr + sizeof(*e), n);
		mark[n] = 0;
	} else if (e->data_len) {
		/* Inline data other than a mark's: nothing the kernel writes for bios. */
		die(2, "%s: entry %" PRIu64 ": inline data of %" PRIu64 " bytes", lg->path,
		    lg->index, e->data_len);
	}
	return true;
}

/* Moves past the current entry (and its data). */
static uint64_t entry_data_pos(const struct log *lg)
{
	return lg->pos + lg->ss;
}

static void log_advance(struct log *lg, const struct lw_entry *e)
{
	lg->pos += lg->ss;
	if (!(e->flags & (LW_DISCARD | LW_MARK)))
		lg->pos += e->nr_sectors * lg->ss;
	lg->index++;
}

static void flag_string(uint64_t f, char *s)
{
	*s++ = f & LW_FLUSH ? 'F' : '-';
	*s++ = f & LW_FUA ? 'U' : '-';
	*s++ = f & LW_DISCARD ? 'D' : '-';
	*s++ = f & LW_MARK ? 'M' : '-';
	*s++ = f & LW_META ? 'm' : '-';
	*s = 0;
}

static int cmd_list(const char *path)
{
	struct log lg;
	struct lw_entry e;
	char mark[512], fl[8];

	log_open(&lg, path);
	printf("# %s: %" PRIu64 " entries, sector size %u\n", path, lg.nr_entries, lg.ss);
	while (log_next(&lg, &e, mark, sizeof(mark))) {
		flag_string(e.flags, fl);
		printf("%" PRIu64 " %s %" PRIu64 " %" PRIu64 "%s%s\n", lg.index, fl, e.sector,
		       e.nr_sectors, mark[0] ? " " : "", mark);
		log_advance(&lg, &e);
	}
	return 0;
}

static void parse_target(struct target *t, char *arg)
{
	char *c2 = strrchr(arg, ':'), *c1, *end;

	if (!c2)
		die(2, "target '%s': want DEV:FIRST:COUNT", arg);
	*c2 = 0;
	c1 = strrchr(arg, ':');
	if (!c1)
		die(2, "target '%s': want DEV:FIRST:COUNT", arg);
	*c1 = 0;
	errno = 0;
	t->first = strtoull(c1 + 1, &end, 10);
	if (errno || *end || end == c1 + 1)
		die(2, "target %s: bad first sector '%s'", arg, c1 + 1);
	t->count = strtoull(c2 + 1, &end, 10);
	if (errno || *end || end == c2 + 1 || t->count == 0)
		die(2, "target %s: bad sector count '%s'", arg, c2 + 1);
	t->path = arg;
	t->fd = open(arg, O_WRONLY | O_DIRECT);
	/* Image files on a filesystem without O_DIRECT (tmpfs): buffered, which a
	 * reader of the same file sees all the same. */
	if (t->fd < 0 && errno == EINVAL)
		t->fd = open(arg, O_WRONLY);
	if (t->fd < 0)
		die(2, "%s: %s", arg, strerror(errno));
}

/*
 * Writes [sector, sector + nr) of the logged device (512-byte units) from buf
 * (or a discard fill when buf is NULL) to the targets that hold it.  Parts no
 * target holds are an error: the replay would be incomplete.
 */
static void put(struct target *t, int nt, uint64_t sector, uint64_t nr, const char *buf,
		const char *fill, uint64_t index)
{
	while (nr) {
		uint64_t n = 0;
		int i;

		for (i = 0; i < nt; i++)
			if (sector >= t[i].first && sector < t[i].first + t[i].count)
				break;
		if (i == nt)
			die(2, "entry %" PRIu64 ": sector %" PRIu64 " is on no target", index, sector);
		n = t[i].first + t[i].count - sector;
		if (n > nr)
			n = nr;
		if (buf) {
			write_all(t[i].fd, buf, n * SECTOR, (sector - t[i].first) * SECTOR, t[i].path);
			buf += n * SECTOR;
		} else {
			uint64_t done = 0;

			while (done < n) {
				uint64_t m = n - done;

				if (m > CHUNK / SECTOR)
					m = CHUNK / SECTOR;
				write_all(t[i].fd, fill, m * SECTOR,
					   (sector - t[i].first + done) * SECTOR, t[i].path);
				done += m;
			}
		}
		sector += n;
		nr -= n;
	}
}

static bool is_point(uint64_t flags, const char *at)
{
	if (!strcmp(at, "write"))
		return true;
	if (!strcmp(at, "mark"))
		return flags & LW_MARK;
	if (!strcmp(at, "fua"))
		return flags & LW_FUA;
	return flags & (LW_FLUSH | LW_FUA);
}

static int cmd_replay(int argc, char **argv)
{
	const char *at = "flush", *cmd = NULL, *path;
	unsigned long stride = 1, offset = 0;
	struct target t[MAX_TARGETS];
	int nt = 0, i;
	struct log lg;
	struct lw_entry e;
	char mark[512] = "", last_mark[512] = "", *buf, *fill;
	uint64_t candidates = 0, points = 0;

	if (argc < 1)
		usage();
	path = argv[0];
	for (i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--at") && i + 1 < argc) {
			at = argv[++i];
			if (strcmp(at, "flush") && strcmp(at, "fua") && strcmp(at, "mark") &&
			    strcmp(at, "write"))
				die(2, "--at %s: want flush, fua, mark or write", at);
		} else if ((!strcmp(argv[i], "--stride") || !strcmp(argv[i], "--offset")) &&
			   i + 1 < argc) {
			bool is_stride = !strcmp(argv[i], "--stride");
			unsigned long v;

			errno = 0;
			v = strtoul(argv[++i], &end, 10);
			if (errno || *end || (is_stride && v == 0))
				die(2, "%s %s: want a number%s", argv[i - 1], argv[i],
				    is_stride ? " above 0" : "");
			if (is_stride)
				stride = v;
			else
				offset = v;
		} else if (!strcmp(argv[i], "--exec") && i + 1 < argc) {
			cmd = argv[++i];
		} else if (argv[i][0] == '-') {
			usage();
		} else {
			if (nt == MAX_TARGETS)
				die(2, "at most %d targets", MAX_TARGETS);
			parse_target(&t[nt++], argv[i]);
		}
	}
	if (!nt)
		usage();

	log_open(&lg, path);
	if (posix_memalign((void **)&buf, 4096, CHUNK) || posix_memalign((void **)&fill, 4096, CHUNK))
		die(2, "out of memory");
	memset(fill, 0xdb, CHUNK);

	while (log_next(&lg, &e, mark, sizeof(mark))) {
		uint64_t index = lg.index;
		/* Entry sectors are in the log's sector size. */
		uint64_t s512 = e.sector * (lg.ss / SECTOR), n512 = e.nr_sectors * (lg.ss / SECTOR);

		if (e.flags & LW_MARK) {
			snprintf(last_mark, sizeof(last_mark), "%s", mark);
		} else if (e.flags & LW_DISCARD) {
			put(t, nt, s512, n512, NULL, fill, index);
		} else if (n512) {
			uint64_t done = 0, data = entry_data_pos(&lg);

			while (done < n512) {
				uint64_t m = n512 - done;

				if (m > CHUNK / SECTOR)
					m = CHUNK / SECTOR;
				read_all(lg.fd, buf, m * SECTOR, data + done * SECTOR, lg.path);
				put(t, nt, s512 + done, m, buf, NULL, index);
				done += m;
			}
		}
		log_advance(&lg, &e);

		if (!cmd)
			continue;
		if (!(e.flags & LW_MARK)) {
			if (!is_point(e.flags, at))
				continue;
			if (candidates++ % stride != offset % stride)
				continue;
		}
		{
			char v[32];
			int rc;

			points++;
			snprintf(v, sizeof(v), "%" PRIu64, index);
			setenv("DD_REPLAY_INDEX", v, 1);
			setenv("DD_REPLAY_MARK", last_mark, 1);
			snprintf(v, sizeof(v), "%" PRIu64, points);
			setenv("DD_REPLAY_POINT", v, 1);
			fflush(stdout);
			rc = system(cmd);
			if (rc != 0) {
				printf("replay: the check at entry %" PRIu64 " (point %" PRIu64
				       ", after mark '%s') failed (status %d)\n", index, points,
				       last_mark, rc);
				printf("replay: %" PRIu64 " entries, %" PRIu64 " points checked, 1 failed\n",
				       lg.index, points);
				return 1;
			}
			if (points % 100 == 0)
				printf("replay: %" PRIu64 " points checked, at entry %" PRIu64 " of %"
				       PRIu64 "\n", points, index, lg.nr_entries);
		}
	}
	printf("replay: %" PRIu64 " entries, %" PRIu64 " points checked, 0 failed\n", lg.index,
	       points);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "list"))
		return cmd_list(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "replay"))
		return cmd_replay(argc - 2, argv + 2);
	usage();
}
