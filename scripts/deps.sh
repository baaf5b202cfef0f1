#!/bin/bash
# Idempotent dependency installer, used by every entry point (make test, make check,
# make module, the VM harness).  It
#   1. installs the Debian packages that are missing (and only those; `apt-get update`
#      runs only when something is missing),
#   2. discovers the ABI version of Debian's 6.1 kernel that the guest boots and the
#      module is built against (it changes with Debian updates: never hard-coded) and
#      writes it to build/kver,
#   3. extracts the private device-mapper headers (drivers/md/*.h,
#      drivers/md/persistent-data/*.h) from linux-source-6.1 into build/ksrc/, and
#      the kernel's xxHash (lib/xxhash.c, include/linux/xxhash.h), which a unit test
#      compiles natively to prove it agrees with libxxhash.
#
# Works without a terminal or stdin (CI).  Override the kernel with DD_KVER=<abi>.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DD_BUILD:-$ROOT/build}

PACKAGES=(
	# guest kernel, its headers and the source of its private dm headers
	linux-image-amd64 linux-headers-amd64 linux-source-6.1
	# emulator and guest userland
	qemu-system-x86 qemu-utils busybox-static dmsetup lvm2 fio thin-provisioning-tools
	btrfs-progs duperemove kmod cpio e2fsprogs util-linux xxhash
	# builds: module, userspace engine, unit tests, sparse
	build-essential gcc make clang llvm libcmocka-dev libxxhash-dev sparse bc
	# dedupctl: libdevmapper
	libdevmapper-dev libblkid-dev libfdisk-dev libext2fs-dev
	fdisk
	# tar -J for the kernel source
	xz-utils
	# the guest images (scripts/images/): debootstrap trees, their ideal deduplication
	debootstrap python3
)

log() { printf 'deps: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	else
		log "not root and no sudo: cannot install packages"
	fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update -q </dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" </dev/null
fi

mkdir -p "$BUILD"

# --- kernel ABI version -------------------------------------------------------------
# linux-image-amd64 is a meta-package that depends on linux-image-<abi>; read <abi>
# from it, and check the matching headers meta-package agrees.
dep_abi() {
	dpkg-query -W -f='${Depends}' "$1" 2>/dev/null |
		tr ',' '\n' | sed -n "s/^ *$2-\([0-9][^ ]*\).*/\1/p" | head -n1
}
if [ -n "${DD_KVER:-}" ]; then
	K=$DD_KVER
else
	K=$(dep_abi linux-image-amd64 linux-image)
	KH=$(dep_abi linux-headers-amd64 linux-headers)
	if [ -z "$K" ]; then
		log "cannot find the kernel ABI from linux-image-amd64"
		exit 1
	fi
	if [ "$K" != "$KH" ]; then
		log "linux-image-amd64 ($K) and linux-headers-amd64 ($KH) disagree"
		exit 1
	fi
fi
for f in "/boot/vmlinuz-$K" "/lib/modules/$K/build/Makefile" "/lib/modules/$K/modules.dep"; do
	if [ ! -e "$f" ]; then
		log "missing $f (kernel $K)"
		exit 1
	fi
done
# Rewrite only on change, so make does not rebuild what depends on it.
if [ "$(cat "$BUILD/kver" 2>/dev/null || true)" != "$K" ]; then
	echo "$K" >"$BUILD/kver"
fi

# --- private dm headers ---------------------------------------------------------------
SRC_TAR=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
if [ -z "$SRC_TAR" ]; then
	log "missing /usr/src/linux-source-6.1.tar.xz"
	exit 1
fi
KSRC=$BUILD/ksrc
stamp=$KSRC/.extracted
# The list of extracted files is part of the stamp: a new entry re-extracts.
want="$(stat -c '%s %Y' "$SRC_TAR") files-2"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
	log "extracting private dm headers into ${KSRC#"$ROOT"/}"
	rm -rf "$KSRC" "$KSRC.tmp"
	mkdir -p "$KSRC.tmp"
	tar -xJf "$SRC_TAR" -C "$KSRC.tmp" --strip-components=1 --wildcards --no-wildcards-match-slash \
		'linux-source-6.1/drivers/md/*.h' \
		'linux-source-6.1/drivers/md/persistent-data/*.h' \
		'linux-source-6.1/lib/xxhash.c' 'linux-source-6.1/include/linux/xxhash.h'
	echo "$want" >"$KSRC.tmp/.extracted"
	mv "$KSRC.tmp" "$KSRC"
fi

log "ok (kernel $K)"
