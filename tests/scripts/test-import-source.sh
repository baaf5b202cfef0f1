#!/bin/bash
# The source side of `dedupctl import` (tools/dedupctl/source.c, driven by
# tests/import/dd_srcmap.c) calls a 4 KiB block free only inside the free space
# of an ext2/3/4 filesystem it can trust.  On images built here (GPT and MBR,
# partitions at 4 KiB-aligned and unaligned sectors, an extended partition, swap,
# 1, 2 and 4 KiB filesystem blocks, a whole-source filesystem of an odd size):
#   - no 4 KiB block holding a non-zero byte is ever called free (checked on every
#     block of every image: this is the data-loss property);
#   - a copy of only the in-use blocks into zeroes passes `e2fsck -fn` and holds the
#     same files, byte for byte;
#   - each filesystem's in-use count covers its used blocks and stays far below its size;
#   - a filesystem libext2fs refuses (bad checksum, corrupt superblock, journal to
#     recover, errors, unclean) is all in use, and the describe line says why;
#   - random bytes, an empty file, a truncated GPT image, --all, and sources that are
#     not one (a directory, a character device, no file) give sane output or one line.
# Native, no root.  Needs sfdisk (fdisk), mke2fs/debugfs/dumpe2fs/e2fsck (e2fsprogs),
# mkswap (util-linux) and python3.
#
#   tests/scripts/test-import-source.sh    exit status 0 if every case passed
#
# DD_SRCMAP=path runs that binary; by default the ASan/UBSan build of `make srcmap`.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH=$PATH:/usr/sbin:/sbin
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
n=0
failed=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
	shift
	for l in "$@"; do echo "# $l"; done
}

for tool in sfdisk mke2fs debugfs dumpe2fs e2fsck mkswap python3 truncate; do
	if ! command -v $tool >/dev/null; then
		echo "not ok 1 - $tool is installed (packages: fdisk e2fsprogs util-linux python3)"
		exit 1
	fi
done
if [ -n "${DD_SRCMAP:-}" ]; then
	SRCMAP=$DD_SRCMAP
else
	SRCMAP=$ROOT/build/us-san/import/dd_srcmap
	if ! make -s -C "$ROOT" "${SRCMAP#"$ROOT"/}" >/dev/null; then
		echo "not ok 1 - dd_srcmap builds (make srcmap)"
		exit 1
	fi
fi

t=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "# kept $t" || rm -rf "$t"' EXIT

# check.py nonzero IMG MAP: every block of IMG with a non-zero byte is listed in use in
# MAP (dd_srcmap --list), and the list agrees with the counts.  check.py copy IMG MAP OUT:
# OUT (zeroes, IMG's size) gets only the in-use blocks of IMG.  check.py gptfit IMG: below.
cat >"$t/check.py" <<'EOF'
import sys

def in_use(path):
	blocks = used = None
	runs = []
	for line in open(path):
		w = line.split()
		if len(w) == 6 and w[0] == 'blocks' and w[2] == 'in_use':
			blocks, used = int(w[1]), int(w[3])
		elif blocks is not None:
			a, _, b = line.strip().partition('-')
			runs.append((int(a), int(b or a)))
	s = bytearray(blocks)
	for a, b in runs:
		s[a:b + 1] = b'\1' * (b + 1 - a)
	if sum(s) != used:
		sys.exit('the list holds %d blocks, not in_use %d' % (sum(s), used))
	return s

cmd, img = sys.argv[1:3]
if cmd == 'gptfit':
	# The primary GPT header made to fit IMG (alternate and last usable LBA, its CRC),
	# its partition entries left as they are.
	import struct, zlib
	with open(img, 'r+b') as f:
		last = f.seek(0, 2) // 512 - 1
		f.seek(512)
		h = bytearray(f.read(92))
		struct.pack_into('<QQQ', h, 32, last, 34, last - 33)
		struct.pack_into('<I', h, 16, 0)
		struct.pack_into('<I', h, 16, zlib.crc32(bytes(h)))
		f.seek(512)
		f.write(h)
	sys.exit(0)
