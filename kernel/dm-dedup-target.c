// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-dedup-target.c: the "dedup-pool" and "dedup" targets: table parsing,
 * constructors and destructors, suspend and resume, status, io_hints,
 * messages, the two target types and the module.  The pool object is in
 * dm-dedup-pool.c, the data path in dm-dedup-io.c; docs/dm-dedup.rst
 * describes tables, status and messages, docs/design.md the reasons.
 */
#include "dm-dedup-core.h"

#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

/*----------------------------------------------------------------
 * Tunables and limits
 *--------------------------------------------------------------*/

unsigned int dd_lookup_cache_entries = 1U << 18;
module_param_named(lookup_cache_entries, dd_lookup_cache_entries, uint, 0444);
MODULE_PARM_DESC(lookup_cache_entries,
		 "Mappings each pool keeps in its lock-free lookup cache (rounded up to a power of two, 32 bytes each)");

unsigned int dd_rmw_pages = 128;
module_param_named(rmw_pages, dd_rmw_pages, uint, 0444);
MODULE_PARM_DESC(rmw_pages,
		 "Pages each pool keeps for read-modify-write of partial-block writes (at least 1; more partial writes wait)");

unsigned int dd_no_space_timeout_secs = 60;
module_param_named(no_space_timeout, dd_no_space_timeout_secs, uint, 0644);
MODULE_PARM_DESC(no_space_timeout,
		 "Seconds a write waits for data space before it fails (0 = forever)");

#define DD_TGT_DATA_BLOCK_SECTORS	DD_SECTORS_PER_BLOCK
/* What the table grammar accepts as a block size before asking if it is supported. */
#define DD_TGT_BLOCK_SECTORS_MIN	8
#define DD_TGT_BLOCK_SECTORS_MAX	(1U << 21)	/* 1 GiB */
#define DD_TGT_META_MIN_SECTORS		((sector_t)DD_META_MIN_BLOCKS * DD_SECTORS_PER_BLOCK)
#define DD_TGT_MAX_VOLUME_ID		DD_MAX_VOLUME_ID
/* LBNs are 48-bit: a volume addresses at most 2^48 blocks (1 EiB). */
#define DD_TGT_MAX_VOLUME_SECTORS	((sector_t)(DD_MAX_ADDR + 1) * DD_SECTORS_PER_BLOCK)

#define DD_MAX_DISCARD_SECTORS		(1U << 21)	/* 1 GiB per discard bio */

/*----------------------------------------------------------------
 * Pool features
 *--------------------------------------------------------------*/

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
	{ "share_snapshots",	 DD_POOL_SHARE_SNAPSHOTS },
};

#define DD_POOL_NR_FEATURES ARRAY_SIZE(dd_pool_features)

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

/* The feature that takes a value: index_memory <MiB> (two words of the count). */
#define DD_INDEX_MEMORY_MAX_MIB		(1U << 20)

