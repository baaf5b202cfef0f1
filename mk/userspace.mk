# Userspace build of the dm-dedup engine (libdmdedup), the tools, the unit,
# crash and fuzz tests.  Included by the top-level Makefile.
#
#   make userspace   library + tools (build/bin)
#   make unit-tap    unit + crash tests under ASan/UBSan, one TAP line per test
#   make kglue-tsan  tests/unit/test_kglue.c (the glue's lock-free parts) under TSan
#   (fuzzing: mk/fuzz.mk; engine benchmarks: mk/bench.mk)

US_BUILD    := build/us
US_SAN      := build/us-san
US_CC       ?= gcc
US_WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
               -Wno-unused-parameter
US_CPPFLAGS := -D_GNU_SOURCE -Iuserspace -Iengine -Itools -Iinclude
US_CFLAGS   := -std=gnu11 -O2 -g $(US_WARN) -MMD -MP
# The engine hashes blocks with xxHash (userspace/dd-env.h: libxxhash's XXH64).
US_LIBS     := -lxxhash
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_CFLAGS  := -std=gnu11 -O1 -g $(US_WARN) -MMD -MP $(SAN_FLAGS)

# The engine (engine/engine.mk: the list kernel/Kbuild uses too), the
# userspace platform under it, and the check above it.
include engine/engine.mk
ENGINE_SRCS := $(addprefix engine/,$(addsuffix .c,$(DD_ENGINE_FILES)))
US_SRCS     := $(wildcard userspace/*.c)
CHECK_SRCS  := tools/check.c
LIB_SRCS    := $(ENGINE_SRCS) $(US_SRCS) $(CHECK_SRCS)

LIB_OBJS     := $(patsubst %.c,$(US_BUILD)/%.o,$(LIB_SRCS))
LIB_SAN_OBJS := $(patsubst %.c,$(US_SAN)/%.o,$(LIB_SRCS))
LIBDD        := $(US_BUILD)/libdmdedup.a
LIBDD_SAN    := $(US_SAN)/libdmdedup.a

TOOL_SRCS := $(filter-out $(CHECK_SRCS),$(wildcard tools/*.c))
TOOLS     := $(patsubst tools/%.c,build/bin/%,$(TOOL_SRCS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c) $(wildcard tests/crash/test_*.c)
UNIT_BINS  := $(patsubst tests/%.c,$(US_SAN)/tests/%,$(UNIT_SRCS))
TEST_LIB_SRCS := $(wildcard tests/lib/*.c)
TEST_LIB_OBJS := $(patsubst %.c,$(US_SAN)/%.o,$(TEST_LIB_SRCS))

# dedupctl, the administration tool (tools/dedupctl/: one directory, several files),
# over libdevmapper; the import reads partition tables (libblkid) and ext2/3/4 (libext2fs).
DEDUPCTL_SRCS := $(addprefix tools/dedupctl/,main.c dm.c label.c pool.c volume.c import.c monitor.c nbd.c \
		   source.c reader.c)
DEDUPCTL_OBJS := $(patsubst %.c,$(US_BUILD)/%.o,$(DEDUPCTL_SRCS))
DEDUPCTL      := build/bin/dedupctl
TOOLS         += $(DEDUPCTL)
$(DEDUPCTL): $(DEDUPCTL_OBJS) $(LIBDD)
	@mkdir -p $(@D)
	$(US_CC) $(US_CFLAGS) -pthread -o $@ $^ -ldevmapper -lext2fs -lcom_err -lblkid $(US_LIBS)

.PHONY: userspace tools unit unit-tap
userspace: $(LIBDD) $(TOOLS)
tools: $(TOOLS)

$(US_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(US_CC) $(US_CPPFLAGS) $(US_CFLAGS) -c $< -o $@

$(US_SAN)/%.o: %.c
	@mkdir -p $(@D)
	$(US_CC) $(US_CPPFLAGS) -Itests/lib $(SAN_CFLAGS) -c $< -o $@

$(LIBDD): $(LIB_OBJS)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(LIBDD_SAN): $(LIB_SAN_OBJS)
	@mkdir -p $(@D)
	ar rcs $@ $^

build/bin/%: $(US_BUILD)/tools/%.o $(LIBDD)
	@mkdir -p $(@D)
	$(US_CC) $(US_CFLAGS) -o $@ $^ $(US_LIBS)

$(US_SAN)/tests/%: $(US_SAN)/tests/%.o $(TEST_LIB_OBJS) $(LIBDD_SAN)
	@mkdir -p $(@D)
	$(US_CC) $(SAN_CFLAGS) -o $@ $^ -lcmocka $(US_LIBS)

# tests/unit/test_kglue.c compiles kernel sources of the target (the lookup
# cache, the epochs) over the fake kernel headers of tests/kshim: only its
# objects see -Itests/kshim, ahead of the system's <linux/*.h>.
KGLUE_BIN  := $(US_SAN)/tests/unit/test_kglue
KGLUE_SRCS := kernel/dm-dedup-cache.c tests/kshim/kshim.c
KGLUE_OBJS := $(patsubst %.c,$(US_SAN)/%.o,$(KGLUE_SRCS))
$(US_SAN)/tests/unit/test_kglue.o $(KGLUE_OBJS): private US_CPPFLAGS := -Itests/kshim $(US_CPPFLAGS) -Ikernel
$(KGLUE_BIN): $(KGLUE_OBJS)
$(KGLUE_BIN): private SAN_CFLAGS += -pthread

# The same test under ThreadSanitizer (not part of unit-tap): make kglue-tsan.
# TSan ignores fences (-Wno-tsan): every access the fences order is atomic.
US_TSAN    := build/us-tsan
KGLUE_TSAN := $(US_TSAN)/test_kglue
.PHONY: kglue-tsan
kglue-tsan: $(KGLUE_TSAN)
	CMOCKA_MESSAGE_OUTPUT=TAP TSAN_OPTIONS=halt_on_error=1 $(KGLUE_TSAN)
$(KGLUE_TSAN): tests/unit/test_kglue.c $(KGLUE_SRCS) $(wildcard tests/kshim/linux/*.h) \
	       kernel/dm-dedup-cache.h kernel/dm-dedup-epoch.h engine/dd-engine.h \
	       userspace/dd-env.h
	@mkdir -p $(@D)
	$(US_CC) -Itests/kshim $(US_CPPFLAGS) -Ikernel -std=gnu11 -O1 -g $(US_WARN) -Wno-tsan -fsanitize=thread \
	  -pthread -o $@ tests/unit/test_kglue.c $(KGLUE_SRCS) -lcmocka

# tests/unit/test_xxh64.c compares the kernel's own xxh64() (lib/xxhash.c,
# extracted from linux-source by scripts/deps.sh, compiled over tests/kshim)
# with libxxhash's XXH64(): the kernel scanner and the tools hash alike.
XXH_KSRC := build/ksrc/lib/xxhash.c
XXH_KOBJ := $(US_SAN)/ksrc/xxhash.o
$(XXH_KOBJ): $(XXH_KSRC) $(wildcard tests/kshim/*/*.h)
	@mkdir -p $(@D)
	$(US_CC) -D_GNU_SOURCE -Itests/kshim -Ibuild/ksrc/include $(SAN_CFLAGS) -Wno-missing-prototypes \
	  -c $< -o $@