use = in_use(sys.argv[3])
with open(img, 'rb') as f:
	data = f.read()
if len(use) != (len(data) + 4095) // 4096:
	sys.exit('%d blocks for %d bytes' % (len(use), len(data)))
if cmd == 'nonzero':
	bad = [b for b in range(len(use))
	       if not use[b] and data[b * 4096:(b + 1) * 4096].strip(b'\0')]
	if bad:
		sys.exit('%d non-zero blocks called free, the first %s' % (len(bad), bad[:8]))
	nz = sum(1 for b in range(len(use)) if data[b * 4096:(b + 1) * 4096].strip(b'\0'))
	print('%d blocks, %d non-zero, %d in use' % (len(use), nz, sum(use)))
else:
	out = bytearray(len(data))
	for b in range(len(use)):
		if use[b]:
			out[b * 4096:(b + 1) * 4096] = data[b * 4096:(b + 1) * 4096]
	open(sys.argv[4], 'wb').write(out)
EOF

# The files every filesystem holds: random data of awkward sizes, an empty and a sparse one.
d=$t/files
mkdir -p "$d/sub/deeper"
head -c 300001 /dev/urandom >"$d/a"
head -c 2500000 /dev/urandom >"$d/b"
head -c 4097 /dev/urandom >"$d/sub/c"
: >"$d/sub/empty"
echo "a line of text" >"$d/sub/deeper/text"
truncate -s 6M "$d/sparse"
head -c 5000 /dev/urandom | dd of="$d/sparse" bs=4096 seek=700 conv=notrunc status=none
mapfile -t FILES < <(cd "$d" && find . -type f | sed 's|^\./||' | sort)

# mkfs FILE BYTES TYPE BLOCKSIZE: a populated filesystem in its own file.
mkfs() {
	rm -f "$1"; truncate -s "$2" "$1"
	mke2fs -q -F -t "$3" -b "$4" -d "$d" "$1" >/dev/null
}
# put IMG SECTOR FILE: FILE written into IMG at SECTOR.
put() { dd if="$3" of="$1" bs=512 seek="$2" conv=notrunc status=none; }
# map IMG [OPTS...]: dd_srcmap --list IMG into IMG.map; its status.
map() {
	local img=$1
	shift
	"$SRCMAP" "$@" --list "$img" >"$img.map" 2>"$img.err"
}
# region IMG NAME: "BLOCKS INUSE" of the describe line of NAME (p1, disk) in IMG.map.
region() { sed -n "s/^$2 .*: \([0-9]*\) blocks, \([0-9]*\) in use.*/\1 \2/p" "$1.map"; }

# map_ok NAME IMG: dd_srcmap runs and no non-zero block is called free.
map_ok() {
	local out
	if ! map "$2"; then
		fail "$1: dd_srcmap runs" "$(cat "$2.err")"
		return 1
	fi
	if out=$(python3 "$t/check.py" nonzero "$2" "$2.map" 2>&1); then
		pass "$1: no block with a non-zero byte is called free ($out)"
	else
		fail "$1: no block with a non-zero byte is called free" "$out"
	fi
}

