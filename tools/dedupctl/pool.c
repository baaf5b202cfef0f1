// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl: pools.  A pool NAME is three things: the raw metadata and data devices
 * (with the label), a dm-linear "NAME_tmeta" over the metadata part of the raw
 * metadata device, and the dedup-pool device NAME.  Volumes are "NAME-VOLUME".
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "dedupctl.h"
#include "dm-dedup/format.h"

#define UUID_PREFIX "DEDUP-"
#define CONFIG_FILE "/etc/dedupctl.conf"

void pool_dm_names(const char *pool, char *tmeta, size_t len)
{
	snprintf(tmeta, len, "%s" TMETA_SUFFIX, pool);
}

void dm_uuid(const struct pool_label *pl, const char *what, char *out, size_t len)
{
	char u[33];

	uuid_str(pl->hdr.uuid, u);
	snprintf(out, len, UUID_PREFIX "%s-%s", u, what);
}

/* "MAJ:MIN" (as dm tables print devices) to a /dev path. */
static int devno_path(const char *mm, char *out, size_t len)
{
	unsigned int ma, mi;
	char p[128], line[256];
	FILE *f;

	if (sscanf(mm, "%u:%u", &ma, &mi) != 2)
		return err(-EINVAL, "unexpected device %s in a table", mm);
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/uevent", ma, mi);
	f = fopen(p, "r");
	if (!f)
		return err(-ENODEV, "device %s: %s", mm, strerror(errno));
	out[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "/dev/%s", line + 8);
		}
	fclose(f);
	return out[0] ? 0 : err(-ENODEV, "device %s has no name", mm);
}

int pool_open_active(const char *pool, struct pool_label *pl)
{
	char type[32], tmeta[128], *params = NULL, meta_mm[32], data_mm[32], meta[256];
	int r;

	memset(pl, 0, sizeof(*pl));
	r = dmc_status(pool, true, type, sizeof(type), &params);
	if (r <= 0)
		return r < 0 ? r : err(-ENODEV, "pool %s is not active (dedupctl activate %s)",
				       pool, pool);
	if (strcmp(type, "dedup-pool") || sscanf(params, "%31s %31s", meta_mm, data_mm) != 2) {
		free(params);
		return err(-EINVAL, "%s is not a dedup pool", pool);
	}
	free(params);
	pool_dm_names(pool, tmeta, sizeof(tmeta));
	r = dmc_status(tmeta, true, type, sizeof(type), &params);
	if (r <= 0 || strcmp(type, "linear") || sscanf(params, "%31s", meta_mm) != 1) {
		free(params);
		return r < 0 ? r : err(-EINVAL, "pool %s was not made by dedupctl (no %s)", pool,
				       tmeta);
	}
	free(params);
	r = devno_path(meta_mm, meta, sizeof(meta));
	if (!r)
		r = label_read(meta, pl);	/* which clears *pl first */
	if (!r)
		r = devno_path(data_mm, pl->data_path, sizeof(pl->data_path));
	if (!r && strcmp(pl->hdr.name, pool))
		r = err(-EINVAL, "the label of %s names the pool %s", pool, pl->hdr.name);
	return r;
}

int pool_message(struct pool_label *pl, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = dmc_message(pl->hdr.name, msg, NULL);
	if (r == -EROFS)
		return err(r, "pool %s is read-only (dedupctl status %s)", pl->hdr.name,
			   pl->hdr.name);
	return r ? err(r, "pool %s: %s: %s", pl->hdr.name, msg, strerror(-r)) : 0;
}

