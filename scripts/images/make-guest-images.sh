#!/bin/bash
# Builds the guest disk images that the scanner is measured on and `make demo` uses:
# three Debian bookworm guests with different package sets, each an ext4 filesystem
# image made with `mkfs.ext4 -d <tree>` from a debootstrap tree.
#
#   scripts/images/make-guest-images.sh [--out DIR] [--force] [--only NAME] [--keep-trees]
#   scripts/images/make-guest-images.sh [--out DIR] --verify
#   scripts/images/make-guest-images.sh [--out DIR] --check
#
#   --out DIR     where the images go (default build/images/): DIR/NAME.img, its stamp
#                 DIR/NAME.stamp, its package list DIR/NAME.packages, DIR/SHA256SUMS;
#                 the shared package cache is DIR/cache/debs, the logs DIR/logs/
#   --force       rebuild even the images whose stamp matches
#   --only NAME   build (or verify, or check) this image only; may be repeated
#   --keep-trees  keep the debootstrap trees in DIR/work/ (they are removed otherwise)
#   --verify      build nothing: check every image's SHA-256 against its stamp
#   --check       rebuild every image in DIR/check/ (from the cached packages) and
#                 compare it byte for byte with the one in DIR: the reproducibility check
#
# Reproducible: the same inputs give byte-identical images.  The inputs are this script
# and mke2fs.conf beside it, the package sets, the suite and architecture, the mirror,
# SOURCE_DATE_EPOCH, the versions of debootstrap and e2fsprogs, and the versions of the
# packages that the mirror serves (they change when Debian updates the suite: an image is
# reproducible given the same package versions; DIR/NAME.packages lists them).
# A stamp records the hash of the inputs known before the build; an image whose stamp
# matches is not rebuilt (a warm run does nothing).  --force rebuilds with the versions
# the mirror serves now.
#
# Root is needed (debootstrap).  Works without a terminal or stdin (CI).  The mirror is
# the one apt uses for the suite (read from apt's sources at run time);
# DD_IMAGES_MIRROR=<uri> overrides it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export LC_ALL=C TZ=UTC DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
umask 022

SUITE=bookworm
ARCH=amd64
# Every file time later than this is set to it, and so are all inode change and access
# times (2026-06-01 00:00:00 UTC; override with SOURCE_DATE_EPOCH in the environment).
SDE=${SOURCE_DATE_EPOCH:-1780272000}
export SOURCE_DATE_EPOCH=$SDE

# --- the guests ------------------------------------------------------------------------
# NAME, the packages added to debootstrap's minbase variant (--include, comma-separated;
# debootstrap adds their Depends, not their Recommends) and what the guest stands for.
IMAGES=(minbase server dev)
ALL_IMAGES=("${IMAGES[@]}")
declare -A PKGS DESC
DESC[minbase]="debootstrap --variant=minbase alone: a minimal appliance or container-like root"
PKGS[minbase]=""
DESC[server]="a bootable headless server VM: systemd, Debian's generic kernel, ssh, python3, curl"
PKGS[server]="systemd-sysv,udev,dbus,linux-image-amd64,openssh-server,python3,ca-certificates,curl,\
iproute2,ifupdown,isc-dhcp-client,netbase,iputils-ping,procps,less,vim-tiny,sudo,cron,logrotate,kmod"
DESC[dev]="a cloud build VM: systemd, Debian's cloud kernel, compilers, git, python3-dev, autotools, gdb"
# (gdb needs libboost-regex1.74.0-icu72, a virtual package that debootstrap's resolver
# cannot satisfy: its provider libboost-regex1.74.0 is named here)
PKGS[dev]="systemd-sysv,udev,linux-image-cloud-amd64,build-essential,git,python3-dev,python3-venv,\
pkg-config,autoconf,automake,libtool,gdb,libboost-regex1.74.0,strace,ca-certificates,curl,less,vim-tiny"
# Free space in each filesystem (of its blocks), before rounding the size up to 16 MiB.
FREE_PCT=25