# fs_ok NAME IMG PART SECTOR FSBYTES: the filesystem at SECTOR of IMG (region PART) is
# mapped, its in-use count is between its used blocks and half its size, and a copy of
# the in-use blocks only passes e2fsck and has the same files.
fs_ok() {
	local name=$1 img=$2 part=$3 sector=$4 bytes=$5 x=$t/extract bc fb bs used r f bad=
	dd if="$img" of="$x" bs=512 skip="$sector" count=$((bytes / 512)) status=none
	bc=$(dumpe2fs -h "$x" 2>/dev/null | sed -n 's/^Block count: *//p')
	fb=$(dumpe2fs -h "$x" 2>/dev/null | sed -n 's/^Free blocks: *//p')
	bs=$(dumpe2fs -h "$x" 2>/dev/null | sed -n 's/^Block size: *//p')
	used=$((((bc - fb) * bs + 4095) / 4096))
	read -r r_blocks r_used <<<"$(region "$img" "$part")"
	if ! grep -q "^$part ext.*fs blocks.*free:" "$img.map" ||
	   grep -q "^$part .*all in use" "$img.map"; then
		fail "$name: $part is mapped as an ext filesystem" "$(grep "^$part " "$img.map")"
	elif [ "${r_used:-0}" -ge "$used" ] && [ $((r_used * 2)) -lt "$r_blocks" ]; then
		pass "$name: $part in use $r_used of $r_blocks blocks, its filesystem uses $used"
	else
		fail "$name: $part in use ${r_used:-?} of ${r_blocks:-?} blocks, fs uses $used" \
			"$(grep "^$part " "$img.map")"
	fi
	python3 "$t/check.py" copy "$img" "$img.map" "$t/copy" || { fail "$name: copy"; return; }
	dd if="$t/copy" of="$x" bs=512 skip="$sector" count=$((bytes / 512)) status=none
	if r=$(e2fsck -fn "$x" 2>&1); then
		pass "$name: $part copied from in-use blocks only passes e2fsck -fn"
	else
		fail "$name: $part copied from in-use blocks only passes e2fsck -fn" \
			"$(echo "$r" | tail -5)"
	fi
	for f in "${FILES[@]}"; do
		debugfs -R "cat /$f" "$x" 2>/dev/null | cmp -s - "$d/$f" || bad="$bad $f"
	done
	if [ -z "$bad" ]; then
		pass "$name: $part copied has the ${#FILES[@]} files, byte for byte"
	else
		fail "$name: $part copied has the ${#FILES[@]} files, byte for byte" "differ:$bad"
	fi
}

# refused NAME IMG PART WHY: region PART is all in use and its line says WHY (a regex).
refused() {
	read -r r_blocks r_used <<<"$(region "$2" "$3")"
	if [ -n "${r_blocks:-}" ] && [ "$r_blocks" = "$r_used" ] &&
	   grep -qE "^$3 .*all in use: .*$4" "$2.map"; then
		why=$(grep "^$3 " "$2.map" | grep -o 'all in use: [^)]*')
		pass "$1: $3 is all in use, and says why ($why)"
	else
		fail "$1: $3 is all in use, and says why /$4/" "$(grep "^$3 " "$2.map")"
	fi
}

# counts IMG: "BLOCKS INUSE FREE" of IMG.map.
counts() { sed -n 's/^blocks \([0-9]*\) in_use \([0-9]*\) free \([0-9]*\)$/\1 \2 \3/p' "$1.map"; }

# GPT, 64 MiB: p1 ext4 with 1 KiB blocks at sector 2049, p2 ext4 with 4 KiB blocks at 43008
# (made in place with -E offset), random bytes in the gap between them and after p2.
g=$t/gpt.img
truncate -s 64M "$g"
printf 'label: gpt\nstart=2049, size=40000\nstart=43008, size=60000\n' | sfdisk -q "$g"
mkfs "$t/fs" $((40000 * 512)) ext4 1024 && put "$g" 2049 "$t/fs"
mke2fs -q -F -t ext4 -b 4096 -d "$d" -E offset=$((43008 * 512)) "$g" 7500 >/dev/null
head -c 200000 /dev/urandom | dd of="$g" bs=512 seek=42100 conv=notrunc status=none
head -c 9000 /dev/urandom | dd of="$g" bs=512 seek=110001 conv=notrunc status=none
map_ok "gpt" "$g"
if grep -q '^gpt: 2 partitions' "$g.map" &&
   grep -q '^p1 ext4 at sector 2049 (not 4 KiB aligned)' "$g.map"; then
	pass "gpt: the table and an unaligned partition are described"
