# QEMU test guest (included by the top-level Makefile).  See docs/testing.md.

.PHONY: initramfs initramfs-6.12 vm-test test-6.12

# Our tools (build/bin/) go into the guest too, once mk/userspace.mk builds them.
DD_USERSPACE_TARGET := $(if $(wildcard mk/userspace.mk),userspace)

initramfs: module selftest-modules $(DD_USERSPACE_TARGET)
	@scripts/vm/build-initramfs.sh

# The guest image for bookworm-backports' 6.12 kernel, with the module built for it
# (module-backports installs the kernel at pinned versions; scripts/lib/guest-kernel.sh).
# One script on it: DD_GUEST=6.12 scripts/vm/run.sh tests/vm/10-io-basic.sh
initramfs-6.12: module-backports $(DD_USERSPACE_TARGET)
	@DD_GUEST=6.12 scripts/vm/build-initramfs.sh

# make test-6.12: every guest test on the 6.12 kernel (make test runs a named subset,
# GUEST_612 in scripts/run-tests.sh).  Ends with "N passed, N failed".
test-6.12:
	@scripts/run-tests.sh --guest-6.12

# make vm-test T=01-load   (or T=tests/vm/01-load.sh): build what is needed, boot, run.
vm-test:
	@if [ -z "$(T)" ]; then echo "usage: make vm-test T=<script in tests/vm/>" >&2; exit 2; fi
	@$(MAKE) --no-print-directory initramfs
	@scripts/vm/run.sh --no-build $(T)

# make bench [REPS=5]: the data-path benchmark in the guest (bench/datapath.sh).
.PHONY: bench
bench:
	@$(MAKE) --no-print-directory initramfs
	@bench/datapath.sh --reps $(or $(REPS),6)

# make bench-scanner [REPS=5]: the scanner benchmark in the guest over the three guest
# images (bench/scanner.sh; docs/benchmarks-scanner.md).
.PHONY: bench-scanner
bench-scanner:
	@bench/scanner.sh --reps $(or $(REPS),5)

# make bench-import [REPS=5] [IMAGE=minbase]: dedupctl import against dd into dm-linear, in
# the guest, on a guest image and a diverged copy of it (bench/import.sh;
# docs/benchmarks-import.md).
.PHONY: bench-import
bench-import:
	@bench/import.sh --reps $(or $(REPS),5) --image $(or $(IMAGE),minbase)

# make bench-snapshot [REPS=5]: create_snap of dedup and dm-thin origins of 256 MiB, 1 GiB
# and 8 GiB, writes during snapshots, first writes after one (bench/snapshot.sh;
# docs/benchmarks-snapshot.md).
.PHONY: bench-snapshot
bench-snapshot:
	@bench/snapshot.sh --reps $(or $(REPS),5)

# make soak: the long guest tests, not in `make test` (tests/vm/soak-*.sh, each in its own
# boot; scripts/deps.sh first), and the host's replay of soak-log-replay's log at every
# flush through the userspace engine.  Ends with "N passed, N failed" like make test.
.PHONY: soak
soak:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory initramfs
	@p=0; f=0; for t in tests/vm/soak-*.sh; do \
	  if scripts/vm/run.sh -q --no-build $$t; then p=$$((p + 1)); else f=$$((f + 1)); continue; fi; \
	  [ $$t != tests/vm/soak-log-replay.sh ] && continue; \
	  if tests/scripts/replay-engine.sh build/vm/out/soak-log-replay 1000; then p=$$((p + 1)); else f=$$((f + 1)); fi; \
	done; echo "$$p passed, $$f failed"; [ $$f = 0 ]