static int parse_pool_features(struct dm_target *ti, struct dm_arg_set *as,
			       unsigned int *features, u32 *index_mib)
{
	unsigned int count, i, j;

	*features = 0;
	*index_mib = 0;
	if (!as->argc)
		return 0;

	if (kstrtouint(dm_shift_arg(as), 10, &count)) {
		ti->error = "Invalid feature count";
		return -EINVAL;
	}
	if (count > DD_POOL_NR_FEATURES + 2) {
		ti->error = "Too many features";
		return -EINVAL;
	}
	if (count > as->argc) {
		ti->error = "Feature count exceeds the arguments given";
		return -EINVAL;
	}

	for (i = 0; i < count; i++) {
		const char *name = dm_shift_arg(as);

		if (!strcasecmp(name, "index_memory")) {
			if (*index_mib) {
				ti->error = "Duplicate pool feature";
				return -EINVAL;
			}
			if (++i == count || kstrtou32(dm_shift_arg(as), 10, index_mib) ||
			    !*index_mib || *index_mib > DD_INDEX_MEMORY_MAX_MIB) {
				ti->error = "index_memory needs a size in MiB (1..1048576)";
				return -EINVAL;
			}
			continue;
		}
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

	r = parse_pool_features(ti, &as, &args->features, &args->index_mib);
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

	pool_put_target(pc->pool, ti);
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
 *   share_snapshots      create_snap shares the origin's map pages (constant
 *                        time) where the journal allows, instead of copying the
 *                        map; the scanner does not merge a family's blocks
 *
 * A zeroed metadata device is formatted; the data space is the target's
 * length (a reload with a larger length grows it).  The metadata device must
 * hold at least 2 MiB, the data device one data block, and the pool's length
 * must not exceed the data device.  A device belongs to one pool.
 */
static int pool_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct pool_c *pc;
	struct pool *pool;
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
	if (ti->len < DD_SECTORS_PER_BLOCK) {
		ti->error = "Pool length smaller than one data block";
		r = -EINVAL;
		goto bad_pool;
	}

	pool = pool_find_or_create(dm_table_get_md(ti->table), pc, &ti->error);
	if (IS_ERR(pool)) {
		r = PTR_ERR(pool);
		goto bad_pool;
	}
	pc->pool = pool;

	ti->private = pc;
	ti->num_flush_bios = 1;
	ti->per_io_data_size = 0;
	return 0;

bad_pool:
	release_pool_args(ti, &pc->args);
bad_args:
	kfree(pc);
	return r;
}

/* The pool device itself reads and writes the data device, as dm-thin's does. */
static int pool_map(struct dm_target *ti, struct bio *bio)
{
	struct pool_c *pc = ti->private;

	bio_set_dev(bio, pc->args.data_dev->bdev);
	return DM_MAPIO_REMAPPED;
}

/*
 * Binds the table being resumed to the pool object, grows the data space if
 * the table got longer and the metadata space if its device did.
 */
static int pool_preresume(struct dm_target *ti)
{
	struct pool_c *pc = ti->private;
	struct pool *pool = pc->pool;
	u64 nr_data = ti->len >> (DD_BLOCK_SHIFT - SECTOR_SHIFT);
	struct dd_pool_stats st;
	unsigned int noio;
	int r = 0;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	WRITE_ONCE(pool->ti, ti);
	WRITE_ONCE(pool->features, pc->args.features);	/* map() reads it */
	pool->low_water_blocks = pc->args.low_water_blocks;
	pool->low_water_triggered = false;
	dd_pool_get_stats(pool->eng, &st);
	if (nr_data < st.nr_data_blocks) {
		DMERR("%s: pool target (%llu blocks) is smaller than its data space (%llu blocks)",
		      pool_name(pool), (unsigned long long)nr_data,
		      (unsigned long long)st.nr_data_blocks);
		r = -EINVAL;
	} else if (nr_data > st.nr_data_blocks) {
		if (!pool_can_change_metadata(pool)) {
			DMERR("%s: cannot grow the data space in %s mode", pool_name(pool),
			      pool_mode_name(pool->mode));
			r = -EINVAL;
		} else {
			r = dd_pool_resize_data(pool->eng, nr_data);
			if (!r)
				r = __marks_resize(pool, nr_data);
			if (!r)
				r = __commit(pool, false);
			if (!r)
				DMINFO("%s: data space grown from %llu to %llu blocks",
				       pool_name(pool), (unsigned long long)st.nr_data_blocks,
				       (unsigned long long)nr_data);
			else
				DMERR("%s: cannot grow the data space: %d", pool_name(pool), r);
		}
	}
	if (!r)
		r = __pool_grow_metadata(pool);
	if (!r) {
		__pool_configure_scanner(pool, pc);
		__retry_no_space(pool);
		__check_low_water(pool);
	}
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	return r;
}

