// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-target.c: the "dedup-pool" and "dedup" device-mapper targets.
 *
 * A pool owns a metadata device and a data device; each "dedup" device is one volume
 * (a guest's disk) inside a pool.  This first version parses and validates both table
 * lines, keeps a registry of pools so that a volume finds its pool through the pool's
 * mapped device (as dm-thin does), and re-emits the table.  The data path is not here
 * yet: every bio is completed with an error.
 *
 * The table syntax is documented above pool_ctr() and volume_ctr().
 */
#include "dd-kcompat.h"

#include <linux/module.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/kernel.h>
#include <linux/string.h>

#define DM_MSG_PREFIX "dedup"

/*----------------------------------------------------------------
 * Limits
 *--------------------------------------------------------------*/

/* Data blocks are 4 KiB; the table still carries the size so the syntax can grow. */
#define DD_TGT_DATA_BLOCK_SECTORS	8
/* What the table grammar accepts as a block size before asking if it is supported. */
#define DD_TGT_BLOCK_SECTORS_MIN	8
#define DD_TGT_BLOCK_SECTORS_MAX	(1U << 21)	/* 1 GiB */
/* Smallest metadata device: superblocks, journal and first map pages (2 MiB). */
#define DD_TGT_META_MIN_SECTORS		4096
/* User-visible volume ids are 24 bits wide. */
#define DD_TGT_MAX_VOLUME_ID		((1U << 24) - 1)

/*----------------------------------------------------------------
 * Parsed table arguments
 *--------------------------------------------------------------*/

enum dd_pool_feature {
	DD_POOL_ERROR_IF_NO_SPACE	= 1U << 0,
	DD_POOL_IGNORE_DISCARD		= 1U << 1,
	DD_POOL_NO_DISCARD_PASSDOWN	= 1U << 2,
	DD_POOL_SKIP_ZERO_DETECT	= 1U << 3,
	DD_POOL_READ_ONLY		= 1U << 4,
};

/* Table order: the status line emits features in this order. */
static const struct {
	const char *name;
	unsigned int flag;
} dd_pool_features[] = {
	{ "error_if_no_space",	 DD_POOL_ERROR_IF_NO_SPACE },
	{ "ignore_discard",	 DD_POOL_IGNORE_DISCARD },
	{ "no_discard_passdown", DD_POOL_NO_DISCARD_PASSDOWN },
	{ "skip_zero_detect",	 DD_POOL_SKIP_ZERO_DETECT },
	{ "read_only",		 DD_POOL_READ_ONLY },
};

#define DD_POOL_NR_FEATURES ARRAY_SIZE(dd_pool_features)

struct dd_pool_args {
	struct dm_dev *metadata_dev;
	struct dm_dev *data_dev;
	unsigned int data_block_sectors;
	u64 low_water_blocks;
	unsigned int features;		/* DD_POOL_* */
};

struct dd_volume_args {
	struct dm_dev *pool_dev;
	u32 volume_id;
};

/*----------------------------------------------------------------
 * In-core structures
 *--------------------------------------------------------------*/

/*
 * One per pool mapped device, shared by all the tables loaded into it (a reload
 * finds it again) and referenced by every volume of the pool.
 */
struct dd_pool {
	struct list_head list;
	struct mapped_device *pool_md;
	dev_t metadata_dev;
	dev_t data_dev;
	unsigned int ref_count;		/* protected by dd_pool_table.mutex */
};

/* Per pool target. */
struct pool_c {
	struct dm_target *ti;
	struct dd_pool *pool;
	struct dd_pool_args args;
};

/* Per volume target. */
struct volume_c {
	struct dm_target *ti;
	struct dd_pool *pool;
	struct dd_volume_args args;
};

/*----------------------------------------------------------------
 * Pool registry, keyed by the pool's mapped_device
 *--------------------------------------------------------------*/

static struct {
	struct mutex mutex;
	struct list_head pools;
} dd_pool_table;

static void dd_pool_table_init(void)
{
	mutex_init(&dd_pool_table.mutex);
	INIT_LIST_HEAD(&dd_pool_table.pools);
}

static void dd_pool_table_exit(void)
{
	WARN_ON(!list_empty(&dd_pool_table.pools));
	mutex_destroy(&dd_pool_table.mutex);
}

static struct dd_pool *__dd_pool_lookup_md(struct mapped_device *md)
{
	struct dd_pool *pool;

	lockdep_assert_held(&dd_pool_table.mutex);
	list_for_each_entry(pool, &dd_pool_table.pools, list)
		if (pool->pool_md == md)
			return pool;
	return NULL;
}

/* A pool other than the one in @md that uses @dev as metadata or data device. */
static struct dd_pool *__dd_pool_using_dev(struct mapped_device *md, dev_t dev,
					   bool metadata)
{
	struct dd_pool *pool;

	lockdep_assert_held(&dd_pool_table.mutex);
	list_for_each_entry(pool, &dd_pool_table.pools, list) {
		if (pool->pool_md == md)
			continue;
		if ((metadata ? pool->metadata_dev : pool->data_dev) == dev)
			return pool;
	}
	return NULL;
}

static void __dd_pool_get(struct dd_pool *pool)
{
	lockdep_assert_held(&dd_pool_table.mutex);
	pool->ref_count++;
}

static void __dd_pool_put(struct dd_pool *pool)
{
	lockdep_assert_held(&dd_pool_table.mutex);
	if (WARN_ON(!pool->ref_count))
		return;
	if (--pool->ref_count)
		return;
	list_del(&pool->list);
	kfree(pool);
}

/*
 * Find the pool object of @md, or create it.  A reload of a pool device must name the
 * same metadata and data devices; a device may belong to one pool only.
 */
static struct dd_pool *__dd_pool_find(struct mapped_device *md,
				      const struct dd_pool_args *args, char **error)
{
	dev_t mdev = dd_dev_t(args->metadata_dev), ddev = dd_dev_t(args->data_dev);
	struct dd_pool *pool;

	if (__dd_pool_using_dev(md, mdev, true) || __dd_pool_using_dev(md, mdev, false)) {
		*error = "Metadata device already in use by another pool";
		return ERR_PTR(-EBUSY);
	}
	if (__dd_pool_using_dev(md, ddev, false) || __dd_pool_using_dev(md, ddev, true)) {
		*error = "Data device already in use by another pool";
		return ERR_PTR(-EBUSY);
	}

	pool = __dd_pool_lookup_md(md);
	if (pool) {
		if (pool->metadata_dev != mdev || pool->data_dev != ddev) {
			*error = "Pool cannot be replaced by a pool on other devices";
			return ERR_PTR(-EINVAL);
		}
		__dd_pool_get(pool);
		return pool;
	}

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool) {
		*error = "Cannot allocate pool";
		return ERR_PTR(-ENOMEM);
	}
	pool->pool_md = md;
	pool->metadata_dev = mdev;
	pool->data_dev = ddev;
	pool->ref_count = 1;
	list_add(&pool->list, &dd_pool_table.pools);
	return pool;
}

