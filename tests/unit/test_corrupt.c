// SPDX-License-Identifier: GPL-2.0
/*
 * Corruption tests.  Each test builds a small pool on the RAM device, closes
 * it cleanly, breaks its metadata on purpose by editing raw blocks (with
 * the block checksum recomputed, so that only the intended damage is
 * present, except where the checksum is the damage), then asserts
 *  - what the check finds: the code and a distinctive part of the message;
 *  - what opening the pool does: it refuses with a given error, or it opens
 *    and the engine degrades as docs/format.md ("What a reader must
 *    validate") says.
 * The blocks to break are found by walking the engine's own structures on
 * an open pool (dd-walk.h), never by guessing block numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ddtest.h"
#include "dd-walk.h"

#define META	1024
#define DATA	2000
#define FREE_PBN 200		/* never allocated in these pools; its record leaf exists */

/* ---- engine log lines: captured, so tests can assert the reason ---- */

#define LOG_LINES 32
static char log_line[LOG_LINES][512];
static unsigned log_n;

static void log_hook(enum dd_log_level lvl, const char *msg)
{
	snprintf(log_line[log_n % LOG_LINES], sizeof(log_line[0]), "%s", msg);
	log_n++;
	if (getenv("DD_TEST_VERBOSE"))
		fprintf(stderr, "  engine: %s\n", msg);
}

static void log_clear(void)
{
	log_n = 0;
}

static bool logged(const char *needle)
{
	unsigned i;

	for (i = 0; i < log_n && i < LOG_LINES; i++)
		if (strstr(log_line[i], needle))
			return true;
	return false;
}

/* ---- running the check and looking at its findings ---- */

#define MAX_FINDINGS 128

struct findings {
	struct dd_check_result res;
	u32 n;
	enum dd_check_code code[MAX_FINDINGS];
	char msg[MAX_FINDINGS][256];
};

static void record_finding(void *ctx, enum dd_check_code code, bool error, const char *msg)
{
	struct findings *f = ctx;

	if (f->n == MAX_FINDINGS)
		return;
	f->code[f->n] = code;
	snprintf(f->msg[f->n], sizeof(f->msg[0]), "%s", msg);
	f->n++;
}

static void print_findings(const struct findings *f)
{
	u32 i;

	fprintf(stderr, "  check: %llu errors, %llu warnings\n", (unsigned long long)f->res.errors,
		(unsigned long long)f->res.warnings);
	for (i = 0; i < f->n; i++)
		fprintf(stderr, "  [%s] %s\n", dd_check_code_name(f->code[i]), f->msg[i]);
}

/* Runs the check on a read-only block manager and proves that it wrote nothing. */
static void check_dev(struct dd_ramdev *rd, struct findings *f)
{
	struct dd_bm_opts ro = { .read_only = true };
	struct dd_check_opts o = { .report = record_finding, .ctx = f, .max_reports = 32 };
	u64 writes = dd_ramdev_nr_writes(rd);
	struct dd_bm *bm;

	memset(f, 0, sizeof(*f));
	assert_int_equal(dd_bm_create(dd_ramdev_dev(rd), &ro, &bm), 0);
	assert_int_equal(dd_check(bm, &o, &f->res), 0);
	dd_bm_drop(bm);
	assert_int_equal(dd_ramdev_nr_writes(rd), writes);
	if (getenv("DD_TEST_VERBOSE"))
		print_findings(f);
}

static bool has_finding(const struct findings *f, enum dd_check_code code, const char *needle)
{
	u32 i;

	for (i = 0; i < f->n; i++)
		if (f->code[i] == code && strstr(f->msg[i], needle))
			return true;
	return false;
}

#define expect_finding(f, code, ...) do {						\
	char needle_[256];								\
	snprintf(needle_, sizeof(needle_), __VA_ARGS__);				\
	if (!has_finding(f, code, needle_)) {						\
		print_findings(f);							\
		fail_msg("no %s finding containing \"%s\"", dd_check_code_name(code),	\
			 needle_);							\
	}										\
} while (0)

#define BIT(code) (1u << (code))

/* Every error found has one of the codes in 'mask' (the damage and its
 * direct consequences, nothing else). */
static void expect_only(const struct findings *f, u32 mask)
{
	int c;

	assert_true(f->res.errors > 0);
	for (c = 0; c < DD_CHK_NR_CODES; c++) {
		if (f->res.count[c] && !(mask & BIT(c))) {
			print_findings(f);
			fail_msg("unexpected %s finding", dd_check_code_name((enum dd_check_code)c));
		}
	}
}

static void expect_clean(const struct findings *f)
{
	if (f->res.errors) {
		print_findings(f);
		fail_msg("the check found %llu errors", (unsigned long long)f->res.errors);
	}
}

/* ---- raw blocks ---- */

union blk {
	u8 raw[DD_BLOCK_SIZE];
	struct dd_disk_header hdr;
	struct dd_disk_node node;
	struct dd_disk_map_leaf map;
	struct dd_disk_refs_leaf refs;
	struct dd_disk_bitmap bits;
	struct dd_disk_vols_leaf vols;
	struct dd_disk_superblock sb;
};