static void pool_table(const struct pool_label *pl, char *out, size_t len)
{
	char tmeta[128], feat[DDL_FEATURES_MAX + 1], *tok, *save;
	int n = 0;

	snprintf(feat, sizeof(feat), "%s", pl->hdr.features);
	for (tok = strtok_r(feat, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		n++;
	pool_dm_names(pl->hdr.name, tmeta, sizeof(tmeta));
	snprintf(out, len, "/dev/mapper/%s %s 8 %" PRIu64 " %d%s%s", tmeta, pl->data_path,
		 le64toh(pl->hdr.low_water), n, n ? " " : "", pl->hdr.features);
}

/* NAME_tmeta: dm-linear over the metadata part of the raw metadata device. */
static int tmeta_create(const struct pool_label *pl, bool read_only)
{
	char tmeta[128], uuid[128], params[400];
	uint64_t meta_bytes;
	int r = dev_size(pl->meta_path, &meta_bytes);

	if (r)
		return r;
	pool_dm_names(pl->hdr.name, tmeta, sizeof(tmeta));
	snprintf(params, sizeof(params), "%s %" PRIu64, pl->meta_path, (uint64_t)(DDL_META_OFFSET / SECTOR));
	dm_uuid(pl, "tmeta", uuid, sizeof(uuid));
	return dmc_create(tmeta, uuid, (meta_bytes - DDL_META_OFFSET) / SECTOR, "linear", params,
			  read_only);
}

/* Brings up NAME_tmeta and NAME for a label whose devices are known. */
static int pool_start(struct pool_label *pl, uint64_t data_blocks)
{
	char tmeta[128], uuid[128], params[1024];
	int r;

	r = tmeta_create(pl, false);
	if (r)
		return r;
	pool_dm_names(pl->hdr.name, tmeta, sizeof(tmeta));
	pool_table(pl, params, sizeof(params));
	dm_uuid(pl, "pool", uuid, sizeof(uuid));
	r = dmc_create(pl->hdr.name, uuid, data_blocks * (BLOCK / SECTOR), "dedup-pool", params,
		       false);
	if (r)
		dmc_remove(tmeta);
	return r;
}

/* The minimum and the suggested size of a metadata device for DATA bytes of data. */
static void meta_sizes(uint64_t data, uint64_t *min, uint64_t *suggested)
{
	/* about 24.4 bytes per mapped block, two journal areas of 1/32 each */
	uint64_t need = data / BLOCK * 25 * 16 / 15 + (2 << 20);

	if (need < DD_META_MIN_BLOCKS * BLOCK)
		need = DD_META_MIN_BLOCKS * BLOCK;
	*min = DDL_META_OFFSET + need;
	*suggested = DDL_META_OFFSET + (data / 100 > need ? data / 100 : need);
	*suggested = (*suggested + (1 << 20) - 1) >> 20 << 20;
}

/* Refuses a device some other user holds (mounted, in another dm device, ...). */
static int dev_free(const char *path)
{
	int fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);

	if (fd < 0)
		return err(-errno, "%s: %s", path, errno == EBUSY ? "device busy (in use)" :
			   strerror(errno));
	close(fd);
	return 0;
}

int cmd_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "low-water", required_argument, NULL, 'l' },
		{ "index-memory", required_argument, NULL, 'i' },
		{ "feature", required_argument, NULL, 'f' },
		{ "force", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 }
	};
	struct pool_label pl;
	uint64_t meta_bytes, data_bytes, blocks, low = UINT64_MAX, min, sug, mib;
	char feat[DDL_FEATURES_MAX + 1] = "", a[32], b[32], c[32];
	struct stat sm, sd;
	bool force = false;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (parse_size(optarg, &low))
				return err(-EINVAL, "bad --low-water %s (blocks)", optarg);
			break;
		case 'i':
			if (parse_size(optarg, &mib) || !mib || mib > 1048576)
				return err(-EINVAL, "bad --index-memory %s (1..1048576 MiB)", optarg);
			snprintf(feat + strlen(feat), sizeof(feat) - strlen(feat),
				 "%sindex_memory %" PRIu64, feat[0] ? " " : "", mib);
			break;
		case 'f':
			if (strcmp(optarg, "error_if_no_space") && strcmp(optarg, "ignore_discard") &&
			    strcmp(optarg, "no_discard_passdown") && strcmp(optarg, "skip_zero_detect") &&
			    strcmp(optarg, "share_snapshots"))
				return err(-EINVAL, "unknown feature %s (error_if_no_space, "
					   "ignore_discard, no_discard_passdown, skip_zero_detect, "
					   "share_snapshots)", optarg);
			snprintf(feat + strlen(feat), sizeof(feat) - strlen(feat), "%s%s",
				 feat[0] ? " " : "", optarg);
			break;
		case 'F':
			force = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 3)
		return -EINVAL;
	memset(&pl, 0, sizeof(pl));
	if (!valid_pool_name(argv[optind]))
		return err(-EINVAL, "bad pool name %s (letters, digits, + _ .; no '-'; not ending "
			   "in %s; at most %d)", argv[optind], TMETA_SUFFIX, DDL_NAME_MAX - 16);
	snprintf(pl.hdr.name, sizeof(pl.hdr.name), "%s", argv[optind]);
	snprintf(pl.meta_path, sizeof(pl.meta_path), "%s", argv[optind + 1]);
	snprintf(pl.data_path, sizeof(pl.data_path), "%s", argv[optind + 2]);
	snprintf(pl.hdr.features, sizeof(pl.hdr.features), "%s", feat);

	r = dmc_info(pl.hdr.name, NULL, NULL);
	if (r)
		return r < 0 ? r : err(-EEXIST, "a device named %s exists already", pl.hdr.name);
	if ((r = dev_size(pl.meta_path, &meta_bytes)) || (r = dev_size(pl.data_path, &data_bytes)))
		return r;
	if (stat(pl.meta_path, &sm) || stat(pl.data_path, &sd))
		return err(-errno, "%s", strerror(errno));
	if (sm.st_rdev == sd.st_rdev)
		return err(-EINVAL, "the metadata and data devices are the same device");
	if ((r = dev_free(pl.meta_path)) || (r = dev_free(pl.data_path)))
		return r;
	if (data_bytes < 2 * BLOCK)
		return err(-ENOSPC, "%s: too small for data", pl.data_path);
	blocks = data_bytes / BLOCK - 1;	/* the data label takes the block after them */
	meta_sizes(blocks * BLOCK, &min, &sug);
	if (meta_bytes < min) {
		human_size(meta_bytes, a, sizeof(a));
		human_size(min, b, sizeof(b));
		human_size(sug, c, sizeof(c));
		return err(-ENOSPC, "metadata device too small: %s is %s, at least %s needed for "
			   "this data device (%s suggested)", pl.meta_path, a, b, c);
	}
	if (!force) {
		uint64_t sb_blocks;

		r = label_probe(pl.meta_path, NULL);
		if (r)
			return r < 0 ? r : err(-EEXIST, "%s holds a dedup pool already "
					       "(--force to overwrite it)", pl.meta_path);
		r = superblock_data_blocks(pl.meta_path, &sb_blocks);
		if (r <= 0)
			return r < 0 ? r : err(-EEXIST, "%s holds dedup metadata already "
					       "(--force to overwrite it)", pl.meta_path);
	}
	if (low == UINT64_MAX)
		low = blocks / 100;
	if (low > blocks)
		return err(-EINVAL, "--low-water %" PRIu64 " is more than the %" PRIu64
			   " data blocks", low, blocks);
	pl.hdr.low_water = htole64(low);
	pl.hdr.data_blocks = htole64(blocks);
	pl.hdr.prev_data_blocks = htole64(blocks);
	pl.hdr.meta_bytes = htole64(meta_bytes);
	r = label_format(&pl);
	if (!r)
		r = data_label_write(pl.data_path, pl.hdr.uuid, blocks);
	if (!r)
		r = pool_start(&pl, blocks);
	if (!r) {
		human_size(blocks * BLOCK, a, sizeof(a));
		human_size(meta_bytes - DDL_META_OFFSET, b, sizeof(b));
		info("pool %s created: %s of data, %s of metadata", pl.hdr.name, a, b);
		if (meta_bytes < sug) {
			human_size(sug, c, sizeof(c));
			info("note: %s of metadata suggested for this data size", c);
		}
	}
	label_free(&pl);
	return r;
}

