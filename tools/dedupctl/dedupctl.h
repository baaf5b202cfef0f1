/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dedupctl: the administration tool of dm-dedup pools (docs/dedupctl.md).
 *
 *   main.c    command line, dispatch, errors
 *   dm.c      device-mapper through libdevmapper (no dmsetup)
 *   label.c   the label kept on the pool's devices (include/dm-dedup/label.h)
 *   pool.c    create, activate, deactivate, status, check, scan, discovery
 *   volume.c  volumes by name: create, snapshot, delete, rename, list
 *   import.c  P2V: a disk or image copied into a new volume, resumable
 *   source.c  which blocks of a source hold data (partitions, ext2/3/4 free space)
 *   reader.c  the import's reader thread: the source read ahead into a ring of chunks
 *
 * Every function that can fail returns 0 or a negative errno after setting the
 * one-line message (err()) that main prints; the commands print their own results.
 */
#ifndef DEDUPCTL_H
#define DEDUPCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "dm-dedup/label.h"

#define SECTOR ((uint64_t)512)
#define BLOCK ((uint64_t)4096)

/* main.c */
int err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(void);			/* forget an error that was handled */
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool opt_json, opt_quiet;
/* A pool or volume name: letters, digits, + _ . -, not starting with - _ or ., at most MAX. */
bool valid_name(const char *s, size_t max);
/* The suffix of a pool's metadata device (POOL_tmeta). */
#define TMETA_SUFFIX "_tmeta"
/* A pool name: a valid name of at most DDL_NAME_MAX - 16 bytes with no '-' and not
 * ending in TMETA_SUFFIX, so that POOL, POOL_tmeta and POOL-VOLUME never name one device
 * for two pools: a volume's device name splits at its first '-'. */
bool valid_pool_name(const char *s);
/* Runs ARGV[0] (PATH searched) with ARGV, its output on our stderr, and waits: its
 * exit status (0 done, 127 not found, 128 + N killed by signal N), or -errno if it
 * could not be started.  The caller writes the error line. */
int run_program(char *const argv[]);
/* The first line of a (sysfs) file into BUF, without its newline: 0, or -errno with
 * BUF empty. */
int read_line(const char *path, char *buf, size_t len);
/* S escaped for the inside of a JSON string (" \\ and control characters); the
 * result stays valid until four more calls. */
const char *json_esc(const char *s);
int parse_size(const char *s, uint64_t *bytes);	/* "10G", "512M", "4096" (bytes) */
void human_size(uint64_t bytes, char *buf, size_t len);

/* dm.c: NAME is the dm device name; status/table/message results are malloc'ed. */
int dmc_create(const char *name, const char *uuid, uint64_t sectors, const char *type,
	       const char *params, bool read_only);
int dmc_reload(const char *name, uint64_t sectors, const char *type, const char *params);
int dmc_suspend(const char *name);
int dmc_resume(const char *name);
int dmc_remove(const char *name);
int dmc_rename(const char *name, const char *new_name);
int dmc_message(const char *name, const char *msg, char **response);
/* 1 and the first target's type and params if NAME exists, 0 if it does not. */
int dmc_status(const char *name, bool table, char *type, size_t type_len, char **params);
/* 1 if NAME exists (open count and suspended state filled in), 0 if not. */
int dmc_info(const char *name, int *open_count, bool *suspended);
/* Names of every dm device whose uuid starts with PREFIX (NULL-terminated). */
int dmc_list(const char *uuid_prefix, char ***names);
void dmc_free_list(char **names);
/* NAME's event counter: 1, or 0 if NAME does not exist. */
int dmc_event_nr(const char *name, uint32_t *nr);
/* Blocks until NAME's event counter is no longer NR (the target raised an event):
 * 1, or 0 if NAME went away. */
int dmc_wait_event(const char *name, uint32_t nr);

/* label.c */
struct pool_label {
	struct ddl_hdr hdr;
	struct ddl_vol *vols;		/* hdr.nr_vols entries */
	char meta_path[256];		/* the raw devices */
	char data_path[256];
	int lock_fd;			/* the pool's lock, held while lock_depth > 0 */
	unsigned int lock_depth;
};