static void blk_read(struct dd_ramdev *rd, u64 b, union blk *u)
{
	memcpy(u, dd_ramdev_block(rd, b), DD_BLOCK_SIZE);
}

/* Writes a block with its checksum recomputed: only the intended damage. */
static void blk_write(struct dd_ramdev *rd, u64 b, union blk *u)
{
	u->hdr.csum = cpu_to_le32(dd_walk_block_csum(u, le32_to_cpu(u->hdr.type)));
	dd_ramdev_poke(rd, b, u);
}

static void set_bit_le(__le64 *words, u32 bit, bool set)
{
	u64 w = le64_to_cpu(words[bit / 64]);

	w = set ? w | (1ULL << (bit % 64)) : w & ~(1ULL << (bit % 64));
	words[bit / 64] = cpu_to_le64(w);
}

static bool test_bit_le(const __le64 *words, u32 bit)
{
	return le64_to_cpu(words[bit / 64]) & (1ULL << (bit % 64));
}

/* ---- the pool every test starts from ----
 * volume 1: LBN 0..9 -> p1[i], exclusively owned;
 * volume 2: LBN 0..4 -> p2[i], shared with volume 3 (a snapshot of 2).
 * The last commit changes only the user transaction id, so the journal the
 * superblock names is empty and replay cannot undo a poked block.
 */
struct base {
	struct tpool tp;
	struct dd_ramdev *rd;
	u64 p1[10];
	u64 p2[5];
};

static void commit_empty_journal(struct tpool *tp)
{
	struct dd_pool_stats st;

	dd_pool_get_stats(tp->pool, &st);
	assert_int_equal(dd_pool_set_user_txn(tp->pool, st.user_txn, st.user_txn + 1), 0);
	assert_int_equal(dd_pool_commit(tp->pool), 0);
}

static void build(struct base *b)
{
	struct findings f;
	struct dd_volume *v;
	u64 i;

	memset(b, 0, sizeof(*b));
	log_clear();
	assert_int_equal(tp_create(&b->tp, META, DATA, 0, NULL), 0);
	b->rd = b->tp.rd;
	assert_int_equal(dd_volume_create(b->tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(b->tp.pool, 1, &v), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, i, &b->p1[i]), 0);
	dd_volume_close(v);
	assert_int_equal(dd_volume_create(b->tp.pool, 2), 0);
	assert_int_equal(dd_volume_open(b->tp.pool, 2, &v), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(tp_write(v, i, &b->p2[i]), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(b->tp.pool), 0);
	assert_int_equal(dd_snapshot_create(b->tp.pool, 3, 2), 0);
	assert_int_equal(dd_pool_commit(b->tp.pool), 0);
	commit_empty_journal(&b->tp);
	for (i = 0; i < 10; i++)
		assert_true(b->p1[i] != FREE_PBN);
	tp_close(&b->tp);

	/* The undamaged pool is clean: every finding below is the damage's. */
	check_dev(b->rd, &f);
	expect_clean(&f);
	assert_int_equal(f.res.warnings, 0);
	assert_int_equal(tp_open(&b->tp), 0);
}

static void destroy(struct base *b)
{
	tp_destroy(&b->tp);
}

/* Block numbers, found through the engine on the open pool: a walk down
 * the path to one leaf, which must exist and validate. */
struct find_leaf {
	u64 idx;
	u64 blocknr;		/* 0: not found */
	int error;
};

static int find_leaf_visit(void *ctx, const struct dd_walk_block *blk)
{
	struct find_leaf *f = ctx;

	if (f->idx < blk->first_leaf || f->idx - blk->first_leaf >= blk->nr_leaves)
		return DD_WALK_SKIP;
	if (!blk->level) {
		f->blocknr = blk->blocknr;
		f->error = blk->error;
	}
	return 0;
}

static u64 leaf_block(struct dd_pool *pool, enum dd_tree_id tree, u32 vol, u64 idx)
{
	struct find_leaf f = { .idx = idx };

	assert_int_equal(dd_walk_tree(pool, tree, vol, find_leaf_visit, &f), 0);
	assert_int_equal(f.error, 0);
	assert_true(f.blocknr != 0);
	return f.blocknr;
}

static u64 map_leaf_of(struct base *b, u32 vol, u64 lbn)
{
	return leaf_block(b->tp.pool, DD_TREE_MAP, vol, lbn / DD_MAP_ENTRIES);
}

static u64 refs_leaf_of(struct base *b, u64 pbn)
{
	return leaf_block(b->tp.pool, DD_TREE_REFS, 0, pbn / DD_RECS_PER_LEAF);
}

static u64 dalloc_leaf_of(struct base *b, u64 pbn)
{
	return leaf_block(b->tp.pool, DD_TREE_DALLOC, 0, pbn / DD_BITS_PER_BITMAP);
}

/* The superblock slot an open would use: the valid one with the higher txn. */
static u64 sb_block(struct base *b)
{
	u64 slot, best = DD_SB_SLOTS, best_txn = 0;

	for (slot = 0; slot < DD_SB_SLOTS; slot++) {
		const struct dd_disk_superblock *sb = dd_ramdev_block(b->rd, slot);

		if (dd_walk_sb_check(sb, slot))
			continue;
		if (best == DD_SB_SLOTS || le64_to_cpu(sb->hdr.txn) > best_txn) {
			best = slot;
			best_txn = le64_to_cpu(sb->hdr.txn);
		}
	}
	assert_true(best < DD_SB_SLOTS);
	return best;
}

static struct dd_volume *open_vol(struct base *b, u32 id)
{
	struct dd_volume *v;

	assert_int_equal(dd_volume_open(b->tp.pool, id, &v), 0);
	return v;
}

static void expect_read_only_after_error(struct base *b)
{
	struct dd_pool_stats st;

	dd_pool_get_stats(b->tp.pool, &st);
	assert_int_equal(st.mode, DD_MODE_RO);
	assert_true(st.needs_check);
}

/* ---- reference counts ---- */

static void refcount_off_by_one_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	union blk u;
	u64 pbn, lb;

	build(&b);
	pbn = b.p1[3];
	lb = refs_leaf_of(&b, pbn);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	assert_int_equal(le32_to_cpu(u.refs.rec[pbn % DD_RECS_PER_LEAF].refcount), 1);
	u.refs.rec[pbn % DD_RECS_PER_LEAF].refcount = cpu_to_le32(2);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_REFCOUNT, "block %llu: refcount 2, but 1 map entries",
		       (unsigned long long)pbn);
	/* Consequences: an owner and an exclusive bit on a "shared" block, one
	 * more shared block than the superblock counts. */
	expect_finding(&f, DD_CHK_OWNER, "owner set but refcount is 2");
	expect_only(&f, BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_OWNER) | BIT(DD_CHK_EXCL) |
			BIT(DD_CHK_STATS));

	/* Opens: records are read on demand.  A count too high is the safe
	 * direction: overwriting the LBN leaves the old block allocated with
	 * no referrer (a leak, which the check then reports), never freed. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(tp_write(v, 3, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(b.tp.pool), 0);
	tp_close(&b.tp);
	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_DATA_LEAK, "block %llu is allocated but no map entry",
		       (unsigned long long)pbn);
	destroy(&b);
}

static void refcount_one_too_low_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	union blk u;
	u64 pbn, lb;

	build(&b);
	pbn = b.p2[0];		/* mapped by volumes 2 and 3 */
	lb = refs_leaf_of(&b, pbn);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	assert_int_equal(le32_to_cpu(u.refs.rec[pbn % DD_RECS_PER_LEAF].refcount), 2);
	u.refs.rec[pbn % DD_RECS_PER_LEAF].refcount = cpu_to_le32(1);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_REFCOUNT, "block %llu: refcount 1, but 2 map entries",
		       (unsigned long long)pbn);
	expect_only(&f, BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_STATS));

	/* Opens, and this direction is the dangerous one: overwriting one of
	 * the two LBNs frees the block while the other still maps it.  The
	 * engine cannot see that without a full scan; the check does. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 2);
	assert_int_equal(tp_write(v, 0, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(b.tp.pool), 0);
	tp_close(&b.tp);
	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_DATA_FREE, "block %llu is both free and mapped",
		       (unsigned long long)pbn);
	destroy(&b);
}

/* ---- map entries ---- */

