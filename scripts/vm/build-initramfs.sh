#!/bin/bash
# Build the self-contained initramfs the test guest boots from:
#   busybox-static, the userland the guest tests use (dmsetup, lvm, thin tools, fio,
#   mkfs.ext4/e2fsck, mkfs.btrfs/btrfs, duperemove, xxhsum, util-linux bits, kmod)
#   with the libraries ldd reports, the closure of the kernel modules the tests load,
#   our dm-dedup.ko (and the self-test module) in lib/modules/$K/extra/, depmod'ed,
#   tests/vm/ in /tests, every executable in build/bin/ in /usr/local/bin, and /init.
#
# Output: build/vm/initramfs.cpio (uncompressed: the fastest to build and to unpack);
# with DD_GUEST=6.12, build/vm/initramfs-6.12.cpio for bookworm-backports' 6.12 kernel
# and the module built for it (scripts/lib/guest-kernel.sh; make initramfs-6.12).
# The image is rebuilt only when one of its inputs changed (build/vm/initramfs*.inputs).
#   [DD_GUEST=6.12] scripts/vm/build-initramfs.sh [--force]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build
OUT=$BUILD/vm
force=0
[ "${1:-}" = --force ] && force=1

[ "${DD_DEPS_DONE:-0}" = 1 ] || "$ROOT/scripts/deps.sh"
# shellcheck source=scripts/lib/guest-kernel.sh
. "$ROOT/scripts/lib/guest-kernel.sh"
guest_kernel_select || exit 1
K=$GUEST_K
MODDIR=/lib/modules/$K
IMG=$GUEST_INITRD
INPUTS=${IMG%.cpio}.inputs

DD_KO=$GUEST_KO
WARN_KO=$GUEST_WARN_KO
if [ ! -f "$DD_KO" ]; then
	echo "build-initramfs: $DD_KO is missing (run 'make $([ "$GUEST_NAME" = 6.1 ] && echo module || echo module-backports)')" >&2
	exit 1
fi
for f in "/boot/vmlinuz-$K" "$MODDIR/modules.dep"; do
	[ -e "$f" ] || { echo "build-initramfs: $f is missing (kernel $K)" >&2; exit 1; }
done

# Host programs copied into the guest, found in the system PATH (absent optional ones
# are skipped).
REQUIRED_BINS=(
	busybox dmsetup lvm fio pdata_tools mke2fs e2fsck mkfs.btrfs btrfs duperemove kmod
	losetup blockdev blkdiscard fallocate wipefs sfdisk debugfs qemu-nbd qemu-img
)
OPTIONAL_BINS=(xxhsum cmp sha256sum stat perf dd)
# Kernel modules the guest tests may load; their dependencies come along.
MODULES=(
	dm-mod dm-bufio dm-persistent-data dm-bio-prison dm-thin-pool dm-log-writes
	dm-flakey dm-delay dm-snapshot brd loop nbd virtio_pci virtio_blk 9p 9pnet_virtio
	libcrc32c crc32c ext4 btrfs
)