# --- options -----------------------------------------------------------------------------
OUT=$ROOT/build/images
FORCE=0 KEEP=0 MODE=build
ONLY=()
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--out=*) OUT=${1#--out=}; shift ;;
	--force) FORCE=1; shift ;;
	--only) ONLY+=("${2:?--only needs a name}"); shift 2 ;;
	--keep-trees) KEEP=1; shift ;;
	--verify) MODE=verify; shift ;;
	--check) MODE=check; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "make-guest-images: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ ${#ONLY[@]} -gt 0 ]; then
	for n in "${ONLY[@]}"; do
		[ -n "${DESC[$n]+x}" ] || { echo "make-guest-images: no image named $n (${IMAGES[*]})" >&2; exit 2; }
	done
	IMAGES=("${ONLY[@]}")
fi
log() { printf 'images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
[ "$MODE" = verify ] || [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
now() { date +%s.%N; }
# seconds since $1, one decimal
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --verify needs neither root nor the network
if [ "$MODE" = verify ]; then
	bad=0
	for n in "${IMAGES[@]}"; do
		img=$OUT/$n.img st=$OUT/$n.stamp
		if [ ! -f "$img" ] || [ ! -f "$st" ]; then
			echo "$n: missing"; bad=1; continue
		fi
		want=$(sed -n 's/^sha256=//p' "$st")
		got=$(sha256sum "$img" | cut -d' ' -f1)
		if [ "$got" = "$want" ]; then echo "$n: ok $got"; else echo "$n: DIFFERS (stamp $want, image $got)"; bad=1; fi
	done
	exit $bad
fi

T0=$(now)

# One run at a time in an output directory.
exec 9>"$OUT/.lock"
flock -n 9 || { log "waiting for another run in $OUT"; flock 9; }

"$ROOT/scripts/deps.sh" </dev/null >&2

# --- the mirror ----------------------------------------------------------------------------
# The URI that apt's own sources give for the suite's main component (deb822 .sources and
# one-line .list alike, through apt itself).
mirror() {
	if [ -n "${DD_IMAGES_MIRROR:-}" ]; then
		echo "$DD_IMAGES_MIRROR"
		return
	fi
	# shellcheck disable=SC2016 # apt's and dpkg's own $(...) and ${...}, not the shell's
	apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE) $(COMPONENT) $(CREATED_BY)' 2>/dev/null |
		awk -v s="$SUITE" '$2 == s && $3 == "main" && $4 == "Packages" { print $1; exit }'
}
MIRROR=$(mirror)
[ -n "$MIRROR" ] || die "no apt source for $SUITE main (set DD_IMAGES_MIRROR)"

CACHE=$OUT/cache/debs
LOGS=$OUT/logs
mkdir -p "$CACHE" "$LOGS"

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }

# The inputs of one image known before it is built, one per line.
inputs() {
	local n=$1
	cat <<-EOF
		script $(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)
		mke2fs.conf $(sha256sum <"$HERE/mke2fs.conf" | cut -d' ' -f1)
		name $n
		suite $SUITE
		arch $ARCH
		mirror $MIRROR
		variant minbase
		include ${PKGS[$n]}
		source_date_epoch $SDE
		free_pct $FREE_PCT
		debootstrap $(pkgver debootstrap)
		e2fsprogs $(pkgver e2fsprogs)
	EOF
}
inputs_hash() { inputs "$1" | sha256sum | cut -d' ' -f1; }

# A fixed UUID per image, derived from its name (images differ as real guests do; the
# metadata checksums are seeded from it), and a fixed directory hash seed.
fixed_uuid() {
	printf '%s' "dm-dedup guest image $1 $2" | sha256sum |
		sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'
}

# Mount points that a failed debootstrap may have left under a tree.
umount_under() {
	local t=$1 m
	for m in $(findmnt -rn -o TARGET | awk -v t="$t" 'index($0, t "/") == 1 || $0 == t' | sort -r); do
		umount -l "$m" || true
	done
}
# A tree being built is never left with something mounted in it (a killed debootstrap
# may leave /proc), whatever ends the run.
CUR_TREE=
trap '[ -z "$CUR_TREE" ] || umount_under "$CUR_TREE"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
remove_tree() {
	[ -e "$1" ] || return 0
	umount_under "$1"
	rm -rf --one-file-system "$1"
}