static void map_entry_beyond_the_data_device_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;
	u64 lb, bad = DATA + 100;

	build(&b);
	lb = map_leaf_of(&b, 1, 4);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	u.map.entry[4] = cpu_to_le64(DD_ME_MAPPED | bad);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_MAP_RANGE,
		       "volume 1 LBN 4: maps block %llu beyond the data device (%u blocks)",
		       (unsigned long long)bad, DATA);
	/* The block it used to map is now unreferenced. */
	expect_finding(&f, DD_CHK_REFCOUNT, "block %llu: refcount 1, but 0 map entries",
		       (unsigned long long)b.p1[4]);
	expect_only(&f, BIT(DD_CHK_MAP_RANGE) | BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_DATA_LEAK) |
			BIT(DD_CHK_OWNER));

	/* Opens; a lookup of that LBN fails with -EILSEQ rather than send I/O
	 * past the end of the data device.  Other LBNs still read. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v, 4, 0, &m), -EILSEQ);
	assert_int_equal(dd_map_lookup(v, 5, 0, &m), 0);
	assert_true(m.mapped && m.pbn == b.p1[5]);
	dd_volume_close(v);
	destroy(&b);
}

static void map_entry_pointing_at_a_free_block_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	union blk u;
	u64 lb;

	build(&b);
	lb = map_leaf_of(&b, 1, 5);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	u.map.entry[5] = cpu_to_le64(DD_ME_MAPPED | DD_ME_EXCL | FREE_PBN);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_DATA_FREE, "block %u is both free and mapped (1 map entries)",
		       FREE_PBN);
	expect_finding(&f, DD_CHK_REFCOUNT, "block %u: refcount 0, but 1 map entries", FREE_PBN);
	expect_finding(&f, DD_CHK_EXCL, "volume 1 LBN 5: exclusive bit on block %u (refcount 0",
		       FREE_PBN);
	expect_only(&f, BIT(DD_CHK_DATA_FREE) | BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_DATA_LEAK) |
			BIT(DD_CHK_OWNER) | BIT(DD_CHK_EXCL));

	/* Opens; overwriting the LBN drops a reference on a free block: the
	 * insert fails with -EILSEQ and the pool steps down to read-only with
	 * needs_check set. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(tp_write(v, 5, NULL), -EILSEQ);
	assert_true(logged("dropping a reference to a free block"));
	dd_volume_close(v);
	expect_read_only_after_error(&b);
	destroy(&b);
}

static void block_both_free_and_mapped_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	union blk u;
	u64 pbn, lb, got;
	u32 bit;

	build(&b);
	pbn = b.p1[0];
	lb = dalloc_leaf_of(&b, pbn);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	bit = pbn % DD_BITS_PER_BITMAP;
	assert_true(test_bit_le(u.bits.word, bit));
	set_bit_le(u.bits.word, bit, false);
	u.bits.hdr.count = cpu_to_le16(le16_to_cpu(u.bits.hdr.count) - 1);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_DATA_FREE, "block %llu is both free and mapped",
		       (unsigned long long)pbn);
	expect_only(&f, BIT(DD_CHK_DATA_FREE));

	/* Opens.  The allocator offers the block again, but its record still
	 * counts a reference: the reservation is refused with -EILSEQ before a
	 * guest's data can land on the live block, and the pool goes
	 * read-only with needs_check set. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(dd_data_reserve(b.tp.pool, &got), -EILSEQ);
	assert_true(logged("free in the bitmap"));
	dd_volume_close(v);
	expect_read_only_after_error(&b);
	destroy(&b);
}

static void leaked_data_block_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	union blk u;
	u64 lb, pbn;

	build(&b);
	lb = dalloc_leaf_of(&b, FREE_PBN);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	set_bit_le(u.bits.word, FREE_PBN % DD_BITS_PER_BITMAP, true);
	u.bits.hdr.count = cpu_to_le16(le16_to_cpu(u.bits.hdr.count) + 1);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_DATA_LEAK, "block %u is allocated but no map entry points to it",
		       FREE_PBN);
	expect_only(&f, BIT(DD_CHK_DATA_LEAK));

	/* Opens; only the space is lost: new writes go elsewhere. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(tp_write(v, 100, &pbn), 0);
	assert_true(pbn != FREE_PBN);
	dd_volume_close(v);
	destroy(&b);
}

/* ---- owner back-pointers and exclusive bits ---- */

