#!/bin/bash
# The import benchmark: bench/guest/bench-import.sh in one boot of the test guest, then
# a table.  docs/benchmarks-import.md describes the method.
#   bench/import.sh [--reps N] [--image NAME]
#     --reps N      interleaved repetitions of each run (default 5)
#     --image NAME  the guest image of scripts/images/ imported (default minbase);
#                   the second machine is build/bench-import/NAME-b.img, made from it
#                   by bench/similar-image.sh
# Builds what is needed (dependencies, module, tools, the guest image: root, the test
# guest).  Prints whether another QEMU was running: numbers taken under different load
# do not compare.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
reps=5 image=minbase
while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift 2 ;;
	--image) image=$2; shift 2 ;;
	*) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
	esac
done
IMG=$ROOT/build/images
OUTB=$ROOT/build/bench-import
MAKE=(make --no-print-directory -s)

scripts/deps.sh
export DD_DEPS_DONE=1
"${MAKE[@]}" module userspace
if [ "$(id -u)" -eq 0 ]; then
	scripts/images/make-guest-images.sh --only "$image"
else
	sudo -n scripts/images/make-guest-images.sh --only "$image"
fi
mkdir -p "$OUTB"
a=$IMG/$image.img b=$OUTB/$image-b.img
if [ ! -f "$b" ] || [ "$b" -ot "$a" ] || [ "$b" -ot bench/similar-image.sh ]; then
	bench/similar-image.sh "$a" "$b"
fi
# The guest cannot see our environment: the repetition count travels in the image.
echo "$reps" >"$ROOT/build/bench-reps"
"${MAKE[@]}" initramfs
others=$(pgrep -c qemu-system || true)
echo "bench-import: other emulators running before the start: $others"
echo "bench-import: host $(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), at $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
rc=0
scripts/vm/run.sh -q --no-build --disk srca="$a" --disk srcb="$b" bench-import || rc=$?
others=$(pgrep -c qemu-system || true)
echo "bench-import: other emulators running at the end: $others"
out=$ROOT/build/vm/out/bench-import/share/results
[ -s "$out/import.csv" ] || { echo "bench-import: no results (build/vm/out/bench-import/)" >&2; exit 1; }
python3 - "$out" "$image" <<'EOF'
import csv, os, statistics, sys
out, image = sys.argv[1], sys.argv[2]
info = {}
for line in open(os.path.join(out, "import.txt")):
    k, _, v = line.strip().partition(" ")
    info[k] = v
rows = list(csv.reader(open(os.path.join(out, "import.csv"))))
size = int(info["image_bytes"])
MB = 1e6
by = {}
for rep, kind, s, rd, wr, wb, sb, ts in rows:
    by.setdefault(kind, {})[int(rep)] = dict(s=float(s), rd=int(rd), wr=int(wr), wb=wb, sb=sb, ts=ts)
reps = sorted(by["dd"])
def med(v): return statistics.median(v)
def spread(v, fmt="{:.0f}"): return f"{fmt.format(med(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"
print(f"image A: {image}.img, {size / 2**20:.0f} MiB ({size / MB:.0f} MB); image B: {image}-b.img, same size;"
      f" {len(reps)} interleaved repetitions; {info['dd']}")
print()
names = {
    "dd": "(a) dd bs=1M oflag=direct conv=fsync -> dm-linear",
    "dddir": "(a'') dd ... iflag=direct -> dm-linear",
    "sparse": "(a') dd ... conv=sparse,fsync -> dm-linear",
    "ddpool": "(d) dd ... conv=fsync -> fresh dedup volume",
    "ddpooldir": "(d') dd ... iflag=direct -> fresh dedup volume",
    "imp-a": "(b) dedupctl import A -> fresh pool",
    "imp-b": "(c) dedupctl import B -> same pool (shares A)",
}
print(f"{'':48} {'MB/s (logical)':>18} {'wall s':>16} {'MB read':>9} {'MB written':>11} {'blocks written':>15} {'shared':>8}")
for k in ("dd", "dddir", "sparse", "ddpool", "ddpooldir", "imp-a", "imp-b"):
    if k not in by:
        continue
    d = by[k]
    mbs = [size / MB / d[r]["s"] for r in reps]
    secs = [d[r]["s"] for r in reps]
    rd = med([d[r]["rd"] for r in reps]) / MB
    wr = med([d[r]["wr"] for r in reps]) / MB
    wb = d[reps[-1]]["wb"]
    sb = d[reps[-1]]["sb"]
    print(f"{names[k]:48} {spread(mbs):>18} {spread(secs, '{:.1f}'):>16} {rd:9.0f} {wr:11.0f} {wb:>15} {sb:>8}")
print()
print("ratios of MB/s within each repetition (median, min-max):")
for k in ("imp-a", "imp-b", "dddir", "sparse", "ddpool", "ddpooldir"):
    for base in ("dd", "dddir", "sparse", "ddpool", "ddpooldir"):
        if k not in by or base not in by or (k in ("ddpool", "dddir") and base != "dd") or (k == "ddpooldir" and base != "dddir") or (k == "sparse" and base.startswith("ddpool")):
            continue
        if k == base:
            continue
        rt = [by[base][r]["s"] / by[k][r]["s"] for r in reps]
        print(f"  {k:>6} / {base:<6}  {spread(rt, '{:.2f}')}")
print()
print("ratios of the medians: " + ", ".join(
    f"{k}/dd {med([by['dd'][r]['s'] for r in reps]) / med([by[k][r]['s'] for r in reps]):.2f}"
    for k in ("imp-a", "imp-b", "dddir", "sparse", "ddpool", "ddpooldir") if k in by))
ts = [float(by["imp-a"][r]["ts"]) for r in reps if by["imp-a"][r]["ts"] not in ("", "-")]
if ts:
    print(f"imp-a: the import's own 'done in' time (the copy loop only) median {med(ts):.1f} s,"
          f" the whole command {med([by['imp-a'][r]['s'] for r in reps]):.1f} s")
EOF
exit "$rc"