/* Candidate devices: those given, else the config file's "device" lines, else all. */
static char **candidates(int argc, char **argv)
{
	size_t n = 0, cap = 16;
	char **out = calloc(cap, sizeof(*out)), line[512], path[300];
	struct dirent *de;
	FILE *f;
	DIR *d;

#define ADD(p) do { \
		if (n + 1 >= cap) \
			out = realloc(out, (cap *= 2) * sizeof(*out)); \
		out[n++] = strdup(p); \
		out[n] = NULL; \
	} while (0)
	if (!out)
		return NULL;
	for (int i = 0; i < argc; i++)
		ADD(argv[i]);
	if (n)
		return out;
	f = fopen(CONFIG_FILE, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " device %299s", path) == 1)
				ADD(path);
		fclose(f);
		if (n)
			return out;
	}
	d = opendir("/sys/class/block");
	if (!d)
		return out;
	while ((de = readdir(d))) {
		char dmuuid[160];

		if (de->d_name[0] == '.')
			continue;
		/* never look inside our own devices (a volume may hold a disk image) */
		snprintf(path, sizeof(path), "/sys/class/block/%s/dm/uuid", de->d_name);
		read_line(path, dmuuid, sizeof(dmuuid));
		if (!strncmp(dmuuid, UUID_PREFIX, strlen(UUID_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		ADD(path);
	}
	closedir(d);
	return out;
#undef ADD
}

static void free_list(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

/* Finds the data device of PL among CANDS; the data space size in *blocks. */
static int find_data(struct pool_label *pl, char **cands, uint64_t *blocks)
{
	uint64_t sizes[2] = { le64toh(pl->hdr.data_blocks), le64toh(pl->hdr.prev_data_blocks) };

	for (int s = 0; s < 2; s++)
		for (char **c = cands; *c; c++) {
			if (!strcmp(*c, pl->meta_path) || data_label_check(*c, pl->hdr.uuid, sizes[s]) != 1)
				continue;
			snprintf(pl->data_path, sizeof(pl->data_path), "%s", *c);
			*blocks = sizes[s];
			return 0;
		}
	return err(-ENODEV, "pool %s: its data device was not found (metadata on %s)",
		   pl->hdr.name, pl->meta_path);
}

static int activate_one(struct pool_label *pl, char **cands, bool volumes)
{
	uint64_t blocks, committed;
	int r;

	r = dmc_info(pl->hdr.name, NULL, NULL);
	if (r < 0)
		return r;
	if (!r) {
		r = find_data(pl, cands, &blocks);
		if (r)
			return r;
		r = superblock_data_blocks(pl->meta_path, &committed);
		if (r < 0)
			return r;
		if (!r && committed > blocks)
			return err(-EINVAL, "pool %s: its metadata has %" PRIu64 " data blocks, its "
				   "label %" PRIu64, pl->hdr.name, committed, blocks);
		r = pool_start(pl, blocks);
		if (r)
			return r;
		info("pool %s activated (metadata %s, data %s)", pl->hdr.name, pl->meta_path,
		     pl->data_path);
		if (!valid_pool_name(pl->hdr.name))	/* made before names were checked */
			fprintf(stderr, "dedupctl: warning: pool name %s has a '-' or ends in %s: "
				"its devices can collide with another pool's\n", pl->hdr.name,
				TMETA_SUFFIX);
	} else {
		struct pool_label act;

		r = pool_open_active(pl->hdr.name, &act);
		if (r)
			return r;
		label_free(pl);
		*pl = act;
	}
	if (!volumes)
		return 0;
	r = volumes_settle(pl);
	for (uint32_t i = 0; !r && i < le32toh(pl->hdr.nr_vols); i++)
		r = volume_activate(pl, &pl->vols[i]);
	return r;
}

int cmd_activate(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "no-volumes", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	bool all = false, volumes = true;
	int o, r = 0, found = 0;
	char **cands;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == 'a')
			all = true;
		else if (o == 'n')
			volumes = false;
		else
			return -EINVAL;
	}
	if (!all && argc - optind == 2) {	/* one volume of an active pool */
		struct pool_label pl;
		struct ddl_vol *v;

		r = pool_open_active(argv[optind], &pl);
		if (!r && !(v = label_find(&pl, argv[optind + 1])))
			r = err(-ENOENT, "pool %s has no volume %s", argv[optind], argv[optind + 1]);
		else if (!r)
			r = volume_activate(&pl, v);
		label_free(&pl);
		return r;
	}
	if (!all && argc - optind < 1)
		return -EINVAL;
	cands = candidates(argc - optind - !all, argv + optind + !all);
	if (!cands)
		return err(-ENOMEM, "out of memory");
	for (char **c = cands; *c; c++) {
		struct pool_label pl;
		int e;

		if (label_probe(*c, NULL) != 1)
			continue;
		e = label_read(*c, &pl);
		if (e) {
			r = r ? r : e;
			continue;
		}
		if (all || !strcmp(pl.hdr.name, argv[optind])) {
			found++;
			e = activate_one(&pl, cands, volumes);
			r = r ? r : e;
		}
		label_free(&pl);
	}
	free_list(cands);
	if (!r && !found)
		return all ? 0 : err(-ENODEV, "no pool named %s on the devices", argv[optind]);
	return r;
}

static int deactivate_pool(const char *pool)
{
	struct pool_label pl;
	char tmeta[128], name[160];
	int r, open;

	r = pool_open_active(pool, &pl);
	if (r)
		return r;
	for (uint32_t i = 0; !r && i < le32toh(pl.hdr.nr_vols); i++) {
		volume_dm_name(&pl, &pl.vols[i], name, sizeof(name));
		if (dmc_info(name, &open, NULL) == 1 && open > 0)
			r = err(-EBUSY, "pool %s is busy: volume %s is open", pool, pl.vols[i].name);
	}
	for (uint32_t i = 0; !r && i < le32toh(pl.hdr.nr_vols); i++)
		r = volume_deactivate(&pl, &pl.vols[i]);
	if (!r && dmc_info(pool, &open, NULL) == 1 && open > 0)
		r = err(-EBUSY, "pool %s is busy: %d device(s) use it", pool, open);
	if (!r)
		r = dmc_remove(pool);
	pool_dm_names(pool, tmeta, sizeof(tmeta));
	if (!r)
		r = dmc_remove(tmeta);
	if (!r)
		info("pool %s deactivated", pool);
	label_free(&pl);
	return r;
}

/* The names of the active pools dedupctl made. */
static int active_pools(char ***out)
{
	char **names;
	size_t n = 0;
	int r = dmc_list(UUID_PREFIX, &names);

	if (r)
		return r;
	for (char **p = names; *p; p++) {
		char type[32];

		if (dmc_status(*p, true, type, sizeof(type), NULL) == 1 && !strcmp(type, "dedup-pool"))
			names[n++] = *p;
		else
			free(*p);
	}
	names[n] = NULL;
	*out = names;
	return 0;
}

int cmd_deactivate(int argc, char **argv)
{
	char **pools = NULL;
	int r;

	if (argc == 2 && !strcmp(argv[1], "--all")) {
		/* Every pool that can go goes (at shutdown, one busy pool must not keep
		 * the others up); the first failure is reported. */
		r = active_pools(&pools);
		for (char **p = pools; p && *p; p++) {
			int e = deactivate_pool(*p);

			r = r ? r : e;
		}
		dmc_free_list(pools);
		return r;
	}
	if (argc == 3) {
		struct pool_label pl;
		struct ddl_vol *v;

		r = pool_open_active(argv[1], &pl);
		if (!r && !(v = label_find(&pl, argv[2])))
			r = err(-ENOENT, "pool %s has no volume %s", argv[1], argv[2]);
		else if (!r)
			r = volume_deactivate(&pl, v);
		label_free(&pl);
		return r;
	}
	return argc == 2 ? deactivate_pool(argv[1]) : -EINVAL;
}

static const char *scan_field(const char *scan, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = scan; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (!strncmp(p, name, n) && p[n] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			return buf;
		}
	}
	snprintf(buf, len, "-");
	return buf;
}

