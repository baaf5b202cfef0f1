// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl: volumes by name.  The pool knows volumes by id; the label maps names to
 * ids and keeps their sizes.  Every change is recorded in the label before the pool
 * is asked (state CREATING or DELETING) and confirmed after, so a crash in between
 * is finished by volumes_settle() at the next activation:
 *   CREATING: the volume exists in the pool (a probe device can load it) -> OK;
 *             it does not -> the record goes (the command never reported success);
 *   DELETING: delete_volume again (gone already is fine), then the record goes.
 * Each command holds the pool's lock (label_begin) from its re-read of the label to
 * its end, so that two dedupctl commands never change the label from stale copies.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedupctl.h"
#include "dm-dedup/format.h"

void volume_dm_name(const struct pool_label *pl, const struct ddl_vol *v, char *out, size_t len)
{
	snprintf(out, len, "%s-%s", pl->hdr.name, v->name);
}

/*
 * A crash here, for the tests of volumes_settle(): DEDUPCTL_FAULT=POINT ends the
 * program at once (exit 99) when it reaches POINT.
 */
static void fault_point(const char *point)
{
	const char *f = getenv("DEDUPCTL_FAULT");

	if (f && !strcmp(f, point)) {
		fprintf(stderr, "dedupctl: DEDUPCTL_FAULT=%s: stopping here\n", point);
		_exit(99);
	}
}

static void vol_table(const struct pool_label *pl, uint32_t id, char *out, size_t len)
{
	snprintf(out, len, "/dev/mapper/%s %u", pl->hdr.name, id);
}

int volume_activate(struct pool_label *pl, struct ddl_vol *v)
{
	char name[160], uuid[128], params[200], what[32];
	bool suspended = false;
	int r;

	if (le32toh(v->state) != DDL_VOL_OK && le32toh(v->state) != DDL_VOL_IMPORTING)
		return 0;
	volume_dm_name(pl, v, name, sizeof(name));
	r = dmc_info(name, NULL, &suspended);
	if (r < 0)
		return r;
	if (r) {	/* a snapshot command that died leaves its origin suspended */
		if (!suspended)
			return 0;
		info("volume %s was suspended: resuming it", name);
		return dmc_resume(name);
	}
	snprintf(what, sizeof(what), "vol%u", le32toh(v->id));
	dm_uuid(pl, what, uuid, sizeof(uuid));
	vol_table(pl, le32toh(v->id), params, sizeof(params));
	return dmc_create(name, uuid, le64toh(v->sectors), "dedup", params, false);
}

int volume_deactivate(struct pool_label *pl, struct ddl_vol *v)
{
	char name[160];
	int r, open;

	volume_dm_name(pl, v, name, sizeof(name));
	r = dmc_info(name, &open, NULL);
	if (r <= 0)
		return r;
	if (open > 0)
		return err(-EBUSY, "volume %s is open (mounted or in use)", name);
	return dmc_remove(name);
}

/* 1 if the pool has volume ID: a device can load it. */
static int volume_exists(struct pool_label *pl, uint32_t id)
{
	char name[160], params[200];
	int r;

	snprintf(name, sizeof(name), "%s_probe", pl->hdr.name);
	vol_table(pl, id, params, sizeof(params));
	r = dmc_create(name, NULL, BLOCK / SECTOR, "dedup", params, true);
	if (r) {
		err_clear();
		return 0;
	}
	dmc_remove(name);
	return 1;
}