# --- normalisation of a debootstrap tree ----------------------------------------------------
# Removes what is host-, time- or random-dependent and is recreated by the guest (caches,
# logs, identities), then clamps file times to SOURCE_DATE_EPOCH.
normalise() {
	local t=$1 f
	# caches: downloaded packages (the shared cache keeps them), apt's binary caches and
	# package lists (they depend on the mirror's day, not on what is installed), the
	# ldconfig cache of inode numbers and times, debconf's and dpkg's backups
	rm -f "$t"/var/cache/apt/archives/*.deb "$t"/var/cache/apt/*.bin
	rm -rf "$t"/var/cache/apt/archives/partial/* "$t"/var/lib/apt/lists/*
	mkdir -p "$t"/var/lib/apt/lists/partial
	rm -f "$t"/var/cache/ldconfig/aux-cache "$t"/var/cache/debconf/*-old "$t"/var/lib/dpkg/*-old
	# logs: debootstrap's, dpkg's, apt's, alternatives'; the login records stay, empty
	rm -f "$t"/var/log/bootstrap.log "$t"/var/log/dpkg.log "$t"/var/log/alternatives.log
	rm -rf "$t"/var/log/apt/*
	for f in wtmp btmp lastlog faillog; do
		[ -f "$t/var/log/$f" ] && : >"$t/var/log/$f"
	done
	# identities: machine-id (empty: systemd makes one at first boot), ssh host keys
	# (a guest makes its own: ssh-keygen -A), the host's hostname and resolv.conf that
	# debootstrap copied in
	[ -e "$t/etc/machine-id" ] && : >"$t/etc/machine-id"
	[ -f "$t/var/lib/dbus/machine-id" ] && [ ! -L "$t/var/lib/dbus/machine-id" ] && rm -f "$t/var/lib/dbus/machine-id"
	rm -f "$t"/etc/ssh/ssh_host_*_key "$t"/etc/ssh/ssh_host_*_key.pub
	rm -f "$t/etc/hostname" "$t/etc/resolv.conf"
	echo "$2" >"$t/etc/hostname"
	: >"$t/etc/resolv.conf"
	chmod 644 "$t/etc/hostname" "$t/etc/resolv.conf"
	# systemd's random seed, if any
	rm -f "$t"/var/lib/systemd/random-seed
	# times: nothing later than SOURCE_DATE_EPOCH (inode change and access times are set
	# in the filesystem image: they cannot be set in a tree)
	find "$t" -xdev -newermt "@$SDE" -exec touch -h -d "@$SDE" {} +
}

# --- one image --------------------------------------------------------------------------------
# build NAME DESTDIR: makes DESTDIR/NAME.img, .stamp and .packages; prints the result line.
build_one() {
	local n=$1 dest=$2 t0 tree img tmp uuid seed
	t0=$(now)
	tree=$dest/work/$n
	img=$dest/$n.img
	tmp=$dest/$n.img.tmp
	remove_tree "$tree"
	CUR_TREE=$tree
	mkdir -p "$dest/work"
	rm -f "$tmp" "$img" "$dest/$n.stamp"

	local inc=()
	[ -n "${PKGS[$n]}" ] && inc=(--include="${PKGS[$n]}")
	log "$n: ${DESC[$n]}"
	log "$n: debootstrap $SUITE (minbase${PKGS[$n]:+ + ${PKGS[$n]//,/ }})"
	if ! debootstrap --variant=minbase "${inc[@]}" --arch="$ARCH" --cache-dir="$CACHE" \
		"$SUITE" "$tree" "$MIRROR" </dev/null >"$LOGS/$n.debootstrap.log" 2>&1; then
		umount_under "$tree"
		tail -n 30 "$LOGS/$n.debootstrap.log" >&2
		[ -f "$tree/debootstrap/debootstrap.log" ] && tail -n 30 "$tree/debootstrap/debootstrap.log" >&2
		die "$n: debootstrap failed (log: ${LOGS#"$ROOT"/}/$n.debootstrap.log)"
	fi
	umount_under "$tree"
	if findmnt -rn -o TARGET | grep -q "^$tree/"; then
		die "$n: something is still mounted under $tree"
	fi
	local broken
	# shellcheck disable=SC2016 # apt's and dpkg's own $(...) and ${...}, not the shell's
	broken=$(chroot "$tree" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 != "ii" { print $2 }')
	[ -z "$broken" ] || die "$n: packages not installed properly: $broken"
	# shellcheck disable=SC2016 # apt's and dpkg's own $(...) and ${...}, not the shell's
	chroot "$tree" dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' | sort >"$dest/$n.packages"
	local t_boot t1
	t_boot=$(since "$t0")
	t1=$(now)
	normalise "$tree" "$n"

	# Size: the tree's blocks counted from file sizes (not from the host filesystem's
	# allocation, which differs between filesystems: the size must not depend on it), one
	# block per directory and per long symlink; the inode tables (256 bytes per 16 KiB),
	# mke2fs's journal for that size, 1% for the rest of the metadata; FREE_PCT of all the
	# blocks free; rounded up to 16 MiB.
	local stats blocks files size inodes
	stats=$(find "$tree" -xdev -printf '%y %s\n' | awk '
		{ n++ }
		$1 == "f" { b += int(($2 + 4095) / 4096) }
		$1 == "d" { b++ }
		$1 == "l" && $2 >= 60 { b++ }
		END { print b, n }')
	read -r blocks files <<<"$stats"
	size=$(awk -v b="$blocks" -v f="$FREE_PCT" 'BEGIN {
		t = b / (1 - f / 100)
		for (i = 0; i < 5; i++) {
			j = t < 32768 ? 1024 : t < 262144 ? 4096 : t < 524288 ? 8192 : 16384
			t = (b + j + t / 64 + t / 100) / (1 - f / 100)
		}
		m = 4096                         # 16 MiB in blocks
		printf "%.0f", int((t + m - 1) / m) * m * 4096 }')  # (mawk clamps %d to 32 bits)
	# inodes: the default ratio, or half as many again as the tree has files if that is more
	inodes=$(awk -v s="$size" -v f="$files" 'BEGIN { a = s / 16384; b = f * 3 / 2; printf "%.0f", (a > b ? a : b) }')

	uuid=$(fixed_uuid "$n" uuid)
	seed=$(fixed_uuid "$n" hash_seed)
	truncate -s "$size" "$tmp"
	if ! MKE2FS_CONFIG=$HERE/mke2fs.conf E2FSPROGS_FAKE_TIME=$SDE \
		mkfs.ext4 -q -F -t ext4 -T default -b 4096 -I 256 -N "$inodes" -m 5 -L "$n" -U "$uuid" \
		-E "root_owner=0:0,hash_seed=$seed,nodiscard,lazy_itable_init=0,lazy_journal_init=0" \
		-d "$tree" "$tmp" >"$LOGS/$n.mkfs.log" 2>&1; then
		cat "$LOGS/$n.mkfs.log" >&2
		die "$n: mkfs.ext4 failed"
	fi
	fix_times "$n" "$tmp"
	if ! e2fsck -fn "$tmp" >"$LOGS/$n.e2fsck.log" 2>&1; then
		cat "$LOGS/$n.e2fsck.log" >&2
		die "$n: e2fsck finds errors in the new image"
	fi
	# the host copy sparse (its zero blocks are holes; the content is unchanged)
	fallocate --dig-holes "$tmp" 2>/dev/null || true

	local sum used free fsfiles secs
	sum=$(sha256sum "$tmp" | cut -d' ' -f1)
	read -r used free fsfiles < <(dumpe2fs -h "$tmp" 2>/dev/null | awk -F: '
		/^Block count/ { bc = $2 } /^Free blocks/ { fb = $2 }
		/^Inode count/ { ic = $2 } /^Free inodes/ { fi = $2 }
		END { printf "%d %d %d\n", bc - fb, fb, ic - fi }')
	secs=$(since "$t0")
	{
		echo "inputs=$(inputs_hash "$n")"
		echo "sha256=$sum"
		echo "bytes=$size"
		echo "blocks_used=$used"
		echo "blocks_free=$free"
		echo "files=$fsfiles"
		echo "build_seconds=$secs"
		echo "debootstrap_seconds=$t_boot"
		echo "image_seconds=$(since "$t1")"
		inputs "$n" | sed 's/^/input: /'
	} >"$dest/$n.stamp.tmp"
	mv "$tmp" "$img"
	mv "$dest/$n.stamp.tmp" "$dest/$n.stamp"
	[ "$KEEP" = 1 ] || remove_tree "$tree"
	CUR_TREE=
	report "$n" "$dest" "built in ${secs} s"
}

# fix_times NAME IMAGE: sets the change and access times of every inode that mkfs copied
# from the tree to SOURCE_DATE_EPOCH (mkfs.ext4 -d copies them from stat(); the creation
# times and the superblock's times already come from E2FSPROGS_FAKE_TIME).
fix_times() {
	local n=$1 img=$2 cmds=$LOGS/$1.debugfs.cmds
	dumpe2fs "$img" 2>/dev/null | awk -v sde="$SDE" '
		/^Inodes per group:/ { ipg = $4 }
		/^First inode:/ { first = $3 }
		/^Group [0-9]+:/ { g = $2 + 0 }
		/^  Free inodes: / {
			delete freei
			s = substr($0, index($0, ":") + 2)
			nr = split(s, parts, /, */)
			for (i = 1; i <= nr; i++) {
				if (parts[i] == "") continue
				if (split(parts[i], ab, "-") == 2) { for (k = ab[1]; k <= ab[2]; k++) freei[k] = 1 }
				else freei[parts[i]] = 1
			}
			for (k = g * ipg + 1; k <= (g + 1) * ipg; k++) {
				if (k in freei) continue
				if (k != 2 && k < first) continue
				printf "sif <%d> ctime @%s\nsif <%d> atime @%s\n", k, sde, k, sde
			}
		}' >"$cmds"
	[ -s "$cmds" ] || die "$n: no inodes found in the new image"
	if ! E2FSPROGS_FAKE_TIME=$SDE debugfs -w -f "$cmds" "$img" >"$LOGS/$n.debugfs.log" 2>&1; then
		tail -n 20 "$LOGS/$n.debugfs.log" >&2
		die "$n: debugfs failed"
	fi
	if grep -v '^debugfs' "$LOGS/$n.debugfs.log" | grep -q .; then
		grep -v '^debugfs' "$LOGS/$n.debugfs.log" | head -n 20 >&2
		die "$n: debugfs reported errors"
	fi
}