int read_stats(const char *pool, struct pool_stats *s)
{
	char type[32], *params = NULL;
	int r;

	memset(s, 0, sizeof(*s));
	r = dmc_status(pool, false, type, sizeof(type), &params);
	if (r <= 0)
		return r < 0 ? r : err(-ENODEV, "pool %s is not active", pool);
	if (strcmp(type, "dedup-pool") ||
	    sscanf(params, "%" SCNu64 " %" SCNu64 "/%" SCNu64 " %" SCNu64 "/%" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %15s %15s",
		   &s->txn, &s->meta_used, &s->meta_total, &s->data_used, &s->data_total,
		   &s->mapped, &s->shared, &s->zero_elided, &s->discarded, &s->cow, s->mode,
		   s->needs_check) != 12) {
		r = err(-EINVAL, "pool %s: unexpected status \"%s\"", pool, params);
		free(params);
		return r;
	}
	free(params);
	if (dmc_message(pool, "scan stats", &s->scan))
		s->scan = NULL;	/* a failed pool answers nothing: status still shows the mode */
	return 0;
}

static void print_status(const char *pool, const struct pool_stats *s, bool last)
{
	char a[32], b[32], c[32], st[32], done[32], todo[32], eta[32], rate[32], setr[32];
	char freed[32];
	uint64_t saved = s->mapped > s->data_used ? s->mapped - s->data_used : 0;
	double pct = s->mapped ? 100.0 * (double)saved / (double)s->mapped : 0;
	double pass = 0;
	unsigned long long dn, td;

	scan_field(s->scan, "state", st, sizeof(st));
	scan_field(s->scan, "pass_done", done, sizeof(done));
	scan_field(s->scan, "pass_todo", todo, sizeof(todo));
	scan_field(s->scan, "eta_seconds", eta, sizeof(eta));
	scan_field(s->scan, "read_mib_s", rate, sizeof(rate));
	scan_field(s->scan, "rate_mib", setr, sizeof(setr));
	scan_field(s->scan, "bytes_freed", freed, sizeof(freed));
	if (sscanf(done, "%llu", &dn) == 1 && sscanf(todo, "%llu", &td) == 1 && td)
		pass = 100.0 * (double)dn / (double)td;
	if (opt_json) {
		printf("  {\"pool\": \"%s\", \"mode\": \"%s\", \"needs_check\": %s,\n"
		       "   \"logical_used_bytes\": %" PRIu64 ", \"physical_used_bytes\": %" PRIu64
		       ", \"data_bytes\": %" PRIu64 ",\n"
		       "   \"metadata_used_bytes\": %" PRIu64 ", \"metadata_bytes\": %" PRIu64 ",\n"
		       "   \"saving_percent\": %.1f, \"saved_bytes\": %" PRIu64
		       ", \"bytes_freed\": %s,\n"
		       "   \"scanner\": {\"state\": \"%s\", \"pass_percent\": %.1f, "
		       "\"eta_seconds\": %s, \"read_mib_s\": %s, \"rate_mib_s\": %s}}%s\n",
		       json_esc(pool), s->mode, strcmp(s->needs_check, "-") ? "true" : "false",
		       s->mapped * BLOCK, s->data_used * BLOCK, s->data_total * BLOCK,
		       s->meta_used * BLOCK, s->meta_total * BLOCK, pct, saved * BLOCK,
		       strcmp(freed, "-") ? freed : "null", st, pass,
		       strcmp(eta, "-") ? eta : "null", strcmp(rate, "-") ? rate : "null",
		       strcmp(setr, "-") ? setr : "null", last ? "" : ",");
		return;
	}
	printf("pool %s\n", pool);
	human_size(s->data_used * BLOCK, a, sizeof(a));
	human_size(s->data_total * BLOCK, b, sizeof(b));
	printf("  physical used   %s of %s (%.1f %%)\n", a, b,
	       s->data_total ? 100.0 * (double)s->data_used / (double)s->data_total : 0);
	human_size(s->mapped * BLOCK, a, sizeof(a));
	printf("  logical used    %s\n", a);
	human_size(saved * BLOCK, c, sizeof(c));
	printf("  saving          %.1f %% (%s)\n", pct, c);
	if (strcmp(freed, "-")) {
		human_size(strtoull(freed, NULL, 10), a, sizeof(a));
		printf("  freed by scans  %s\n", a);
	}
	human_size(s->meta_used * BLOCK, a, sizeof(a));
	human_size(s->meta_total * BLOCK, b, sizeof(b));
	printf("  metadata used   %s of %s\n", a, b);
	if (!strcmp(st, "scanning") || !strcmp(st, "unsharing"))
		printf("  scanner         %s, %.1f %% of the pass, ETA %s s, %s MiB/s (limit %s)\n",
		       st, pass, eta, rate, setr);
	else
		printf("  scanner         %s (limit %s MiB/s)\n", st, setr);
	printf("  mode            %s%s\n", s->mode,
	       strcmp(s->needs_check, "-") ? ", needs_check" : "");
}