int volumes_settle(struct pool_label *pl)
{
	bool changed = false;
	int r = label_begin(pl);

	if (r)
		return r;
	for (uint32_t i = 0; i < le32toh(pl->hdr.nr_vols);) {
		struct ddl_vol *v = &pl->vols[i];
		uint32_t id = le32toh(v->id);

		switch (le32toh(v->state)) {
		case DDL_VOL_CREATING:
			changed = true;
			if (volume_exists(pl, id)) {
				v->state = htole32(DDL_VOL_OK);
				v->origin = htole32(DD_NO_VOLUME);
				info("volume %s: its creation was interrupted; it exists", v->name);
				i++;
			} else {
				info("volume %s: its creation was interrupted; dropped", v->name);
				label_del(pl, v);
			}
			continue;
		case DDL_VOL_DELETING:
			{
				char msg[64];

				snprintf(msg, sizeof(msg), "delete_volume %u", id);
				r = dmc_message(pl->hdr.name, msg, NULL);
			}
			if (r && r != -ENOENT) {
				r = err(r, "volume %s: delete_volume %u: %s", v->name, id,
					strerror(-r));
				label_end(pl);
				return r;
			}
			info("volume %s: its deletion was interrupted; finished", v->name);
			label_del(pl, v);
			changed = true;
			continue;
		}
		i++;
	}
	r = changed ? label_write(pl) : 0;
	label_end(pl);
	return r;
}

static int next_id(struct pool_label *pl, uint32_t from, uint32_t *id)
{
	for (uint32_t i = from; i <= DD_MAX_VOLUME_ID; i++)
		if (!label_find_id(pl, i)) {
			*id = i;
			return 0;
		}
	return err(-ENOSPC, "pool %s: no free volume id", pl->hdr.name);
}

/*
 * Records NAME (CREATING), asks the pool for it (create_volume, or create_snap of
 * ORIGIN), confirms it.  An id the pool has already (a volume made without dedupctl)
 * is skipped.
 */
static int volume_new_locked(struct pool_label *pl, const char *name, uint64_t sectors,
			     uint32_t domain, struct ddl_vol *origin, uint32_t state, bool activate)
{
	char msg[96];
	struct ddl_vol *v;
	uint32_t id = 0;
	int r;

	if (label_find(pl, name))
		return err(-EEXIST, "pool %s has a volume %s already", pl->hdr.name, name);
	for (;;) {
		r = next_id(pl, id, &id);
		if (r)
			return r;
		v = label_add(pl);
		if (!v)
			return err(-ENOMEM, "out of memory");
		v->id = htole32(id);
		v->state = htole32(DDL_VOL_CREATING);
		v->domain = htole32(domain);
		v->sectors = htole64(sectors);
		if (origin)
			v->origin = origin->id;
		snprintf(v->name, sizeof(v->name), "%s", name);
		r = label_write(pl);
		if (r)
			return r;
		fault_point("create-recorded");
		if (origin)
			snprintf(msg, sizeof(msg), "create_snap %u %u", id, le32toh(origin->id));
		else
			snprintf(msg, sizeof(msg), "create_volume %u %u", id, domain);
		r = dmc_message(pl->hdr.name, msg, NULL);
		if (!r)
			fault_point("create-done");
		v = label_find(pl, name);
		if (r != -EEXIST)
			break;
		label_del(pl, v);	/* not ours: try the next id */
		id++;
	}
	if (r) {
		label_del(pl, v);
		label_write(pl);
		if (r == -EROFS)
			return err(r, "pool %s is read-only", pl->hdr.name);
		return err(r, "pool %s: %s: %s", pl->hdr.name, msg,
			   r == -ENOSPC ? "no metadata space" : strerror(-r));
	}
	v->state = htole32(state);
	v->origin = htole32(DD_NO_VOLUME);
	r = label_write(pl);
	if (!r && activate)
		r = volume_activate(pl, label_find(pl, name));
	return r;
}

/* The whole change under the pool's lock, from the label as the device holds it
 * (ORIGIN is a copy, not a pointer into pl->vols, which the re-read replaces). */
int volume_new(struct pool_label *pl, const char *name, uint64_t sectors, uint32_t domain,
	       struct ddl_vol *origin, uint32_t state, bool activate)
{
	int r;

	if (!valid_name(name, DDL_NAME_MAX - 1))
		return err(-EINVAL, "bad volume name %s (letters, digits, + _ . -; at most %d)",
			   name, DDL_NAME_MAX - 1);
	r = label_begin(pl);
	if (r)
		return r;
	r = volume_new_locked(pl, name, sectors, domain, origin, state, activate);
	label_end(pl);
	return r;
}

