# Engine benchmarks: the userspace engine (build/us/libdmdedup.a, -O2, no
# sanitizers) over a sparse metadata file.  Included at the end of
# mk/userspace.mk (LIBDD, US_WARN, US_CC).
#
#   make bench-engine [BENCH_ARGS="-r 5 -n 1048576 -s 65536"]
# Results: stdout and build/bench/engine.txt; see docs/benchmarks-engine.md.

BENCH_BUILD  := build/bench
BENCH_CFLAGS := -std=gnu11 -O2 -g $(US_WARN) -MMD -MP
BENCH_ARGS   ?=
BENCH_ENGINE := $(BENCH_BUILD)/bench_engine

.PHONY: bench-engine bench-scan-cpu

$(BENCH_BUILD)/%.o: bench/engine/%.c
	@mkdir -p $(@D)
	$(US_CC) $(US_CPPFLAGS) $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_ENGINE): $(BENCH_BUILD)/bench_engine.o $(LIBDD)
	$(US_CC) $(BENCH_CFLAGS) -o $@ $^ $(US_LIBS)

bench-engine: $(BENCH_ENGINE)
	@$(BENCH_ENGINE) -d $(BENCH_BUILD) $(BENCH_ARGS) | tee $(BENCH_BUILD)/engine.txt

-include $(wildcard $(BENCH_BUILD)/*.d)

# make bench-scan-cpu: the scanner's CPU work per byte (hash, zero check, compare), natively.
BENCH_SCAN_CPU := $(BENCH_BUILD)/bench_scan_cpu

$(BENCH_SCAN_CPU): $(BENCH_BUILD)/bench_scan_cpu.o
	$(US_CC) $(BENCH_CFLAGS) -o $@ $^ -lxxhash

bench-scan-cpu: $(BENCH_SCAN_CPU)
	@$(BENCH_SCAN_CPU) $(BENCH_ARGS) | tee $(BENCH_BUILD)/scan-cpu.txt