static void wrong_owner_back_pointer_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	struct dd_disk_rec *rec;
	union blk u;
	u64 pbn, lb;

	build(&b);
	pbn = b.p1[2];
	lb = refs_leaf_of(&b, pbn);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	rec = &u.refs.rec[pbn % DD_RECS_PER_LEAF];
	assert_int_equal(le64_to_cpu(rec->owner_lbn) & DD_REC_LBN_MASK, 2);
	rec->owner_lbn = cpu_to_le64(7 | DD_REC_OWNED);		/* LBN 7 maps p1[7] */
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_OWNER, "block %llu: owner 1/7 does not map it (maps %llu)",
		       (unsigned long long)pbn, (unsigned long long)b.p1[7]);
	expect_only(&f, BIT(DD_CHK_OWNER) | BIT(DD_CHK_EXCL));

	/* Opens; the data path never follows the back-pointer, so guests see
	 * no difference (the scanner would have to distrust it). */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v, 2, 0, &m), 0);
	assert_true(m.mapped && m.excl && m.pbn == pbn);
	dd_volume_close(v);
	destroy(&b);
}

static void exclusive_bit_on_a_shared_block_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;
	u64 lb;

	build(&b);
	lb = map_leaf_of(&b, 2, 0);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	assert_false(le64_to_cpu(u.map.entry[0]) & DD_ME_EXCL);
	u.map.entry[0] = cpu_to_le64(le64_to_cpu(u.map.entry[0]) | DD_ME_EXCL);
	blk_write(b.rd, lb, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_EXCL,
		       "volume 2 LBN 0: exclusive bit on block %llu (refcount 2, owner unknown",
		       (unsigned long long)b.p2[0]);
	expect_only(&f, BIT(DD_CHK_EXCL));

	/* Opens, and the data path trusts the bit (it is the cheap answer
	 * the write path needs): a write would go in place and volume 3 would
	 * see it.  Only the check finds this damage. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 2);
	assert_int_equal(dd_map_lookup(v, 0, 0, &m), 0);
	assert_true(m.excl);
	dd_volume_close(v);
	destroy(&b);
}

/* ---- damaged blocks ---- */

