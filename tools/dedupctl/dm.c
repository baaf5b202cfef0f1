// SPDX-License-Identifier: GPL-2.0
/*
 * dedupctl: device-mapper calls through libdevmapper.  Devices are created with
 * udev synchronisation, so /dev/mapper/NAME exists when a call returns.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdevmapper.h>

#include "dedupctl.h"

static char dm_last[512];

/* libdevmapper's log: keep the last message for the error line, print nothing. */
static void dm_log(int level, const char *file, int line, int dm_errno, const char *fmt, ...)
{
	va_list ap;

	if ((level & 7) > 3)	/* warnings and errors only */
		return;
	va_start(ap, fmt);
	vsnprintf(dm_last, sizeof(dm_last), fmt, ap);
	va_end(ap);
}

static void dm_setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	dm_log_with_errno_init(dm_log);
	dm_udev_set_sync_support(1);
}

static struct dm_task *task(int type, const char *name)
{
	struct dm_task *dmt;

	dm_setup();
	dm_last[0] = 0;
	dmt = dm_task_create(type);
	if (!dmt)
		return NULL;
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/* Runs DMT (with udev sync for the types that change /dev); -errno on failure. */
static int run(struct dm_task *dmt, bool sync)
{
	uint32_t cookie = 0;
	int r = 0, e;

	if (sync && !dm_task_set_cookie(dmt, &cookie, 0)) {
		dm_task_destroy(dmt);
		return -ENOMEM;
	}
	if (!dm_task_run(dmt)) {
		e = dm_task_get_errno(dmt);
		r = e > 0 ? -e : -EIO;
	}
	if (sync)
		dm_udev_wait(cookie);
	return r;
}

static int fail(int r, const char *what, const char *name)
{
	return err(r, "%s %s: %s", what, name, dm_last[0] ? dm_last : strerror(-r));
}

int dmc_create(const char *name, const char *uuid, uint64_t sectors, const char *type,
	       const char *params, bool read_only)
{
	struct dm_task *dmt = task(DM_DEVICE_CREATE, name);
	int r;

	if (!dmt)
		return err(-ENOMEM, "out of memory");
	if ((uuid && !dm_task_set_uuid(dmt, uuid)) ||
	    !dm_task_add_target(dmt, 0, sectors, type, params) ||
	    (read_only && !dm_task_set_ro(dmt))) {
		dm_task_destroy(dmt);
		return err(-ENOMEM, "out of memory");
	}
	r = run(dmt, true);
	dm_task_destroy(dmt);
	return r ? fail(r, "cannot create", name) : 0;
}

int dmc_reload(const char *name, uint64_t sectors, const char *type, const char *params)
{
	struct dm_task *dmt = task(DM_DEVICE_RELOAD, name);
	int r;

	if (!dmt || !dm_task_add_target(dmt, 0, sectors, type, params)) {
		if (dmt)
			dm_task_destroy(dmt);
		return err(-ENOMEM, "out of memory");
	}
	r = run(dmt, false);
	dm_task_destroy(dmt);
	return r ? fail(r, "cannot reload", name) : 0;
}

static int simple(int type, const char *name, const char *what, bool sync)
{
	struct dm_task *dmt = task(type, name);
	int r;

	if (!dmt)
		return err(-ENOMEM, "out of memory");
	if (type == DM_DEVICE_REMOVE)
		dm_task_retry_remove(dmt);
	r = run(dmt, sync);
	dm_task_destroy(dmt);
	return r ? fail(r, what, name) : 0;
}

int dmc_suspend(const char *name)
{
	return simple(DM_DEVICE_SUSPEND, name, "cannot suspend", false);
}

int dmc_resume(const char *name)
{
	return simple(DM_DEVICE_RESUME, name, "cannot resume", true);
}

int dmc_remove(const char *name)
{
	return simple(DM_DEVICE_REMOVE, name, "cannot remove", true);
}

int dmc_rename(const char *name, const char *new_name)
{
	struct dm_task *dmt = task(DM_DEVICE_RENAME, name);
	int r;

	if (!dmt || !dm_task_set_newname(dmt, new_name)) {
		if (dmt)
			dm_task_destroy(dmt);
		return err(-ENOMEM, "out of memory");
	}
	r = run(dmt, true);
	dm_task_destroy(dmt);
	return r ? fail(r, "cannot rename", name) : 0;
}

int dmc_message(const char *name, const char *msg, char **response)
{
	struct dm_task *dmt = task(DM_DEVICE_TARGET_MSG, name);
	const char *resp;
	int r;

	if (response)
		*response = NULL;
	if (!dmt || !dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg)) {
		if (dmt)
			dm_task_destroy(dmt);
		return err(-ENOMEM, "out of memory");
	}
	r = run(dmt, false);
	if (!r && response) {
		resp = dm_task_get_message_response(dmt);
		*response = strdup(resp ? resp : "");
	}
	dm_task_destroy(dmt);
	return r;	/* the caller says what the message was for */
}

