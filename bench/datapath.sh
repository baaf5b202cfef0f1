#!/bin/bash
# Data-path benchmark: dm-dedup against dm-linear and dm-thin in one boot of the test
# guest (bench/guest/bench-datapath.sh), then a table of medians and spreads.
#   bench/datapath.sh [--reps N]   (default 6: a multiple of the three device orders)
# Ratios are taken within each repetition (dedup/linear, thin/linear), then the
# median and the min-max spread over the repetitions are printed.  Prints whether
# another QEMU was running: numbers taken under different load do not compare.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
reps=6
[ "${1:-}" = --reps ] && reps=$2

others=$(pgrep -c qemu-system || true)
echo "bench: other emulators running before the start: $others"
# The guest cannot see our environment: the repetition count travels in the image.
echo "$reps" >"$ROOT/build/bench-reps"
"$ROOT/scripts/vm/run.sh" -q bench-datapath
csv=$ROOT/build/vm/out/bench-datapath/share/results/bench.csv
python3 "$ROOT/bench/table.py" "$csv"