static void pool_resume(struct dm_target *ti)
{
	struct pool_c *pc = ti->private;

	pool_start_background(pc->pool);
}

static void pool_postsuspend(struct dm_target *ti)
{
	struct pool_c *pc = ti->private;
	struct pool *pool = pc->pool;
	unsigned int noio;

	/* No background work while suspended (it would change the metadata). */
	pool_stop_background(pool);
	flush_workqueue(pool->wq);
	noio = memalloc_noio_save();
	down_write(&pool->lock);
	(void)__commit(pool, true);
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
}

static void emit_pool_features(const struct dd_pool_args *a, char *result, unsigned int *szp,
			       unsigned int maxlen)
{
	unsigned int sz = *szp, i;

	if (!a->features && !a->index_mib)
		return;
	DMEMIT(" %u", hweight32(a->features) + (a->index_mib ? 2 : 0));
	for (i = 0; i < DD_POOL_NR_FEATURES; i++)
		if (a->features & dd_pool_features[i].flag)
			DMEMIT(" %s", dd_pool_features[i].name);
	if (a->index_mib)
		DMEMIT(" index_memory %u", a->index_mib);
	*szp = sz;
}

/*
 * INFO: <transaction id> <used metadata blocks>/<total metadata blocks>
 *       <used data blocks>/<total data blocks> <mapped blocks> <shared blocks>
 *       <zero writes elided> <discarded blocks> <cow splits> <mode> <needs_check|->
 *   blocks are 4 KiB; mode is rw, out_of_space, ro or fail.
 * TABLE: the table line, with devices as major:minor and only the features set.
 */
static void pool_status(struct dm_target *ti, status_type_t type,
			unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct pool_c *pc = ti->private;
	struct dd_pool_args *a = &pc->args;
	struct pool *pool = pc->pool;
	struct dd_pool_stats st;
	enum pool_mode mode;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		down_read(&pool->lock);
		dd_pool_get_stats(pool->eng, &st);
		mode = pool->mode;
		up_read(&pool->lock);
		DMEMIT("%llu %llu/%llu %llu/%llu %llu %llu %llu %llu %llu %s %s",
		       (unsigned long long)st.user_txn,
		       (unsigned long long)st.meta_used, (unsigned long long)st.nr_meta_blocks,
		       (unsigned long long)st.data_used, (unsigned long long)st.nr_data_blocks,
		       (unsigned long long)st.mapped_blocks,
		       (unsigned long long)st.shared_blocks,
		       (unsigned long long)st.zero_elided,
		       (unsigned long long)st.discarded, (unsigned long long)st.cow_splits,
		       pool_mode_name(mode), st.needs_check ? "needs_check" : "-");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u %llu", a->metadata_dev->name, a->data_dev->name,
		       a->data_block_sectors, (unsigned long long)a->low_water_blocks);
		emit_pool_features(a, result, &sz, maxlen);
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

/*----------------------------------------------------------------
 * Pool messages
 *--------------------------------------------------------------*/

static int parse_id(const char *arg, u32 *id)
{
	if (kstrtou32(arg, 10, id) || *id > DD_MAX_VOLUME_ID) {
		DMWARN("invalid volume id: %s", arg);
		return -EINVAL;
	}
	return 0;
}

/* A device of volume id exists (or, running_only, may issue I/O). */
static bool __volume_active(struct pool *pool, u32 id, bool running_only)
{
	struct volume_c *vc;

	lockdep_assert_held(&pool->lock);
	list_for_each_entry(vc, &pool->volumes, list)
		if (vc->args.volume_id == id && (!running_only || vc->running))
			return true;
	return false;
}

/*
 * Marks the origin as being copied unless a device of it may issue I/O;
 * checked and set under lists_lock, which volume_preresume() takes too.
 */
static bool __snap_origin_claim(struct pool *pool, u32 origin)
{
	bool ok;

	lockdep_assert_held_write(&pool->lock);
	spin_lock_irq(&pool->lists_lock);
	ok = !__volume_active(pool, origin, true);
	if (ok)
		pool->snap_origin = origin;
	spin_unlock_irq(&pool->lists_lock);
	return ok;
}

