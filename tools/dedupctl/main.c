// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl: command line and dispatch.  Exit status: 0 done, 1 the command failed
 * (one line on stderr says why), 2 wrong usage.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "dedupctl.h"

bool opt_json, opt_quiet;
static char err_msg[1024];

int err(int code, const char *fmt, ...)
{
	va_list ap;

	if (!err_msg[0]) {	/* the first cause is the one worth reading */
		va_start(ap, fmt);
		vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void err_clear(void)
{
	err_msg[0] = 0;
}

void info(const char *fmt, ...)
{
	va_list ap;

	if (opt_quiet || opt_json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

const char *json_esc(const char *s)
{
	static char bufs[4][2048];
	static unsigned int next;
	char *out = bufs[next++ % 4];
	size_t n = 0;

	for (; *s && n + 7 < sizeof(bufs[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)sprintf(out + n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = 0;
	return out;
}

int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		buf[0] = 0;
		return -errno;
	}
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int run_program(char *const argv[])
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(2, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "dedupctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) != pid)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max || s[0] == '-' || s[0] == '_' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+_.-", *s))
			return false;
	return true;
}

bool valid_pool_name(const char *s)
{
	size_t n = strlen(s), t = strlen(TMETA_SUFFIX);

	if (!valid_name(s, DDL_NAME_MAX - 16) || strchr(s, '-'))
		return false;
	return n <= t || strcmp(s + n - t, TMETA_SUFFIX);
}

int parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	uint64_t v, m = 1;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': m = 1ULL << 10; break;
	case 'M': m = 1ULL << 20; break;
	case 'G': m = 1ULL << 30; break;
	case 'T': m = 1ULL << 40; break;
	case 'P': m = 1ULL << 50; break;
	default: return -EINVAL;
	}
	if (*end && end[1] && strcasecmp(end + 1, "iB") && strcasecmp(end + 1, "B"))
		return -EINVAL;
	if (v > UINT64_MAX / m)
		return -ERANGE;
	*bytes = v * m;
	return 0;
}

void human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit[u]);
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
	const char *help;
} commands[] = {
	{ "create", cmd_create, "POOL METADATA_DEV DATA_DEV [--low-water BLOCKS] "
	  "[--index-memory MIB] [--feature F]... [--force]", "format and activate a new pool" },
	{ "activate", cmd_activate, "POOL [VOLUME] | --all [--no-volumes] [DEVICE...]",
	  "find a pool on its devices and activate it with its volumes" },
	{ "deactivate", cmd_deactivate, "POOL [VOLUME] | --all", "remove the devices cleanly" },
	{ "status", cmd_status, "[POOL...] [--json]", "space, savings and the scanner" },
	{ "pools", cmd_pools, "[--json] [DEVICE...]", "pools on the devices and their state" },
	{ "create-volume", cmd_vol_create, "POOL NAME SIZE [--domain N] [--inactive]",
	  "a new thin volume" },
	{ "snapshot", cmd_vol_snapshot, "POOL ORIGIN NAME [--inactive]",
	  "a volume sharing every block of ORIGIN" },
	{ "delete-volume", cmd_vol_delete, "POOL NAME", "delete a volume (blocks freed in the background)" },
	{ "rename-volume", cmd_vol_rename, "POOL NAME NEW_NAME", "rename a volume" },
	{ "import", cmd_import, "SOURCE POOL VOLUME [--rate MIB_S] [--all-blocks] [--domain N] "
	  "[--raw]", "copy a disk or image (raw, or qcow2/vmdk/vdi/vhdx/vpc through qemu-nbd) "
	  "into a new volume (resumes an interrupted one)" },
	{ "list", cmd_vol_list, "POOL [--json]", "the pool's volumes" },
	{ "scan", cmd_scan, "POOL start|stop|full|unshare|stats|rate MIB_S|index-memory MIB|"
	  "share-cap N", "control the scanner" },
	{ "resize", cmd_resize, "POOL", "grow the data and metadata space to their devices' new sizes" },
	{ "monitor", cmd_monitor, "POOL --extend-by SIZE [--max SIZE] [--once]",
	  "extend the data LV (lvextend) and the pool whenever free space is below low water" },
	{ "check", cmd_check, "[--clear-needs-check] METADATA_DEV",
	  "check the metadata of an inactive pool" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: dedupctl [--json] [-q] COMMAND ARGS...\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n  %-14s   %s\n", commands[i].name, commands[i].args, "",
			commands[i].help);
	fprintf(f, "\nSizes take K, M, G, T suffixes (powers of 1024).  See dedupctl(8).\n");
}

int main(int argc, char **argv)
{
	int i = 1, r;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json"))
			opt_json = true;
		else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			opt_quiet = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "dedupctl: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name))
			continue;
		r = commands[c].fn(argc - i, argv + i);
		if (r == -EINVAL && !err_msg[0]) {
			fprintf(stderr, "usage: dedupctl %s %s\n", commands[c].name, commands[c].args);
			return 2;
		}
		if (r) {
			fprintf(stderr, "dedupctl: %s\n", err_msg[0] ? err_msg : strerror(-r));
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "dedupctl: unknown command %s (dedupctl --help)\n", argv[i]);
	return 2;
}