int cmd_status(int argc, char **argv)
{
	char **pools = NULL;
	int r = 0, n = 0, o;

	for (o = 1; o < argc; o++)
		if (!strcmp(argv[o], "--json"))
			opt_json = true;
	if (argc == 1 || (argc == 2 && opt_json)) {
		r = active_pools(&pools);
		if (r)
			return r;
	} else {
		pools = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*pools));
		for (o = 1; pools && o < argc; o++)
			if (strcmp(argv[o], "--json"))
				pools[n++] = strdup(argv[o]);
	}
	if (!pools)
		return err(-ENOMEM, "out of memory");
	for (n = 0; pools[n]; n++)
		;
	if (opt_json)
		printf("[\n");
	for (int i = 0; !r && i < n; i++) {
		struct pool_stats s;

		r = read_stats(pools[i], &s);
		if (!r)
			print_status(pools[i], &s, i == n - 1);
		free(s.scan);
	}
	if (opt_json)
		printf("]\n");
	dmc_free_list(pools);
	return r;
}

int cmd_pools(int argc, char **argv)
{
	char **cands;
	int r = 0, n = 0, i = 1;

	if (argc > 1 && !strcmp(argv[1], "--json")) {	/* (as well as dedupctl --json pools) */
		opt_json = true;
		i = 2;
	}
	cands = candidates(argc - i, argv + i);
	if (!cands)
		return err(-ENOMEM, "out of memory");
	if (opt_json)
		printf("[");
	for (char **c = cands; *c; c++) {
		struct pool_label pl;
		char u[33];
		uint64_t blocks;
		int act;

		if (label_probe(*c, NULL) != 1 || label_read(*c, &pl))
			continue;
		uuid_str(pl.hdr.uuid, u);
		act = dmc_info(pl.hdr.name, NULL, NULL);
		if (find_data(&pl, cands, &blocks))
			snprintf(pl.data_path, sizeof(pl.data_path), "(not found)");
		if (opt_json)
			printf("%s\n  {\"name\": \"%s\", \"uuid\": \"%s\", \"metadata\": \"%s\", "
			       "\"data\": \"%s\", \"volumes\": %u, \"active\": %s}", n ? "," : "",
			       json_esc(pl.hdr.name), u, json_esc(*c), json_esc(pl.data_path),
			       le32toh(pl.hdr.nr_vols), act == 1 ? "true" : "false");
		else
			printf("%s uuid %s metadata %s data %s volumes %u %s\n", pl.hdr.name, u, *c,
			       pl.data_path, le32toh(pl.hdr.nr_vols), act == 1 ? "active" : "inactive");
		n++;
		label_free(&pl);
	}
	if (opt_json)
		printf("%s]\n", n ? "\n" : "");
	free_list(cands);
	return r;
}

