// SPDX-License-Identifier: GPL-2.0
/*
 * dd_bitflip: flips bits of one byte of a metadata block, in a file or on a
 * device, for the tests that damage metadata on purpose.
 *
 *   dd_bitflip [--restamp] <file> <block> <byte offset> <mask>
 *
 * Byte <byte offset> (0..4095) of 4 KiB block <block> is XORed with <mask>
 * (1..255; decimal, or hex with 0x).  With --restamp the block's checksum is
 * computed again afterwards, for the type its header names then (as the
 * engine computes it: docs/format.md, section 2), so that the damage is seen
 * by the checks behind the checksum and not by the checksum.  Prints one
 * line: what was changed.  Exit status 0 done, 1 an I/O error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdmdedup.h"
#include "dd-walk.h"

static const char *prog = "dd_bitflip";

static int usage_error(const char *what)
{
	fprintf(stderr, "%s: %s\nUsage: %s [--restamp] <file> <block> <byte offset> <mask>\n",
		prog, what, prog);
	return 2;
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end || *v > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long long block, off, mask;
	bool restamp = false;
	union {
		unsigned char raw[DD_BLOCK_SIZE];
		struct dd_disk_header hdr;
	} *u;
	unsigned char was;
	u32 old_csum = 0, type;
	off_t pos;
	int fd;

	if (argc > 1 && !strcmp(argv[1], "--restamp")) {
		restamp = true;
		argv++;
		argc--;
	}
	if (argc != 5)
		return usage_error("wrong number of arguments");
	if (parse_u64(argv[2], ~0ULL / DD_BLOCK_SIZE, &block))
		return usage_error("invalid block number");
	if (parse_u64(argv[3], DD_BLOCK_SIZE - 1, &off))
		return usage_error("invalid byte offset (0..4095)");
	if (parse_u64(argv[4], 255, &mask) || !mask)
		return usage_error("invalid mask (1..255)");
	if (restamp && off < sizeof(u->hdr.csum))
		return usage_error("--restamp would undo a flip in the checksum itself");

	u = malloc(sizeof(*u));
	fd = open(argv[1], O_RDWR);
	if (!u || fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[1], strerror(errno));
		return 1;
	}
	pos = (off_t)(block * DD_BLOCK_SIZE);
	if (pread(fd, u->raw, DD_BLOCK_SIZE, pos) != DD_BLOCK_SIZE) {
		fprintf(stderr, "%s: %s: cannot read block %llu\n", prog, argv[1], block);
		return 1;
	}
	was = u->raw[off];
	u->raw[off] ^= (unsigned char)mask;
	type = le32_to_cpu(u->hdr.type);
	if (restamp) {
		old_csum = le32_to_cpu(u->hdr.csum);
		u->hdr.csum = cpu_to_le32(dd_walk_block_csum(u->raw, type));
	}
	if (pwrite(fd, u->raw, DD_BLOCK_SIZE, pos) != DD_BLOCK_SIZE || fsync(fd)) {
		fprintf(stderr, "%s: %s: cannot write block %llu\n", prog, argv[1], block);
		return 1;
	}
	close(fd);
	printf("block %llu byte %llu: 0x%02x -> 0x%02x", block, off, was, u->raw[off]);
	if (restamp)
		printf(", checksum 0x%08x -> 0x%08x", old_csum, le32_to_cpu(u->hdr.csum));
	putchar('\n');
	free(u);
	return 0;
}
