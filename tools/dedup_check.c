// SPDX-License-Identifier: GPL-2.0
/*
 * dedup_check: checks the metadata of a dm-dedup pool (thin_check's model).
 *
 *   dedup_check [options] <metadata dev or file>
 *
 * The check itself is dd_check() (tools/check.c); this file parses the
 * options, prints the findings and chooses the exit status:
 *   0  clean (warnings such as needs_check allowed)
 *   1  errors found, or the metadata cannot be opened at all
 *   2  usage error, or the device cannot be opened
 * Nothing is written to the device, except by --clear-needs-check after a
 * check that found no error.
 */
#include <getopt.h>
#include <strings.h>

#include "libdmdedup.h"
#include "check.h"
#include <dm-dedup/format.h>

#define EXIT_DAMAGED	1
#define EXIT_USAGE	2
#define REPORT_LIMIT	10	/* findings printed per code */

static const char *prog = "dedup_check";
static bool quiet;
static char engine_msg[512];	/* the engine's last error: why an open failed */
static const char *detail;	/* a plainer reason for an open failure, if known */

static void engine_log(enum dd_log_level lvl, const char *msg)
{
	if (lvl == DD_LOG_ERR)
		snprintf(engine_msg, sizeof(engine_msg), "%s", msg);
}

static void explain_open_failure(struct dd_bm *bm);

/* ctx is the block manager: an open failure is explained by a probe. */
static void report(void *ctx, enum dd_check_code code, bool error, const char *msg)
{
	if (quiet)
		return;
	if (code == DD_CHK_OPEN)
		explain_open_failure(ctx);
	fprintf(stderr, "%s: %s: %s", error ? "error" : "warning", dd_check_code_name(code), msg);
	if (code == DD_CHK_OPEN && (detail || engine_msg[0]))
		fprintf(stderr, " (%s)", detail ? detail : engine_msg);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] <metadata dev or file>\n"
		"Checks the metadata of a dm-dedup pool.  Nothing is written to the device\n"
		"unless --clear-needs-check is given and the check finds no error.\n"
		"\n"
		"Options:\n"
		"  -q, --quiet              print nothing; report through the exit status only\n"
		"      --clear-needs-check  if no error is found, clear the needs_check flag\n"
		"      --max-memory <size>  memory for reference counting: bytes, or NNNk,\n"
		"                           NNNm, NNNg (default 1g; less means more passes)\n"
		"      --super-block-only   only validate the superblock and replay the journal\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n"
		"\n"
		"Exit status: 0 clean (warnings allowed), 1 errors found or metadata unusable,\n"
		"2 usage error or the device cannot be opened.\n",
		prog);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EXIT_USAGE;
}

/* "4096", "512k", "64m", "2g", "1t" (binary units); 0 on a malformed value. */
static u64 parse_size(const char *s)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return 0;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: return 0;
		}
		if (end[1] && strcasecmp(end + 1, "b") && strcasecmp(end + 1, "ib"))
			return 0;
	}
	if (shift && v > (~0ULL >> shift))
		return 0;
	return (u64)v << shift;
}

static const char *plural(u64 n)
{
	return n == 1 ? "" : "s";
}

/* Why a pool could not be opened, in plain words when the probe knows. */
static void explain_open_failure(struct dd_bm *bm)
{
	enum dd_probe p;

	if (dd_pool_probe(bm, &p))
		return;
	if (p == DD_PROBE_ZEROED)
		detail = "both superblock slots are zeroed: the device was never formatted";
	else if (p == DD_PROBE_FOREIGN)
		detail = "no dm-dedup superblock: not a dm-dedup metadata device";
}

/* --super-block-only: open (validates the superblock and geometry, replays
 * the journal into memory) and close. */
static int check_superblock(struct dd_bm *bm, bool *needs_check)
{
	struct dd_pool_stats st;
	struct dd_pool *pool;
	int r;

	r = dd_pool_open(bm, DD_OPEN_READ_ONLY | DD_OPEN_IGNORE_CHECK, NULL, &pool);
	if (r) {
		explain_open_failure(bm);
		if (!quiet) {
			fprintf(stderr, "error: %s: cannot open the pool: %s\n",
				dd_check_code_name(DD_CHK_OPEN),
				detail ? detail : engine_msg[0] ? engine_msg : strerror(-r));
			printf("%s: metadata unusable\n", prog);
		}
		return EXIT_DAMAGED;
	}
	dd_pool_get_stats(pool, &st);
	*needs_check = st.needs_check;
	if (!quiet) {
		if (st.needs_check)
			fprintf(stderr, "warning: %s: the needs_check flag is set\n",
				dd_check_code_name(DD_CHK_NEEDS_CHECK));
		printf("%s: superblock clean: transaction %llu, %llu metadata blocks, %llu data blocks\n",
		       prog, (unsigned long long)st.txn, (unsigned long long)st.nr_meta_blocks,
		       (unsigned long long)st.nr_data_blocks);
	}
	dd_pool_close(pool);
	return 0;
}