syspath() { PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$1" || true; }
bins=()
for b in "${REQUIRED_BINS[@]}"; do
	p=$(syspath "$b")
	[ -n "$p" ] || { echo "build-initramfs: missing $b" >&2; exit 1; }
	bins+=("$p")
done
for b in "${OPTIONAL_BINS[@]}"; do
	p=$(syspath "$b")
	[ -z "$p" ] || bins+=("$p")
done
BUSYBOX=$(syspath busybox)

mods=()
for m in "${MODULES[@]}"; do
	while read -r kind path _; do
		[ "$kind" = insmod ] && mods+=("$path")
	done < <(modprobe -S "$K" --show-depends "$m")
done
mapfile -t mods < <(printf '%s\n' "${mods[@]}" | sort -u)

local_bins=()
if [ -d "$BUILD/bin" ]; then
	while IFS= read -r -d '' f; do
		[ -x "$f" ] && local_bins+=("$f")
	done < <(find "$BUILD/bin" -maxdepth 1 -type f -print0 | sort -z)
fi

# --- input fingerprint: skip the build when nothing changed --------------------------
fingerprint() {
	echo "kernel $K"
	sha256sum "${BASH_SOURCE[0]}" "$ROOT/scripts/vm/guest-init.sh" "$DD_KO"
	[ -z "$WARN_KO" ] || [ ! -f "$WARN_KO" ] || sha256sum "$WARN_KO"
	# Host files change only through packages: size and mtime are enough.
	stat -L -c '%n %s %Y' "${bins[@]}" "${mods[@]}"
	find "$ROOT/tests/vm" "$ROOT/bench/guest" -path "$ROOT/tests/vm/selftest-warn" -prune \
		-o -type f -print0 | sort -z | xargs -0 sha256sum
	[ ${#local_bins[@]} -eq 0 ] || sha256sum "${local_bins[@]}"
	cat "$ROOT/build/bench-reps" 2>/dev/null || true
}
mkdir -p "$OUT"
# One build at a time (two `make test` in one tree).
exec 9>"$OUT/.initramfs.lock"
flock 9
fp=$(fingerprint | sha256sum | cut -d' ' -f1)
if [ "$force" = 0 ] && [ -f "$IMG" ] && [ "$(cat "$INPUTS" 2>/dev/null)" = "$fp" ]; then
	echo "build-initramfs: up to date ($IMG)"
	exit 0
fi

start=$(date +%s.%N)
R=$(mktemp -d "$OUT/root.XXXXXX")
chmod 0755 "$R"
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,proc,sys,dev,tmp,run,out,etc/lvm,tests,root}
# Debian 12 is merged-/usr: keep the same layout so ldd paths resolve as on the host.
ln -s usr/bin "$R/bin"
ln -s usr/sbin "$R/sbin"
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"

copy_file() { # host path -> same path in the guest, symlinks resolved
	local dst=$R$1
	[ -e "$dst" ] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}

copy_libs() {
	local line lib
	# ldd exits non-zero on static binaries; that is fine.
	while read -r line; do
		case "$line" in
		*"=> not found"*) echo "build-initramfs: $1: $line" >&2; exit 1 ;;
		*"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
		/*) lib=${line%% (*} ;;
		*) continue ;;
		esac
		copy_file "$lib"
	done < <(ldd "$1" 2>/dev/null || true)
}

for b in "${bins[@]}"; do
	copy_file "$b"
	copy_libs "$b"
done

# Multi-call programs: the names they answer to.
for c in pvcreate pvremove pvs pvdisplay vgcreate vgremove vgs vgchange vgdisplay \
	lvcreate lvremove lvs lvchange lvextend lvconvert lvdisplay lvrename; do
	ln -s lvm "$R/usr/sbin/$c"
done
for l in /usr/sbin/thin_* /usr/sbin/cache_* /usr/sbin/era_*; do
	[ -L "$l" ] && ln -s pdata_tools "$R/usr/sbin/$(basename "$l")"
done
for c in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -s mke2fs "$R/usr/sbin/$c"; done
for c in fsck.ext2 fsck.ext3 fsck.ext4; do ln -s e2fsck "$R/usr/sbin/$c"; done
for c in modprobe insmod rmmod lsmod modinfo depmod; do ln -s ../bin/kmod "$R/usr/sbin/$c"; done

# busybox for everything else (it never replaces a real program copied above).
while read -r a; do
	[ -e "$R/$a" ] || [ -L "$R/$a" ] && continue
	mkdir -p "$(dirname "$R/$a")"
	ln -s /bin/busybox "$R/$a"
done < <("$BUSYBOX" --list-full)

# Our tools and the guest test scripts.
for f in "${local_bins[@]}"; do
	cp "$f" "$R/usr/local/bin/"
	copy_libs "$f"
done
(cd "$ROOT/tests/vm" && find . -path ./selftest-warn -prune -o -type f -print0 |
	cpio --quiet -0 -pdm "$R/tests")
# The benchmark scripts run from the same place (they source lib.sh too).
(cd "$ROOT/bench/guest" && find . -type f -print0 | cpio --quiet -0 -pdm "$R/tests")
# Benchmark parameters (bench/datapath.sh writes them).
[ ! -f "$ROOT/build/bench-reps" ] || cp "$ROOT/build/bench-reps" "$R/tests/bench-reps"

# Kernel modules.
for m in "${mods[@]}"; do copy_file "$m"; done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$MODDIR/$f" ] && cp "$MODDIR/$f" "$R/lib/modules/$K/"
done
mkdir -p "$R/lib/modules/$K/extra"
cp "$DD_KO" "$R/lib/modules/$K/extra/"
[ -z "$WARN_KO" ] || [ ! -f "$WARN_KO" ] || cp "$WARN_KO" "$R/lib/modules/$K/extra/"
depmod -b "$R" "$K"

# LVM without udev, lvmetad, dmeventd, backups (see docs/testing.md).
cat >"$R/etc/lvm/lvm.conf" <<'EOF'
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	use_lvmpolld = 0
}
backup {
	backup = 0
	archive = 0
}
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"

install -m 0755 "$ROOT/scripts/vm/guest-init.sh" "$R/init"

(cd "$R" && find . -print0 | sort -z | cpio --quiet -o -0 -H newc) >"$IMG.tmp"
mv "$IMG.tmp" "$IMG"
echo "$fp" >"$INPUTS"
end=$(date +%s.%N)
printf 'build-initramfs: built %s (%s MB, %.1f s)\n' "${IMG#"$ROOT"/}" \
	"$(($(stat -c %s "$IMG") / 1048576))" "$(echo "$end - $start" | bc)"