/*----------------------------------------------------------------
 * Argument parsing
 *--------------------------------------------------------------*/

static void release_pool_args(struct dm_target *ti, struct dd_pool_args *args)
{
	if (args->data_dev)
		dm_put_device(ti, args->data_dev);
	if (args->metadata_dev)
		dm_put_device(ti, args->metadata_dev);
	args->data_dev = NULL;
	args->metadata_dev = NULL;
}

static int parse_pool_features(struct dm_target *ti, struct dm_arg_set *as,
			       unsigned int *features)
{
	unsigned int count, i, j;

	*features = 0;
	if (!as->argc)
		return 0;

	if (kstrtouint(dm_shift_arg(as), 10, &count)) {
		ti->error = "Invalid feature count";
		return -EINVAL;
	}
	if (count > DD_POOL_NR_FEATURES) {
		ti->error = "Too many features";
		return -EINVAL;
	}
	if (count > as->argc) {
		ti->error = "Feature count exceeds the arguments given";
		return -EINVAL;
	}

	for (i = 0; i < count; i++) {
		const char *name = dm_shift_arg(as);

		for (j = 0; j < DD_POOL_NR_FEATURES; j++)
			if (!strcasecmp(name, dd_pool_features[j].name))
				break;
		if (j == DD_POOL_NR_FEATURES) {
			ti->error = "Unknown pool feature";
			return -EINVAL;
		}
		if (*features & dd_pool_features[j].flag) {
			ti->error = "Duplicate pool feature";
			return -EINVAL;
		}
		*features |= dd_pool_features[j].flag;
	}

	if (as->argc) {
		ti->error = "Too many pool arguments";
		return -EINVAL;
	}
	return 0;
}

