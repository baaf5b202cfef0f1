# dm-dedup: top-level Makefile.
#
#   make test        everything (installs dependencies first); ends with "N passed, N failed"
#   make test-6.12   every guest test on bookworm-backports' 6.12 kernel (make test: a subset)
#   make check       a faster subset: unit tests, module build, two guest tests
#   make module      build kernel/dm-dedup.ko against Debian's 6.1 headers (no warnings)
#   make sparse      sparse (C=2) over the module; warnings in our files fail
#   make vm-test T=01-load   boot the test guest and run one script from tests/vm/
#   make images      the guest images in build/images/ (cached); images-ideal: their ideal dedup
#   make demo        the scanner on the three guest images: savings against the ideal
#   make bench-scanner   the scanner benchmark (bench/scanner.sh, docs/benchmarks-scanner.md)
#   make bench-import    dedupctl import against dd (bench/import.sh, docs/benchmarks-import.md)
#   make bench-snapshot  create_snap time against dm-thin, I/O during snapshots (docs/benchmarks-snapshot.md)
#   make install     tools, man pages, systemd unit, module sources + dkms (mk/install.mk)
#   make uninstall   removes what make install put in place
#   make soak        the long guest tests (tests/vm/soak-*.sh: fio soak, full crash replay), not in make test
#   make clean
# See README.md and docs/testing.md.

.DEFAULT_GOAL := all
SHELL := /bin/bash

# The userspace engine, tools, unit and fuzz tests (targets userspace, unit-tap,
# fuzz-smoke) live in mk/userspace.mk.
-include mk/userspace.mk
include mk/kernel.mk
include mk/vm.mk
include mk/install.mk

.PHONY: all test check clean help demo images images-ideal

all: module

test:
	@scripts/run-tests.sh

check:
	@scripts/run-tests.sh --quick

# The demo: dependencies, build, the guest images, a pool over them in the test guest,
# one scan, the savings against the ideal (scripts/demo.sh).
demo:
	@scripts/demo.sh

# Guest disk images for the scanner and the demo (docs/testing.md, "Guest images").
images:
	@scripts/images/make-guest-images.sh

images-ideal: images
	@scripts/images/ideal.py build/images/minbase.img build/images/server.img build/images/dev.img

clean: kernel-clean
	rm -rf build

help:
	@sed -n '3,18s/^# \{0,1\}//p' Makefile
