// SPDX-License-Identifier: GPL-2.0
/* Userspace primitives behind dd-env.h: crc32c, logging, random bytes. */
#include "dd-env.h"
#include "libdmdedup.h"

#include <stdarg.h>
#include <sys/random.h>

/* CRC32C (Castagnoli), raw register update like the kernel's crc32c():
 * no inversion on entry or exit. */
static u32 dd_crc_table[8][256];
static bool dd_crc_ready;
static bool dd_crc_hw;

static void dd_crc_init(void)
{
	u32 i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		dd_crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			dd_crc_table[j][i] = (dd_crc_table[j - 1][i] >> 8) ^
					     dd_crc_table[0][dd_crc_table[j - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	dd_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
	dd_crc_ready = true;
}

static u32 dd_crc32c_sw(u32 crc, const u8 *p, size_t len)
{
	while (len >= 8) {
		u64 v;

		memcpy(&v, p, 8);
		v = le64toh(v) ^ crc;
		crc = dd_crc_table[7][v & 0xff] ^ dd_crc_table[6][(v >> 8) & 0xff] ^
		      dd_crc_table[5][(v >> 16) & 0xff] ^ dd_crc_table[4][(v >> 24) & 0xff] ^
		      dd_crc_table[3][(v >> 32) & 0xff] ^ dd_crc_table[2][(v >> 40) & 0xff] ^
		      dd_crc_table[1][(v >> 48) & 0xff] ^ dd_crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ dd_crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static u32 dd_crc32c_hw(u32 crc, const u8 *p, size_t len)
{
	u64 c = crc;

	while (len >= 8) {
		u64 v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	crc = (u32)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

u32 dd_crc32c(u32 seed, const void *data, size_t len)
{
	if (!dd_crc_ready)
		dd_crc_init();
#if defined(__x86_64__)
	if (dd_crc_hw)
		return dd_crc32c_hw(seed, data, len);
#endif
	return dd_crc32c_sw(seed, data, len);
}

/* For the unit test that proves both paths agree. */
u32 dd_crc32c_portable(u32 seed, const void *data, size_t len)
{
	if (!dd_crc_ready)
		dd_crc_init();
	return dd_crc32c_sw(seed, data, len);
}

void (*dd_log_hook)(enum dd_log_level lvl, const char *msg);

void dd_set_log_hook(void (*hook)(enum dd_log_level lvl, const char *msg))
{
	dd_log_hook = hook;
}

void dd_log(enum dd_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (dd_log_hook) {
		dd_log_hook(lvl, msg);
		return;
	}
	if (lvl <= DD_LOG_WARN)
		fprintf(stderr, "dm-dedup %s: %s\n", names[lvl], msg);
}

void dd_random_bytes(void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n <= 0) {
			/* getrandom cannot fail here except EINTR; fall back to time. */
			memset(p, 0x5a, len);
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}
