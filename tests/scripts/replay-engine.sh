#!/bin/bash
# The crash replay of a guest run of tests/vm/39-log-replay.sh (or soak-log-replay.sh)
# at EVERY flush and FUA of its log, on the host, through the userspace engine.
#
#   tests/scripts/replay-engine.sh OUT_DIR [MIN_POINTS]
#     OUT_DIR      the guest run's results: build/vm/out/39-log-replay (its disk0.img
#                  is the guest's /dev/vda, the log; share/results/replay-model.tar the
#                  model the guest saved: maps, journals, specs, sizes, geometry)
#     MIN_POINTS   fail unless at least this many points were checked (default 1); every
#                  point after mark m1 must be (tests/vm/replay-points.awk counts them)
#
# dd_logreplay replays the log onto two image files (metadata and data), and at each
# point tests/vm/replay-point.sh in RP_MODE=engine checks it: dedup_check clean, every
# volume of the spec read back through the engine (dd_tokens verify --pool: the pool
# opened as the kernel opens it after a crash, read-write, writes kept in memory) holding
# what the last completed flush made durable or a later write of its own, deleted
# volumes absent.  The guest checked some of the same points through the kernel; this
# checks all of them at native speed.  A control then checks the end of the log
# against the first mark's model, which must fail on data.
# Prints one summary line; exit 0 when every point held and the control failed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
out=$1
min=${2:-1}
log=$out/disk0.img
model=$out/share/results/replay-model.tar
err() { echo "replay-engine: $*" >&2; exit 1; }
[ -f "$log" ] || err "no log $log (run the guest test first)"
[ -f "$model" ] || err "no model $model (the guest test did not save it)"
for t in dd_logreplay dd_tokens dedup_check; do
	[ -x "$ROOT/build/bin/$t" ] || err "build/bin/$t is missing (make userspace)"
done
export PATH=$ROOT/build/bin:$PATH

# The model and the two images (48 MiB) on tmpfs when there is one: dd_logreplay writes
# every entry of the log with O_DIRECT where it can, and on the build directory's disk
# that made the replay wait on I/O (350 s wall for 63 s of CPU); tmpfs takes buffered
# writes, which the engine's reads of the same files see all the same.
tmp=${DD_REPLAY_TMP:-/dev/shm}
[ -d "$tmp" ] && [ -w "$tmp" ] || tmp=$ROOT/build
W=$(mktemp -d "$tmp/replay-engine.XXXXXX")
trap 'rm -rf "$W"' EXIT
tar -C "$W" -xf "$model"
read -r MS DS <"$W/geometry" || err "no geometry in $model"
truncate -s $((MS * 512)) "$W/meta.img"
truncate -s $((DS * 512)) "$W/data.img"
: >"$W/checked"

export RP_MODE=engine RP_DIR=$W RP_META=$W/meta.img RP_DATA=$W/data.img
t0=$SECONDS
if ! dd_logreplay replay "$log" --at flush --stride 1 \
	--exec "sh $ROOT/tests/vm/replay-point.sh" "$W/meta.img:0:$MS" "$W/data.img:$MS:$DS" \
	>"$W/replay.out" 2>&1; then
	grep -v '^#' "$W/replay.out" | tail -n 30 >&2
	err "a point failed (above); log $log"
fi
n=$(wc -l <"$W/checked")
dd_logreplay list "$log" >"$W/list"
nflush=$(awk '!/^#/ && $2 ~ /[FU]/' "$W/list" | wc -l)
want=$(awk -v stride=1 -f "$ROOT/tests/vm/replay-points.awk" "$W/list")
[ "$n" = "$want" ] || err "$n points checked, but the log has $want after mark m1"
[ "$n" -gt 0 ] || err "no point was checked"
# The control: the images hold the end of the log, which mark m1's model does not allow.
if DD_REPLAY_MARK=m1 DD_REPLAY_INDEX=end DD_REPLAY_POINT=1 sh "$ROOT/tests/vm/replay-point.sh" \
	>"$W/control.out" 2>&1; then
	err "the control (the end of the log against mark m1's model) passed: the check cannot fail"
fi
grep -q 'does not read back' "$W/control.out" ||
	{ cat "$W/control.out" >&2; err "the control failed for another reason"; }
[ "$n" -ge "$min" ] || err "only $n points checked (of $nflush flush/FUA entries), want at least $min"
echo "replay-engine: $n points checked through the userspace engine (of $nflush flush/FUA entries), 0 failures, $((SECONDS - t0)) s; the control failed on data as it must"