else
	fail "gpt: the table and an unaligned partition are described" "$(head -3 "$g.map")"
fi
fs_ok "gpt" "$g" p1 2049 $((40000 * 512))
fs_ok "gpt" "$g" p2 43008 $((60000 * 512))

# MBR, 96 MiB: p1 ext4 4 KiB at 2048, p2 ext2 4 KiB blocks at unaligned 62049, an extended
# p3 holding p5 ext3 1 KiB at 106496 and p6 swap at unaligned 150001.
m=$t/mbr.img
truncate -s 96M "$m"
printf '%s\n' 'label: dos' 'start=2048, size=60000' 'start=62049, size=40000' \
	'start=104448, size=80000, type=5' 'start=106496, size=40000' \
	'start=150001, size=20000, type=82' | sfdisk -q "$m" 2>/dev/null
mkfs "$t/fs" $((60000 * 512)) ext4 4096 && put "$m" 2048 "$t/fs"
mkfs "$t/fs" $((40000 * 512)) ext2 4096 && put "$m" 62049 "$t/fs"
mkfs "$t/fs" $((40000 * 512)) ext3 1024 && put "$m" 106496 "$t/fs"
rm -f "$t/swap"; truncate -s $((20000 * 512)) "$t/swap"; mkswap -q "$t/swap" >/dev/null
head -c 100000 /dev/urandom | dd of="$t/swap" bs=4096 seek=100 conv=notrunc status=none
put "$m" 150001 "$t/swap"
map_ok "mbr" "$m"
fs_ok "mbr" "$m" p1 2048 $((60000 * 512))
fs_ok "mbr" "$m" p2 62049 $((40000 * 512))
fs_ok "mbr" "$m" p5 106496 $((40000 * 512))
read -r r_blocks r_used <<<"$(region "$m" p6)"
if grep -q '^p6 swap' "$m.map" && [ "${r_blocks:-x}" = "${r_used:-y}" ]; then
	pass "mbr: p6 swap is all in use"
else
	fail "mbr: p6 swap is all in use" "$(grep '^p6' "$m.map")"
fi

# A whole-source ext4 with 2 KiB blocks, 1000 bytes of garbage after it (an odd size).
w=$t/whole.img
mkfs "$w" 30M ext4 2048
head -c 1000 /dev/urandom >>"$w"
map_ok "whole" "$w"
read -r nb nu nf <<<"$(counts "$w")"
last=$(tail -1 "$w.map" | sed 's/.*-//')
if [ "${nb:-0}" -eq $(((30 * 1048576 + 1000 + 4095) / 4096)) ] && [ "$last" = $((nb - 1)) ] &&
   grep -q '^disk ext4, 2048-byte fs blocks' "$w.map"; then
	pass "whole: an odd-sized source has a last partial block, in use"
else
	fail "whole: an odd-sized source has a last partial block, in use" "$(head -3 "$w.map")"
fi
fs_ok "whole" "$w" disk 0 $((30 * 1048576))

# --all: every block in use.
map "$g" --all
read -r nb nu nf <<<"$(counts "$g")"
if [ "${nb:-0}" -eq 16384 ] && [ "${nu:-0}" -eq 16384 ] && [ "${nf:-1}" -eq 0 ] &&
   grep -q 'all in use' "$g.map"; then
	pass "--all: every block is in use"
else
	fail "--all: every block is in use" "$(cat "$g.map" "$g.err" | head -3)"
fi

# Refused filesystems: a bad superblock checksum, a corrupt superblock (ext2, no checksums),
# a journal to recover, errors, not cleanly unmounted.
r=$t/refused.img
truncate -s 40M "$r"
printf '%s\n' 'label: gpt' 'start=2048, size=14000' 'start=16384, size=14000' \
	'start=32768, size=14000' 'start=49152, size=14000' 'start=65536, size=14000' |
	sfdisk -q "$r"