int cmd_scan(int argc, char **argv)
{
	struct pool_label pl;
	char *resp = NULL;
	uint64_t v;
	int r;

	if (argc < 3)
		return -EINVAL;
	r = pool_open_active(argv[1], &pl);
	if (r)
		return r;
	if (argc == 3 && !strcmp(argv[2], "start"))
		r = pool_message(&pl, "scan run 1");
	else if (argc == 3 && !strcmp(argv[2], "stop"))
		r = pool_message(&pl, "scan run 0");
	else if (argc == 3 && !strcmp(argv[2], "unshare"))
		r = pool_message(&pl, "scan run 2");
	else if (argc == 3 && !strcmp(argv[2], "full"))
		r = pool_message(&pl, "scan full");
	else if (argc == 3 && !strcmp(argv[2], "stats")) {
		r = dmc_message(pl.hdr.name, "scan stats", &resp);
		if (r)
			r = err(r, "pool %s: scan stats: %s", pl.hdr.name, strerror(-r));
		else
			fputs(resp, stdout);
		free(resp);
	} else if (argc == 4 && !parse_size(argv[3], &v)) {
		if (!strcmp(argv[2], "rate"))
			r = pool_message(&pl, "scan rate %" PRIu64, v);
		else if (!strcmp(argv[2], "index-memory"))
			r = pool_message(&pl, "scan index_memory %" PRIu64, v);
		else if (!strcmp(argv[2], "share-cap"))
			r = pool_message(&pl, "scan share_cap %" PRIu64, v);
		else
			r = -EINVAL;
	} else {
		r = -EINVAL;
	}
	label_free(&pl);
	return r;
}