int label_probe(const char *meta_path, uint8_t uuid[16]);	/* 1 if it holds a label */
int label_read(const char *meta_path, struct pool_label *pl);
int label_write(struct pool_label *pl);		/* the other slot, seq + 1, durable */
/*
 * Every change of the label is label_begin(), the change, label_write(),
 * label_end().  label_begin() takes the pool's lock (flock LOCK_EX on the metadata
 * device's /dev node, waiting at most DEDUPCTL_LOCK_TIMEOUT seconds, 60 by default)
 * and re-reads the label from the device into PL (pointers into pl->vols are stale
 * after it); nested calls only count.  label_write() refuses a label not locked.
 */
int label_begin(struct pool_label *pl);
void label_end(struct pool_label *pl);
int label_format(struct pool_label *pl);	/* a new pool: id block, slot 0, zeroed metadata */
void label_free(struct pool_label *pl);
int data_label_write(const char *data_path, const uint8_t uuid[16], uint64_t blocks);
/* 1 if DATA_PATH holds the data label of UUID at BLOCKS, 0 if not. */
int data_label_check(const char *data_path, const uint8_t uuid[16], uint64_t blocks);
int superblock_data_blocks(const char *meta_path, uint64_t *blocks);	/* the committed size */
int dev_size(const char *path, uint64_t *bytes);
void uuid_str(const uint8_t uuid[16], char out[33]);
struct ddl_vol *label_find(struct pool_label *pl, const char *name);
struct ddl_vol *label_find_id(struct pool_label *pl, uint32_t id);
struct ddl_vol *label_add(struct pool_label *pl);	/* a zeroed record at the end */
void label_del(struct pool_label *pl, struct ddl_vol *v);

/* pool.c */
void pool_dm_names(const char *pool, char *tmeta, size_t len);
void dm_uuid(const struct pool_label *pl, const char *what, char *out, size_t len);
int pool_open_active(const char *pool, struct pool_label *pl);	/* label of an active pool */
int pool_message(struct pool_label *pl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int cmd_create(int argc, char **argv);
int cmd_activate(int argc, char **argv);
int cmd_deactivate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_pools(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
/* Virtual-disk images (nbd.c): the qemu format of the image at PATH by its magic
 * (NULL: raw, or not a regular file); attach it read-only to a free /dev/nbdN
 * (qemu-nbd --fork) and detach it. */
const char *image_format(const char *path);
int nbd_attach(const char *image, const char *fmt, char *dev, size_t len);
void nbd_detach(const char *dev);
/* Grows the active pool POOL to its data device's size (the device grew). */
int pool_resize(const char *pool);
/* The pool's status line and its scan stats. */
struct pool_stats {
	uint64_t txn, meta_used, meta_total, data_used, data_total, mapped, shared;
	uint64_t zero_elided, discarded, cow;
	char mode[16], needs_check[16];
	char *scan;	/* "name value" lines of scan stats (free() it) */
};
int read_stats(const char *pool, struct pool_stats *s);

/* volume.c */
void volume_dm_name(const struct pool_label *pl, const struct ddl_vol *v, char *out, size_t len);
int volume_activate(struct pool_label *pl, struct ddl_vol *v);
int volume_deactivate(struct pool_label *pl, struct ddl_vol *v);
int volumes_settle(struct pool_label *pl);	/* finish what a crash interrupted */
/* Records NAME, creates it in the pool (a snapshot of ORIGIN if given), confirms it
 * with STATE (DDL_VOL_OK, or DDL_VOL_IMPORTING). */
int volume_new(struct pool_label *pl, const char *name, uint64_t sectors, uint32_t domain,
	       struct ddl_vol *origin, uint32_t state, bool activate);
int cmd_vol_create(int argc, char **argv);
int cmd_vol_snapshot(int argc, char **argv);
int cmd_vol_delete(int argc, char **argv);
int cmd_vol_rename(int argc, char **argv);
int cmd_vol_list(int argc, char **argv);

/* import.c */
int cmd_import(int argc, char **argv);

#endif