static void snap_origin_release(struct pool *pool)
{
	spin_lock_irq(&pool->lists_lock);
	pool->snap_origin = DD_NO_VOLUME;
	spin_unlock_irq(&pool->lists_lock);
	wake_up_all(&pool->snap_wait);
}

static const char *errname(int r)
{
	switch (r) {
	case -EEXIST: return "already exists";
	case -ENOENT: return "does not exist";
	case -EBUSY: return "is in use";
	case -ENOSPC: return "no metadata space";
	case -EROFS: return "pool is read-only";
	case -EINVAL: return "invalid argument";
	case -EOVERFLOW: return "too many references to a block";
	default: return "metadata error";
	}
}

static int process_create_volume_mesg(struct pool *pool, unsigned int argc, char **argv)
{
	u32 id, domain = 0;
	int r;

	if (argc != 2 && argc != 3) {
		DMWARN("usage: create_volume <id> [<dedup domain 0..%u>]", DD_MAX_DOMAIN);
		return -EINVAL;
	}
	r = parse_id(argv[1], &id);
	if (r)
		return r;
	if (argc == 3 && (kstrtou32(argv[2], 10, &domain) || domain > DD_MAX_DOMAIN)) {
		DMWARN("%s: create_volume %u: invalid dedup domain '%s' (0..%u)", pool_name(pool),
		       id, argv[2], DD_MAX_DOMAIN);
		return -EINVAL;
	}
	r = dd_volume_create_in(pool->eng, id, domain);
	if (r)
		DMWARN("%s: create_volume %u: %s", pool_name(pool), id, errname(r));
	return r;
}

static int process_create_snap_mesg(struct pool *pool, unsigned int argc, char **argv)
{
	u32 id, origin;
	int r;

	if (argc != 3) {
		DMWARN("usage: create_snap <id> <origin id>");
		return -EINVAL;
	}
	r = parse_id(argv[1], &id);
	if (!r)
		r = parse_id(argv[2], &origin);
	if (r)
		return r;
	/*
	 * In-place writes to the origin during the copy would reach the
	 * snapshot: a resume of the origin waits in volume_preresume() until
	 * the copy has ended.
	 */
	if (!__snap_origin_claim(pool, origin)) {
		DMWARN("%s: create_snap %u %u: suspend the origin volume first", pool_name(pool),
		       id, origin);
		return -EBUSY;
	}
	/* Before the copy, which commits as it goes: the origin's exclusive
	 * bits are cleared by it. */
	__lc_clear(&pool->lc);
	dd_pool_set_snapshot_copy(pool->eng,
				  !(READ_ONCE(pool->features) & DD_POOL_SHARE_SNAPSHOTS));
	r = dd_snapshot_create(pool->eng, id, origin);
	__lc_clear(&pool->lc);
	snap_origin_release(pool);
	if (r)
		DMWARN("%s: create_snap %u %u: %s", pool_name(pool), id, origin, errname(r));
	return r;
}

static int process_delete_volume_mesg(struct pool *pool, unsigned int argc, char **argv)
{
	u32 id;
	int r;

	if (argc != 2) {
		DMWARN("usage: delete_volume <id>");
		return -EINVAL;
	}
	r = parse_id(argv[1], &id);
	if (r)
		return r;
	if (__volume_active(pool, id, false)) {
		DMWARN("%s: delete_volume %u: volume is active", pool_name(pool), id);
		return -EBUSY;
	}
	r = dd_volume_delete(pool->eng, id);
	__lc_clear(&pool->lc);
	if (r)
		DMWARN("%s: delete_volume %u: %s", pool_name(pool), id, errname(r));
	return r;
}