static int check_all(struct dd_bm *bm, u64 max_memory, bool *needs_check)
{
	struct dd_check_opts o = {
		.max_memory = max_memory,
		.report = report,
		.ctx = bm,
		.max_reports = REPORT_LIMIT,
	};
	struct dd_check_result res;
	int r, c;

	r = dd_check(bm, &o, &res);
	if (r) {
		fprintf(stderr, "%s: the check could not run: %s\n", prog, strerror(-r));
		return EXIT_DAMAGED;
	}
	*needs_check = res.count[DD_CHK_NEEDS_CHECK] > 0;
	if (quiet)
		return res.errors ? EXIT_DAMAGED : 0;
	for (c = 0; c < DD_CHK_NR_CODES; c++)
		if (res.count[c] > REPORT_LIMIT)
			fprintf(stderr, "%s: %s: %llu more not shown\n",
				c == DD_CHK_NEEDS_CHECK ? "warning" : "error",
				dd_check_code_name((enum dd_check_code)c),
				(unsigned long long)(res.count[c] - REPORT_LIMIT));
	if (res.count[DD_CHK_OPEN]) {
		printf("%s: metadata unusable\n", prog);
	} else if (res.errors) {
		printf("%s: %llu error%s", prog, (unsigned long long)res.errors, plural(res.errors));
		if (res.warnings)
			printf(", %llu warning%s", (unsigned long long)res.warnings,
			       plural(res.warnings));
		putchar('\n');
	} else {
		printf("%s: clean: %llu metadata blocks, %llu data blocks, %llu mappings", prog,
		       (unsigned long long)res.meta_blocks_seen,
		       (unsigned long long)res.data_blocks_seen,
		       (unsigned long long)res.map_entries_seen);
		if (res.warnings)
			printf(" (%llu warning%s)", (unsigned long long)res.warnings,
			       plural(res.warnings));
		putchar('\n');
	}
	return res.errors ? EXIT_DAMAGED : 0;
}

/* The only write: a commit of the superblock without the flag. */
static int clear_needs_check(const char *path)
{
	struct dd_bm_opts bo = { 0 };
	struct dd_pool *pool;
	struct dd_dev *dev;
	struct dd_bm *bm;
	int r, r2;

	r = dd_dev_file_open(path, false, &dev);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-r));
		return EXIT_USAGE;
	}
	r = dd_bm_create(dev, &bo, &bm);
	if (r)
		goto out_dev;
	r = dd_pool_open(bm, DD_OPEN_IGNORE_CHECK, NULL, &pool);
	if (!r) {
		r = dd_pool_clear_needs_check(pool);
		dd_pool_close(pool);
	}
	r2 = dd_bm_destroy(bm);
	if (!r)
		r = r2;
out_dev:
	dd_dev_destroy(dev);
	if (r) {
		fprintf(stderr, "%s: %s: cannot clear needs_check: %s\n", prog, path,
			engine_msg[0] ? engine_msg : strerror(-r));
		return EXIT_DAMAGED;
	}
	if (!quiet)
		printf("%s: needs_check cleared\n", prog);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CLEAR = 256, OPT_MAXMEM, OPT_SBONLY };
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "clear-needs-check", no_argument, NULL, OPT_CLEAR },
		{ "max-memory", required_argument, NULL, OPT_MAXMEM },
		{ "super-block-only", no_argument, NULL, OPT_SBONLY },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dd_bm_opts ro = { .read_only = true };
	bool clear = false, sb_only = false, needs_check = false;
	u64 max_memory = 0;
	const char *path;
	struct dd_dev *dev;
	struct dd_bm *bm;
	int c, r, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case OPT_CLEAR:
			clear = true;
			break;
		case OPT_MAXMEM:
			max_memory = parse_size(optarg);
			if (!max_memory)
				return usage_error("invalid --max-memory '%s' (bytes, or NNNk/NNNm/NNNg)",
						   optarg);
			break;
		case OPT_SBONLY:
			sb_only = true;
			break;
		case 'V':
			printf("%s (dm-dedup tools), metadata format version %u\n", prog, DD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return usage_error("%s", "no metadata device given");
	if (optind + 1 != argc)
		return usage_error("more than one device given ('%s' ...)", argv[optind + 1]);
	if (clear && sb_only)
		return usage_error("%s", "--clear-needs-check needs a full check, not --super-block-only");
	path = argv[optind];

	dd_set_log_hook(engine_log);
	r = dd_dev_file_open(path, true, &dev);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-r));
		return EXIT_USAGE;
	}
	r = dd_bm_create(dev, &ro, &bm);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-r));
		dd_dev_destroy(dev);
		return EXIT_DAMAGED;
	}
	if (sb_only) {
		rc = check_superblock(bm, &needs_check);
	} else {
		rc = check_all(bm, max_memory, &needs_check);
	}
	dd_bm_destroy(bm);
	dd_dev_destroy(dev);

	if (!rc && clear && needs_check)
		rc = clear_needs_check(path);
	return rc;
}