static void bad_checksum_in_a_map_leaf_is_reported_and_reads_fail_cleanly(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;
	u64 lb;

	build(&b);
	lb = map_leaf_of(&b, 1, 0);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	u.raw[DD_BLOCK_SIZE - 1] ^= 0x40;	/* one bit of an unused entry */
	dd_ramdev_poke(b.rd, lb, &u);		/* checksum left stale */

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_BLOCK, "block %llu: checksum mismatch", (unsigned long long)lb);
	/* Its entries are not counted: the blocks they map look unreferenced. */
	expect_finding(&f, DD_CHK_REFCOUNT, "block %llu: refcount 1, but 0 map entries",
		       (unsigned long long)b.p1[0]);
	expect_only(&f, BIT(DD_CHK_BLOCK) | BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_DATA_LEAK) |
			BIT(DD_CHK_OWNER) | BIT(DD_CHK_STATS));

	/* Opens (maps are read on demand).  Reading the volume's map fails
	 * with -EILSEQ, every time; other volumes work; a write to the volume
	 * steps the pool down to read-only. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v, 0, 0, &m), -EILSEQ);
	assert_int_equal(dd_map_lookup(v, 9, 0, &m), -EILSEQ);
	assert_true(logged("fails its checks"));
	dd_volume_close(v);
	v = open_vol(&b, 2);
	assert_int_equal(dd_map_lookup(v, 0, 0, &m), 0);
	assert_true(m.mapped && m.pbn == b.p2[0]);
	dd_volume_close(v);
	v = open_vol(&b, 1);
	assert_int_equal(tp_write(v, 0, NULL), -EILSEQ);
	dd_volume_close(v);
	expect_read_only_after_error(&b);
	destroy(&b);
}

static void misdirected_block_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;
	u64 from, to;

	build(&b);
	from = map_leaf_of(&b, 1, 0);
	to = map_leaf_of(&b, 3, 0);
	tp_close(&b.tp);
	/* A write of volume 1's leaf that landed on volume 3's leaf: valid
	 * checksum and type, wrong home. */
	blk_read(b.rd, from, &u);
	dd_ramdev_poke(b.rd, to, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_BLOCK, "block %llu: claims to be block %llu",
		       (unsigned long long)to, (unsigned long long)from);
	expect_only(&f, BIT(DD_CHK_BLOCK) | BIT(DD_CHK_REFCOUNT) | BIT(DD_CHK_STATS));

	/* Opens; volume 3's map reads fail with -EILSEQ instead of returning
	 * volume 1's blocks. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 3);
	assert_int_equal(dd_map_lookup(v, 0, 0, &m), -EILSEQ);
	dd_volume_close(v);
	destroy(&b);
}

/* A tree taller than the format allows, with blocks crafted to match (valid
 * checksums, levels that agree): the walk must stop, not index past the
 * engine's per-level tables. */
static void map_tree_taller_than_the_maximum_is_refused(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;
	u64 leaf, table;
	u32 slot = 1 % DD_VOLS_PER_LEAF;
	u8 height = DD_MAX_HEIGHT + 3;

	build(&b);
	leaf = map_leaf_of(&b, 1, 0);
	table = leaf_block(b.tp.pool, DD_TREE_VOLS, 0, 1 / DD_VOLS_PER_LEAF);
	tp_close(&b.tp);
	blk_read(b.rd, table, &u);
	assert_int_equal(le64_to_cpu(u.vols.vol[slot].map.root), leaf);
	u.vols.vol[slot].map.height = height;
	blk_write(b.rd, table, &u);
	blk_read(b.rd, leaf, &u);
	memset(u.raw + sizeof(u.hdr), 0, DD_PAYLOAD_SIZE);
	u.hdr.type = cpu_to_le32(DD_BT_NODE);
	u.hdr.level = height;
	blk_write(b.rd, leaf, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_TREE, "map has height %u", height);

	/* Opens; the volume's map reads fail with -EILSEQ. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v, 0, 0, &m), -EILSEQ);
	dd_volume_close(v);
	destroy(&b);
}

/*
 * A volume whose map root names another volume's map leaf never reads the
 * other volume's mappings, also when that leaf is already in the cache
 * (validated once for its own volume, it was re-checked on type and level
 * only, so the second volume's lookups returned the first one's blocks).
 */
static void a_map_root_into_another_volumes_map_is_refused_even_when_cached(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v1, *v2;
	struct dd_mapping m;
	union blk u;
	u64 leaf1, table;
	u32 slot = 2 % DD_VOLS_PER_LEAF;

	build(&b);
	leaf1 = map_leaf_of(&b, 1, 0);
	table = leaf_block(b.tp.pool, DD_TREE_VOLS, 0, 2 / DD_VOLS_PER_LEAF);
	tp_close(&b.tp);
	blk_read(b.rd, table, &u);
	u.vols.vol[slot].map.root = cpu_to_le64(leaf1);	/* volume 2 -> volume 1's leaf */
	u.vols.vol[slot].map.height = 0;
	blk_write(b.rd, table, &u);
	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_META_SHARED, "metadata block %llu is reachable twice",
		       (unsigned long long)leaf1);

	assert_int_equal(tp_open(&b.tp), 0);
	v1 = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v1, 0, 0, &m), 0);	/* the leaf is cached now */
	assert_true(m.mapped);
	v2 = open_vol(&b, 2);
	assert_int_equal(dd_map_lookup(v2, 0, 0, &m), -EILSEQ);
	assert_false(m.mapped);
	dd_volume_close(v2);
	dd_volume_close(v1);
	destroy(&b);
}

/*
 * A damaged volume table must not hide the rest of the pool: the check still
 * walks everything (regression: counting deleted volumes at every open made
 * the open, and so the check, fail on it), and a read-only open works.
 */
