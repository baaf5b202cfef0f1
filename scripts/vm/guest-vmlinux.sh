#!/bin/bash
# Print the kernel image a test guest should boot for ABI K:
#   scripts/vm/guest-vmlinux.sh K
# The uncompressed vmlinux of /boot/vmlinuz-K, extracted once into build/vm/vmlinux-K,
# when the kernel can start from it directly (an ELF with the PVH entry note, which
# QEMU's -kernel boots without the bzImage's decompressor), else /boot/vmlinuz-K itself.
# Under TCG the decompressor alone took 8-9 s of every boot (xz on 6.1, zstd on 6.12),
# before the kernel printed its first line; the kernel that runs is the same.
# DD_VM_BZIMAGE=1 always prints /boot/vmlinuz-K.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 K" >&2; exit 2; }
K=$1
bz=/boot/vmlinuz-$K
out=$ROOT/build/vm/vmlinux-$K
[ -f "$bz" ] || { echo "guest-vmlinux: $bz missing" >&2; exit 1; }
if [ "${DD_VM_BZIMAGE:-0}" = 1 ]; then
	echo "$bz"
	exit 0
fi

# Already extracted from this bzImage?
if [ -s "$out" ] && [ "$out" -nt "$bz" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$ROOT/build/vm"
# Two guests may start at once: one extracts, the other waits for it.
exec 9>"$ROOT/build/vm/.vmlinux-$K.lock"
flock 9
if [ -s "$out" ] && [ "$out" -nt "$bz" ]; then
	echo "$out"
	exit 0
fi

# The boot protocol header: setup_sects at 0x1f1, payload_offset and payload_length
# at 0x248/0x24c, counted from the protected-mode code after the setup sectors.
u8() { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' '; }
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
fallback() {
	echo "guest-vmlinux: $1; booting the bzImage" >&2
	rm -f "$out.tmp"
	echo "$bz"
	exit 0
}
[ "$(od -An -c -j 514 -N 4 "$bz" | tr -d ' ')" = HdrS ] || fallback "$bz has no boot protocol header"
setup=$(u8 "$bz" 497)
[ "$setup" -gt 0 ] || setup=4
poff=$(u32 "$bz" 584)
plen=$(u32 "$bz" 588)
start=$(((setup + 1) * 512 + poff))
magic=$(od -An -t x1 -j "$start" -N 6 "$bz" | tr -d ' ')
case "$magic" in
fd377a585a00) dec=(xz -dcq) ;;
28b52ffd*) dec=(zstd -dcq) ;;
1f8b*) dec=(gzip -dc) ;;
*) fallback "unknown compression (magic $magic)" ;;
esac
command -v "${dec[0]}" >/dev/null || fallback "${dec[0]} is not installed"
# (xz and zstd complain about the padding after the stream: the output is checked below)
tail -c +$((start + 1)) "$bz" | head -c "$plen" | "${dec[@]}" >"$out.tmp" 2>/dev/null || true
[ "$(od -An -c -N 4 "$out.tmp" 2>/dev/null | tr -d ' ')" = 177ELF ] || fallback "the payload did not decompress to an ELF"
# The PVH entry: an ELF note "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY).
command -v readelf >/dev/null || fallback "no readelf to look for the PVH entry"
readelf -n "$out.tmp" 2>/dev/null | grep -qE '^[[:space:]]*Xen[[:space:]]+0x[0-9a-f]+[[:space:]]+(Unknown note type: \(0x00000012\)|.*PHYS32_ENTRY)' ||
	fallback "the kernel has no PVH entry"
mv "$out.tmp" "$out"
echo "$out"
