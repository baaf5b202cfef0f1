// SPDX-License-Identifier: GPL-2.0
/*
 * dedup_dump: prints the metadata of a dm-dedup pool, for people (aligned
 * text) or programs (--json, one JSON document).
 *
 *   dedup_dump [--json] [--mappings] [--records] [--blocks] <metadata dev or file>
 *
 * --blocks lists every metadata block in use: both superblock slots, the
 * metadata bitmap pages and every block reachable from the superblock, with
 * its type, tree, level and owner (tests pick blocks of a type to damage).
 *
 * Read-only: the device is opened O_RDONLY and the journal is replayed into
 * the block manager's memory only.  Exit status: 0 dumped, 1 the metadata
 * cannot be opened or a structure could not be read (what could be read is
 * still printed, and the JSON stays valid), 2 usage error or the device
 * cannot be opened.
 */
#include <getopt.h>
#include <stdarg.h>

#include "libdmdedup.h"
#include "dd-walk.h"

#define EXIT_DAMAGED	1
#define EXIT_USAGE	2

static const char *prog = "dedup_dump";
static char engine_msg[512];

static void engine_log(enum dd_log_level lvl, const char *msg)
{
	if (lvl == DD_LOG_ERR)
		snprintf(engine_msg, sizeof(engine_msg), "%s", msg);
}

/* ---- output: aligned text or JSON ---------------------------------------- */

#define MAX_DEPTH 8

struct out {
	bool json;
	int depth;
	bool first[MAX_DEPTH];
	bool inline_[MAX_DEPTH];	/* containers printed on one line */
	unsigned errors;
	char error[16][512];		/* kept for the JSON "errors" array */
};

static void j_indent(int level)
{
	int i;

	putchar('\n');
	for (i = 0; i < level; i++)
		fputs("  ", stdout);
}

static void j_sep(struct out *o)
{
	bool first = o->first[o->depth];

	o->first[o->depth] = false;
	if (!first)
		putchar(',');
	if (!o->inline_[o->depth])
		j_indent(o->depth + 1);
	else if (!first)
		putchar(' ');
}

static void j_str_raw(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Starts a member ("key": ) of an object, or an element of an array (key NULL). */
static void j_key(struct out *o, const char *key)
{
	j_sep(o);
	if (key) {
		j_str_raw(key);
		fputs(": ", stdout);
	}
}

static void j_open(struct out *o, const char *key, char bracket, bool on_one_line)
{
	if (o->depth < 0) {
		o->depth = 0;
	} else {
		j_key(o, key);
		o->depth++;
	}
	DD_BUG_ON(o->depth >= MAX_DEPTH);
	putchar(bracket);
	o->first[o->depth] = true;
	o->inline_[o->depth] = on_one_line || (o->depth > 0 && o->inline_[o->depth - 1]);
}

static void j_close(struct out *o, char bracket)
{
	bool empty = o->first[o->depth], one_line = o->inline_[o->depth];

	if (!empty && !one_line)
		j_indent(o->depth);
	o->depth--;
	putchar(bracket);
	if (o->depth < 0)
		putchar('\n');
}

static void j_u64(struct out *o, const char *key, u64 v)
{
	j_key(o, key);
	printf("%llu", (unsigned long long)v);
}

static void j_bool(struct out *o, const char *key, bool v)
{
	j_key(o, key);
	fputs(v ? "true" : "false", stdout);
}

static void j_null(struct out *o, const char *key)
{
	j_key(o, key);
	fputs("null", stdout);
}

static void j_str(struct out *o, const char *key, const char *s)
{
	j_key(o, key);
	j_str_raw(s);
}

__attribute__((format(printf, 2, 3)))
static void dump_error(struct out *o, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: error: %s\n", prog, msg);
	if (o->errors < 16)
		snprintf(o->error[o->errors], sizeof(o->error[0]), "%s", msg);
	o->errors++;
}

/* ---- helpers ---------------------------------------------------------------- */

/* -EILSEQ is how the engine says "damaged metadata"; strerror's words mislead. */
static const char *err_str(int r)
{
	return r == -EILSEQ ? "damaged metadata (run dedup_check)" : strerror(-r);
}

static const char *human_size(u64 blocks, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)blocks * (DD_BLOCK_SIZE / 1024);
	int i = 0;

	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
	return buf;
}