/*
 * Parse and validate a pool table line (see pool_ctr()), opening its devices.
 * Syntax is checked before any device is opened, so a malformed line is reported
 * the same way whatever state the devices are in.  On failure ti->error is set
 * and nothing is held.
 */
static int parse_pool_args(struct dm_target *ti, unsigned int argc, char **argv,
			   struct dd_pool_args *args)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	const char *metadata_path, *data_path;
	unsigned int block;
	sector_t meta_sectors, data_sectors;
	int r;

	memset(args, 0, sizeof(*args));

	if (argc < 4) {
		ti->error = "Too few pool arguments";
		return -EINVAL;
	}
	metadata_path = dm_shift_arg(&as);
	data_path = dm_shift_arg(&as);

	if (kstrtouint(dm_shift_arg(&as), 10, &block) ||
	    block < DD_TGT_BLOCK_SECTORS_MIN || block > DD_TGT_BLOCK_SECTORS_MAX ||
	    block % DD_TGT_BLOCK_SECTORS_MIN) {
		ti->error = "Invalid data block size";
		return -EINVAL;
	}
	if (block != DD_TGT_DATA_BLOCK_SECTORS) {
		ti->error = "Unsupported data block size";
		return -EINVAL;
	}
	args->data_block_sectors = block;

	if (kstrtou64(dm_shift_arg(&as), 10, &args->low_water_blocks)) {
		ti->error = "Invalid low water mark";
		return -EINVAL;
	}

	r = parse_pool_features(ti, &as, &args->features);
	if (r)
		return r;

	if (!strcmp(metadata_path, data_path)) {
		ti->error = "Metadata and data devices must differ";
		return -EINVAL;
	}

	r = dd_get_device(ti, metadata_path, !(args->features & DD_POOL_READ_ONLY),
			  &args->metadata_dev);
	if (r) {
		args->metadata_dev = NULL;
		ti->error = "Error opening metadata device";
		return r;
	}

	r = dd_get_device(ti, data_path, true, &args->data_dev);
	if (r) {
		args->data_dev = NULL;
		ti->error = "Error opening data device";
		goto bad;
	}

	/* Two names (a path and major:minor) can denote one device. */
	if (dd_dev_t(args->metadata_dev) == dd_dev_t(args->data_dev)) {
		ti->error = "Metadata and data devices must differ";
		r = -EINVAL;
		goto bad;
	}

	meta_sectors = dd_dev_sectors(args->metadata_dev);
	if (meta_sectors < DD_TGT_META_MIN_SECTORS) {
		ti->error = "Metadata device too small";
		r = -EINVAL;
		goto bad;
	}

	data_sectors = dd_dev_sectors(args->data_dev);
	if (data_sectors < args->data_block_sectors) {
		ti->error = "Data device smaller than one data block";
		r = -EINVAL;
		goto bad;
	}
	if (ti->len > data_sectors) {
		ti->error = "Pool length exceeds data device";
		r = -EINVAL;
		goto bad;
	}

	return 0;

bad:
	release_pool_args(ti, args);
	return r;
}

static void release_volume_args(struct dm_target *ti, struct dd_volume_args *args)
{
	if (args->pool_dev)
		dm_put_device(ti, args->pool_dev);
	args->pool_dev = NULL;
}

/*
 * Parse and validate a volume table line (see volume_ctr()), opening the pool device.
 * On failure ti->error is set and nothing is held.
 */
static int parse_volume_args(struct dm_target *ti, unsigned int argc, char **argv,
			     struct dd_volume_args *args)
{
	unsigned long long id;
	int r;

	memset(args, 0, sizeof(*args));

	if (argc < 2) {
		ti->error = "Too few volume arguments";
		return -EINVAL;
	}
	if (argc > 2) {
		ti->error = "Too many volume arguments";
		return -EINVAL;
	}