static void damaged_volume_table_still_lets_the_check_and_a_read_only_open_through(void **state)
{
	struct dd_bm_opts ro = { .read_only = true };
	struct base b;
	struct findings f;
	struct dd_pool *pool;
	struct dd_bm *bm;
	union blk u;
	u64 lb;

	build(&b);
	lb = leaf_block(b.tp.pool, DD_TREE_VOLS, 0, 0);
	tp_close(&b.tp);
	blk_read(b.rd, lb, &u);
	u.raw[DD_BLOCK_SIZE - 1] ^= 0x40;
	dd_ramdev_poke(b.rd, lb, &u);		/* the checksum no longer matches */
	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_BLOCK, "%llu", (unsigned long long)lb);
	if (f.res.count[DD_CHK_OPEN]) {
		print_findings(&f);
		fail_msg("the check could not open the pool");
	}
	assert_int_equal(dd_bm_create(dd_ramdev_dev(b.rd), &ro, &bm), 0);
	assert_int_equal(dd_pool_open(bm, DD_OPEN_READ_ONLY, NULL, &pool), 0);
	dd_pool_close(pool);
	dd_bm_drop(bm);
	tp_destroy(&b.tp);
}

/* ---- metadata space ---- */

/* Adds delta to the superblock's meta_used, so that only the bitmap damage shows. */
static void sb_adjust_meta_used(struct base *b, int delta)
{
	union blk u;

	blk_read(b->rd, sb_block(b), &u);
	u.sb.stats.meta_used = cpu_to_le64(le64_to_cpu(u.sb.stats.meta_used) + (u64)(s64)delta);
	blk_write(b->rd, sb_block(b), &u);
}

/* Sets or clears metadata block mb's bit (and the leaf and superblock counts). */
static void mbitmap_set(struct base *b, u64 mb, bool set)
{
	u32 bit = mb % DD_BITS_PER_BITMAP;
	union blk u;
	u64 blk;

	blk_read(b->rd, sb_block(b), &u);
	blk = le64_to_cpu(u.sb.mbitmap_start) + mb / DD_BITS_PER_BITMAP;
	blk_read(b->rd, blk, &u);
	assert_true(test_bit_le(u.bits.word, bit) != set);
	set_bit_le(u.bits.word, bit, set);
	u.bits.hdr.count = cpu_to_le16((u16)(le16_to_cpu(u.bits.hdr.count) + (set ? 1 : -1)));
	blk_write(b->rd, blk, &u);
	sb_adjust_meta_used(b, set ? 1 : -1);
}

static void leaked_metadata_block_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;

	build(&b);
	tp_close(&b.tp);
	mbitmap_set(&b, META - 1, true);	/* the last block is never used here */

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_META_LEAK, "metadata block %u is allocated but unreachable",
		       META - 1);
	expect_only(&f, BIT(DD_CHK_META_LEAK));

	/* Opens; one metadata block is lost, nothing else. */
	assert_int_equal(tp_open(&b.tp), 0);
	v = open_vol(&b, 1);
	assert_int_equal(tp_write(v, 5000, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(b.tp.pool), 0);
	destroy(&b);
}

static void reachable_metadata_block_marked_free_is_reported(void **state)
{
	struct base b;
	struct findings f;
	u64 lb;

	build(&b);
	lb = map_leaf_of(&b, 1, 0);
	tp_close(&b.tp);
	mbitmap_set(&b, lb, false);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_META_FREE, "metadata block %llu is in use but marked free",
		       (unsigned long long)lb);
	expect_only(&f, BIT(DD_CHK_META_FREE));

	/* Opens: the engine cannot see this without walking everything, and
	 * the allocator may hand the block out again (overwriting live
	 * metadata in a later transaction).  Only the check finds it. */
	assert_int_equal(tp_open(&b.tp), 0);
	destroy(&b);
}

/* ---- superblocks and journal ---- */

static void both_superblocks_destroyed_refuses_to_open(void **state)
{
	struct base b;
	struct findings f;
	union blk u;

	build(&b);
	tp_close(&b.tp);
	memset(&u, 0, sizeof(u));
	dd_ramdev_poke(b.rd, 0, &u);
	memset(&u, 0xa5, sizeof(u));
	dd_ramdev_poke(b.rd, 1, &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_OPEN, "no valid superblock");
	assert_int_equal(f.res.errors, 1);

	log_clear();
	assert_int_equal(tp_open(&b.tp), -EINVAL);
	assert_true(logged("no valid superblock"));
	destroy(&b);
}

