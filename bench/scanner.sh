#!/bin/bash
# The scanner benchmark: bench/guest/scanner.sh in one boot of the test guest with the
# three guest images attached read-only, then a table.  docs/benchmarks-scanner.md
# describes the method.
#   bench/scanner.sh [--reps N]   (default 5 interleaved pairs for the IOPS runs)
# Builds what is needed (dependencies, module, tools, test guest, images: root).
# Prints whether another QEMU was running: numbers taken under different load do not
# compare.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
reps=5
[ "${1:-}" = --reps ] && reps=$2
IMG=$ROOT/build/images
MAKE=(make --no-print-directory -s)

scripts/deps.sh
export DD_DEPS_DONE=1
"${MAKE[@]}" module userspace
if [ "$(id -u)" -eq 0 ]; then scripts/images/make-guest-images.sh; else sudo -n scripts/images/make-guest-images.sh; fi
# The guest cannot see our environment: the repetition count travels in the image.
echo "$reps" >"$ROOT/build/bench-reps"
"${MAKE[@]}" initramfs
others=$(pgrep -c qemu-system || true)
echo "bench-scanner: other emulators running before the start: $others"
echo "bench-scanner: host $(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
rc=0
scripts/vm/run.sh -q --no-build \
	--disk minbase="$IMG/minbase.img" --disk server="$IMG/server.img" --disk dev="$IMG/dev.img" \
	scanner || rc=$?
others=$(pgrep -c qemu-system || true)
echo "bench-scanner: other emulators running at the end: $others"
out=$ROOT/build/vm/out/scanner/share/results
[ -s "$out/scanner.txt" ] || { echo "bench-scanner: no results (build/vm/out/scanner/)" >&2; exit 1; }
python3 - "$out" <<'EOF'
import csv, os, statistics, sys
out = sys.argv[1]
r = {}
for line in open(os.path.join(out, "scanner.txt")):
    k, _, v = line.strip().partition(" ")
    r[k] = v
f = lambda k: float(r[k])
MiB = 4096 / 2**20
nz, distinct = int(r["nonzero"]), int(r["distinct"])
ideal = nz - distinct
data_mib = nz * MiB
print(f"data: three guest images, {r['image_mib']} MiB, {nz} non-zero 4 KiB blocks ({data_mib:.0f} MiB),"
      f" {distinct} distinct: ideal savings {ideal} blocks ({ideal * MiB:.0f} MiB, {100 * ideal / nz:.1f} %)")
print()
used0, used = int(r["used_before"]), int(r["used_after"])
freed = used0 - used
print("(a) dm-dedup, one pass, scan rate 0 (default index "
      f"{int(r['index_bytes']) >> 20} MiB)")
print(f"    scan wall time {f('scan_seconds'):.1f} s; freed {freed} blocks ({freed * MiB:.0f} MiB):"
      f" {100 * freed / nz:.1f} % of the data, {100 * freed / ideal:.1f} % of the ideal;"
      f" false hits {r['false_hits']}; copy-in {f('copy_seconds'):.1f} s")
print("(b) btrfs + duperemove, same data (zero blocks punched out, extents rewritten)")
for tag, what in (("extent", "-b 4096 -d -r"), ("partial", "-b 4096 -d -r --dedupe-options=partial,same")):
    if f"btrfs_{tag}_used_before" not in r:
        continue
    b0, b1 = int(r[f"btrfs_{tag}_used_before"]), int(r[f"btrfs_{tag}_used_after"])
    bf = b0 - b1
    print(f"    duperemove {what}: {f(f'btrfs_{tag}_seconds'):.1f} s; Data used {b0 / 2**20:.0f} ->"
          f" {b1 / 2**20:.0f} MiB: freed {bf / 2**20:.0f} MiB, {100 * bf / (ideal * 4096):.1f} % of the ideal")
region = int(r["data_region_mib"])
print("(c) sequential reads, O_DIRECT, 4 MiB")
print(f"    image disks {r['image_mib']} MiB in {f('read_images_seconds'):.1f} s"
      f" ({int(r['image_mib']) / f('read_images_seconds'):.0f} MiB/s); pool data region {region} MiB in"
      f" {f('read_data_region_seconds'):.1f} s ({region / f('read_data_region_seconds'):.0f} MiB/s);"
      f" the three volumes {f('read_volumes_seconds'):.1f} s")
scanned_mib = int(r["scanned_blocks"]) * MiB
scan_rate = scanned_mib / f("scan_seconds")
raw = region / f("read_data_region_seconds")
print("(d) unthrottled scan rate against the raw read rate of the same blocks")
print(f"    scan {scanned_mib:.0f} MiB hashed in {f('scan_seconds'):.1f} s = {scan_rate:.0f} MiB/s"
      f" (the scanner's own read_mib_s {r['scan_read_mib_s']}); raw {raw:.0f} MiB/s: {scan_rate / raw:.2f} x")
rows = list(csv.reader(open(os.path.join(out, "iops.csv"))))
idle = [float(x[2]) for x in rows if x[1] == "idle"]
act = [float(x[2]) for x in rows if x[1] == "active"]
states = sorted({x[3] for x in rows if x[1] == "active"})
ratios = [a / i for (a, i) in zip(act, idle)]
print(f"(e) 4 KiB random writes (fio, iodepth 16, 10 s), {len(idle)} interleaved pairs,"
      f" scanner at its default rate {r['default_rate_mib']} MiB/s (state at the end: {', '.join(states)})")
print(f"    stopped: median {statistics.median(idle):.0f} IOPS ({min(idle):.0f}-{max(idle):.0f});"
      f" scanning: median {statistics.median(act):.0f} IOPS ({min(act):.0f}-{max(act):.0f});"
      f" per pair scanning/stopped median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
print("(f) savings against index_memory")
print(f"    {'index':>8} {'entries':>8} {'data used':>10} {'% of ideal':>10} {'index hits':>10}"
      f" {'scan s':>7} {'index bytes per TiB of data':>28}")
for row in sorted(csv.reader(open(os.path.join(out, "index.csv"))), key=lambda x: int(x[1])):
    name, ib, ent, u, hits, s = row
    u = int(u)
    per_tib = int(ib) * (2**40 / (nz * 4096))
    label = f"{int(ib) >> 20} MiB" + (" (def)" if name == "default" else "")
    print(f"    {label:>12} {ent:>8} {u:10} {100 * (nz - u) / ideal:9.1f}% {hits:>10} {float(s):7.1f}"
          f" {per_tib / 2**30:22.2f} GiB/TiB")
EOF
exit "$rc"