static void uuid_string(const u8 *u, char *buf)
{
	int i, n = 0;

	for (i = 0; i < 16; i++) {
		n += sprintf(buf + n, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			buf[n++] = '-';
	}
	buf[n] = '\0';
}

/* Volume flags as words: "valid,deleting". */
static void vol_flag_words(u32 flags, char *buf, size_t len)
{
	static const struct { u32 bit; const char *name; } names[] = {
		{ DD_VOL_VALID, "valid" },
		{ DD_VOL_INCOMPLETE, "incomplete" },
		{ DD_VOL_DELETING, "deleting" },
	};
	size_t n = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", names[i].name);
	if (flags & ~DD_VOL_KNOWN_FLAGS)
		snprintf(buf + n, len - n, "%s%#x", n ? "," : "", flags & ~DD_VOL_KNOWN_FLAGS);
}

/* ---- superblock and statistics --------------------------------------------- */

static void dump_superblock(struct out *o, const struct dd_disk_superblock *sb, u64 slot)
{
	u32 flags = le32_to_cpu(sb->flags);
	u64 nr_meta = le64_to_cpu(sb->nr_meta_blocks), nr_data = le64_to_cpu(sb->nr_data_blocks);
	u32 jblocks = le32_to_cpu(sb->journal_blocks);
	char uuid[40], s1[32], s2[32];

	uuid_string(sb->uuid, uuid);
	if (o->json) {
		j_open(o, "superblock", '{', false);
		j_u64(o, "slot", slot);
		j_u64(o, "transaction", le64_to_cpu(sb->hdr.txn));
		j_u64(o, "user_transaction", le64_to_cpu(sb->user_txn_id));
		j_u64(o, "version", le32_to_cpu(sb->version));
		j_open(o, "flags", '[', true);
		if (flags & DD_SB_NEEDS_CHECK)
			j_str(o, NULL, "needs_check");
		if (flags & ~DD_SB_NEEDS_CHECK)
			j_u64(o, NULL, flags & ~DD_SB_NEEDS_CHECK);
		j_close(o, ']');
		j_bool(o, "needs_check", flags & DD_SB_NEEDS_CHECK);
		j_u64(o, "compat", le32_to_cpu(sb->compat));
		j_u64(o, "ro_compat", le32_to_cpu(sb->ro_compat));
		j_u64(o, "incompat", le32_to_cpu(sb->incompat));
		j_str(o, "uuid", uuid);
		j_u64(o, "block_size", DD_BLOCK_SIZE);
		j_u64(o, "data_block_sectors", le32_to_cpu(sb->data_block_sectors));
		j_u64(o, "metadata_blocks", nr_meta);
		j_u64(o, "data_blocks", nr_data);
		j_u64(o, "journal_start", le64_to_cpu(sb->journal_start));
		j_u64(o, "journal_blocks", jblocks);
		j_u64(o, "metadata_bitmap_start", le64_to_cpu(sb->mbitmap_start));
		j_u64(o, "metadata_bitmap_blocks", le32_to_cpu(sb->mbitmap_blocks));
		j_u64(o, "metadata_max_blocks", (u64)le32_to_cpu(sb->mbitmap_blocks) * DD_BITS_PER_BITMAP);
		j_u64(o, "volumes", le32_to_cpu(sb->nr_volumes));
		j_open(o, "journal", '{', true);
		j_u64(o, "transaction", le64_to_cpu(sb->journal.txn));
		j_u64(o, "blocks", le32_to_cpu(sb->journal.nr_blocks));
		j_close(o, '}');
		j_close(o, '}');
		return;
	}
	printf("superblock (slot %llu)\n", (unsigned long long)slot);
	printf("  %-20s %llu\n", "transaction", (unsigned long long)le64_to_cpu(sb->hdr.txn));
	printf("  %-20s %llu\n", "user transaction", (unsigned long long)le64_to_cpu(sb->user_txn_id));
	printf("  %-20s %u\n", "version", le32_to_cpu(sb->version));
	printf("  %-20s %s", "flags", flags & DD_SB_NEEDS_CHECK ? "needs_check" : flags ? "" : "-");
	if (flags & ~DD_SB_NEEDS_CHECK)
		printf("%sunknown 0x%x", flags & DD_SB_NEEDS_CHECK ? ", " : "", flags & ~DD_SB_NEEDS_CHECK);
	putchar('\n');
	printf("  %-20s compat 0x%x, ro_compat 0x%x, incompat 0x%x\n", "features",
	       le32_to_cpu(sb->compat), le32_to_cpu(sb->ro_compat), le32_to_cpu(sb->incompat));
	printf("  %-20s %s\n", "uuid", uuid);
	printf("  %-20s %u bytes (%u sectors)\n", "block size", DD_BLOCK_SIZE,
	       le32_to_cpu(sb->data_block_sectors));
	printf("  %-20s %llu (%s)\n", "metadata blocks", (unsigned long long)nr_meta,
	       human_size(nr_meta, s1, sizeof(s1)));
	printf("  %-20s %llu (%s)\n", "metadata limit",
	       (unsigned long long)le32_to_cpu(sb->mbitmap_blocks) * DD_BITS_PER_BITMAP,
	       human_size((u64)le32_to_cpu(sb->mbitmap_blocks) * DD_BITS_PER_BITMAP, s1, sizeof(s1)));
	printf("  %-20s %llu (%s)\n", "data blocks", (unsigned long long)nr_data,
	       human_size(nr_data, s2, sizeof(s2)));
	printf("  %-20s 2 areas of %u blocks from block %llu\n", "journal", jblocks,
	       (unsigned long long)le64_to_cpu(sb->journal_start));
	printf("  %-20s %u blocks of transaction %llu\n", "journal to replay",
	       le32_to_cpu(sb->journal.nr_blocks), (unsigned long long)le64_to_cpu(sb->journal.txn));
	printf("  %-20s %u block%s from block %llu\n", "metadata bitmap",
	       le32_to_cpu(sb->mbitmap_blocks), le32_to_cpu(sb->mbitmap_blocks) == 1 ? "" : "s",
	       (unsigned long long)le64_to_cpu(sb->mbitmap_start));
}

static void dump_stats(struct out *o, const struct dd_pool_stats *st)
{
	static const char *const fmt = "  %-20s %llu\n";

	if (o->json) {
		j_open(o, "statistics", '{', false);
		j_u64(o, "transaction", st->txn);
		j_u64(o, "user_transaction", st->user_txn);
		j_u64(o, "metadata_blocks", st->nr_meta_blocks);
		j_u64(o, "metadata_used", st->meta_used);
		j_u64(o, "data_blocks", st->nr_data_blocks);
		j_u64(o, "data_used", st->data_used);
		j_u64(o, "data_free", st->data_free);
		j_u64(o, "data_pending_free", st->data_pending_free);
		j_u64(o, "data_reserved", st->data_reserved);
		j_u64(o, "shared_blocks", st->shared_blocks);
		j_u64(o, "mapped_blocks", st->mapped_blocks);
		j_u64(o, "zero_elided", st->zero_elided);
		j_u64(o, "discarded", st->discarded);
		j_u64(o, "cow_splits", st->cow_splits);
		j_u64(o, "volumes", st->nr_volumes);
		j_u64(o, "journal_blocks", st->journal_blocks);
		j_bool(o, "needs_check", st->needs_check);
		j_close(o, '}');
		return;
	}
	printf("\nstatistics\n");
	printf(fmt, "metadata used", (unsigned long long)st->meta_used);
	printf(fmt, "data used", (unsigned long long)st->data_used);
	printf(fmt, "data free", (unsigned long long)st->data_free);
	printf(fmt, "shared blocks", (unsigned long long)st->shared_blocks);
	printf(fmt, "mapped blocks", (unsigned long long)st->mapped_blocks);
	if (st->data_used)
		printf("  %-20s %.2f\n", "mapped / used", (double)st->mapped_blocks / (double)st->data_used);
	printf(fmt, "zero blocks elided", (unsigned long long)st->zero_elided);
	printf(fmt, "blocks discarded", (unsigned long long)st->discarded);
	printf(fmt, "cow splits", (unsigned long long)st->cow_splits);
	printf(fmt, "volumes", (unsigned long long)st->nr_volumes);
	printf("  %-20s %s\n", "needs_check", st->needs_check ? "yes" : "no");
}

/* ---- volumes and their maps -------------------------------------------------- */

struct run {
	u64 lbn, pbn, len;
	bool excl;
};

static void emit_run(struct out *o, const struct run *r)
{
	char range[48];

	if (o->json) {
		j_open(o, NULL, '{', true);
		j_u64(o, "lbn", r->lbn);
		j_u64(o, "len", r->len);
		j_u64(o, "pbn", r->pbn);
		j_bool(o, "exclusive", r->excl);
		j_close(o, '}');
		return;
	}
	snprintf(range, sizeof(range), "%llu+%llu", (unsigned long long)r->lbn,
		 (unsigned long long)r->len);
	printf("  %24s -> %llu%s\n", range, (unsigned long long)r->pbn, r->excl ? " excl" : "");
}

/* The map as runs: consecutive LBNs on consecutive PBNs with one exclusive bit. */
static void dump_map(struct out *o, struct dd_volume *v)
{
	struct run run = { 0 };
	struct dd_mapping m;
	u64 lbn = 0, runs = 0;
	int r;

	if (o->json)
		j_open(o, "mappings", '[', false);
	else
		printf("\nvolume %u mappings (lbn+len -> pbn)\n", dd_volume_id(v));
	while (!(r = dd_map_next(v, &lbn, &m))) {
		if (run.len && lbn == run.lbn + run.len && m.pbn == run.pbn + run.len &&
		    m.excl == run.excl) {
			run.len++;
		} else {
			if (run.len) {
				emit_run(o, &run);
				runs++;
			}
			run = (struct run){ lbn, m.pbn, 1, m.excl };
		}
		if (lbn == DD_MAX_ADDR)
			break;
		lbn++;
	}
	if (run.len) {
		emit_run(o, &run);
		runs++;
	}
	if (o->json)
		j_close(o, ']');
	else if (!runs)
		printf("  (none)\n");
	if (r && r != -ENODATA)
		dump_error(o, "volume %u: map unreadable from LBN %llu: %s", dd_volume_id(v),
			   (unsigned long long)lbn, err_str(r));
}

static void dump_volume(struct out *o, struct dd_pool *pool, const struct dd_volume_info *info,
			bool mappings)
{
	struct dd_walk_root root = { 0 };
	struct dd_volume *v = NULL;
	char flags[64], origin[16], high[24];
	u64 lbn = 0;
	int r, rh = -ENODATA;

	vol_flag_words(info->flags, flags, sizeof(flags));
	r = dd_volume_open_any(pool, info->id, &v);
	if (r)
		dump_error(o, "volume %u: cannot open: %s", info->id, err_str(r));
	else if (dd_walk_root(pool, DD_TREE_MAP, info->id, &root))
		root = (struct dd_walk_root){ 0 };	/* cannot fail while v is held */
	if (v)
		rh = dd_volume_highest_lbn(v, &lbn);
	if (rh && rh != -ENODATA)
		dump_error(o, "volume %u: map unreadable: %s", info->id, err_str(rh));

	if (o->json) {
		j_open(o, NULL, '{', false);
		j_u64(o, "id", info->id);
		j_open(o, "flags", '[', true);
		if (info->flags & DD_VOL_VALID)
			j_str(o, NULL, "valid");
		if (info->flags & DD_VOL_INCOMPLETE)
			j_str(o, NULL, "incomplete");
		if (info->flags & DD_VOL_DELETING)
			j_str(o, NULL, "deleting");
		if (info->flags & ~DD_VOL_KNOWN_FLAGS)
			j_u64(o, NULL, info->flags & ~DD_VOL_KNOWN_FLAGS);
		j_close(o, ']');
		if (info->origin == DD_NO_VOLUME)
			j_null(o, "origin");
		else
			j_u64(o, "origin", info->origin);
		j_u64(o, "mapped_blocks", info->mapped_blocks);
		if (rh)
			j_null(o, "highest_lbn");
		else
			j_u64(o, "highest_lbn", lbn);
		j_u64(o, "created_txn", info->created_txn);
		if (v) {
			j_u64(o, "map_root", root.block);
			j_u64(o, "map_height", root.height);
		}
		if (mappings && v)
			dump_map(o, v);
		j_close(o, '}');
	} else {
		snprintf(origin, sizeof(origin), "%u", info->origin);
		snprintf(high, sizeof(high), "%llu", (unsigned long long)lbn);
		printf("  %8u  %-20s %8s %14llu %14s %12llu %10llu/%u\n", info->id, flags,
		       info->origin == DD_NO_VOLUME ? "-" : origin,
		       (unsigned long long)info->mapped_blocks, rh ? "-" : high,
		       (unsigned long long)info->created_txn,
		       v ? (unsigned long long)root.block : 0ULL, v ? root.height : 0);
	}
	if (v)
		dd_volume_close(v);
}

static void dump_volumes(struct out *o, struct dd_pool *pool, bool mappings)
{
	struct dd_volume_info info;
	u32 id = 0, n = 0;
	int r;

	if (o->json) {
		j_open(o, "volumes", '[', false);
	} else {
		printf("\nvolumes\n");
		printf("  %8s  %-20s %8s %14s %14s %12s %12s\n", "id", "flags", "origin", "mapped",
		       "highest lbn", "created txn", "root/height");
	}
	for (;; id++) {
		r = dd_volume_next(pool, &id, true, &info);
		if (r)
			break;
		dump_volume(o, pool, &info, mappings && o->json);
		n++;
	}
	if (o->json)
		j_close(o, ']');
	else if (!n)
		printf("  (none)\n");
	if (r && r != -ENOENT)
		dump_error(o, "volume table unreadable after volume %u: %s", id, err_str(r));

	/* Text: the maps after the table, one section per volume. */
	if (mappings && !o->json) {
		for (id = 0; !dd_volume_next(pool, &id, true, &info); id++) {
			struct dd_volume *v;

			if (dd_volume_open_any(pool, id, &v))
				continue;
			dump_map(o, v);
			dd_volume_close(v);
		}
	}
}

/* ---- per-PBN records ------------------------------------------------------------ */

struct rec_walk {
	struct out *o;
	u64 next_leaf;		/* after the last leaf printed */
	u64 n;
};

static void dump_record(struct out *o, u64 pbn, const struct dd_record *rec)
{
	char owner[40];

	if (o->json) {
		j_open(o, NULL, '{', true);
		j_u64(o, "pbn", pbn);
		j_u64(o, "refcount", rec->refcount);
		if (rec->owned) {
			j_open(o, "owner", '{', true);
			j_u64(o, "volume", rec->owner_vol);
			j_u64(o, "lbn", rec->owner_lbn);
			j_close(o, '}');
		} else {
			j_null(o, "owner");
		}
		j_u64(o, "domain", rec->domain);
		j_bool(o, "merged", rec->merged);
		j_close(o, '}');
		return;
	}
	if (rec->owned)
		snprintf(owner, sizeof(owner), "%u/%llu", rec->owner_vol,
			 (unsigned long long)rec->owner_lbn);
	else
		snprintf(owner, sizeof(owner), "-");
	printf("  %14llu %9u  %-24s %6u%s\n", (unsigned long long)pbn, rec->refcount, owner,
	       rec->domain, rec->merged ? " merged" : "");
}

/* Prints each record leaf in PBN order; stops at the first block that
 * cannot be read (what came before it is printed). */
static int dump_records_leaf(void *ctx, const struct dd_walk_block *blk)
{
	struct rec_walk *w = ctx;
	u32 slot;

	if (blk->error)		/* a pointer out of the area is damage too */
		return blk->error == -ERANGE ? -EILSEQ : blk->error;
	if (blk->level)
		return 0;
	for (slot = 0; slot < DD_RECS_PER_LEAF; slot++) {
		struct dd_record rec;

		dd_record_decode(&blk->data.refs->rec[slot], &rec);
		if (!rec.refcount)
			continue;
		w->n++;
		dump_record(w->o, blk->first_leaf * DD_RECS_PER_LEAF + slot, &rec);
	}
	w->next_leaf = blk->first_leaf + 1;
	return 0;
}

static void dump_records(struct out *o, struct dd_pool *pool)
{
	struct rec_walk w = { .o = o };
	int r;

	if (o->json) {
		j_open(o, "records", '[', false);
	} else {
		printf("\nrecords (blocks with references)\n");
		printf("  %14s %9s  %-24s %6s\n", "pbn", "refcount", "owner (volume/lbn)", "domain");
	}
	r = dd_walk_tree(pool, DD_TREE_REFS, 0, dump_records_leaf, &w);
	if (o->json)
		j_close(o, ']');
	else if (!w.n)
		printf("  (none)\n");
	if (r)
		dump_error(o, "record tree unreadable at leaf %llu: %s",
			   (unsigned long long)w.next_leaf, err_str(r));
}

/* ---- every metadata block in use ------------------------------------------------ */

static const char *const tree_names[DD_TREE_MAX] = {
	[DD_TREE_NONE] = "-", [DD_TREE_VOLS] = "vols", [DD_TREE_MAP] = "map",
	[DD_TREE_REFS] = "refs", [DD_TREE_DALLOC] = "dalloc", [DD_TREE_WRITTEN] = "written",
	[DD_TREE_INDEX] = "index", [DD_TREE_MREFS] = "mrefs",
};

struct blk_walk {
	struct out *o;
	u64 n;
};

/* "SUPR": the type's four-character code (stored little-endian). */
static void type_code(u32 type, char code[5])
{
	int i;

	for (i = 0; i < 4; i++) {
		char ch = (char)(type >> (8 * i));

		code[i] = ch >= 0x21 && ch <= 0x7e ? ch : '?';
	}
	code[4] = '\0';
}

static void emit_block(struct blk_walk *w, u64 blocknr, u32 type, u8 tree, int level,
		       u32 owner, const char *state)
{
	struct out *o = w->o;
	char code[5];

	type_code(type, code);
	w->n++;
	if (o->json) {
		j_open(o, NULL, '{', true);
		j_u64(o, "block", blocknr);
		j_str(o, "type", code);
		j_str(o, "tree", tree < DD_TREE_MAX ? tree_names[tree] : "?");
		if (level < 0)
			j_null(o, "level");
		else
			j_u64(o, "level", (u64)level);
		j_u64(o, "owner", owner);
		j_str(o, "state", state);
		j_close(o, '}');
		return;
	}
	printf("  %12llu  %-4s  %-7s  %5d  %8u  %s\n", (unsigned long long)blocknr, code,
	       tree < DD_TREE_MAX ? tree_names[tree] : "?", level, owner, state);
}

static int dump_blocks_visit(void *ctx, const struct dd_walk_block *blk)
{
	struct blk_walk *w = ctx;

	emit_block(w, blk->blocknr, blk->type, blk->tree, blk->level, blk->owner,
		   !blk->error ? "ok" : blk->error == -ERANGE ? "out-of-area" :
		   blk->error == -EILSEQ ? "damaged" : "unreadable");
	return 0;
}

/* The blocks of one tree; a damaged root or volume table is reported, not fatal. */
static void dump_tree_blocks(struct blk_walk *w, struct dd_pool *pool, enum dd_tree_id tree,
			     u32 vol)
{
	int r = dd_walk_tree(pool, tree, vol, dump_blocks_visit, w);

	if (r)
		dump_error(w->o, "%s tree%s unreadable: %s", tree_names[tree],
			   tree == DD_TREE_MAP ? " of a volume" : "", err_str(r));
}

static void dump_blocks(struct out *o, struct dd_pool *pool)
{
	static const enum dd_tree_id pool_trees[] = {
		DD_TREE_VOLS, DD_TREE_REFS, DD_TREE_DALLOC, DD_TREE_WRITTEN, DD_TREE_INDEX,
		DD_TREE_MREFS,
	};
	struct blk_walk w = { .o = o };
	struct dd_volume_info info;
	struct dd_walk_info g;
	void *buf = malloc(DD_BLOCK_SIZE);
	unsigned i;
	u32 id;
	u64 b;

	dd_walk_get_info(pool, &g);
	if (o->json) {
		j_open(o, "blocks", '[', false);
	} else {
		printf("\nblocks (in use)\n");
		printf("  %12s  %-4s  %-7s  %5s  %8s  %s\n", "block", "type", "tree", "level",
		       "owner", "state");
	}
	for (b = 0; b < DD_SB_SLOTS; b++) {
		const char *state = "in use";

		if (b != g.sb_slot)
			state = !buf || dd_walk_read_block(pool, b, buf) ? "unreadable" :
				dd_walk_sb_check(buf, b) ? "not valid" : "older";
		emit_block(&w, b, DD_BT_SUPER, DD_TREE_NONE, 0, 0, state);
	}
	for (b = g.mbitmap_start; b < g.mbitmap_start + g.mbitmap_blocks; b++)
		emit_block(&w, b, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0,
			   !buf || dd_walk_read_block(pool, b, buf) ? "unreadable" :
			   dd_walk_block_check(buf, b, DD_BT_MBITMAP, DD_TREE_NONE, 0, 0) ?
			   "damaged" : "ok");
	for (i = 0; i < sizeof(pool_trees) / sizeof(pool_trees[0]); i++)
		dump_tree_blocks(&w, pool, pool_trees[i], 0);
	for (id = 0; !dd_volume_next(pool, &id, true, &info); id++)
		dump_tree_blocks(&w, pool, DD_TREE_MAP, id);
	if (o->json)
		j_close(o, ']');
	free(buf);
}

/* ---- main ------------------------------------------------------------------------ */

/* Why the pool could not be opened: plain words if the probe knows. */
static const char *open_failure(struct dd_bm *bm, int r)
{
	enum dd_probe p;

	if (!dd_pool_probe(bm, &p)) {
		if (p == DD_PROBE_ZEROED)
			return "both superblock slots are zeroed: the device was never formatted";
		if (p == DD_PROBE_FOREIGN)
			return "no dm-dedup superblock: not a dm-dedup metadata device";
	}
	return engine_msg[0] ? engine_msg : err_str(r);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] <metadata dev or file>\n"
		"Prints the metadata of a dm-dedup pool (read-only).\n"
		"\n"
		"Options:\n"
		"      --json       one JSON document instead of text\n"
		"      --mappings   each volume's map, as runs: lbn+len -> pbn [excl]\n"
		"      --records    every data block with references: refcount, owner\n"
		"      --blocks     every metadata block in use: type, tree, level, owner\n"
		"  -V, --version    print the version and exit\n"
		"  -h, --help       print this help and exit\n"
		"\n"
		"Exit status: 0 dumped, 1 metadata unusable or partly unreadable,\n"
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

static int dump(struct out *o, struct dd_bm *bm, bool mappings, bool records, bool blocks)
{
	struct dd_disk_superblock *sb = malloc(sizeof(*sb));
	struct dd_pool_stats st;
	struct dd_walk_info g;
	struct dd_pool *pool;
	unsigned i;
	int r;

	if (!sb)
		return -ENOMEM;
	r = dd_pool_open(bm, DD_OPEN_READ_ONLY | DD_OPEN_IGNORE_CHECK, NULL, &pool);
	if (r) {
		free(sb);
		return r;
	}
	/* The raw superblock the open used (replay never changes it). */
	dd_walk_get_info(pool, &g);
	r = dd_walk_read_block(pool, g.sb_slot, sb);
	if (!r)
		r = dd_walk_sb_check(sb, g.sb_slot);
	if (r) {
		dd_pool_close(pool);
		free(sb);
		return r;
	}
	if (o->json)
		j_open(o, NULL, '{', false);
	dump_superblock(o, sb, g.sb_slot);
	dd_pool_get_stats(pool, &st);
	dump_stats(o, &st);
	dump_volumes(o, pool, mappings);
	if (records)
		dump_records(o, pool);
	if (blocks)
		dump_blocks(o, pool);
	if (o->json) {
		j_open(o, "errors", '[', false);
		for (i = 0; i < o->errors && i < 16; i++)
			j_str(o, NULL, o->error[i]);
		j_close(o, ']');
		j_close(o, '}');
	}
	dd_pool_close(pool);
	free(sb);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_MAPPINGS, OPT_RECORDS, OPT_BLOCKS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "mappings", no_argument, NULL, OPT_MAPPINGS },
		{ "records", no_argument, NULL, OPT_RECORDS },
		{ "blocks", no_argument, NULL, OPT_BLOCKS },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dd_bm_opts ro = { .read_only = true };
	static struct out o = { .depth = -1 };
	bool mappings = false, records = false, blocks = false;
	const char *path;
	struct dd_dev *dev;
	const char *why = NULL;
	struct dd_bm *bm;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":Vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_MAPPINGS:
			mappings = true;
			break;
		case OPT_RECORDS:
			records = true;
			break;
		case OPT_BLOCKS:
			blocks = true;
			break;
		case 'V':
			printf("%s (dm-dedup tools), metadata format version %u\n", prog, DD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return usage_error("%s", "no metadata device given");
	if (optind + 1 != argc)
		return usage_error("more than one device given ('%s' ...)", argv[optind + 1]);
	path = argv[optind];

	dd_set_log_hook(engine_log);
	r = dd_dev_file_open(path, true, &dev);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, err_str(r));
		return EXIT_USAGE;
	}
	r = dd_bm_create(dev, &ro, &bm);
	if (!r) {
		r = dump(&o, bm, mappings, records, blocks);
		if (r)
			why = open_failure(bm, r);
		dd_bm_destroy(bm);
	} else {
		why = strerror(-r);
	}
	dd_dev_destroy(dev);
	if (r) {
		fprintf(stderr, "%s: %s: cannot open the pool: %s\n", prog, path, why);
		if (o.json) {
			char msg[600];

			snprintf(msg, sizeof(msg), "cannot open the pool: %s", why);
			o.depth = -1;
			j_open(&o, NULL, '{', false);
			j_open(&o, "errors", '[', false);
			j_str(&o, NULL, msg);
			j_close(&o, ']');
			j_close(&o, '}');
		}
		return EXIT_DAMAGED;
	}
	return o.errors ? EXIT_DAMAGED : 0;
}
