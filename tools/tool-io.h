/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The error exit and the whole-buffer I/O loops of the test tools (dd_tokens,
 * dd_logreplay).  Define TOOL_NAME (the tool's name, for messages) before including.
 */
#ifndef DD_TOOL_IO_H
#define DD_TOOL_IO_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TOOL_NAME
#error "define TOOL_NAME before including tool-io.h"
#endif

/* die CODE FMT...: "TOOL_NAME: message" on stderr, exit CODE. */
static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", TOOL_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/*
 * read_all / write_all: all LEN bytes at byte OFF of FD, retrying short transfers and
 * EINTR; an error or the end of the file dies with code 2, naming WHAT.
 */
static void io_all(bool wr, int fd, char *buf, size_t len, uint64_t off, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? pwrite(fd, buf + done, len - done, (off_t)(off + done))
			       : pread(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(2, "%s: %s at byte %" PRIu64 ": %s", what, wr ? "write" : "read",
			    off + done, n < 0 ? strerror(errno) : "end of file (truncated?)");
		done += (size_t)n;
	}
}

static inline void read_all(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
	io_all(false, fd, buf, len, off, what);
}

/* (io_all only passes BUF to pwrite, which does not write to it.) */
static inline void write_all(int fd, const void *buf, size_t len, uint64_t off, const char *what)
{
	io_all(true, fd, (char *)buf, len, off, what);
}

#endif