static int process_set_transaction_id_mesg(struct pool *pool, unsigned int argc, char **argv)
{
	u64 old_id, new_id;
	int r;

	if (argc != 3) {
		DMWARN("usage: set_transaction_id <current id> <new id>");
		return -EINVAL;
	}
	if (kstrtou64(argv[1], 10, &old_id) || kstrtou64(argv[2], 10, &new_id)) {
		DMWARN("set_transaction_id: invalid transaction id");
		return -EINVAL;
	}
	r = dd_pool_set_user_txn(pool->eng, old_id, new_id);
	if (r)
		DMWARN("%s: set_transaction_id %llu %llu: %s", pool_name(pool),
		       (unsigned long long)old_id, (unsigned long long)new_id,
		       r == -EINVAL ? "current id does not match" : errname(r));
	return r;
}

static const struct {
	const char *name;
	int (*fn)(struct pool *pool, unsigned int argc, char **argv);
} pool_messages[] = {
	{ "create_volume", process_create_volume_mesg },
	{ "create_snap", process_create_snap_mesg },
	{ "delete_volume", process_delete_volume_mesg },
	{ "set_transaction_id", process_set_transaction_id_mesg },
};

/* Messages change metadata and are committed before they return. */
static int pool_message(struct dm_target *ti, unsigned int argc, char **argv,
			char *result, unsigned int maxlen)
{
	struct pool_c *pc = ti->private;
	struct pool *pool = pc->pool;
	struct dd_pool_stats st;
	unsigned int i, noio;
	bool reclaim;
	int r = -EINVAL;

	if (!argc)
		return -EINVAL;
	if (!strcasecmp(argv[0], "scan"))
		return scanner_message(pool, argc, argv, result, maxlen);
	if (!strcasecmp(argv[0], "import_hint") || !strcasecmp(argv[0], "import_done"))
		return import_message(pool, argc, argv, result, maxlen);
	for (i = 0; i < ARRAY_SIZE(pool_messages); i++)
		if (!strcasecmp(argv[0], pool_messages[i].name))
			break;
	if (i == ARRAY_SIZE(pool_messages)) {
		DMWARN("%s: unrecognised pool message '%s'", pool_name(pool), argv[0]);
		return -EINVAL;
	}

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	if (!pool_can_change_metadata(pool)) {
		DMWARN("%s: %s: pool is in %s mode", pool_name(pool), argv[0],
		       pool_mode_name(pool->mode));
		r = -EROFS;
	} else {
		r = pool_messages[i].fn(pool, argc, argv);
		if (!r)
			r = __commit(pool, false);
		__check_engine_mode(pool);
		/* Also after a failure: a failed create_snap hands its copy to reclaim. */
		dd_pool_get_stats(pool->eng, &st);
		if (st.nr_deleting)
			pool->reclaim_pending = true;
	}
	reclaim = pool->reclaim_pending;
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	if (reclaim)
		wake_worker(pool);
	return r;
}

static struct target_type pool_target = {
	.name = "dedup-pool",
	.features = DM_TARGET_SINGLETON | DM_TARGET_ALWAYS_WRITEABLE |
		    DM_TARGET_IMMUTABLE,
	.version = {0, 4, 0},
	.module = THIS_MODULE,
	.ctr = pool_ctr,
	.dtr = pool_dtr,
	.map = pool_map,
	.preresume = pool_preresume,
	.resume = pool_resume,
	.postsuspend = pool_postsuspend,
	.message = pool_message,
	.status = pool_status,
	.iterate_devices = pool_iterate_devices,
};

/*----------------------------------------------------------------
 * Volume target
 *--------------------------------------------------------------*/

static void volume_dtr(struct dm_target *ti)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;
	unsigned int noio;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	list_del(&vc->list);
	dd_volume_close(vc->vol);
	up_write(&pool->lock);
	memalloc_noio_restore(noio);

	pool_put(pool);

	release_volume_args(ti, &vc->args);
	kfree(vc);
}

