#!/bin/bash
# A "second machine" for the import benchmark: a copy of a guest image of
# scripts/images/ (an ext4 filesystem image) that has diverged a little from it, as a
# clone of one template does after some use.  Written with debugfs on the copy (no
# mount, no root), the new data from a seeded generator (the same changes every time;
# the new inodes carry the time of the run):
#   - /etc/hostname and /etc/machine-id are new (if the image has them);
#   - the first 24 regular files of /usr/bin (by name) of at least 64 KiB are replaced
#     by copies with one byte changed in every 4 KiB (an "upgraded" package: every
#     block new; their old blocks become free, with stale data in them);
#   - 12 new files of 2 MiB of random data in /var/lib/bench-b (logs, state).
#   bench/similar-image.sh SOURCE.img OUT.img
# Prints one line: what changed, in MiB.  OUT.img is checked with e2fsck -fn.
set -euo pipefail
src=$1 out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp --sparse=always "$src" "$out.tmp"
cmds=$tmp/cmds
: >"$cmds"
# seeded data: gen BYTES SEED > FILE
gen() { python3 -c 'import random, sys; r = random.Random(int(sys.argv[2])); sys.stdout.buffer.write(r.randbytes(int(sys.argv[1])))' "$1" "$2"; }
has() { debugfs -R "stat $1" "$out.tmp" 2>/dev/null | grep -q '^Inode:'; }

echo "machine-b" >"$tmp/hostname"
gen 16 1 | od -An -tx1 | tr -d ' \n' >"$tmp/machine-id"
echo >>"$tmp/machine-id"
for f in hostname machine-id; do
	if has "/etc/$f"; then echo "rm /etc/$f" >>"$cmds"; fi
	echo "write $tmp/$f /etc/$f" >>"$cmds"
done

changed=0
n=0
# regular files in /usr/bin, by name, at least 64 KiB (debugfs ls -l: inode, mode, ..., size, ..., name)
while read -r name size; do
	[ "$n" -lt 24 ] || break
	debugfs -R "dump /usr/bin/$name $tmp/f" "$out.tmp" 2>/dev/null
	python3 - "$tmp/f" "$n" <<'EOF'
import sys
p, seed = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
for off in range(seed % 4096, len(b), 4096):
    b[off] ^= 0x5a
open(p, "wb").write(b)
EOF
	cp "$tmp/f" "$tmp/u$n"
	echo "rm /usr/bin/$name" >>"$cmds"
	echo "write $tmp/u$n /usr/bin/$name" >>"$cmds"
	echo "sif /usr/bin/$name mode 0100755" >>"$cmds"
	changed=$((changed + size))
	n=$((n + 1))
done < <(debugfs -R "ls -l /usr/bin" "$out.tmp" 2>/dev/null |
	awk '$2 ~ /^100/ && $6 >= 65536 {print $NF, $6}' | sort)

echo "mkdir /var/lib/bench-b" >>"$cmds"
for i in $(seq 0 11); do
	gen $((2 << 20)) $((100 + i)) >"$tmp/n$i"
	echo "write $tmp/n$i /var/lib/bench-b/data$i" >>"$cmds"
done
debugfs -w -f "$cmds" "$out.tmp" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
e2fsck -fn "$out.tmp" >"$tmp/fsck" 2>&1 || { cat "$tmp/fsck" >&2; echo "similar-image: e2fsck found errors" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "similar-image: $out: $n files of /usr/bin rewritten ($((changed >> 20)) MiB), 24 MiB of new files, hostname and machine-id"