int dmc_status(const char *name, bool table, char *type, size_t type_len, char **params)
{
	struct dm_task *dmt = task(table ? DM_DEVICE_TABLE : DM_DEVICE_STATUS, name);
	uint64_t start, len;
	char *ttype = NULL, *tparams = NULL;
	struct dm_info di;
	int r;

	if (params)
		*params = NULL;
	if (!dmt)
		return err(-ENOMEM, "out of memory");
	r = run(dmt, false);
	if (r == -ENXIO || (!r && (!dm_task_get_info(dmt, &di) || !di.exists))) {
		dm_task_destroy(dmt);
		return 0;
	}
	if (r) {
		dm_task_destroy(dmt);
		return fail(r, "cannot read the status of", name);
	}
	dm_get_next_target(dmt, NULL, &start, &len, &ttype, &tparams);
	if (type)
		snprintf(type, type_len, "%s", ttype ? ttype : "");
	if (params)
		*params = strdup(tparams ? tparams : "");
	dm_task_destroy(dmt);
	return 1;
}

/* DM_DEVICE_INFO of NAME: 1, 0 if NAME does not exist, or an error line. */
static int info_of(const char *name, struct dm_info *di)
{
	struct dm_task *dmt = task(DM_DEVICE_INFO, name);
	int r;

	if (!dmt)
		return err(-ENOMEM, "out of memory");
	r = run(dmt, false);
	if (!r && !dm_task_get_info(dmt, di))
		r = -EIO;
	dm_task_destroy(dmt);
	if (r == -ENXIO || (!r && !di->exists))
		return 0;
	if (r)
		return fail(r, "cannot read the state of", name);
	return 1;
}

int dmc_info(const char *name, int *open_count, bool *suspended)
{
	struct dm_info di;
	int r = info_of(name, &di);

	if (r <= 0)
		return r;
	if (open_count)
		*open_count = di.open_count;
	if (suspended)
		*suspended = di.suspended;
	return 1;
}

int dmc_list(const char *uuid_prefix, char ***names)
{
	struct dm_task *dmt = task(DM_DEVICE_LIST, NULL), *ut;
	struct dm_names *n;
	size_t cnt = 0, cap = 8;
	char **out = calloc(cap, sizeof(*out));
	unsigned int next = 0;
	const char *uuid;
	int r;

	if (!dmt || !out)
		return err(-ENOMEM, "out of memory");
	r = run(dmt, false);
	if (r) {
		dm_task_destroy(dmt);
		free(out);
		return fail(r, "cannot list", "the dm devices");
	}
	n = dm_task_get_names(dmt);
	if (n && n->dev) {
		do {
			n = (struct dm_names *)((char *)n + next);
			ut = task(DM_DEVICE_INFO, n->name);
			uuid = NULL;
			if (ut && !run(ut, false))
				uuid = dm_task_get_uuid(ut);
			if (uuid && !strncmp(uuid, uuid_prefix, strlen(uuid_prefix))) {
				if (cnt + 1 >= cap) {
					cap *= 2;
					out = realloc(out, cap * sizeof(*out));
					if (!out)
						return err(-ENOMEM, "out of memory");
				}
				out[cnt++] = strdup(n->name);
				out[cnt] = NULL;
			}
			if (ut)
				dm_task_destroy(ut);
			next = n->next;
		} while (next);
	}
	dm_task_destroy(dmt);
	*names = out;
	return 0;
}

void dmc_free_list(char **names)
{
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
}

int dmc_event_nr(const char *name, uint32_t *nr)
{
	struct dm_info di;
	int r = info_of(name, &di);

	if (r == 1)
		*nr = di.event_nr;
	return r;
}

int dmc_wait_event(const char *name, uint32_t nr)
{
	struct dm_task *dmt = task(DM_DEVICE_WAITEVENT, name);
	int r;

	if (!dmt)
		return err(-ENOMEM, "out of memory");
	if (!dm_task_set_event_nr(dmt, nr)) {
		dm_task_destroy(dmt);
		return err(-ENOMEM, "out of memory");
	}
	r = run(dmt, false);
	dm_task_destroy(dmt);
	if (r == -ENXIO)
		return 0;
	if (r)
		return fail(r, "cannot wait for an event of", name);
	return 1;
}