/* Another device already maps this volume (reloads of one device may). */
static bool __volume_taken(struct pool *pool, u32 id, struct mapped_device *md)
{
	struct volume_c *vc;

	lockdep_assert_held(&pool->lock);
	list_for_each_entry(vc, &pool->volumes, list)
		if (vc->args.volume_id == id && vc->md != md)
			return true;
	return false;
}

/*
 * dedup <pool dev> <volume id>
 *
 * pool dev: the pool's mapped device (e.g. /dev/mapper/pool), whose table must be
 *           a dedup-pool (loaded, not necessarily resumed).
 * volume id: decimal, 0..16777215, created with the pool's create_volume or
 *            create_snap message.
 */
static int volume_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct volume_c *vc;
	struct mapped_device *pool_md;
	struct pool *pool;
	unsigned int noio;
	int r;

	vc = kzalloc(sizeof(*vc), GFP_KERNEL);
	if (!vc) {
		ti->error = "Cannot allocate volume context";
		return -ENOMEM;
	}
	vc->ti = ti;
	vc->md = dm_table_get_md(ti->table);

	r = parse_volume_args(ti, argc, argv, &vc->args);
	if (r)
		goto bad_args;
	if (ti->len > DD_TGT_MAX_VOLUME_SECTORS) {
		ti->error = "Volume longer than the address space (2^48 blocks)";
		r = -EINVAL;
		goto bad_volume_len;
	}

	pool_md = dm_get_md(dd_dev_t(vc->args.pool_dev));
	if (!pool_md) {
		ti->error = "Pool device is not a device-mapper device";
		r = -EINVAL;
		goto bad_md;
	}

	pool = pool_lookup(pool_md);
	dm_put(pool_md);
	if (!pool) {
		ti->error = "Pool device is not a dedup-pool";
		r = -EINVAL;
		goto bad_md;
	}
	vc->pool = pool;

	noio = memalloc_noio_save();
	down_write(&pool->lock);
	if (pool->mode == PM_FAIL) {
		ti->error = "Pool is in fail mode";
		r = -EIO;
	} else if (__volume_taken(pool, vc->args.volume_id, vc->md)) {
		ti->error = "Volume is already in use by another device";
		r = -EBUSY;
	} else {
		r = dd_volume_open(pool->eng, vc->args.volume_id, &vc->vol);
		if (r)
			ti->error = r == -ENOENT ? "Volume does not exist (create_volume first)" :
				    "Cannot open the volume's metadata";
		else
			list_add(&vc->list, &pool->volumes);
	}
	up_write(&pool->lock);
	memalloc_noio_restore(noio);
	if (r)
		goto bad_pool;

	ti->private = vc;
	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	ti->per_io_data_size = sizeof(struct dd_bio_hook);
	if (!(pool->features & DD_POOL_IGNORE_DISCARD)) {
		ti->num_discard_bios = 1;
		ti->discards_supported = true;
	}
	/*
	 * No max_io_len: map() serves a bio over several blocks in one remap
	 * where they form a run, and cuts the rest off (dm_accept_partial_bio).
	 */
	return 0;

bad_pool:
	pool_put(pool);
bad_md:
bad_volume_len:
	release_volume_args(ti, &vc->args);
bad_args:
	kfree(vc);
	return r;
}

/*
 * The device may issue I/O from here on; a resume waits for a snapshot copy
 * of this volume to end.  (Only lists_lock is taken: a suspend or resume of
 * one volume never waits for the pool's worker or another volume's I/O.)
 */
static int volume_preresume(struct dm_target *ti)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;
	u32 id = vc->args.volume_id;

	spin_lock_irq(&pool->lists_lock);
	while (pool->snap_origin == id) {
		spin_unlock_irq(&pool->lists_lock);
		wait_event(pool->snap_wait, READ_ONCE(pool->snap_origin) != id);
		spin_lock_irq(&pool->lists_lock);
	}
	vc->running = true;
	spin_unlock_irq(&pool->lists_lock);
	return 0;
}