int cmd_vol_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "inactive", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 }
	};
	struct pool_label pl;
	uint64_t bytes, dom = 0;
	bool activate = true;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (o == 'd') {
			if (parse_size(optarg, &dom) || dom > 255)
				return err(-EINVAL, "bad --domain %s (0..255)", optarg);
		} else if (o == 'i') {
			activate = false;
		} else {
			return -EINVAL;
		}
	}
	if (argc - optind != 3)
		return -EINVAL;
	if (parse_size(argv[optind + 2], &bytes) || !bytes || bytes % BLOCK ||
	    bytes / BLOCK > DD_MAX_ADDR + 1)
		return err(-EINVAL, "bad size %s (a multiple of 4 KiB, at most 1 EiB)",
			   argv[optind + 2]);
	r = pool_open_active(argv[optind], &pl);
	if (!r)
		r = volume_new(&pl, argv[optind + 1], bytes / SECTOR, (uint32_t)dom, NULL, DDL_VOL_OK,
			       activate);
	if (!r)
		info("volume %s-%s created", argv[optind], argv[optind + 1]);
	label_free(&pl);
	return r;
}

int cmd_vol_snapshot(int argc, char **argv)
{
	struct pool_label pl;
	struct ddl_vol *o, orig;
	char name[160];
	bool activate = true, suspended = false;
	int r, act;

	if (argc == 5 && !strcmp(argv[4], "--inactive")) {
		activate = false;
		argc--;
	}
	if (argc != 4)
		return -EINVAL;
	r = pool_open_active(argv[1], &pl);
	if (!r)
		r = label_begin(&pl);	/* held until the end, across the suspend */
	if (r) {
		label_free(&pl);
		return r;
	}
	o = label_find(&pl, argv[2]);
	if (!o) {
		label_free(&pl);
		return err(-ENOENT, "pool %s has no volume %s", argv[1], argv[2]);
	}
	orig = *o;
	volume_dm_name(&pl, &orig, name, sizeof(name));
	/* create_snap needs the origin suspended: in-place writes must not reach the copy */
	act = dmc_info(name, NULL, NULL);
	if (act == 1) {
		r = dmc_suspend(name);
		suspended = !r;
	}
	if (!r)
		r = volume_new(&pl, argv[3], le64toh(orig.sectors), le32toh(orig.domain), &orig,
			       DDL_VOL_OK, false);
	if (suspended) {
		int e = dmc_resume(name);

		r = r ? r : e;
	}
	if (!r && activate)
		r = volume_activate(&pl, label_find(&pl, argv[3]));
	if (!r)
		info("snapshot %s-%s of %s created", argv[1], argv[3], argv[2]);
	label_free(&pl);
	return r;
}

int cmd_vol_delete(int argc, char **argv)
{
	struct pool_label pl;
	struct ddl_vol *v;
	char msg[64], vname[DDL_NAME_MAX + 1];
	uint32_t id;
	int r;

	if (argc != 3)
		return -EINVAL;
	r = pool_open_active(argv[1], &pl);
	if (!r)
		r = label_begin(&pl);	/* label_free() lets it go */
	if (r) {
		label_free(&pl);
		return r;
	}
	v = label_find(&pl, argv[2]);
	if (!v)
		r = err(-ENOENT, "pool %s has no volume %s", argv[1], argv[2]);
	if (!r)
		r = volume_deactivate(&pl, v);
	if (!r) {
		id = le32toh(v->id);
		snprintf(vname, sizeof(vname), "%s", v->name);
		v->state = htole32(DDL_VOL_DELETING);
		r = label_write(&pl);
		if (!r)
			fault_point("delete-recorded");
	}
	if (!r) {
		snprintf(msg, sizeof(msg), "delete_volume %u", id);
		r = dmc_message(pl.hdr.name, msg, NULL);
		if (r == -ENOENT)
			r = 0;
		if (r)
			r = err(r, "pool %s: %s: %s", argv[1], msg, strerror(-r));
	}
	if (!r) {
		label_del(&pl, label_find(&pl, vname));
		r = label_write(&pl);
	}
	if (!r)
		info("volume %s-%s deleted (its blocks are freed in the background)", argv[1],
		     argv[2]);
	label_free(&pl);
	return r;
}