# report NAME DIR NOTE: the one line of an image
report() {
	local n=$1 d=$2 st=$2/$1.stamp
	awk -F= -v n="$n" -v note="$3" '
		{ v[$1] = $2 }
		END {
			total = v["blocks_used"] + v["blocks_free"]
			printf "%-8s %5d MiB image, %6d files, %5d MiB used, %2d%% free, sha256 %.12s, %s\n",
				n, v["bytes"] / 1048576, v["files"], v["blocks_used"] * 4096 / 1048576,
				total ? 100 * v["blocks_free"] / total : 0, v["sha256"], note }' "$st"
}

# cached NAME DIR: the image is there and its stamp's inputs are the current ones
cached() {
	[ -f "$2/$1.img" ] && [ -f "$2/$1.stamp" ] &&
		[ "$(sed -n 's/^inputs=//p' "$2/$1.stamp")" = "$(inputs_hash "$1")" ]
}

write_sums() {
	local d=$1 n
	(cd "$d" && for n in "${ALL_IMAGES[@]}"; do
		[ -f "$n.stamp" ] && printf '%s  %s\n' "$(sed -n 's/^sha256=//p' "$n.stamp")" "$n.img"
	done) >"$d/SHA256SUMS"
}

# --- main -------------------------------------------------------------------------------------
case "$MODE" in
build)
	for n in "${IMAGES[@]}"; do
		if [ "$FORCE" = 0 ] && cached "$n" "$OUT"; then
			report "$n" "$OUT" "cached"
		else
			build_one "$n" "$OUT"
		fi
	done
	write_sums "$OUT"
	rmdir "$OUT/work" 2>/dev/null || true
	echo "total $(since "$T0") s (${OUT#"$ROOT"/}, mirror $MIRROR)"
	;;
check)
	CHK=$OUT/check
	bad=0
	for n in "${IMAGES[@]}"; do
		[ -f "$OUT/$n.stamp" ] || die "$n: no image in $OUT to check against (build it first)"
		build_one "$n" "$CHK"
		if cmp -s "$OUT/$n.img" "$CHK/$n.img"; then
			echo "$n: reproduced, byte-identical"
		elif ! cmp -s "$OUT/$n.packages" "$CHK/$n.packages"; then
			echo "$n: differs, and so do the package versions (the mirror was updated):"
			diff "$OUT/$n.packages" "$CHK/$n.packages" | sed -n 's/^[<>]/  &/p' | head -n 20
		else
			echo "$n: DIFFERS with the same package versions (not reproducible)"
			bad=1
		fi
	done
	[ "$KEEP" = 1 ] || rm -rf --one-file-system "$CHK"
	echo "total $(since "$T0") s"
	exit $bad
	;;
esac