static void one_superblock_destroyed_opens_from_the_older_slot(void **state)
{
	struct tpool tp = { 0 };
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	struct dd_pool_stats st;
	union blk u;
	u64 i, pbn[10], older;

	/* Transaction t maps LBN 0..9, t + 1 maps 10..19, then the power
	 * fails: the home copies of t + 1 never reach the disk, so the older
	 * superblock and its journal describe exactly the blocks on disk. */
	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	assert_int_equal(dd_volume_create(tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, i, &pbn[i]), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	dd_pool_get_stats(tp.pool, &st);
	older = st.txn;
	for (i = 10; i < 20; i++)
		assert_int_equal(tp_write(v, i, NULL), 0);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	dd_volume_close(v);
	tp_crash(&tp);

	/* The newer superblock is lost (a torn or misdirected write). */
	memset(&u, 0, sizeof(u));
	dd_ramdev_poke(tp.rd, (older + 1) % DD_SB_SLOTS, &u);

	/* The older slot and its journal give exactly transaction t. */
	check_dev(tp.rd, &f);
	expect_clean(&f);
	assert_int_equal(tp_open(&tp), 0);
	dd_pool_get_stats(tp.pool, &st);
	assert_int_equal(st.txn, older);
	assert_int_equal(st.mapped_blocks, 10);
	assert_int_equal(st.data_used, 10);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	for (i = 0; i < 20; i++) {
		assert_int_equal(dd_map_lookup(v, i, 0, &m), 0);
		assert_int_equal(m.mapped, i < 10);
		if (i < 10)
			assert_int_equal(m.pbn, pbn[i]);
	}
	/* ... and it takes new work. */
	assert_int_equal(tp_write(v, 10, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	tp_close(&tp);
	check_dev(tp.rd, &f);
	expect_clean(&f);
	tp_destroy(&tp);
}

static void damaged_journal_image_refuses_to_open(void **state)
{
	struct tpool tp = { 0 };
	struct dd_ramdev *copy;
	struct findings f;
	struct dd_volume *v;
	struct dd_walk_info g;
	union blk u;
	u64 i, area;

	/* The power fails right after a commit: the journal the superblock
	 * names is the only copy of the transaction (nothing went home). */
	assert_int_equal(tp_create(&tp, META, DATA, 0, NULL), 0);
	assert_int_equal(dd_volume_create(tp.pool, 1), 0);
	assert_int_equal(dd_volume_open(tp.pool, 1, &v), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(tp_write(v, i, NULL), 0);
	dd_volume_close(v);
	assert_int_equal(dd_pool_commit(tp.pool), 0);
	dd_walk_get_info(tp.pool, &g);
	area = g.journal_start + (g.committed_txn % DD_JOURNAL_AREAS) * g.journal_blocks;
	tp_crash(&tp);
	copy = dd_ramdev_clone(tp.rd);
	assert_non_null(copy);

	/* 1. An image whose own checksum fails. */
	blk_read(tp.rd, area + 1, &u);
	u.raw[100] ^= 1;
	dd_ramdev_poke(tp.rd, area + 1, &u);
	check_dev(tp.rd, &f);
	expect_finding(&f, DD_CHK_OPEN, "journal or superblock damaged");
	assert_int_equal(f.res.errors, 1);
	log_clear();
	assert_int_equal(tp_open(&tp), -EILSEQ);
	assert_true(logged("journal block 1 of transaction"));
	tp_destroy(&tp);

	/* 2. An image that is valid by itself but is not the one the
	 * superblock names (its checksum is not in the journal's). */
	tp.rd = copy;
	blk_read(copy, area + 1, &u);
	u.raw[100] ^= 1;
	blk_write(copy, area + 1, &u);
	check_dev(copy, &f);
	expect_finding(&f, DD_CHK_OPEN, "journal or superblock damaged");
	log_clear();
	assert_int_equal(tp_open(&tp), -EILSEQ);
	assert_true(logged("does not match its superblock"));
	tp_destroy(&tp);
}

static void truncated_metadata_device_refuses_to_open(void **state)
{
	struct base b;
	struct findings f;
	struct dd_ramdev *small;
	u64 blk;

	build(&b);
	tp_close(&b.tp);
	small = dd_ramdev_create(META / 2);
	assert_non_null(small);
	for (blk = 0; blk < META / 2; blk++)
		dd_ramdev_poke(small, blk, dd_ramdev_block(b.rd, blk));
	dd_ramdev_free(b.rd);
	b.tp.rd = b.rd = small;

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_OPEN, "bad geometry");
	assert_int_equal(f.res.errors, 1);
	log_clear();
	assert_int_equal(tp_open(&b.tp), -EINVAL);
	assert_true(logged("geometry"));
	destroy(&b);
}

static void wrong_superblock_counter_is_reported(void **state)
{
	struct base b;
	struct findings f;
	struct dd_pool_stats st;
	union blk u;
	u64 used;

	build(&b);
	tp_close(&b.tp);
	blk_read(b.rd, sb_block(&b), &u);
	used = le64_to_cpu(u.sb.stats.data_used);
	assert_int_equal(used, 15);
	u.sb.stats.data_used = cpu_to_le64(used + 1);
	blk_write(b.rd, sb_block(&b), &u);

	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_STATS, "superblock: data blocks used is 16, actual 15");
	expect_only(&f, BIT(DD_CHK_STATS));

	/* Opens; only the statistics are wrong (the engine trusts them). */
	assert_int_equal(tp_open(&b.tp), 0);
	dd_pool_get_stats(b.tp.pool, &st);
	assert_int_equal(st.data_used, 16);
	assert_int_equal(st.data_free, DATA - 16);
	destroy(&b);
}

/* The kernel compares this with its table before an open allocates for the
 * data space (a superblock claiming 2^46 blocks made it WARN in kvmalloc). */
static void data_space_a_superblock_claims_is_probed_without_opening(void **state)
{
	struct dd_bm_opts ro = { .read_only = true };
	struct base b;
	struct dd_bm *bm;
	union blk u;
	u64 n = 0, slot;

	build(&b);
	tp_close(&b.tp);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(b.rd), &ro, &bm), 0);
	assert_int_equal(dd_pool_probe_data_blocks(bm, &n), 0);
	assert_int_equal(n, DATA);
	dd_bm_drop(bm);

	slot = sb_block(&b);
	blk_read(b.rd, slot, &u);
	u.sb.nr_data_blocks = cpu_to_le64(DATA + (1ULL << 46));
	blk_write(b.rd, slot, &u);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(b.rd), &ro, &bm), 0);
	assert_int_equal(dd_pool_probe_data_blocks(bm, &n), 0);
	assert_true(n == DATA + (1ULL << 46));
	dd_bm_drop(bm);

	/* No valid superblock: the open's errors. */
	memset(&u, 0, sizeof(u));
	dd_ramdev_poke(b.rd, 0, &u);
	dd_ramdev_poke(b.rd, 1, &u);
	assert_int_equal(dd_bm_create(dd_ramdev_dev(b.rd), &ro, &bm), 0);
	assert_int_equal(dd_pool_probe_data_blocks(bm, &n), -EINVAL);
	dd_bm_drop(bm);
	tp_destroy(&b.tp);
}