	r = kstrtoull(argv[1], 10, &id);
	if (r == -ERANGE || (!r && id > DD_TGT_MAX_VOLUME_ID)) {
		ti->error = "Volume id out of range";
		return -EINVAL;
	}
	if (r) {
		ti->error = "Invalid volume id";
		return -EINVAL;
	}
	args->volume_id = id;

	r = dd_get_device_table_mode(ti, argv[0], &args->pool_dev);
	if (r) {
		args->pool_dev = NULL;
		ti->error = "Error opening pool device";
		return r;
	}
	return 0;
}

/*----------------------------------------------------------------
 * Pool target
 *--------------------------------------------------------------*/

static void pool_dtr(struct dm_target *ti)
{
	struct pool_c *pc = ti->private;

	mutex_lock(&dd_pool_table.mutex);
	__dd_pool_put(pc->pool);
	mutex_unlock(&dd_pool_table.mutex);

	release_pool_args(ti, &pc->args);
	kfree(pc);
}

/*
 * dedup-pool <metadata dev> <data dev> <data block size (sectors)>
 *            <low water mark (blocks)> [<#features> [<feature>]*]
 *
 * data block size: 8 (4 KiB) is the only size supported.
 * low water mark: a dm event is raised when fewer free data blocks remain.
 * features:
 *   error_if_no_space    fail writes at once when the data device is full
 *   ignore_discard       do not process discards
 *   no_discard_passdown  unmap discarded blocks, but do not pass discards down
 *   skip_zero_detect     store all-zero blocks instead of unmapping them
 *   read_only            open the metadata read-only; no change is made
 *
 * The metadata device must hold at least 2 MiB, the data device one data block, and
 * the pool's length must not exceed the data device.  A device belongs to one pool.
 */
static int pool_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct pool_c *pc;
	struct dd_pool *pool;
	int r;

	pc = kzalloc(sizeof(*pc), GFP_KERNEL);
	if (!pc) {
		ti->error = "Cannot allocate pool context";
		return -ENOMEM;
	}
	pc->ti = ti;

	r = parse_pool_args(ti, argc, argv, &pc->args);
	if (r)
		goto bad_args;

	mutex_lock(&dd_pool_table.mutex);
	pool = __dd_pool_find(dm_table_get_md(ti->table), &pc->args, &ti->error);
	mutex_unlock(&dd_pool_table.mutex);
	if (IS_ERR(pool)) {
		r = PTR_ERR(pool);
		goto bad_pool;
	}
	pc->pool = pool;

	ti->private = pc;
	ti->num_flush_bios = 1;
	return 0;

bad_pool:
	release_pool_args(ti, &pc->args);
bad_args:
	kfree(pc);
	return r;
}

static int pool_map(struct dm_target *ti, struct bio *bio)
{
	DMERR_LIMIT("%s: pool I/O is not implemented yet",
		    dm_device_name(dm_table_get_md(ti->table)));
	return DM_MAPIO_KILL;
}

static void emit_pool_features(unsigned int features, char *result, unsigned int *szp,
			       unsigned int maxlen)
{
	unsigned int sz = *szp, i;

	if (!features)
		return;
	DMEMIT(" %u", hweight32(features));
	for (i = 0; i < DD_POOL_NR_FEATURES; i++)
		if (features & dd_pool_features[i].flag)
			DMEMIT(" %s", dd_pool_features[i].name);
	*szp = sz;
}

/*
 * INFO (provisional, until the metadata exists): <mode> <needs_check>
 *   mode is "ro" with the read_only feature, "rw" otherwise; needs_check is "-".
 * TABLE: the table line, with devices as major:minor and only the features set.
 */
static void pool_status(struct dm_target *ti, status_type_t type,
			unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct pool_c *pc = ti->private;
	struct dd_pool_args *a = &pc->args;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s -", (a->features & DD_POOL_READ_ONLY) ? "ro" : "rw");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u %llu", a->metadata_dev->name, a->data_dev->name,
		       a->data_block_sectors, (unsigned long long)a->low_water_blocks);
		emit_pool_features(a->features, result, &sz, maxlen);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",metadata_device=%s,data_device=%s,data_block_sectors=%u;",
		       a->metadata_dev->name, a->data_dev->name, a->data_block_sectors);
		break;
	}
}

static int pool_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				void *data)
{
	struct pool_c *pc = ti->private;

	return fn(ti, pc->args.data_dev, 0, ti->len, data);
}

