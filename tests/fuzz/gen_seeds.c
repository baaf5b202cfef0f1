// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed corpora of the fuzz targets: gen_seeds <dir> creates
 * <dir>/fuzz_block, <dir>/fuzz_open and <dir>/fuzz_check.  Seeds are made
 * from the base images (fuzz_common.c), so no binary file is committed.
 */
#include "fuzz_common.h"

#include <sys/stat.h>

struct emitter {
	char dir[4096];
	unsigned n;
};

static void emit_file(struct emitter *e, const u8 *a, size_t alen, const u8 *b, size_t blen)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%04u", e->dir, e->n++);
	f = fopen(path, "wb");
	if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void emit_patch_seed(void *ctx, const u8 *data, size_t len)
{
	emit_file(ctx, data, len, NULL, 0);
}

static void set_dir(struct emitter *e, const char *root, const char *name)
{
	snprintf(e->dir, sizeof(e->dir), "%s/%s", root, name);
	if (mkdir(e->dir, 0755) && errno != EEXIST) {
		perror(e->dir);
		exit(1);
	}
	e->n = 0;
}

/* The selector that makes fuzz_block expect this block's own type. */
static u8 type_selector(u32 type)
{
	static const u32 types[] = {
		DD_BT_SUPER, DD_BT_NODE, DD_BT_MAP, DD_BT_REFS, DD_BT_DBITMAP, DD_BT_MBITMAP,
		DD_BT_VOLS, DD_BT_WRITTEN, DD_BT_INDEX,
	};
	u8 i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i] == type)
			return i;
	return 9;
}

static void block_seeds(struct emitter *e)
{
	unsigned i, k;

	for (i = 0; i < FZ_NR_IMAGES; i++) {
		const struct fz_image *img = fz_image(i);
		u32 seen[10] = { 0 };

		for (k = 0; k < img->nr_used; k++) {
			const u8 *blk = dd_ramdev_block(img->rd, img->used[k]);
			u32 type = le32_to_cpu(((const struct dd_disk_header *)blk)->type);
			u8 hdr[2];

			/* A few blocks of each type and image are plenty. */
			if (seen[type_selector(type)]++ >= 4)
				continue;
			hdr[0] = (u8)(type_selector(type) | 0x20 |
				      (type == DD_BT_SUPER ? 0x40 : 0));
			hdr[1] = (u8)(img->used[k] & 1);
			emit_file(e, hdr, 2, blk, DD_BLOCK_SIZE);
		}
	}
}

int main(int argc, char **argv)
{
	static struct emitter e;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0755) && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	fz_quiet();
	set_dir(&e, argv[1], "fuzz_block");
	block_seeds(&e);
	printf("fuzz_block: %u seeds\n", e.n);
	set_dir(&e, argv[1], "fuzz_open");
	fz_seed_patches(emit_patch_seed, &e);
	printf("fuzz_open: %u seeds\n", e.n);
	set_dir(&e, argv[1], "fuzz_check");
	fz_seed_patches(emit_patch_seed, &e);
	printf("fuzz_check: %u seeds\n", e.n);
	return 0;
}
