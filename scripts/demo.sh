#!/bin/bash
# `make demo`: dedupctl and the background scanner on three real Debian guest disks.
#   1. installs the dependencies (scripts/deps.sh), builds the module, the tools and
#      the test guest;
#   2. builds the three guest images (scripts/images/make-guest-images.sh: cached in
#      build/images/, a few minutes and about 600 MB of packages the first time; root);
#   3. computes their ideal deduplication on the host (scripts/images/ideal.py);
#   4. boots the test guest with the images as read-only disks and runs
#      bench/guest/demo-scan.sh: `dedupctl create` a pool, `dedupctl import` the images
#      into three volumes, one scan at the default rate (`dedupctl status` every 15 s),
#      the volumes compared with the images;
#   5. prints the savings against the ideal.
# Works on a fresh Debian 12 machine (as root, or with password-less sudo for the
# packages; the images need root).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMG=$ROOT/build/images
MAKE=(make --no-print-directory -s)

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh
export DD_DEPS_DONE=1
step "build (module, tools, test guest)"
"${MAKE[@]}" module
"${MAKE[@]}" userspace
"${MAKE[@]}" initramfs
step "guest images (build/images)"
if [ "$(id -u)" -eq 0 ]; then
	scripts/images/make-guest-images.sh
else
	sudo -n scripts/images/make-guest-images.sh
fi
step "ideal deduplication on the host (scripts/images/ideal.py)"
ideal_json=$ROOT/build/demo-ideal.json
scripts/images/ideal.py --json "$IMG/minbase.img" "$IMG/server.img" "$IMG/dev.img" >"$ideal_json"
step "the guest (bench/guest/demo-scan.sh)"
others=$(pgrep -c qemu-system || true)
echo "demo: other emulators running: $others (they slow the guest down, not the savings)"
rc=0
scripts/vm/run.sh -q --no-build \
	--disk minbase="$IMG/minbase.img" --disk server="$IMG/server.img" --disk dev="$IMG/dev.img" \
	demo-scan || rc=$?
res=$ROOT/build/vm/out/demo-scan/share/results/demo.txt
if [ ! -s "$res" ]; then
	echo "demo: no results from the guest (see build/vm/out/demo-scan/console.log)" >&2
	exit 1
fi
step "results"
python3 - "$ideal_json" "$res" "$ROOT/build/vm/out/demo-scan/share/results/ideal-guest.txt" <<'EOF'
import json, sys
ideal = json.load(open(sys.argv[1]))["granularity"]["4096"]
r = {}
for line in open(sys.argv[2]):
    k, _, v = line.strip().partition(" ")
    r[k] = v
MiB = 4096 / 2**20
def mib(blocks): return f"{blocks * MiB:9.1f} MiB"
print("The three images (4 KiB blocks):")
print(f"  {'image':10} {'blocks':>9} {'zero':>9} {'non-zero':>9} {'distinct':>9} {'savings alone':>14}")
for im in ideal["per_image"]:
    print(f"  {im['name'].removesuffix('.img'):10} {im['blocks']:9} {im['zero']:9} {im['nonzero']:9}"
          f" {im['distinct']:9} {100 * im['savings']:13.1f}%")
a = ideal["all"]
print(f"  {'together':10} {a['blocks']:9} {a['zero']:9} {a['nonzero']:9} {a['distinct']:9}"
      f" {100 * a['savings']:13.1f}%")
nz, distinct = int(r["nonzero"]), int(r["distinct"])
before, after = int(r["used_before"]), int(r["used_after"])
agree = "agrees" if (nz, distinct) == (a["nonzero"], a["distinct"]) else "DISAGREES"
print(f"\nIdeal: ideal.py on the host (SHA-256, the images) and dd_blockcount in the guest (bytes"
      f" compared, the imported volumes) {agree}: {a['nonzero']}/{a['distinct']} vs {nz}/{distinct}"
      f" non-zero/distinct.")
print("\ndedupctl import (P2V), per image          logical    written  skipped: zero    free"
      "   shared at import")
for im in ideal["per_image"]:
    n = im["name"].removesuffix(".img")
    g = lambda k: int(r.get(f"img_{n}_{k}", 0))
    print(f"  {n:10} {mib(g('blocks'))} {g('written'):10} {g('skipped_as_zero'):14} "
          f"{g('skipped_as_free'):7} {g('shared_at_import'):10}")
print("\ndm-dedup pool                       blocks          size")
print(f"  physical used after the import {before:9}  {mib(before)}   (zero and free blocks never written)")
print(f"  physical used after one scan   {after:9}  {mib(after)}")
print(f"  ideal (distinct non-zero)      {distinct:9}  {mib(distinct)}")
print(f"  freed by the scan              {before - after:9}  {mib(before - after)}")
print(f"  ideal savings                  {nz - distinct:9}  {mib(nz - distinct)}")
print(f"\n  saving {r['savings_pct']}% of the non-zero data (ideal {r['ideal_pct']}%):"
      f" {r['achieved_pct']}% of the ideal savings achieved")
print(f"  scan: {r['scan_seconds']} s at the default rate ({r['rate_mib']} MiB/s;"
      f" last pass read {r['read_mib_s']} MiB/s), import of the images {r['copy_seconds']} s,"
      f" index {int(r['index_bytes']) >> 20} MiB ({r['index_entries']} entries,"
      f" {r['index_hits']} hits), false hits {r['false_hits']}")
EOF
if [ "$rc" -ne 0 ]; then
	echo "demo: the guest run FAILED (exit $rc): build/vm/out/demo-scan/" >&2
	exit "$rc"
fi
echo "demo: every volume is identical to its image and the metadata checks clean"