$(US_SAN)/tests/unit/test_xxh64: $(XXH_KOBJ)

unit: $(UNIT_BINS)

# Each binary prints TAP; the status is non-zero if any test failed.  They run two at a
# time (UNIT_JOBS), each into its own log, and the logs are printed in the order of
# UNIT_BINS.  The long ones start first, longest first (UNIT_LONG; alone under ASan on
# the 2-core machine with another QEMU running: test_crash 302 s, test_crash_data 224 s,
# test_model 115 s, the other nine 21 s together, test_engine 8 of them), so that the
# two lanes end together: in the order of UNIT_BINS test_crash_data started last and
# ran alone at the end.
UNIT_JOBS ?= 2
UNIT_LONG := $(addprefix $(US_SAN)/tests/,crash/test_crash crash/test_crash_data unit/test_model \
	       unit/test_engine)
UNIT_ORDER := $(foreach b,$(UNIT_LONG),$(filter $(b),$(UNIT_BINS))) $(filter-out $(UNIT_LONG),$(UNIT_BINS))
unit-tap: $(UNIT_BINS)
	@mkdir -p $(US_SAN)/tap; rm -f $(US_SAN)/tap/*
	@printf '%s\n' $(UNIT_ORDER) | xargs -P $(UNIT_JOBS) -I{} sh -c \
	  'l=$(US_SAN)/tap/$$(basename {}); CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 \
	   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 {} >$$l.log 2>&1 || touch $$l.failed'; \
	rc=0; for t in $(UNIT_BINS); do l=$(US_SAN)/tap/$$(basename $$t); cat $$l.log; \
	  if [ -e $$l.failed ]; then echo "# $$t exited non-zero"; rc=1; fi; \
	done; exit $$rc

-include $(LIB_OBJS:.o=.d) $(LIB_SAN_OBJS:.o=.d)
-include $(wildcard $(US_BUILD)/tools/*.d) $(DEDUPCTL_OBJS:.o=.d) $(wildcard $(US_SAN)/tests/*/*.d)
-include $(KGLUE_OBJS:.o=.d)

# libFuzzer targets (clang) and engine benchmarks live in their own files.
-include mk/fuzz.mk
-include mk/bench.mk

# --- import source map (tools/dedupctl/source.c) and its test driver -------------------
# build/bin/dd_srcmap (the driver of tests/scripts/test-import-source.sh) and the same under
# ASan/UBSan; source.c needs libblkid and libext2fs (and libcom_err for its messages).
SRCMAP_SRCS := tests/import/dd_srcmap.c tools/dedupctl/source.c tools/dedupctl/reader.c
SRCMAP_LIBS := -pthread -lext2fs -lcom_err -lblkid -lxxhash
.PHONY: srcmap
srcmap: build/bin/dd_srcmap $(US_SAN)/import/dd_srcmap
build/bin/dd_srcmap: $(patsubst %.c,$(US_BUILD)/%.o,$(SRCMAP_SRCS))
	@mkdir -p $(@D)
	$(US_CC) $(US_CFLAGS) -o $@ $^ $(SRCMAP_LIBS)
$(US_SAN)/import/dd_srcmap: $(patsubst %.c,$(US_SAN)/%.o,$(SRCMAP_SRCS))
	@mkdir -p $(@D)
	$(US_CC) $(SAN_CFLAGS) -o $@ $^ $(SRCMAP_LIBS)
-include $(patsubst %.c,$(US_BUILD)/%.d,$(SRCMAP_SRCS)) $(patsubst %.c,$(US_SAN)/%.d,$(SRCMAP_SRCS))