mkfs "$t/fs" $((14000 * 512)) ext4 1024
printf '\125' | dd of="$t/fs" bs=1 seek=$((1024 + 120)) conv=notrunc status=none
put "$r" 2048 "$t/fs"
mkfs "$t/fs" $((14000 * 512)) ext2 1024
debugfs -w -R "ssv blocks_per_group 7" "$t/fs" 2>/dev/null
put "$r" 16384 "$t/fs"
mkfs "$t/fs" $((14000 * 512)) ext4 1024
debugfs -w -R "feature needs_recovery" "$t/fs" >/dev/null 2>&1
put "$r" 32768 "$t/fs"
mkfs "$t/fs" $((14000 * 512)) ext4 1024 && debugfs -w -R "ssv state 3" "$t/fs" 2>/dev/null
put "$r" 49152 "$t/fs"
mkfs "$t/fs" $((14000 * 512)) ext2 4096 && debugfs -w -R "ssv state 0" "$t/fs" 2>/dev/null
put "$r" 65536 "$t/fs"
map_ok "refused" "$r"
refused "refused" "$r" p1 "checksum"
refused "refused" "$r" p2 "corrupt"
refused "refused" "$r" p3 "journal needs recovery"
refused "refused" "$r" p4 "has errors"
refused "refused" "$r" p5 "not cleanly unmounted"
read -r nb nu nf <<<"$(counts "$r")"
if [ "${nf:-1}" -eq 0 ]; then
	pass "refused: no block of the image is free"
else
	fail "refused: no block of the image is free" "free $nf"
fi

# A table over a whole-source filesystem: which one is stale is not guessed.
a=$t/ambiguous.img
mkfs "$a" 64M ext4 4096
printf 'label: dos\nstart=2048, size=60000\n' | sfdisk -q --wipe never "$a"
mkfs "$t/fs" $((60000 * 512)) ext4 4096 && put "$a" 2048 "$t/fs"
map_ok "ambiguous" "$a"
read -r nb nu nf <<<"$(counts "$a")"
if [ "${nf:-1}" -eq 0 ] && grep -q '^dos: 1 partitions; also a whole-source ext4 sig' "$a.map" &&
   grep -q '^p1 ext4 .*all in use: the table is ambiguous' "$a.map"; then
	pass "ambiguous: a table over a whole-source ext4 leaves all in use, and says so"
else
	fail "ambiguous: a table over a whole-source ext4 leaves all in use, and says so" \
		"$(head -3 "$a.map")"
fi

# Garbage: random bytes, an empty file, a GPT image cut short (p2 beyond the end, then both).
head -c $((4 * 1048576 + 123)) /dev/urandom >"$t/random.img"
map_ok "random bytes" "$t/random.img"
read -r nb nu nf <<<"$(counts "$t/random.img")"
if [ "${nf:-1}" -eq 0 ]; then
	pass "random bytes: all in use"
else
	fail "random bytes: all in use" "$(head -3 "$t/random.img.map")"
fi
: >"$t/empty.img"
if map "$t/empty.img" && [ "$(counts "$t/empty.img")" = "0 0 0" ]; then
	pass "empty file: 0 blocks"
else
	fail "empty file: 0 blocks" "$(cat "$t/empty.img.map" "$t/empty.img.err")"
fi
c=$t/cut.img
head -c $((40 * 1048576)) "$g" >"$c"
map_ok "gpt cut at 40 MiB" "$c"
read -r nb nu nf <<<"$(counts "$c")"
if [ "${nf:-1}" -eq 0 ] && grep -q '^no partition table; a PMBR signature but no valid' "$c.map"
then
	pass "gpt cut at 40 MiB: its header reaches past the end, no table is trusted: all in use"