int cmd_resize(int argc, char **argv)
{
	return argc == 2 ? pool_resize(argv[1]) : -EINVAL;
}

/* The metadata space of an active pool, in blocks (its status line). */
static int pool_meta_total(const char *pool, uint64_t *total)
{
	char type[32], *params = NULL;
	uint64_t txn, used;
	int r = dmc_status(pool, false, type, sizeof(type), &params);

	if (r > 0 && sscanf(params, "%" SCNu64 " %" SCNu64 "/%" SCNu64, &txn, &used, total) == 3)
		r = 0;
	else if (r >= 0)
		r = err(-EINVAL, "pool %s: cannot read its status", pool);
	free(params);
	return r;
}

/* NAME_tmeta over the whole metadata part of a raw metadata device that grew. */
static int tmeta_grow(const struct pool_label *pl, uint64_t meta_bytes)
{
	char tmeta[128], params[400];
	int r;

	pool_dm_names(pl->hdr.name, tmeta, sizeof(tmeta));
	snprintf(params, sizeof(params), "%s %" PRIu64, pl->meta_path,
		 (uint64_t)(DDL_META_OFFSET / SECTOR));
	r = dmc_reload(tmeta, (meta_bytes - DDL_META_OFFSET) / SECTOR, "linear", params);
	if (!r)
		r = dmc_suspend(tmeta);
	if (!r)
		r = dmc_resume(tmeta);
	return r;
}

/*
 * Takes the room of a data device and/or a metadata device that grew (e.g.
 * lvextend): the data label at the new end, the pool's label, the tables;
 * the pool's resume grows its data space to its new length and its
 * metadata space to its metadata device (up to the limit set at format).
 */