static struct target_type pool_target = {
	.name = "dedup-pool",
	.features = DM_TARGET_SINGLETON | DM_TARGET_ALWAYS_WRITEABLE |
		    DM_TARGET_IMMUTABLE,
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = pool_ctr,
	.dtr = pool_dtr,
	.map = pool_map,
	.status = pool_status,
	.iterate_devices = pool_iterate_devices,
};

/*----------------------------------------------------------------
 * Volume target
 *--------------------------------------------------------------*/

static void volume_dtr(struct dm_target *ti)
{
	struct volume_c *vc = ti->private;

	mutex_lock(&dd_pool_table.mutex);
	__dd_pool_put(vc->pool);
	mutex_unlock(&dd_pool_table.mutex);

	release_volume_args(ti, &vc->args);
	kfree(vc);
}

/*
 * dedup <pool dev> <volume id>
 *
 * pool dev: the pool's mapped device (e.g. /dev/mapper/pool), whose table must be
 *           a dedup-pool (loaded, not necessarily resumed).
 * volume id: decimal, 0..16777215.
 */
static int volume_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct volume_c *vc;
	struct mapped_device *pool_md;
	int r;

	vc = kzalloc(sizeof(*vc), GFP_KERNEL);
	if (!vc) {
		ti->error = "Cannot allocate volume context";
		return -ENOMEM;
	}
	vc->ti = ti;

	r = parse_volume_args(ti, argc, argv, &vc->args);
	if (r)
		goto bad_args;

	pool_md = dm_get_md(dd_dev_t(vc->args.pool_dev));
	if (!pool_md) {
		ti->error = "Pool device is not a device-mapper device";
		r = -EINVAL;
		goto bad_md;
	}

	mutex_lock(&dd_pool_table.mutex);
	vc->pool = __dd_pool_lookup_md(pool_md);
	if (vc->pool)
		__dd_pool_get(vc->pool);
	mutex_unlock(&dd_pool_table.mutex);
	dm_put(pool_md);
	if (!vc->pool) {
		ti->error = "Pool device is not a dedup-pool";
		r = -EINVAL;
		goto bad_md;
	}

	ti->private = vc;
	ti->num_flush_bios = 1;
	return 0;

bad_md:
	release_volume_args(ti, &vc->args);
bad_args:
	kfree(vc);
	return r;
}

static int volume_map(struct dm_target *ti, struct bio *bio)
{
	DMERR_LIMIT("%s: volume I/O is not implemented yet",
		    dm_device_name(dm_table_get_md(ti->table)));
	return DM_MAPIO_KILL;
}

/*
 * INFO: "-" (nothing to report yet).
 * TABLE: <pool dev as major:minor> <volume id>
 */
static void volume_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct volume_c *vc = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("-");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %u", vc->args.pool_dev->name, vc->args.volume_id);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",pool_device=%s,volume_id=%u;", vc->args.pool_dev->name,
		       vc->args.volume_id);
		break;
	}
}

static struct target_type volume_target = {
	.name = "dedup",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = volume_ctr,
	.dtr = volume_dtr,
	.map = volume_map,
	.status = volume_status,
};

/*----------------------------------------------------------------
 * Module
 *--------------------------------------------------------------*/

static int __init dm_dedup_init(void)
{
	int r;

	dd_pool_table_init();

	r = dm_register_target(&pool_target);
	if (r) {
		DMERR("cannot register the dedup-pool target: %d", r);
		goto bad_pool;
	}

	r = dm_register_target(&volume_target);
	if (r) {
		DMERR("cannot register the dedup target: %d", r);
		goto bad_volume;
	}
	return 0;

bad_volume:
	dm_unregister_target(&pool_target);
bad_pool:
	dd_pool_table_exit();
	return r;
}

static void __exit dm_dedup_exit(void)
{
	dm_unregister_target(&volume_target);
	dm_unregister_target(&pool_target);
	dd_pool_table_exit();
}

module_init(dm_dedup_init);
module_exit(dm_dedup_exit);

MODULE_DESCRIPTION(DM_NAME " out-of-band deduplication of virtual machine disks");
MODULE_AUTHOR("dm-dedup developers");
MODULE_LICENSE("GPL");
