# Kernel module builds (included by the top-level Makefile).
# Everything goes through scripts/kbuild.sh, which installs what is missing, reads the
# guest kernel's ABI from build/kver and fails on any warning.

.PHONY: deps module module-w1 sparse selftest-modules kernel-clean

deps:
	@scripts/deps.sh

module:
	@scripts/kbuild.sh kernel

# W=1: extra warnings (informational in `make test`).
module-w1:
	@scripts/kbuild.sh --w1 kernel

sparse:
	@scripts/kbuild.sh --sparse kernel

# Test-only modules the harness self-tests load in the guest.
selftest-modules:
	@scripts/kbuild.sh tests/vm/selftest-warn

kernel-clean:
	@if [ -f build/kver ]; then \
		scripts/kbuild.sh --clean kernel; \
		scripts/kbuild.sh --clean tests/vm/selftest-warn; \
	fi

# The module against Debian's bookworm-backports 6.12 headers (installs them once, at
# pinned versions, never moving linux-image-amd64 / linux-headers-amd64): keeps
# dd-kcompat.h honest.  Not part of `make test` (it downloads a kernel).
#   module-backports-plan   what it would install and apt's simulation of it, checked
#   test-backports-pin      the plan's tests, offline and against the apt cache (apt-get -s)
.PHONY: module-backports module-backports-plan test-backports-pin
module-backports:
	@scripts/kbuild-backports.sh

module-backports-plan:
	@scripts/kbuild-backports.sh --plan

test-backports-pin:
	@tests/scripts/test-backports-pin.sh --live
