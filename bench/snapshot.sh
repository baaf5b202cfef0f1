#!/bin/bash
# Snapshot benchmark: create_snap of dedup and dm-thin origins of 256 MiB, 1 GiB and
# 8 GiB, guest writes on another volume during snapshots, and first writes after a
# snapshot against dm-linear, in one boot of the test guest
# (bench/guest/bench-snapshot.sh), then a table of medians and min-max spreads.
#   bench/snapshot.sh [--reps N]   (default 5)
# docs/benchmarks-snapshot.md describes the method.  Prints whether another QEMU was
# running: numbers taken under different load do not compare.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
reps=5
[ "${1:-}" = --reps ] && reps=$2
MAKE=(make --no-print-directory -s)
scripts/deps.sh
export DD_DEPS_DONE=1
others=$(pgrep -c qemu-system || true)
echo "bench-snapshot: other emulators running before the start: $others"
echo "bench-snapshot: host $(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), at $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
# The guest cannot see our environment: the repetition count travels in the image.
echo "$reps" >"$ROOT/build/bench-reps"
"${MAKE[@]}" initramfs
rc=0
scripts/vm/run.sh -q --no-build bench-snapshot || rc=$?
others=$(pgrep -c qemu-system || true)
echo "bench-snapshot: other emulators running at the end: $others"
csv=$ROOT/build/vm/out/bench-snapshot/share/results/snap.csv
[ -s "$csv" ] || { echo "bench-snapshot: no results (build/vm/out/bench-snapshot/)" >&2; exit 1; }
python3 - "$csv" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.reader(open(sys.argv[1])))
v = defaultdict(list)   # (size, kind, what) -> values
byrep = defaultdict(dict)
for rep, size, kind, what, val in rows:
    v[(int(size), kind, what)].append(float(val))
    byrep[(int(size), what, int(rep))][kind] = float(val)
def med(xs):
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"
def medms(xs):
    xs = [x / 1000 for x in xs]
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"
print("\ncreate_snap, ms: median (min-max) over the repetitions")
print(f"{'origin':>8} | {'dedup message':>16} | {'thin message':>16} | {'dedup susp+msg+res':>19} | {'thin susp+msg+res':>18}")
for size in sorted({s for s, _, _ in v}):
    if (size, 'dedup', 'message-us') not in v:
        continue
    name = f"{size // 1024} GiB" if size >= 1024 else f"{size} MiB"
    print(f"{name:>8} | {medms(v[(size,'dedup','message-us')]):>16} | {medms(v[(size,'thin','message-us')]):>16} | "
          f"{medms(v[(size,'dedup','total-us')]):>19} | {medms(v[(size,'thin','total-us')]):>18}")
a, d = v.get((8192, 'dedup', 'iops-alone')), v.get((8192, 'dedup', 'iops-during-snapshots'))
if a and d:
    reps = sorted(r for (s, w, r) in byrep if w == 'iops-alone')
    ratios = [byrep[(8192, 'iops-during-snapshots', r)]['dedup'] / byrep[(8192, 'iops-alone', r)]['dedup'] for r in reps]
    n = v[(8192, 'dedup', 'snapshots-during-run')]
    print(f"\n4 KiB random writes on another volume, IOPS: alone {med(a)}, while the 8 GiB origin is "
          f"snapshotted every second {med(d)} ({statistics.median(n):.0f} snapshots per 10 s run); "
          f"during/alone per repetition {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
c, l = v.get((1024, 'cow', 'first-write-iops')), v.get((1024, 'linear', 'first-write-iops'))
if c and l:
    reps = sorted(r for (s, w, r) in byrep if w == 'first-write-iops')
    ratios = [byrep[(1024, 'first-write-iops', r)]['cow'] / byrep[(1024, 'first-write-iops', r)]['linear'] for r in reps]
    print(f"first 4 KiB writes after a snapshot (each breaks sharing), IOPS: dedup {med(c)}, dm-linear {med(l)}; "
          f"dedup/linear per repetition {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
PY
exit $rc
