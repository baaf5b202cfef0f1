# libFuzzer targets (clang): the block decoders and validators, opening and
# walking a damaged pool (read-only, then read-write with injected faults),
# and the checker.  Included at the end of mk/userspace.mk (LIB_SRCS, US_WARN).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS=fuzz_open] [FUZZ_FLAGS=-jobs=2]
#                   each target for FUZZ_SECONDS; the corpus grows in build/fuzz/corpus/
#   make fuzz-smoke each target FUZZ_SMOKE_SECONDS (15) from fresh seeds, one TAP line each
#   make fuzz-build binaries and seed corpora only
# Crash inputs land in build/fuzz/artifacts/; see tests/fuzz/README.md.

FUZZ_BUILD         := build/fuzz
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_ALL           := fuzz_block fuzz_open fuzz_check
FUZZ_TARGETS       ?= $(FUZZ_ALL)
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CPPFLAGS := -D_GNU_SOURCE -Iuserspace -Iengine -Itools -Iinclude -Itests/lib -Itests/fuzz
FUZZ_CFLAGS   := -std=gnu11 -O1 -g $(US_WARN) -MMD -MP $(FUZZ_SAN)

# Coverage: every object gets edge counters; comparison tracing (which lets
# libFuzzer solve magic numbers, types and counts) is kept for the decoders,
# validators and the fuzz code but left out of the tree walks, the block
# cache and the checker, whose loops over 508 slots or 32512 bits made the
# comparison hooks 60 % of the run time.
FUZZ_COV_FULL  := -fsanitize=fuzzer-no-link
FUZZ_COV_LIGHT := -fsanitize-coverage=inline-8bit-counters,indirect-calls,pc-table
FUZZ_COV_LIGHT_SRCS := engine/dd-tree.c engine/dd-volume.c engine/dd-space.c engine/dd-walk.c \
                       $(CHECK_SRCS) \
                       $(US_SRCS) tests/lib/ddtest.c

# The library, the test helpers and the shared fuzz code, built with clang's
# coverage instrumentation; each target adds its LLVMFuzzerTestOneInput.
FUZZ_SUPPORT_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(LIB_SRCS) tests/lib/ddtest.c \
                       tests/fuzz/fuzz_common.c)
FUZZ_BINS  := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_ALL))
FUZZ_GEN   := $(FUZZ_BUILD)/gen_seeds
FUZZ_REGRESS := $(FUZZ_BUILD)/test_fuzz_regress
FUZZ_SEEDS := $(FUZZ_BUILD)/seeds/.stamp

.PHONY: fuzz fuzz-smoke fuzz-build

$(FUZZ_BUILD)/%.o: FUZZ_COV = $(FUZZ_COV_FULL)
$(patsubst %.c,$(FUZZ_BUILD)/%.o,$(FUZZ_COV_LIGHT_SRCS)): FUZZ_COV = $(FUZZ_COV_LIGHT)

$(FUZZ_BUILD)/%.o: %.c mk/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_COV) -c $< -o $@

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/tests/fuzz/%.o $(FUZZ_SUPPORT_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(US_LIBS)

$(FUZZ_GEN): $(FUZZ_BUILD)/tests/fuzz/gen_seeds.o $(FUZZ_SUPPORT_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -o $@ $^ $(US_LIBS)

# Bugs the fuzzers found, as unit tests (cmocka, TAP).
$(FUZZ_REGRESS): $(FUZZ_BUILD)/tests/fuzz/test_fuzz_regress.o $(FUZZ_SUPPORT_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -o $@ $^ -lcmocka $(US_LIBS)

# Seeds are generated from the base images, never committed.
$(FUZZ_SEEDS): $(FUZZ_GEN)
	rm -rf $(FUZZ_BUILD)/seeds
	ASAN_OPTIONS=detect_leaks=0 $(FUZZ_GEN) $(FUZZ_BUILD)/seeds
	@touch $@

fuzz-build: $(FUZZ_BINS) $(FUZZ_SEEDS) $(FUZZ_REGRESS)

fuzz: fuzz-build
	@FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@rc=0; CMOCKA_MESSAGE_OUTPUT=TAP $(FUZZ_REGRESS) || rc=1; \
	tests/fuzz/run.sh smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_ALL) || rc=1; exit $$rc

-include $(FUZZ_SUPPORT_OBJS:.o=.d) $(wildcard $(FUZZ_BUILD)/tests/fuzz/*.d)