int cmd_vol_rename(int argc, char **argv)
{
	struct pool_label pl;
	struct ddl_vol *v, old;
	char from[160], to[160];
	int r, act;

	if (argc != 4)
		return -EINVAL;
	if (!valid_name(argv[3], DDL_NAME_MAX - 1))
		return err(-EINVAL, "bad volume name %s", argv[3]);
	r = pool_open_active(argv[1], &pl);
	if (!r)
		r = label_begin(&pl);	/* label_free() lets it go */
	if (r) {
		label_free(&pl);
		return r;
	}
	v = label_find(&pl, argv[2]);
	if (!v)
		r = err(-ENOENT, "pool %s has no volume %s", argv[1], argv[2]);
	else if (label_find(&pl, argv[3]))
		r = err(-EEXIST, "pool %s has a volume %s already", argv[1], argv[3]);
	if (!r) {
		old = *v;
		volume_dm_name(&pl, &old, from, sizeof(from));
		snprintf(v->name, sizeof(v->name), "%s", argv[3]);
		volume_dm_name(&pl, v, to, sizeof(to));
		act = dmc_info(from, NULL, NULL);
		r = act < 0 ? act : label_write(&pl);
		if (!r && act == 1)
			r = dmc_rename(from, to);
	}
	if (!r)
		info("volume %s-%s renamed to %s", argv[1], argv[2], argv[3]);
	label_free(&pl);
	return r;
}

static const char *vol_state(const struct ddl_vol *v)
{
	switch (le32toh(v->state)) {
	case DDL_VOL_OK: return "ok";
	case DDL_VOL_CREATING: return "creating";
	case DDL_VOL_DELETING: return "deleting";
	case DDL_VOL_IMPORTING: return "importing";
	}
	return "unknown";
}

int cmd_vol_list(int argc, char **argv)
{
	struct pool_label pl;
	int r;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json")) {
			opt_json = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
		}
	if (argc != 2)
		return -EINVAL;
	r = pool_open_active(argv[1], &pl);
	if (r)
		return r;
	if (opt_json)
		printf("[\n");
	else
		printf("%-24s %8s %10s %10s %6s %-9s %s\n", "VOLUME", "ID", "SIZE", "MAPPED",
		       "DOMAIN", "STATE", "DEVICE");
	for (uint32_t i = 0; i < le32toh(pl.hdr.nr_vols); i++) {
		struct ddl_vol *v = &pl.vols[i];
		char name[160], type[32], *params = NULL, sz[32], mp[32] = "-", dev[180] = "-";
		unsigned long long mapped = 0;
		int act;

		volume_dm_name(&pl, v, name, sizeof(name));
		act = dmc_status(name, false, type, sizeof(type), &params);
		if (act == 1 && sscanf(params, "%llu", &mapped) == 1) {
			human_size(mapped * BLOCK, mp, sizeof(mp));
			snprintf(dev, sizeof(dev), "/dev/mapper/%s", name);
		}
		free(params);
		human_size(le64toh(v->sectors) * SECTOR, sz, sizeof(sz));
		if (opt_json) {
			char mb[32] = "null";

			if (act == 1)
				snprintf(mb, sizeof(mb), "%llu", mapped * BLOCK);
			printf("  {\"name\": \"%s\", \"id\": %u, \"size_bytes\": %" PRIu64
			       ", \"mapped_bytes\": %s, \"domain\": %u, \"state\": \"%s\", "
			       "\"active\": %s}%s\n",
			       json_esc(v->name), le32toh(v->id), le64toh(v->sectors) * SECTOR, mb,
			       le32toh(v->domain), vol_state(v), act == 1 ? "true" : "false",
			       i + 1 < le32toh(pl.hdr.nr_vols) ? "," : "");
		}
		else
			printf("%-24s %8u %10s %10s %6u %-9s %s\n", v->name, le32toh(v->id), sz, mp,
			       le32toh(v->domain), vol_state(v), dev);
	}
	if (opt_json)
		printf("]\n");
	label_free(&pl);
	return 0;
}