else
	fail "gpt cut at 40 MiB: its header reaches past the end, no table is trusted: all in use" \
		"$(head -4 "$c.map")"
fi
python3 "$t/check.py" gptfit "$c"
map_ok "gpt cut at 40 MiB, header fitted, p2 past the end" "$c"
if grep -q '^gpt: 1 partitions' "$c.map" && grep -q '^p1 ext4.*free:' "$c.map"; then
	pass "gpt cut at 40 MiB, header fitted: p2 past the end is dropped, p1 still mapped"
else
	fail "gpt cut at 40 MiB, header fitted: p2 past the end is dropped, p1 still mapped" \
		"$(head -4 "$c.map")"
fi
head -c $((80 * 1048576)) "$m" >"$c"
map_ok "mbr cut at 80 MiB" "$c"
if grep -q '^p6 .*all in use: ends beyond the end' "$c.map" &&
   grep -q '^p5 ext3.*free:' "$c.map"; then
	pass "mbr cut at 80 MiB: p6 past the end is all in use, p5 still mapped"
else
	fail "mbr cut at 80 MiB: p6 past the end is all in use, p5 still mapped" \
		"$(head -8 "$c.map")"
fi
head -c $((10 * 1048576)) "$g" >"$c"
map_ok "gpt cut at 10 MiB" "$c"
read -r nb nu nf <<<"$(counts "$c")"
if [ "${nf:-1}" -eq 0 ]; then
	pass "gpt cut at 10 MiB: all in use"
else
	fail "gpt cut at 10 MiB: all in use" "$(head -4 "$c.map")"
fi
head -c 3000 "$g" >"$c"
map_ok "gpt cut at 3000 bytes" "$c"

# The import's reader thread (tools/dedupctl/reader.c, dd_srcmap --copy): a copy of the
# data blocks it hands out, with O_DIRECT and buffered, equals the copy of the in-use
# blocks; every block's kind and hash is checked against the bytes on the way; on
# tmpfs too (no O_DIRECT before Linux 6.6: buffered there), and for a source whose size
# is not a multiple of 4 KiB (the last block partial).
shm=
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=$(mktemp -d /dev/shm/srcmap.XXXXXX) && cp "$g" "$shm/gpt.img"
for src in "$g" "$m" "$w" "$c" ${shm:+"$shm/gpt.img"}; do
	"$SRCMAP" --list "$src" >"$t/rd.map" 2>/dev/null &&
		python3 "$t/check.py" copy "$src" "$t/rd.map" "$t/rd.want" ||
		{ fail "reader: the copy of $(basename "$src") to compare with"; continue; }
	for mode in direct buffered; do
		opt=; [ $mode = buffered ] && opt=--buffered
		if "$SRCMAP" --copy "$t/rd.out" $opt "$src" >"$t/rd.log" 2>"$t/rd.err" &&
		   line=$(grep '^copy ' "$t/rd.log") && cmp -s "$t/rd.out" "$t/rd.want"; then
			pass "reader ($mode): $src read through the thread equals its in-use copy ($line)"
		else
			fail "reader ($mode): $src read through the thread equals its in-use copy" \
				"$(cat "$t/rd.err")" "$(grep '^copy ' "$t/rd.log")"
		fi
	done
done
[ -n "$shm" ] && rm -rf "$shm"

# Not a source: one line on stderr, status 1.
mkdir "$t/dir"
for s in "$t/dir" /dev/null "$t/none"; do
	"$SRCMAP" "$s" >"$t/out" 2>"$t/err"
	rc=$?
	if [ $rc -eq 1 ] && [ "$(wc -l <"$t/err")" -eq 1 ] && [ ! -s "$t/out" ]; then
		pass "$s: status 1 and one line ($(cat "$t/err"))"
	else
		fail "$s: status 1 and one line" "status $rc" "$(cat "$t/err")"
	fi
done

echo "# $n cases, $failed failed"
[ "$failed" -eq 0 ]