/* No I/O of this device is in flight any more. */
static void volume_postsuspend(struct dm_target *ti)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;

	spin_lock_irq(&pool->lists_lock);
	vc->running = false;
	spin_unlock_irq(&pool->lists_lock);
}

/* A noflush suspend must not wait for space that may never come. */
static void volume_presuspend(struct dm_target *ti)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;
	struct bio_list keep, requeue;
	unsigned long flags;
	struct bio *bio;

	if (!dm_noflush_suspending(ti))
		return;
	bio_list_init(&keep);
	bio_list_init(&requeue);
	spin_lock_irqsave(&pool->lists_lock, flags);
	while ((bio = bio_list_pop(&pool->no_space)))
		bio_list_add(hook(bio)->vc == vc ? &requeue : &keep, bio);
	pool->no_space = keep;
	spin_unlock_irqrestore(&pool->lists_lock, flags);
	while ((bio = bio_list_pop(&requeue)))
		error_bio(bio, BLK_STS_DM_REQUEUE);
}

/*
 * INFO: <mapped blocks> <highest mapped block|->   (4 KiB blocks)
 * TABLE: <pool dev as major:minor> <volume id>
 */
static void volume_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct volume_c *vc = ti->private;
	struct pool *pool = vc->pool;
	unsigned int sz = 0;
	u64 mapped, top;
	int r;

	switch (type) {
	case STATUSTYPE_INFO:
		/* Exclusive: a lookup updates the tree's leaf hint (dd-engine.h [X]). */
		down_write(&pool->lock);
		mapped = dd_volume_mapped(vc->vol);
		r = dd_volume_highest_lbn(vc->vol, &top);
		up_write(&pool->lock);
		if (r)
			DMEMIT("%llu -", (unsigned long long)mapped);
		else
			DMEMIT("%llu %llu", (unsigned long long)mapped, (unsigned long long)top);
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

static int volume_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				  void *data)
{
	struct volume_c *vc = ti->private;
	struct dm_target *pool_ti = READ_ONCE(vc->pool->ti);	/* no lock here */

	return fn(ti, vc->args.pool_dev, 0, pool_ti ? pool_ti->len : ti->len, data);
}

/* 512-byte logical blocks stay supported (read-modify-write); 4 KiB physical. */
static void volume_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct volume_c *vc = ti->private;

	limits->physical_block_size = max_t(unsigned int, limits->physical_block_size,
					    DD_BLOCK_SIZE);
	/*
	 * (blk_limits_io_min/opt are gone in 6.12; the fields are the same.)
	 * io_opt stays the data device's: large bios are served whole where
	 * their blocks are contiguous, so 4 KiB is no optimum to advertise.
	 */
	limits->io_min = max_t(unsigned int, limits->io_min, DD_BLOCK_SIZE);
	if (limits->io_opt % DD_BLOCK_SIZE)
		limits->io_opt = 0;
	if (vc->pool->features & DD_POOL_IGNORE_DISCARD)
		return;
	dd_set_discard_limits(limits, DD_BLOCK_SIZE, DD_MAX_DISCARD_SECTORS);
}

static struct target_type volume_target = {
	.name = "dedup",
	.version = {0, 4, 0},
	.module = THIS_MODULE,
	.ctr = volume_ctr,
	.dtr = volume_dtr,
	.map = volume_map,
	.end_io = volume_end_io,
	.presuspend = volume_presuspend,
	.postsuspend = volume_postsuspend,
	.preresume = volume_preresume,
	.status = volume_status,
	.iterate_devices = volume_iterate_devices,
	.io_hints = volume_io_hints,
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
/* device-mapper asks for "dm-<target>" when a table names a target not loaded yet;
 * "dm-dedup" is the module's own name. */
MODULE_ALIAS("dm-dedup-pool");
