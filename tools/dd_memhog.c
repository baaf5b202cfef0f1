// SPDX-License-Identifier: GPL-2.0
/*
 * dd_memhog: take anonymous memory away from the rest of the guest, for the
 * memory-pressure guest test (tests/vm/40-memory-pressure.sh).  Without swap
 * anonymous pages cannot be reclaimed: what the hog holds, the page cache,
 * its dirty pages and the kernel's own allocations must do without.
 *
 *   dd_memhog leave MIB    grow until MemAvailable (/proc/meminfo) is at most
 *                          MIB MiB, then hold, growing again whenever it
 *                          rises 4 MiB above; runs until killed
 *   dd_memhog grow         grow 1 MiB at a time until killed (the OOM killer)
 *   dd_memhog leave MIB --detach
 *                          the same in a child that outlives the command, which
 *                          returns once the child holds: it prints the child's pid
 *                          and the "holding" line and exits 0, or exits 1 if the
 *                          child died first (the OOM killer took it) or does not
 *                          hold within 120 s.  The child is
 *                          no caller's child: its death sends no SIGCHLD to a shell
 *                          that is waiting for something else.
 *
 * Every page it takes is written (a non-zero pattern), so it is really held.
 * It prints one line when it first reaches its level ("# dd_memhog: holding
 * N MiB, MemAvailable M MiB"); the caller may wait for that line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (1UL << 20)
/* Within NEAR MiB of its level the hog grows by SMALL_CHUNK: MemAvailable is an
 * estimate, and a 1 MiB step there is what overshoots into the OOM killer. */
#define SMALL_CHUNK (CHUNK / 4)
#define NEAR 24
#define DETACH_WAIT_S 120

static long mem_available_mib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib < 0 ? -1 : kib / 1024;
}

/* BYTES more, every page written; 0 when mmap refused it. */
static int take_chunk(size_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	memset(p, 0x5a, bytes);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: dd_memhog leave MIB [--detach] | dd_memhog grow\n");
	exit(2);
}

/*
 * --detach: fork; the child hogs and writes its "holding" line into a pipe, the
 * parent passes it on with the child's pid.  Returns in the child (with the pipe's
 * write end as its announce stream); the parent exits.
 */
static FILE *detach(void)
{
	char line[256];
	int p[2], st, fd;
	ssize_t n, len = 0;
	pid_t pid;

	if (pipe(p)) {
		perror("dd_memhog: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("dd_memhog: fork");
		exit(1);
	}
	if (pid == 0) {
		FILE *f;

		close(p[0]);
		setsid();
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		f = fdopen(p[1], "w");
		if (!f)
			_exit(1);
		setvbuf(f, NULL, _IOLBF, 0);
		return f;
	}
	close(p[1]);
	while (len < (ssize_t)sizeof(line) - 1) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };

		/* A hog that neither holds nor dies within DETACH_WAIT_S fails too. */
		n = poll(&pfd, 1, DETACH_WAIT_S * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "dd_memhog: the hog does not hold after %d s\n", DETACH_WAIT_S);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			exit(1);
		}
		n = read(p[0], line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = 0;
	if (len && strchr(line, '\n')) {
		printf("%d %s", (int)pid, line);
		exit(0);
	}
	/* The child died before it held: say how. */
	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) == pid && WIFSIGNALED(st))
		fprintf(stderr, "dd_memhog: the hog died before it held (signal %d)\n", WTERMSIG(st));
	else
		fprintf(stderr, "dd_memhog: the hog died before it held\n");
	exit(1);
}

int main(int argc, char **argv)
{
	unsigned long held = 0;	/* in units of SMALL_CHUNK */
	long leave = -1, avail = -1;
	int announced = 0;
	FILE *out = stdout;

	if ((argc == 3 || (argc == 4 && !strcmp(argv[3], "--detach"))) &&
	    !strcmp(argv[1], "leave")) {
		char *end;

		leave = strtol(argv[2], &end, 10);
		if (*end || leave < 0)
			usage();
	} else if (argc != 2 || strcmp(argv[1], "grow")) {
		usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4)
		out = detach();
	for (;;) {
		if (leave >= 0) {
			avail = mem_available_mib();
			if (avail < 0) {
				fprintf(stderr, "dd_memhog: cannot read MemAvailable\n");
				return 1;
			}
			if (avail <= leave + (announced ? 4 : 0)) {
				if (!announced) {
					fprintf(out, "# dd_memhog: holding %lu MiB, MemAvailable %ld MiB\n",
						held * SMALL_CHUNK / CHUNK, avail);
					if (out != stdout) {
						fclose(out);
						out = stdout;
					}
					announced = 1;
				}
				usleep(50000);
				continue;
			}
		}
		if (leave >= 0 && avail - leave <= NEAR) {
			if (!take_chunk(SMALL_CHUNK)) {
				usleep(10000);
				continue;
			}
			held++;
			continue;
		}
		if (!take_chunk(CHUNK)) {
			/* (overcommit refused it: try again, the OOM killer decides) */
			usleep(10000);
			continue;
		}
		held += CHUNK / SMALL_CHUNK;
	}
}