static void unknown_incompat_feature_refuses_to_open(void **state)
{
	struct base b;
	struct findings f;
	union blk u;

	build(&b);
	tp_close(&b.tp);
	blk_read(b.rd, sb_block(&b), &u);
	u.sb.incompat = cpu_to_le32(1u << 31);
	blk_write(b.rd, sb_block(&b), &u);

	/* The older slot has no such feature, but it is older: never used. */
	check_dev(b.rd, &f);
	expect_finding(&f, DD_CHK_OPEN, "cannot open the pool");
	log_clear();
	assert_int_equal(tp_open(&b.tp), -EINVAL);
	assert_true(logged("unsupported incompatible features 0x80000000"));
	destroy(&b);
}

static void unknown_ro_compat_feature_opens_read_only(void **state)
{
	struct base b;
	struct findings f;
	struct dd_volume *v;
	struct dd_mapping m;
	union blk u;

	build(&b);
	tp_close(&b.tp);
	blk_read(b.rd, sb_block(&b), &u);
	u.sb.ro_compat = cpu_to_le32(1u << 30);
	blk_write(b.rd, sb_block(&b), &u);

	/* Everything this version knows is intact. */
	check_dev(b.rd, &f);
	expect_clean(&f);

	/* Opens read-only: reads work, every change is refused with -EROFS,
	 * and the mode says so. */
	assert_int_equal(tp_open(&b.tp), 0);
	assert_int_equal(dd_pool_mode(b.tp.pool), DD_MODE_RO);
	v = open_vol(&b, 1);
	assert_int_equal(dd_map_lookup(v, 3, 0, &m), 0);
	assert_true(m.mapped && m.pbn == b.p1[3]);
	assert_int_equal(tp_write(v, 3, NULL), -EROFS);
	assert_int_equal(dd_map_unmap(v, 0, 1, DD_UNMAP_DISCARD), -EROFS);
	dd_volume_close(v);
	assert_int_equal(dd_volume_create(b.tp.pool, 9), -EROFS);
	destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refcount_off_by_one_is_reported),
		cmocka_unit_test(damaged_volume_table_still_lets_the_check_and_a_read_only_open_through),
		cmocka_unit_test(refcount_one_too_low_is_reported),
		cmocka_unit_test(map_entry_beyond_the_data_device_is_reported),
		cmocka_unit_test(map_entry_pointing_at_a_free_block_is_reported),
		cmocka_unit_test(block_both_free_and_mapped_is_reported),
		cmocka_unit_test(leaked_data_block_is_reported),
		cmocka_unit_test(wrong_owner_back_pointer_is_reported),
		cmocka_unit_test(exclusive_bit_on_a_shared_block_is_reported),
		cmocka_unit_test(bad_checksum_in_a_map_leaf_is_reported_and_reads_fail_cleanly),
		cmocka_unit_test(misdirected_block_is_reported),
		cmocka_unit_test(map_tree_taller_than_the_maximum_is_refused),
		cmocka_unit_test(a_map_root_into_another_volumes_map_is_refused_even_when_cached),
		cmocka_unit_test(leaked_metadata_block_is_reported),
		cmocka_unit_test(reachable_metadata_block_marked_free_is_reported),
		cmocka_unit_test(both_superblocks_destroyed_refuses_to_open),
		cmocka_unit_test(one_superblock_destroyed_opens_from_the_older_slot),
		cmocka_unit_test(damaged_journal_image_refuses_to_open),
		cmocka_unit_test(truncated_metadata_device_refuses_to_open),
		cmocka_unit_test(wrong_superblock_counter_is_reported),
		cmocka_unit_test(data_space_a_superblock_claims_is_probed_without_opening),
		cmocka_unit_test(unknown_incompat_feature_refuses_to_open),
		cmocka_unit_test(unknown_ro_compat_feature_opens_read_only),
	};

	dd_set_log_hook(log_hook);
	return cmocka_run_group_tests_name("corrupt", tests, NULL, NULL);
}