int pool_resize(const char *pool)
{
	struct pool_label pl;
	uint64_t bytes, blocks, cur, meta_raw = 0, meta_now = 0, meta_before = 0, meta_after;
	char params[1024], tmeta[160], a[32], b[32];
	bool data_grew, meta_grew, tmeta_grew;
	int r;

	r = pool_open_active(pool, &pl);
	if (!r)
		r = label_begin(&pl);	/* the size as the label holds it now; label_free() */
	if (r) {
		label_free(&pl);
		return r;
	}
	cur = le64toh(pl.hdr.data_blocks);
	r = dev_size(pl.data_path, &bytes);
	blocks = bytes / BLOCK - 1;
	snprintf(tmeta, sizeof(tmeta), "/dev/mapper/");
	pool_dm_names(pool, tmeta + strlen(tmeta), sizeof(tmeta) - strlen(tmeta));
	if (!r)
		r = dev_size(pl.meta_path, &meta_raw);
	if (!r)
		r = dev_size(tmeta, &meta_now);
	if (!r)
		r = pool_meta_total(pool, &meta_before);
	data_grew = blocks > cur;
	/* the device under NAME_tmeta grew, or the pool has not taken NAME_tmeta's room */
	tmeta_grew = meta_raw - DDL_META_OFFSET > meta_now;
	meta_grew = tmeta_grew || meta_now / BLOCK > meta_before;
	if (!r && !data_grew && !meta_grew)
		r = err(-EINVAL, "pool %s: neither %s (%" PRIu64 " blocks of data space) nor %s "
			"has grown", pool, pl.data_path, cur, pl.meta_path);
	/* the new data label first, then the label that points at it, then the pool */
	if (!r && data_grew)
		r = data_label_write(pl.data_path, pl.hdr.uuid, blocks);
	if (!r && data_grew) {
		pl.hdr.prev_data_blocks = htole64(cur);
		pl.hdr.data_blocks = htole64(blocks);
		r = label_write(&pl);
	}
	if (!r && tmeta_grew)
		r = tmeta_grow(&pl, meta_raw);
	pool_table(&pl, params, sizeof(params));
	if (!r)
		r = dmc_reload(pl.hdr.name, le64toh(pl.hdr.data_blocks) * (BLOCK / SECTOR),
			       "dedup-pool", params);
	if (!r)
		r = dmc_suspend(pl.hdr.name);
	if (!r)
		r = dmc_resume(pl.hdr.name);
	if (!r && data_grew) {
		human_size(cur * BLOCK, a, sizeof(a));
		human_size(blocks * BLOCK, b, sizeof(b));
		info("pool %s: data space grown from %s to %s", pool, a, b);
	}
	if (!r && meta_grew)
		r = pool_meta_total(pool, &meta_after);
	if (!r && meta_grew) {
		human_size(meta_before * BLOCK, a, sizeof(a));
		human_size(meta_after * BLOCK, b, sizeof(b));
		if (meta_after == meta_before && !data_grew)
			r = err(-EFBIG, "pool %s: the metadata space stays at %s: the limit set when "
				"the pool was created (see the kernel log)", pool, a);
		else if (meta_after > meta_before)
			info("pool %s: metadata space grown from %s to %s", pool, a, b);
		if (!r && meta_after < (meta_raw - DDL_META_OFFSET) / BLOCK)
			info("note: the pool cannot use more metadata than %s (its limit, set "
			     "when it was created)", b);
	}
	label_free(&pl);
	return r;
}

/* dedup_check beside this program, else on PATH. */
static void exec_check(const char *dev, bool clear)
{
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *argv[] = { "dedup_check", clear ? "--clear-needs-check" : (char *)dev,
			 clear ? (char *)dev : NULL, NULL };

	if (n > 0) {
		self[n] = 0;
		*strrchr(self, '/') = 0;
		snprintf(path, sizeof(path), "%s/dedup_check", self);
		execv(path, argv);
	}
	execvp("dedup_check", argv);
	fprintf(stderr, "dedupctl: cannot run dedup_check: %s\n", strerror(errno));
	_exit(127);
}

int cmd_check(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "clear-needs-check", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct pool_label pl;
	char tmeta[128], dev[160];
	bool clear = false;
	int r, st = 0, o;
	pid_t pid;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o != 'c')
			return -EINVAL;
		clear = true;
	}
	if (argc - optind != 1)
		return -EINVAL;
	r = label_read(argv[optind], &pl);
	if (r)
		return r;
	if (dmc_info(pl.hdr.name, NULL, NULL) == 1) {
		label_free(&pl);
		return err(-EBUSY, "pool %s is active: deactivate it first", pl.hdr.name);
	}
	pool_dm_names(pl.hdr.name, tmeta, sizeof(tmeta));
	r = tmeta_create(&pl, !clear);	/* written only to clear the flag */
	if (r) {
		label_free(&pl);
		return r;
	}
	snprintf(dev, sizeof(dev), "/dev/mapper/%s", tmeta);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		exec_check(dev, clear);
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		r = err(-errno, "cannot run dedup_check: %s", strerror(errno));
	dmc_remove(tmeta);
	if (!r && (!WIFEXITED(st) || WEXITSTATUS(st)))
		r = err(-EUCLEAN, "pool %s: the metadata check failed (dedup_check exit %d)",
			pl.hdr.name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	if (!r)
		info("pool %s: metadata clean%s", pl.hdr.name, clear ? ", needs_check clear" : "");
	label_free(&pl);
	return r;
}
